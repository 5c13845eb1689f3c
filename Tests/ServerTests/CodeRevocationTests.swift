import Crypto
import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting
import WebAuthn

/// Revocation stops what was issued before it (RFC 9700 §4.14.2): an authorization code whose sign-in session ended
/// between `/authorize` and the token endpoint (a sign-out, `revokeSignInSessions`, the user disabled or deleted) is
/// refused with invalid_grant and writes no refresh token, on SQLite and PostgreSQL, on the node that issued it and on
/// another one; a refresh token or device code of a sign-in older than the user's `signInSessionsValidFromDateTime` is
/// refused too.
@Suite("An authorization code, refresh token or device code after its sign-in session ended")
struct CodeRevocationTests {
    static let verifier = String(repeating: "v", count: 43)

    /// A public client (SPA, and public client flows allowed for the device code) of the tenant; returns its appId.
    static func spa(_ h: Harness) async throws -> String {
        let admin = try await h.accessToken()
        let created = await h.graph("POST", "applications", token: admin, json: [
            "displayName": "SPA", "spa": ["redirectUris": [.string(TokenGrantHardeningTests.spa)]], "isFallbackPublicClient": true])
        let appID = try #require(created.json["appId"]?.stringValue, "\(created.text)")
        _ = await h.graph("POST", "servicePrincipals", token: admin, json: ["appId": .string(appID)])
        return appID
    }

    /// A user of the tenant who may sign in; returns its id.
    static func user(_ h: Harness, _ name: String) async throws -> String {
        let created = await h.graph("POST", "users", token: try await h.accessToken(), json: [
            "accountEnabled": true, "displayName": .string(name), "mailNickname": .string(name),
            "userPrincipalName": .string("\(name)@contoso.test"), "passwordProfile": ["password": "Str0ng!Passw0rd"]])
        return try #require(created.json["id"]?.stringValue, "\(created.text)")
    }

    /// A browser signed in as `userID` on `h` (its session cookie) and the code `/authorize` gave it, with offline_access.
    static func code(_ h: Harness, appID: String, userID: String) async throws -> (cookie: String, code: String) {
        let (_, setCookie) = try await SignInSessions(app: h.app).start(tenant: h.tenant.tenantId, userID: userID, amr: ["fido", "mfa"],
                                                                         baseURL: Harness.base)
        let cookie = String(setCookie.split(separator: ";")[0])
        let challenge = WebAuthn.Base64URL.encode(Array(SHA256.hash(data: Array(verifier.utf8))))
        let authorized = await h.send("GET", "/\(h.tenant.tenantId)/oauth2/v2.0/authorize", query: [
            ("client_id", appID), ("redirect_uri", TokenGrantHardeningTests.spa), ("response_type", "code"),
            ("scope", "openid profile offline_access"), ("state", "s"), ("code_challenge", challenge), ("code_challenge_method", "S256"),
        ].map { (name: $0.0, value: $0.1) }, headers: ["cookie": cookie])
        let location = try #require(LogoutTests.location(authorized), "\(authorized.status) \(authorized.text)")
        let code = try #require(URLComponents(string: location)?.queryItems?.first { $0.name == "code" }?.value, "\(location)")
        return (cookie, code)
    }

    static func redeem(_ h: Harness, appID: String, code: String) async -> APIResponse {
        await TokenGrantHardeningTests.post(h, "token", [
            ("grant_type", "authorization_code"), ("client_id", appID), ("redirect_uri", TokenGrantHardeningTests.spa), ("code", code),
            ("code_verifier", verifier)])
    }

    /// The user's refresh tokens in the store.
    static func refreshTokens(_ h: Harness, _ userID: String) async throws -> [RefreshTokenRecord] {
        let tenant = h.tenant.tenantId
        return try await h.app.store.read { tx in try await tx.credentials(RefreshTokenRecord.self, tenant: tenant, userID: userID) }
    }

    static func refused(_ answer: APIResponse, _ code: Int) -> Bool {
        answer.status == 400 && answer.json["error"] == "invalid_grant" && answer.json["error_codes"]?.arrayValue?.first?.intValue == Int64(code)
    }

