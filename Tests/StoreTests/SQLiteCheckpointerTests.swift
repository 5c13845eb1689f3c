import Foundation
import Testing
@testable import Store

@Suite("The WAL checkpointer")
struct SQLiteCheckpointerTests {
    /// A checkpoint asked for just before the store closes may still be waiting for the checkpointer's thread when
    /// `close()` shuts it down. NIOThreadPool then hands the waiting item `.cancelled` on a dispatch queue of its own,
    /// while `close()` goes on to close the connection: the item must not checkpoint then (it did, and a `tessera bench
    /// signin` crashed in `sqlite3WalCheckpoint` on the closing connection).
    @Test("a checkpoint asked for as the store closes never runs on the closing connection")
    func cancelledCheckpointSkipped() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-checkpointer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("tessera.sqlite").path
        let writer = try SQLiteHandle(path: path)
        _ = try writer.execute("PRAGMA journal_mode=WAL", [])
        _ = try writer.execute("CREATE TABLE t (x INTEGER)", [])
        var started = 0
        for round in 0..<200 {
            _ = try writer.execute("INSERT INTO t VALUES (?)", [.int(Int64(round))])
            let checkpointer = try SQLiteCheckpointer(path: path)
            checkpointer.walCommitted(frames: SQLiteCheckpointer.threshold)
            await checkpointer.close()
            started += checkpointer.checkpoints
        }
        // Some checkpoints ran before their close (the thread took them first), some were cancelled: none crashed, and
        // the database still reads whole.
        #expect(started <= 200)
        #expect(try writer.execute("SELECT count(*) FROM t", []).first?.first?.int == 200)
        writer.close()
    }
}
