import Crypto
import CryptoExtras
import Foundation
import SwiftASN1
import Testing
@testable import Server
import TesseraCore
import TesseraTesting
import X509

@Suite("Sign-out and client assertions, in process")
struct SessionAndAssertionTests {
    static let web = "https://app.contoso.test/callback"
    static let signedOut = "https://app.contoso.test/signed-out"

    @Test("logout ends the session and returns to a registered post_logout_redirect_uri, named by client_id (once the user confirms) or id_token_hint")
    func logout() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let app = await h.graph("POST", "applications", token: admin, json: [
                "displayName": "Web app", "web": ["redirectUris": [.string(Self.web)], "logoutUrl": .string(Self.signedOut)]])
            let appID = try #require(app.json["appId"]?.stringValue)
            let tenant = h.tenant.tenantId
            func signIn() async throws -> String {
                let (_, setCookie) = try await SignInSessions(app: h.app).start(tenant: tenant, userID: h.tenant.adminUserId, amr: ["fido", "mfa"],
                                                                                baseURL: Harness.base)
                return String(setCookie.split(separator: ";")[0])
            }
            func logout(_ query: [(String, String)], cookie: String) async -> APIResponse {
                await h.send("GET", "/\(tenant)/oauth2/v2.0/logout", query: query.map { (name: $0.0, value: $0.1) }, headers: ["cookie": cookie])
            }
            func signedIn(_ cookie: String) async throws -> Bool {
                let request = APIRequest(method: "GET", path: "/", query: [], headers: ["cookie": cookie], body: [], baseURL: Harness.base)
                return try await SignInSessions(app: h.app).current(request, tenant: tenant) != nil
            }
            // By client_id: the user confirms (no logout CSRF), then back to the app, the session gone and its cookie cleared.
            let first = try await signIn()
            let asked = await logout([("client_id", appID), ("post_logout_redirect_uri", Self.signedOut), ("state", "s1")], cookie: first)
            #expect(asked.status == 200)
            #expect(try await signedIn(first))
            let byClient = await h.send("POST", "/\(tenant)/oauth2/v2.0/logout", headers: ["cookie": first, "content-type": "application/x-www-form-urlencoded"],
                                        body: Array(AuthorizeEndpoint.encode(LogoutTests.confirmationFields(asked).map { (name: $0.0, value: $0.1) }).utf8))
            #expect(byClient.status == 302 && byClient.headers.first { $0.name == "Location" }?.value == Self.signedOut + "?state=s1")
            #expect(byClient.headers.contains { $0.name == "Set-Cookie" && $0.value.contains("Max-Age=0") })
            #expect(try await !signedIn(first))
            // By the ID token the client holds (an expired one too), as generic relying parties send it.
            let now = Int64(h.clock.now.timeIntervalSince1970)
            let hint = try JWT.sign(claims: ["aud": .string(appID), "iss": .string("\(Harness.base)/\(tenant)/v2.0"), "tid": .string(tenant),
                                             "sub": "x", "oid": .string(h.tenant.adminUserId), "exp": .int(now - 7200), "iat": .int(now - 10_800)],
                                    header: ["kid": .string(h.app.signingKey.kid)], key: h.app.signingKey.privateKey)
            let second = try await signIn()
            let byHint = await logout([("id_token_hint", hint), ("post_logout_redirect_uri", Self.signedOut)], cookie: second)
            #expect(byHint.status == 302 && byHint.headers.first { $0.name == "Location" }?.value == Self.signedOut)
            #expect(try await !signedIn(second))
            // An unregistered target is never followed (the request is refused, the session kept); a hint for another
            // client than client_id is refused.
            let third = try await signIn()
            let elsewhere = await logout([("client_id", appID), ("post_logout_redirect_uri", "https://evil.example/")], cookie: third)
            #expect(elsewhere.status == 400 && !elsewhere.headers.contains { $0.name == "Location" })
            #expect(try await signedIn(third))
            let mismatched = await logout([("client_id", Identifier.make()), ("id_token_hint", hint), ("post_logout_redirect_uri", Self.signedOut)],
                                          cookie: try await signIn())
            #expect(mismatched.status == 400 && !mismatched.headers.contains { $0.name == "Location" })
        }
    }

    /// An RSA key and a self-signed certificate for it, DER, valid around `now` (the test's clock, never the wall's).
    static func certificate(at now: Date) throws -> (_RSA.Signing.PrivateKey, [UInt8]) {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let name = try DistinguishedName { CommonName("tessera-test-client") }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(86_400 * 365 * 5), issuer: name, subject: name, signatureAlgorithm: .sha256WithRSAEncryption,
            extensions: Certificate.Extensions(), issuerPrivateKey: .init(key))
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return (key, serializer.serializedBytes)
    }

    @Test("private_key_jwt: an assertion is checked for signature, certificate, audience, lifetime and jti")
    func clientAssertions() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let (key, der) = try Self.certificate(at: h.clock.now)
            let app = await h.graph("POST", "applications", token: admin, json: ["displayName": "Daemon"])
            let appID = try #require(app.json["appId"]?.stringValue), objectID = try #require(app.json["id"]?.stringValue)
            _ = await h.graph("POST", "servicePrincipals", token: admin, json: ["appId": .string(appID)])
            let uploaded = await h.graph("PATCH", "applications/\(objectID)", token: admin, json: ["keyCredentials": [[
                "type": "AsymmetricX509Cert", "usage": "Verify", "key": .string(Data(der).base64EncodedString())]]])
            #expect(uploaded.status == 204)
            let tenant = h.tenant.tenantId
            let endpoint = "\(Harness.base)/\(tenant)/oauth2/v2.0/token"
            let x5t = Base64URL.encode(Array(Insecure.SHA1.hash(data: der)))
            func assertion(aud: String = endpoint, lifetime: Int64 = 600, age: Int64 = 0, jti: String? = Identifier.make(),
                           signer: _RSA.Signing.PrivateKey? = nil) throws -> String {
                let now = Int64(h.clock.now.timeIntervalSince1970) - age
                var claims: [String: JSONValue] = ["aud": .string(aud), "iss": .string(appID), "sub": .string(appID), "iat": .int(now),
                                                   "nbf": .int(now), "exp": .int(now + lifetime)]
                if let jti { claims["jti"] = .string(jti) }
                return try JWT.sign(claims: claims, header: ["x5t": .string(x5t)], key: signer ?? key)
            }
            func redeem(_ assertion: String) async -> APIResponse {
                await h.send("POST", "/\(tenant)/oauth2/v2.0/token", headers: ["content-type": "application/x-www-form-urlencoded"],
                             body: Array(AuthorizeEndpoint.encode([
                                ("grant_type", "client_credentials"), ("client_id", appID), ("scope", "https://graph.microsoft.com/.default"),
                                ("client_assertion_type", TokenEndpoint.assertionType), ("client_assertion", assertion)]).utf8))
            }
            let good = await redeem(try assertion())
            #expect(good.status == 200)
            let accessToken = try #require(good.json["access_token"]?.stringValue)
            let claims = try #require(JWT.decode(accessToken)).claims
            #expect(claims["appidacr"] == "2" && claims["appid"]?.stringValue == appID)
            let other = try _RSA.Signing.PrivateKey(keySize: .bits2048)
            for (bad, why) in [
                (try assertion(aud: "https://login.example/\(tenant)/oauth2/v2.0/token"), "another host's endpoint"),
                (try assertion(aud: "\(Harness.base)/\(Identifier.make())/oauth2/v2.0/token"), "another tenant's endpoint"),
                (try assertion(lifetime: 7200), "lives longer than an hour"),
                (try assertion(age: 1800), "expired"),
                (try assertion(jti: nil), "no jti"),
                (try assertion(signer: other), "signed by another key"),
            ] {
                let refused = await redeem(bad)
                #expect(refused.status == 401 && refused.json["error"] == "invalid_client", "\(why)")
            }
        }
    }
}
