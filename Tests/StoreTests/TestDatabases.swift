import Foundation
@testable import Store
import TesseraCore
import TesseraTesting

/// The databases every store test runs against: SQLite always, and PostgreSQL when the test command
/// provides one in `TESSERA_TEST_POSTGRES_URL` (scripts/test always does).
enum TestDatabases {
    static var all: [String] {
        var urls = [":memory:"]
        if let url = ProcessInfo.processInfo.environment["TESSERA_TEST_POSTGRES_URL"], !url.isEmpty { urls.append(url) }
        return urls
    }
}

/// A fresh tenant in a migrated store; the store is closed afterwards.
func withTenant<T: Sendable>(_ database: String, _ body: (SQLDirectoryStore, DirectoryService, ProvisionedTenant) async throws -> T) async throws -> T {
    let store = try await SQLDirectoryStore.open(database)
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
