import Hummingbird
import NIOCore
import Synchronization

/// Request bodies being read, each with the moment it is late. One sweeper task for the whole server ends the read of
/// a body that has not all arrived in time, instead of a timer per request: a task group with a sleeping child for each
/// body armed a dispatch timer whose manager thread woke for every request, 3–4% of a `POST /users`' CPU (found by
/// scripts/bench-post-users' profile). A body still arriving is cut off within a tenth of the timeout (at most a second)
/// after it is late; one whose last part came after the deadline is refused however late the sweeper runs (on a loaded
/// machine Swift's task threads can leave it unscheduled for seconds, and the rest of the body may come meanwhile).
final class BodyDeadlines: Sendable {
    private struct Watched {
        let deadline: ContinuousClock.Instant
        let cancel: @Sendable () -> Void
    }

    private struct State {
        var next: UInt64 = 0
        var watched: [UInt64: Watched] = [:]
        /// Reads cancelled because they were late, until their reader asks.
        var late: Set<UInt64> = []
        var sweeping = false
    }

    let timeout: Duration
    /// How often the sweeper looks, while any body is being read.
    let tick: Duration
    private let state = Mutex(State())

    init(timeout: Duration) {
        self.timeout = timeout
        tick = min(max(timeout / 10, .milliseconds(10)), .seconds(1))
    }

    /// The body, up to `limit` bytes, or `TesseraResponder.BodyTimeout` when it has not all arrived within the timeout.
    ///
    /// Given `stop`, which ends a read from outside (over a connection: fails the connection's inbound stream, see
    /// `TesseraResponder`), the body is read by the request's own task and a late read is ended with `stop`. A task of its
    /// own for each read cost every request, bodiless or not, a hand-off to another of Swift's threads and back (futex
    /// wake-ups and context switches): about a fifth of a kept-alive `GET /healthz`'s CPU at a sign-in's request rate.
    /// Without `stop` (a body given in process), the read has a task of its own, cancelled when late.
    func collect(_ request: Request, upTo limit: Int, stop: (@Sendable () -> Void)? = nil) async throws -> ByteBuffer {
        guard let stop else { return try await collectInTask(request, upTo: limit) }
        let deadline = ContinuousClock.now + timeout
        let id = watch(until: deadline, stop)
        let result: Result<ByteBuffer, any Error>
        do {
            var request = request
            result = .success(try await request.collectBody(upTo: limit))
        } catch {
            result = .failure(error)
        }
        // As below: a read ended for being late may have ended quietly with the part that had arrived.
        if unwatch(id) || ContinuousClock.now > deadline { throw TesseraResponder.BodyTimeout() }
        return try result.get()
    }

    /// The body read by a task of its own, cancelled when late.
    private func collectInTask(_ request: Request, upTo limit: Int) async throws -> ByteBuffer {
        let read = Task {
            var request = request
            return try await request.collectBody(upTo: limit)
        }
        let deadline = ContinuousClock.now + timeout
        let id = watch(until: deadline) { read.cancel() }
        let result = await withTaskCancellationHandler {
            await read.result
        } onCancel: {
            read.cancel()
        }
        // A read cancelled for being late may end as a success with the part that had arrived (a body sequence that
        // finishes on cancellation): never hand that on as the body.
        if unwatch(id) || ContinuousClock.now > deadline { throw TesseraResponder.BodyTimeout() }
        return try result.get()
    }

    /// Starts watching a read that `cancel` stops, late at `deadline`; returns its number.
    private func watch(until deadline: ContinuousClock.Instant, _ cancel: @escaping @Sendable () -> Void) -> UInt64 {
        let (id, start) = state.withLock { state in
            state.next += 1
            state.watched[state.next] = Watched(deadline: deadline, cancel: cancel)
            defer { state.sweeping = true }
            return (state.next, !state.sweeping)
        }
        if start { Task.detached { await self.sweep() } }
        return id
    }

    /// Stops watching a read; whether it was cancelled for being late.
    private func unwatch(_ id: UInt64) -> Bool {
        state.withLock { state in
            state.watched[id] = nil
            return state.late.remove(id) != nil
        }
    }

    /// Cancels late reads every `tick`, for as long as any read is watched.
    private func sweep() async {
        while true {
            try? await Task.sleep(for: tick)
            let now = ContinuousClock.now
            let late: [@Sendable () -> Void]? = state.withLock { state in
                guard !state.watched.isEmpty else {
                    state.sweeping = false
                    return nil
                }
                var late: [@Sendable () -> Void] = []
                for (id, watched) in state.watched where watched.deadline <= now {
                    late.append(watched.cancel)
                    state.watched[id] = nil
                    state.late.insert(id)
                }
                return late
            }
            guard let late else { return }
            for cancel in late { cancel() }
        }
    }
}
