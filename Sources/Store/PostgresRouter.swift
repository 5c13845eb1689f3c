import Foundation
import Logging
import PostgresNIO
import Synchronization
import TesseraCore

/// The PostgreSQL server Tessera uses among those its URL names, and a pooled client to it.
///
/// With one host and no `target_session_attrs` the client is made once and kept (its pool reconnects by itself). With
/// several hosts, or a target other than `any`, the router probes the hosts in the URL's order and pools to the first
/// that fits the target; a watch connection asks that server every `watchInterval` whether it still fits, and a request
/// that meets a lost connection or a server refusing writes (SQLSTATE 25006) has it re-checked at once. When it no longer
/// fits, the router probes the hosts again with a backoff until one does (a standby promoted to primary), and swaps the
/// client. Meanwhile requests wait up to `failoverWait` for a server and are then refused as unavailable: the caller
/// answers a retryable 503, never a guess.
final class PostgresRouter: Sendable {
    /// A client pooled to one server; a new generation each time a server is (re)chosen.
    struct Node: Sendable {
        let generation: Int
        let endpoint: PostgresEndpoint
        let client: PostgresClient
        let runner: Task<Void, Never>
    }

    struct Timing: Sendable {
        /// How long a request waits for a server while the router looks for one, after one has been found once.
        var failoverWait: Duration = .seconds(2)
        /// The same before the first server was found (a node starting while its database does).
        var startupWait: Duration = .seconds(30)
        /// How long a request waits for a pooled connection before the server is suspected and the request refused.
        var leaseWait: Duration = .seconds(5)
        /// How often the watch connection asks the chosen server whether it still fits.
        var watchInterval: Duration = .seconds(1)
        /// The bound on one probe or watch question (connection included).
        var probeTimeout: Duration = .seconds(2)
        /// The longest pause between two rounds of probes.
        var maxBackoff: Duration = .seconds(1)
    }

    private enum Phase {
        case serving(Node)
        case searching
        case closed
    }

    private struct State {
        var phase: Phase
        var generation = 0
        var served = false
        var waiters: [Int: CheckedContinuation<Node, any Error>] = [:]
        var nextWaiter = 0
        var tasks: [Task<Void, Never>] = []
        var lostAt: ContinuousClock.Instant?
    }

    /// The pools this router made whose `run()` has not returned, and those it retired (ended for a swap or unused), for
    /// `close()` to wait on.
    private struct Pools {
        var running = 0
        var retired: [Task<Void, Never>] = []
    }

    let url: PostgresURL
    let timing: Timing
    /// True when there is nothing to choose: one host, any server.
    let fixed: Bool
    private let maxConnections: Int
    private let state: Mutex<State>
    private let pools = Mutex(Pools())
    let logger = Logger(label: "tessera.postgres")

    init(url: PostgresURL, maxConnections: Int, timing: Timing = Timing()) {
        self.url = url
        self.timing = timing
        self.maxConnections = maxConnections
        fixed = url.endpoints.count == 1 && url.target == .any
        state = Mutex(State(phase: .searching))
        if fixed {
            let node = makeNode(url.endpoints[0], generation: 1)
            state.withLock {
                $0.phase = .serving(node)
                $0.generation = 1
                $0.served = true
            }
        } else {
            state.withLock { $0.tasks.append(Task { [self] in await search(replacing: nil) }) }
        }
    }

    // MARK: Requests

