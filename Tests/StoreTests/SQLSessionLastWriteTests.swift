import Foundation
import Synchronization
import Testing
@testable import Store
import TesseraCore
import TesseraTesting

/// What every session does with a transaction's last write (`SQLSession.executeLast`) and a write it may hold
/// (`SQLSession.hold`): after another write both are statements of the transaction and roll back with it; alone, SQLite
/// keeps them in the transaction too, while PostgreSQL runs them alone as their own commit (they are saved before the
/// body goes on, and nothing may follow them).
@Suite("A transaction's last write and held writes on every database")
struct SQLSessionLastWriteTests {
    struct Refused: Error {}

    static func setting(_ store: SQLDirectoryStore, _ tenant: String, _ key: String) async throws -> JSONValue? {
        try await store.read { try await $0.setting(tenant: tenant, key: key) }
    }

    static func insert(_ tenant: String, _ key: String) -> (String, [SQLValue]) {
        ("INSERT INTO settings (tenant, key, value) VALUES (?, ?, ?)", [.text(tenant), .text(key), .text("\"set\"")])
    }

    @Test("after another write, a last write and a held write roll back with a body that throws", arguments: TestDatabases.all)
    func rolledBackAfterAWrite(_ database: String) async throws {
        try await withTenant(database) { store, _, tenant in
            let t = tenant.tenantId
            await #expect(throws: Refused.self) {
                try await store.backend.withWriteSession { session in
                    let (first, firstBinds) = Self.insert(t, "first")
                    _ = try await session.execute(first, firstBinds)
                    try await session.hold(HeldWrite(alone: { _ in Issue.record("a held write ran alone after another write") },
                                                     inBlock: {
                                                         let (held, heldBinds) = Self.insert(t, "held")
                                                         _ = try await session.execute(held, heldBinds)
                                                     }))
                    let (last, lastBinds) = Self.insert(t, "last")
                    _ = try await session.executeLast(last, lastBinds)
                    throw Refused()
                }
            }
            let first = try await Self.setting(store, t, "first"), held = try await Self.setting(store, t, "held"),
                last = try await Self.setting(store, t, "last")
            #expect(first == nil && held == nil && last == nil)
        }
    }

    @Test("alone, a last write is a statement of the transaction on SQLite (rolled back with it) and its own commit on PostgreSQL (saved, and nothing may follow it)",
          arguments: TestDatabases.all)
    func alone(_ database: String) async throws {
        try await withTenant(database) { store, _, tenant in
            let t = tenant.tenantId
            let postgres = store.backend.dialect.isPostgres
            await #expect(throws: Refused.self) {
                try await store.backend.withWriteSession { session in
                    let (last, lastBinds) = Self.insert(t, "alone")
                    _ = try await session.executeLast(last, lastBinds)
                    throw Refused()
                }
            }
            #expect(try await Self.setting(store, t, "alone") == (postgres ? .string("set") : nil))
            let statementAfter: @Sendable () async throws -> Void = {
                try await store.backend.withWriteSession { session in
                    let (last, lastBinds) = Self.insert(t, "then-last")
                    _ = try await session.executeLast(last, lastBinds)
                    let (after, afterBinds) = Self.insert(t, "then-after")
                    _ = try await session.execute(after, afterBinds)
                }
            }
            if postgres {
                await #expect(throws: StoreError.self) { try await statementAfter() }
                #expect(try await Self.setting(store, t, "then-after") == nil)
            } else {
                try await statementAfter()
                #expect(try await Self.setting(store, t, "then-after") == .string("set"))
            }
            #expect(try await Self.setting(store, t, "then-last") == .string("set"))
        }
    }

    @Test("alone, a held write runs in place on SQLite and alone at the end on PostgreSQL", arguments: TestDatabases.all)
    func heldAlone(_ database: String) async throws {
        try await withTenant(database) { store, _, tenant in
            let postgres = store.backend.dialect.isPostgres
            let way = LockedWay()
            let seen = try await store.backend.withWriteSession { session in
                try await session.hold(HeldWrite(alone: { _ in way.set("alone") }, inBlock: { way.set("in place") }))
                // On PostgreSQL nothing has run yet: the write is held until the transaction ends.
                return way.value ?? "held"
            }
            #expect(seen == (postgres ? "held" : "in place"))
            #expect(way.value == (postgres ? "alone" : "in place"))
            _ = tenant
        }
    }

    final class LockedWay: Sendable {
        private let way = Mutex<String?>(nil)
        func set(_ value: String) { way.withLock { $0 = value } }
        var value: String? { way.withLock { $0 } }
    }
}
