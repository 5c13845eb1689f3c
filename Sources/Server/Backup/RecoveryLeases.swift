import Foundation
import Logging
import Synchronization
import TesseraCore

/// Which node runs a recovery job, on a cluster: a lease, one row per job (a credential record of the deployment, never
/// one shared value), that the node running the job renews every ``RecoveryLeases/renewal`` to
/// ``RecoveryLeases/duration`` from then. A node takes a job up only when its lease has run out (its node was killed, or
/// handed it back when stopping, which ends the lease at once) or when it has none, and takes it by compare-and-set on
/// the holder, so of two nodes trying at once exactly one gets it; a node that failed to renew in time stops before its
/// next batch, and its final writes are refused once another node holds the lease.
struct RecoveryLease: CredentialRecord, Equatable {
    /// Who holds the lease: a value new at every taking (the compare-and-set's expected state).
    struct Holder: RawRepresentable, Codable, Sendable, Hashable {
        var rawValue: String
        init(rawValue: String) { self.rawValue = rawValue }
        static func new() -> Holder { Holder(rawValue: Identifier.make()) }
    }

    static let kind = CredentialKind(rawValue: "recoveryLease")
    /// Every lease in one family of the deployment's records, so a node lists them all in one indexed query.
    static let leases = "recoveryLeases"
    static let tenant = SigningKey.settingsTenant

    var id: String
    /// The job's tenant and id.
    var jobTenant: String
    var job: String
    var holder: Holder
    /// The lease runs out at this instant; a node may take the job up from then on.
    var expires: Date
    /// When the holder handed the job back (it was stopping), ending the lease early.
    var handedBack: Date?

    var state: Holder { holder }
    var owner: String? { nil }
    var family: String? { Self.leases }

    static func id(tenant: String, job: String) -> String { "\(tenant)/\(job)".lowercased() }

    init(jobTenant: String, job: String, holder: Holder, expires: Date, handedBack: Date? = nil) {
        self.id = Self.id(tenant: jobTenant, job: job)
        self.jobTenant = jobTenant
        self.job = job
        self.holder = holder
        self.expires = expires
        self.handedBack = handedBack
    }

    func isOver(at now: Date) -> Bool { expires <= now }
}

/// The lease operations; every decision uses the app's clock.
enum RecoveryLeases {
    /// How long a lease lasts from its last renewal.
    static let duration: TimeInterval = 30
    /// How often the node running a job renews its lease (a third of its duration: two renewals may fail in a row).
    static let renewal: Duration = .seconds(10)

    /// Takes the lease of a job in `tx` when it has none or it has run out; nil when another node holds it.
    static func take(_ tx: any DirectoryTransaction, tenant: String, job: String, now: Date) async throws -> RecoveryLease? {
        let fresh = RecoveryLease(jobTenant: tenant, job: job, holder: .new(), expires: now.addingTimeInterval(duration))
        if let row = try await tx.credentialRow(tenant: RecoveryLease.tenant, kind: RecoveryLease.kind, id: fresh.id) {
            let current = try RecoveryLease(row)
            guard current.isOver(at: now) else { return nil }
            // Of two nodes taking at once, the second finds the holder changed (on PostgreSQL it waits for the first's
            // row lock first; SQLite has one writer).
            return try await tx.replaceCredential(fresh, tenant: RecoveryLease.tenant, ifStateIs: current.holder) ? fresh : nil
        }
        do {
            try await tx.insertCredential(fresh, tenant: RecoveryLease.tenant)
            return fresh
        } catch is DirectoryError {
            return nil  // another node inserted it first (its insert committed before this one's conflict was decided)
        }
    }

    /// Whether `lease` is still this holder's (in `tx`, so a final write commits only while it is).
    static func holds(_ tx: any DirectoryTransaction, _ lease: RecoveryLease) async throws -> Bool {
        guard let row = try await tx.credentialRow(tenant: RecoveryLease.tenant, kind: RecoveryLease.kind, id: lease.id) else { return false }
        return row.state == lease.holder.rawValue
    }

    /// Renews `lease` to `duration` from `now`; nil when it is no longer this holder's.
    static func renew(_ lease: RecoveryLease, store: any DirectoryStore, now: Date) async throws -> RecoveryLease? {
        var next = lease
        next.expires = now.addingTimeInterval(duration)
        let renewed = next
        return try await store.write { tx in
            try await tx.replaceCredential(renewed, tenant: RecoveryLease.tenant, ifStateIs: lease.holder) ? renewed : nil
        }
    }

    /// Ends `lease` now, in `tx`, so another node takes the job up at its next look; false when it was not this holder's.
    static func handBack(_ tx: any DirectoryTransaction, _ lease: RecoveryLease, now: Date) async throws -> Bool {
        var ended = lease
        ended.expires = now
        ended.handedBack = now
        return try await tx.replaceCredential(ended, tenant: RecoveryLease.tenant, ifStateIs: lease.holder)
    }

    /// Removes `lease` in `tx` (its job is over); false when it was not this holder's.
    static func end(_ tx: any DirectoryTransaction, _ lease: RecoveryLease) async throws -> Bool {
        guard try await holds(tx, lease) else { return false }
        return try await tx.deleteCredential(tenant: RecoveryLease.tenant, kind: RecoveryLease.kind, id: lease.id)
    }

    /// Every lease of the deployment (one per job that is running or waiting to be taken up).
    static func all(store: any DirectoryStore) async throws -> [RecoveryLease] {
        try await store.read { tx in
            try await tx.credentials(RecoveryLease.self, tenant: RecoveryLease.tenant, family: RecoveryLease.leases)
        }
    }
}

/// Thrown by a job's write when its lease is held by another node: the job stops here and writes nothing more.
struct RecoveryLeaseLost: Error, CustomStringConvertible {
    let job: String
    var description: String { "The lease of recovery job \(job) is held by another node." }
}

/// The lease a running job holds, renewed in the background while the job runs.
final class LeaseKeeper: Sendable {
    private let current: Mutex<RecoveryLease?>
    let initial: RecoveryLease

    init(_ lease: RecoveryLease) {
        initial = lease
        current = Mutex(lease)
    }

    /// The lease as last renewed; nil once it is lost.
    var lease: RecoveryLease? { current.withLock { $0 } }

    /// Whether the job must stop: the lease was lost, or has run out by this node's clock without a renewal (another
    /// node may take it up from then on).
    func mustStop(now: Date) -> Bool {
        guard let lease else { return true }
        return lease.isOver(at: now)
    }

    func lose() { current.withLock { $0 = nil } }

    /// Renews the lease every ``RecoveryLeases/renewal`` until cancelled or lost.
    func keep(app: TesseraApp, logger: Logger) async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: RecoveryLeases.renewal) } catch { return }
            guard let lease else { return }
            do {
                if let renewed = try await RecoveryLeases.renew(lease, store: app.store, now: app.clock.now) {
                    current.withLock { $0 = renewed }
                } else {
                    logger.warning("Recovery job \(lease.job) of tenant \(lease.jobTenant): another node holds its lease now; stopping here")
                    lose()
                    return
                }
            } catch {
                // The database may be failing over: keep trying; the job stops by itself if the lease runs out first.
                logger.warning("Could not renew the lease of recovery job \(lease.job): \(String(describing: error))")
            }
        }
    }
}