    /// Runs `body` on a pooled connection to the chosen server. A server that cannot be reached, cannot lend a connection
    /// within `leaseWait`, loses the connection or refuses writes makes this throw `PostgresUnavailable` (and has the
    /// server re-checked); other errors pass through as they are.
    func withConnection<T: Sendable>(_ body: @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let node = try await current()
        if fixed {
            // One server and nothing to choose: the pool's own queue, however long a busy pool takes (a burst of
            // requests must not turn into 503s), and no pool is ever ended under a waiting request.
            do {
                return try await node.client.withConnection { connection in try await body(connection) }
            } catch {
                guard !Task.isCancelled, let reason = Self.unavailability(error) else { throw error }
                throw PostgresUnavailable(reason: reason, underlying: error)
            }
        }
        // The connection is leased by a task of its own and handed over: a request that gets none within `leaseWait`
        // gives up without waiting on the pool (a pool ended for a swap may never answer its waiters).
        let lease = Lease()
        let holder = Task {
            do {
                try await node.client.withConnection { connection in
                    guard lease.deliver(connection) else { return }
                    await lease.returned()
                }
            } catch {
                lease.fail(error)
            }
        }
        let connection: PostgresConnection
        do {
            connection = try await lease.connection(within: timing.leaseWait)
        } catch {
            holder.cancel()
            // A request that never got a connection did nothing: whatever the pool said (ended for a swap, its circuit
            // breaker tripped), the server is unavailable to it.
            guard !Task.isCancelled else { throw error }
            let reason = error is LeaseTimeout ? "no pooled connection within \(timing.leaseWait)" : "no connection (\(error))"
            suspect(node, because: reason)
            throw PostgresUnavailable(reason: reason, underlying: error)
        }
        defer { lease.giveBack() }
        do {
            return try await body(connection)
        } catch {
            guard !Task.isCancelled, let reason = Self.unavailability(error) else { throw error }
            suspect(node, because: reason)
            throw PostgresUnavailable(reason: reason, underlying: error)
        }
    }

    struct LeaseTimeout: Error {}

    /// One pooled connection handed from the task that leases it to the request that uses it, and given back.
    final class Lease: Sendable {
        private enum Phase {
            case waiting(CheckedContinuation<PostgresConnection, any Error>?)
            case ready(PostgresConnection, holder: CheckedContinuation<Void, Never>?)
            case inUse(CheckedContinuation<Void, Never>?)
            case abandoned
            case done
        }

        private let phase = Mutex(Phase.waiting(nil))

        /// Called by the leasing task with its connection; false when the request has given up (the connection goes back).
        func deliver(_ connection: PostgresConnection) -> Bool {
            let waiter: CheckedContinuation<PostgresConnection, any Error>?? = phase.withLock { phase in
                switch phase {
                case .waiting(let waiter):
                    phase = waiter == nil ? .ready(connection, holder: nil) : .inUse(nil)
                    return .some(waiter)
                default:
                    return .none
                }
            }
            guard let waiter else { return false }
            waiter?.resume(returning: connection)
            return true
        }

        func fail(_ error: any Error) {
            let waiter: CheckedContinuation<PostgresConnection, any Error>? = phase.withLock { phase in
                guard case .waiting(let waiter) = phase else { return nil }
                phase = .abandoned
                return waiter
            }
            waiter?.resume(throwing: error)
        }

