import Foundation
import Testing
@testable import Store
import TesseraCore

/// When SQLite itself rolls back the whole shared transaction for a full disk (it may, for SQLITE_FULL and I/O errors),
/// every write of the batch is told the disk is full (507), not an unexplained failure (500).
@Suite struct SQLiteFullBatchTests {
    @Test("a full disk that ends a shared transaction fails every write of the batch with insufficientStorage, and keeps none of them")
    func wholeBatchHearsDiskFull() async throws {
        let handle = try SQLiteHandle(path: ":memory:")
        try handle.execute("CREATE TABLE t (v TEXT)")
        // A batch that stays open for as long as the test lines writes up.
        let writer = SQLiteWriter(handle: handle, limit: .init(transactions: 64, duration: .seconds(600)))
        let (entered, inside) = AsyncStream<Void>.makeStream()
        let (released, go) = AsyncStream<Void>.makeStream()
        let holder = Task {
            try await writer.write { h in
                try h.execute("INSERT INTO t VALUES ('holder')")
                inside.yield()
                for await _ in released { break }
            }
        }
        for await _ in entered { break }
        let joined = Task { try await writer.write { try $0.execute("INSERT INTO t VALUES ('joined')") } }
        try await waitUntil { writer.waiting == 1 }
        // Stands in for SQLite ending the transaction on SQLITE_FULL (what the handle then throws).
        let full = Task {
            try await writer.write { h in
                try h.execute("INSERT INTO t VALUES ('full')")
                try h.execute("ROLLBACK")
                throw DirectoryError(.insufficientStorage, "full")
            }
        }
        try await waitUntil { writer.waiting == 2 }
        go.yield()

        for task in [holder, full] {
            await #expect { try await task.value } throws: { ($0 as? DirectoryError)?.code == .insufficientStorage }
        }
        await #expect { _ = try await joined.value } throws: { ($0 as? DirectoryError)?.code == .insufficientStorage }
        let rows = try await writer.read { try $0.execute("SELECT count(*) FROM t").first?.first?.int }
        #expect(rows == 0)
        await writer.close()
    }

    func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw StoreError(message: "Timed out waiting for writes to queue.") }
            try await Task.sleep(for: .milliseconds(1))
        }
    }
}
