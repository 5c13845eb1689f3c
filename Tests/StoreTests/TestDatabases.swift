import Foundation
@testable import Store
import TesseraCore
import TesseraTesting

/// The databases every store test runs against: SQLite in memory (one connection for reads and writes) and in a
/// file (WAL, a writer and readers, as served) always, and PostgreSQL when the test command provides one in
/// `TESSERA_TEST_POSTGRES_URL` (scripts/test always does).
enum TestDatabases {
    /// Stands for a new SQLite file in a temporary folder, removed when the test ends (see `opened`).
    static let sqliteFile = "sqlite file"

    static var all: [String] {
        var urls = [":memory:", sqliteFile]
        if let url = ProcessInfo.processInfo.environment["TESSERA_TEST_POSTGRES_URL"], !url.isEmpty { urls.append(url) }
        return urls
    }

    /// The URL to open for `database`, and what to remove afterwards.
    static func opened(_ database: String) -> (url: String, folder: URL?) {
        guard database == sqliteFile else { return (database, nil) }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-store-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return (folder.appendingPathComponent("tessera.sqlite").path, folder)
    }
}

/// A store on `url` whose writes, on an SQLite file, wait up to `lockWait` for another store's write lock: tests that
/// put several stores on one file wait longer than a server would, since the whole suite running at once can keep a
/// holder from being scheduled for seconds.
func openStore(_ url: String, lockWait: Duration = .seconds(120)) async throws -> SQLDirectoryStore {
    guard url != ":memory:", !url.hasPrefix("postgres") else { return try await SQLDirectoryStore.open(url) }
    return SQLDirectoryStore(backend: try SQLiteBackend(path: url, lockWait: lockWait))
}

/// A fresh tenant in a migrated store; the store is closed afterwards.
func withTenant<T: Sendable>(_ database: String, _ body: (SQLDirectoryStore, DirectoryService, ProvisionedTenant) async throws -> T) async throws -> T {
    let (url, folder) = TestDatabases.opened(database)
    defer { if let folder { try? FileManager.default.removeItem(at: folder) } }
    let store = try await SQLDirectoryStore.open(url)
    try await store.migrate()
    let directory = DirectoryService(store: store, clock: TestClock())
    do {
        let tenant = try await TenantProvisioner(directory: directory).create(
            name: "Test", domain: "t\(UUID().uuidString.prefix(8).lowercased()).test")
        let result = try await body(store, directory, tenant)
        try await store.shutdown()
        return result
    } catch {
        try? await store.shutdown()
        throw error
    }
}

extension DirectoryService {
    func makeUser(_ tenant: ProvisionedTenant, _ name: String, extra: [String: JSONValue] = [:]) async throws -> StoredObject {
        var body: [String: JSONValue] = [
            "accountEnabled": true, "displayName": .string(name), "mailNickname": .string(name.replacingOccurrences(of: " ", with: "")),
            "userPrincipalName": .string("\(name.replacingOccurrences(of: " ", with: "").lowercased())@\(tenant.domain)"),
            "passwordProfile": ["password": "Str0ng!Passw0rd"],
        ]
        for (key, value) in extra { body[key] = value }
        return try await create(tenant: tenant.tenantId, kind: .user, body: body, actor: .system)
    }
}
