public import Foundation
import Synchronization

/// What a family of leases is for (a directory sync or cross-tenant synchronization run, a recovery job): the kind and
/// family its rows are stored under, and the names its payload gives the work's tenant and the work, so rows written
/// before the two kinds shared one type still read back.
public protocol LeasePurpose: Sendable {
    static var kind: CredentialKind { get }
    /// Every lease of the purpose in one family of the deployment's records, so a node lists them in one indexed query.
    static var family: String { get }
    /// The payload's keys for ``Lease/tenant`` and ``Lease/work``.
    static var tenantKey: String { get }
    static var workKey: String { get }
}

/// The durations and the tenant every lease shares.
public enum Leases {
    /// How long a lease lasts from its last renewal.
    public static let duration: TimeInterval = 30
    /// How often the node running the work renews its lease (a third of its duration: two renewals may fail in a row).
    public static let renewal: Duration = .seconds(10)
    /// The deployment's own records (the server's `SigningKey.settingsTenant`): never swept as a tenant's expired
    /// records are, so a lease that ran out keeps its work's place until a node takes it up.
    public static let tenant = "_deployment"
}

/// Which node runs a piece of work that one node of a cluster runs at a time (a directory sync run, a cross-tenant
/// synchronization run, a recovery job): a lease, one row per piece of work (a credential record of the deployment,
/// never one shared value), that the node running it renews every ``Leases/renewal`` to ``Leases/duration`` from then.
/// A node takes the work up only when its lease has run out (its node was killed, or handed it back when stopping,
/// which ends the lease at once) or when there is none, and takes it by compare-and-set on the holder, so of two nodes
/// trying at once exactly one gets it; a node that failed to renew in time stops before its next step, and its writes
/// made with ``holds(_:)`` or ``renew(_:now:)`` in their transaction are refused once another node holds the lease.
/// Every decision uses the caller's clock.
public struct Lease<Purpose: LeasePurpose>: CredentialRecord, Equatable {
    /// Who holds the lease: a value new at every taking (the compare-and-set's expected state).
    public struct Holder: RawRepresentable, Codable, Sendable, Hashable {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        static func new() -> Holder { Holder(rawValue: Identifier.make()) }
    }

    public static var kind: CredentialKind { Purpose.kind }

    public var id: String
    /// The work's tenant, and the work (`sync:<connector>`, `crosstenantsync:<job id>`, a recovery job's id).
    public var tenant: String
    public var work: String
    public var holder: Holder
    /// The lease runs out at this instant; a node may take the work up from then on.
    public var expires: Date
    /// When the holder handed the work back (it was stopping), ending the lease early.
    public var handedBack: Date?

    public var state: Holder { holder }
    public var owner: String? { nil }
    public var family: String? { Purpose.family }

    public static func id(tenant: String, work: String) -> String { "\(tenant)/\(work)".lowercased() }

    init(tenant: String, work: String, holder: Holder, expires: Date, handedBack: Date? = nil) {
        self.id = Self.id(tenant: tenant, work: work)
        self.tenant = tenant
        self.work = work
        self.holder = holder
        self.expires = expires
        self.handedBack = handedBack
    }

    public func isOver(at now: Date) -> Bool { expires <= now }

    // MARK: Operations

    /// Takes the lease of `work` in `tx` when it has none or it has run out; nil when another node holds it.
    public static func take(_ tx: any DirectoryTransaction, tenant: String, work: String, now: Date) async throws -> Lease? {
        let fresh = Lease(tenant: tenant, work: work, holder: .new(), expires: now.addingTimeInterval(Leases.duration))
        if let row = try await tx.credentialRow(tenant: Leases.tenant, kind: kind, id: fresh.id) {
            let current = try Lease(row)
            guard current.isOver(at: now) else { return nil }
            // Of two nodes taking at once, the second finds the holder changed (on PostgreSQL it waits for the first's
            // row lock first; SQLite has one writer).
            return try await tx.replaceCredential(fresh, tenant: Leases.tenant, ifStateIs: current.holder) ? fresh : nil
        }
        do {
            try await tx.insertCredential(fresh, tenant: Leases.tenant)
            return fresh
        } catch is DirectoryError {
            return nil  // another node inserted it first (its insert committed before this one's conflict was decided)
        }
    }

    /// Whether the lease is still this holder's (in `tx`, so a write commits only while it is).
    public func holds(_ tx: any DirectoryTransaction) async throws -> Bool {
        guard let row = try await tx.credentialRow(tenant: Leases.tenant, kind: Self.kind, id: id) else { return false }
        return row.state == holder.rawValue
    }

