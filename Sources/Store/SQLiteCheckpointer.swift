import NIOPosix
import Synchronization

/// Copies the WAL back into the database file on a thread of its own, through a connection of its own.
///
/// SQLite's automatic checkpoint runs inside the `COMMIT` that crosses its threshold: that write would copy a thousand
/// pages and wait for `fsync` while holding the writer and a thread of Swift's cooperative pool, which run everything
/// else. Here the writer only reports the WAL's size after each commit (SQLite's WAL hook, which also turns the
/// automatic checkpoint off) and, past `threshold`, this starts a PASSIVE checkpoint: it waits for no reader and no
/// writer, copies the frames none of them still needs, and the WAL starts over once all are copied.
final class SQLiteCheckpointer: Sendable {
    /// WAL pages that start a checkpoint: 8,192 (32 MiB of 4 KiB pages), eight times SQLite's default. A checkpoint
    /// copies each page once however many commits changed it, and ends with an `fsync` of the database file; at
    /// SQLite's 1,000 pages, creating users through Graph spent 17% of the server's time checkpointing (half of it in
    /// `fsync`), copying the same index, change-log and tenant pages again every few dozen commits.
    static let threshold: Int32 = 8192

    /// Used only on `thread`, one checkpoint at a time.
    private let handle: SQLiteHandle
    private let thread: NIOThreadPool
    private let running = Atomic<Bool>(false)
    private let completed = Atomic<Int>(0)

    init(path: String) throws {
        handle = try SQLiteHandle(path: path)
        thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
    }

    /// Checkpoints finished so far.
    var checkpoints: Int { completed.load(ordering: .relaxed) }

    /// Called on the writer's thread after each commit, with the WAL's size in pages.
    func walCommitted(frames: Int32) {
        guard frames >= Self.threshold,
              running.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
        else { return }
        thread.submit { [self] state in
            defer { running.store(false, ordering: .releasing) }
            // A checkpoint still waiting when `close()` shuts the thread down is handed `.cancelled` on a dispatch queue
            // while `close()` goes on to close the connection: it must not touch it (the last close checkpoints anyway).
            guard case .active = state else { return }
            handle.checkpointPassively()
            completed.add(1, ordering: .relaxed)
        }
    }

    /// Waits for a running checkpoint, then closes the connection (the last one to close checkpoints what is left).
    func close() async {
        try? await thread.shutdownGracefully()
        handle.close()
    }
}
