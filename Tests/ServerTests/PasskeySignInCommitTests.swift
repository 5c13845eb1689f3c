import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting
import WebAuthn

/// A passkey sign-in commits once: the challenge spent, the counter moved on and the session started in one
/// transaction, so the same response sent many times at once opens exactly one session, and a counter that went back
/// is told apart from a replay by whether its challenge was already spent.
@Suite("Passkey sign-in: one commit")
struct PasskeySignInCommitTests {
    /// A user with one enrolled passkey on `authenticator` (a Temporary Access Pass, then the enrolment).
    static func enrolled(_ h: Harness, _ name: String) async throws -> (userID: String, authenticator: SoftAuthenticator) {
        let admin = try await h.accessToken()
        let created = await h.graph("POST", "users", token: admin, json: [
            "accountEnabled": true, "displayName": .string(name), "mailNickname": .string(name),
            "userPrincipalName": .string("\(name)@contoso.test"), "passwordProfile": ["password": "Str0ng!Passw0rd"]])
        let userID = try #require(created.json["id"]?.stringValue)
        let pass = await h.graph("POST", "users/\(userID)/authentication/temporaryAccessPassMethods", token: admin, json: [:])
        let tap = await PasskeySignInTests.json(h, "login/tap", ["username": .string("\(name)@contoso.test"),
                                                                "temporaryAccessPass": pass.json["temporaryAccessPass"] ?? nil])
        let enrollment = try #require(tap.json["enrollmentToken"]?.stringValue)
        let options = await PasskeySignInTests.json(h, "login/enroll/options", ["userId": .string(userID), "enrollmentToken": .string(enrollment)])
        var authenticator = SoftAuthenticator()
        authenticator.rpID = "tessera.test"
        authenticator.origin = PasskeySignInTests.origin
        authenticator.userHandle = Array(userID.utf8)
        var ceremony = SoftAuthenticator.Ceremony()
        ceremony.challenge = try PasskeySignInTests.challenge(options)
        ceremony.signCount = 0  // as synced passkeys register: no counter
        let registered = await PasskeySignInTests.json(h, "login/enroll", [
            "userId": .string(userID), "enrollmentToken": .string(enrollment),
            "credential": PasskeySignInTests.registration(authenticator.register(ceremony))])
        #expect(registered.status == 201, "\(registered.text)")
        return (userID, authenticator)
    }

    static func sessions(_ h: Harness, of userID: String) async throws -> Int {
        let tenant = h.tenant.tenantId
        return try await h.app.store.read { tx in
            try await tx.credentials(SignInSessionRecord.self, tenant: tenant, userID: userID)
        }.count
    }

    @Test("the same response sent eight times at once opens exactly one session; the others are told their challenge is spent")
    func concurrentReplays() async throws {
        try await Harness.run { h in
            let (userID, authenticator) = try await Self.enrolled(h, "grace")
            var ceremony = SoftAuthenticator.Ceremony()
            ceremony.challenge = try PasskeySignInTests.challenge(await PasskeySignInTests.json(h, "login/passkey/options", [:]))
            ceremony.signCount = 0  // a synced passkey's counter stays 0: only the challenge stops a replay
            let assertion = PasskeySignInTests.assertion(authenticator.authenticate(ceremony))
            let answers = await withTaskGroup(of: APIResponse.self) { group in
                for _ in 0..<8 { group.addTask { await PasskeySignInTests.json(h, "login/passkey", assertion) } }
                return await group.reduce(into: [APIResponse]()) { $0.append($1) }
            }
            #expect(answers.filter { $0.status == 200 }.count == 1, "\(answers.map(\.text))")
            #expect(answers.filter { $0.status == 400 && $0.json["error_codes"]?.arrayValue?.first == "challenge.invalid" }.count == 7)
            #expect(answers.filter { $0.headers.contains { $0.name == "Set-Cookie" } }.count == 1)
            #expect(try await Self.sessions(h, of: userID) == 1)
        }
    }

