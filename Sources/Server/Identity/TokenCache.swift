import Synchronization
import TesseraCore

/// What the token endpoint derives from the directory for one client and resource: the client's app and
/// service principal, and the roles it holds on the resource. Valid while the tenant's change log has
/// not moved, so a revoked secret, a removed assignment or a disabled app takes effect at the next
/// request; rebuilt from the store on any miss.
final class TokenCache: Sendable {
    struct Client: Sendable {
        let sequence: Int64
        let application: StoredObject
        let servicePrincipal: StoredObject?
    }

    struct Grant: Sendable {
        let sequence: Int64
        let resource: StoredObject
        let roles: [String]
    }

    private let clients = Mutex<[String: Client]>([:])
    private let grants = Mutex<[String: Grant]>([:])
    private let limit = 10_000

    func client(tenant: TenantRecord, clientId: String) -> Client? {
        clients.withLock { $0["\(tenant.id)|\(clientId)"] }.flatMap { $0.sequence == tenant.changeSequence ? $0 : nil }
    }

    func store(_ client: Client, tenant: String, clientId: String) {
        clients.withLock { table in
            if table.count >= limit { table.removeAll(keepingCapacity: true) }
            table["\(tenant)|\(clientId)"] = client
        }
    }

    func grant(tenant: TenantRecord, principal: String, resource: String) -> Grant? {
        grants.withLock { $0["\(tenant.id)|\(principal)|\(resource)"] }.flatMap { $0.sequence == tenant.changeSequence ? $0 : nil }
    }

    func store(_ grant: Grant, tenant: String, principal: String, resource: String) {
        grants.withLock { table in
            if table.count >= limit { table.removeAll(keepingCapacity: true) }
            table["\(tenant)|\(principal)|\(resource)"] = grant
        }
    }
}

/// Tenant records by the path segment that named them (id or domain), for the identity platform's hot
/// path. An entry holds while this process has committed no write to the tenant since it was read, and
/// for at most `maxAge`, which bounds how long a change committed by another process or node (a revoked
/// secret, a removed assignment) takes to reach token issuance here.
final class TenantCache: Sendable {
    struct Entry: Sendable {
        let record: TenantRecord
        let generation: UInt64
        let readAt: ContinuousClock.Instant
    }

    static let maxAge: Duration = .seconds(1)
    private let entries = Mutex<[String: Entry]>([:])
    /// Domain → tenant id, learned from reads (a domain never moves to another tenant here).
    private let domains = Mutex<[String: String]>([:])

    func tenantId(forSegment segment: String) -> String? {
        Identifier.isGUID(segment) ? segment : domains.withLock { $0[segment] }
    }

    func learn(domain: String, tenantId: String) {
        domains.withLock { table in
            if table.count >= 10_000 { table.removeAll(keepingCapacity: true) }
            table[domain] = tenantId
        }
    }

    func record(_ segment: String, generations: TenantGenerations) -> TenantRecord? {
        guard let entry = entries.withLock({ $0[segment] }),
              ContinuousClock.now - entry.readAt < Self.maxAge,
              generations.current(entry.record.id) == entry.generation
        else { return nil }
        return entry.record
    }

    func store(_ record: TenantRecord, segment: String, generation: UInt64, readAt: ContinuousClock.Instant) {
        entries.withLock { table in
            if table.count >= 10_000 { table.removeAll(keepingCapacity: true) }
            table[segment] = Entry(record: record, generation: generation, readAt: readAt)
        }
    }
}

extension TesseraApp {
    /// The tenant a path segment names, from the cache when it is still known to be current.
    func tenantRecord(_ segment: String) async throws -> TenantRecord? {
        let key = segment.lowercased()
        if let cached = tenantCache.record(key, generations: directory.generations) { return cached }
        // Note the generation and time before reading, so a write that races the read leaves the entry stale.
        let knownId = tenantCache.tenantId(forSegment: key)
        let generation = knownId.map { directory.generations.current($0) }
        let readAt = ContinuousClock.now
        guard let record = try await store.read({ tx in try await tx.tenant(key) }) else { return nil }
        tenantCache.learn(domain: record.domain, tenantId: record.id)
        if let generation, record.id == knownId {
            tenantCache.store(record, segment: key, generation: generation, readAt: readAt)
        }
        return record
    }
}
