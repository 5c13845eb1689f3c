import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TesseraCore

/// Where this node is in its life, for a graceful shutdown behind a load balancer (issue 19):
///
/// 1. **draining**, from SIGTERM: `/readyz` answers 503 so the load balancer stops sending new requests here, while
///    every request that still arrives is served as usual (`serve --drain-seconds`, longer than the balancer's checks);
///    background work that can be taken up elsewhere (a recovery job) stops at its next batch and is handed back to the
///    cluster (``Handbacks``) at once, instead of holding the node until it ends;
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

/// Work a node shutting down gave back to the cluster, kept as one deployment setting (`_deployment`/`handedBack`) that every
/// node reads once a second: the first node to claim an entry's version takes the work up at once, rather than when a
/// node next starts. Today the entries are recovery jobs (a recovery converges: the next run does what is left).
struct Handbacks {
    let app: TesseraApp
    static let key = "handedBack"
    let logger = Logger(label: "tessera.lifecycle")

    struct Entry: Sendable, Equatable {
        let tenant: String
        let job: String
        let version: Int64

        var json: JSONValue { ["tenant": .string(tenant), "job": .string(job), "version": .int(version)] }

        init(tenant: String, job: String, version: Int64) {
            self.tenant = tenant
            self.job = job
            self.version = version
        }

        init?(_ value: JSONValue) {
            guard let tenant = value["tenant"]?.stringValue, let job = value["job"]?.stringValue, let version = value["version"]?.intValue else { return nil }
            self.init(tenant: tenant, job: job, version: version)
        }
    }

    /// The entries waiting for a node.
    func pending() async throws -> [Entry] {
        let value = try await app.store.read { tx in try await tx.setting(tenant: SigningKey.settingsTenant, key: Self.key) }
        return (value?.arrayValue ?? []).compactMap(Entry.init)
    }

    /// Records that `entry` is free for another node.
    func handBack(_ entry: Entry) async throws {
        try await app.store.write { tx in
            let current = try await tx.setting(tenant: SigningKey.settingsTenant, key: Self.key)?.arrayValue ?? []
            try await tx.putSetting(tenant: SigningKey.settingsTenant, key: Self.key, value: .array(current + [entry.json]))
        }
    }

    /// Takes up what other nodes handed back: each entry's version is claimed once in the cluster (the same claim a
    /// starting node makes for a job left active), the claimed ones run here, and every entry seen leaves the list.
    /// Returns the jobs this node took.
    @discardableResult
    func takeUp() async -> [Entry] {
        guard !app.lifecycle.isDraining else { return [] }
        do {
            let entries = try await pending()
            guard !entries.isEmpty else { return [] }
            var taken: [Entry] = []
            let jobs = RecoveryJobs(app: app)
            for entry in entries {
                let now = app.clock.now
                let claimed = try await app.store.write { tx in
                    try await tx.consumeOnce(tenant: entry.tenant, key: "recovery-resume:\(entry.job):\(entry.version)",
                                             expiresAt: Timestamp.format(now.addingTimeInterval(86_400)), now: Timestamp.format(now))
                }
                guard claimed else { continue }
                logger.info("Taking up recovery job \(entry.job) of tenant \(entry.tenant), handed back by a node that stopped")
                try await jobs.update(tenant: entry.tenant, id: entry.job) { $0["tesseraResumedDateTime"] = .string(Timestamp.format(now)) }
                jobs.launch(tenant: entry.tenant, id: entry.job)
                taken.append(entry)
            }
            let seen = entries
            try await app.store.write { tx in
                let current = (try await tx.setting(tenant: SigningKey.settingsTenant, key: Self.key)?.arrayValue ?? []).compactMap(Entry.init)
                let left = current.filter { !seen.contains($0) }
                try await tx.putSetting(tenant: SigningKey.settingsTenant, key: Self.key, value: .array(left.map(\.json)))
            }
            return taken
        } catch {
            logger.warning("Could not take up handed-back work: \(String(describing: error))")
            return []
        }
    }
}

/// Looks for handed-back work once a second (one read of one setting) and takes it up.
struct HandbackService: Service {
    let app: TesseraApp
    var interval: Duration = .seconds(1)

    func run() async throws {
        let handbacks = Handbacks(app: app)
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            await handbacks.takeUp()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
