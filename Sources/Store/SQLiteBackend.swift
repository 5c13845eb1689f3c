/// SQLite in WAL mode: one writer connection (SQLite allows one writer) and a few readers, each driven through the C
/// API by the task that holds it. A transaction costs one hand-off at most (waiting for the connection), not one per
/// statement, and concurrent small write transactions share a commit (`SQLiteWriter`).
final class SQLiteBackend: SQLBackend {
    let dialect = SQLDialect.sqlite
    let writer: SQLiteWriter
    /// The reader connections; nil for an in-memory database, which is private to its one connection, so reads
    /// go through the writer's.
    private let readers: ConnectionPool<SQLiteHandle>?
    /// Checkpoints the WAL off the writer (nil in memory, which has no WAL).
    let checkpointer: SQLiteCheckpointer?

    /// How long a statement waits for another connection's lock before it fails with SQLITE_BUSY (the writer's
    /// `BEGIN IMMEDIATE` waits as long, suspended: `SQLiteWriter.beginImmediate`).
    static let busyTimeoutMilliseconds: Int32 = 10_000
    /// How long a write waits for another connection's write lock, by default.
    static let lockWait = Duration.milliseconds(Int64(busyTimeoutMilliseconds))
    /// The writer's page cache, in KiB. Small on purpose: when a page split moves a page through the lock-byte page
    /// number (SQLite's balance sorts the new pages through it), the next COMMIT truncates the page cache by walking
    /// its whole hash table and every page cached (`pcache1TruncateUnsafe`), so that cost grows with the cache, on
    /// small writes like a sign-in's. SQLite's hash table only ever grows, so a cache raised for bulk work and
    /// lowered after would keep the larger table: the cache stays this size. Pages it drops are read back from the
    /// operating system's file cache.
    static let writerCacheKiB = 4096

    init(path: String, readers readerCount: Int = 4, batchLimit: SQLiteWriter.BatchLimit = .standard, lockWait: Duration = lockWait) throws {
        var opened: [SQLiteHandle] = []
        do {
            let connection = try SQLiteHandle(path: path)
            opened.append(connection)
            connection.setBusyTimeout(milliseconds: Self.busyTimeoutMilliseconds)
            // A small page cache for the writer (`writerCacheKiB`). Savepoints' journals (a shared commit's writes
            // each keep one) in memory, not in temporary files. (journal_mode and foreign_keys are no-ops inside a
            // transaction, so they are set here, before any.)
            for pragma in ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON",
                           "PRAGMA cache_size=-\(Self.writerCacheKiB)", "PRAGMA temp_store=MEMORY"] {
                try connection.execute(pragma)
            }
            var readerHandles: [SQLiteHandle] = []
            if path != ":memory:" {
                for _ in 0..<readerCount {
                    let reader = try SQLiteHandle(path: path)
                    opened.append(reader)
                    reader.setBusyTimeout(milliseconds: Self.busyTimeoutMilliseconds)
                    try reader.execute("PRAGMA query_only=ON")
                    readerHandles.append(reader)
                }
            }
            writer = SQLiteWriter(handle: connection, limit: batchLimit, lockWait: lockWait)
            readers = readerHandles.isEmpty ? nil : ConnectionPool(readerHandles)
            // Last, because it starts a thread and nothing after it can fail.
            checkpointer = path == ":memory:" ? nil : try SQLiteCheckpointer(path: path)
            if let checkpointer { connection.checkpointWAL(with: checkpointer) }
        } catch {
            for handle in opened { handle.close() }
            throw error
        }
    }

    func withWriteSession<T: Sendable>(_ body: @Sendable (any SQLSession) async throws -> T) async throws -> T {
        try await writer.write { try await body(SQLiteSession(handle: $0)) }
    }

    func withReadSession<T: Sendable>(_ body: @Sendable (any SQLSession) async throws -> T) async throws -> T {
        // Reads run in autocommit: each statement sees a committed snapshot, with no BEGIN/COMMIT on the hot read
        // path (the same read-committed view PostgreSQL gives).
        guard let readers else { return try await writer.read { try await body(SQLiteSession(handle: $0)) } }
        return try await readers.with { try await body(SQLiteSession(handle: $0)) }
    }

    func close() async throws {
        if let readers {
            for handle in await readers.drain() { handle.close() }
        }
        await writer.close()
        await checkpointer?.close()
    }
}

/// A session over a connection its task holds: each statement runs right here, on the calling thread.
struct SQLiteSession: SQLSession {
    let handle: SQLiteHandle

    func execute(_ sql: String, _ binds: [SQLValue]) async throws -> [[SQLValue]] {
        try handle.execute(sql, binds)
    }

    /// A statement of the transaction like any other: it commits with the transaction (SQLite saves no round trip by
    /// running a write alone).
    func executeLast(_ sql: String, _ binds: [SQLValue]) async throws -> [[SQLValue]] {
        try handle.execute(sql, binds)
    }

    /// Runs `write` at once, in place.
    func hold(_ write: HeldWrite) async throws {
        try await write.inBlock()
    }
}
