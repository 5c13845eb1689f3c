import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting
import WebAuthn

/// The sign-in page's endpoints, driven as its script drives them, with a software authenticator: a Temporary Access
/// Pass enrols a passkey, the passkey signs in and gets a session, and the attacks on the ceremony are refused. (The
/// browser's own proof is in interop/test_passkey_browser.py.)
@Suite("Passkey sign-in through the sign-in page's endpoints")
struct PasskeySignInTests {
    static let origin = "https://tessera.test"

    static func json(_ h: Harness, _ path: String, _ body: JSONValue) async -> APIResponse {
        await h.send("POST", "/\(h.tenant.tenantId)/\(path)", headers: ["content-type": "application/json", "origin": origin],
                     body: body.serializedBytes)
    }

    static func registration(_ response: RegistrationResponse) -> JSONValue {
        ["id": .string(response.id), "rawId": .string(WebAuthn.Base64URL.encode(response.rawID)), "type": .string(response.type),
         "response": ["clientDataJSON": .string(WebAuthn.Base64URL.encode(response.clientDataJSON)),
                      "attestationObject": .string(WebAuthn.Base64URL.encode(response.attestationObject))],
         "clientExtensionResults": [:]]
    }

    static func assertion(_ response: AuthenticationResponse) -> JSONValue {
        ["id": .string(response.id), "rawId": .string(WebAuthn.Base64URL.encode(response.rawID)), "type": .string(response.type),
         "response": ["clientDataJSON": .string(WebAuthn.Base64URL.encode(response.clientDataJSON)),
                      "authenticatorData": .string(WebAuthn.Base64URL.encode(response.authenticatorData)),
                      "signature": .string(WebAuthn.Base64URL.encode(response.signature)),
                      "userHandle": .optional(response.userHandle.map { WebAuthn.Base64URL.encode($0) })],
         "clientExtensionResults": [:]]
    }

    /// The challenge of creation options (Graph's `webauthnCredentialCreationOptions`: under `publicKey`) or request options.
    static func challenge(_ options: APIResponse) throws -> [UInt8] {
        let text = try #require((options.json["publicKey"]?["challenge"] ?? options.json["challenge"])?.stringValue)
        return try #require(WebAuthn.Base64URL.decode(text))
    }

    @Test("a pass enrols a passkey, which signs in once per challenge and opens a session; forgeries are refused and logged")
    func enrolAndSignIn() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let created = await h.graph("POST", "users", token: admin, json: [
                "accountEnabled": true, "displayName": "Adele", "mailNickname": "adele", "userPrincipalName": "adele@contoso.test",
                "passwordProfile": ["password": "Str0ng!Passw0rd"]])
            let userID = try #require(created.json["id"]?.stringValue)
            let pass = await h.graph("POST", "users/\(userID)/authentication/temporaryAccessPassMethods", token: admin,
                                     json: ["isUsableOnce": true])
            let passcode = try #require(pass.json["temporaryAccessPass"]?.stringValue)

            let tap = await Self.json(h, "login/tap", ["username": "adele@contoso.test", "temporaryAccessPass": .string(passcode)])
            let enrollment = try #require(tap.json["enrollmentToken"]?.stringValue)
            let options = await Self.json(h, "login/enroll/options", ["userId": .string(userID), "enrollmentToken": .string(enrollment)])
            #expect(options.json["publicKey"]?["rp"]?["id"] == "tessera.test")
            var authenticator = SoftAuthenticator()
            authenticator.rpID = "tessera.test"
            authenticator.origin = Self.origin
            authenticator.userHandle = Array(userID.utf8)
            var ceremony = SoftAuthenticator.Ceremony()
            ceremony.challenge = try Self.challenge(options)
            let enrolled = await Self.json(h, "login/enroll", ["userId": .string(userID), "enrollmentToken": .string(enrollment),
                                                               "credential": Self.registration(authenticator.register(ceremony))])
            #expect(enrolled.status == 201)
            // The enrolment token is spent with the registration: a second passkey needs a new pass.
            var second = SoftAuthenticator()
            second.rpID = "tessera.test"
            second.origin = Self.origin
            second.credentialID = [UInt8](repeating: 0xC2, count: 32)
            let again = await Self.json(h, "login/enroll", ["userId": .string(userID), "enrollmentToken": .string(enrollment),
                                                            "credential": Self.registration(second.register(ceremony))])
            #expect((400..<500).contains(again.status))
            let passkeys = await h.graph("GET", "users/\(userID)/authentication/fido2Methods", token: admin)
            #expect(passkeys.json["value"]?.arrayValue?.count == 1)

