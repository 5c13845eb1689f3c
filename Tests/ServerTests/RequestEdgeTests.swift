import Foundation
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing
@testable import Server
import TesseraCore
#if canImport(Glibc)
import Glibc
#endif

/// What the HTTP edge does for every request, done once: the base URL of a `Host` written as the deployment's own URL
/// is taken as written, the request id minted as the request arrived is the one its handlers see, and a body's time
/// limit is kept by one sweeper for the server (`BodyDeadlines`) instead of a timer per request.
@Suite("The HTTP edge's work per request")
struct RequestEdgeTests {
    @Test("a Host written as one of the public URLs gives that URL, as normalising it would; any other spelling is normalised as before")
    func baseURLAsWritten() {
        let policy = NetworkPolicy(publicURLs: ["https://login.contoso.com", "https://localhost:8443", "https://127.0.0.1:8443",
                                                "https://[::1]:8443", "http://[2001:db8::1]:8080", "HTTPS://Login.Fabrikam.com:443/"])
        for url in policy.publicURLs {
            // The premise of answering a URL as written: a normalised URL normalises to itself.
            #expect(NetworkPolicy.normalise(url) == url)
            let scheme = String(url.prefix { $0 != ":" }), host = String(url.dropFirst(scheme.count + 3))
            #expect(policy.baseURL(scheme: scheme, host: host) == url, "\(url)")
        }
        #expect(policy.baseURL(scheme: "https", host: "login.fabrikam.com") == "https://login.fabrikam.com")
        #expect(policy.baseURL(scheme: "https", host: "Login.Fabrikam.com:443") == "https://login.fabrikam.com")
        #expect(policy.baseURL(scheme: "https", host: "LOCALHOST:8443") == "https://localhost:8443")
        #expect(policy.baseURL(scheme: "http", host: "localhost:8443") == nil)
        #expect(policy.baseURL(scheme: "https", host: "localhost:8443@evil.example") == nil)
        #expect(policy.baseURL(scheme: "https", host: "localhost:8443/") == nil)
    }

