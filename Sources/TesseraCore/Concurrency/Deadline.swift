import Synchronization

/// Work bounded by a deadline that the work itself may not respect.
public enum Deadline {
    /// `body`'s result, or nil once `timeout` has passed without one. `body` runs in a task of its own that is cancelled
    /// then and not waited for: a driver that ignores cancellation (a connection attempt to a silent host) cannot hold
    /// the caller past the deadline. Whichever ends first answers; the other is cancelled (the timer at once, the work
    /// when it next checks).
    public static func within<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T? {
        let waiter = Mutex<CheckedContinuation<T?, any Error>?>(nil)
        let tasks = Mutex<[Task<Void, Never>]>([])
        let finish = { @Sendable (result: Result<T?, any Error>) in
            waiter.withLock { continuation in
                defer { continuation = nil }
                return continuation
            }?.resume(with: result)
        }
        defer { for task in tasks.withLock({ $0 }) { task.cancel() } }
        return try await withCheckedThrowingContinuation { continuation in
            waiter.withLock { $0 = continuation }
            let work = Task {
                do { finish(.success(try await body())) } catch { finish(.failure(error)) }
            }
            let timer = Task {
                guard (try? await Task.sleep(for: timeout)) != nil else { return }
                finish(.success(nil))
            }
            tasks.withLock { $0 = [work, timer] }
        }
    }
}
