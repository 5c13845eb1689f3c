import Synchronization

/// A counter per tenant, bumped after every write this process commits through the directory service.
/// Caches of derived facts (the token endpoint's) compare it to know they are still true without a
/// database round trip; changes from other processes or nodes are caught by a short revalidation age.
public final class TenantGenerations: Sendable {
    private let counters = Mutex<[String: UInt64]>([:])

    public init() {}

    /// Records that `tenant` changed.
    public func bump(_ tenant: String) {
        counters.withLock { $0[tenant, default: 0] &+= 1 }
    }

    /// The tenant's current generation.
    public func current(_ tenant: String) -> UInt64 {
        counters.withLock { $0[tenant] ?? 0 }
    }
}

extension DirectoryService {
    /// Runs `body` in a write transaction and, once it has committed, bumps the tenant's generation.
    func write<T: Sendable>(_ tenant: String, _ body: @Sendable (any DirectoryTransaction) async throws -> T) async throws -> T {
        let result = try await store.write(body)
        generations.bump(tenant)
        return result
    }
}
