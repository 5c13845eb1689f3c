import Foundation
import Testing
@testable import Store

/// Two stores on one database, as two nodes of a cluster open it.
enum SharedDatabase {
    /// The test command's PostgreSQL when it provides one, else an SQLite file.
    static var `default`: String {
        if let url = ProcessInfo.processInfo.environment["TESSERA_TEST_POSTGRES_URL"], !url.isEmpty { return url }
        return "sqlite file"
    }

    /// Two stores on one new database of `database`'s kind (for PostgreSQL, a database of its own, dropped afterwards),
    /// as two nodes open it; the first is migrated.
    static func withTwoStores(_ database: String, _ body: (SQLDirectoryStore, SQLDirectoryStore) async throws -> Void) async throws {
        var stores: [SQLDirectoryStore] = []
        var cleanup: () async -> Void = {}
        var failure: (any Error)?
        do {
            if database.hasPrefix("postgres") {
                let name = "tessera_shared_\(UUID().uuidString.prefix(8).lowercased())"
                var components = try #require(URLComponents(string: database))
                components.path = "/" + name
                let admin = try await SQLDirectoryStore.open(database)
                cleanup = {
                    _ = try? await admin.backend.withReadSession { try await $0.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)", []) }
                    try? await admin.shutdown()
                }
                _ = try await admin.backend.withReadSession { try await $0.execute("CREATE DATABASE \(name)", []) }
                let url = try #require(components.string)
                for _ in 0..<2 { stores.append(try await SQLDirectoryStore.open(url)) }
            } else {
                let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-shared-\(UUID().uuidString)")
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                cleanup = { try? FileManager.default.removeItem(at: folder) }
                // Each waits up to 120 s for the other's write lock, not serve's 10 s: with the whole suite running on
                // two cores a holder can stay unscheduled past 10 s (as StoreTests' openStore does; 4820e7e).
                let path = folder.appendingPathComponent("tessera.sqlite").path
                for _ in 0..<2 { stores.append(SQLDirectoryStore(backend: try SQLiteBackend(path: path, lockWait: .seconds(120)))) }
            }
            try await stores[0].migrate()
            try await body(stores[0], stores[1])
        } catch {
            failure = error
        }
        for store in stores { try? await store.shutdown() }
        await cleanup()
        if let failure { throw failure }
    }
}
