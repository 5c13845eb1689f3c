import Foundation
import Testing
@testable import Store
import TesseraCore
import TesseraTesting

/// Objects the directory creates get time-ordered (version 7) ids, so every index that ends with the id (the primary key,
/// the kind's, each property index among equal values, a unique key's or a change's holder) takes a new object at its
/// end. With random (version 4) ids each new object landed on a random page of every such index, and a bulk write
/// rewrote a page of each index per object (an initial sync of 100,000 users took 2–2.5× as long).
@Suite("Directory object ids in creation order")
struct ObjectIdOrderTests {
    @Test("a version 7 GUID: the instant's Unix milliseconds in its first 48 bits, the version and variant bits set")
    func timeOrderedFormat() throws {
        let instant = Date(timeIntervalSince1970: 1_795_089_600.123)  // 2026-11-19T12:00:00.123Z
        let id = Identifier.makeTimeOrdered(at: instant)
        #expect(Identifier.isGUID(id))
        #expect(id == id.lowercased())
        let hex = id.replacingOccurrences(of: "-", with: "")
        #expect(UInt64(hex.prefix(12), radix: 16) == 1_795_089_600_123)
        #expect(Array(hex)[12] == "7")
        #expect("89ab".contains(Array(hex)[16]))
        #expect([8, 13, 18, 23].allSatisfy { Array(id)[$0] == "-" })
        // Random after the instant: two ids of one millisecond differ.
        #expect(Identifier.makeTimeOrdered(at: instant) != id)
        #expect(Identifier.makeTimeOrdered(at: instant).prefix(13) == id.prefix(13))
    }

    static func body(_ name: String, _ tenant: ProvisionedTenant) -> [String: JSONValue] {
        ["accountEnabled": true, "displayName": .string(name), "mailNickname": .string(name), "department": "ordered",
         "userPrincipalName": .string("\(name)@\(tenant.domain)"), "passwordProfile": ["password": "Str0ng!Passw0rd"]]
    }

    @Test("users made by create, createMany and apply, a second apart, sort by id in the order they were made",
          arguments: TestDatabases.all)
    func creationOrderIsIdOrder(_ database: String) async throws {
        try await withTenant(database) { store, _, tenant in
            let clock = TestClock()
            let directory = DirectoryService(store: store, clock: clock)
            var made: [String] = [], instants: [Date] = []
            for round in 0..<3 {
                clock.advance(1)
                instants.append(clock.now)
                made.append(try await directory.create(tenant: tenant.tenantId, kind: .user, body: Self.body("single\(round)", tenant),
                                                       actor: .system).id)
                clock.advance(1)
                instants.append(clock.now)
                made += try await directory.createMany(tenant: tenant.tenantId, kind: .user, bodies: [Self.body("many\(round)", tenant)],
                                                       actor: .system).map(\.id)
                clock.advance(1)
                instants.append(clock.now)
                made += try await directory.apply([.create(.user, body: Self.body("batch\(round)", tenant))], tenant: tenant.tenantId,
                                                  actor: .system).map { try $0.get().id }
            }
            #expect(made.count == 9)
            #expect(made == made.sorted())
            // Each id carries the instant it was made at.
            #expect(made.map { UInt64($0.replacingOccurrences(of: "-", with: "").prefix(12), radix: 16) }
                    == instants.map { UInt64($0.timeIntervalSince1970 * 1000) })
            // The store lists them in the same order (ids ascending).
            let listed = try await store.read { tx in
                try await tx.query(ObjectQuery(tenant: tenant.tenantId, kinds: [.user],
                                               filter: .compare(PropertyPath(["department"]), .eq, .string("ordered"))))
            }
            #expect(listed.map(\.id) == made)
        }
    }
}
