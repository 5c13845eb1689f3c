import Foundation
import Testing
@testable import Store
import TesseraCore
import TesseraTesting

/// A deployment upgraded from a release that kept sessions, refresh tokens and device codes as Graph-table objects keeps
/// every one of them, as typed records, and its objects table holds none afterwards.
@Suite("Credential records: the upgrade")
struct CredentialMigrationTests {
    /// A store in a database of its own (the migration under test changes the schema): a new SQLite file or in-memory
    /// database, or a new PostgreSQL database beside the test one, dropped afterwards.
    static func withOwnDatabase(_ database: String, _ body: (SQLDirectoryStore) async throws -> Void) async throws {
        guard database.hasPrefix("postgres") else {
            let (url, folder) = TestDatabases.opened(database)
            defer { if let folder { try? FileManager.default.removeItem(at: folder) } }
            let store = try await SQLDirectoryStore.open(url)
            do { try await body(store) } catch {
                try? await store.shutdown()
                throw error
            }
            try await store.shutdown()
            return
        }
        let name = "tessera_upgrade_\(UUID().uuidString.prefix(8).lowercased())"
        var components = try #require(URLComponents(string: database))
        components.path = "/" + name
        let admin = try await SQLDirectoryStore.open(database)
        _ = try await admin.backend.withReadSession { try await $0.execute("CREATE DATABASE \(name)", []) }
        let store = try await SQLDirectoryStore.open(try #require(components.string))
        var failure: (any Error)?
        do { try await body(store) } catch { failure = error }
        try? await store.shutdown()
        _ = try? await admin.backend.withReadSession { try await $0.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)", []) }
        try await admin.shutdown()
        if let failure { throw failure }
    }

    /// The schema as the last release left it: every step before the credential records'.
    static func migrateAsLastRelease(_ store: SQLDirectoryStore) async throws {
        try await store.migrate()
        try await store.backend.withWriteSession { session in
            _ = try await session.execute("DROP TABLE credential_records", [])
            _ = try await session.execute("DELETE FROM schema_migrations WHERE version IN (?, ?)",
                                          [.int(Int64(Migrations.credentialStep)), .int(Int64(Migrations.temporaryAccessPassStep))])
        }
    }

    @Test("sessions, refresh tokens, device codes and pass digests move to typed records; their objects, links and keys go",
          arguments: TestDatabases.all)
    func upgradeMovesRecords(_ database: String) async throws {
        try await Self.withOwnDatabase(database) { store in
            // Provisioning writes a credential record itself (the bootstrap app's client secret): the tenant comes first.
            try await store.migrate()
            let directory = DirectoryService(store: store, clock: TestClock())
            let tenant = try await TenantProvisioner(directory: directory).create(name: "Upgrade", domain: "upgrade.test")
            let t = tenant.tenantId, user = try await directory.makeUser(tenant, "Ada").id
            try await Self.migrateAsLastRelease(store)
            let expires = "2030-01-01T00:00:00Z"
            let token = Identifier.make(), successor = Identifier.make(), session = Identifier.make()
            let pending = Identifier.make(), approved = Identifier.make(), pass = Identifier.make()
            let codeDigest = Secrets.fingerprint("an authorization code")
            // As the last release wrote them (RefreshTokens.issue, SignInSessions.start, DeviceCodes.start and approve).
            try await store.write { tx in
                func refresh(_ id: String, used: Bool, family: String, code: String?) async throws {
                    try await tx.insert(StoredObject(tenant: t, id: id, kind: ObjectKind(rawValue: "refreshToken"), body: [
                        "id": .string(id), "_digest": .string(Secrets.digest("secret-\(id)")), "_userId": .string(user),
                        "_clientId": "client", "_redirectUri": "https://app.test/", "_scope": "openid offline_access",
                        "_sessionId": .string(session), "_amr": .strings(["fido", "mfa"]), "_aaguid": nil, "_acrs": .strings(["c1"]),
                        "_authTime": .int(1_800_000_000), "_confidential": true, "family": .string(family), "_expires": .string(expires),
                        "_used": .bool(used), "issuedForCode": .optional(code),
                    ]))
                    try await tx.link(tenant: t, source: user, relation: "refreshTokens", target: id)
                }
                try await refresh(token, used: true, family: token, code: codeDigest)
                try await refresh(successor, used: false, family: token, code: nil)
                try await tx.insert(StoredObject(tenant: t, id: session, kind: ObjectKind(rawValue: "signInSession"), body: [
                    "id": .string(session), "_userId": .string(user), "_authTime": .int(1_800_000_000), "_amr": .strings(["fido"]),
                    "_aaguid": "08987058-cadc-4b81-b6e1-30de50dcbe96", "_expires": .string(expires),
                ]))
                try await tx.link(tenant: t, source: user, relation: "signInSessions", target: session)
                for (id, userCode) in [(pending, "BCDFGHJKL"), (approved, "MNPQRSTVW")] {
                    var body: [String: JSONValue] = [
                        "id": .string(id), "_digest": .string(Secrets.digest("secret-\(id)")), "_userCode": .string(userCode),
                        "_clientId": "cli", "_scope": "openid", "_status": "pending", "_expires": .string(expires),
                    ]
                    if id == approved {
                        body["_status"] = "approved"
                        body["_userId"] = .string(user)
                        body["_sessionId"] = .string(session)
                        body["_authTime"] = .int(1_800_000_000)
                        body["_amr"] = .strings(["fido"])
                        body["_aaguid"] = nil
                    }
                    try await tx.insert(StoredObject(tenant: t, id: id, kind: ObjectKind(rawValue: "deviceCode"), body: body))
                    try await tx.claim(tenant: t, object: id, keys: [UniqueKey("deviceUserCode", userCode)])
                }
                // DirectoryService.createTemporaryAccessPass, a one-time pass already used.
                try await tx.insert(StoredObject(tenant: t, id: pass, kind: .temporaryAccessPass, body: [
                    "id": .string(pass), "createdDateTime": "2029-12-31T00:00:00Z", "startDateTime": "2029-12-31T00:00:00Z",
                    "lifetimeInMinutes": 60, "isUsableOnce": true, "_digest": .string(Secrets.digest("passcode")), "_userId": .string(user),
                    "_used": true,
                ]))
                try await tx.link(tenant: t, source: user, relation: DirectoryService.temporaryAccessPassRelation, target: pass)
            }

            try await store.migrate()

            let legacy = ["refreshToken", "signInSession", "deviceCode"].map { ObjectKind(rawValue: $0) }
            try await store.read { tx in
                #expect(try await tx.query(ObjectQuery(tenant: t, kinds: legacy)).isEmpty)
                #expect(try await tx.targets(tenant: t, source: user, relation: "refreshTokens").isEmpty)
                #expect(try await tx.targets(tenant: t, source: user, relation: "signInSessions").isEmpty)
                #expect(try await tx.holder(tenant: t, key: UniqueKey("deviceUserCode", "BCDFGHJKL")) == nil)
                // The user and the tenant's other objects are untouched.
                #expect(try await tx.object(tenant: t, id: user)?.body["displayName"] == "Ada")

                let first = try #require(try await tx.credential(RefreshTokenRecord.self, tenant: t, handle: codeDigest))
                #expect(first.id == token && first.state == .used && first.familyID == token && first.confidential)
                #expect(Secrets.matches("secret-\(token)", digest: first.digest))
                #expect(first.grant == SignInGrant(userID: user, clientID: "client", redirectURI: "https://app.test/", scope: "openid offline_access",
                                                   sessionID: session, authTime: 1_800_000_000, amr: ["fido", "mfa"], aaguid: nil, acrs: ["c1"]))
                let next = try #require(try await tx.credential(RefreshTokenRecord.self, tenant: t, id: successor))
                #expect(next.state == .unused && next.familyID == token && next.issuedForCode == nil)
                #expect(next.expires == Timestamp.parse(expires))

                #expect(try await tx.credential(SignInSessionRecord.self, tenant: t, id: session) == SignInSessionRecord(
                    id: session, userID: user, authTime: 1_800_000_000, amr: ["fido"], aaguid: "08987058-cadc-4b81-b6e1-30de50dcbe96",
                    expires: try #require(Timestamp.parse(expires))))

                let waiting = try #require(try await tx.credential(DeviceCodeRecord.self, tenant: t, handle: "BCDFGHJKL"))
                #expect(waiting.id == pending && waiting.state == .pending && waiting.approval == nil && waiting.clientID == "cli")
                let done = try #require(try await tx.credential(DeviceCodeRecord.self, tenant: t, id: approved))
                #expect(done.state == .approved && done.approval?.userID == user && done.approval?.sessionID == session)
                #expect(Secrets.matches("secret-\(approved)", digest: done.digest))

                // The pass stays a Graph object, without its digest; the record holds it, and that it was used.
                let object = try #require(try await tx.object(tenant: t, id: pass))
                #expect(object.body["_digest"] == nil && object.body["_used"] == nil && object.body["lifetimeInMinutes"] == 60)
                let secret = try #require(try await tx.credential(TemporaryAccessPassRecord.self, tenant: t, id: pass))
                #expect(secret.userID == user && secret.state == .used && Secrets.matches("passcode", digest: secret.digest))
                #expect(secret.expires == Timestamp.parse("2029-12-31T01:00:00Z"))
                #expect(try await tx.targets(tenant: t, source: user, relation: DirectoryService.temporaryAccessPassRelation) == [pass])
            }
            // Nothing of them is left in the objects table, whatever its state.
            let left = try await store.backend.withReadSession { session in
                try await session.execute("SELECT count(*) FROM objects WHERE kind IN ('refreshToken', 'signInSession', 'deviceCode')", [])
            }
            #expect(left.first?.first?.int == 0)
            // Migrating again changes nothing.
            try await store.migrate()
            #expect(try await store.read { tx in try await tx.credentials(RefreshTokenRecord.self, tenant: t, userID: user) }.count == 2)
        }
    }
}
