import Foundation
import Testing
@testable import Store
import TesseraCore

/// Migration 17's index of deleted objects: a sync run reads a tenant's deleted synced users at its start (to restore
/// one an anchor brings back) and the deleted-items lists read deleted objects of a kind; with the index neither walks
/// every object of the kind.
@Suite("Deleted objects by index")
struct DeletedObjectsIndexTests {
    static func deletedSynced(_ tenant: String) -> ObjectQuery {
        ObjectQuery(tenant: tenant, kinds: [.user], deleted: true,
                    filter: .compare(PropertyPath(["onPremisesSyncEnabled"]), .eq, .bool(true)))
    }

    @Test("the deleted synced users are found through objects_deleted, not by walking the tenant's users (SQLite's plan)")
    func plan() async throws {
        try await withTenant(":memory:") { store, _, tenant in
            let translated = try QueryTranslator(dialect: store.backend.dialect).select(Self.deletedSynced(tenant.tenantId), columns: "id")
            let plan = try await StagingStoreTests.raw(store, "EXPLAIN QUERY PLAN " + translated.sql, translated.binds)
            let steps = plan.compactMap { $0.last?.text }
            #expect(steps.contains { $0.contains("USING INDEX objects_deleted") }, "\(steps)")
        }
    }

    @Test("the query answers the deleted synced users only: not the live ones, not the deleted cloud ones", arguments: TestDatabases.all)
    func answers(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let t = tenant.tenantId
            let synced = try await directory.makeUser(tenant, "Synced gone"), live = try await directory.makeUser(tenant, "Synced here")
            let cloud = try await directory.makeUser(tenant, "Cloud gone")
            // Marked as sync marks them (Graph cannot set `onPremisesSyncEnabled`).
            try await store.write { tx in
                for id in [synced.id, live.id] {
                    var object = try #require(try await tx.object(tenant: t, id: id))
                    let version = object.version
                    object.body["onPremisesSyncEnabled"] = true
                    object.version += 1
                    try await tx.update(object, expectedVersion: version)
                }
            }
            try await directory.delete(tenant: t, id: synced.id, kind: .user, actor: .system)
            try await directory.delete(tenant: t, id: cloud.id, kind: .user, actor: .system)
            let found = try await store.read { tx in try await tx.query(Self.deletedSynced(t)) }.map(\.id)
            #expect(found == [synced.id] && !found.contains(live.id))
        }
    }
}
