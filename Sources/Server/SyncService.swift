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
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            await cycle()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    /// One pass: every tenant that has a connector, if this node claims the slot.
    public func cycle() async {
        let seconds = max(1, Int(interval.components.seconds))
        let now = app.clock.now
        let slot = Int(now.timeIntervalSince1970) / seconds
        do {
            for tenant in try await app.store.read({ tx in try await tx.tenants() }) {
                guard !(try await SyncSettings.load(tenant: tenant.id, store: app.store).connectors.isEmpty) else { continue }
                let claimed = try await app.store.write { tx in
                    try await tx.consumeOnce(tenant: tenant.id, key: "sync-slot:\(seconds):\(slot)",
                                             expiresAt: Timestamp.format(now.addingTimeInterval(Double(seconds) * 2)), now: Timestamp.format(now))
                }
                guard claimed else { continue }
                for run in try await SyncCycle(directory: app.directory, clock: app.clock).run(tenant: tenant) {
                    logger.info("Sync of tenant \(tenant.id) from \(run.connector): \(run.status), \(run.added) added, \(run.updated) updated, \(run.deleted) deleted, \(run.quarantined) quarantined")
                }
            }
        } catch {
            logger.error("Sync cycle failed: \(String(describing: error))")
        }
    }
}