    @Test("a counter that went back with a fresh challenge is a possible clone (the challenge spent, no session); the same response again is a replay")
    func cloneOrReplay() async throws {
        try await Harness.run { h in
            let (userID, authenticator) = try await Self.enrolled(h, "heidi")
            var first = SoftAuthenticator.Ceremony()
            first.challenge = try PasskeySignInTests.challenge(await PasskeySignInTests.json(h, "login/passkey/options", [:]))
            first.signCount = 10
            #expect(await PasskeySignInTests.json(h, "login/passkey", PasskeySignInTests.assertion(authenticator.authenticate(first))).status == 200)
            var behind = SoftAuthenticator.Ceremony()
            behind.challenge = try PasskeySignInTests.challenge(await PasskeySignInTests.json(h, "login/passkey/options", [:]))
            behind.signCount = 5
            let cloned = PasskeySignInTests.assertion(authenticator.authenticate(behind))
            let clone = await PasskeySignInTests.json(h, "login/passkey", cloned)
            #expect(clone.status == 400 && clone.json["error_codes"]?.arrayValue?.first == "assertion.possibleClone")
            let again = await PasskeySignInTests.json(h, "login/passkey", cloned)
            #expect(again.status == 400 && again.json["error_codes"]?.arrayValue?.first == "challenge.invalid")
            #expect(try await Self.sessions(h, of: userID) == 1)
        }
    }

    /// Write transactions the store has run so far (the telemetry's count of them).
    static func writes(_ h: Harness) throws -> Int {
        let text = String(decoding: h.app.telemetry.exposition(), as: UTF8.self)
        let line = text.split(separator: "\n").first { $0.hasPrefix("tessera_store_transaction_duration_seconds_count") && $0.contains("kind=\"write\"") }
        return Int(try #require(line?.split(separator: " ").last.map(String.init))) ?? -1
    }

    @Test("finishing a passkey sign-in is one write transaction: the challenge, the counter and the session commit together")
    func oneWrite() async throws {
        try await Harness.run { h in
            let (userID, authenticator) = try await Self.enrolled(h, "ivan")
            var ceremony = SoftAuthenticator.Ceremony()
            ceremony.challenge = try PasskeySignInTests.challenge(await PasskeySignInTests.json(h, "login/passkey/options", [:]))
            ceremony.signCount = 7
            let assertion = PasskeySignInTests.assertion(authenticator.authenticate(ceremony))
            try await h.app.directory.flushSignIns()  // earlier sign-in records are written now, not during the count
            let before = try Self.writes(h)
            let signedIn = await PasskeySignInTests.json(h, "login/passkey", assertion)
            #expect(signedIn.status == 200)
            #expect(try Self.writes(h) - before == 1)
            #expect(try await Self.sessions(h, of: userID) == 1)
            let methods = try await h.app.directory.fido2Methods(tenant: h.tenant.tenantId, userID: userID)
            #expect(methods.first?.body["_signCount"]?.intValue == 7)
        }
    }

    @Test("redeeming a code is one write transaction: the code spent and its refresh token issued together")
    func codeForTokensIsOneWrite() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let s = try await InteractiveAccessTests.setup(h, admin)
            let secret = try await InteractiveAccessTests.secret(h, s, admin: admin)
            let code = try InteractiveAccessTests.code(await InteractiveAccessTests.authorize(h, s, from: "203.0.113.70", scope: "openid offline_access"))
            let form = [("grant_type", "authorization_code"), ("client_id", s.appID), ("client_secret", secret),
                        ("redirect_uri", InteractiveAccessTests.web), ("code", code)]
            func redeem() async -> APIResponse { await InteractiveAccessTests.token(h, form, from: "203.0.113.70") }
            try await h.app.directory.flushSignIns()  // earlier sign-in records are written now, not during the count
            let before = try Self.writes(h)
            let tokens = await redeem()
            #expect(tokens.status == 200 && tokens.json["refresh_token"] != nil, "\(tokens.text)")
            #expect(try Self.writes(h) - before == 1)
            // The code a second time: refused, and the refresh token it was exchanged for is revoked with it.
            #expect(await redeem().json["error_codes"]?.arrayValue?.first?.intValue == 54005)
            let refreshed = await InteractiveAccessTests.token(h, [("grant_type", "refresh_token"), ("client_id", s.appID), ("client_secret", secret),
                                                                   ("refresh_token", tokens.json["refresh_token"]?.stringValue ?? "")], from: "203.0.113.70")
            #expect(refreshed.json["error"] == "invalid_grant")
        }
    }
}
