import Synchronization
import TesseraCore

/// A dictionary behind a lock that never grows past `limit` entries (it starts over when full: every
/// entry can be rebuilt from the store).
final class BoundedTable<Value: Sendable>: Sendable {
    private let entries = Mutex<[String: Value]>([:])
    private let limit: Int

    init(limit: Int = 10_000) {
        self.limit = limit
    }

    subscript(key: String) -> Value? {
        entries.withLock { $0[key] }
    }

    func set(_ value: Value, for key: String) {
        entries.withLock { table in
            if table.count >= limit { table.removeAll(keepingCapacity: true) }
            table[key] = value
        }
    }
}

/// What the token endpoint derives from the directory for one client and resource: the client's app, service
/// principal and client secrets' digests, and the roles it holds on the resource. Valid while the tenant's change log
/// has not moved, so a revoked secret, a removed assignment or a disabled app takes effect at the next request;
/// rebuilt from the store on any miss.
final class TokenCache: Sendable {
    struct Client: Sendable {
        let sequence: Int64
        let application: StoredObject
        let servicePrincipal: StoredObject?
        /// The digests of the application's and its service principal's client secrets (their `ClientSecretRecord`s).
        let secrets: [ClientSecretRecord]
    }

    struct Grant: Sendable {
        let sequence: Int64
        let resource: StoredObject
        let roles: [String]
    }

    private let clients = BoundedTable<Client>()
    private let grants = BoundedTable<Grant>()

    func client(tenant: TenantRecord, clientId: String) -> Client? {
        clients["\(tenant.id)|\(clientId)"].flatMap { $0.sequence == tenant.changeSequence ? $0 : nil }
    }

    func store(_ client: Client, tenant: String, clientId: String) {
        clients.set(client, for: "\(tenant)|\(clientId)")
    }

    func grant(tenant: TenantRecord, principal: String, resource: String) -> Grant? {
        grants["\(tenant.id)|\(principal)|\(resource)"].flatMap { $0.sequence == tenant.changeSequence ? $0 : nil }
    }

    func store(_ grant: Grant, tenant: String, principal: String, resource: String) {
        grants.set(grant, for: "\(tenant)|\(principal)|\(resource)")
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
    private let entries = BoundedTable<Entry>()
    /// Domain → tenant id, learned from reads (a domain never moves to another tenant here).
    private let domains = BoundedTable<String>()

    func tenantId(forSegment segment: String) -> String? {
        Identifier.isGUID(segment) ? segment : domains[segment]
    }

    func learn(domain: String, tenantId: String) {
        domains.set(tenantId, for: domain)
    }

    func record(_ segment: String, generations: TenantGenerations) -> TenantRecord? {
        guard let entry = entries[segment], ContinuousClock.now - entry.readAt < Self.maxAge,
              generations.current(entry.record.id) == entry.generation
        else { return nil }
        return entry.record
    }

    func store(_ record: TenantRecord, segment: String, generation: UInt64, readAt: ContinuousClock.Instant) {
        entries.set(Entry(record: record, generation: generation, readAt: readAt), for: segment)
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
