import Foundation
import Testing
@testable import Store
import TesseraCore

/// Migration 20: SQLite keeps single-use keys in a WITHOUT ROWID table (two b-trees a spend instead of three). A
/// database upgraded from step 19 keeps every key it had: one spent before the upgrade stays spent, an expired one can
/// be taken over, a new one is spent once; on PostgreSQL the step changes nothing.
@Suite("Single-use keys' table")
struct SingleUseTableTests {
    static let now = "2026-12-08T00:00:00Z", later = "2026-12-08T01:00:00Z", past = "2026-12-07T00:00:00Z"

    static func spend(_ store: SQLDirectoryStore, _ tenant: String, _ key: String, expires: String = later) async throws -> Bool {
        try await store.write { tx in try await tx.consumeOnce(tenant: tenant, key: key, expiresAt: expires, now: now) }
    }

    /// `single_use`'s definition as SQLite stores it (nil on PostgreSQL).
    static func definition(_ store: SQLDirectoryStore) async throws -> String? {
        guard !store.backend.dialect.isPostgres else { return nil }
        return try await store.backend.withReadSession { session in
            try await session.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'single_use'", []).first?.first?.text
        }
    }

    @Test("a new database's single-use keys are a WITHOUT ROWID table on SQLite, spent once each", arguments: TestDatabases.all)
    func fresh(_ database: String) async throws {
        try await CredentialMigrationTests.withOwnDatabase(database) { store in
            try await store.migrate()
            if let sql = try await Self.definition(store) { #expect(sql.contains("WITHOUT ROWID"), "\(sql)") }
            #expect(try await Self.spend(store, "t1", "code:a"))
            #expect(try await !Self.spend(store, "t1", "code:a"))
            // The key is per tenant.
            #expect(try await Self.spend(store, "t2", "code:a"))
        }
    }

    @Test("a database at step 19 gets step 20 pending alone; its spent keys stay spent, expired ones are taken over",
          arguments: TestDatabases.all)
    func upgrades(_ database: String) async throws {
        try await CredentialMigrationTests.withOwnDatabase(database) { store in
            try await store.migrate()
            let step = Migrations.singleUseWithoutRowidStep
            try await store.backend.withWriteSession { session in
                if !store.backend.dialect.isPostgres {
                    // The table as steps 1 and 3 made it: rows by rowid, the primary key an index of its own.
                    for statement in ["DROP TABLE single_use",
                                      "CREATE TABLE single_use (tenant TEXT NOT NULL, key TEXT NOT NULL, expires_at TEXT NOT NULL, PRIMARY KEY (tenant, key))",
                                      "CREATE INDEX single_use_by_expiry ON single_use (tenant, expires_at)"] {
                        _ = try await session.execute(statement, [])
                    }
                }
                _ = try await session.execute("DELETE FROM schema_migrations WHERE version = ?", [.int(Int64(step))])
            }
            if let sql = try await Self.definition(store) { #expect(!sql.contains("WITHOUT ROWID"), "\(sql)") }
            #expect(try await Self.spend(store, "t1", "code:spent"))
            #expect(try await Self.spend(store, "t1", "lease:old", expires: Self.past))
            #expect(try await Self.spend(store, "t2", "code:other"))

            let status = try await store.schemaStatus()
            #expect(status.pending.map(\.number) == [step] && status.blocking.isEmpty)
            #expect(try await store.applyMigrations().map(\.number) == [step])
            #expect(try await store.pendingMigrations().isEmpty)
            if let sql = try await Self.definition(store) { #expect(sql.contains("WITHOUT ROWID"), "\(sql)") }
            // The expiry index is there again, and the sweep reads it.
            if !store.backend.dialect.isPostgres {
                let plan = try await store.backend.withReadSession { session in
                    try await session.execute("EXPLAIN QUERY PLAN DELETE FROM single_use WHERE tenant = ? AND expires_at < ?",
                                              [.text("t1"), .text(Self.now)]).map { $0.last?.text ?? "" }
                }
                #expect(plan.contains { $0.contains("single_use_by_expiry") }, "\(plan)")
            }

            // Spent before the upgrade: still spent, in each tenant.
            #expect(try await !Self.spend(store, "t1", "code:spent"))
            #expect(try await !Self.spend(store, "t2", "code:other"))
            // Expired before now: taken over, once.
            #expect(try await Self.spend(store, "t1", "lease:old"))
            #expect(try await !Self.spend(store, "t1", "lease:old"))
            // New keys: once each.
            #expect(try await Self.spend(store, "t1", "code:new"))
            #expect(try await !Self.spend(store, "t1", "code:new"))
            // Only the table's storage changes: a build of the release before reads and writes it as it did.
            #expect(Migrations.catalog.first { $0.number == step }?.minimumReader == nil)
        }
    }
}
