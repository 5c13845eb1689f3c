import Foundation
import Synchronization
import Testing
@testable import Store
import TesseraCore
import TesseraTesting

/// SQLite's writer lets concurrent write transactions share one commit, each in its own savepoint. These tests line
/// writes up behind one that holds the connection, so they are sure to share a commit, and check what each leaves.
@Suite("SQLite shared commits")
struct SharedCommitTests {
    static let databases = [":memory:", TestDatabases.sqliteFile]

    struct Refused: Error, Equatable {}

    @Test("a write failing inside a shared commit rolls back alone: its object, unique key and change-log row go, the others commit",
          arguments: databases)
    func failingWriteRollsBackAlone(_ database: String) async throws {
        try await withSharedCommits(database) { store, writer, directory, tenant in
            let before = try await store.read { try await $0.latestSequence(tenant: tenant.tenantId) }
            let commitsBefore = writer.commits
            let hold = try await Hold(store)

            let alice = Task { try await directory.makeUser(tenant, "Alice") }
            try await waitUntil { writer.waiting == 1 }
            // Claims the name Carol is about to take, writes its change-log row, then fails.
            let ghost = StoredObject(tenant: tenant.tenantId, id: UUID().uuidString.lowercased(), kind: .user, body: ["displayName": "Ghost"])
            let failing = Task {
                try await store.write { tx in
                    try await tx.insert(ghost)
                    try await tx.claim(tenant: tenant.tenantId, object: ghost.id, keys: [UniqueKey("userPrincipalName", "carol@\(tenant.domain)")])
                    _ = try await tx.record(ChangeRecord(tenant: tenant.tenantId, objectId: ghost.id, kind: .user, operation: "create",
                                                         activity: "Add user", actor: .null, at: "2026-01-01T00:00:00Z", details: .null))
                    throw Refused()
                }
            }
            try await waitUntil { writer.waiting == 2 }
            let carol = Task { try await directory.makeUser(tenant, "Carol") }
            try await waitUntil { writer.waiting == 3 }
            try await hold.release()

            let aliceID = try await alice.value.id
            await #expect(throws: Refused()) { try await failing.value }
            let carolID = try await carol.value.id
            // The holder, Alice, the failed write and Carol: one commit.
            #expect(writer.commits == commitsBefore + 1)

            let (ghostRow, holder, changes, latest) = try await store.read { tx in
                (try await tx.object(tenant: tenant.tenantId, id: ghost.id),
                 try await tx.holder(tenant: tenant.tenantId, key: UniqueKey("userPrincipalName", "carol@\(tenant.domain)")),
                 try await tx.changes(tenant: tenant.tenantId, kinds: nil, after: before, limit: 100),
                 try await tx.latestSequence(tenant: tenant.tenantId))
            }
            #expect(ghostRow == nil)
            #expect(holder == carolID)
            #expect(!changes.contains { $0.objectId == ghost.id })
            #expect(changes.contains { $0.objectId == aliceID } && changes.contains { $0.objectId == carolID })
            // The failed write's sequence number was rolled back with it: the log has no gap.
            #expect(changes.map(\.seq) == Array(before + 1...latest))
        }
    }

    @Test("a first write that fails hands the connection to one waiter at a time, never to two at once", arguments: databases)
    func failingFirstWriteReleasesOnce(_ database: String) async throws {
        try await withSharedCommits(database) { store, writer, _, tenant in
            let hold = try await Hold(store, failing: true)
            let counter = Concurrency()
            let tenantID = tenant.tenantId
            let first = Task { try await counter.write(store, tenant: tenantID, "first") }
            try await waitUntil { writer.waiting == 1 }
            let second = Task { try await counter.write(store, tenant: tenantID, "second") }
            try await waitUntil { writer.waiting == 2 }
            try await hold.release()
            await #expect(throws: Refused()) { try await hold.task.value }
            try await first.value
            try await second.value
            // Before the fix the failed write released the connection twice: both waiters ran at once.
            #expect(counter.most.load(ordering: .acquiring) == 1)
            let settings = try await store.read { tx in
                (try await tx.setting(tenant: tenant.tenantId, key: "first"), try await tx.setting(tenant: tenant.tenantId, key: "second"))
            }
            #expect(settings.0 == "first" && settings.1 == "second")
        }
    }

