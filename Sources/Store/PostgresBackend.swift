import Foundation
import Logging
import NIOCore
import NIOSSL
import PostgresNIO

/// PostgreSQL through a pooled PostgresNIO client, for deployments with several Tessera nodes.
final class PostgresBackend: SQLBackend {
    let dialect = SQLDialect.postgres
    private let client: PostgresClient
    private let runner: Task<Void, Never>
    private let logger = Logger(label: "tessera.postgres")

    /// Connects to `postgres://user[:password]@host[:port]/database[?sslmode=…&sslrootcert=FILE]`.
    init(url: String, maxConnections: Int = 16) throws {
        guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? ""),
              let host = components.host, !host.isEmpty
        else { throw StoreError.badConfiguration("Not a PostgreSQL URL (postgres://user@host:port/database).") }
        let database = String(components.path.drop(while: { $0 == "/" }))
        var configuration = PostgresClient.Configuration(
            host: host, port: components.port ?? 5432, username: components.user ?? "postgres",
            password: components.password, database: database.isEmpty ? nil : database, tls: try Self.tls(components.queryItems ?? []))
        configuration.options.maximumConnections = maxConnections
        configuration.options.minimumConnections = 1
        client = PostgresClient(configuration: configuration, backgroundLogger: Logger(label: "tessera.postgres.pool"))
        // Started at once, on this thread, so the client is running before the first lease (PostgresNIO warns otherwise).
        runner = Task.immediate { [client] in await client.run() }
    }

    /// TLS as libpq's `sslmode` and `sslrootcert` ask: `disable`; `allow`/`prefer` (the default: TLS when the server
    /// offers it, unverified); `require` (TLS, unverified, unless a root is given, as libpq does); `verify-ca` (the
    /// chain to `sslrootcert`); `verify-full` (the chain and the host name). A database reached over a network should be
    /// `verify-full`.
    static func tls(_ items: [URLQueryItem]) throws -> PostgresClient.Configuration.TLS {
        var parameters: [String: String] = [:]
        for item in items {
            guard ["sslmode", "sslrootcert"].contains(item.name), let value = item.value else {
                throw StoreError.badConfiguration("Unknown PostgreSQL URL parameter '\(item.name)' (sslmode and sslrootcert are understood).")
            }
            parameters[item.name] = value
        }
        let mode = parameters["sslmode"] ?? "prefer"
        var tls = TLSConfiguration.makeClientConfiguration()
        if let root = parameters["sslrootcert"] {
            guard FileManager.default.isReadableFile(atPath: root) else {
                throw StoreError.badConfiguration("sslrootcert \(root) cannot be read.")
            }
            tls.trustRoots = .file(root)
        }
        switch mode {
        case "disable":
            return .disable
        case "allow", "prefer":
            tls.certificateVerification = .none
            return .prefer(tls)
        case "require":
            tls.certificateVerification = parameters["sslrootcert"] == nil ? .none : .noHostnameVerification
            return .require(tls)
        case "verify-ca":
            guard parameters["sslrootcert"] != nil else { throw StoreError.badConfiguration("sslmode=verify-ca needs sslrootcert=FILE.") }
            tls.certificateVerification = .noHostnameVerification
            return .require(tls)
        case "verify-full":
            tls.certificateVerification = .fullVerification
            return .require(tls)
        default:
            throw StoreError.badConfiguration("sslmode must be disable, allow, prefer, require, verify-ca or verify-full (not '\(mode)').")
        }
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

/// Errors of the store that are not directory errors: configuration and corruption.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
    static func badConfiguration(_ message: String) -> StoreError { StoreError(message: message) }
}
