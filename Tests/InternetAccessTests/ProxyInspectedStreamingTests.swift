import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization
import Testing
import TesseraCore
@testable import InternetAccess

/// What the keep-alive origin saw and what a test lets it do.
final class StreamingOriginLog: Sendable {
    /// Connections accepted.
    let connections = Atomic<Int>(0)
    /// Each request as `METHOD uri body`, in order.
    let requests = Mutex<[String]>([])
    /// Bytes of `/big` the origin's TLS has taken so far.
    let bigWritten = Atomic<Int>(0)
    /// Opens when the test lets a streamed answer end.
    let release = Mutex<(open: Bool, waiting: [EventLoopPromise<Void>])>((false, []))

    func open() {
        let waiting = release.withLock { state in
            state.open = true
            defer { state.waiting = [] }
            return state.waiting
        }
        for promise in waiting { promise.succeed() }
    }

    func released(on loop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = loop.makePromise(of: Void.self)
        let open = release.withLock { state in
            if !state.open { state.waiting.append(promise) }
            return state.open
        }
        if open { promise.succeed() }
        return promise.futureResult
    }

    static let bigSize = 48 << 20
}

/// An AI app's stand-in that keeps connections open (NIO's HTTP/1.1 server): a request is echoed (with any tenant
/// restrictions header it carried);
/// with `"stream":true` it answers server-sent events, the first at once and the last only once the test releases it;
/// `GET /big` sends ``StreamingOriginLog/bigSize`` bytes, writing only while its connection takes more.
final class StreamingOrigin: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let log: StreamingOriginLog
    private var head: HTTPRequestHead?
    private var body = ""
    private var bigLeft = 0

    init(log: StreamingOriginLog) { self.log = log }

    func channelActive(context: ChannelHandlerContext) {
        log.connections.add(1, ordering: .relaxed)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h; body = ""
        case .body(let buffer): body += String(buffer: buffer)
        case .end:
            guard let head else { return }
            log.requests.withLock { $0.append("\(head.method.rawValue) \(head.uri) \(body)") }
            answer(context, head)
        }
    }

    private func answer(_ context: ChannelHandlerContext, _ head: HTTPRequestHead) {
        if head.uri == "/big" {
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok,
                                                                 headers: ["Content-Length": String(StreamingOriginLog.bigSize)]))), promise: nil)
            bigLeft = StreamingOriginLog.bigSize
            writeBig(context)
        } else if body.contains(#""stream":true"#) {
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Type": "text/event-stream"]))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "data: {\"delta\":\"first\"}\n\n")))), promise: nil)
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            log.released(on: context.eventLoop).whenSuccess {
                let (handler, context) = loopBound.value
                context.write(handler.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "data: {\"delta\":\"last\"}\n\ndata: [DONE]\n\n")))), promise: nil)
                context.writeAndFlush(handler.wrapOutboundOut(.end(nil)), promise: nil)
            }
        } else {
            var text = "origin saw: \(head.method.rawValue) \(head.uri) \(body)"
            let restriction = head.headers[TenantRestrictionHeader.name]
            if !restriction.isEmpty { text += "\n\(TenantRestrictionHeader.name): " + restriction.joined(separator: " | ") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok,
                                                                 headers: ["Content-Type": "text/plain", "Content-Length": String(text.utf8.count)]))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
            let ended = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            if !head.isKeepAlive {
                let channel = context.channel
                ended.whenComplete { _ in channel.close(promise: nil) }
            }
        }
    }

    private func writeBig(_ context: ChannelHandlerContext) {
        let chunk = 16 * 1024
        while bigLeft > 0, context.channel.isWritable {
            let size = min(chunk, bigLeft)
            bigLeft -= size
            let log = self.log
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(repeating: UInt8(ascii: "x"), count: size))))).whenSuccess {
                log.bigWritten.add(size, ordering: .relaxed)
            }
            if bigLeft == 0 { context.write(wrapOutboundOut(.end(nil)), promise: nil) }
        }
        context.flush()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, bigLeft > 0 { writeBig(context) }
        context.fireChannelWritabilityChanged()
    }
}

