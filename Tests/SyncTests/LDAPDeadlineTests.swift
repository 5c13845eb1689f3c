import Foundation
import Testing
import LDAP
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Servers that misbehave the ways that hung the live tests: one that takes connections and never says a word, and
/// one that closes each connection as soon as it has it. Every wait of the client must end, with an error, by its
/// deadline or sooner (each test checks its own bound); the suite's time limit makes a regression fail instead of hang,
/// and is generous because a loaded full run on two cores has resumed waiting tasks more than a minute late.
@Suite("LDAP client: every network wait has a deadline", .timeLimit(.minutes(10)))
struct LDAPDeadlineTests {
    /// A listening TCP socket on 127.0.0.1. The kernel completes connections to it whether or not they are
    /// accepted; `closeEach` accepts them on a thread of its own and closes each at once.
    final class Listener: Sendable {
        let descriptor: Int32
        let port: Int

        init(closeEach: Bool) throws {
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            self.descriptor = descriptor
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                    bind(descriptor, pointer, length) == 0 && listen(descriptor, 16) == 0 && getsockname(descriptor, pointer, &length) == 0
                }
            }
            guard bound else { throw LDAPError("the test listener could not bind") }
            port = Int(UInt16(bigEndian: address.sin_port))
            if closeEach {
                Thread.detachNewThread {
                    while true {
                        let connection = accept(descriptor, nil, nil)
                        guard connection >= 0 else { return }  // the listener was closed
                        close(connection)
                    }
                }
            }
        }

        deinit { shutdown(descriptor, Int32(SHUT_RDWR)); close(descriptor) }
    }

    static func elapsed(_ body: () async throws -> Void) async -> (error: (any Error)?, seconds: Double) {
        let start = ContinuousClock.now
        do { try await body() } catch { return (error, (ContinuousClock.now - start) / .seconds(1)) }
        return (nil, (ContinuousClock.now - start) / .seconds(1))
    }

    @Test("a server that never answers the TLS handshake fails ldaps:// at connect, at the deadline")
    func silentHandshake() async throws {
        let server = try Listener(closeEach: false)
        let (error, seconds) = await Self.elapsed {
            _ = try await LDAPConnection.connect(url: "ldaps://127.0.0.1:\(server.port)", tls: LDAPTLS(mode: .ldaps, insecureSkipVerify: true),
                                                 timeout: .milliseconds(500))
        }
        // The message shows that the 500 ms deadline fired (not the 30 s default, nor none). No wall-clock bound: a full
        // run's CPU-bound suites can keep this task from resuming for many seconds (26 s seen on a loaded machine).
        #expect((error as? LDAPError)?.message.contains("the TLS handshake took longer than 500 ms") == true, "\(String(describing: error))")
        #expect(seconds >= 0.5)
    }

    @Test("a bind, a StartTLS and a search that get no answer fail at the deadline", arguments: ["bind", "startTLS", "search"])
    func silentRequests(_ request: String) async throws {
        let server = try Listener(closeEach: false)
        let (error, seconds) = await Self.elapsed {
            let connection = try await LDAPConnection.connect(url: "ldap://127.0.0.1:\(server.port)",
                                                              tls: LDAPTLS(mode: request == "startTLS" ? .startTLS : .none, insecureSkipVerify: true),
                                                              timeout: .milliseconds(500))
            try await connection.closing { connection in
                if request == "bind" { try await connection.bind(dn: "CN=x", password: "y") }
                if request == "search" { _ = try await connection.search(base: "DC=x", filter: "(objectClass=*)") }
            }
        }
        // A search's deadline is on silence (LDAPStreamTests): here nothing comes at all.
        let expected = ["bind": "the bind request took longer than", "startTLS": "the extended request took longer than",
                        "search": "the search request got nothing from the server for"][request]!
        #expect((error as? LDAPError)?.message.contains("\(expected) 500 ms") == true, "\(String(describing: error))")
        #expect(seconds >= 0.5)  // as above: the message names the deadline that fired
    }

    @Test("a connection the server closed fails the next request at once, not at the deadline (nor never)")
    func closedByTheServer() async throws {
        let server = try Listener(closeEach: true)
        let (error, _) = await Self.elapsed {
            let connection = try await LDAPConnection.connect(url: "ldap://127.0.0.1:\(server.port)", tls: LDAPTLS(mode: .none), timeout: .seconds(40))
            // Give the server's close time to arrive, so the bind is written to a connection that is already gone
            // (if it has not, the bind fails as the connection closes: the same error, as soon).
            try await Task.sleep(for: .milliseconds(200))
            try await connection.closing { connection in try await connection.bind(dn: "CN=x", password: "y") }
        }
        #expect(error != nil)
        // It failed with the connection, not at its 40-second deadline: a deadline's error says so. (The suite's time
        // limit catches "never"; a wall-clock bound would also catch a loaded machine.)
        #expect((error as? LDAPError)?.message.contains("took longer than") != true, "\(String(describing: error))")
    }

    @Test("a server that closes the connection during the TLS handshake fails ldaps:// at connect, at once")
    func closedDuringTheHandshake() async throws {
        // (A certificate nobody trusts ends the handshake the same way: LDAPLiveTests checks that against Samba.)
        let server = try Listener(closeEach: true)
        let (error, _) = await Self.elapsed {
            _ = try await LDAPConnection.connect(url: "ldaps://127.0.0.1:\(server.port)", tls: LDAPTLS(mode: .ldaps), timeout: .seconds(40))
        }
        #expect(error != nil)
        #expect((error as? LDAPError)?.message.contains("took longer than") != true, "\(String(describing: error))")
    }
}
