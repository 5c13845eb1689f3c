import Foundation
import Logging
import TesseraCore
internal import VaporCSQLite

/// One SQLite connection driven straight through the C API (the SQLite that sqlite-nio vendors): each SQL text is
/// prepared once and its statement kept, values are bound and read without intermediate row types, and nothing
/// hops to another thread: a statement runs on the thread that calls `execute`.
///
/// Not thread-safe by itself, by design: whoever holds it (`SQLiteWriter`, `SQLiteReaders`) holds it exclusively,
/// so it is opened in SQLite's multi-thread mode (no mutex per call) and used by one task at a time.
final class SQLiteHandle: @unchecked Sendable {
    private let db: OpaquePointer
    /// Prepared statements by SQL text. Generated SQL (filters, `IN` lists) can have many shapes, so the cache is
    /// bounded: past `cacheLimit` it starts again from empty.
    private var statements: [String: OpaquePointer] = [:]
    static let cacheLimit = 512

    /// Opens `path` (`:memory:` for a database private to this connection).
    init(path: String) throws {
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let opened = sqlite_nio_sqlite3_open_v2(path, &handle, flags, nil)
        guard opened == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite_nio_sqlite3_errmsg($0)) } ?? "out of memory"
            if let handle { sqlite_nio_sqlite3_close_v2(handle) }
            throw SQLiteFailure(code: opened, message: "Cannot open the SQLite database at \(path): \(message)")
        }
        db = handle
        // Extended codes say which constraint or I/O step failed (the primary code stays in the low byte).
        sqlite_nio_sqlite3_extended_result_codes(db, 1)
    }

    /// Waits up to `milliseconds` for another process's lock before a statement fails with SQLITE_BUSY.
    func setBusyTimeout(milliseconds: Int32) {
        sqlite_nio_sqlite3_busy_timeout(db, milliseconds)
    }

    /// Reports each commit's WAL size to `checkpointer`, which checkpoints instead of this connection (SQLite's
    /// automatic checkpoint goes off). `checkpointer` must outlive this connection.
    func checkpointWAL(with checkpointer: SQLiteCheckpointer) {
        sqlite_nio_sqlite3_wal_hook(db, { context, _, _, frames in
            guard let context else { return SQLITE_OK }
            Unmanaged<SQLiteCheckpointer>.fromOpaque(context).takeUnretainedValue().walCommitted(frames: frames)
            return SQLITE_OK
        }, Unmanaged.passUnretained(checkpointer).toOpaque())
    }

    /// Copies to the database file the WAL frames no reader or writer still needs, waiting for none of them; returns
    /// how many frames were copied. Run as a statement: a connection that has read nothing yet has not opened the WAL,
    /// and `sqlite3_wal_checkpoint_v2` on it returns OK having done nothing (the WAL then only ever grew).
    @discardableResult
    func checkpointPassively() -> Int64 {
        (try? execute("PRAGMA wal_checkpoint(PASSIVE)"))?.first?.last?.int ?? 0
    }

    /// True while a transaction is open (SQLite is not in autocommit mode).
    var isInTransaction: Bool { sqlite_nio_sqlite3_get_autocommit(db) == 0 }

    /// Runs one statement with `?` placeholders and returns its rows as positional values.
    @discardableResult
    func execute(_ sql: String, _ binds: [SQLValue] = []) throws -> [[SQLValue]] {
        guard let statement = try prepared(sql) else { return [] }
        defer {
            // Reset at once: a statement left mid-step holds a read lock and blocks DROP TABLE and checkpoints.
            sqlite_nio_sqlite3_reset(statement)
            sqlite_nio_sqlite3_clear_bindings(statement)
        }
        let parameters = sqlite_nio_sqlite3_bind_parameter_count(statement)
        guard parameters == binds.count else {
            throw SQLiteFailure(code: SQLITE_RANGE, message: "The statement takes \(parameters) values; \(binds.count) were given.")
        }
        for (offset, value) in binds.enumerated() {
            try check(bind(value, at: Int32(offset + 1), of: statement))
        }
        var rows: [[SQLValue]] = []
        let columns = sqlite_nio_sqlite3_column_count(statement)
        while true {
            let stepped = sqlite_nio_sqlite3_step(statement)
            if stepped == SQLITE_DONE { return rows }
            guard stepped == SQLITE_ROW else { try check(stepped); return rows }
            var row: [SQLValue] = []
            row.reserveCapacity(Int(columns))
            for column in 0..<columns { row.append(value(statement, column)) }
            rows.append(row)
        }
    }

    func close() {
        for statement in statements.values { sqlite_nio_sqlite3_finalize(statement) }
        statements = [:]
        sqlite_nio_sqlite3_close_v2(db)
    }

    // MARK: Statements

    private func prepared(_ sql: String) throws -> OpaquePointer? {
        if let statement = statements[sql] { return statement }
        if statements.count >= Self.cacheLimit {
            for statement in statements.values { sqlite_nio_sqlite3_finalize(statement) }
            statements = [:]
        }
        var statement: OpaquePointer?
        try check(sqlite_nio_sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil))
        // Text of only whitespace or comments prepares to no statement: nothing to run.
        guard let statement else { return nil }
        statements[sql] = statement
        return statement
    }

    private func bind(_ value: SQLValue, at index: Int32, of statement: OpaquePointer) -> Int32 {
        switch value {
        case .int(let i): return sqlite_nio_sqlite3_bind_int64(statement, index, i)
        case .double(let d): return sqlite_nio_sqlite3_bind_double(statement, index, d)
        case .null: return sqlite_nio_sqlite3_bind_null(statement, index)
        case .text(var s):
            return s.withUTF8 { bytes in
                sqlite_nio_sqlite3_bind_text64(statement, index, UnsafeRawPointer(bytes.baseAddress)?.assumingMemoryBound(to: CChar.self),
                                               UInt64(bytes.count), Self.transient, UInt8(SQLITE_UTF8))
            }
        }
    }

    private func value(_ statement: OpaquePointer, _ column: Int32) -> SQLValue {
        switch sqlite_nio_sqlite3_column_type(statement, column) {
        case SQLITE_INTEGER: return .int(sqlite_nio_sqlite3_column_int64(statement, column))
        case SQLITE_FLOAT: return .double(sqlite_nio_sqlite3_column_double(statement, column))
        case SQLITE_NULL: return .null
        default:
            // Text, or a blob read as UTF-8 text (the store writes none; this is how sqlite-nio's rows were read).
            guard let bytes = sqlite_nio_sqlite3_column_blob(statement, column) else { return .text("") }
            let count = Int(sqlite_nio_sqlite3_column_bytes(statement, column))
            return .text(String(decoding: UnsafeRawBufferPointer(start: bytes, count: count), as: UTF8.self))
        }
    }

    private func check(_ code: Int32) throws {
        guard code != SQLITE_OK else { return }
        let message = String(cString: sqlite_nio_sqlite3_errmsg(db))
        if isDiskFull(code) {
            // The statement (or the whole transaction: `SQLiteWriter` reports that to every write of the batch) is undone;
            // the next write tries again, so space freed on the disk is used without a restart.
            // A write, or the checkpointer copying the WAL into the database file (which then stays in the WAL until it can).
            Self.logger.error("The database's disk is full; the statement was undone (SQLite error \(code): \(message)).")
            throw DirectoryError(.insufficientStorage, "The directory's storage is full; the change was not saved. Retry once space is freed.")
        }
        throw SQLiteFailure(code: code, message: message)
    }

    /// SQLITE_FULL, or an I/O error whose system call failed with ENOSPC (a write to the WAL or a journal that found the
    /// disk full, which SQLite reports as an I/O error rather than as a full database).
    private func isDiskFull(_ code: Int32) -> Bool {
        let primary = code & 0xff
        if primary == SQLITE_FULL { return true }
        return primary == SQLITE_IOERR && sqlite_nio_sqlite3_system_errno(db) == ENOSPC
    }

    private static let logger = Logger(label: "tessera.sqlite")

    /// SQLite copies the bound bytes (the C header's `SQLITE_TRANSIENT`, a macro Swift cannot import).
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
}

/// An error SQLite reported, with its (extended) result code.
struct SQLiteFailure: Error, Sendable, CustomStringConvertible {
    let code: Int32
    let message: String
    var description: String { "SQLite error \(code): \(message)" }
}
