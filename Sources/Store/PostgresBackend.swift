import Foundation
import Logging
import NIOCore
import NIOSSL
import PostgresNIO
import Synchronization
import TesseraCore

/// PostgreSQL through a pooled PostgresNIO client, for deployments with several Tessera nodes. The URL may name several
/// servers (a primary and its standbys) with `target_session_attrs=read-write`: `PostgresRouter` keeps the client on the
/// one that takes writes and moves it when that one dies and a standby is promoted.
final class PostgresBackend: SQLBackend {
    let dialect = SQLDialect.postgres
    let router: PostgresRouter
    /// Told each statement's SQL as it is sent (for tests that count round trips).
    let observe: (@Sendable (String) -> Void)?

    /// Connects to `postgres://user[:password]@host[:port][,host[:port]…]/database[?sslmode=…&sslrootcert=FILE&target_session_attrs=…]`.
    init(url: String, maxConnections: Int = 16, timing: PostgresRouter.Timing = PostgresRouter.Timing(),
         observe: (@Sendable (String) -> Void)? = nil) throws {
        router = PostgresRouter(url: try PostgresURL(url), maxConnections: maxConnections, timing: timing)
        self.observe = observe
    }

    func withWriteSession<T: Sendable>(_ body: @Sendable (any SQLSession) async throws -> T) async throws -> T {
        let committing = Flag()
        do {
            return try await router.withConnection { [logger = router.logger, observe] connection in
                // BEGIN goes out with the first write, and a create that is the only write runs alone as the commit
                // (`PostgresWriteSession`).
                let session = PostgresWriteSession(PostgresSession(connection: connection, logger: logger, observe: observe), committing: committing)
                let result: T
                do {
                    result = try await body(session)
                } catch {
                    await session.rollBack()
                    throw error
                }
                try await session.commit()
                return result
            }
        } catch let error as PostgresUnavailable {
            // A write that failed before its COMMIT was sent was rolled back; one whose COMMIT got no answer may have been
            // saved (the server can die between committing and answering): the caller is told which.
            let doubt = committing.isSet
            router.logger.warning("A write was refused: \(error)")
            throw DirectoryError(.serviceUnavailable, doubt
                ? "The database connection was lost while the change was being committed: it may or may not have been saved. Check, then retry shortly."
                : "The database is unavailable (it may be failing over to another server); the change was not saved. Retry shortly.")
        }
    }

    func withReadSession<T: Sendable>(_ body: @Sendable (any SQLSession) async throws -> T) async throws -> T {
        do {
            return try await router.withConnection { [logger = router.logger, observe] connection in
                try await body(PostgresSession(connection: connection, logger: logger, observe: observe))
            }
        } catch let error as PostgresUnavailable {
            router.logger.warning("A read was refused: \(error)")
            throw DirectoryError(.serviceUnavailable, "The database is unavailable (it may be failing over to another server). Retry shortly.")
        }
    }

    func close() async throws {
        await router.close()
    }
}

struct PostgresSession: SQLSession {
    let connection: PostgresConnection
    let logger: Logger
    var observe: (@Sendable (String) -> Void)? = nil

    func execute(_ sql: String, _ binds: [SQLValue]) async throws -> [[SQLValue]] {
        observe?(sql)
        let query = Self.query(sql, binds)
        // A statement written to a connection whose channel has closed and dropped its handlers is never answered by
        // PostgresNIO (its promise is dropped with the write): the request would hang. Whether the connection is closed
        // is asked on its event loop, in the same turn that writes the statement, so no close can come between the two:
        // an open channel still has the handler that fails the statement when the connection goes.
        let result = try await connection.eventLoop.flatSubmit { [connection, logger] () -> EventLoopFuture<PostgresQueryResult> in
            guard !connection.isClosed else {
                return connection.eventLoop.makeFailedFuture(PostgresUnavailable(reason: "the connection was lost", underlying: nil))
            }
            return connection.query(query, logger: logger)
        }.get()
        // COMMIT in a transaction that an earlier statement aborted answers ROLLBACK without an error: nothing was saved,
        // and saying otherwise would acknowledge a lost write.
        if result.metadata.command == "ROLLBACK", sql == "COMMIT" {
            throw StoreError(message: "The transaction was rolled back at its commit: an earlier statement in it failed.")
        }
        return try Self.values(result)
    }

    /// Runs `sql`, a write outside any transaction block, so its own commit, and returns once its commit is proven to
    /// have ended (why a proof is needed: `executeCommitting`). The statement and the `SELECT 1` proof are written
    /// together, on the connection's event loop, in the turn that finds the connection open: PostgresNIO sends the proof
    /// from the loop as soon as the statement's ReadyForQuery arrives (it sends a connection's queries one after the
    /// other), and the caller resumes once, when the proof's answer is in. The proof comes only after the statement's
    /// commit ended, whatever the statement's answer was; a connection lost before the proof's answer fails the call
    /// (the write's outcome is then in doubt: the write session set `committing` first). A statement that fails is
    /// reported with its own error, without waiting for the proof.
    func executeLast(_ sql: String, _ binds: [SQLValue]) async throws -> [[SQLValue]] {
        observe?(sql)
        let query = Self.query(sql, binds)
        let result = try await connection.eventLoop.flatSubmit { [connection, logger, observe] () -> EventLoopFuture<PostgresQueryResult> in
            guard !connection.isClosed else {
                return connection.eventLoop.makeFailedFuture(PostgresUnavailable(reason: "the connection was lost", underlying: nil))
            }
            // Told before either is written: both go out in this turn.
            observe?("SELECT 1")
            let answer = connection.query(query, logger: logger)
            let proof = connection.query("SELECT 1", logger: logger)
            return answer.and(proof).map { answer, _ in answer }
        }.get()
        return try Self.values(result)
    }

