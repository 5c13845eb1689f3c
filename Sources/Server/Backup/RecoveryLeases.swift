import Foundation
import Logging
import TesseraCore

/// What a recovery job holds on a cluster: a ``Lease`` (one row per job), so exactly one node runs it; a node takes a
/// job up only once its node handed it back or stopped renewing it, and a node that failed to renew in time stops
/// before its next batch, its final writes refused once another node holds the lease.
enum RecoveryWork: LeasePurpose {
    static let kind = CredentialKind(rawValue: "recoveryLease")
    static let family = "recoveryLeases"
    static let tenantKey = "jobTenant"
    static let workKey = "job"
}

/// The lease of a recovery job: its ``Lease/work`` is the job's id.
typealias RecoveryLease = Lease<RecoveryWork>

/// Thrown by a job's write when its lease is held by another node: the job stops here and writes nothing more.
struct RecoveryLeaseLost: Error, CustomStringConvertible {
    let job: String
    var description: String { "The lease of recovery job \(job) is held by another node." }
}

extension LeaseKeeper where Purpose == RecoveryWork {
    /// Renews the lease every ``Leases/renewal`` until cancelled or lost, logging a loss and a failed renewal.
    func keep(app: TesseraApp, logger: Logger) async {
        let lease = initial
        await keep(store: app.store, clock: app.clock, lost: {
            logger.warning("Recovery job \(lease.work) of tenant \(lease.tenant): another node holds its lease now; stopping here")
        }, failed: { error in
            // The database may be failing over: keep trying; the job stops by itself if the lease runs out first.
            logger.warning("Could not renew the lease of recovery job \(lease.work): \(String(describing: error))")
        })
    }
}
