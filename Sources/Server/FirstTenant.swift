public import TesseraCore

extension TesseraApp {
    /// Makes the first tenant of an empty deployment (`serve` on a new database). Nodes of a cluster started at once on
    /// an empty database race for it: the tenant's domain is unique, so one transaction commits and the others roll
    /// back whole; a node that lost finds the winner's tenant and answers nil. Any other failure stands.
    public func makeFirstTenant() async throws -> ProvisionedTenant? {
        do {
            return try await TenantProvisioner(directory: directory).create(name: "Tessera", domain: "tessera.local")
        } catch {
            guard try await store.read({ tx in try await tx.tenants() }).isEmpty else { return nil }
            throw error
        }
    }
}
