import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Store
import Synchronization
import Testing
import TesseraCore
@testable import InternetAccess

/// An HTTP/1.1 origin that keeps its connections: answers each request with `c<connection> r<request> <method> <uri>
/// <body bytes>`, numbering its connections, and closes after the answer when the request says `X-Close: 1`. A request
/// saying `X-Drop: kept` is met by closing the connection without an answer when the connection served a request before
/// (an origin closing a kept connection as the request arrives); `X-Drop: always` on any connection.
final class NumberingOrigin: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    private let connection: Int
    private var requests = 0
    private var head: HTTPRequestHead?
    private var bytes = 0

    init(connection: Int) { self.connection = connection }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            bytes = 0
        case .body(let buffer):
            bytes += buffer.readableBytes
        case .end:
            guard let head else { return }
            let drop = head.headers.first(name: "x-drop")
            if drop == "always" || (drop == "kept" && requests > 0) {
                context.close(promise: nil)
                return
            }
            requests += 1
            let text = "c\(connection) r\(requests) \(head.method.rawValue) \(head.uri) \(bytes)"
            let close = head.headers.first(name: "x-close") == "1"
            var headers: HTTPHeaders = ["Content-Length": String(text.utf8.count), "Content-Type": "text/plain"]
            if close { headers.add(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: text)))), promise: nil)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in if close { channel.close(promise: nil) } }
        }
    }
}