    @Test("a Host with whitespace, / or @ is refused, scalar by scalar: ASCII hosts judged as before, and a / or @ hidden under a combining mark refused too")
    func plainHost() {
        let byCharacters = { (host: String) in host.allSatisfy { !$0.isWhitespace && $0 != "/" && $0 != "@" } }
        // Every ASCII byte in a host: the same verdict as the Character check.
        for host in (0..<128).map({ "login\(Character(Unicode.Scalar(UInt8($0))))contoso.com" }) + ["login.contoso.com:8443", "[::1]:8443", "\r\n"] {
            #expect(NetworkPolicy.isPlainHost(host) == byCharacters(host), "\(Array(host.unicodeScalars))")
        }
        // Unicode white space refused; letters and combining marks on letters accepted.
        for host in ["a\u{00A0}b", "a\u{2028}b", "a\u{3000}b", "a\u{0085}b", " \u{0301}"] { #expect(!NetworkPolicy.isPlainHost(host), "\(host.unicodeScalars.map(\.value))") }
        for host in ["löwe.example", "x\u{0301}"] { #expect(NetworkPolicy.isPlainHost(host)) }
        // A / or @ followed by a combining mark is one Character that is neither, but the URL made of it has the / or @.
        #expect(byCharacters("evil/\u{0301}x") && byCharacters("evil@\u{0301}x"))
        #expect(!NetworkPolicy.isPlainHost("evil/\u{0301}x") && !NetworkPolicy.isPlainHost("evil@\u{0301}x"))
        #expect(!NetworkPolicy.isPlainHost("localhost:8443@evil.example") && !NetworkPolicy.isPlainHost("login.contoso.com\t"))
        #expect(NetworkPolicy.isPlainHost("login.contoso.com:443"))
    }

    @Test("a request carries the id it is given, and mints one only when given none")
    func requestID() {
        let given = APIRequest(method: "GET", path: "/v1.0/users", query: [], headers: [:], body: [], baseURL: "https://x", requestID: "r-1")
        #expect(given.requestID == "r-1")
        let minted = APIRequest(method: "GET", path: "/v1.0/users", query: [], headers: [:], body: [], baseURL: "https://x")
        #expect(Identifier.isGUID(minted.requestID))
    }

    /// Sends `parts` over one connection to 127.0.0.1:`port`, `pause` seconds apart, and reads the answer until the
    /// server closes the connection (each request says `Connection: close`) or 10 seconds pass. On a thread of its own:
    /// its calls block.
    static func exchange(port: Int, _ parts: [String], pause: Double) async -> String {
        await withCheckedContinuation { continuation in
            Thread {
                let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_port = in_port_t(UInt16(port).bigEndian)
                address.sin_addr.s_addr = inet_addr("127.0.0.1")
                _ = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
                var limit = timeval(tv_sec: 10, tv_usec: 0)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
                for (index, part) in parts.enumerated() {
                    if index > 0 { Thread.sleep(forTimeInterval: pause) }
                    let bytes = Array(part.utf8)
                    _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                }
                var received: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let count = recv(fd, &buffer, buffer.count, 0)
                    if count <= 0 { break }
                    received += buffer[0..<count]
                }
                close(fd)
                continuation.resume(returning: String(decoding: received, as: UTF8.self))
            }.start()
        }
    }

    @Test("a body that has not all arrived within the body time limit is answered 408 and the connection closed; one that arrives in parts within it is read")
    func bodyTimeLimit() async throws {
        try await Harness.run { h in
            let path = "/\(h.tenant.tenantId)/oauth2/v2.0/token"
            let head = "POST \(path) HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nConnection: close\r\nContent-Length: 40\r\n\r\n"
            let body = "grant_type=client_credentials&client_id="
            // The late body's rest comes two seconds after its deadline: refused whenever the sweeper gets to run (a full
            // test run on two cores once left it unscheduled past a 1.6 s margin, and the rest was read as a whole body).
            let limits = ServerLimits(bodyTimeout: .seconds(1))
            let application = Application(responder: TesseraResponder(app: h.app, scheme: "http", limits: limits))
            try await application.test(.live) { client in
                let port = try #require(client.port)
                let late = await Self.exchange(port: port, [head + body.prefix(10), String(body.dropFirst(10))], pause: 3)
                #expect(late.hasPrefix("HTTP/1.1 408"), "\(late.prefix(200))")
                #expect(late.lowercased().contains("connection: close"))
                #expect(late.contains("The request body did not arrive in time."))
            }
            // Bodies that arrive within their limit, in parts 50 ms apart, against a limit no scheduling delay of a loaded
            // two-core test run outlasts (with 1 s, a full run once answered the in-time body 408: the server's loop
            // reached its head more than a second after the connection was accepted).
            let roomy = Application(responder: TesseraResponder(app: h.app, scheme: "http", limits: ServerLimits(bodyTimeout: .seconds(30))))
            try await roomy.test(.live) { client in
                let port = try #require(client.port)
                let inTime = await Self.exchange(port: port, [head + body.prefix(10), String(body.dropFirst(10))], pause: 0.05)
                #expect(inTime.hasPrefix("HTTP/1.1 400"), "read whole, then refused by the token endpoint: \(inTime.prefix(200))")
                #expect(inTime.contains("invalid_client") || inTime.contains("invalid_request"), "\(inTime.prefix(400))")
                // Many bodies at once, each watched and each read.
                let answers = await withTaskGroup(of: String.self) { group in
                    for _ in 0..<8 { group.addTask { await Self.exchange(port: port, [head + body], pause: 0) } }
                    return await group.reduce(into: [String]()) { $0.append($1) }
                }
                #expect(answers.allSatisfy { $0.hasPrefix("HTTP/1.1 400") })
            }
        }
    }

    @Test("a body that stalls completely is answered 408 and the connection closed before the idle timeout closes it without an answer, even when its time limit is the idle timeout's")
    func stalledBodyAnswered() async throws {
        let limits = ServerLimits(idleTimeout: .seconds(6), bodyTimeout: .seconds(6))
        #expect(limits.bodyDeadline == .seconds(4))
        #expect(ServerLimits().bodyDeadline == .seconds(20), "30 s of idle time, 30 s for a body: 20 s in effect")
        #expect(ServerLimits(idleTimeout: .seconds(60), bodyTimeout: .seconds(30)).bodyDeadline == .seconds(30))
        try await Harness.run { h in
            let path = "/\(h.tenant.tenantId)/oauth2/v2.0/token"
            let head = "POST \(path) HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nConnection: close\r\nContent-Length: 40\r\n\r\n"
            // The connection's idle timer as `serve` sets it (Server.swift): what closed a stalled body without an answer.
            let application = Application(responder: TesseraResponder(app: h.app, scheme: "http", limits: limits),
                                          server: .http1(configuration: .init(idleTimeout: .seconds(6))))
            try await application.test(.live) { client in
                let port = try #require(client.port)
                // Ten of the forty bytes, then nothing: the read waits until the server answers or closes.
                let answer = await Self.exchange(port: port, [head + "grant_type"], pause: 0)
                #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer.prefix(200))")
                #expect(answer.lowercased().contains("connection: close"))
            }
        }
    }

    /// A body that sends its first part, then nothing, and ends (rather than throwing) when its reader is cancelled:
    /// how a late body can look to `collectBody`.
    struct EndsWhenCancelled: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        struct AsyncIterator: AsyncIteratorProtocol {
            var sent = false
            mutating func next() async throws -> ByteBuffer? {
                if !sent {
                    sent = true
                    return ByteBuffer(string: "grant_type")
                }
                try? await Task.sleep(for: .seconds(30))
                return nil
            }
        }
        func makeAsyncIterator() -> AsyncIterator { AsyncIterator() }
    }

