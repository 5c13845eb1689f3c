import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting
import WebAuthn

/// What a passkey sign-in reads and writes once it is cached or skipped: its user kept between the passkey, `/authorize`
/// and the token endpoint (read again after any change to the tenant), a counterless passkey left unwritten, and a
/// session's sign-in to an app recorded once.
@Suite("Sign-in path: cached user, unwritten passkeys, session clients recorded once")
struct SignInPathTests {
    /// A web app with a secret and an administrator's consent, and a user (not the administrator) with a session.
    struct Setup {
        let access: InteractiveAccessTests.Setup
        let secret: String
        let userID: String
    }

    static func setup(_ h: Harness, _ admin: String) async throws -> Setup {
        let base = try await InteractiveAccessTests.setup(h, admin)
        let secret = try await InteractiveAccessTests.secret(h, base, admin: admin)
        let created = await h.graph("POST", "users", token: admin, json: [
            "accountEnabled": true, "displayName": "Judy", "mailNickname": "judy",
            "userPrincipalName": "judy@contoso.test", "passwordProfile": ["password": "Str0ng!Passw0rd"]])
        let userID = try #require(created.json["id"]?.stringValue)
        let (_, setCookie) = try await SignInSessions(app: h.app).start(tenant: h.tenant.tenantId, userID: userID,
                                                                        amr: ["fido", "mfa"], baseURL: Harness.base)
        let access = InteractiveAccessTests.Setup(appID: base.appID, groupID: base.groupID, office: base.office,
                                                  cookie: String(setCookie.split(separator: ";")[0]))
        return Setup(access: access, secret: secret, userID: userID)
    }

    static func redeem(_ h: Harness, _ s: Setup, code: String) async -> APIResponse {
        await InteractiveAccessTests.token(h, [("grant_type", "authorization_code"), ("client_id", s.access.appID), ("client_secret", s.secret),
                                               ("redirect_uri", InteractiveAccessTests.web), ("code", code)], from: "203.0.113.80")
    }

