import Testing
import Store
import TesseraCore
import TesseraTesting

/// How the sync tests start: a tenant "Contoso" (contoso.test) provisioned on a new in-memory store, its directory
/// service on a test clock, and the tenant's record as the sync cycle reads it.
struct SyncTestTenant {
    let store: SQLDirectoryStore
    let clock: TestClock
    let directory: DirectoryService
    let provisioned: ProvisionedTenant
    let tenant: TenantRecord

    static func make() async throws -> SyncTestTenant {
        let store = try await SQLDirectoryStore.open(":memory:")
        try await store.migrate()
        let clock = TestClock()
        let directory = DirectoryService(store: store, clock: clock)
        let provisioned = try await TenantProvisioner(directory: directory).create(name: "Contoso", domain: "contoso.test")
        let tenant = try #require(try await store.read { tx in try await tx.tenant(provisioned.tenantId) })
        return SyncTestTenant(store: store, clock: clock, directory: directory, provisioned: provisioned, tenant: tenant)
    }
}
