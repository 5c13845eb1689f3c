import Crypto
import Foundation
import Testing
@testable import Server
@testable import Store
import TesseraCore
import TesseraTesting
import WebAuthn

/// Sessions, refresh tokens and device codes live in the credential store, never in the Graph objects table, and are
/// spent, rotated and revoked through it as the flows require.
@Suite("Credential records through the app")
struct CredentialRecordsTests {
    static let verifier = String(repeating: "k", count: 43)

    /// A public client's refresh token for the tenant's administrator, from an authorization code.
    static func refreshToken(_ h: Harness) async throws -> (appID: String, token: String) {
        let admin = try await h.accessToken()
        let spa = await h.graph("POST", "applications", token: admin, json: [
            "displayName": "SPA", "spa": ["redirectUris": [.string(TokenGrantHardeningTests.spa)]]])
        let appID = try #require(spa.json["appId"]?.stringValue)
        _ = await h.graph("POST", "servicePrincipals", token: admin, json: ["appId": .string(appID)])
        let challenge = WebAuthn.Base64URL.encode(Array(SHA256.hash(data: Array(verifier.utf8))))
        let code = try await TokenGrantHardeningTests.code(h, client: appID, redirect: TokenGrantHardeningTests.spa, challenge: challenge)
        let exchanged = await TokenGrantHardeningTests.post(h, "token", [
            ("grant_type", "authorization_code"), ("client_id", appID), ("redirect_uri", TokenGrantHardeningTests.spa), ("code", code),
            ("code_verifier", verifier)])
        return (appID, try #require(exchanged.json["refresh_token"]?.stringValue, "\(exchanged.text)"))
    }

    static func refresh(_ h: Harness, _ appID: String, _ token: String) async -> APIResponse {
        await TokenGrantHardeningTests.post(h, "token", [("grant_type", "refresh_token"), ("client_id", appID), ("refresh_token", token)])
    }

    @Test("after a sign-in, a code exchange, a refresh and a device code, the objects table holds none of them")
    func nothingInTheObjectsTable() async throws {
        try await Harness.run { h in
            let tenant = h.tenant.tenantId, admin = h.tenant.adminUserId
            let (session, _) = try await SignInSessions(app: h.app).start(tenant: tenant, userID: admin, amr: ["fido"], baseURL: Harness.base)
            let (appID, token) = try await Self.refreshToken(h)
            #expect(await Self.refresh(h, appID, token).status == 200)
            let started = await TokenGrantHardeningTests.post(h, "devicecode", [("client_id", appID), ("scope", "openid")])
            let userCode = try #require(started.json["user_code"]?.stringValue)

            let legacy = ["refreshToken", "signInSession", "deviceCode"].map { ObjectKind(rawValue: $0) }
            let (objects, sessions, tokens, device) = try await h.app.store.read { tx in
                (try await tx.query(ObjectQuery(tenant: tenant, kinds: legacy)),
                 try await tx.credentials(SignInSessionRecord.self, tenant: tenant, userID: admin),
                 try await tx.credentials(RefreshTokenRecord.self, tenant: tenant, userID: admin),
                 try await tx.credential(DeviceCodeRecord.self, tenant: tenant, handle: userCode))
            }
            #expect(objects.isEmpty)
            #expect(sessions.count == 2 && sessions.contains { $0.id == session.id })  // this one and the one the code came from
            #expect(tokens.count == 2 && Set(tokens.map(\.state)) == [.used, .unused] && Set(tokens.map(\.familyID)).count == 1)
            #expect(device?.state == .pending)
            // Nor does Graph find them by id (getByIds reads objects of any kind: it answered these while they were objects).
            // A Temporary Access Pass is a Graph object, but an authentication method, not a directory object: not found either.
            let graph = try await h.accessToken()
            let pass = await h.graph("POST", "users/\(admin)/authentication/temporaryAccessPassMethods", token: graph, json: [:])
            let deviceID = try #require(started.json["device_code"]?.stringValue?.split(separator: ".").first.map(String.init))
            let ids = [session.id, deviceID, try #require(pass.json["id"]?.stringValue)] + tokens.map(\.id)
            let found = await h.graph("POST", "directoryObjects/getByIds", token: graph, json: ["ids": .array((ids + [admin]).map { .string($0) })])
            #expect(found.status == 200 && found.json["value"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [admin], "\(found.text)")
        }
    }

    @Test("one refresh token presented eight times at once: one rotation, and the reuse revokes the successor too")
    func concurrentReuseRevokesTheFamily() async throws {
        try await Harness.run { h in
            let (appID, token) = try await Self.refreshToken(h)
            let answers = await withTaskGroup(of: APIResponse.self) { group in
                for _ in 0..<8 { group.addTask { await Self.refresh(h, appID, token) } }
                return await group.reduce(into: [APIResponse]()) { $0.append($1) }
            }
            #expect(answers.filter { $0.status == 200 }.count == 1, "\(answers.map(\.text))")
            #expect(answers.filter { $0.json["error"] == "invalid_grant" }.count == 7)
            let successor = try #require(answers.first { $0.status == 200 }?.json["refresh_token"]?.stringValue)
            // Spent and successor both committed before any reuse was seen, so the revocation took the successor.
            #expect(await Self.refresh(h, appID, successor).json["error"] == "invalid_grant")
            let left = try await h.app.store.read { tx in
                try await tx.credentials(RefreshTokenRecord.self, tenant: h.tenant.tenantId, userID: h.tenant.adminUserId)
            }
            #expect(left.isEmpty)
        }
    }

    @Test("a refresh token presented with another client's id is refused and not spent")
    func wrongClientDoesNotSpend() async throws {
        try await Harness.run { h in
            let (appID, token) = try await Self.refreshToken(h)
            #expect(await Self.refresh(h, Identifier.make(), token).json["error"] == "invalid_grant")
            #expect(await Self.refresh(h, appID, token).status == 200)
        }
    }

    @Test("revokeSignInSessions deletes every session, refresh token and approved device code of the user, and no one else's")
    func revokeSignInSessions() async throws {
        try await Harness.run { h in
            let tenant = h.tenant.tenantId, admin = h.tenant.adminUserId
            let graph = try await h.accessToken()
            let other = await h.graph("POST", "users", token: graph, json: [
                "accountEnabled": true, "displayName": "Grace", "mailNickname": "grace", "userPrincipalName": "grace@contoso.test",
                "passwordProfile": ["password": "Str0ng!Passw0rd"]])
            let grace = try #require(other.json["id"]?.stringValue)
            let sessions = SignInSessions(app: h.app)
            let (mine, _) = try await sessions.start(tenant: tenant, userID: admin, amr: ["fido"], baseURL: Harness.base)
            let (theirs, _) = try await sessions.start(tenant: tenant, userID: grace, amr: ["fido"], baseURL: Harness.base)
            let (appID, token) = try await Self.refreshToken(h)
            let started = await TokenGrantHardeningTests.post(h, "devicecode", [("client_id", appID), ("scope", "openid")])
            let userCode = try #require(started.json["user_code"]?.stringValue)
            #expect(try await DeviceCodes(app: h.app).approve(tenant: tenant, userCode: userCode, session: mine))

            #expect(await h.graph("POST", "users/\(admin)/revokeSignInSessions", token: graph).status == 200)
            let (left, device, kept) = try await h.app.store.read { tx in
                (try await tx.credentials(SignInSessionRecord.self, tenant: tenant, userID: admin).count
                    + (try await tx.credentials(RefreshTokenRecord.self, tenant: tenant, userID: admin).count),
                 try await tx.credential(DeviceCodeRecord.self, tenant: tenant, handle: userCode),
                 try await tx.credential(SignInSessionRecord.self, tenant: tenant, id: theirs.id))
            }
            #expect(left == 0 && device == nil && kept?.userID == grace)
            #expect(await Self.refresh(h, appID, token).json["error"] == "invalid_grant")
        }
    }

    @Test("after the upgrade, a session cookie and a refresh token the last release issued still work")
    func upgradedRecordsStillWork() async throws {
        try await Harness.run { h in
            let tenant = h.tenant.tenantId, admin = h.tenant.adminUserId
            let store = try #require((h.app.store as? InstrumentedStore)?.base as? SQLDirectoryStore)
            let spa = await h.graph("POST", "applications", token: try await h.accessToken(), json: [
                "displayName": "SPA", "spa": ["redirectUris": [.string(TokenGrantHardeningTests.spa)]]])
            let appID = try #require(spa.json["appId"]?.stringValue)
            _ = await h.graph("POST", "servicePrincipals", token: try await h.accessToken(), json: ["appId": .string(appID)])
            // The schema and the records as the last release had them (RefreshTokens.issue, SignInSessions.start).
            try await store.backend.withWriteSession { session in
                _ = try await session.execute("DROP TABLE credential_records", [])
                _ = try await session.execute("DELETE FROM schema_migrations WHERE version IN (?, ?)",
                                              [.int(Int64(Migrations.credentialStep)), .int(Int64(Migrations.temporaryAccessPassStep))])
            }
            let tokenID = Identifier.make(), sessionID = Identifier.make()
            let expires = Timestamp.format(h.clock.now.addingTimeInterval(3600)), now = Int64(h.clock.now.timeIntervalSince1970)
            try await store.write { tx in
                try await tx.insert(StoredObject(tenant: tenant, id: tokenID, kind: ObjectKind(rawValue: "refreshToken"), body: [
                    "id": .string(tokenID), "_digest": .string(Secrets.digest("the secret")), "_userId": .string(admin),
                    "_clientId": .string(appID), "_redirectUri": .string(TokenGrantHardeningTests.spa), "_scope": "openid offline_access",
                    "_sessionId": .string(sessionID), "_amr": .strings(["fido", "mfa"]), "_aaguid": nil, "_acrs": .strings([]),
                    "_authTime": .int(now), "_confidential": false, "family": .string(tokenID), "_expires": .string(expires), "_used": false,
                    "issuedForCode": nil,
                ]))
                try await tx.link(tenant: tenant, source: admin, relation: "refreshTokens", target: tokenID)
                try await tx.insert(StoredObject(tenant: tenant, id: sessionID, kind: ObjectKind(rawValue: "signInSession"), body: [
                    "id": .string(sessionID), "_userId": .string(admin), "_authTime": .int(now), "_amr": .strings(["fido"]),
                    "_aaguid": nil, "_expires": .string(expires),
                ]))
                try await tx.link(tenant: tenant, source: admin, relation: "signInSessions", target: sessionID)
            }
            try await h.app.store.migrate()

            let sessions = SignInSessions(app: h.app)
            let cookie = "\(SignInSessions.cookieName(tenant: tenant))=\(sessionID).\(sessions.tag(tenant, sessionID))"
            let request = APIRequest(method: "GET", path: "/\(tenant)/devicelogin", query: [], headers: ["cookie": cookie], body: [],
                                     baseURL: Harness.base)
            #expect(try await sessions.current(request, tenant: tenant)?.userID == admin)
            let refreshed = await Self.refresh(h, appID, "\(tokenID).the secret")
            #expect(refreshed.status == 200 && refreshed.json["refresh_token"]?.stringValue != nil, "\(refreshed.text)")
            // Spent: presented again it is a reuse.
            #expect(await Self.refresh(h, appID, "\(tokenID).the secret").json["error"] == "invalid_grant")
        }
    }

    @Test("the hourly housekeeping sweeps expired sessions and tokens and keeps live ones")
    func sweep() async throws {
        try await Harness.run { h in
            let tenant = h.tenant.tenantId, admin = h.tenant.adminUserId
            let sessions = SignInSessions(app: h.app)
            let (old, _) = try await sessions.start(tenant: tenant, userID: admin, amr: ["fido"], baseURL: Harness.base)
            h.clock.advance(SignInSessions.lifetime + 1)
            let (fresh, _) = try await sessions.start(tenant: tenant, userID: admin, amr: ["fido"], baseURL: Harness.base)
            let failures = await RetentionService(app: h.app).sweep()
            #expect(failures.isEmpty, "\(failures)")
            let left = try await h.app.store.read { tx in try await tx.credentials(SignInSessionRecord.self, tenant: tenant, userID: admin) }
            #expect(left.map(\.id) == [fresh.id] && old.id != fresh.id)
        }
    }
}