    /// Transactions of `kind` ("read" or "write") the store has run so far (the telemetry's count of them).
    static func transactions(_ h: Harness, _ kind: String) throws -> Int {
        let text = String(decoding: h.app.telemetry.exposition(), as: UTF8.self)
        let line = text.split(separator: "\n").first { $0.hasPrefix("tessera_store_transaction_duration_seconds_count") && $0.contains("kind=\"\(kind)\"") }
        return Int(try #require(line?.split(separator: " ").last.map(String.init))) ?? -1
    }

    @Test("the sign-in path reads a user once, and again after a change to the tenant, which it then sees")
    func userReadOnceUntilAChange() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let s = try await Self.setup(h, admin)
            let tenant = h.tenant.tenantId
            let reads = try Self.transactions(h, "read")
            #expect(try await h.app.activeSignInUser(tenant: tenant, id: s.userID)?.body["displayName"] == "Judy")
            #expect(try await h.app.activeSignInUser(tenant: tenant, id: s.userID.uppercased()) != nil)
            #expect(try Self.transactions(h, "read") - reads == 1)
            #expect(await h.graph("PATCH", "users/\(s.userID)", token: admin, json: ["displayName": "Judy B."]).status == 204)
            let again = try Self.transactions(h, "read")
            #expect(try await h.app.activeSignInUser(tenant: tenant, id: s.userID)?.body["displayName"] == "Judy B.")
            #expect(try Self.transactions(h, "read") - again == 1)
            // Not a user, or no one: nothing.
            #expect(try await h.app.signInUser(tenant: tenant, id: s.access.groupID) == nil)
            #expect(try await h.app.signInUser(tenant: tenant, id: Identifier.make()) == nil)
        }
    }

    @Test("a user disabled after signing in is refused at once: its session no longer gets a code, its code no longer gets tokens")
    func disabledUserRefusedAtOnce() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let s = try await Self.setup(h, admin)
            // Two sign-ins to the app: the second is served from what the first read.
            let first = try InteractiveAccessTests.code(await InteractiveAccessTests.authorize(h, s.access, from: "203.0.113.80"))
            #expect(await Self.redeem(h, s, code: first).status == 200)
            let code = try InteractiveAccessTests.code(await InteractiveAccessTests.authorize(h, s.access, from: "203.0.113.80"))
            let disabled = await h.graph("PATCH", "users/\(s.userID)", token: admin, json: ["accountEnabled": false])
            #expect(disabled.status == 204, "\(disabled.text)")
            // The code issued before: refused, the user read again after the change.
            let tokens = await Self.redeem(h, s, code: code)
            #expect(tokens.json["error"] == "invalid_grant" && tokens.json["error_codes"]?.arrayValue?.first?.intValue == 50057, "\(tokens.text)")
            // The session: no longer current, so the browser goes to the sign-in page instead of getting a code.
            let again = await InteractiveAccessTests.authorize(h, s.access, from: "203.0.113.80")
            #expect(again.status == 302)
            #expect(InteractiveAccessTests.location(again)?.contains("/login?") == true, "\(InteractiveAccessTests.location(again) ?? "")")
            #expect(InteractiveAccessTests.location(again)?.contains("code=") == false)
        }
    }

    @Test("a user deleted after signing in is refused at once at /authorize")
    func deletedUserRefusedAtOnce() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let s = try await Self.setup(h, admin)
            _ = try InteractiveAccessTests.code(await InteractiveAccessTests.authorize(h, s.access, from: "203.0.113.81"))
            #expect(await h.graph("DELETE", "users/\(s.userID)", token: admin).status == 204)
            let again = await InteractiveAccessTests.authorize(h, s.access, from: "203.0.113.81")
            #expect(InteractiveAccessTests.location(again)?.contains("code=") == false, "\(InteractiveAccessTests.location(again) ?? "")")
        }
    }

    @Test("a session's first sign-in to an app queues its record, written with the sign-in records in their batch; the next ones queue nothing, and one record stays")
    func sessionClientRecordedOnce() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let s = try await Self.setup(h, admin)
            // Each authorize's sign-in record and session-client record are written later, together with others (flushed
            // before each count).
            try await h.app.directory.flushSignIns()
            let before = try PasskeySignInCommitTests.writes(h)
            _ = try InteractiveAccessTests.code(await InteractiveAccessTests.authorize(h, s.access, from: "203.0.113.82"))
            #expect(try PasskeySignInCommitTests.writes(h) - before == 0)
            try await h.app.directory.flushSignIns()
            #expect(try PasskeySignInCommitTests.writes(h) - before == 1)
            for _ in 0..<3 {
                try await h.app.directory.flushSignIns()
                let before = try PasskeySignInCommitTests.writes(h)
                _ = try InteractiveAccessTests.code(await InteractiveAccessTests.authorize(h, s.access, from: "203.0.113.82"))
                #expect(try PasskeySignInCommitTests.writes(h) - before == 0)
            }
            let cookieID = try #require(s.access.cookie.split(separator: "=").last?.split(separator: ".").first.map(String.init))
            let records = try await SessionClients(app: h.app).of(session: cookieID, tenant: h.tenant.tenantId)
            #expect(records.map(\.clientID) == [s.access.appID])
            // Recording itself: a new session's first app is queued, with no read or write of its own; the same again is nothing.
            let tenant = h.tenant.tenantId
            let (session, _) = try await SignInSessions(app: h.app).start(tenant: tenant, userID: s.userID, amr: ["fido", "mfa"], baseURL: Harness.base)
            for expected in [(reads: 0, writes: 0), (reads: 0, writes: 0)] {
                let (reads, writes) = (try Self.transactions(h, "read"), try Self.transactions(h, "write"))
                try await SessionClients(app: h.app).record(session, clientID: s.access.appID, tenant: tenant, baseURL: Harness.base)
                #expect(try Self.transactions(h, "read") - reads == expected.reads)
                #expect(try Self.transactions(h, "write") - writes == expected.writes)
            }
            #expect(try await SessionClients(app: h.app).of(session: session.id, tenant: tenant).count == 1)
        }
    }

    @Test("a second process's first sign-in of a session already recorded (by another node) finds the record and adds none")
    func sessionClientFoundWhenRecordedElsewhere() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let s = try await Self.setup(h, admin)
            let cookieID = try #require(s.access.cookie.split(separator: "=").last?.split(separator: ".").first.map(String.init))
            let session = try #require(try await SignInSessions(app: h.app).current(
                APIRequest(method: "GET", path: "/", query: [], headers: ["cookie": s.access.cookie], body: [], baseURL: Harness.base),
                tenant: h.tenant.tenantId))
            // As another node would have: the record written straight to the store, this process not knowing of it.
            let record = SessionClientRecord(sessionID: cookieID, userID: s.userID, clientID: s.access.appID,
                                             expires: h.clock.now.addingTimeInterval(3600), baseURL: Harness.base)
            let tenant = h.tenant.tenantId
            try await h.app.store.write { tx in try await tx.insertCredential(record, tenant: tenant) }
            try await SessionClients(app: h.app).record(session, clientID: s.access.appID, tenant: tenant, baseURL: Harness.base)
            #expect(try await SessionClients(app: h.app).of(session: cookieID, tenant: tenant).count == 1)
        }
    }

    @Test("a logout right after a session's first sign-in to an app, its record still queued, still frames the app's front-channel logout URL")
    func logoutAfterQueuedSessionClient() async throws {
        try await Harness.run { h in
            let tenant = h.tenant.tenantId
            let appID = try await LogoutTests.application(h, frontChannel: LogoutTests.frontChannel)
            await h.app.directory.holdSignInWritesUntilFlushed(true)
            // A sign-in whose record is queued: not in the store until a flush, which writes it.
            let queued = try await LogoutTests.signIn(h, appID: appID)
            let queuedSID = try #require(queued.claims["sid"]?.stringValue)
            func stored(_ sid: String) async throws -> [SessionClientRecord] {
                try await h.app.store.read { tx in try await tx.credentials(SessionClientRecord.self, tenant: tenant, family: sid) }
            }
            #expect(try await stored(queuedSID).isEmpty)
            try await h.app.directory.flushSignIns()
            #expect(try await stored(queuedSID).map(\.clientID) == [appID])
            // Another session signs in and logs out at once, its record never flushed by a timer: the logout finds the app.
            let browser = try await LogoutTests.signIn(h, appID: appID)
            let sid = try #require(browser.claims["sid"]?.stringValue)
            #expect(try await stored(sid).isEmpty)
            let answer = await LogoutTests.logout(h, [("id_token_hint", browser.idToken), ("post_logout_redirect_uri", LogoutTests.signedOut)],
                                                  cookie: browser.cookie)
            let issuer = try #require(await LogoutTests.discovery(h)["issuer"]?.stringValue)
            let frame = LogoutTests.frontChannel + "&" + AuthorizeEndpoint.encode([("iss", issuer), ("sid", sid)])
            #expect(answer.status == 200 && answer.text.contains("src=\"\(Page.escape(frame))\""), "\(answer.status) \(answer.text)")
            // The record went with the session.
            #expect(try await stored(sid).isEmpty)
            try await h.app.directory.flushSignIns()
            #expect(try await stored(sid).isEmpty)
            await h.app.directory.holdSignInWritesUntilFlushed(false)
        }
    }

    /// Signs `authenticator` in with `signCount`; returns the response.
    static func signIn(_ h: Harness, _ authenticator: SoftAuthenticator, signCount: UInt32) async throws -> APIResponse {
        var ceremony = SoftAuthenticator.Ceremony()
        ceremony.challenge = try PasskeySignInTests.challenge(await PasskeySignInTests.json(h, "login/passkey/options", [:]))
        ceremony.signCount = signCount
        return await PasskeySignInTests.json(h, "login/passkey", PasskeySignInTests.assertion(authenticator.authenticate(ceremony)))
    }

    @Test("a passkey without a counter signs in without its Graph object being written; one with a counter moves it on, and a counter behind is refused")
    func counterlessPasskeyUnwritten() async throws {
        try await Harness.run { h in
            let (userID, authenticator) = try await PasskeySignInCommitTests.enrolled(h, "kim")
            let tenant = h.tenant.tenantId
            func method() async throws -> StoredObject { try #require(try await h.app.directory.fido2Methods(tenant: tenant, userID: userID).first) }
            let enrolled = try await method()
            for _ in 0..<2 {
                try await h.app.directory.flushSignIns()
                let before = try PasskeySignInCommitTests.writes(h)
                #expect(try await Self.signIn(h, authenticator, signCount: 0).status == 200)
                #expect(try PasskeySignInCommitTests.writes(h) - before == 1)  // the challenge and the session
                #expect(try await method().version == enrolled.version)
            }
            #expect(try await PasskeySignInCommitTests.sessions(h, of: userID) == 2)
            // Once it counts, the counter is stored (compare-and-set), and one that goes back is a possible clone.
            #expect(try await Self.signIn(h, authenticator, signCount: 4).status == 200)
            let counted = try await method()
            #expect(counted.version == enrolled.version + 1 && counted.body["_signCount"]?.intValue == 4)
            let behind = try await Self.signIn(h, authenticator, signCount: 0)
            #expect(behind.status == 400 && behind.json["error_codes"]?.arrayValue?.first == "assertion.possibleClone", "\(behind.text)")
            #expect(try await method().body["_signCount"]?.intValue == 4)
        }
    }
}