    /// A session outside any transaction block: each write is its own commit, so a held write runs alone at once.
    func hold(_ write: HeldWrite) async throws {
        try await write.alone(self)
    }

    /// `sql` with `?` placeholders and its values, as PostgresNIO sends them.
    static func query(_ sql: String, _ binds: [SQLValue]) -> PostgresQuery {
        var bindings = PostgresBindings(capacity: binds.count)
        for value in binds {
            switch value {
            case .text(let s): bindings.append(s)
            case .int(let i): bindings.append(i)
            case .double(let d): bindings.append(d)
            case .null: bindings.appendNull()
            }
        }
        return PostgresQuery(unsafeSQL: numberPlaceholders(sql), binds: bindings)
    }

    /// An answer's rows as positional values.
    static func values(_ result: PostgresQueryResult) throws -> [[SQLValue]] {
        try result.rows.map { row in
            try row.map { cell -> SQLValue in
                guard cell.bytes != nil else { return .null }
                switch cell.dataType {
                case .int8, .int4, .int2: return .int(try cell.decode(Int64.self))
                case .float8, .float4, .numeric: return .double(try cell.decode(Double.self))
                case .bool: return .int(try cell.decode(Bool.self) ? 1 : 0)
                default: return .text(try cell.decode(String.self))
                }
            }
        }
    }

    /// Runs `statement`, a write outside any transaction block that is its own commit, prepared on this connection the
    /// first time (PostgresNIO keeps it by name per connection), and returns once its commit is proven to have ended: a
    /// statement outside a block is committed at the Sync after it, after its answer was written, and PostgresNIO hands
    /// the answer over before Sync's ReadyForQuery. Normally both arrive together, but a server killed while the commit
    /// waits (for a synchronous standby) sends the buffered answer with its goodbye. `SELECT 1`'s answer comes only after
    /// that ReadyForQuery, so it proves the commit ended; without it a create whose commit never reached the standby was
    /// acknowledged, and lost when the standby was promoted.
    ///
    /// Both run on the connection's event loop (`PostgresLoop`): each is written in the turn that found the connection
    /// open, as `execute` does, and `SELECT 1` is written as soon as the statement's answer is read, without leaving the
    /// loop. A statement that fails saved nothing and needs no proof.
    func executeCommitting<Statement: PostgresPreparedStatement>(_ statement: Statement) async throws where Statement.Row == () {
        observe?(Statement.sql)
        try await PostgresLoop(connection.eventLoop).executeCommitting(statement, on: connection, logger: logger, observe: observe)
    }

    /// Closes the connection (its pool makes another): for one whose prepared statement may have failed to prepare.
    func discard() {
        logger.warning("A PostgreSQL connection is closed after a prepared statement failed")
        connection.close().whenComplete { _ in }
    }

    /// Rewrites `?` placeholders to PostgreSQL's `$1, $2…`, leaving quoted text alone. Over the UTF-8 bytes (`?` and `'`
    /// are ASCII, and no other character's encoding contains their bytes): walking characters took 2% of the time of a
    /// `POST /users` on PostgreSQL.
    static func numberPlaceholders(_ sql: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(sql.utf8.count + 16)
        var n = 0
        var inQuote = false
        for byte in sql.utf8 {
            if byte == UInt8(ascii: "'") { inQuote.toggle() }
            if byte == UInt8(ascii: "?"), !inQuote {
                n += 1
                out.append(UInt8(ascii: "$"))
                out.append(contentsOf: String(n).utf8)
            } else {
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// A connection's event loop as an actor: its methods run on the loop, and what one does between two suspensions happens
/// in one turn of the loop. PostgresNIO's async calls run on their caller's executor (its module makes them
/// `nonisolated(nonsending)`), so a statement they send is written in that turn too.
actor PostgresLoop {
    let loop: any EventLoop

    init(_ loop: any EventLoop) {
        self.loop = loop
    }

    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.executor.asUnownedSerialExecutor() }

    /// `PostgresSession.executeCommitting`, on the loop.
    func executeCommitting<Statement: PostgresPreparedStatement>(_ statement: Statement, on connection: PostgresConnection, logger: Logger,
                                                                 observe: (@Sendable (String) -> Void)?) async throws where Statement.Row == () {
        // A statement written to a connection whose channel has closed and dropped its handlers is never answered (see
        // `PostgresSession.execute`): the connection is found open in the turn that writes the statement.
        guard !connection.isClosed else { throw PostgresUnavailable(reason: "the connection was lost", underlying: nil) }
        _ = try await connection.execute(statement, logger: logger)
        observe?("SELECT 1")
        guard !connection.isClosed else { throw PostgresUnavailable(reason: "the connection was lost", underlying: nil) }
        // Its one row is read to the end: the answer is whole.
        for try await _ in try await connection.query("SELECT 1", logger: logger) {}
    }
}

/// Errors of the store that are not directory errors: configuration and corruption.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
    static func badConfiguration(_ message: String) -> StoreError { StoreError(message: message) }
}