    @Test("revokeSignInSessions on another node between /authorize and the token endpoint: the code gets invalid_grant, no refresh token is written, and the code's session cannot be used again",
          arguments: ReplayOnEveryDatabaseTests.databases)
    func revokedOnAnotherNode(_ database: String) async throws {
        try await ReplayOnEveryDatabaseTests.nodes(database) { nodes in
            let appID = try await Self.spa(nodes[0])
            let ada = try await Self.user(nodes[0], "ada")
            let (cookie, code) = try await Self.code(nodes[0], appID: appID, userID: ada)
            // This node has just read Ada for /authorize and keeps her for up to a second: the session's record, asked
            // for by the spend, is what refuses the code at once.
            #expect(await nodes[1].graph("POST", "users/\(ada)/revokeSignInSessions", token: try await nodes[1].accessToken()).status == 200)
            let answer = await Self.redeem(nodes[0], appID: appID, code: code)
            #expect(Self.refused(answer, 50133), "\(answer.text)")
            #expect(answer.json["refresh_token"] == nil && answer.json["access_token"] == nil)
            #expect(try await Self.refreshTokens(nodes[0], ada).isEmpty)
            #expect(try await LogoutTests.signedIn(nodes[1], cookie) == false)
            // The same code again is refused as before (it was never spent, and its session is still gone).
            #expect(Self.refused(await Self.redeem(nodes[1], appID: appID, code: code), 50133))
            #expect(try await Self.refreshTokens(nodes[1], ada).isEmpty)
        }
    }

    @Test("a code redeemed before revokeSignInSessions works; its refresh token is refused after it, and a new sign-in's code works again",
          arguments: ReplayOnEveryDatabaseTests.databases)
    func redeemedBeforeRevocation(_ database: String) async throws {
        try await ReplayOnEveryDatabaseTests.nodes(database) { nodes in
            let appID = try await Self.spa(nodes[0])
            let ada = try await Self.user(nodes[0], "ada")
            let (_, code) = try await Self.code(nodes[0], appID: appID, userID: ada)
            let tokens = await Self.redeem(nodes[0], appID: appID, code: code)
            #expect(tokens.status == 200, "\(tokens.text)")
            let refresh = try #require(tokens.json["refresh_token"]?.stringValue)
            #expect(try await Self.refreshTokens(nodes[0], ada).count == 1)
            nodes[0].clock.advance(2)
            #expect(await nodes[1].graph("POST", "users/\(ada)/revokeSignInSessions", token: try await nodes[1].accessToken()).status == 200)
            #expect(await CredentialRecordsTests.refresh(nodes[0], appID, refresh).json["error"] == "invalid_grant")
            // A sign-in after the revocation is not touched by it.
            nodes[0].clock.advance(2)
            let (_, again) = try await Self.code(nodes[1], appID: appID, userID: ada)
            let fresh = await Self.redeem(nodes[0], appID: appID, code: again)
            #expect(fresh.status == 200 && fresh.json["refresh_token"]?.stringValue != nil, "\(fresh.text)")
        }
    }

    @Test("a sign-out between /authorize and the token endpoint: the code gets invalid_grant and no refresh token is written; another session's code still works",
          arguments: ReplayOnEveryDatabaseTests.databases)
    func signedOut(_ database: String) async throws {
        try await ReplayOnEveryDatabaseTests.nodes(database) { nodes in
            let h = nodes[0]
            let appID = try await Self.spa(h)
            let ada = try await Self.user(h, "ada")
            let (cookie, code) = try await Self.code(h, appID: appID, userID: ada)
            let (_, other) = try await Self.code(h, appID: appID, userID: ada)
            // The user signs out in that browser (the logout page, confirmed), on the other node.
            let page = await LogoutTests.logout(nodes[1], [], cookie: cookie)
            #expect(LogoutTests.isConfirmation(page), "\(page.text)")
            _ = await LogoutTests.logout(nodes[1], LogoutTests.confirmationFields(page), cookie: cookie, post: true)
            #expect(try await LogoutTests.signedIn(nodes[1], cookie) == false)
            let answer = await Self.redeem(h, appID: appID, code: code)
            #expect(Self.refused(answer, 50133), "\(answer.text)")
            #expect(try await Self.refreshTokens(h, ada).isEmpty)
            // Only that browser's session ended: a code of the user's other session is redeemed.
            let kept = await Self.redeem(h, appID: appID, code: other)
            #expect(kept.status == 200 && kept.json["refresh_token"]?.stringValue != nil, "\(kept.text)")
        }
    }

