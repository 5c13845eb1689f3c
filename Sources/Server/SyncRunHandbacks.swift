import Foundation
import Logging
import Sync
import TesseraCore

/// Directory sync runs and cross-tenant synchronization runs free for a node to take up (``SyncRunLease``): those a
/// stopping node handed back after a page (a batch) it committed, or whose lease ran out because its node stopped
/// renewing it (killed, cut off). ``HandbackService``
/// looks once a second, with the recovery jobs; each free run is resumed here in the background from its last
/// checkpoint, and of two nodes resuming at once the lease's compare-and-set lets exactly one run it.
struct SyncRunHandbacks {
    let app: TesseraApp
    let logger = Logger(label: "tessera.lifecycle")

    /// The leases that are over (handed back or run out) at the app's clock.
    func pending() async throws -> [SyncRunLease] {
        let now = app.clock.now
        return try await SyncRunLeases.all(store: app.store).filter { $0.isOver(at: now) }
    }

    /// Resumes the free runs here (background jobs, which graceful shutdown waits for); a node that is draining takes
    /// none. Returns the leases it found free.
    @discardableResult
    func takeUp() async -> [SyncRunLease] {
        guard !app.lifecycle.isDraining else { return [] }
        do {
            let free = try await pending()
            for lease in free { launch(lease) }
            return free
        } catch {
            logger.warning("Could not look for handed-back sync runs: \(String(describing: error))")
            return []
        }
    }

    /// Resumes the run `lease` names, unless another node takes it first; a run whose tenant or connector is gone
    /// has its lease removed.
    func launch(_ lease: SyncRunLease) {
        let app = app, logger = logger
        app.jobs.start {
            do {
                let tenant = try await app.store.read { tx in try await tx.tenant(lease.tenant) }
                let connectors = try await SyncSettings.load(tenant: lease.tenant, store: app.store).connectors
                let jobs = try await SynchronizationSettings.load(tenant: lease.tenant, store: app.store).jobs
                let connector = connectors.first { SyncCycle.work(connector: $0.name) == lease.work }
                let job = jobs.first { CrossTenantSyncRunner.work(job: $0.id) == lease.work }
                guard let tenant, connector != nil || job != nil else {
                    try await SyncRunLeases.abandon(store: app.store, tenant: lease.tenant, work: lease.work, now: app.clock.now)
                    return
                }
                logger.info("Taking up \(lease.work) of tenant \(tenant.id): \(lease.handedBack == nil ? "its node stopped renewing its lease" : "handed back by a node that stopped")")
                if let job {
                    let report = try await CrossTenantSyncRunner(app: app, baseURL: app.network.publicURLs.first ?? "https://localhost:8443")
                        .run(.init(tenant: tenant, servicePrincipalID: job.servicePrincipalID, jobID: job.id))
                    logger.info("Cross-tenant synchronization \(job.id) of tenant \(tenant.id) (resumed): \(report.status), \(report.added) added, \(report.updated) updated, \(report.deleted) deleted")
                    return
                }
                guard let connector else { return }
                var sync = SyncCycle(directory: app.directory, clock: app.clock)
                let lifecycle = app.lifecycle
                sync.isDraining = { lifecycle.isDraining }
                for run in try await sync.run(tenant: tenant, connector: connector.name) {
                    logger.info("Sync of tenant \(tenant.id) from \(run.connector) (resumed): \(run.status), \(run.added) added, \(run.updated) updated, \(run.deleted) deleted, \(run.quarantined) quarantined")
                }
            } catch is SyncRunInProgress {
                // Another node took it up first.
            } catch {
                logger.warning("Could not resume \(lease.work) of tenant \(lease.tenant): \(String(describing: error))")
            }
        }
    }
}
