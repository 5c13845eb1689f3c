import Foundation
import Logging
public import ServiceLifecycle
import Sync
import TesseraCore

/// Runs every active cross-tenant synchronization job on its schedule (`schedule.interval`, 40 minutes): each minute
/// it looks for jobs whose interval has passed since their last run, and runs each one whose slot this node claims, so
/// a cluster runs a job once per interval.
public struct CrossTenantSyncService: Service {
    let app: TesseraApp
    let tick: Duration
    let logger = Logger(label: "tessera.crosstenantsync")

    public init(app: TesseraApp, tick: Duration = .seconds(60)) {
        self.app = app
        self.tick = tick
    }

    public func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            await cycle()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: tick) }
        }
    }

    /// One pass over every tenant's jobs; a tenant whose pass fails is logged and the next goes on.
    @discardableResult
    public func cycle() async -> [TenantFailure] {
        let now = app.clock.now
        var sweep = TenantSweep(logger: logger)
        let tenants = await sweep.attempt("listing the tenants", tenant: nil) { try await app.store.read { tx in try await tx.tenants() } } ?? []
        let base = app.network.publicURLs.first ?? "https://localhost:8443"
        for tenant in tenants {
            await sweep.attempt("cross-tenant synchronization", tenant: tenant.id, job: "crosstenantsync", telemetry: app.telemetry) {
                let settings = try await SynchronizationSettings.load(tenant: tenant.id, store: app.store)
                for job in settings.jobs where job.scheduleState == "Active" {
                    let last = job.lastRunAt.flatMap(Timestamp.parse) ?? .distantPast
                    guard now.timeIntervalSince(last) >= Double(job.intervalSeconds) else { continue }
                    let slot = Int(now.timeIntervalSince1970) / job.intervalSeconds
                    // A node that is stopping claims nothing; one cancelled mid-run releases the slot (``ClusterSlot``).
                    let ran = try await ClusterSlot(app: app).run(tenant: tenant.id, key: "crosstenantsync:\(job.id):\(slot)",
                                                                  for: Double(job.intervalSeconds) * 2) { () async throws -> CrossTenantSyncReport? in
                        do {
                            return try await CrossTenantSyncRunner(app: app, baseURL: base)
                                .run(.init(tenant: tenant, servicePrincipalID: job.servicePrincipalID, jobID: job.id))
                        } catch let busy as SyncRunInProgress {
                            logger.info("\(busy)")  // another node runs (or resumes) it
                            return nil
                        }
                    }
                    guard let report = ran ?? nil else { continue }
                    logger.info("Cross-tenant synchronization \(job.id) of tenant \(tenant.id): \(report.status), \(report.added) added, \(report.updated) updated, \(report.deleted) deleted, \(report.skipped) skipped, \(report.failed) failed")
                }
            }
        }
        return sweep.failures
    }
}