    @Test("the first write of a batch failing (it opened the transaction, with no savepoint) takes only itself back", arguments: databases)
    func failingFirstWriteRollsBackAlone(_ database: String) async throws {
        try await withSharedCommits(database) { store, writer, directory, tenant in
            let ghost = StoredObject(tenant: tenant.tenantId, id: UUID().uuidString.lowercased(), kind: .user, body: ["displayName": "Ghost"])
            let hold = try await Hold(store, failing: true) { tx in
                try await tx.insert(ghost)
                try await tx.claim(tenant: tenant.tenantId, object: ghost.id, keys: [UniqueKey("userPrincipalName", "alice@\(tenant.domain)")])
            }
            let alice = Task { try await directory.makeUser(tenant, "Alice") }
            try await waitUntil { writer.waiting == 1 }
            try await hold.release()
            await #expect(throws: Refused()) { try await hold.task.value }
            let aliceID = try await alice.value.id
            let (ghostRow, holder) = try await store.read { tx in
                (try await tx.object(tenant: tenant.tenantId, id: ghost.id),
                 try await tx.holder(tenant: tenant.tenantId, key: UniqueKey("userPrincipalName", "alice@\(tenant.domain)")))
            }
            #expect(ghostRow == nil)
            #expect(holder == aliceID)
        }
    }

    @Test("a write cancelled mid-transaction rolls back and leaves the connection outside any transaction", arguments: databases)
    func cancelledWriteRollsBack(_ database: String) async throws {
        try await withSharedCommits(database) { store, writer, directory, tenant in
            let (entered, inside) = AsyncStream<Void>.makeStream()
            let ghost = StoredObject(tenant: tenant.tenantId, id: UUID().uuidString.lowercased(), kind: .user, body: ["displayName": "Ghost"])
            let cancelled = Task {
                try await store.write { tx in
                    try await tx.insert(ghost)
                    try await tx.claim(tenant: tenant.tenantId, object: ghost.id, keys: [UniqueKey("userPrincipalName", "dora@\(tenant.domain)")])
                    inside.yield()
                    try await Task.sleep(for: .seconds(60))
                }
            }
            for await _ in entered { break }
            cancelled.cancel()
            await #expect(throws: CancellationError.self) { try await cancelled.value }

            // Had the connection stayed inside the transaction, this write would join it and no reader would see it.
            let dora = try await directory.makeUser(tenant, "Dora")
            let (ghostRow, holder, doraRow) = try await store.read { tx in
                (try await tx.object(tenant: tenant.tenantId, id: ghost.id),
                 try await tx.holder(tenant: tenant.tenantId, key: UniqueKey("userPrincipalName", "dora@\(tenant.domain)")),
                 try await tx.object(tenant: tenant.tenantId, id: dora.id))
            }
            #expect(ghostRow == nil)
            #expect(holder == dora.id)
            #expect(doraRow != nil)
            #expect(writer.waiting == 0)
        }
    }

    @Test("when the shared transaction is ended under the batch (as SQLite does on a full disk), every write of it fails and none is kept",
          arguments: databases)
    func endedTransactionFailsTheBatch(_ database: String) async throws {
        try await withSharedCommits(database) { store, writer, directory, tenant in
            let hold = try await Hold(store)
            let alice = Task { try await directory.makeUser(tenant, "Alice") }
            try await waitUntil { writer.waiting == 1 }
            // SQLite rolls a transaction back by itself on SQLITE_FULL, SQLITE_IOERR and the like; ROLLBACK does the same.
            let breaker = Task { try await store.backend.withWriteSession { _ = try await $0.execute("ROLLBACK", []) } }
            try await waitUntil { writer.waiting == 2 }
            try await hold.release()

            await #expect(throws: (any Error).self) { try await hold.task.value }
            await #expect(throws: (any Error).self) { _ = try await alice.value }
            await #expect(throws: (any Error).self) { try await breaker.value }
            let found = try await store.read { tx in
                try await tx.holder(tenant: tenant.tenantId, key: UniqueKey("userPrincipalName", "alice@\(tenant.domain)"))
            }
            #expect(found == nil)
            // The writer goes on: Alice can be created now.
            _ = try await directory.makeUser(tenant, "Alice")
        }
    }

