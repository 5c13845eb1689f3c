import Foundation
import Logging
import NIOCore
import PostgresNIO

/// PostgreSQL through a pooled PostgresNIO client, for deployments with several Tessera nodes.
final class PostgresBackend: SQLBackend {
    let dialect = SQLDialect.postgres
    private let client: PostgresClient
    private let runner: Task<Void, Never>
    private let logger = Logger(label: "tessera.postgres")

    /// Connects to `postgres://user[:password]@host[:port]/database`.
    init(url: String, maxConnections: Int = 16) throws {
        guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? ""),
              let host = components.host, !host.isEmpty
        else { throw StoreError.badConfiguration("Not a PostgreSQL URL (postgres://user@host:port/database).") }
        let database = String(components.path.drop(while: { $0 == "/" }))
        var configuration = PostgresClient.Configuration(
            host: host, port: components.port ?? 5432, username: components.user ?? "postgres",
            password: components.password, database: database.isEmpty ? nil : database, tls: .disable)
        configuration.options.maximumConnections = maxConnections
        configuration.options.minimumConnections = 1
        client = PostgresClient(configuration: configuration, backgroundLogger: Logger(label: "tessera.postgres.pool"))
        // Started at once, on this thread, so the client is running before the first lease (PostgresNIO warns otherwise).
        runner = Task.immediate { [client] in await client.run() }
    }

    func withWriteSession<T: Sendable>(_ body: @Sendable (any SQLSession) async throws -> T) async throws -> T {
        try await client.withConnection { connection in
            let session = PostgresSession(connection: connection, logger: logger)
            _ = try await session.execute("BEGIN", [])
            do {
                let result = try await body(session)
                _ = try await session.execute("COMMIT", [])
                return result
            } catch {
                _ = try? await session.execute("ROLLBACK", [])
                throw error
            }
        }
    }

    func withReadSession<T: Sendable>(_ body: @Sendable (any SQLSession) async throws -> T) async throws -> T {
        try await client.withConnection { connection in
            try await body(PostgresSession(connection: connection, logger: logger))
        }
    }

    func close() async throws {
        runner.cancel()
        _ = await runner.value
    }
}

struct PostgresSession: SQLSession {
    let connection: PostgresConnection
    let logger: Logger

    func execute(_ sql: String, _ binds: [SQLValue]) async throws -> [[SQLValue]] {
        var bindings = PostgresBindings(capacity: binds.count)
        for value in binds {
            switch value {
            case .text(let s): bindings.append(s)
            case .int(let i): bindings.append(i)
            case .double(let d): bindings.append(d)
            case .null: bindings.appendNull()
            }
        }
        let query = PostgresQuery(unsafeSQL: Self.numberPlaceholders(sql), binds: bindings)
        let rows = try await connection.query(query, logger: logger).collect()
        return try rows.map { row in
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

    /// Rewrites `?` placeholders to PostgreSQL's `$1, $2…`, leaving quoted text alone.
    static func numberPlaceholders(_ sql: String) -> String {
        var out = ""
        out.reserveCapacity(sql.utf8.count + 16)
        var n = 0
        var inQuote = false
        for ch in sql {
            if ch == "'" { inQuote.toggle() }
            if ch == "?", !inQuote {
                n += 1
                out += "$\(n)"
            } else {
                out.append(ch)
            }
        }
        return out
    }
}

/// Errors of the store that are not directory errors: configuration and corruption.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
    static func badConfiguration(_ message: String) -> StoreError { StoreError(message: message) }
}