    /// A body of one part that notes which task read it.
    struct NotesItsReader: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        let readers: Readers
        final class Readers: Sendable {
            let tasks = Mutex<[Int]>([])
        }
        struct AsyncIterator: AsyncIteratorProtocol {
            let readers: Readers
            var sent = false
            mutating func next() async throws -> ByteBuffer? {
                let reader = withUnsafeCurrentTask { $0?.hashValue } ?? 0
                readers.tasks.withLock { $0.append(reader) }
                if sent { return nil }
                sent = true
                return ByteBuffer(string: "grant_type=client_credentials")
            }
        }
        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(readers: readers) }
    }

    @Test("a body that can be ended from outside is read by the request's own task, not by one started for it, and the way to end it is left unused when it comes in time")
    func bodyReadByTheRequestsTask() async throws {
        let readers = NotesItsReader.Readers()
        let stopped = NotesItsReader.Readers()
        let request = Request(head: HTTPRequest(method: .post, scheme: "http", authority: "localhost", path: "/token"),
                              body: RequestBody(asyncSequence: NotesItsReader(readers: readers)))
        let caller = try #require(withUnsafeCurrentTask { $0?.hashValue })
        let body = try await BodyDeadlines(timeout: .seconds(30)).collect(request, upTo: 1 << 16, stop: { stopped.tasks.withLock { $0.append(1) } })
        #expect(String(buffer: body) == "grant_type=client_credentials")
        let tasks = readers.tasks.withLock { $0 }
        #expect(!tasks.isEmpty && tasks.allSatisfy { $0 == caller }, "\(tasks) read by the caller \(caller)")
        #expect(stopped.tasks.withLock { $0 }.isEmpty)
    }

    @Test("a late body read by the request's own task is ended from outside and is a timeout, whether its read then throws or ends quietly with the part that arrived")
    func lateBodyEndedFromOutside() async throws {
        struct Failed: Error {}
        for quietly in [false, true] {
            let (parts, source) = AsyncThrowingStream<ByteBuffer, any Error>.makeStream()
            source.yield(ByteBuffer(string: "grant_type"))
            let request = Request(head: HTTPRequest(method: .post, scheme: "http", authority: "localhost", path: "/token"),
                                  body: RequestBody(asyncSequence: parts))
            let deadlines = BodyDeadlines(timeout: .milliseconds(50))
            await #expect(throws: TesseraResponder.BodyTimeout.self) {
                _ = try await deadlines.collect(request, upTo: 1 << 16, stop: { quietly ? source.finish() : source.finish(throwing: Failed()) })
            }
        }
    }

    @Test("a late body whose read ends quietly when cancelled is still a timeout: the part that arrived is never handed on as the body")
    func lateBodyNeverPartial() async throws {
        let deadlines = BodyDeadlines(timeout: .milliseconds(50))
        let request = Request(head: HTTPRequest(method: .post, scheme: "http", authority: "localhost", path: "/token"),
                              body: RequestBody(asyncSequence: EndsWhenCancelled()))
        await #expect(throws: TesseraResponder.BodyTimeout.self) { _ = try await deadlines.collect(request, upTo: 1 << 16) }
    }
}