    /// Renews the lease in `tx` to ``Leases/duration`` from `now`; nil when it is no longer this holder's.
    public func renew(_ tx: any DirectoryTransaction, now: Date) async throws -> Lease? {
        var next = self
        next.expires = now.addingTimeInterval(Leases.duration)
        next.handedBack = nil
        return try await tx.replaceCredential(next, tenant: Leases.tenant, ifStateIs: holder) ? next : nil
    }

    /// Ends the lease now, in `tx`, so another node takes the work up at its next look; false when it was not this
    /// holder's. The stored holder changes too, so a renewal this holder's keeper was about to make cannot bring the
    /// lease back (it would keep every other node off the work for another ``Leases/duration``).
    public func handBack(_ tx: any DirectoryTransaction, now: Date) async throws -> Bool {
        var ended = self
        ended.holder = .new()
        ended.expires = now
        ended.handedBack = now
        return try await tx.replaceCredential(ended, tenant: Leases.tenant, ifStateIs: holder)
    }

    /// Removes the lease in `tx` (its work is over); false when it was not this holder's.
    public func end(_ tx: any DirectoryTransaction) async throws -> Bool {
        guard try await holds(tx) else { return false }
        return try await tx.deleteCredential(tenant: Leases.tenant, kind: Self.kind, id: id)
    }

    /// Every lease of the purpose (one per piece of work that is running or waiting to be taken up).
    public static func all(store: any DirectoryStore) async throws -> [Lease] {
        try await store.read { tx in try await tx.credentials(Lease.self, tenant: Leases.tenant, family: Purpose.family) }
    }

    // MARK: Coding

    /// The payload's keys: the purpose names the tenant's and the work's.
    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ name: String) { stringValue = name }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }

        static var id: Key { Key("id") }
        static var holder: Key { Key("holder") }
        static var expires: Key { Key("expires") }
        static var handedBack: Key { Key("handedBack") }
        static var tenant: Key { Key(Purpose.tenantKey) }
        static var work: Key { Key(Purpose.workKey) }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        id = try container.decode(String.self, forKey: .id)
        tenant = try container.decode(String.self, forKey: .tenant)
        work = try container.decode(String.self, forKey: .work)
        holder = try container.decode(Holder.self, forKey: .holder)
        expires = try container.decode(Date.self, forKey: .expires)
        handedBack = try container.decodeIfPresent(Date.self, forKey: .handedBack)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(id, forKey: .id)
        try container.encode(tenant, forKey: .tenant)
        try container.encode(work, forKey: .work)
        try container.encode(holder, forKey: .holder)
        try container.encode(expires, forKey: .expires)
        try container.encodeIfPresent(handedBack, forKey: .handedBack)
    }
}

/// The lease a node's running work holds: renewed in the background while the work runs (``keep(store:clock:lost:failed:)``),
/// and with each write the work makes under it.
public final class LeaseKeeper<Purpose: LeasePurpose>: Sendable {
    private let current: Mutex<Lease<Purpose>?>
    /// The lease as taken: its holder is what every write under it checks.
    public let initial: Lease<Purpose>

    public init(_ lease: Lease<Purpose>) {
        initial = lease
        current = Mutex(lease)
    }

    /// The lease as last renewed; nil once it is lost.
    public var lease: Lease<Purpose>? { current.withLock { $0 } }

    /// Whether the work must stop: the lease was lost, or has run out by this node's clock without a renewal (another
    /// node may take the work up from then on).
    public func mustStop(now: Date) -> Bool {
        guard let lease else { return true }
        return lease.isOver(at: now)
    }

    /// Records a renewal made at `now`, or (`held` false) the loss of the lease.
    public func renewed(_ held: Bool, at now: Date) {
        current.withLock { lease in
            if !held { lease = nil }
            lease?.expires = now.addingTimeInterval(Leases.duration)
        }
    }

    /// Records the loss of the lease.
    public func lose() { current.withLock { $0 = nil } }

    /// Renews the lease every ``Leases/renewal`` until cancelled or lost; `lost` hears of a loss, `failed` of a renewal
    /// that failed (the database failing over), which is tried again: the work stops by itself if the lease runs out
    /// first.
    public func keep(store: any DirectoryStore, clock: any TimeSource, lost: @Sendable () -> Void = {},
                     failed: @Sendable (any Error) -> Void = { _ in }) async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: Leases.renewal) } catch { return }
            guard let lease else { return }
            let now = clock.now
            do {
                let held = try await store.write { tx in try await lease.renew(tx, now: now) } != nil
                renewed(held, at: now)
                if !held {
                    lost()
                    return
                }
            } catch {
                failed(error)
            }
        }
    }
}
