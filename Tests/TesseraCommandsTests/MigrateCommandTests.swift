import ArgumentParser
import Foundation
import Testing
import TesseraTesting
@testable import TesseraCommands

/// `tessera migrate [--check]` on an SQLite data folder and, when the test command provides one, a new PostgreSQL
/// database: --check lists the pending steps and exits 3 changing nothing; without it the steps are applied and listed;
/// then --check exits 0.
@Suite struct MigrateCommandTests {
    /// A database URL of its own for `kind` ("sqlite" or a PostgreSQL server's URL), removed afterwards.
    static func withDatabase(_ kind: String, _ body: (String) async throws -> Void) async throws {
        if kind == "sqlite" {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-migrate-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            try await body(folder.appendingPathComponent("tessera.sqlite").path)
            return
        }
        let name = "tessera_migrate_\(UUID().uuidString.prefix(8).lowercased())"
        try await psql(kind, "CREATE DATABASE \(name)")
        var components = try #require(URLComponents(string: kind))
        components.path = "/" + name
        do {
            try await body(try #require(components.string))
        } catch {
            try? await psql(kind, "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
            throw error
        }
        try await psql(kind, "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    }

    /// Runs one statement with psql (the test target has no database driver of its own), waited for off the task
    /// threads (see `ChildProcess`).
    static func psql(_ url: String, _ statement: String) async throws {
        let ca = ProcessInfo.processInfo.environment["TESSERA_TEST_POSTGRES_CA"].map { ["PGSSLROOTCERT=\($0)"] } ?? []
        _ = try await ChildProcess.run("/usr/bin/env", ca + ["psql", url, "-v", "ON_ERROR_STOP=1", "-q", "-c", statement])
    }

    static var databases: [String] {
        ["sqlite"] + [ProcessInfo.processInfo.environment["TESSERA_TEST_POSTGRES_URL"]].compactMap { $0?.isEmpty == false ? $0 : nil }
    }

    @Test("--check lists every pending step and exits 3; migrate applies and lists them; then --check exits 0", arguments: databases)
    func checkThenApply(_ kind: String) async throws {
        try await Self.withDatabase(kind) { url in
            let check = try await MigrateCommand.execute(database: url, check: true)
            #expect(check.code == MigrateCommand.pendingExitCode)
            // On SQLite the first line says there is no database yet; then the count and one line a step.
            let listed = Array(check.lines.drop { !$0.hasSuffix("pending:") }.dropFirst())
            let steps = listed.count
            #expect(steps >= 14 && check.lines.contains("\(steps) migration steps are pending:"), "\(check.lines)")
            #expect(kind != "sqlite" || check.lines.first?.hasPrefix("No database at ") == true, "\(check.lines)")
            #expect(check.lines.contains("   14  each migration step recorded with its summary and the oldest build that can run on it"))
            if kind == "sqlite" { #expect(!FileManager.default.fileExists(atPath: url), "--check made no database") }
            let applied = try await MigrateCommand.execute(database: url, check: false)
            #expect(applied.code == 0)
            #expect(applied.lines == ["Applied \(steps) migration steps:"] + listed, "\(applied.lines)")
            let again = try await MigrateCommand.execute(database: url, check: true)
            #expect(again.code == 0 && again.lines == ["The database schema is up to date (migration steps up to \(steps))."], "\(again.lines)")
            let nothing = try await MigrateCommand.execute(database: url, check: false)
            #expect(nothing.code == 0 && nothing.lines.first?.hasPrefix("Nothing to apply") == true)
        }
    }

    @Test("the command is registered and parses its options")
    func parses() throws {
        let command = try TesseraCommand.parseAsRoot(["migrate", "--data", "somewhere", "--check"])
        let migrate = try #require(command as? MigrateCommand)
        #expect(migrate.check && migrate.data == "somewhere" && migrate.database == nil)
    }
}
