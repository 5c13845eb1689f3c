import Foundation
import Testing
@testable import Store
import TesseraCore
import TesseraTesting

/// Migrations are forward-only and checked: a database says which of this build's steps it lacks, and which steps a
/// newer build applied; this build runs on a newer schema whose steps only added (a rolling upgrade) and stops, changing
/// nothing, on one a newer build recorded as needing a newer reader. On SQLite and PostgreSQL, each in a database of
/// its own (these tests change the schema).
@Suite("Migrations: checked, forward-only, newer schemas")
struct SchemaCompatibilityTests {
    static func raw(_ store: SQLDirectoryStore, _ sql: String, _ values: [SQLValue] = []) async throws {
        _ = try await store.backend.withWriteSession { try await $0.execute(sql, values) }
    }

    /// Records a step of a newer build, as that build's `Migrations.run` would.
    static func recordNewerStep(_ store: SQLDirectoryStore, _ number: Int, minimumReader: Int?) async throws {
        try await raw(store, "INSERT INTO schema_migrations (version, summary, minimum_reader) VALUES (?, ?, ?)",
                      [.int(Int64(number)), .text("a step of a newer Tessera"), minimumReader.map { .int(Int64($0)) } ?? .null])
    }

    @Test("every step has one line in the catalog, in order, on both dialects")
    func catalogCoversEveryStep() {
        for dialect in [SQLDialect.sqlite, .postgres] {
            #expect(Migrations.steps(dialect).map(\.0) == Migrations.catalog.map(\.number))
        }
        #expect(Migrations.catalog.map(\.number) == Array(1...Migrations.latest))
        // No step of this release stops the release before: a rolling upgrade runs the two side by side.
        #expect(Migrations.catalog.allSatisfy { !$0.summary.isEmpty && $0.minimumReader == nil })
    }

    @Test("a new database lists every step as pending, reading only; applying runs each once and records its summary",
          arguments: TestDatabases.all)
    func newDatabase(_ database: String) async throws {
        try await CredentialMigrationTests.withOwnDatabase(database) { store in
            let before = try await store.schemaStatus()
            #expect(before.pending == Migrations.catalog && before.newer.isEmpty)
            #expect(try await store.pendingMigrations() == Migrations.catalog.map(\.number))
            #expect(try await store.schemaStatus() == before, "checking changed nothing")
            #expect(try await store.applyMigrations() == Migrations.catalog)
            #expect(try await store.pendingMigrations().isEmpty)
            #expect(try await store.applyMigrations().isEmpty, "nothing runs twice")
            let recorded = try await store.backend.withReadSession {
                try await $0.execute("SELECT summary FROM schema_migrations WHERE version = ?", [.int(Int64(Migrations.compatibilityStep))])
            }
            #expect(recorded.first?.first?.text == Migrations.catalog.first { $0.number == Migrations.compatibilityStep }?.summary)
        }
    }

    @Test("a database as the last release left it (steps 1 to 13) has the compatibility step pending, and gets it",
          arguments: TestDatabases.all)
    func lastRelease(_ database: String) async throws {
        try await CredentialMigrationTests.withOwnDatabase(database) { store in
            try await store.migrate()
            // The last release's schema_migrations: its steps, the version column alone.
            try await Self.raw(store, "DELETE FROM schema_migrations WHERE version = ?", [.int(Int64(Migrations.compatibilityStep))])
            try await Self.raw(store, "ALTER TABLE schema_migrations DROP COLUMN summary")
            try await Self.raw(store, "ALTER TABLE schema_migrations DROP COLUMN minimum_reader")
            let status = try await store.schemaStatus()
            #expect(status.pending.map(\.number) == [Migrations.compatibilityStep] && status.newer.isEmpty)
            #expect(try await store.applyMigrations().map(\.number) == [Migrations.compatibilityStep])
            #expect(try await store.pendingMigrations().isEmpty)
            // The last release's own statements still work on the upgraded table (it runs beside this one).
            try await Self.raw(store, "INSERT INTO schema_migrations (version) VALUES (?)", [.int(999)])
            #expect(try await store.backend.withReadSession { try await $0.execute("SELECT version FROM schema_migrations", []) }.count == Migrations.latest + 1)
        }
    }

    @Test("a newer build's steps that only add: reported, and this build keeps running on the database",
          arguments: TestDatabases.all)
    func newerButCompatible(_ database: String) async throws {
        try await CredentialMigrationTests.withOwnDatabase(database) { store in
            try await store.migrate()
            let latest = Migrations.latest
            try await Self.recordNewerStep(store, latest + 1, minimumReader: nil)
            try await Self.recordNewerStep(store, latest + 2, minimumReader: latest)
            let status = try await store.schemaStatus()
            #expect(status.newer.map(\.number) == [latest + 1, latest + 2] && status.blocking.isEmpty && status.pending.isEmpty)
            #expect(status.newer.first?.summary == "a step of a newer Tessera")
            #expect(try await store.pendingMigrations().isEmpty)
            #expect(try await store.applyMigrations().isEmpty)
        }
    }

    @Test("a newer build's step that needs a newer reader: checks and migrations refuse, changing nothing",
          arguments: TestDatabases.all)
    func newerAndIncompatible(_ database: String) async throws {
        try await CredentialMigrationTests.withOwnDatabase(database) { store in
            try await store.migrate()
            let latest = Migrations.latest
            try await Self.raw(store, "DELETE FROM schema_migrations WHERE version = 3")  // a step this build would run
            try await Self.recordNewerStep(store, latest + 1, minimumReader: nil)
            try await Self.recordNewerStep(store, latest + 2, minimumReader: latest + 1)
            let status = try await store.schemaStatus()
            #expect(status.blocking.map(\.number) == [latest + 2] && status.pending.map(\.number) == [3])
            let refusal = await #expect(throws: SchemaNewerThanBuild.self) { try await store.pendingMigrations() }
            #expect(refusal?.description.contains("step \(latest + 2) (a step of a newer Tessera) needs a Tessera that knows step \(latest + 1)") == true,
                    "\(refusal?.description ?? "")")
            await #expect(throws: SchemaNewerThanBuild.self) { try await store.applyMigrations() }
            await #expect(throws: SchemaNewerThanBuild.self) { try await store.migrate() }
            #expect(try await store.schemaStatus() == status, "the refused migration ran nothing")
        }
    }
}
