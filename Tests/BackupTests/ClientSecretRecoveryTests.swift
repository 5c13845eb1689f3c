import Foundation
import Testing
import Backup
@testable import Store
import TesseraCore
import TesseraTesting

/// Backups never hold a client secret's digest (it is a credential record, which no snapshot reads), and recovering
/// from a snapshot taken before the upgrade, which does hold one, never writes it back.
@Suite("Backup: client secrets")
struct ClientSecretRecoveryTests {
    @Test("snapshots hold no secret digest; a recovery from an older snapshot that holds one writes none back", arguments: Databases.all)
    func noDigestsBack(_ database: String) async throws {
        try await Fixture.run(database) { f in
            let app = try await f.directory.create(tenant: f.id, kind: .application, body: ["displayName": "Payroll"], actor: .system)
            _ = try await f.directory.addPassword(tenant: f.id, objectId: app.id, displayName: "new", endDateTime: nil, actor: .system)
            let (_, bodies) = try await f.backup.liveState(tenant: f.id)
            #expect(!bodies.isEmpty && bodies.values.allSatisfy { !$0.contains("_hash") && !$0.contains("s1$") })

            // The app as the last release stored it (a `_hash` in the entry), in a snapshot; then the upgrade's move.
            let legacyKey = Identifier.make()
            try await f.store.write { tx in
                var object = try #require(try await tx.object(tenant: f.id, id: app.id))
                let version = object.version
                object.body["passwordCredentials"] = .array((object.body["passwordCredentials"]?.arrayValue ?? []) + [[
                    "keyId": .string(legacyKey), "displayName": "legacy", "hint": "abc", "startDateTime": "2026-01-01T00:00:00Z",
                    "endDateTime": "2030-01-01T00:00:00Z", "customKeyIdentifier": nil, "secretText": nil,
                    "_hash": .string(Secrets.digest("legacy secret")),
                ]])
                object.version += 1
                try await tx.update(object, expectedVersion: version)
            }
            let snapshot = try await f.backup.snapshot(tenant: f.id)
            try await f.store.write { tx in
                let object = try #require(try await tx.object(tenant: f.id, id: app.id))
                let (stripped, rows) = try #require(try Migrations.legacyClientSecrets(object))
                for row in rows { try await tx.insertCredential(row) }
                try await tx.update(stripped, expectedVersion: object.version)
            }
            func stored() async throws -> StoredObject? {
                try await f.store.read { tx in try await tx.object(tenant: f.id, id: app.id) }
            }
            func digestFree(_ object: StoredObject) -> Bool {
                (object.body["passwordCredentials"]?.arrayValue ?? []).allSatisfy { $0.objectValue?.keys.contains { $0.hasPrefix("_") } == false }
            }

            // Changed since, then reverted from the snapshot: its properties come back, the digest does not.
            _ = try await f.directory.update(tenant: f.id, id: app.id, kind: .application, patch: ["displayName": "Payroll 2"], actor: .system)
            let reverted = try await f.backup.recover(tenant: f.id, snapshot: snapshot.id, filter: .all, directory: f.directory,
                                                      actor: RecoveryTests.job)
            #expect(reverted.outcomes.count == 1 && reverted.outcomes.allSatisfy { $0.failure == nil })
            let back = try #require(try await stored())
            #expect(back.body["displayName"] == "Payroll" && digestFree(back))
            #expect((back.body["passwordCredentials"]?.arrayValue ?? []).count == 2)

            // Purged, then created again from the snapshot: it lists its secrets, none of which works (their records
            // went with the purge).
            try await f.directory.delete(tenant: f.id, id: app.id, kind: .application, actor: .system)
            try await f.directory.purgeDeleted(tenant: f.id, id: app.id, actor: .system)
            #expect(try await f.store.read { tx in try await tx.credentials(ClientSecretRecord.self, tenant: f.id, family: app.id) }.isEmpty)
            let recreated = try await f.backup.recover(tenant: f.id, snapshot: snapshot.id, filter: .all, directory: f.directory,
                                                       actor: RecoveryTests.job)
            #expect(recreated.outcomes.count == 1 && recreated.outcomes.allSatisfy { $0.failure == nil })
            let again = try #require(try await stored())
            #expect(again.deletedAt == nil && digestFree(again) && (again.body["passwordCredentials"]?.arrayValue ?? []).count == 2)
            #expect(try await f.store.read { tx in try await tx.credentials(ClientSecretRecord.self, tenant: f.id, family: app.id) }.isEmpty)
        }
    }
}
