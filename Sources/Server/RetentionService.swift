import Backup
import InternetAccess
import Logging
public import ServiceLifecycle
import TesseraCore

/// The hourly housekeeping, also run at start: permanently deletes soft-deleted objects past the 30-day retention,
/// expired sessions, refresh tokens and device codes, old sign-in, traffic and provisioning records, and takes each
/// tenant's daily snapshot if today's is missing (so days the server was down are caught up when it starts), dropping
/// snapshots past their retention. Safe on every node of a cluster:
/// purging twice is a no-op, and the day's snapshot is claimed once.
public struct RetentionService: Service {
    let app: TesseraApp
    let interval: Duration
    let logger = Logger(label: "tessera.retention")

    public init(app: TesseraApp, interval: Duration = .seconds(3600)) {
        self.app = app
        self.interval = interval
    }

    public func run() async throws {
        // Jobs a stopped server was running are taken up again first.
        await RecoveryJobs(app: app).resumeInterrupted()
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            await sweep()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    /// One pass over every tenant. A step that fails for one tenant is logged and returned, and the sweep goes on
    /// with that tenant's other steps and the other tenants.
    @discardableResult
    public func sweep() async -> [TenantFailure] {
        var sweep = TenantSweep(logger: logger)
        let tenants = await sweep.attempt("listing the tenants", tenant: nil) { try await app.store.read { tx in try await tx.tenants() } } ?? []
        for tenant in tenants {
            // A node that is stopping starts no new tenant's housekeeping (the other nodes' hourly sweeps do it) and so
            // claims no day's snapshot it might not finish.
            if app.lifecycle.isDraining { break }
            await sweep.attempt("purging deleted objects past retention", tenant: tenant.id, job: "retention", telemetry: app.telemetry) {
                let purged = try await app.directory.purgeExpiredDeletedItems(tenant: tenant.id)
                if purged > 0 { logger.info("Purged \(purged) deleted objects past retention in tenant \(tenant.id)") }
            }
            await sweep.attempt("purging old sign-in records", tenant: tenant.id, job: "signInRetention", telemetry: app.telemetry) {
                let signIns = try await app.directory.purgeExpiredSignIns(tenant: tenant.id)
                if signIns > 0 { logger.info("Purged \(signIns) sign-in records older than \(DirectoryService.signInRetentionDays) days in tenant \(tenant.id)") }
            }
            await sweep.attempt("purging expired sessions, refresh tokens and device codes", tenant: tenant.id, job: "credentialRetention",
                                telemetry: app.telemetry) {
                let records = try await app.store.purgeExpiredCredentials(tenant: tenant.id, now: app.clock.now)
                if records > 0 { logger.info("Purged \(records) expired sessions, refresh tokens and device codes in tenant \(tenant.id)") }
            }
            await sweep.attempt("purging old traffic records", tenant: tenant.id, job: "trafficRetention", telemetry: app.telemetry) {
                let records = try await TrafficLog.purgeExpired(tenant: tenant.id, store: app.store, now: app.clock.now)
                if records > 0 { logger.info("Purged \(records) traffic records older than \(TrafficLog.retentionDays) days in tenant \(tenant.id)") }
            }
            await sweep.attempt("purging old provisioning logs", tenant: tenant.id, job: "provisioningLogRetention", telemetry: app.telemetry) {
                let entries = try await CrossTenantSyncRunner.purgeExpiredLogs(tenant: tenant.id, store: app.store, now: app.clock.now)
                if entries > 0 {
                    logger.info("Purged \(entries) provisioning log entries older than \(CrossTenantSyncRunner.provisioningLogRetentionDays) days in tenant \(tenant.id)")
                }
            }
            await sweep.attempt("the daily snapshot", tenant: tenant.id, job: "snapshot", telemetry: app.telemetry) {
                if let snapshot = try await app.backup.daily(tenant: tenant.id) {
                    logger.info("Took snapshot \(snapshot.id) of tenant \(tenant.id): \(snapshot.objectCount) objects, \(snapshot.changedObjects) changed")
                }
            }
        }
        return sweep.failures
    }
}
