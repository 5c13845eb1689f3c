import Foundation
import Testing
@testable import Store
import TesseraCore
import TesseraTesting

/// A client secret's digest lives in a `ClientSecretRecord`, never in the application or service principal that lists
/// the secret: written and deleted with the credential, deleted with the object, and moved there by migration 13 from
/// where the last release kept it (a `_hash` member of the `passwordCredentials` entry).
@Suite("Client secret records")
struct ClientSecretRecordTests {
    /// An application and its service principal.
    static func app(_ directory: DirectoryService, _ tenant: ProvisionedTenant) async throws -> (app: StoredObject, sp: StoredObject) {
        let app = try await directory.create(tenant: tenant.tenantId, kind: .application, body: ["displayName": "Payroll"], actor: .system)
        let sp = try await directory.create(tenant: tenant.tenantId, kind: .servicePrincipal,
                                            body: ["appId": try #require(app.body["appId"])], actor: .system)
        return (app, sp)
    }

    static func passwordCredentials(_ store: SQLDirectoryStore, _ tenant: String, _ id: String) async throws -> [[String: JSONValue]] {
        try await store.read { tx in try await tx.object(tenant: tenant, id: id) }?.body["passwordCredentials"]?.arrayValue?
            .compactMap(\.objectValue) ?? []
    }

    @Test("addPassword writes the digest as a record beside a credential without one; removePassword and a purge delete it",
          arguments: TestDatabases.all)
    func lifecycle(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let t = tenant.tenantId
            let (app, sp) = try await Self.app(directory, tenant)
            let added = try await directory.addPassword(tenant: t, objectId: app.id, displayName: "ci", endDateTime: "2031-05-01T00:00:00Z",
                                                        actor: .system)
            let keyId = try #require(added["keyId"]?.stringValue), secret = try #require(added["secretText"]?.stringValue)
            let spKey = try #require(try await directory.addPassword(tenant: t, objectId: sp.id, displayName: nil, endDateTime: nil,
                                                                     actor: .system)["keyId"]?.stringValue)

            let listed = try await Self.passwordCredentials(store, t, app.id)
            #expect(listed.map { $0["keyId"]?.stringValue } == [keyId])
            #expect(listed.allSatisfy { !$0.keys.contains { $0.hasPrefix("_") } && $0["secretText"]?.stringValue == nil })
            try await store.read { tx in
                let record = try #require(try await tx.credential(ClientSecretRecord.self, tenant: t, id: keyId))
                #expect(record.objectID == app.id && record.expires == Timestamp.parse("2031-05-01T00:00:00Z"))
                #expect(Secrets.matches(secret, digest: record.digest) && !Secrets.matches(secret + "x", digest: record.digest))
                #expect(try await tx.credentials(ClientSecretRecord.self, tenant: t, family: app.id).map(\.id) == [keyId])
                #expect(try await tx.credentials(ClientSecretRecord.self, tenant: t, family: sp.id).map(\.id) == [spKey])
            }

            try await directory.removePassword(tenant: t, objectId: app.id, keyId: keyId.uppercased(), actor: .system)
            #expect(try await Self.passwordCredentials(store, t, app.id).isEmpty)
            #expect(try await store.read { tx in try await tx.credential(ClientSecretRecord.self, tenant: t, id: keyId) } == nil)
            // A key id the object does not list is refused and deletes nothing.
            await #expect(throws: DirectoryError.self) {
                try await directory.removePassword(tenant: t, objectId: app.id, keyId: spKey, actor: .system)
            }
            #expect(try await store.read { tx in try await tx.credential(ClientSecretRecord.self, tenant: t, id: spKey) } != nil)