/// Hands each part of the proxy's answers to the test as it arrives.
final class ResponsePartCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    private let parts: AsyncStream<HTTPClientResponsePart>.Continuation
    init(_ parts: AsyncStream<HTTPClientResponsePart>.Continuation) { self.parts = parts }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { parts.yield(unwrapInboundIn(data)) }
    func channelInactive(context: ChannelHandlerContext) {
        parts.finish()
        context.fireChannelInactive()
    }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

/// Reads the proxy's answer to CONNECT.
final class ConnectAnswerReader: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    private var bytes = ""
    private let answer: EventLoopPromise<String>
    init(_ answer: EventLoopPromise<String>) { self.answer = answer }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        bytes += String(buffer: unwrapInboundIn(data))
        if bytes.contains("\r\n\r\n") { answer.succeed(bytes) }
    }
    func channelInactive(context: ChannelHandlerContext) { answer.fail(ChannelError.eof) }
}

/// A client of an inspected tunnel speaking HTTP/1.1 with NIO's client codec over TLS that trusts the tenant's
/// inspection CA: several requests on one connection, answers read part by part.
final class InspectedClient {
    let channel: any Channel
    let host: String
    private var parts: AsyncStream<HTTPClientResponsePart>.AsyncIterator

    init(proxy: ProxyInspectionTests.Proxy, host: String = "api.openai.com", token: String = "good") async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let answer = loop.makePromise(of: String.self)
        let channel = try await ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(ConnectAnswerReader(answer)) }
            }
            .connect(host: "127.0.0.1", port: proxy.port).get()
        try await channel.writeAndFlush(ByteBuffer(string: "CONNECT \(host):\(proxy.goodOrigin) HTTP/1.1\r\nHost: \(host):\(proxy.goodOrigin)\r\nProxy-Authorization: Bearer \(token)\r\n\r\n"))
        #expect(try await answer.futureResult.get() == "HTTP/1.1 200 Connection established\r\n\r\n")
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates([try await ProxyPromptPolicyTests.trust(proxy)])
        let context = try NIOSSLContext(configuration: tls)
        let (stream, continuation) = AsyncStream.makeStream(of: HTTPClientResponsePart.self)
        try await loop.submit {
            let operations = channel.pipeline.syncOperations
            // Removed at once (its default removal), before TLS starts.
            _ = operations.removeHandler(try operations.handler(type: ConnectAnswerReader.self))
            try operations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: host))
            try operations.addHTTPClientHandlers()
            try operations.addHandler(ResponsePartCollector(continuation))
        }.get()
        self.channel = channel
        self.host = host
        self.parts = stream.makeAsyncIterator()
    }

    /// Writes a request without flushing (`send` flushes): two writes then a flush pipeline them.
    func write(_ method: HTTPMethod = .POST, _ uri: String = "/v1/chat/completions", body: String? = nil, headers: HTTPHeaders = [:]) {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: headers)
        head.headers.add(name: "Host", value: host)
        if let body { head.headers.add(name: "Content-Length", value: String(body.utf8.count)) }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: body))), promise: nil) }
        channel.write(HTTPClientRequestPart.end(nil), promise: nil)
    }

    func send(_ method: HTTPMethod = .POST, _ uri: String = "/v1/chat/completions", body: String? = nil, headers: HTTPHeaders = [:]) {
        write(method, uri, body: body, headers: headers)
        channel.flush()
    }

    /// The next part of an answer (nil once the connection has closed).
    func next() async -> HTTPClientResponsePart? { await parts.next() }

    /// The next whole answer.
    func response() async throws -> (head: HTTPResponseHead, body: String) {
        guard case .head(let head) = await next() else { throw ChannelError.eof }
        var body = ""
        while let part = await next() {
            switch part {
            case .body(let buffer): body += String(buffer: buffer)
            case .end: return (head, body)
            case .head: throw ChannelError.inappropriateOperationForState
            }
        }
        throw ChannelError.eof
    }

    func close() async { try? await channel.close() }
}