        /// The connection, or `LeaseTimeout` once `wait` has passed without one.
        func connection(within wait: Duration) async throws -> PostgresConnection {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<PostgresConnection, any Error>) in
                    let ready: PostgresConnection?? = phase.withLock { phase in
                        switch phase {
                        case .ready(let connection, let holder):
                            phase = .inUse(holder)
                            return .some(connection)
                        case .waiting:
                            phase = .waiting(continuation)
                            return .some(nil)
                        default:
                            return .none
                        }
                    }
                    switch ready {
                    case .some(.some(let connection)): continuation.resume(returning: connection)
                    case .some(.none):
                        Task { [self] in
                            try? await Task.sleep(for: wait)
                            giveUp(LeaseTimeout())
                        }
                    case .none: continuation.resume(throwing: LeaseTimeout())
                    }
                }
            } onCancel: {
                giveUp(CancellationError())
            }
        }

        private func giveUp(_ error: any Error) {
            let waiter: CheckedContinuation<PostgresConnection, any Error>? = phase.withLock { phase in
                guard case .waiting(let waiter) = phase else { return nil }
                phase = .abandoned
                return waiter
            }
            waiter?.resume(throwing: error)
        }

        /// Called by the leasing task: returns once the request is done with the connection.
        func returned() async {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let finished = phase.withLock { phase -> Bool in
                    switch phase {
                    case .inUse:
                        phase = .inUse(continuation)
                        return false
                    case .ready(let connection, _):
                        phase = .ready(connection, holder: continuation)
                        return false
                    default:
                        return true
                    }
                }
                if finished { continuation.resume() }
            }
        }

        /// Called by the request when it is done with the connection.
        func giveBack() {
            let holder: CheckedContinuation<Void, Never>? = phase.withLock { phase in
                defer { phase = .done }
                if case .inUse(let holder) = phase { return holder }
                return nil
            }
            holder?.resume()
        }
    }

    /// The chosen server's node, waiting for one while the router looks.
    private func current() async throws -> Node {
        enum Now {
            case node(Node)
            case closed
            case wait(Duration)
        }
        let now: Now = state.withLock { state in
            switch state.phase {
            case .serving(let node): .node(node)
            case .closed: .closed
            case .searching: .wait(state.served ? timing.failoverWait : timing.startupWait)
            }
        }
        switch now {
        case .node(let node): return node
        case .closed: throw PostgresUnavailable(reason: "the database client is closed", underlying: nil)
        case .wait(let wait):
            let id = state.withLock { state in
                state.nextWaiter += 1
                return state.nextWaiter
            }
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Node, any Error>) in
                    let ready: Result<Node, any Error>? = state.withLock { state in
                        switch state.phase {
                        case .serving(let node): return .success(node)
                        case .closed: return .failure(PostgresUnavailable(reason: "the database client is closed", underlying: nil))
                        case .searching:
                            state.waiters[id] = continuation
                            return nil
                        }
                    }
                    if let ready {
                        continuation.resume(with: ready)
                        return
                    }
                    Task { [self] in
                        try? await Task.sleep(for: wait)
                        let reason = "no server among \(url.endpoints.map(\.description).joined(separator: ", ")) accepts \(url.target == .any ? "connections" : "writes")"
                        removeWaiter(id)?.resume(throwing: PostgresUnavailable(reason: reason, underlying: nil))
                    }
                }
            } onCancel: {
                removeWaiter(id)?.resume(throwing: CancellationError())
            }
        }
    }

    private func removeWaiter(_ id: Int) -> CheckedContinuation<Node, any Error>? {
        state.withLock { $0.waiters.removeValue(forKey: id) }
    }

    /// Why `error` means the server cannot serve (nil when it is an ordinary error of the statement).
    static func unavailability(_ error: any Error) -> String? {
        switch error {
        case let error as PSQLError:
            switch error.code {
            case .connectionError, .serverClosedConnection, .uncleanShutdown, .clientClosedConnection, .poolClosed:
                return "the connection was lost (\(error.code))"
            case .server:
                let state = error.serverInfo?[.sqlState] ?? ""
                // 25006 read_only_sql_transaction: a standby, or a primary demoted since; 57P01–57P03 shutting down or
                // starting; class 08 connection exceptions.
                if state == "25006" { return "the server refuses writes (SQLSTATE 25006)" }
                if ["57P01", "57P02", "57P03"].contains(state) || state.hasPrefix("08") { return "the server is going away (SQLSTATE \(state))" }
                return nil
            default:
                return nil
            }
        default:
            return nil
        }
    }

    // MARK: Choosing a server

    /// Has the router look for a server again, unless `node` has already been replaced (or nothing can be chosen).
    func suspect(_ node: Node, because reason: String) {
        guard !fixed else { return }
        let started = state.withLock { state -> Bool in
            guard case .serving(let current) = state.phase, current.generation == node.generation else { return false }
            state.phase = .searching
            state.lostAt = .now
            // The old server's watch ends (it may be the caller); the search is the one task now.
            for task in state.tasks { task.cancel() }
            state.tasks = [Task { [self] in await search(replacing: node) }]
            return true
        }
        if started { logger.warning("PostgreSQL server \(node.endpoint) is unusable (\(reason)); looking for a server that accepts writes.") }
    }

    /// Probes the hosts in order, with a backoff between rounds, until one fits; then serves it.
    private func search(replacing old: Node?) async {
        var pause = Duration.milliseconds(50)
        var oldDropped = false
        var rounds = 0
        while !Task.isCancelled {
            rounds += 1
            for endpoint in url.endpoints {
                guard await probe(endpoint) == nil else { continue }
                // Keep the old pool when its server fits again (a passing fault): its connections in use stay.
                let reuse = !oldDropped && old?.endpoint == endpoint ? old : nil
                if let old, reuse == nil, !oldDropped { retire(old) }
                serve(endpoint, reusing: reuse)
                return
            }
            if rounds == 1, !oldDropped, let old {
                // The old server does not fit: end its pool, so requests waiting on it are refused now, not at their lease wait.
                retire(old)
                oldDropped = true
            }
            try? await Task.sleep(for: pause)
            pause = min(pause * 2, timing.maxBackoff)
        }
    }

    private func serve(_ endpoint: PostgresEndpoint, reusing old: Node?) {
        // A new pool is made and started outside the lock; its generation number is set under it.
        let made = old == nil ? makeNode(endpoint, generation: 0) : nil
        let (waiters, node, lostFor): ([CheckedContinuation<Node, any Error>], Node?, Duration?) = state.withLock { state in
            guard case .searching = state.phase else { return ([], nil, nil) }
            state.generation += 1
            let base = old ?? made!
            let node = Node(generation: state.generation, endpoint: base.endpoint, client: base.client, runner: base.runner)
            state.phase = .serving(node)
            state.served = true
            let waiters = Array(state.waiters.values)
            state.waiters.removeAll()
            let lostFor = state.lostAt.map { ContinuousClock.now - $0 }
            state.lostAt = nil
            // The search calling this ends once it returns; the watch is the one task now.
            state.tasks = [Task { [self] in await watch(node) }]
            return (waiters, node, lostFor)
        }
        guard let node else {
            if let made { retire(made) }
            return
        }
        if let lostFor {
            logger.warning("PostgreSQL: now using \(node.endpoint), \(Self.milliseconds(lostFor)) ms after the last server was lost.")
        } else {
            logger.info("PostgreSQL: using \(node.endpoint).")
        }
        for waiter in waiters { waiter.resume(returning: node) }
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }

    private func makeNode(_ endpoint: PostgresEndpoint, generation: Int) -> Node {
        var configuration = url.clientConfiguration(endpoint)
        configuration.options.maximumConnections = maxConnections
        configuration.options.minimumConnections = 1
        if !fixed { configuration.options.connectTimeout = timing.probeTimeout }
        let client = PostgresClient(configuration: configuration, backgroundLogger: Logger(label: "tessera.postgres.pool"))
        pools.withLock { $0.running += 1 }
        // Started at once, on this thread, so the client is running before the first lease (PostgresNIO warns otherwise).
        let runner = Task.immediate { [weak self] in
            await client.run()
            self?.pools.withLock { $0.running -= 1 }
        }
        return Node(generation: generation, endpoint: endpoint, client: client, runner: runner)
    }

    /// Ends `node`'s pool: its connections are closed (in use or not) and its waiting requests refused. `close()` waits
    /// for it to have ended.
    private func retire(_ node: Node) {
        node.runner.cancel()
        pools.withLock { $0.retired.append(node.runner) }
    }

    /// How many pools this router made are still running (one while it serves; none once closed).
    var poolsRunning: Int { pools.withLock { $0.running } }

    /// Nil when `endpoint` answers within `probeTimeout` and fits the target; otherwise why not.
    func probe(_ endpoint: PostgresEndpoint) async -> String? {
        do {
            let answer = try await Deadline.within(timing.probeTimeout) { [url, timing, logger] in
                let connection = try await PostgresConnection.connect(
                    configuration: url.connectionConfiguration(endpoint, connectTimeout: timing.probeTimeout), id: 0, logger: logger)
                do {
                    let misfit = try await Self.misfit(connection, target: url.target)
                    try? await connection.close()
                    return misfit
                } catch {
                    try? await connection.close()
                    throw error
                }
            }
            guard let answer else { return "no answer within \(timing.probeTimeout)" }
            return answer
        } catch {
            return "\(error)"
        }
    }

    /// Nil when the server behind `connection` fits `target`; otherwise what it is instead.
    static func misfit(_ connection: PostgresConnection, target: PostgresTarget) async throws -> String? {
        guard target != .any else { return nil }
        let rows = try await connection.query("SELECT pg_is_in_recovery(), current_setting('transaction_read_only')", logger: Logger(label: "tessera.postgres"))
        for try await (recovery, readOnly) in rows.decode((Bool, String).self) {
            switch target {
            case .any: return nil
            case .primary: return recovery ? "a standby" : nil
            case .readWrite: return readOnly == "on" ? (recovery ? "a standby" : "read-only") : nil
            }
        }
        return "no answer"
    }

    /// Keeps one connection to `node`'s server and asks it every `watchInterval` whether it still fits; the first time it
    /// does not (or cannot answer), suspects it.
    private func watch(_ node: Node) async {
        while !Task.isCancelled {
            let configuration = url.connectionConfiguration(node.endpoint, connectTimeout: timing.probeTimeout)
            guard let connection = try? await Deadline.within(timing.probeTimeout, { [logger] in
                try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
            }) else {
                if !Task.isCancelled { suspect(node, because: "the watch connection could not be made") }
                return
            }
            defer { Task { try? await connection.close() } }
            while !Task.isCancelled {
                guard (try? await Task.sleep(for: timing.watchInterval)) != nil else { return }
                guard isCurrent(node) else { return }
                let misfit: String?
                do {
                    misfit = try await Deadline.within(timing.probeTimeout) { [url] in try await Self.misfit(connection, target: url.target) }
                        ?? "no answer within \(timing.probeTimeout)"
                } catch {
                    misfit = "the watch connection failed (\(error))"
                }
                if let misfit {
                    suspect(node, because: misfit)
                    return
                }
            }
        }
    }

    private func isCurrent(_ node: Node) -> Bool {
        state.withLock { state in
            if case .serving(let current) = state.phase { return current.generation == node.generation }
            return false
        }
    }

    // MARK: Closing

    func close() async {
        let (node, tasks, waiters): (Node?, [Task<Void, Never>], [CheckedContinuation<Node, any Error>]) = state.withLock { state in
            var node: Node?
            if case .serving(let current) = state.phase { node = current }
            state.phase = .closed
            defer {
                state.tasks = []
                state.waiters = [:]
            }
            return (node, state.tasks, Array(state.waiters.values))
        }
        for waiter in waiters { waiter.resume(throwing: PostgresUnavailable(reason: "the database client is closed", underlying: nil)) }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
        // The search or watch has ended, so no pool is made or retired after this.
        if let node { retire(node) }
        for runner in pools.withLock({ $0.retired }) { await runner.value }
        pools.withLock { $0.retired = [] }
    }
}

/// A flag set once, read from other tasks.
final class Flag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}

/// The database cannot serve now (no server fits, or the one in use was lost); the store answers it as a retryable 503.
struct PostgresUnavailable: Error, CustomStringConvertible {
    let reason: String
    let underlying: (any Error)?
    var description: String { underlying.map { "\(reason): \($0)" } ?? reason }
}
