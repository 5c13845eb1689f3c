import Foundation
import Testing
@testable import Store
import TesseraCore
import TesseraTesting

/// A PostgreSQL write session opens its block at the first write: the statements keep their order, and a failure
/// anywhere in the block, the first statement's included, rolls back everything and leaves the connection usable.
@Suite("PostgreSQL: a write session's block")
struct PostgresBlockOpeningTests {
    static let databases = PostgresRoundTripTests.databases

    @Test("BEGIN precedes the first write, in the same order as before, and the block commits", arguments: databases)
    func beginWithFirstWrite(_ url: String) async throws {
        try await PostgresRoundTripTests.withCountedStore(url, maxConnections: 1) { store, _, tenant, sent in
            let t = tenant.tenantId
            try await store.write { tx in
                try await tx.putSetting(tenant: t, key: "opening", value: "one")
                try await tx.putSetting(tenant: t, key: "opening-2", value: "two")
            }
            let statements = sent.take()
            #expect(statements.count == 4 && statements.first == "BEGIN" && statements.last == "COMMIT", "\(statements)")
            #expect(try await store.read { try await $0.setting(tenant: t, key: "opening-2") } == "two")
        }
    }

    @Test("a block whose first statement fails is rolled back, and its one connection is then idle and serves the next write",
          arguments: databases)
    func firstStatementFails(_ url: String) async throws {
        try await PostgresRoundTripTests.withCountedStore(url, maxConnections: 1) { store, _, tenant, sent in
            let t = tenant.tenantId
            await #expect(throws: (any Error).self) {
                try await store.backend.withWriteSession { session in
                    _ = try await session.execute("INSERT INTO tessera_no_such_table (a) VALUES (?)", [.int(1)])
                }
            }
            #expect(sent.take() == ["BEGIN", "INSERT INTO tessera_no_such_table (a) VALUES (?)", "ROLLBACK"])
            // A write after a failing one in the same block: neither is saved.
            await #expect(throws: (any Error).self) {
                try await store.backend.withWriteSession { session in
                    try await SQLTransaction(session: session, dialect: .postgres).putSetting(tenant: t, key: "kept", value: "no")
                    _ = try await session.execute("INSERT INTO tessera_no_such_table (a) VALUES (?)", [.int(1)])
                }
            }
            #expect(sent.take().last == "ROLLBACK")
            // The connection is outside any block: the next write commits, and a plain statement sees no transaction open.
            try await store.write { tx in try await tx.putSetting(tenant: t, key: "after", value: "yes") }
            #expect(try await store.read { try await $0.setting(tenant: t, key: "kept") } == nil)
            #expect(try await store.read { try await $0.setting(tenant: t, key: "after") } == "yes")
            let open = try await store.backend.withReadSession { try await $0.execute("SELECT txid_current_if_assigned() IS NULL", []) }
            #expect(open.first?.first?.int == 1)
        }
    }
}