    @Test("many concurrent writes share commits and every one lands once, in an unbroken change log", arguments: databases)
    func concurrentWritesShareCommits(_ database: String) async throws {
        try await withSharedCommits(database) { store, writer, directory, tenant in
            let before = try await store.read { try await $0.latestSequence(tenant: tenant.tenantId) }
            let commitsBefore = writer.commits
            let hold = try await Hold(store)
            let ids = try await withThrowingTaskGroup(of: String.self) { group in
                for i in 0..<100 { group.addTask { try await directory.makeUser(tenant, "Writer \(i)").id } }
                try await waitUntil { writer.waiting == 100 }
                try await hold.release()
                return try await group.reduce(into: Set<String>()) { $0.insert($1) }
            }
            #expect(ids.count == 100)
            // A hundred and one transactions (with the holder), at most 64 to a commit.
            #expect(writer.commits - commitsBefore == 2)
            let changes = try await store.read { try await $0.changes(tenant: tenant.tenantId, kinds: nil, after: before, limit: 1000) }
            #expect(Set(changes.map(\.objectId)).isSuperset(of: ids))
            #expect(changes.map(\.seq) == Array(before + 1...before + Int64(changes.count)))
        }
    }

    @Test("in memory, a read queued between writes ends the shared commit before it and sees only what was committed")
    func readBetweenWritesInMemory() async throws {
        try await withSharedCommits(":memory:") { store, writer, directory, tenant in
            let commitsBefore = writer.commits
            let hold = try await Hold(store)
            let alice = Task { try await directory.makeUser(tenant, "Alice") }
            try await waitUntil { writer.waiting == 1 }
            let read = Task {
                try await store.read { tx in
                    try await tx.holder(tenant: tenant.tenantId, key: UniqueKey("userPrincipalName", "alice@\(tenant.domain)"))
                }
            }
            try await waitUntil { writer.waiting == 2 }
            let carol = Task { try await directory.makeUser(tenant, "Carol") }
            try await waitUntil { writer.waiting == 3 }
            try await hold.release()

            let aliceID = try await alice.value.id
            #expect(try await read.value == aliceID)
            _ = try await carol.value
            // The holder and Alice commit together before the read; Carol commits on her own after it.
            #expect(writer.commits == commitsBefore + 2)
        }
    }

    @Test("shutting down while writes share an open transaction commits them first, and later writes are refused")
    func shutdownCommitsTheBatch() async throws {
        let (url, folder) = TestDatabases.opened(TestDatabases.sqliteFile)
        defer { if let folder { try? FileManager.default.removeItem(at: folder) } }
        var aliceID = ""
        var tenantID = ""
        try await withSharedCommits(url) { store, writer, directory, tenant in
            tenantID = tenant.tenantId
            let hold = try await Hold(store)
            let alice = Task { try await directory.makeUser(tenant, "Alice") }
            try await waitUntil { writer.waiting == 1 }
            let shutdown = Task { try await store.shutdown() }
            try await waitUntil { writer.waiting == 2 }
            try await hold.release()
            aliceID = try await alice.value.id
            try await shutdown.value
            await #expect(throws: StoreError.self) { _ = try await directory.makeUser(tenant, "Late") }
        }
        let reopened = try await SQLDirectoryStore.open(url)
        let (tenant, alice) = (tenantID, aliceID)
        let found = try await reopened.read { try await $0.object(tenant: tenant, id: alice) }
        try await reopened.shutdown()
        #expect(found != nil)
    }

    // MARK: Helpers

    /// Counts the write bodies running at once.
    final class Concurrency: Sendable {
        let inside = Atomic<Int>(0), most = Atomic<Int>(0)

        /// A write that stays inside its transaction for a while, noting how many are inside with it.
        func write(_ store: SQLDirectoryStore, tenant: String, _ name: String) async throws {
            try await store.write { tx in
                let now = self.inside.add(1, ordering: .acquiringAndReleasing).newValue
                _ = self.most.max(now, ordering: .acquiringAndReleasing)
                try await tx.putSetting(tenant: tenant, key: name, value: .string(name))
                try await Task.sleep(for: .milliseconds(30))
                self.inside.subtract(1, ordering: .acquiringAndReleasing)
            }
        }
    }