@Suite("The inspected path: keep-alive, streamed answers, bounded bodies")
struct ProxyInspectedStreamingTests {
    static func run(log: StreamingOriginLog = StreamingOriginLog(), adjust: (inout TLSInspectionConfiguration) -> Void = { _ in },
                    _ body: (ProxyInspectionTests.Proxy, StreamingOriginLog) async throws -> Void) async throws {
        try await ProxyInspectionTests.run(origin: { channel in
            try channel.pipeline.syncOperations.configureHTTPServerPipeline()
            try channel.pipeline.syncOperations.addHandler(StreamingOrigin(log: log))
        }, adjust: adjust) { proxy in try await body(proxy, log) }
    }

    static func chat(_ prompt: String, stream: Bool = false) -> String {
        #"{"model":"gpt-4o-mini","stream":\#(stream),"messages":[{"role":"user","content":"\#(prompt)"}]}"#
    }

    @Test("several requests on one inspected connection: each inspected and recorded, the origin connection reused")
    func keepAlive() async throws {
        try await Self.run { proxy, log in
            let client = try await InspectedClient(proxy: proxy)
            client.send(body: Self.chat("What is the capital of France?"))
            let first = try await client.response()
            #expect(first.head.status == .ok && first.body.contains("What is the capital of France?"))
            #expect(!first.head.headers.contains(name: "connection"))
            client.send(body: Self.chat(ProxyPromptPolicyTests.injection))
            let blocked = try await client.response()
            #expect(blocked.head.status == .forbidden && blocked.body.contains("PromptInjectionBlocked"))
            client.send(.GET, "/v1/models")
            let third = try await client.response()
            #expect(third.head.status == .ok && third.body == "origin saw: GET /v1/models ")
            #expect(client.channel.isActive)
            await client.close()
            #expect(log.connections.load(ordering: .relaxed) == 1)
            #expect(log.requests.withLock { $0.count } == 2)  // the injection never reached it
            let records = try await ProxyInspectionTests.records(proxy, count: 3)
            #expect(records.count == 3)
            #expect(records.compactMap { $0["action"]?.stringValue }.sorted() == ["allow", "allow", "block"])
            #expect(Set(records.compactMap { $0["transactionId"]?.stringValue }).count == 3)
            #expect(Set(records.compactMap { $0["destinationUrl"]?.stringValue }) == [
                "https://api.openai.com:\(proxy.goodOrigin)/v1/chat/completions", "https://api.openai.com:\(proxy.goodOrigin)/v1/models"])
        }
    }

    @Test("an origin that closes after each answer is connected to again for the next request on the same client connection")
    func originReopened() async throws {
        try await ProxyInspectionTests.run { proxy in
            let client = try await InspectedClient(proxy: proxy)
            for question in ["What is 2 + 2?", "What is the capital of Peru?"] {
                client.send(body: Self.chat(question))
                let answer = try await client.response()
                #expect(answer.head.status == .ok && answer.body.contains(question))
            }
            #expect(client.channel.isActive)
            await client.close()
            #expect(try await ProxyInspectionTests.records(proxy, count: 2).count == 2)
        }
    }

    @Test("pipelined requests are answered in order, each inspected before it is sent: an injection behind a benign prompt is still blocked")
    func pipelined() async throws {
        try await Self.run { proxy, log in
            let client = try await InspectedClient(proxy: proxy)
            client.write(body: Self.chat("What is the capital of France?"))
            client.write(body: Self.chat(ProxyPromptPolicyTests.injection))
            client.send(.GET, "/v1/models")
            #expect(try await client.response().head.status == .ok)
            #expect(try await client.response().head.status == .forbidden)
            #expect(try await client.response().body == "origin saw: GET /v1/models ")
            await client.close()
            #expect(log.requests.withLock { $0.map { $0.split(separator: " ")[1] } } == ["/v1/chat/completions", "/v1/models"])
        }
    }

    @Test("a streamed answer (server-sent events, chunked) reaches the client before the origin has sent its end")
    func streamedAnswer() async throws {
        try await Self.run { proxy, log in
            let client = try await InspectedClient(proxy: proxy)
            client.send(body: Self.chat("Tell me a story", stream: true))
            guard case .head(let head) = await client.next() else { Issue.record("no head"); return }
            #expect(head.status == .ok && head.headers["content-type"] == ["text/event-stream"])
            #expect(head.headers["transfer-encoding"] == ["chunked"])
            guard case .body(let first) = await client.next() else { Issue.record("no first event"); return }
            #expect(String(buffer: first).contains("first"))
            // The origin has not sent the rest: the first event came through on its own.
            log.open()
            var rest = ""
            while let part = await client.next() {
                if case .body(let buffer) = part { rest += String(buffer: buffer) }
                if case .end = part { break }
            }
            #expect(rest.hasSuffix("data: [DONE]\n\n"))
            #expect(client.channel.isActive)
            await client.close()
        }
    }

    @Test("a client that does not read holds the origin back: the proxy does not buffer the answer, and the client gets all of it later")
    func slowClient() async throws {
        try await Self.run { proxy, log in
            let client = try await InspectedClient(proxy: proxy)
            client.send(.GET, "/v1/models")
            _ = try await client.response()
            try await client.channel.setOption(ChannelOptions.autoRead, value: false).get()
            client.send(.GET, "/big")
            // Wait until the origin stops getting further: it can write only what the sockets and the proxy's
            // bounded buffers take.
            var last = -1, steady = 0
            for _ in 0..<300 where steady < 10 {
                try await Task.sleep(for: .milliseconds(100))
                let now = log.bigWritten.load(ordering: .relaxed)
                steady = now == last ? steady + 1 : 0
                last = now
            }
            #expect(steady >= 10)
            #expect(last < StreamingOriginLog.bigSize / 2, "the origin wrote \(last) bytes to a client that read none")
            try await client.channel.setOption(ChannelOptions.autoRead, value: true).get()
            client.channel.read()
            guard case .head(let head) = await client.next() else { Issue.record("no head"); return }
            #expect(head.status == .ok)
            var received = 0
            while let part = await client.next() {
                if case .body(let buffer) = part { received += buffer.readableBytes }
                if case .end = part { break }
            }
            #expect(received == StreamingOriginLog.bigSize)
            await client.close()
        }
    }

    @Test("a body larger than the proxy inspects: refused with 413 under a policy that blocks unreadable bodies, streamed on uninspected under one that allows them")
    func bodyPastTheLimit() async throws {
        let large = Self.chat(String(repeating: "a", count: 3000))
        try await Self.run(adjust: { $0.maximumBodyBytes = 1024 }) { proxy, log in
            // Bearer good: a policy that allows what it cannot read (Entra passes it), so the body goes on whole.
            let client = try await InspectedClient(proxy: proxy)
            client.send(body: large)
            let passed = try await client.response()
            #expect(passed.head.status == .ok && passed.body.hasSuffix(large))
            await client.close()
            #expect(log.requests.withLock { $0.last } == "POST /v1/chat/completions \(large)")
            // Bearer strict: a policy that blocks what it cannot read. The rest of the body is not read: the connection ends.
            let strict = try await InspectedClient(proxy: proxy, token: "strict")
            strict.send(body: large)
            let refused = try await strict.response()
            #expect(refused.head.status == .payloadTooLarge && refused.head.headers["connection"] == ["close"])
            #expect(refused.body.contains(#""code":"RequestEntityTooLarge""#))
            #expect(await strict.next() == nil)
            #expect(log.requests.withLock { $0.count } == 1)
            let records = try await ProxyInspectionTests.records(proxy, count: 2)
            #expect(records.compactMap { $0["action"]?.stringValue }.sorted() == ["allow", "block"])
        }
    }

    @Test("Expect: 100-continue is answered by the proxy, which then reads the body it inspects")
    func expectContinue() async throws {
        try await Self.run { proxy, log in
            let body = Self.chat("What is 2 + 2?")
            let (_, text) = try await ProxyInspectionTests.request(
                proxy.port, host: "api.openai.com", port: proxy.goodOrigin, trust: try await ProxyPromptPolicyTests.trust(proxy),
                "POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\nExpect: 100-continue\r\nConnection: close\r\n"
                    + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
            #expect(text.hasPrefix("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"))
            #expect(text.hasSuffix("origin saw: POST /v1/chat/completions \(body)"))
            #expect(log.requests.withLock { $0 } == ["POST /v1/chat/completions \(body)"])
        }
    }

    @Test("bytes inside the tunnel that are not an HTTP/1.1 request get 400 in Graph's shape, and the connection ends")
    func malformedInside() async throws {
        try await Self.run { proxy, log in
            let (_, text) = try await ProxyInspectionTests.request(proxy.port, host: "api.openai.com", port: proxy.goodOrigin,
                                                                   trust: try await ProxyPromptPolicyTests.trust(proxy), "G\u{01}T / HTTP/1.1\r\n\r\n")
            #expect(text.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
            #expect(text.contains(#""code":"BadRequest""#) && text.lowercased().contains("\r\nconnection: close\r\n"))
            #expect(log.requests.withLock { $0.isEmpty })
        }
    }

    @Test("an identity platform host named for tenant restrictions gets the user's tenant's header on every request, in place of the client's")
    func tenantRestrictionsHeader() async throws {
        try await Self.run(adjust: { $0.addTenantRestrictionHost("login.microsoftonline.com") }) { proxy, _ in
            let expected = TenantRestrictionHeader(restrictingTenantID: proxy.tenant)
            // A user without a prompt policy: the identity host is opened all the same (its prompts are not read).
            let client = try await InspectedClient(proxy: proxy, host: "login.microsoftonline.com", token: "no-prompt-policy")
            let forged = "\(UUID().uuidString.lowercased()):\(UUID().uuidString.lowercased())"
            client.send(.GET, "/organizations/oauth2/v2.0/authorize?client_id=app", headers: [TenantRestrictionHeader.name: forged])
            let first = try await client.response()
            #expect(first.body == "origin saw: GET /organizations/oauth2/v2.0/authorize?client_id=app \n\(expected)")
            client.send(.POST, "/organizations/oauth2/v2.0/token", body: "grant_type=refresh_token",
                        headers: ["sec-restrict-tenant-access-policy": forged])
            let second = try await client.response()
            #expect(second.body.hasSuffix("\n\(expected)") && !second.body.contains(forged))
            await client.close()
            #expect(expected.value == "\(proxy.tenant.lowercased()):\(TenantRestrictionHeader.policyID(tenant: proxy.tenant))")
            // Hosts not named for it are left alone: an AI app the user's policy does not inspect is tunnelled untouched.
            let (answer, text) = try await ProxyInspectionTests.request(proxy.port, host: "api.openai.com", port: proxy.goodOrigin,
                                                                        trust: try ProxyInspectionTests.originCA.get().nioCertificate,
                                                                        token: "no-prompt-policy", ProxyInspectionTests.chat("Hello"))
            #expect(answer == "HTTP/1.1 200 Connection established\r\n\r\n" && text.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(!text.lowercased().contains("sec-restrict-tenant-access-policy"))
        }
    }
}