@Suite("Forward proxy: keep-alive on plain HTTP")
struct ProxyKeepAliveTests {
    /// Runs a proxy in front of a ``NumberingOrigin`` reachable as example.test and other.test.
    static func run(_ body: (_ proxyPort: Int, _ originPort: Int, _ store: SQLDirectoryStore, _ tenant: String, _ recorder: TrafficRecorder)
        async throws -> Void) async throws {
        let store = try await SQLDirectoryStore.open(":memory:")
        try await store.migrate()
        let tenant = try await TenantProvisioner(directory: DirectoryService(store: store, clock: SystemTimeSource()))
            .create(name: "Contoso", domain: "contoso.test").tenantId
        let connections = Atomic<Int>(0)
        let origin = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(NumberingOrigin(connection: connections.wrappingAdd(1, ordering: .relaxed).newValue))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let originPort = try #require(origin.localAddress?.port)
        var configuration = ProxyConfiguration(host: "127.0.0.1", port: 0)
        configuration.httpPorts.insert(originPort)
        try configuration.addResolve("example.test:\(originPort):127.0.0.1")
        try configuration.addResolve("other.test:\(originPort):127.0.0.1")
        let recorder = TrafficRecorder(store: store)
        let proxy = ForwardProxy(configuration: configuration, gatekeeper: StubGatekeeper(tenant: tenant), recorder: recorder)
        let bound = Mutex<Int?>(nil)
        let task = Task { try await proxy.run(onBound: { address in bound.withLock { $0 = address.port } }) }
        var port: Int?
        for _ in 0..<200 where port == nil {
            try await Task.sleep(for: .milliseconds(10))
            port = bound.withLock { $0 }
        }
        do {
            try await body(try #require(port), originPort, store, tenant, recorder)
        } catch {
            task.cancel()
            _ = await task.result
            try? await origin.close()
            throw error
        }
        task.cancel()
        _ = await task.result
        try await origin.close()
        try await store.shutdown()
    }

    static func request(_ method: String, _ host: String, _ port: Int, _ path: String, token: String = "good", body: String = "",
                        extra: String = "") -> String {
        "\(method) http://\(host):\(port)\(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nProxy-Authorization: Bearer \(token)\r\n"
            + (body.isEmpty ? "" : "Content-Length: \(body.utf8.count)\r\n") + extra + "\r\n" + body
    }

    /// The status codes of the answers in `text`, in order.
    static func statuses(_ text: String) -> [Int] {
        text.components(separatedBy: "HTTP/1.1 ").dropFirst().compactMap { Int($0.prefix(3)) }
    }

    @Test("many requests on one connection: each admitted, answered in order and recorded; origin connections kept per host:port and opened again when the origin closes; Connection: close ends it")
    func manyRequestsOnOneConnection() async throws {
        try await Self.run { port, originPort, store, tenant, recorder in
            // Sent all at once (pipelined): the proxy still takes them one after another.
            let requests = [
                Self.request("GET", "example.test", originPort, "/a"),
                Self.request("POST", "example.test", originPort, "/b", body: "hello", extra: "X-Close: 1\r\n"),
                Self.request("GET", "example.test", originPort, "/c", token: "blocked"),
                Self.request("GET", "other.test", originPort, "/d"),
                Self.request("GET", "example.test", originPort, "/e"),
                Self.request("GET", "other.test", originPort, "/f", extra: "Connection: close\r\n"),
            ]
            let answer = try await ProxyServerTests.exchange(port, requests.joined())
            #expect(Self.statuses(answer) == [200, 200, 403, 200, 200, 200], "\(answer)")
            // The first origin connection served /a and /b (then closed, as /b asked); /d opened one for other.test, /e a
            // new one for example.test, and /f found other.test's kept.
            let bodies = ["c1 r1 GET /a 0", "c1 r2 POST /b 5", "AccessBlockedByPolicy", "c2 r1 GET /d 0", "c3 r1 GET /e 0", "c2 r2 GET /f 0"]
            let positions = bodies.map { answer.range(of: $0)?.lowerBound }
            #expect(positions.allSatisfy { $0 != nil }, "\(answer)")
            #expect(positions.compactMap { $0 } == positions.compactMap { $0 }.sorted())
            #expect(!answer.contains("Bearer"))
            #expect(answer.hasSuffix("c2 r2 GET /f 0"))
            try await recorder.flush()
            let records = try await TrafficLog.list(tenant: tenant, store: store, filter: nil, limit: 10)
            let byURL = Dictionary(records.map { ($0.body["destinationUrl"]?.stringValue ?? "", $0.body) }, uniquingKeysWith: { first, _ in first })
            #expect(records.count == 6)
            for (host, path) in [("example.test", "/a"), ("example.test", "/b"), ("other.test", "/d"), ("example.test", "/e"), ("other.test", "/f")] {
                #expect(byURL["http://\(host):\(originPort)\(path)"]?["action"] == "allow", "\(path)")
            }
            let blocked = try #require(byURL["http://example.test:\(originPort)/c"])
            #expect(blocked["action"] == "block" && blocked["policyRuleId"] == "rule-1")
            #expect(byURL["http://example.test:\(originPort)/b"]?["sentBytes"] == 5)
            #expect(byURL["http://example.test:\(originPort)/b"]?["httpMethod"] == "post")
        }
    }

    @Test("a request the origin drops on a kept connection is sent once more on a new one; dropped there too, it gets 502 and the client's connection goes on")
    func droppedOnAKeptConnection() async throws {
        try await Self.run { port, originPort, _, _, recorder in
            let requests = [
                Self.request("GET", "example.test", originPort, "/a"),
                Self.request("POST", "example.test", originPort, "/b", body: "hello", extra: "X-Drop: kept\r\n"),
                Self.request("GET", "example.test", originPort, "/c", extra: "X-Drop: always\r\n"),
                Self.request("GET", "example.test", originPort, "/d", extra: "Connection: close\r\n"),
            ]
            let answer = try await ProxyServerTests.exchange(port, requests.joined())
            #expect(Self.statuses(answer) == [200, 200, 502, 200], "\(answer)")
            // /b went again, whole, on a second connection; /c was dropped on it and on a third; /d opened a fourth.
            #expect(answer.contains("c1 r1 GET /a 0") && answer.contains("c2 r1 POST /b 5") && answer.contains("c4 r1 GET /d 0"), "\(answer)")
            #expect(answer.contains("closed the connection without answering"))
            try await recorder.flush()
        }
    }

    @Test("an HTTP/1.0 client without keep-alive gets one answer and the connection closes; a request with a bad token is refused and the connection goes on")
    func closesAndRefusals() async throws {
        try await Self.run { port, originPort, _, _, _ in
            let old = try await ProxyServerTests.exchange(port, "GET http://example.test:\(originPort)/old HTTP/1.0\r\nProxy-Authorization: Bearer good\r\n\r\n")
            #expect(old.hasPrefix("HTTP/1.0 200 OK\r\n") && old.hasSuffix("GET /old 0"), "\(old)")
            let refusedFirst = try await ProxyServerTests.exchange(port, Self.request("GET", "example.test", originPort, "/x", token: "nope")
                + Self.request("GET", "example.test", originPort, "/y", extra: "Connection: close\r\n"))
            #expect(Self.statuses(refusedFirst) == [407, 200], "\(refusedFirst)")
            #expect(refusedFirst.contains("Proxy-Authenticate: Bearer") && refusedFirst.hasSuffix("GET /y 0"))
        }
    }
}
