public import Foundation
import Synchronization
public import TesseraCore

/// Which node runs a directory sync run (`sync:<connector>`) or a cross-tenant synchronization run
/// (`crosstenantsync:<job id>`) on a cluster: a lease, one row per run, that the node running it renews every
/// ``SyncRunLeases/renewal`` to ``SyncRunLeases/duration`` from then, as a recovery job's lease works. A node starts
/// or resumes the run only when the lease has run out (its node was killed, or handed it back when stopping, which
/// ends it at once) or when there is none, and takes it by compare-and-set on the holder, so exactly one node runs it.
/// Where the run is (its ``SyncRunCheckpoint``) is a row of its own, written after each batch the run committed, in
/// the same transaction as a renewal of the lease, so a node that lost the lease writes no checkpoint.
public struct SyncRunLease: CredentialRecord, Equatable {
    /// Who holds the lease: a value new at every taking (the compare-and-set's expected state).
    public struct Holder: RawRepresentable, Codable, Sendable, Hashable {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        static func new() -> Holder { Holder(rawValue: Identifier.make()) }
    }

    public static let kind = CredentialKind(rawValue: "syncRunLease")
    /// Every lease in one family of the deployment's records, so a node lists them all in one indexed query.
    static let leases = "syncRunLeases"
    /// The deployment's own records (the server's `SigningKey.settingsTenant`): never swept as a tenant's expired
    /// records are, so a lease that ran out keeps its run's place until a node takes it up.
    public static let tenant = "_deployment"

    public var id: String
    /// The run's tenant, and what runs: `sync:<connector>` or `crosstenantsync:<job id>`.
    public var runTenant: String
    public var work: String
    public var holder: Holder
    /// The lease runs out at this instant; a node may take the run up from then on.
    public var expires: Date
    /// When the holder handed the run back (it was stopping), ending the lease early.
    public var handedBack: Date?

    public var state: Holder { holder }
    public var owner: String? { nil }
    public var family: String? { Self.leases }

    static func id(tenant: String, work: String) -> String { "\(tenant)/\(work)".lowercased() }

    init(runTenant: String, work: String, holder: Holder, expires: Date, handedBack: Date? = nil) {
        self.id = Self.id(tenant: runTenant, work: work)
        self.runTenant = runTenant
        self.work = work
        self.holder = holder
        self.expires = expires
        self.handedBack = handedBack
    }

    public func isOver(at now: Date) -> Bool { expires <= now }
}

/// Where a run that a node began stands: what it committed so far (its counts, the cursor of its source, what waits
/// for its end), as JSON the run's engine reads back. One row per run, next to its lease; gone once the run ends.
struct SyncRunCheckpoint: CredentialRecord {
    struct Saved: RawRepresentable, Codable, Sendable, Hashable {
        var rawValue: String
        init(rawValue: String) { self.rawValue = rawValue }
    }

    static let kind = CredentialKind(rawValue: "syncRunCheckpoint")
    /// Records of a tenant share one key space: the lease's id, marked.
    static func id(lease: String) -> String { "\(lease)#checkpoint" }

    var id: String
    var progress: String
    var expires: Date
    var state: Saved { Saved(rawValue: "saved") }
    var owner: String? { nil }
}

/// The lease operations; every decision uses the caller's clock.
public enum SyncRunLeases {
    /// How long a lease lasts from its last renewal.
    public static let duration: TimeInterval = 30
    /// How often the node running a run renews its lease (a third of its duration: two renewals may fail in a row).
    static let renewal: Duration = .seconds(10)

    /// Takes the lease of `work` when it has none or it has run out; nil when another node holds it. With the lease
    /// comes the run's checkpoint, when a node that held it before committed part of the run.
    public static func take(store: any DirectoryStore, tenant: String, work: String, now: Date) async throws -> (SyncRunLease, String?)? {
        let fresh = SyncRunLease(runTenant: tenant, work: work, holder: .new(), expires: now.addingTimeInterval(duration))
        return try await store.write { tx in
            let taken: Bool
            if let row = try await tx.credentialRow(tenant: SyncRunLease.tenant, kind: SyncRunLease.kind, id: fresh.id) {
                let current = try SyncRunLease(row)
                guard current.isOver(at: now) else { return nil }
                // Of two nodes taking at once, the second finds the holder changed (on PostgreSQL it waits for the first's
                // row lock first; SQLite has one writer).
                taken = try await tx.replaceCredential(fresh, tenant: SyncRunLease.tenant, ifStateIs: current.holder)
            } else {
                do {
                    try await tx.insertCredential(fresh, tenant: SyncRunLease.tenant)
                    taken = true
                } catch is DirectoryError {
                    taken = false  // another node inserted it first
                }
            }
            guard taken else { return nil }
            let saved = try await tx.credential(SyncRunCheckpoint.self, tenant: SyncRunLease.tenant, id: SyncRunCheckpoint.id(lease: fresh.id))
            return (fresh, saved?.progress)
        }
    }

    /// Renews `lease` to `duration` from `now` in `tx`; false when it is no longer this holder's.
    static func renew(_ tx: any DirectoryTransaction, _ lease: SyncRunLease, now: Date) async throws -> Bool {
        var next = lease
        next.expires = now.addingTimeInterval(duration)
        next.handedBack = nil
        return try await tx.replaceCredential(next, tenant: SyncRunLease.tenant, ifStateIs: lease.holder)
    }