            // Sign in: options, then the assertion; a session cookie comes back.
            var signIn = SoftAuthenticator.Ceremony()
            signIn.challenge = try Self.challenge(await Self.json(h, "login/passkey/options", [:]))
            signIn.signCount = 2
            let assertion = Self.assertion(authenticator.authenticate(signIn))
            let signedIn = await Self.json(h, "login/passkey", assertion)
            #expect(signedIn.status == 200 && signedIn.json["userId"]?.stringValue == userID && signedIn.json["amr"] == ["fido", "mfa"])
            #expect(signedIn.headers.contains { $0.name == "Set-Cookie" && $0.value.hasPrefix(SignInSessions.cookieName(tenant: h.tenant.tenantId)) })

            // The same assertion again (its challenge spent), a wrong origin, a bad signature: refused.
            let replay = await Self.json(h, "login/passkey", assertion)
            #expect(replay.status == 400 && replay.json["error_codes"]?.arrayValue?.first == "challenge.invalid")
            var phished = SoftAuthenticator.Ceremony()
            phished.challenge = try Self.challenge(await Self.json(h, "login/passkey/options", [:]))
            phished.origin = "https://tessera.test.evil.example"
            phished.signCount = 3
            let fromElsewhere = await Self.json(h, "login/passkey", Self.assertion(authenticator.authenticate(phished)))
            #expect(fromElsewhere.status == 400 && fromElsewhere.headers.allSatisfy { $0.name != "Set-Cookie" })
            var forged = SoftAuthenticator.Ceremony()
            forged.challenge = try Self.challenge(await Self.json(h, "login/passkey/options", [:]))
            forged.corruptSignature = true
            forged.signCount = 4
            let badSignature = await Self.json(h, "login/passkey", Self.assertion(authenticator.authenticate(forged)))
            #expect(badSignature.status == 400)
            // Each attempt is in the sign-in log: the pass and the sign-in for the user, the two forgeries against the user,
            // and the replay, whose spent challenge is refused before the passkey (so the user) is looked up.
            let log = await h.graph("GET", "auditLogs/signIns", token: admin, query: [("$filter", "userId eq '\(userID)'")])
            let results = log.json["value"]?.arrayValue?.compactMap { $0["status"]?["errorCode"]?.intValue } ?? []
            #expect(results.filter { $0 == 0 }.count == 2 && results.filter { $0 != 0 }.count == 2, "\(results)")
            let replays = await h.graph("GET", "auditLogs/signIns", token: admin,
                                        query: [("$filter", "status/failureReason eq 'challenge.invalid'")])
            #expect(replays.json["value"]?.arrayValue?.count == 1)
        }
    }

    @Test("a cross-origin call to the sign-in endpoints is refused")
    func crossOrigin() async throws {
        try await Harness.run { h in
            let response = await h.send("POST", "/\(h.tenant.tenantId)/login/passkey/options",
                                        headers: ["content-type": "application/json", "origin": "https://evil.example"], body: Array("{}".utf8))
            #expect(response.status == 403)
            let form = await h.send("POST", "/\(h.tenant.tenantId)/login/tap", headers: ["content-type": "application/x-www-form-urlencoded"],
                                    body: Array("username=a&temporaryAccessPass=b".utf8))
            #expect(form.status == 400)
        }
    }
}