            // A service principal purged after its deletion takes its secrets' records along.
            try await directory.delete(tenant: t, id: sp.id, kind: .servicePrincipal, actor: .system)
            try await directory.purgeDeleted(tenant: t, id: sp.id, actor: .system)
            #expect(try await store.read { tx in try await tx.credentials(ClientSecretRecord.self, tenant: t, family: sp.id) }.isEmpty)
        }
    }

    @Test("concurrent addPassword and removePassword leave exactly the listed secrets with records", arguments: TestDatabases.all)
    func concurrentAddAndRemove(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let t = tenant.tenantId
            let (app, _) = try await Self.app(directory, tenant)
            var first: [String] = []
            for n in 0..<6 {
                let added = try await directory.addPassword(tenant: t, objectId: app.id, displayName: "s\(n)", endDateTime: nil, actor: .system)
                first.append(try #require(added["keyId"]?.stringValue))
            }
            // Six more added while the first six are removed; a write that lost a race to another is refused whole.
            let (added, removed) = await withTaskGroup(of: (String?, String?).self) { group in
                for n in 0..<6 {
                    group.addTask {
                        let added = try? await directory.addPassword(tenant: t, objectId: app.id, displayName: "n\(n)", endDateTime: nil,
                                                                     actor: .system)
                        return (added?["keyId"]?.stringValue, nil)
                    }
                }
                for keyId in first {
                    group.addTask {
                        (try? await directory.removePassword(tenant: t, objectId: app.id, keyId: keyId, actor: .system)).map { (nil, keyId) }
                            ?? (nil, nil)
                    }
                }
                var added: Set<String> = [], removed: Set<String> = []
                for await (add, remove) in group {
                    if let add { added.insert(add) }
                    if let remove { removed.insert(remove) }
                }
                return (added, removed)
            }
            // On PostgreSQL some lose the object's version race and are refused (conflict); on SQLite all go through.
            #expect(!added.isEmpty || !removed.isEmpty)
            let listed = Set(try await Self.passwordCredentials(store, t, app.id).compactMap { $0["keyId"]?.stringValue })
            let records = Set(try await store.read { tx in try await tx.credentials(ClientSecretRecord.self, tenant: t, family: app.id) }.map(\.id))
            #expect(listed == records)
            #expect(listed == added.union(Set(first).subtracting(removed)))
        }
    }

    @Test("migration 13 moves every `_hash` into a record and writes the object again without it", arguments: TestDatabases.all)
    func upgrade(_ database: String) async throws {
        try await CredentialMigrationTests.withOwnDatabase(database) { store in
            try await store.migrate()
            let directory = DirectoryService(store: store, clock: TestClock())
            let tenant = try await TenantProvisioner(directory: directory).create(name: "Upgrade", domain: "upgrade.test")
            let t = tenant.tenantId
            let (app, sp) = try await Self.app(directory, tenant)
            try await directory.delete(tenant: t, id: sp.id, kind: .servicePrincipal, actor: .system)
            let live = Identifier.make(), ended = Identifier.make(), onSp = Identifier.make()
            // As the last release stored them (DirectoryService.addPassword): the digest in the entry, no record.
            @Sendable func entry(_ keyId: String, _ secret: String, end: String) -> JSONValue {
                ["keyId": .string(keyId), "displayName": "legacy", "hint": .string(String(secret.prefix(3))),
                 "startDateTime": "2026-01-01T00:00:00Z", "endDateTime": .string(end), "customKeyIdentifier": nil, "secretText": nil,
                 "_hash": .string(Secrets.digest(secret))]
            }
            try await store.backend.withWriteSession { session in
                _ = try await session.execute("DELETE FROM credential_records WHERE kind = 'clientSecret'", [])
                _ = try await session.execute("DELETE FROM schema_migrations WHERE version = ?", [.int(Int64(Migrations.clientSecretStep))])
            }
            try await store.write { tx in
                for (id, entries) in [(app.id, [entry(live, "live secret", end: "2030-01-01T00:00:00Z"),
                                                entry(ended, "ended secret", end: "2026-02-01T00:00:00Z")]),
                                      (sp.id, [entry(onSp, "sp secret", end: "2030-01-01T00:00:00Z")])] {
                    var object = try #require(try await tx.object(tenant: t, id: id))
                    let version = object.version
                    object.body["passwordCredentials"] = .array(entries)
                    object.version += 1
                    try await tx.update(object, expectedVersion: version)
                }
            }

            try await store.migrate()

            for (id, keys) in [(app.id, [live, ended]), (sp.id, [onSp])] {
                let listed = try await Self.passwordCredentials(store, t, id)
                #expect(listed.compactMap { $0["keyId"]?.stringValue } == keys)
                #expect(listed.allSatisfy { $0["_hash"] == nil && $0["displayName"] == "legacy" && $0["hint"] != nil })
            }
            try await store.read { tx in
                let record = try #require(try await tx.credential(ClientSecretRecord.self, tenant: t, id: live))
                #expect(record.objectID == app.id && record.expires == Timestamp.parse("2030-01-01T00:00:00Z"))
                #expect(Secrets.matches("live secret", digest: record.digest))
                #expect(try await tx.credential(ClientSecretRecord.self, tenant: t, id: ended)?.expires == Timestamp.parse("2026-02-01T00:00:00Z"))
                // The soft-deleted service principal's too, so it works again once restored.
                let spRecord = try #require(try await tx.credential(ClientSecretRecord.self, tenant: t, id: onSp))
                #expect(spRecord.objectID == sp.id && Secrets.matches("sp secret", digest: spRecord.digest))
                #expect(try await tx.object(tenant: t, id: sp.id)?.deletedAt != nil)
            }
            // No `_hash` is left anywhere in the objects table.
            let left = try await store.backend.withReadSession { session in
                try await session.execute("SELECT id, \(store.backend.dialect.bodyText) FROM objects WHERE tenant = ?", [.text(t)])
            }
            #expect(!left.isEmpty && left.allSatisfy { $0[1].text?.contains("\"_hash\"") == false })
            // Migrating again changes nothing.
            try await store.migrate()
            #expect(try await store.read { tx in try await tx.credentials(ClientSecretRecord.self, tenant: t, family: app.id) }.count == 2)
        }
    }
}
