import Foundation
import Logging
public import ServiceLifecycle
import Sync
import TesseraCore

/// Runs directory sync for every tenant with a connector every `interval` (Entra Connect's default: 30 minutes).
/// On a cluster each interval's run is claimed once, so only one node syncs a tenant at a time.
public struct SyncService: Service {
    let app: TesseraApp
    let interval: Duration
    let logger = Logger(label: "tessera.sync")

    public init(app: TesseraApp, interval: Duration) {
        self.app = app
        self.interval = interval
    }

    public func run() async throws {
        // Woken at least hourly: Entra releases resolved attribute conflicts every hour, whatever the sync interval.
        let tick = min(interval, .seconds(3600))
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            await cycle()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: tick) }
        }
    }

    /// One pass over every tenant that has a connector: a sync run if this node claims the interval's slot, and the
    /// release of resolved attribute conflicts if it claims the hour's (a run releases them too). A tenant whose
    /// sync fails is logged and returned, and the pass goes on with the next.
    @discardableResult
    public func cycle() async -> [TenantFailure] {
        let seconds = max(1, Int(interval.components.seconds))
        let now = app.clock.now
        let slot = Int(now.timeIntervalSince1970) / seconds, hour = Int(now.timeIntervalSince1970) / 3600
        var sync = SyncCycle(directory: app.directory, clock: app.clock)
        let lifecycle = app.lifecycle
        // A draining node's run stops after its next page and is handed back (``SyncRunHandbacks`` resumes it elsewhere).
        sync.isDraining = { lifecycle.isDraining }
        var sweep = TenantSweep(logger: logger)
        let tenants = await sweep.attempt("listing the tenants", tenant: nil) { try await app.store.read { tx in try await tx.tenants() } } ?? []
        for tenant in tenants {
            await sweep.attempt("directory sync", tenant: tenant.id, job: "sync", telemetry: app.telemetry) {
                guard !(try await SyncSettings.load(tenant: tenant.id, store: app.store).connectors.isEmpty) else { return }
                // A node that is stopping claims nothing; one cancelled mid-run releases the slot (``ClusterSlot``).
                let slots = ClusterSlot(app: app)
                let ran = try await slots.run(tenant: tenant.id, key: "sync-slot:\(seconds):\(slot)", for: Double(seconds) * 2) {
                    do {
                        for run in try await sync.run(tenant: tenant) {
                            logger.info("Sync of tenant \(tenant.id) from \(run.connector): \(run.status), \(run.added) added, \(run.updated) updated, \(run.deleted) deleted, \(run.quarantined) quarantined")
                        }
                    } catch let busy as SyncRunInProgress {
                        logger.info("\(busy)")
                    }
                    return true
                }
                if ran != true {
                    _ = try await slots.run(tenant: tenant.id, key: "sync-release:\(hour)", for: 3600 * 2) {
                        let released = try await sync.releaseResolvedConflicts(tenant: tenant)
                        if released > 0 { logger.info("Sync of tenant \(tenant.id): \(released) resolved attribute conflicts released") }
                    }
                }
            }
        }
        return sweep.failures
    }
}
