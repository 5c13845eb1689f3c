import Foundation
import Logging
import NIOCore
import NIOPosix
import SQLiteNIO

/// SQLite in WAL mode: one writer connection (SQLite allows one writer) and a few readers.
final class SQLiteBackend: SQLBackend {
    let dialect = SQLDialect.sqlite
    private let writer: ConnectionPool<SQLiteConnection>
    private let readers: ConnectionPool<SQLiteConnection>

    init(path: String, readers readerCount: Int = 4) async throws {
        let logger = Logger(label: "tessera.sqlite")
        let storage: SQLiteConnection.Storage = path == ":memory:" ? .memory : .file(path: path)
        let writer = try await SQLiteConnection.open(storage: storage, logger: logger)
        // A 64 MB page cache for the writer: large writes (a tenant's first snapshot, bulk loads) stay in memory
        // instead of reading pages back from the file.
        for pragma in ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA busy_timeout=10000", "PRAGMA foreign_keys=ON",
                       "PRAGMA cache_size=-65536"] {
            _ = try await writer.query(pragma)
        }
        var readerConnections: [SQLiteConnection] = []
        if path != ":memory:" {
            for _ in 0..<readerCount {
                let reader = try await SQLiteConnection.open(storage: storage, logger: logger)
                _ = try await reader.query("PRAGMA busy_timeout=10000")
                _ = try await reader.query("PRAGMA query_only=ON")
                readerConnections.append(reader)
            }
        }
        self.writer = ConnectionPool([writer])
        // An in-memory database is private to its connection, so reads share the writer.
        self.readers = readerConnections.isEmpty ? self.writer : ConnectionPool(readerConnections)
    }

    func withWriteSession<T: Sendable>(_ body: @Sendable (any SQLSession) async throws -> T) async throws -> T {
        // IMMEDIATE takes the write lock at once, so a transaction never fails half-way to upgrade it.
        try await writer.with { try await Self.transaction(on: $0, begin: "BEGIN IMMEDIATE", body) }
    }

    func withReadSession<T: Sendable>(_ body: @Sendable (any SQLSession) async throws -> T) async throws -> T {
        // Reads run in autocommit: each statement sees a committed snapshot, with no BEGIN/COMMIT round trips
        // on the hot read path (the same read-committed view PostgreSQL gives).
        try await readers.with { try await body(SQLiteSession(connection: $0)) }
    }

    private static func transaction<T: Sendable>(on connection: SQLiteConnection, begin: String,
                                                 _ body: @Sendable (any SQLSession) async throws -> T) async throws -> T {
        _ = try await connection.query(begin)
        do {
            let result = try await body(SQLiteSession(connection: connection))
            _ = try await connection.query("COMMIT")
            return result
        } catch {
            _ = try? await connection.query("ROLLBACK")
            throw error
        }
    }

    func close() async throws {
        for connection in readers.all { try await connection.close() }
        if readers.all.first !== writer.all.first {
            for connection in writer.all { try await connection.close() }
        }
    }
}

struct SQLiteSession: SQLSession {
    let connection: SQLiteConnection

    func execute(_ sql: String, _ binds: [SQLValue]) async throws -> [[SQLValue]] {
        let values: [SQLiteData] = binds.map {
            switch $0 {
            case .text(let s): .text(s)
            case .int(let i): .integer(Int(i))
            case .double(let d): .float(d)
            case .null: .null
            }
        }
        let rows = try await connection.query(sql, values)
        return rows.map { row in
            row.columns.map { column in
                switch column.data {
                case .integer(let i): .int(Int64(i))
                case .float(let d): .double(d)
                case .text(let s): .text(s)
                case .blob(var buffer): .text(buffer.readString(length: buffer.readableBytes) ?? "")
                case .null: .null
                }
            }
        }
    }
}