    /// Saves where the run stands, with a renewal of its lease (one transaction); false when the lease is another's.
    static func checkpoint(store: any DirectoryStore, _ lease: SyncRunLease, progress: String, now: Date) async throws -> Bool {
        try await store.write { tx in
            guard try await renew(tx, lease, now: now) else { return false }
            let saved = SyncRunCheckpoint(id: SyncRunCheckpoint.id(lease: lease.id), progress: progress, expires: now.addingTimeInterval(365 * 86_400))
            if !(try await tx.replaceCredential(saved, tenant: SyncRunLease.tenant, ifStateIs: saved.state)) {
                try await tx.insertCredential(saved, tenant: SyncRunLease.tenant)
            }
            return true
        }
    }

    /// Ends `lease` now, keeping the run's checkpoint, so another node takes the run up at its next look; false when
    /// it was not this holder's.
    public static func handBack(store: any DirectoryStore, _ lease: SyncRunLease, now: Date) async throws -> Bool {
        var ended = lease
        ended.expires = now
        ended.handedBack = now
        return try await store.write { [ended] tx in try await tx.replaceCredential(ended, tenant: SyncRunLease.tenant, ifStateIs: lease.holder) }
    }

    /// Removes `lease` and the run's checkpoint (the run is over); false when the lease was not this holder's.
    @discardableResult
    public static func end(store: any DirectoryStore, _ lease: SyncRunLease) async throws -> Bool {
        try await store.write { tx in
            guard let row = try await tx.credentialRow(tenant: SyncRunLease.tenant, kind: SyncRunLease.kind, id: lease.id),
                  row.state == lease.holder.rawValue else { return false }
            _ = try await tx.deleteCredential(tenant: SyncRunLease.tenant, kind: SyncRunCheckpoint.kind, id: SyncRunCheckpoint.id(lease: lease.id))
            return try await tx.deleteCredential(tenant: SyncRunLease.tenant, kind: SyncRunLease.kind, id: lease.id)
        }
    }

    /// Removes the lease and checkpoint of a run that can no longer run (its tenant, connector or job is gone), if no
    /// node holds it; false when one does.
    @discardableResult
    public static func abandon(store: any DirectoryStore, tenant: String, work: String, now: Date) async throws -> Bool {
        guard let (lease, _) = try await take(store: store, tenant: tenant, work: work, now: now) else { return false }
        return try await end(store: store, lease)
    }

    /// Every lease of the deployment (one per run that is running or waiting to be taken up).
    public static func all(store: any DirectoryStore) async throws -> [SyncRunLease] {
        try await store.read { tx in try await tx.credentials(SyncRunLease.self, tenant: SyncRunLease.tenant, family: SyncRunLease.leases) }
    }
}

/// Thrown when a run asked for (on demand, or by a node's schedule) is running on another node: its lease is held.
public struct SyncRunInProgress: Error, CustomStringConvertible {
    public let tenant: String
    public let work: String

    public init(tenant: String, work: String) {
        self.tenant = tenant
        self.work = work
    }

    public var description: String { "A run of \(work) of tenant \(tenant) is in progress on another node." }
}

/// The lease a running run holds, renewed in the background while it runs (``keep(store:clock:)``) and with each
/// checkpoint.
public final class SyncRunKeeper: Sendable {
    private let current: Mutex<SyncRunLease?>
    public let initial: SyncRunLease

    public init(_ lease: SyncRunLease) {
        initial = lease
        current = Mutex(lease)
    }

    /// The lease as last renewed; nil once it is lost.
    var lease: SyncRunLease? { current.withLock { $0 } }

    /// Whether the run must stop: the lease was lost, or has run out by this node's clock without a renewal (another
    /// node may take the run up from then on).
    public func mustStop(now: Date) -> Bool {
        guard let lease else { return true }
        return lease.isOver(at: now)
    }

    /// Records a renewal (made at `now`), or the loss of the lease.
    func renewed(_ held: Bool, at now: Date) {
        current.withLock { lease in
            if !held { lease = nil }
            lease?.expires = now.addingTimeInterval(SyncRunLeases.duration)
        }
    }

    /// Saves a checkpoint of the run, renewing the lease; false (and the lease is lost) when another node holds it.
    public func checkpoint(store: any DirectoryStore, progress: String, now: Date) async throws -> Bool {
        let held = try await SyncRunLeases.checkpoint(store: store, initial, progress: progress, now: now)
        renewed(held, at: now)
        return held
    }

    /// Renews the lease every ``SyncRunLeases/renewal`` until cancelled or lost.
    public func keep(store: any DirectoryStore, clock: any TimeSource) async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: SyncRunLeases.renewal) } catch { return }
            guard lease != nil else { return }
            let now = clock.now
            // A failed renewal (the database failing over) is tried again; the run stops by itself if the lease runs out first.
            if let held = try? await store.write({ [initial] tx in try await SyncRunLeases.renew(tx, initial, now: now) }) {
                renewed(held, at: now)
                if !held { return }
            }
        }
    }
}
