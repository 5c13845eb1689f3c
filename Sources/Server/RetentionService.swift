import Logging
public import ServiceLifecycle
import TesseraCore

/// Permanently deletes soft-deleted objects once they are past the 30-day retention, hourly and at start.
/// Safe to run on every node of a cluster: purging an object twice is a no-op.
public struct RetentionService: Service {
    let app: TesseraApp
    let interval: Duration
    let logger = Logger(label: "tessera.retention")

    public init(app: TesseraApp, interval: Duration = .seconds(3600)) {
        self.app = app
        self.interval = interval
    }

    public func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            await sweep()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    /// One pass over every tenant.
    public func sweep() async {
        do {
            for tenant in try await app.store.read({ tx in try await tx.tenants() }) {
                let purged = try await app.directory.purgeExpiredDeletedItems(tenant: tenant.id)
                if purged > 0 { logger.info("Purged \(purged) deleted objects past retention in tenant \(tenant.id)") }
                let signIns = try await app.directory.purgeExpiredSignIns(tenant: tenant.id)
                if signIns > 0 { logger.info("Purged \(signIns) sign-in records older than \(DirectoryService.signInRetentionDays) days in tenant \(tenant.id)") }
            }
        } catch {
            logger.error("Retention sweep failed: \(String(describing: error))")
        }
    }
}
