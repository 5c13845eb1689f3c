import Foundation
import Testing
@testable import Store
import TesseraCore
import TesseraTesting

/// The sync staging area's table: staged objects written whole and found by the columns a delta looks up by, and
/// migration 10, which moves staged objects kept as Graph-table `syncObject` objects (with link rows as their
/// indexes) into it.
@Suite("Staging area: a typed table of its own")
struct StagingStoreTests {
    static func raw(_ store: SQLDirectoryStore, _ sql: String, _ binds: [SQLValue] = []) async throws -> [[SQLValue]] {
        try await store.backend.withWriteSession { session in try await session.execute(sql, binds) }
    }

    @Test("staged objects are written whole, replaced by a later write, and found by id, connector page, join, folded DN and conflict",
          arguments: TestDatabases.all)
    func lookups(_ database: String) async throws {
        try await withTenant(database) { store, _, tenant in
            let t = tenant.tenantId
            @Sendable func staged(_ n: Int, connector: String = "corp", cloud: String? = nil, state: String = "joined", conflict: Bool = false) -> StagedObject {
                StagedObject(tenant: t, id: "sync:\(connector):\(String(format: "%04d", n))", connector: connector,
                             dn: "CN=User \(n),OU=Staff,DC=corp,DC=example,DC=test", cloudID: cloud, state: state, conflict: conflict,
                             details: ["attributes": ["objectclass": ["user"]], "matchedBy": "created"])
            }
            // 250 of one connector (more than a statement's 100 rows), 3 of another; the same object twice in one write.
            let objects = (0..<250).map { staged($0, cloud: "cloud-\($0)") }
                + [staged(0, connector: "other"), staged(1, connector: "other", state: "quarantined"), staged(2, connector: "other", conflict: true)]
                + [staged(7, cloud: "cloud-7b", state: "joined", conflict: true)]
            try await store.write { tx in try await tx.putStaged(objects) }

            try await store.read { tx in
                let two = try await tx.stagedObjects(tenant: t, ids: ["sync:corp:0007", "sync:missing:1", "sync:corp:0003"])
                #expect(two.map(\.id) == ["sync:corp:0007", "sync:corp:0003"])
                // The later write of 0007 won, every column of it.
                #expect(two[0] == staged(7, cloud: "cloud-7b", state: "joined", conflict: true))

                var pages: [[String]] = [], after: String?
                while true {
                    let page = try await tx.stagedObjects(tenant: t, connector: "corp", states: nil, afterId: after, limit: 100).map(\.id)
                    pages.append(page)
                    guard page.count == 100 else { break }
                    after = page.last
                }
                #expect(pages.map(\.count) == [100, 100, 50])
                #expect(pages.flatMap { $0 } == (0..<250).map { "sync:corp:" + String(format: "%04d", $0) })
                #expect(try await tx.stagedObjects(tenant: t, connector: nil, states: ["quarantined"], afterId: nil, limit: nil).map(\.id)
                        == ["sync:other:0001"])
                #expect(try await tx.stagedObjects(tenant: t, connector: nil, states: [], afterId: nil, limit: nil).isEmpty)

                #expect(try await tx.stagedObjects(tenant: t, joinedTo: ["cloud-9", "cloud-7", "cloud-7b"]).map(\.id) == ["sync:corp:0007", "sync:corp:0009"])
                let byDN = try await tx.stagedObjects(tenant: t, connector: "corp", dns: ["cn=user 12,ou=staff,dc=corp,dc=example,dc=test", "CN=nobody"])
                #expect(byDN.map(\.id) == ["sync:corp:0012"])
                #expect(try await tx.conflictedStagedObjects(tenant: t).map(\.id) == ["sync:corp:0007", "sync:other:0002"])
                #expect(try await tx.joinedStagedCount(tenant: t, connector: "corp") == 250)
                #expect(try await tx.joinedStagedCount(tenant: t, connector: "other") == 0)
            }

            // A conflict released: the partial index forgets it; removed objects are gone.
            try await store.write { tx in
                try await tx.putStaged([staged(7, cloud: "cloud-7b")])
                try await tx.removeStaged(tenant: t, ids: ["sync:other:0002", "sync:corp:0249"])
            }
            let after = try await store.read { tx in
                (try await tx.conflictedStagedObjects(tenant: t), try await tx.joinedStagedCount(tenant: t, connector: "corp"),
                 try await tx.stagedObjects(tenant: t, ids: ["sync:other:0002"]))
            }
            #expect(after.0.isEmpty && after.1 == 249 && after.2.isEmpty)
            // Another tenant sees none of it.
            let elsewhere = try await store.read { tx in
                try await tx.stagedObjects(tenant: "another", connector: nil, states: nil, afterId: nil, limit: nil)
            }
            #expect(elsewhere.isEmpty)
        }
    }

    @Test("a batch's key lookup searches the primary key once for each key, not every key of the tenant (SQLite's plan)")
    func holdersSearchThePrimaryKey() async throws {
        try await withTenant(":memory:") { store, _, tenant in
            let keys = (0..<500).map { UniqueKey("userPrincipalName", "u\($0)@x.test") }
            try await store.write { tx in try await tx.claim(tenant: tenant.tenantId, object: "holder", keys: Array(keys[0..<3])) }
            let plan = try await Self.raw(store, "EXPLAIN QUERY PLAN " + SQLTransaction.holdersQuery(keys.count),
                                          keys.flatMap { [.text(tenant.tenantId), .text($0.name), .text($0.value)] })
            let steps = plan.compactMap { $0.last?.text }
            #expect(steps.first == "MULTI-INDEX OR", "\(steps)")
            #expect(steps.filter { $0.hasPrefix("SEARCH") }.allSatisfy { $0.contains("(tenant=? AND name=? AND value=?)") }, "\(steps)")
            let found = try await store.read { tx in try await tx.holders(tenant: tenant.tenantId, of: keys) }
            #expect(found == Dictionary(uniqueKeysWithValues: keys[0..<3].map { ($0, "holder") }))
        }
    }

    @Test("migration 10 moves staged objects kept as Graph-table objects, page after page and tenant after tenant, and drops their link indexes",
          arguments: TestDatabases.all)
    func migrationMovesStagedObjects(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let t = tenant.tenantId, other = UUID().uuidString.lowercased()
            let user = try await directory.makeUser(tenant, "Synced")
            // As the store held them before: `syncObject` objects with `syncJoin`, `syncDN` and `syncConflict` links,
            // more than a page of the move in one tenant, and one in another tenant that sorts after it.
            let count = 1_203
            @Sendable func id(_ n: Int) -> String { "sync:corp:" + String(format: "%032x", n) }
            try await store.write { tx in
                for n in 0..<count {
                    var body: [String: JSONValue] = [
                        "connector": "Corp", "state": n == 5 ? "quarantined" : "joined", "dn": .string("CN=U\(n),OU=Staff,DC=corp,DC=test"),
                        "attributes": ["objectguid": [.string("guid\(n)")], "objectclass": ["top", "user"]],
                    ]
                    if n == 0 {
                        body["cloudId"] = .string(user.id)
                        body["conflict"] = true
                        body["matchedBy"] = "softMatch"
                        try await tx.link(tenant: t, source: id(n), relation: "syncJoin", target: user.id)
                        try await tx.link(tenant: t, source: "syncconflicts", relation: "syncConflict", target: id(n))
                    }
                    if n == 5 { body["error"] = ["code": "InvalidHardMatch", "message": "held", "occurredDateTime": "2026-11-29T00:00:00Z"] }
                    try await tx.insert(StoredObject(tenant: t, id: id(n), kind: ObjectKind(rawValue: "syncObject"), body: body))
                    try await tx.link(tenant: t, source: "syncdn:corp:cn=u\(n),ou=staff,dc=corp,dc=test", relation: "syncDN", target: id(n))
                }
                try await tx.insert(StoredObject(tenant: other, id: "xts:source:object", kind: ObjectKind(rawValue: "syncObject"), body: [
                    "connector": "crosstenant:source", "state": "pending", "identityType": "User"]))
            }
            _ = try await Self.raw(store, "DELETE FROM schema_migrations WHERE version = 10")
            try await store.migrate()

            try await store.read { tx in
                let all = try await tx.stagedObjects(tenant: t, connector: "Corp", states: nil, afterId: nil, limit: nil)
                #expect(all.count == count)
                let first = try #require(all.first)
                #expect(first == StagedObject(tenant: t, id: id(0), connector: "Corp", dn: "CN=U0,OU=Staff,DC=corp,DC=test", cloudID: user.id,
                                              state: "joined", conflict: true,
                                              details: ["attributes": ["objectguid": ["guid0"], "objectclass": ["top", "user"]], "matchedBy": "softMatch"]))
                #expect(try await tx.stagedObjects(tenant: t, joinedTo: [user.id]).map(\.id) == [id(0)])
                #expect(try await tx.conflictedStagedObjects(tenant: t).map(\.id) == [id(0)])
                #expect(try await tx.stagedObjects(tenant: t, connector: "Corp", dns: ["cn=u1202,ou=staff,dc=corp,dc=test"]).map(\.id) == [id(1202)])
                let held = try await tx.stagedObjects(tenant: t, connector: nil, states: ["quarantined"], afterId: nil, limit: nil)
                #expect(held.map(\.id) == [id(5)] && held.first?.details["error"]?["code"] == "InvalidHardMatch")
                #expect(try await tx.stagedObjects(tenant: other, ids: ["xts:source:object"]).first?.details == ["identityType": "User"])
                // The Graph table keeps the user and nothing staged.
                #expect(try await tx.object(tenant: t, id: user.id) != nil)
                #expect(try await tx.object(tenant: t, id: id(0)) == nil)
            }
            let leftovers = try await Self.raw(store, "SELECT count(*) FROM objects WHERE tenant IN (?, ?) AND kind = 'syncObject'", [.text(t), .text(other)])
            #expect(leftovers.first?.first?.int == 0)
            let links = try await Self.raw(store, "SELECT count(*) FROM links WHERE tenant = ? AND relation IN ('syncJoin', 'syncDN', 'syncConflict')",
                                           [.text(t)])
            #expect(links.first?.first?.int == 0)
        }
    }
}
