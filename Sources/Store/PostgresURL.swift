import Foundation
import NIOSSL
import PostgresNIO

/// One server a PostgreSQL URL names.
struct PostgresEndpoint: Sendable, Hashable, CustomStringConvertible {
    let host: String
    let port: Int
    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Which of the URL's servers a connection may use, as libpq's `target_session_attrs`: the first one (in the URL's
/// order) that accepts a connection (`any`, the default), that accepts writes (`read-write`: `transaction_read_only` is
/// off), or that is not in recovery (`primary`).
enum PostgresTarget: String, Sendable {
    case any
    case readWrite = "read-write"
    case primary
}

/// A PostgreSQL connection URL as libpq reads it, with the parts Tessera understands:
/// `postgres://user[:password]@host[:port][,host[:port]…]/database[?sslmode=…&sslrootcert=FILE&target_session_attrs=…]`.
/// A host may be an IPv6 address in brackets; a host without a port gets 5432.
struct PostgresURL: Sendable {
    var endpoints: [PostgresEndpoint]
    var username: String
    var password: String?
    var database: String?
    var target: PostgresTarget
    var tls: PostgresTLS

    static let parameters = ["sslmode", "sslrootcert", "target_session_attrs"]

    init(_ url: String) throws {
        let scheme = ["postgres://", "postgresql://"].first { url.hasPrefix($0) }
        guard let scheme else { throw StoreError.badConfiguration("Not a PostgreSQL URL (postgres://user@host:port/database).") }
        var rest = Substring(url.dropFirst(scheme.count))
        var query = ""
        if let mark = rest.firstIndex(of: "?") {
            query = String(rest[rest.index(after: mark)...])
            rest = rest[..<mark]
        }
        var path = ""
        if let slash = rest.firstIndex(of: "/") {
            path = String(rest[rest.index(after: slash)...])
            rest = rest[..<slash]
        }
        // The user part ends at the last `@` (a password's own `@` must be percent-encoded, but a stray one stays there).
        var hosts = rest
        var user: String?
        if let at = rest.lastIndex(of: "@") {
            let info = rest[..<at]
            hosts = rest[rest.index(after: at)...]
            if let colon = info.firstIndex(of: ":") {
                user = Self.decoded(info[..<colon])
                password = Self.decoded(info[info.index(after: colon)...])
            } else {
                user = Self.decoded(info)
            }
        }
        username = user.flatMap { $0.isEmpty ? nil : $0 } ?? "postgres"
        let name = Self.decoded(Substring(path))
        database = name.isEmpty ? nil : name
        endpoints = try hosts.split(separator: ",", omittingEmptySubsequences: false).map(Self.endpoint)

        var values: [String: String] = [:]
        for pair in query.split(separator: "&") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = Self.decoded(parts[0])
            guard Self.parameters.contains(key), parts.count == 2 else {
                throw StoreError.badConfiguration(
                    "Unknown PostgreSQL URL parameter '\(key)' (sslmode, sslrootcert and target_session_attrs are understood).")
            }
            values[key] = Self.decoded(parts[1])
        }
        target = try Self.target(values["target_session_attrs"])
        tls = try PostgresTLS(mode: values["sslmode"], root: values["sslrootcert"])
    }

    static func endpoint(_ text: Substring) throws -> PostgresEndpoint {
        var host = text
        var port: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw StoreError.badConfiguration("The PostgreSQL host '\(text)' opens an IPv6 address with '[' and never closes it.")
            }
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw StoreError.badConfiguration("The PostgreSQL host '\(text)' is not host:port.") }
                port = after.dropFirst()
            }
        } else if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        let name = decoded(host)
        guard !name.isEmpty else {
            throw StoreError.badConfiguration("A PostgreSQL URL names its hosts: postgres://user@host1:port1,host2:port2/database (a host is empty).")
        }
        guard let port else { return PostgresEndpoint(host: name, port: 5432) }
        guard let number = Int(port), (1...65535).contains(number) else {
            throw StoreError.badConfiguration("The PostgreSQL port '\(port)' of host \(name) is not a number from 1 to 65535.")
        }
        return PostgresEndpoint(host: name, port: number)
    }

    static func target(_ value: String?) throws -> PostgresTarget {
        guard let value else { return .any }
        if let target = PostgresTarget(rawValue: value) { return target }
        if ["read-only", "standby", "prefer-standby"].contains(value) {
            throw StoreError.badConfiguration(
                "target_session_attrs=\(value) would pick a server that refuses writes, and Tessera writes to its database: use read-write (or primary).")
        }
        throw StoreError.badConfiguration("target_session_attrs must be any, read-write or primary (not '\(value)').")
    }

    static func decoded(_ text: Substring) -> String {
        String(text).removingPercentEncoding ?? String(text)
    }

    /// The pooled client's settings for one of the servers.
    func clientConfiguration(_ endpoint: PostgresEndpoint) -> PostgresClient.Configuration {
        PostgresClient.Configuration(host: endpoint.host, port: endpoint.port, username: username, password: password,
                                     database: database, tls: tls.client)
    }

    /// A single connection's settings for one of the servers (to probe it or watch it).
    func connectionConfiguration(_ endpoint: PostgresEndpoint, connectTimeout: Duration) -> PostgresConnection.Configuration {
        var configuration = PostgresConnection.Configuration(host: endpoint.host, port: endpoint.port, username: username,
                                                             password: password, database: database, tls: tls.connection)
        let (seconds, attoseconds) = connectTimeout.components
        configuration.options.connectTimeout = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        return configuration
    }
}

/// TLS as libpq's `sslmode` and `sslrootcert` ask: `disable`; `allow`/`prefer` (the default: TLS when the server offers
/// it, unverified); `require` (TLS, unverified, unless a root is given, as libpq does); `verify-ca` (the chain to
/// `sslrootcert`); `verify-full` (the chain and the host name). A database reached over a network should be `verify-full`.
struct PostgresTLS: Sendable {
    enum Mode: Sendable {
        case disable
        /// TLS when the server offers it.
        case prefer
        case require
    }

    let mode: Mode
    /// For the pool.
    let client: PostgresClient.Configuration.TLS
    /// For single connections (probes), from the same settings.
    let connection: PostgresConnection.Configuration.TLS

    init(mode: String?, root: String?) throws {
        let mode = mode ?? "prefer"
        var tls = TLSConfiguration.makeClientConfiguration()
        if let root {
            guard FileManager.default.isReadableFile(atPath: root) else {
                throw StoreError.badConfiguration("sslrootcert \(root) cannot be read.")
            }
            tls.trustRoots = .file(root)
        }
        let required: Bool
        switch mode {
        case "disable":
            self.mode = .disable
            client = .disable
            connection = .disable
            return
        case "allow", "prefer":
            tls.certificateVerification = .none
            required = false
        case "require":
            tls.certificateVerification = root == nil ? .none : .noHostnameVerification
            required = true
        case "verify-ca":
            guard root != nil else { throw StoreError.badConfiguration("sslmode=verify-ca needs sslrootcert=FILE.") }
            tls.certificateVerification = .noHostnameVerification
            required = true
        case "verify-full":
            tls.certificateVerification = .fullVerification
            required = true
        default:
            throw StoreError.badConfiguration("sslmode must be disable, allow, prefer, require, verify-ca or verify-full (not '\(mode)').")
        }
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: tls)
        } catch {
            throw StoreError.badConfiguration("The TLS settings for PostgreSQL cannot be used: \(error).")
        }
        self.mode = required ? .require : .prefer
        client = required ? .require(tls) : .prefer(tls)
        connection = required ? .require(context) : .prefer(context)
    }
}
