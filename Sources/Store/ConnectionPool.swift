import Synchronization

/// A fixed set of connections handed out one task at a time; waiters queue in order. Taking an idle connection
/// is a lock, not a hop to another executor; only a task that finds none idle suspends.
final class ConnectionPool<Connection: Sendable>: Sendable {
    private struct State {
        var idle: [Connection]
        var waiters: [CheckedContinuation<Connection?, Never>] = []
        var closed = false
    }
    private enum Taken { case connection(Connection), wait, closed }
    private let state: Mutex<State>
    private let count: Int

    init(_ connections: [Connection]) {
        state = Mutex(State(idle: connections))
        count = connections.count
    }

    /// Runs `body` with a connection, returning it to the pool however `body` ends.
    func with<T: Sendable>(_ body: (Connection) async throws -> T) async throws -> T {
        let connection = try await acquire()
        defer { release(connection) }
        return try await body(connection)
    }

    /// Closes the pool to new work and returns every connection once the tasks holding them are done (none when
    /// it was closed before).
    func drain() async -> [Connection] {
        let wasClosed = state.withLock { state in
            defer { state.closed = true }
            return state.closed
        }
        if wasClosed { return [] }
        var drained: [Connection] = []
        for _ in 0..<count {
            if let connection = await nextIdle() { drained.append(connection) }
        }
        // Anyone still waiting is told the pool is closed.
        for waiter in state.withLock({ state in defer { state.waiters = [] }; return state.waiters }) { waiter.resume(returning: nil) }
        return drained
    }

    private func acquire() async throws -> Connection {
        let taken = state.withLock { state -> Taken in
            if state.closed { return .closed }
            if let connection = state.idle.popLast() { return .connection(connection) }
            return .wait
        }
        switch taken {
        case .connection(let connection): return connection
        case .closed: throw StoreError(message: "The store is closed.")
        case .wait: break
        }
        guard let connection = await nextIdle() else { throw StoreError(message: "The store is closed.") }
        return connection
    }

    /// The next connection to come back (or one idle now); nil when the pool closes first.
    private func nextIdle() async -> Connection? {
        await withCheckedContinuation { continuation in
            let idle = state.withLock { state -> Connection? in
                if let connection = state.idle.popLast() { return connection }
                state.waiters.append(continuation)
                return nil
            }
            if let idle { continuation.resume(returning: idle) }
        }
    }

    private func release(_ connection: Connection) {
        let waiter = state.withLock { state -> CheckedContinuation<Connection?, Never>? in
            if state.waiters.isEmpty {
                state.idle.append(connection)
                return nil
            }
            return state.waiters.removeFirst()
        }
        waiter?.resume(returning: connection)
    }
}
