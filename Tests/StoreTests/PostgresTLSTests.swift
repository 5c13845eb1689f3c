import Foundation
import Testing
@testable import Store
import TesseraCore

/// libpq's `sslmode` against the test command's PostgreSQL, which offers TLS with a certificate from its own CA
/// (`TESSERA_TEST_POSTGRES_CA`, made by scripts/pg-up).
enum TLSPostgres {
    static var server: (url: String, ca: String)? {
        let environment = ProcessInfo.processInfo.environment
        guard let url = environment["TESSERA_TEST_POSTGRES_URL"], !url.isEmpty,
              let ca = environment["TESSERA_TEST_POSTGRES_CA"], FileManager.default.isReadableFile(atPath: ca) else { return nil }
        return (url, ca)
    }
}

@Suite("PostgreSQL over TLS", .enabled(if: TLSPostgres.server != nil))
struct PostgresTLSTests {

    /// Whether the store's connection is encrypted, as the server sees it.
    static func encrypted(_ url: String) async throws -> Bool {
        let store = try await SQLDirectoryStore.open(url)
        do {
            let rows = try await store.backend.withReadSession { session in
                try await session.execute("SELECT CASE WHEN ssl THEN 1 ELSE 0 END FROM pg_stat_ssl WHERE pid = pg_backend_pid()", [])
            }
            try await store.shutdown()
            return rows.first?.first == .int(1)
        } catch {
            try? await store.shutdown()
            throw error
        }
    }

    @Test("verify-full with the server's CA is encrypted and verified; disable is plain")
    func modes() async throws {
        let (url, ca) = try #require(TLSPostgres.server)
        #expect(try await Self.encrypted(url + "?sslmode=verify-full&sslrootcert=\(ca)"))
        #expect(try await Self.encrypted(url + "?sslmode=require"))
        #expect(try await !Self.encrypted(url + "?sslmode=disable"))
    }

    @Test("verify-full refuses a server whose certificate does not chain to the given root")
    func wrongRoot() async throws {
        let (url, _) = try #require(TLSPostgres.server)
        let other = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("interop/webauthn/testpki/mds-root.pem").path
        // The pool retries a refused handshake for about a minute before it gives up: no connection within ten seconds
        // is the refusal this test needs.
        let connected = await withTaskGroup(of: Bool.self) { group in
            group.addTask { (try? await Self.encrypted(url + "?sslmode=verify-full&sslrootcert=\(other)")) != nil }
            group.addTask {
                try? await Task.sleep(for: .seconds(10))
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        #expect(!connected)
    }

    @Test("a mode libpq does not know, verify-ca without a root, or an unknown parameter is a configuration error")
    func badURLs() async throws {
        let (url, _) = try #require(TLSPostgres.server)
        for bad in ["?sslmode=sometimes", "?sslmode=verify-ca", "?sslrootcert=/nonexistent/ca.pem", "?connect_timeout=5"] {
            await #expect(throws: StoreError.self) { _ = try await SQLDirectoryStore.open(url + bad) }
        }
    }
}
