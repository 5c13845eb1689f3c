import Logging
import ServiceLifecycle
import Synchronization
import Testing
@testable import Server

// The limit turns a hang into a failure. It is generous because the whole test run shares two cores: under a loaded
// full run a task waiting on a 200 ms timer has been seen to resume more than a minute later.
@Suite("Background jobs: graceful shutdown waits for them", .timeLimit(.minutes(10)))
struct BackgroundJobsTests {
    /// Says when the service group is running, then waits for its shutdown.
    struct Started: Service {
        let started: AsyncStream<Void>.Continuation
        func run() async throws {
            started.yield()
            try await gracefulShutdown()
        }
    }

    final class Flag: Sendable {
        private let value = Mutex(false)
        func set(_ on: Bool = true) { value.withLock { $0 = on } }
        var isSet: Bool { value.withLock { $0 } }
    }

    @Test("the service group's graceful shutdown returns only after a running job has finished")
    func shutdownWaitsForRunningJobs() async throws {
        let jobs = BackgroundJobs()
        let (release, letGo) = AsyncStream<Void>.makeStream()
        let finished = Flag()
        jobs.start {
            for await _ in release {}
            finished.set()
        }
        let (started, didStart) = AsyncStream<Void>.makeStream()
        let group = ServiceGroup(services: [BackgroundJobsService(jobs: jobs), Started(started: didStart)], logger: Logger(label: "test"))
        let finishedWhenTheGroupReturned = Flag()
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                try await group.run()
                finishedWhenTheGroupReturned.set(finished.isSet)
            }
            for await _ in started { break }
            await group.triggerGracefulShutdown()
            // The job ends a moment after shutdown began; a group that did not wait would have returned already.
            tasks.addTask {
                try await Task.sleep(for: .milliseconds(200))
                letGo.finish()
            }
            try await tasks.waitForAll()
        }
        #expect(finishedWhenTheGroupReturned.isSet)
    }

    @Test("idle() returns once every job, including one started by another job, has finished")
    func idleWaitsForJobsStartedMeanwhile() async {
        let jobs = BackgroundJobs()
        let count = Mutex(0)
        jobs.start {
            jobs.start { count.withLock { $0 += 1 } }
            count.withLock { $0 += 1 }
        }
        await jobs.idle()
        #expect(count.withLock { $0 } == 2)
    }
}
