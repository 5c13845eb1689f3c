import ServiceLifecycle
import Synchronization

/// Work a request starts and does not wait for (recovery jobs), kept track of so that graceful shutdown waits for it
/// and tests can wait for it instead of polling.
final class BackgroundJobs: Sendable {
    private struct State {
        var next = 0
        var running: [Int: Task<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    /// Starts `work`; it runs to its end however the request that started it ends.
    func start(_ work: @escaping @Sendable () async -> Void) {
        state.withLock { state in
            let id = state.next
            state.next += 1
            // Registered under the lock, so the task's own removal (which takes the lock) always comes after.
            state.running[id] = Task {
                await work()
                self.state.withLock { _ = $0.running.removeValue(forKey: id) }
            }
        }
    }

    /// Returns once no job is running, including jobs started while it waited.
    func idle() async {
        while true {
            let running = state.withLock { Array($0.running.values) }
            if running.isEmpty { return }
            for task in running { await task.value }
        }
    }
}

/// A service whose only work is at graceful shutdown: it returns once the background jobs have finished. Listed
/// first in the service group, it is shut down last, after the HTTP server has stopped starting new jobs.
struct BackgroundJobsService: Service {
    let jobs: BackgroundJobs

    func run() async throws {
        // Returns when graceful shutdown begins; throws when the group is cancelled outright (then nothing waits).
        try await gracefulShutdown()
        await jobs.idle()
    }
}
