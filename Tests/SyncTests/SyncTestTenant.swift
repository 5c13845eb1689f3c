import Foundation
import Testing
@testable import Store
import TesseraCore
import TesseraTesting

/// How the sync tests start: a tenant "Contoso" (contoso.test) provisioned on a new store, its directory service on a
/// test clock, and the tenant's record as the sync cycle reads it. The store is an in-memory SQLite database, or, for
/// a PostgreSQL URL (``databases``), a new database on that server, dropped by ``close()``.
struct SyncTestTenant {
    let store: SQLDirectoryStore
    let clock: TestClock
    let directory: DirectoryService
    let provisioned: ProvisionedTenant
    let tenant: TenantRecord
    /// The PostgreSQL database made for the test, and a store on its server to drop it with.
    private var made: (name: String, server: SQLDirectoryStore)?

    /// SQLite, and PostgreSQL when `TESSERA_TEST_POSTGRES_URL` names a server.
    static var databases: [String] {
        var databases = ["sqlite"]
        if let url = ProcessInfo.processInfo.environment["TESSERA_TEST_POSTGRES_URL"], !url.isEmpty { databases.append(url) }
        return databases
    }

    static func make(_ database: String = "sqlite") async throws -> SyncTestTenant {
        var made: (name: String, server: SQLDirectoryStore)?
        let store: SQLDirectoryStore
        if database == "sqlite" {
            store = try await SQLDirectoryStore.open(":memory:")
        } else {
            let name = "tessera_sync_\(UUID().uuidString.prefix(8).lowercased())"
            var components = try #require(URLComponents(string: database))
            components.path = "/" + name
            let server = try await SQLDirectoryStore.open(database)
            _ = try await server.backend.withReadSession { try await $0.execute("CREATE DATABASE \(name)", []) }
            made = (name, server)
            store = try await SQLDirectoryStore.open(try #require(components.string))
        }
        try await store.migrate()
        let clock = TestClock()
        let directory = DirectoryService(store: store, clock: clock)
        let provisioned = try await TenantProvisioner(directory: directory).create(name: "Contoso", domain: "contoso.test")
        let tenant = try #require(try await store.read { tx in try await tx.tenant(provisioned.tenantId) })
        return SyncTestTenant(store: store, clock: clock, directory: directory, provisioned: provisioned, tenant: tenant, made: made)
    }

    /// Shuts the store down (and drops a PostgreSQL test database).
    func close() async throws {
        try await store.shutdown()
        if let (name, server) = made {
            _ = try? await server.backend.withReadSession { try await $0.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)", []) }
            try await server.shutdown()
        }
    }
}
