import Foundation
import Testing
@testable import Store
import TesseraCore

/// Several SQLite stores on one file (nodes in one process in tests; `tessera keys rotate` or a copy beside a
/// server): a write that waits for another connection's write lock waits suspended, not on a thread.
@Suite("SQLite: waiting for another connection's write lock")
struct SQLiteLockWaitTests {
    @Test("more writes wait for another store's lock than Swift's pool has threads, and the holder still commits: each waiting write then succeeds")
    func waitersHoldNoThread() async throws {
        let (path, folder) = TestDatabases.opened(TestDatabases.sqliteFile)
        defer { if let folder { try? FileManager.default.removeItem(at: folder) } }
        let holder = try await openStore(path)
        try await holder.migrate()
        // One more waiting store than the cooperative pool has threads: were each wait SQLite's busy handler, every
        // thread would sleep in one, the holder could not resume to commit, and the waits would end in SQLITE_BUSY.
        var waiters: [SQLDirectoryStore] = []
        for _ in 0...min(ProcessInfo.processInfo.activeProcessorCount, 16) { waiters.append(try await openStore(path)) }
        let (held, holding) = AsyncStream.makeStream(of: Void.self)
        let tenant = "lock-wait-\(UUID().uuidString)"
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await holder.write { tx in
                    try await tx.putSetting(tenant: tenant, key: "holder", value: true)
                    holding.yield()
                    // Suspended with the lock held: resuming to commit needs a thread of the pool.
                    try await Task.sleep(for: .milliseconds(200))
                }
            }
            for await _ in held { break }
            for (index, waiter) in waiters.enumerated() {
                group.addTask {
                    try await waiter.write { tx in try await tx.putSetting(tenant: tenant, key: "waiter \(index)", value: true) }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await holder.read { tx in try await tx.setting(tenant: tenant, key: "holder") } == true)
        for (index, _) in waiters.enumerated() {
            #expect(try await holder.read { tx in try await tx.setting(tenant: tenant, key: "waiter \(index)") } == true)
        }
        for store in waiters + [holder] { try await store.shutdown() }
    }
}
