import Foundation
import Testing
@testable import Store

/// Database URLs as libpq reads them: several hosts, `target_session_attrs`, and the refusals of what Tessera cannot use.
@Suite struct PostgresURLTests {
    @Test("several hosts in order, each with its port or 5432, IPv6 in brackets; user, password and database decoded")
    func hosts() throws {
        let url = try PostgresURL("postgresql://tessera:p%40ss%3Aword@db1.example:6432,db2.example,[::1]:5433/tessera%20prod?target_session_attrs=read-write")
        #expect(url.endpoints == [PostgresEndpoint(host: "db1.example", port: 6432), PostgresEndpoint(host: "db2.example", port: 5432),
                                  PostgresEndpoint(host: "::1", port: 5433)])
        #expect(url.endpoints.map(\.description) == ["db1.example:6432", "db2.example:5432", "[::1]:5433"])
        #expect(url.username == "tessera" && url.password == "p@ss:word" && url.database == "tessera prod")
        #expect(url.target == .readWrite)
    }

    @Test("one host, no user, no database, no parameters: postgres, the server's default database, any server")
    func defaults() throws {
        let url = try PostgresURL("postgres://127.0.0.1")
        #expect(url.endpoints == [PostgresEndpoint(host: "127.0.0.1", port: 5432)])
        #expect(url.username == "postgres" && url.password == nil && url.database == nil && url.target == .any)
    }

    @Test("target_session_attrs: any, read-write and primary are understood")
    func targets() throws {
        for (value, target) in [("any", PostgresTarget.any), ("read-write", .readWrite), ("primary", .primary)] {
            #expect(try PostgresURL("postgres://a:1,b:2/db?target_session_attrs=\(value)&sslmode=disable").target == target)
        }
    }

    @Test("a read-only target, an unknown target, an empty host, a bad port or an unknown parameter is a configuration error that says so")
    func refusals() throws {
        let cases: [(String, String)] = [
            ("postgres://a,b/db?target_session_attrs=read-only", "refuses writes"),
            ("postgres://a,b/db?target_session_attrs=standby", "refuses writes"),
            ("postgres://a,b/db?target_session_attrs=prefer-standby", "refuses writes"),
            ("postgres://a,b/db?target_session_attrs=readwrite", "must be any, read-write or primary"),
            ("postgres://a,,b/db", "a host is empty"),
            ("postgres://user@/db", "a host is empty"),
            ("postgres://a:5432,b:99999/db", "not a number from 1 to 65535"),
            ("postgres://a:x/db", "not a number from 1 to 65535"),
            ("postgres://[::1/db", "never closes"),
            ("postgres://a,b/db?connect_timeout=5", "Unknown PostgreSQL URL parameter 'connect_timeout'"),
            ("postgres://a/db?sslmode=sometimes", "sslmode must be"),
            ("mysql://a/db", "Not a PostgreSQL URL"),
        ]
        for (url, says) in cases {
            #expect("\(url)", performing: { _ = try PostgresURL(url) }, throws: { error in
                "\(error)".contains(says) && error is StoreError
            })
        }
    }

    @Test("sslmode and sslrootcert still apply to every host")
    func tls() throws {
        let url = try PostgresURL("postgres://a:1,b:2/db?sslmode=disable&target_session_attrs=read-write")
        #expect(url.tls.mode == .disable)
        #expect(try PostgresURL("postgres://a:1,b:2/db").tls.mode == .prefer)
        #expect(try PostgresURL("postgres://a:1,b:2/db?sslmode=require").tls.mode == .require)
        #expect(throws: StoreError.self) { _ = try PostgresURL("postgres://a:1,b:2/db?sslmode=verify-ca") }
    }
}