    /// A write transaction that keeps the connection until released, so that writes queue behind it.
    struct Hold {
        let task: Task<Void, any Error>
        private let go: AsyncStream<Void>.Continuation

        /// Runs `writes` first; when `failing`, throws `Refused` once released.
        init(_ store: SQLDirectoryStore, failing: Bool = false,
             writes: @escaping @Sendable (any DirectoryTransaction) async throws -> Void = { _ in }) async throws {
            let (entered, inside) = AsyncStream<Void>.makeStream()
            let (released, go) = AsyncStream<Void>.makeStream()
            self.go = go
            task = Task {
                try await store.write { tx in
                    try await writes(tx)
                    inside.yield()
                    for await _ in released { break }
                    if failing { throw Refused() }
                }
            }
            for await _ in entered { break }
        }

        func release() async throws { go.yield() }
    }

    /// A store whose shared commits stay open long enough (up to 64 transactions, 10 minutes) for a test to line
    /// writes up, and a fresh tenant in it.
    func withSharedCommits(_ database: String,
                           _ body: (SQLDirectoryStore, SQLiteWriter, DirectoryService, ProvisionedTenant) async throws -> Void) async throws {
        let (url, folder) = TestDatabases.opened(database)
        defer { if let folder { try? FileManager.default.removeItem(at: folder) } }
        let backend = try SQLiteBackend(path: url, batchLimit: .init(transactions: 64, duration: .seconds(600)))
        let store = SQLDirectoryStore(backend: backend)
        do {
            try await store.migrate()
            let directory = DirectoryService(store: store, clock: TestClock())
            let tenant = try await TenantProvisioner(directory: directory).create(
                name: "Test", domain: "t\(UUID().uuidString.prefix(8).lowercased()).test")
            try await body(store, backend.writer, directory, tenant)
            try await store.shutdown()
        } catch {
            try? await store.shutdown()
            throw error
        }
    }

    func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw StoreError(message: "Timed out waiting for writes to queue.") }
            try await Task.sleep(for: .milliseconds(1))
        }
    }
}

@Suite("SQLite WAL checkpoints")
struct CheckpointTests {
    @Test("the WAL is checkpointed on the checkpointer's own connection, and every commit stays readable")
    func checkpointsOffTheWriter() async throws {
        let (url, folder) = TestDatabases.opened(TestDatabases.sqliteFile)
        defer { if let folder { try? FileManager.default.removeItem(at: folder) } }
        let backend = try SQLiteBackend(path: url)
        let store = SQLDirectoryStore(backend: backend)
        try await store.migrate()
        let checkpointer = try #require(backend.checkpointer)
        // A page of text a commit: past the threshold of WAL pages well before the last one.
        let page = String(repeating: "x", count: 4096)
        for i in 0..<Int(SQLiteCheckpointer.threshold) + 500 {
            try await backend.withWriteSession { session in
                _ = try await session.execute("INSERT INTO settings (tenant, key, value) VALUES ('t', ?, ?)", [.text("k\(i)"), .text(page)])
            }
        }
        let deadline = ContinuousClock.now + .seconds(20)
        while checkpointer.checkpoints == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(checkpointer.checkpoints >= 1)
        // The checkpoints copied the commits into the database file, which a WAL that only grows never does (the file
        // would stay at its first page while every commit lived in the WAL). How many pages the first checkpoint copies
        // depends on how many frames rewrote the same page, so the bound is a quarter of the threshold's pages.
        let size = try #require(try FileManager.default.attributesOfItem(atPath: url)[.size] as? Int)
        #expect(size > Int(SQLiteCheckpointer.threshold) * 4096 / 4, "the database file is \(size) bytes")
        try await store.shutdown()

        let reopened = try SQLiteBackend(path: url)
        let count = try await reopened.withReadSession { try await $0.execute("SELECT COUNT(*) FROM settings WHERE tenant = 't'", []) }
        try await reopened.close()
        #expect(count.first?.first?.int == Int64(SQLiteCheckpointer.threshold) + 500)
    }
}
