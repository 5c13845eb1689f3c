import ArgumentParser
import Foundation
import Store

/// `tessera migrate`: the database schema's migration steps, listed (`--check`, changing nothing) or applied. Steps are
/// forward-only: none is ever undone; a database a newer Tessera moved on is reported, and refused when that build
/// recorded a step this one must not run on.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply the database schema's pending migration steps (serve applies them at start too), or list them with --check.",
        discussion: """
        Exit status: 0 when nothing is pending (or every pending step was applied); \(pendingExitCode) with --check when \
        steps are pending; \(newerSchemaExitCode) when a newer Tessera moved the schema past what this one can run on \
        (nothing is changed); 1 for any other failure (the database cannot be opened).
        """)

    /// `--check`'s exit status when steps are pending.
    static let pendingExitCode: Int32 = 3
    /// The exit status when the schema is newer than this build can run on.
    static let newerSchemaExitCode: Int32 = 4

    @Option(help: "Data folder (SQLite database); $TESSERA_DATA when set.")
    var data: String = ProcessInfo.processInfo.environment["TESSERA_DATA"] ?? "./tessera-data"

    @Option(help: "Database: a postgres:// URL, or omit for SQLite in the data folder. Default: $TESSERA_DATABASE.")
    var database: String?

    @Flag(help: "List the steps that would run, changing nothing.")
    var check = false

    func run() async throws {
        let url = database ?? ProcessInfo.processInfo.environment["TESSERA_DATABASE"] ?? (data + "/tessera.sqlite")
        let (lines, code) = try await Self.execute(database: url, check: check)
        for line in lines { print(line) }
        if code != 0 { throw ExitCode(code) }
    }

    /// What the command prints and its exit status for the database at `url` (a postgres:// URL or an SQLite path).
    static func execute(database url: String, check: Bool) async throws -> (lines: [String], code: Int32) {
        let isPostgres = url.hasPrefix("postgres://") || url.hasPrefix("postgresql://")
        let path = url.hasPrefix("sqlite://") ? String(url.dropFirst("sqlite://".count)) : url
        // Checking a data folder with no database yet must not make one.
        if check, !isPostgres, path != ":memory:", !FileManager.default.fileExists(atPath: path) {
            return (["No database at \(path): every step would run when it is made."]
                    + describe(pending: SQLDirectoryStore.migrationSteps), pendingExitCode)
        }
        let store = try await SQLDirectoryStore.open(url)
        do {
            let result = try await check ? Self.checkSteps(store) : Self.applySteps(store)
            try await store.shutdown()
            return result
        } catch {
            try? await store.shutdown()
            throw error
        }
    }

    static func checkSteps(_ store: SQLDirectoryStore) async throws -> (lines: [String], code: Int32) {
        let status = try await store.schemaStatus()
        var lines = describe(newer: status)
        if !status.blocking.isEmpty { return (lines, newerSchemaExitCode) }
        guard !status.pending.isEmpty else {
            lines.append("The database schema is up to date (migration steps up to \(status.latestKnown)).")
            return (lines, 0)
        }
        return (lines + describe(pending: status.pending), pendingExitCode)
    }

    static func applySteps(_ store: SQLDirectoryStore) async throws -> (lines: [String], code: Int32) {
        let ran: [MigrationStep]
        do { ran = try await store.applyMigrations() } catch let error as SchemaNewerThanBuild {
            return (describe(newer: error.status), newerSchemaExitCode)
        }
        let status = try await store.schemaStatus()
        let lines = describe(newer: status)
        guard !ran.isEmpty else { return (lines + ["Nothing to apply: the database schema is up to date (migration steps up to \(status.latestKnown))."], 0) }
        return (lines + ["Applied \(ran.count) migration step\(ran.count == 1 ? "" : "s"):"] + ran.map(line), 0)
    }

    /// One step in a line: its number right-aligned, then its summary.
    static func line(_ step: MigrationStep) -> String {
        let number = String(step.number)
        return String(repeating: " ", count: max(2, 5 - number.count)) + number + "  " + step.summary
    }

    static func describe(pending: [MigrationStep]) -> [String] {
        ["\(pending.count) migration step\(pending.count == 1 ? " is" : "s are") pending:"] + pending.map(line)
    }

    /// Steps a newer Tessera applied: whether this build may still run on them, and which it must not.
    static func describe(newer status: SchemaStatus) -> [String] {
        guard !status.newer.isEmpty else { return [] }
        let blocking = Set(status.blocking.map(\.number))
        var lines = ["The database has migration steps a newer Tessera applied (this one knows steps up to \(status.latestKnown)):"]
        for step in status.newer {
            let verdict = blocking.contains(step.number)
                ? "needs a Tessera that knows step \(step.minimumReader ?? step.number): this one must not run on it"
                : "this one can still run on it"
            lines.append(line(step) + " (\(verdict))")
        }
        if !blocking.isEmpty { lines.append("Upgrade this Tessera before it runs on this database; nothing was changed.") }
        return lines
    }
}
