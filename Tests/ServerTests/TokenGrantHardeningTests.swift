import Crypto
import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting
import WebAuthn

/// The grants an attacker probes: each test is an attack that worked before and must not now.
@Suite("Token grants: refresh, replay, device code, lockout and issuer")
struct TokenGrantHardeningTests {
    static let web = "https://app.contoso.test/callback"
    static let spa = "https://spa.contoso.test/"

    /// A confidential web app with a SPA redirect too; returns its appId and a client secret.
    static func webApp(_ h: Harness, _ token: String) async throws -> (appID: String, secret: String) {
        let app = await h.graph("POST", "applications", token: token, json: [
            "displayName": "Web app", "web": ["redirectUris": [.string(web)]], "spa": ["redirectUris": [.string(spa)]]])
        let appID = try #require(app.json["appId"]?.stringValue)
        _ = await h.graph("POST", "servicePrincipals", token: token, json: ["appId": .string(appID)])
        let secret = await h.graph("POST", "applications/\(try #require(app.json["id"]?.stringValue))/addPassword", token: token,
                                   json: ["passwordCredential": ["displayName": "web"]])
        return (appID, try #require(secret.json["secretText"]?.stringValue))
    }

    static func post(_ h: Harness, _ path: String, _ form: [(String, String)], headers: [String: String] = [:]) async -> APIResponse {
        var all = headers
        all["content-type"] = "application/x-www-form-urlencoded"
        return await h.send("POST", "/\(h.tenant.tenantId)/oauth2/v2.0/\(path)", headers: all,
                            body: Array(AuthorizeEndpoint.encode(form).utf8))
    }

    /// A code as /authorize issues it to a signed-in administrator, of a session started for it (the token endpoint
    /// redeems a code only while its session lives).
    static func code(_ h: Harness, client: String, redirect: String, scope: String = "openid offline_access",
                     challenge: String? = nil) async throws -> String {
        let (session, _) = try await SignInSessions(app: h.app).start(tenant: h.tenant.tenantId, userID: h.tenant.adminUserId,
                                                                       amr: ["fido", "mfa"], baseURL: Harness.base)
        return AuthorizationCode(tenant: h.tenant.tenantId, clientID: client, redirectURI: redirect, userID: h.tenant.adminUserId,
                                 scope: scope, nonce: nil, codeChallenge: challenge, authTime: session.authTime, sessionID: session.id,
                                 amr: session.amr, expires: session.authTime + 600).encode(app: h.app)
    }

    @Test("a web client's refresh token is not spent when presented without the client's secret")
    func refreshTokenNeedsTheClientFirst() async throws {
        try await Harness.run { h in
            let (appID, secret) = try await Self.webApp(h, try await h.accessToken())
            let code = try await Self.code(h, client: appID, redirect: Self.web)
            let first = await Self.post(h, "token", [("grant_type", "authorization_code"), ("client_id", appID), ("client_secret", secret),
                                                     ("redirect_uri", Self.web), ("code", code)])
            let refresh = try #require(first.json["refresh_token"]?.stringValue)
            let stolen = await Self.post(h, "token", [("grant_type", "refresh_token"), ("client_id", appID), ("refresh_token", refresh)])
            #expect(stolen.status == 401 && stolen.json["error"] == "invalid_client")
            // The holder of the token alone ended nothing: the client still refreshes with it.
            let genuine = await Self.post(h, "token", [("grant_type", "refresh_token"), ("client_id", appID), ("client_secret", secret),
                                                       ("refresh_token", refresh)])
            #expect(genuine.status == 200 && genuine.json["refresh_token"]?.stringValue != nil)
        }
    }

    @Test("an authorization code presented twice revokes the refresh tokens issued from it (RFC 6749 §4.1.2)")
    func codeReplayRevokes() async throws {
        try await Harness.run { h in
            let (appID, _) = try await Self.webApp(h, try await h.accessToken())
            let verifier = String(repeating: "k", count: 43)
            let challenge = WebAuthn.Base64URL.encode(Array(SHA256.hash(data: Array(verifier.utf8))))
            let code = try await Self.code(h, client: appID, redirect: Self.spa, challenge: challenge)
            let form = [("grant_type", "authorization_code"), ("client_id", appID), ("redirect_uri", Self.spa), ("code", code),
                        ("code_verifier", verifier)]
            let first = await Self.post(h, "token", form)
            let refresh = try #require(first.json["refresh_token"]?.stringValue)
            // One rotation: the family grows, and the replay must reach its newest member too.
            let rotated = await Self.post(h, "token", [("grant_type", "refresh_token"), ("client_id", appID), ("refresh_token", refresh)])
            let newest = try #require(rotated.json["refresh_token"]?.stringValue)
            let replay = await Self.post(h, "token", form)
            #expect(replay.json["error"] == "invalid_grant" && replay.json["error_codes"]?.arrayValue?.first?.intValue == 54005)
            let after = await Self.post(h, "token", [("grant_type", "refresh_token"), ("client_id", appID), ("refresh_token", newest)])
            #expect(after.json["error"] == "invalid_grant")
        }
    }

    @Test("the device code flow is public-client only: a confidential app must authenticate to redeem it")
    func deviceCodeForConfidentialClients() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let (confidential, secret) = try await Self.webApp(h, token)
            let publicApp = await h.graph("POST", "applications", token: token, json: ["displayName": "CLI", "isFallbackPublicClient": true])
            let publicID = try #require(publicApp.json["appId"]?.stringValue)
            for (client, credential, expected) in [(confidential, nil, "invalid_client"), (confidential, secret, "authorization_pending"),
                                                   (publicID, nil, "authorization_pending")] as [(String, String?, String)] {
                let started = await Self.post(h, "devicecode", [("client_id", client), ("scope", "openid User.Read")])
                let deviceCode = try #require(started.json["device_code"]?.stringValue)
                var form = [("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("client_id", client), ("device_code", deviceCode)]
                if let credential { form.append(("client_secret", credential)) }
                let polled = await Self.post(h, "token", form)
                #expect(polled.json["error"]?.stringValue == expected, "\(client == publicID ? "public" : "confidential") \(credential != nil)")
            }
        }
    }

    @Test("smart lockout: a client secret guessed from one address locks that address out, not the client's own")
    func clientSecretLockout() async throws {
        try await Harness.run { h in
            func attempt(_ secret: String, from address: String) async -> APIResponse {
                await h.clientCredentials(secret: secret, from: address)
            }
            for _ in 0..<10 { #expect(await attempt("wrong", from: "203.0.113.5").json["error"] == "invalid_client") }
            let locked = await attempt(h.tenant.clientSecret, from: "203.0.113.5")
            #expect(locked.json["error_codes"]?.arrayValue?.first?.intValue == 50053)
            #expect(locked.headers.contains { $0.name == "Retry-After" })
            #expect(await attempt(h.tenant.clientSecret, from: "198.51.100.1").status == 200)
            // The lock ends, and the next failure from the same address locks again for twice as long.
            h.clock.advance(61)
            #expect(await attempt(h.tenant.clientSecret, from: "203.0.113.5").status == 200)
        }
    }

    @Test("a delegated token carries only the consented scopes, and loses them when consent is withdrawn")
    func consentNarrowsScopes() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let (appID, secret) = try await Self.webApp(h, admin)
            let scope = "openid offline_access User.Read Directory.ReadWrite.All"
            func redeem() async throws -> JSONValue {
                let code = try await Self.code(h, client: appID, redirect: Self.web, scope: scope)
                return try JSONParser.parse(await Self.post(h, "token", [
                    ("grant_type", "authorization_code"), ("client_id", appID), ("client_secret", secret), ("redirect_uri", Self.web),
                    ("code", code)]).body)
            }
            func claims(_ token: JSONValue) throws -> [String: JSONValue] {
                let access = try #require(token["access_token"]?.stringValue)
                return try #require(JWT.decode(access)).claims
            }
            // Nothing granted: the token can do nothing in Graph, whatever the administrator who signed in may do.
            let bare = try await redeem()
            #expect(try claims(bare)["scp"] == "openid")
            let asUser = await h.graph("POST", "users", token: try #require(bare["access_token"]?.stringValue), json: [
                "accountEnabled": true, "displayName": "Mallory", "mailNickname": "mallory", "userPrincipalName": "mallory@contoso.test",
                "passwordProfile": ["password": "Str0ng!Passw0rd"]])
            #expect(asUser.status == 403)
            let sp = await h.graph("GET", "servicePrincipals", token: admin, query: [("$filter", "appId eq '\(appID)'")])
            let graphSP = await h.graph("GET", "servicePrincipals", token: admin, query: [("$filter", "appId eq '\(GraphPermissions.graphAppId)'")])
            let grant = await h.graph("POST", "oauth2PermissionGrants", token: admin, json: [
                "clientId": .string(try #require(sp.json["value"]?.arrayValue?.first?["id"]?.stringValue)), "consentType": "AllPrincipals",
                "resourceId": .string(try #require(graphSP.json["value"]?.arrayValue?.first?["id"]?.stringValue)), "scope": "User.Read"])
            #expect(grant.status == 201)
            let granted = try await redeem()
            #expect(try claims(granted)["scp"] == "openid User.Read")
            // Consent withdrawn: the next refresh carries nothing of it.
            _ = await h.graph("DELETE", "oauth2PermissionGrants/\(try #require(grant.json["id"]?.stringValue))", token: admin)
            let refreshed = try JSONParser.parse(await Self.post(h, "token", [
                ("grant_type", "refresh_token"), ("client_id", appID), ("client_secret", secret),
                ("refresh_token", try #require(granted["refresh_token"]?.stringValue))]).body)
            #expect(try claims(refreshed)["scp"] == "openid")
        }
    }

    @Test("userinfo answers the token's user with the ID token's pairwise sub and what the scopes allow (OpenID Connect Core §5.3)")
    func userInfo() async throws {
        try await Harness.run { h in
            let (appID, secret) = try await Self.webApp(h, try await h.accessToken())
            let code = try await Self.code(h, client: appID, redirect: Self.web, scope: "openid profile")
            let tokens = try JSONParser.parse(await Self.post(h, "token", [
                ("grant_type", "authorization_code"), ("client_id", appID), ("client_secret", secret), ("redirect_uri", Self.web),
                ("code", code)]).body)
            let access = try #require(tokens["access_token"]?.stringValue)
            let idText = try #require(tokens["id_token"]?.stringValue)
            let idToken = try #require(JWT.decode(idText))
            let viaHeader = await h.send("GET", "/oidc/userinfo", headers: ["authorization": "Bearer \(access)"])
            #expect(viaHeader.status == 200)
            #expect(viaHeader.json["sub"] == idToken.claims["sub"] && viaHeader.json["sub"]?.stringValue != h.tenant.adminUserId)
            #expect(viaHeader.json["preferred_username"] == idToken.claims["preferred_username"] && viaHeader.json["email"] == nil)
            let viaForm = await h.send("POST", "/oidc/userinfo", headers: ["content-type": "application/x-www-form-urlencoded"],
                                       body: Array("access_token=\(access)".utf8))
            #expect(viaForm.json["sub"] == idToken.claims["sub"])
            let missing = await h.send("GET", "/oidc/userinfo")
            #expect(missing.status == 401 && missing.headers.contains { $0.name == "WWW-Authenticate" && $0.value.hasPrefix("Bearer") })
            let forged = await h.send("GET", "/oidc/userinfo", headers: ["authorization": "Bearer \(access)x"])
            #expect(forged.status == 401 && forged.headers.contains { $0.value.contains("invalid_token") })
            // An application's token has no user to describe.
            let appToken = await h.send("GET", "/oidc/userinfo", headers: ["authorization": "Bearer \(try await h.accessToken())"])
            #expect(appToken.status == 403 && appToken.headers.contains { $0.value.contains("insufficient_scope") })
        }
    }

    @Test("a Graph token is accepted only with this deployment's exact issuer")
    func exactIssuer() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let ok = await h.graph("GET", "users", token: token)
            #expect(ok.status == 200)
            // The same token presented at another name of the server (a Host it does not answer to) is not its token.
            var request = APIRequest(method: "GET", path: "/v1.0/users", query: [], headers: ["authorization": "Bearer \(token)"], body: [],
                                     baseURL: "https://evil.example")
            request.clientAddress = "203.0.113.9"
            let elsewhere = await h.app.handle(request)
            #expect(elsewhere.status == 401 && elsewhere.errorCode == "InvalidAuthenticationToken")
        }
    }
}

@Suite("Network policy: host names, forwarded addresses and address ranges")
struct NetworkPolicyTests {
    @Test("only the configured names are answered; ports and case are normalised")
    func hosts() {
        let policy = NetworkPolicy(publicURLs: ["https://Login.Contoso.com:443/", "https://localhost:8443"])
        #expect(policy.publicURLs == ["https://login.contoso.com", "https://localhost:8443"])
        #expect(policy.baseURL(scheme: "https", host: "login.contoso.com") == "https://login.contoso.com")
        #expect(policy.baseURL(scheme: "https", host: "LOGIN.contoso.com:443") == "https://login.contoso.com")
        #expect(policy.baseURL(scheme: "https", host: "localhost:8443") == "https://localhost:8443")
        #expect(policy.baseURL(scheme: "https", host: "evil.example") == nil)
        #expect(policy.baseURL(scheme: "https", host: "login.contoso.com@evil.example") == nil)
        #expect(policy.baseURL(scheme: "http", host: "login.contoso.com") == nil)
        #expect(policy.isOwnIssuer("https://login.contoso.com/t1/v2.0", tenant: "t1", base: "https://evil.example"))
        #expect(!policy.isOwnIssuer("https://evil.example/t1/v2.0", tenant: "t1", base: "https://evil.example"))
        #expect(policy.isOwn("https://login.contoso.com/t1/oauth2/v2.0/token", base: "x"))
        #expect(!policy.isOwn("https://login.contoso.com.evil.example/t1/oauth2/v2.0/token", base: "x"))
        #expect(NetworkPolicy.loopback(scheme: "https", host: "127.0.0.1", port: 8443).first == "https://localhost:8443")
    }

    @Test("X-Forwarded-For counts only from a trusted proxy, and only up to the first untrusted hop")
    func forwarded() throws {
        let policy = NetworkPolicy(trustedProxies: [try #require(NetworkPolicy.proxyRange("10.0.0.0/8")), try #require(NetworkPolicy.proxyRange("::1"))])
        #expect(policy.clientAddress(peer: "203.0.113.1", forwardedFor: "198.51.100.1") == "203.0.113.1")
        #expect(policy.clientAddress(peer: "10.1.2.3", forwardedFor: "198.51.100.1") == "198.51.100.1")
        // A client that sends its own X-Forwarded-For through the proxy cannot choose its address.
        #expect(policy.clientAddress(peer: "10.1.2.3", forwardedFor: "1.2.3.4, 198.51.100.1") == "198.51.100.1")
        #expect(policy.clientAddress(peer: "10.1.2.3", forwardedFor: "198.51.100.1, 10.9.9.9") == "198.51.100.1")
        #expect(policy.clientAddress(peer: "::1", forwardedFor: "garbage") == "::1")
        #expect(NetworkPolicy.proxyRange("10.0.0.0/33") == nil && NetworkPolicy.proxyRange("not an address") == nil)
        // An IPv4 client seen through an IPv6 socket (::ffff:a.b.c.d) is that IPv4 address.
        #expect(policy.clientAddress(peer: "::ffff:10.1.2.3", forwardedFor: "198.51.100.1") == "198.51.100.1")
    }
}
