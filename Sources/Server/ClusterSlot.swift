import Foundation
import Logging
import TesseraCore

/// Work done once per interval across a cluster (a directory sync run, the hourly release of resolved conflicts, a
/// cross-tenant synchronization run): the node that consumes the interval's single-use key does it. A node that is
/// stopping claims no new slot, and one whose work it could not finish (cancelled at the end of its shutdown timeout,
/// or failed while draining) releases the key, so another node takes the same interval's slot at its next look
/// instead of the work waiting for the next interval.
struct ClusterSlot {
    let app: TesseraApp
    let logger = Logger(label: "tessera.lifecycle")

    /// Runs `work` if this node claims `key` of `tenant` (held for `seconds`, after which it lapses anyway); nil when
    /// another node holds it or this node is stopping.
    func run<T: Sendable>(tenant: String, key: String, for seconds: TimeInterval, _ work: () async throws -> T) async throws -> T? {
        guard !app.lifecycle.isDraining else { return nil }
        let now = app.clock.now
        let claimed = try await app.store.write { tx in
            try await tx.consumeOnce(tenant: tenant, key: key, expiresAt: Timestamp.format(now.addingTimeInterval(seconds)),
                                     now: Timestamp.format(now))
        }
        guard claimed else { return nil }
        let result: T
        do {
            result = try await work()
        } catch {
            if Task.isCancelled || error is CancellationError || app.lifecycle.isDraining { await release(tenant: tenant, key: key) }
            throw error
        }
        // Work that notices cancellation may return early rather than throw: what it did is not the whole interval's.
        if Task.isCancelled { await release(tenant: tenant, key: key) }
        return result
    }

    /// Forgets the claim, from a task of its own (this one may be cancelled, and a cancelled task's query may not run).
    func release(tenant: String, key: String) async {
        let store = app.store
        let logger = logger
        await Task {
            do {
                try await store.write { tx in try await tx.release(tenant: tenant, key: key) }
                logger.info("Released \(key) of tenant \(tenant): this node stopped before finishing it; another node takes it")
            } catch {
                logger.warning("Could not release \(key) of tenant \(tenant) (it lapses by itself): \(String(describing: error))")
            }
        }.value
    }
}