    @Test("the user disabled, or deleted, between /authorize and the token endpoint: the code gets invalid_grant and no refresh token is written",
          arguments: ReplayOnEveryDatabaseTests.databases)
    func disabledOrDeleted(_ database: String) async throws {
        try await ReplayOnEveryDatabaseTests.nodes(database) { nodes in
            let h = nodes[0]
            let admin = try await h.accessToken()
            let appID = try await Self.spa(h)
            let ada = try await Self.user(h, "ada"), grace = try await Self.user(h, "grace")
            let (_, adaCode) = try await Self.code(h, appID: appID, userID: ada)
            let (_, graceCode) = try await Self.code(h, appID: appID, userID: grace)
            #expect(await h.graph("PATCH", "users/\(ada)", token: admin, json: ["accountEnabled": false]).status == 204)
            #expect(await h.graph("DELETE", "users/\(grace)", token: admin).status == 204)
            for (user, code) in [(ada, adaCode), (grace, graceCode)] {
                let answer = await Self.redeem(h, appID: appID, code: code)
                #expect(Self.refused(answer, 50057), "\(answer.text)")
                #expect(try await Self.refreshTokens(h, user).isEmpty)
            }
        }
    }

    @Test("a code, refresh token or device code of a sign-in older than the user's signInSessionsValidFromDateTime (one that raced the revocation's deletions) is refused",
          arguments: ReplayOnEveryDatabaseTests.databases)
    func olderThanValidFrom(_ database: String) async throws {
        try await ReplayOnEveryDatabaseTests.nodes(database) { nodes in
            let h = nodes[0], tenant = h.tenant.tenantId
            let appID = try await Self.spa(h)
            let ada = try await Self.user(h, "ada")
            let (_, first) = try await Self.code(h, appID: appID, userID: ada)
            let refresh = try #require(await Self.redeem(h, appID: appID, code: first).json["refresh_token"]?.stringValue)
            let (_, code) = try await Self.code(h, appID: appID, userID: ada)
            let (session, _) = try await SignInSessions(app: h.app).start(tenant: tenant, userID: ada, amr: ["fido"], baseURL: Harness.base)
            let started = await TokenGrantHardeningTests.post(h, "devicecode", [("client_id", appID), ("scope", "openid offline_access")])
            let userCode = try #require(started.json["user_code"]?.stringValue, "\(started.text)")
            let deviceCode = try #require(started.json["device_code"]?.stringValue)
            #expect(try await DeviceCodes(app: h.app).approve(tenant: tenant, userCode: userCode, session: session))
            // What `revokeSignInSessions` writes last, without the deletions before it: as if each of these had been
            // written by a request that raced them.
            h.clock.advance(2)
            _ = try await nodes[1].app.directory.update(tenant: tenant, id: ada, kind: .user, patch: [
                "signInSessionsValidFromDateTime": .string(Timestamp.format(h.clock.now))], actor: .system, allowReadOnly: true)
            // The node that wrote it refuses the code at once (node 0 may keep Ada, read for /authorize, for up to a second).
            #expect(Self.refused(await Self.redeem(nodes[1], appID: appID, code: code), 50173))
            #expect(Self.refused(await CredentialRecordsTests.refresh(h, appID, refresh), 50173))
            let polled = await TokenGrantHardeningTests.post(h, "token", [
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("client_id", appID), ("device_code", deviceCode)])
            #expect(Self.refused(polled, 50173), "\(polled.text)")
            // No refresh token issued for the code or the device code: only the first code's family (its rotation spent
            // the token before the user was read, as for a disabled user).
            #expect(Set(try await Self.refreshTokens(h, ada).map(\.familyID)).count == 1)
        }
    }
}
