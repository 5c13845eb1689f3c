import Synchronization
import TesseraCore

/// The one SQLite writer connection, and group commit.
///
/// A write transaction takes the connection (a lock; it suspends only when another task holds it), runs its
/// statements on the calling thread (the first of a batch opens the transaction, each later one runs inside its own
/// `SAVEPOINT` in it), and then:
/// - when another write is waiting and the open batch is within `limit`, it hands the still-open transaction to
///   that write and waits for the batch's `COMMIT` before it returns (so nothing is reported before it is durable
///   in the database's sense);
/// - otherwise, once the tasks that are ready have run (so that writes on their way to the connection can queue and
///   join), it commits the batch: its own changes and those of every transaction that handed over to it.
///
/// A transaction that throws (or whose task is cancelled, which surfaces as a thrown error) rolls back to its
/// savepoint (the first of a batch, alone in it so far, rolls the whole transaction back): its rows, unique keys and
/// change-log entries go, the batch's other transactions stay. If SQLite ends the whole transaction itself (an I/O
/// error, a full disk), or the `COMMIT` fails, every transaction of the batch fails with that error. A batch is its
/// transactions run one after another, so sharing a commit changes no outcome, only the number of commits.
///
/// The connection is never handed on inside a transaction except to a writer, so reads that share it (an
/// in-memory database) only ever see committed data.
final class SQLiteWriter: Sendable {
    /// How large a shared commit may grow: it commits once it holds `transactions`, or once it has been open
    /// `duration`, even while writes keep arriving.
    struct BatchLimit: Sendable {
        var transactions: Int
        var duration: Duration
        static let standard = BatchLimit(transactions: 64, duration: .milliseconds(5))
    }

    private enum Waiter {
        case write(CheckedContinuation<Void, Never>)
        case read(CheckedContinuation<Void, Never>)

        var continuation: CheckedContinuation<Void, Never> {
            switch self {
            case .write(let continuation), .read(let continuation): continuation
            }
        }
        var isWrite: Bool { if case .write = self { true } else { false } }
    }

    /// The open transaction that several writes share.
    private struct Batch {
        let started: ContinuousClock.Instant
        var transactions = 0
        /// The writes that finished inside it and wait for its commit.
        var committed: [CheckedContinuation<Void, any Error>] = []
    }

    private struct State {
        var held = false
        var closed = false
        var waiters: [Waiter] = []
        var batch: Batch?
        var commits = 0
        /// The last write was refused for a full disk, and none has committed since.
        var diskFull = false
    }

    /// Used only by the task that holds the connection (`State.held`).
    private let handle: SQLiteHandle
    private let state = Mutex(State())
    let limit: BatchLimit

    /// How long a write waits for another connection's write lock before it fails with SQLITE_BUSY.
    let lockWait: Duration

    init(handle: SQLiteHandle, limit: BatchLimit, lockWait: Duration = SQLiteBackend.lockWait) {
        self.handle = handle
        self.limit = limit
        self.lockWait = lockWait
    }

    /// Transactions committed so far (a shared commit counts once).
    var commits: Int { state.withLock { $0.commits } }
    /// Whether the last write was refused for a full disk (SQLITE_FULL or ENOSPC) with none committed since; `/readyz`
    /// says the node is not ready meanwhile.
    var isDiskFull: Bool { state.withLock { $0.diskFull } }
    /// Tasks waiting for the connection.
    var waiting: Int { state.withLock { $0.waiters.count } }

    /// Runs `body` as one write transaction (see the type's description).
    func write<T: Sendable>(_ body: (SQLiteHandle) async throws -> T) async throws -> T {
        try await acquire(.write)
        var outcome: Result<T, any Error>
        do {
            let joined = try await begin()
            do {
                outcome = .success(try await body(handle))
                if joined { try handle.execute("RELEASE tessera_write") }
            } catch {
                outcome = .failure(error)
                undo(joined: joined)
            }
        } catch {
            outcome = .failure(error)
        }
        return try await settle(outcome)
    }

    /// Runs `body` on the connection outside any transaction (the reads of an in-memory database).
    func read<T: Sendable>(_ body: (SQLiteHandle) async throws -> T) async throws -> T {
        try await acquire(.read)
        defer { release() }
        return try await body(handle)
    }

    /// Waits for the task holding the connection and for the open batch's commit, then closes the connection; later
    /// calls fail with "The store is closed."
    func close() async {
        // Queued as a read, so no writer hands it an open transaction: the batch commits first.
        do { try await acquire(.read) } catch { return }
        state.withLock { $0.closed = true }
        handle.close()
        release()
    }

    // MARK: The transaction

    /// Opens this write's part: a new transaction when none is open (the batch's first write, which ROLLBACK undoes,
    /// so a write that shares with no one pays nothing for sharing), else a savepoint in the open one. Returns whether
    /// it joined an open transaction.
    private func begin() async throws -> Bool {
        if handle.isInTransaction {
            try handle.execute("SAVEPOINT tessera_write")
            return true
        }
        // IMMEDIATE takes the write lock at once, so a transaction never fails half-way to upgrade it.
        try await beginImmediate()
        state.withLock { $0.batch = Batch(started: .now) }
        return false
    }

