import Synchronization
import TesseraCore

/// Each tenant's FIDO2 configuration (its passkey profiles), read once per change of the tenant: every passkey
/// sign-in and registration judges the passkey by it.
final class Fido2ConfigurationCache: Sendable {
    private let configurations = Mutex<[String: (sequence: Int64, configuration: Fido2Configuration)]>([:])

    func configuration(app: TesseraApp, tenant: TenantRecord) async throws -> Fido2Configuration {
        if let cached = configurations.withLock({ $0[tenant.id] }), cached.sequence == tenant.changeSequence { return cached.configuration }
        let (configuration, _) = try await app.directory.fido2Configuration(tenant: tenant.id)
        configurations.withLock { $0[tenant.id] = (tenant.changeSequence, configuration) }
        return configuration
    }
}
