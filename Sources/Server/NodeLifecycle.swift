import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TesseraCore

/// Where this node is in its life, for a graceful shutdown behind a load balancer (issue 19):
///
/// 1. **draining**, from SIGTERM: `/readyz` answers 503 so the load balancer stops sending new requests here, while
///    every request that still arrives is served as usual (`serve --drain-seconds`, longer than the balancer's checks);
///    background work that can be taken up elsewhere (a recovery job, a directory or cross-tenant sync run) stops at its next batch and
///    is handed back to the cluster (``Handbacks``, ``SyncRunHandbacks``) at once, instead of holding the node until it ends;
/// 2. **stopping**: the listener closes and requests in flight finish (within `serve --shutdown-timeout`).
public final class NodeLifecycle: Sendable {
    private let phase = Atomic<Int>(0)

    public init() {}

    /// From SIGTERM on: the node says it is not ready, hands back its recovery jobs and takes up none another node handed back.
    public var isDraining: Bool { phase.load(ordering: .acquiring) >= 1 }
    /// From the end of the drain on: the listener is closed.
    public var isStopping: Bool { phase.load(ordering: .acquiring) >= 2 }

    func beginDraining() { _ = phase.compareExchange(expected: 0, desired: 1, ordering: .acquiringAndReleasing) }
    func beginStopping() { phase.store(2, ordering: .releasing) }
}

/// The first service to hear of a graceful shutdown (listed last in the outer group): it marks the node draining,
/// waits `drain` while the node keeps serving, then marks it stopping and returns, so the group goes on to close the
/// listener and stop the other services.
struct DrainService: Service {
    let lifecycle: NodeLifecycle
    let drain: Duration
    let logger = Logger(label: "tessera.lifecycle")

    func run() async throws {
        // Returns when graceful shutdown begins; throws when the group is cancelled outright (then nothing drains).
        try await gracefulShutdown()
        lifecycle.beginDraining()
        if drain > .zero {
            logger.info("Shutting down: /readyz now answers 503; serving for \(drain) more while the load balancer notices")
            try? await Task.sleep(for: drain)
        }
        lifecycle.beginStopping()
        logger.info("Shutting down: no new connections; finishing the requests in flight")
    }
}

/// Recovery jobs free for a node to take up: those whose lease a stopping node handed back, or ran out because its
/// node stopped renewing it (killed, cut off). Every node looks once a second (one indexed read of the leases, one row
/// per job that is running or waiting: nothing is appended to a shared value, so two nodes handing back at once lose
/// nothing), and takes each free job by compare-and-set on its lease, so exactly one node runs it.
struct Handbacks {
    let app: TesseraApp
    let logger = Logger(label: "tessera.lifecycle")

    /// The leases that are over (handed back or run out) at the app's clock.
    func pending() async throws -> [RecoveryLease] {
        let now = app.clock.now
        return try await RecoveryLease.all(store: app.store).filter { $0.isOver(at: now) }
    }

    /// Takes up the free jobs and runs them here; a node that is draining takes none. Returns the leases this node took.
    @discardableResult
    func takeUp() async -> [RecoveryLease] {
        guard !app.lifecycle.isDraining else { return [] }
        do {
            var taken: [RecoveryLease] = []
            let jobs = RecoveryJobs(app: app)
            for free in try await pending() {
                guard let lease = try await jobs.takeUp(tenant: free.tenant, job: free.work) else { continue }
                logger.info("Taking up recovery job \(free.work) of tenant \(free.tenant): \(free.handedBack == nil ? "its node stopped renewing its lease" : "handed back by a node that stopped")")
                jobs.launch(lease)
                taken.append(lease)
            }
            return taken
        } catch {
            logger.warning("Could not take up handed-back work: \(String(describing: error))")
            return []
        }
    }
}

/// Looks for free recovery jobs and sync runs (handed back, or whose lease ran out) once a second and takes
/// them up (``Handbacks``, ``SyncRunHandbacks``).
struct HandbackService: Service {
    let app: TesseraApp
    var interval: Duration = .seconds(1)

    func run() async throws {
        let handbacks = Handbacks(app: app)
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            await handbacks.takeUp()
            await SyncRunHandbacks(app: app).takeUp()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