    /// `BEGIN IMMEDIATE`, waiting up to `lockWait` for another connection's write lock (another process on the same
    /// file: a second node, `tessera keys rotate`, a copy), suspended: SQLite's busy handler sleeps on the calling
    /// thread, a thread of Swift's cooperative pool (two on a two-core machine), for up to its timeout, and the task
    /// that would release the lock may be one that needs that thread.
    private func beginImmediate() async throws {
        let deadline = ContinuousClock.now + lockWait
        var pause = Duration.milliseconds(1)
        handle.setBusyTimeout(milliseconds: 0)
        defer { handle.setBusyTimeout(milliseconds: SQLiteBackend.busyTimeoutMilliseconds) }
        while true {
            do {
                try handle.execute("BEGIN IMMEDIATE")
                return
            } catch let failure as SQLiteFailure where failure.code & 0xff == 5 && ContinuousClock.now + pause < deadline {
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .milliseconds(50))
            }
        }
    }

    private func undo(joined: Bool) {
        // When SQLite has already ended the whole transaction there is nothing left to undo: `settle` fails the batch.
        guard handle.isInTransaction else { return }
        if joined {
            do {
                try handle.execute("ROLLBACK TO tessera_write")
                try handle.execute("RELEASE tessera_write")
                return
            } catch {
                // The savepoint cannot be undone alone: the whole batch goes, which `settle` reports to all of it.
            }
        }
        _ = try? handle.execute("ROLLBACK")
    }

    /// Passes the open transaction to the next writer, or commits it; returns (or throws) this write's outcome once
    /// it is committed.
    private func settle<T: Sendable>(_ outcome: Result<T, any Error>) async throws -> T {
        if case .failure(let failure as DirectoryError) = outcome, failure.code == .insufficientStorage { state.withLock { $0.diskFull = true } }
        // No writer is waiting yet: let the tasks that are ready run once (requests on their way to a write) before
        // committing alone, so that under load a commit is shared by those that arrive meanwhile.
        if case .success = outcome, handle.isInTransaction, !handOffPossible() { await Task.yield() }
        if handOffPossible() {
            if case .failure = outcome {
                // Nothing of this write is left in the batch: no commit to wait for.
                handOff(committed: nil)
                return try outcome.get()
            }
            try await withCheckedThrowingContinuation { handOff(committed: $0) }
            return try outcome.get()
        }
        let waiting = state.withLock { state in
            defer { state.batch = nil }
            return state.batch?.committed ?? []
        }
        var result = outcome
        // The connection is released exactly once below, after the batch is settled: a `settled` inside the `do`
        // would release it, throw this write's own error into the `catch`, and release it a second time — handing
        // the connection to a second waiter while the first one holds it.
        if !handle.isInTransaction {
            // Nothing to commit: this write (the first of a batch) rolled back, or SQLite rolled the whole
            // transaction back itself, and then what the batch's other writes did is gone too.
            if !waiting.isEmpty {
                // A full disk is said as such to the whole batch (507, not 500): each of them was refused for that reason.
                var error: any Error = StoreError(message: "The database rolled back a shared transaction; retry the request.")
                if case .failure(let failure as DirectoryError) = result, failure.code == .insufficientStorage { error = failure }
                for write in waiting { write.resume(throwing: error) }
                if case .success = result { result = .failure(error) }
            }
            return try settled(result)
        }
        do {
            try handle.execute("COMMIT")
            state.withLock { state in
                state.commits += 1
                state.diskFull = false
            }
            for write in waiting { write.resume() }
        } catch {
            if handle.isInTransaction { _ = try? handle.execute("ROLLBACK") }
            if let failure = error as? DirectoryError, failure.code == .insufficientStorage { state.withLock { $0.diskFull = true } }
            for write in waiting { write.resume(throwing: error) }
            if case .success = result { result = .failure(error) }
        }
        return try settled(result)
    }

    private func settled<T>(_ result: Result<T, any Error>) throws -> T {
        release()
        return try result.get()
    }

    /// Whether the next in line is a write that may join the open batch. Only the holder removes waiters and
    /// changes the batch, so the answer stands until the holder acts on it.
    private func handOffPossible() -> Bool {
        guard handle.isInTransaction else { return false }
        return state.withLock { state in
            guard let batch = state.batch, let next = state.waiters.first, next.isWrite else { return false }
            return batch.transactions + 1 < limit.transactions && batch.started.duration(to: .now) < limit.duration
        }
    }

    private func handOff(committed: CheckedContinuation<Void, any Error>?) {
        let next = state.withLock { state in
            state.batch?.transactions += 1
            if let committed { state.batch?.committed.append(committed) }
            return state.waiters.removeFirst().continuation
        }
        next.resume()
    }

    // MARK: The connection

    private enum Use { case write, read }

    private func acquire(_ use: Use) async throws {
        let taken = try state.withLock { state throws(StoreError) -> Bool in
            if state.closed { throw Self.closedError }
            if state.held { return false }
            state.held = true
            return true
        }
        if taken { return }
        await withCheckedContinuation { continuation in
            let taken = state.withLock { state in
                if state.held {
                    state.waiters.append(use == .write ? .write(continuation) : .read(continuation))
                    return false
                }
                state.held = true
                return true
            }
            if taken { continuation.resume() }
        }
        if state.withLock({ $0.closed }) {
            release()
            throw Self.closedError
        }
    }

    /// Passes the connection to the next in line, or leaves it free.
    private func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.held = false
                return nil
            }
            return state.waiters.removeFirst().continuation
        }
        next?.resume()
    }

    private static var closedError: StoreError { StoreError(message: "The store is closed.") }
}
