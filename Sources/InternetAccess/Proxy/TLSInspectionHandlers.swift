import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization
import TesseraCore

/// One inspected request inside a client's terminated TLS: reads the HTTP/1.1 request (body bounded), asks the prompt
/// policy, and either answers 403 `PromptInjectionBlocked` or re-originates TLS to the real host (verified fully) and
/// relays its answer. One request per connection: the origin is asked to close after answering, and whatever the client
/// sends after the first request is dropped, so nothing reaches the origin uninspected. The traffic record (with the
/// prompt verdict as its action) is written when the client's connection closes.
final class InspectedRequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = ByteBuffer

    private enum State { case head, body, decided }
    private var state = State.head
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var record: TrafficRecord
    private var origin: (any Channel)?
    private let host: String
    private let port: Int
    private let inspector: TLSInspector
    private let configuration: ProxyConfiguration
    private let counter = TrafficCounter()
    private let recorder: TrafficRecorder?
    /// The prompt policy on this user's traffic.
    private let prompt: PromptPolicy.InScope
    private let shared: ProxyShared

    init(host: String, port: Int, record: TrafficRecord, inspector: TLSInspector, configuration: ProxyConfiguration, recorder: TrafficRecorder?,
         prompt: PromptPolicy.InScope, shared: ProxyShared) {
        self.host = host; self.port = port; self.record = record; self.inspector = inspector
        self.configuration = configuration; self.recorder = recorder; self.prompt = prompt; self.shared = shared
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let counter = self.counter, recorder = self.recorder
        context.channel.closeFuture.assumeIsolated().whenComplete { [self] _ in
            origin?.close(promise: nil)
            var record = self.record
            record.sentBytes = counter.up.load(ordering: .relaxed)
            record.receivedBytes = counter.down.load(ordering: .relaxed)
            recorder?.submit(record)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (state, unwrapInboundIn(data)) {
        case (.head, .head(let h)):
            head = h
            state = .body
        case (.body, .body(var buffer)):
            guard body.count + buffer.readableBytes <= inspector.configuration.maximumBodyBytes else {
                answer(context, ProxyError(.bodyTooLarge, "The request body is larger than the proxy inspects (\(inspector.configuration.maximumBodyBytes) bytes)."))
                return
            }
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case (.body, .end):
            state = .decided
            decide(context)
        case (.decided, _):
            break  // after the one request: dropped
        default:
            answer(context, ProxyError(.malformed, "The request inside the tunnel is not HTTP/1.1."))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if state != .decided, error is HTTPParserError {
            answer(context, ProxyError(.malformed, "The request inside the tunnel is not HTTP/1.1."))
            return
        }
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func decide(_ context: ChannelHandlerContext) {
        guard let head else { return }
        let uri = head.uri.hasPrefix("/") ? head.uri : "/"
        record.httpMethod = head.method.rawValue
        record.destinationUrl = "https://\(host)\(port == 443 ? "" : ":\(port)")\(uri)"
        counter.up.add(Int64(body.count), ordering: .relaxed)
        if let (inspection, verdict) = inspector.configuration.prompts.inspect(host: host, path: uri, body: body, policy: prompt) {
            record.application?.activity = .prompt
            record.promptPolicyId = prompt.policy.id
            recordInsight(inspection, verdict: verdict)
            switch verdict {
            case .block:
                record.action = .block
                answer(context, ProxyError(.promptBlocked, "This prompt was blocked by your organization's prompt injection protection."))
                return
            case .alert: record.action = .alert
            case .allow: break
            }
        }
        forward(context, head: head, uri: uri)
    }

    /// Queues the `generativeAIInsight` of a request that carried a prompt.
    private func recordInsight(_ inspection: PromptInspector.Inspection, verdict: PromptDetector.Verdict) {
        guard case .prompt(let text) = inspection.extraction, let assessment = inspection.assessment, let url = record.destinationUrl else { return }
        let now = shared.now()
        var insight = GenerativeAIInsight(transactionId: record.transactionId, eventId: shared.nextID(at: now), createdDateTime: now,
                                          tenantId: record.tenantId, userPrincipalName: record.userPrincipalName, destinationUrl: url,
                                          prompt: text, scheme: inspection.scheme, assessment: assessment, action: verdict)
        insight.policyId = prompt.policy.id
        recorder?.submit(insight)
    }

    /// The request as the origin gets it: hop-by-hop fields dropped, the body's length stated, one request.
    private func originRequest(_ head: HTTPRequestHead, uri: String) -> [UInt8] {
        // The body goes whole, so `Expect: 100-continue` has nothing to wait for.
        var dropped = ProxyConnectionHandler.hopByHop.union(["content-length", "transfer-encoding", "expect"])
        for value in head.headers["connection"] {
            for name in value.split(separator: ",") { dropped.insert(name.trimmingCharacters(in: .whitespaces).lowercased()) }
        }
        var text = "\(head.method.rawValue) \(uri) HTTP/1.1\r\n"
        if head.headers["host"].isEmpty { text += "Host: \(host)\(port == 443 ? "" : ":\(port)")\r\n" }
        for (name, value) in head.headers where !dropped.contains(name.lowercased()) { text += "\(name): \(value)\r\n" }
        if !body.isEmpty || head.method == .POST || head.method == .PUT || head.method == .PATCH { text += "Content-Length: \(body.count)\r\n" }
        text += "Connection: close\r\n\r\n"
        return Array(text.utf8) + body
    }

    private func forward(_ context: ChannelHandlerContext, head: HTTPRequestHead, uri: String) {
        let request = originRequest(head, uri: uri)
        body = []
        let client = context.channel, counter = self.counter, host = self.host, inspector = self.inspector
        let bootstrap = ClientBootstrap(group: context.eventLoop)
            .connectTimeout(.seconds(configuration.connectTimeout))
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let tls = try NIOSSLClientHandler(context: inspector.originContext, serverHostname: host)
                    try channel.pipeline.syncOperations.addHandler(tls)
                    try channel.pipeline.syncOperations.addHandler(OriginRelay(client: client, request: request, counter: counter, host: host))
                }
            }
        let connecting: EventLoopFuture<any Channel>
        if let address = configuration.resolve["\(host):\(port)"] {
            do {
                connecting = bootstrap.connect(to: try SocketAddress(ipAddress: address, port: port))
            } catch {
                connecting = context.eventLoop.makeFailedFuture(error)
            }
        } else {
            connecting = bootstrap.connect(host: host, port: port)
        }
        connecting.assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let channel):
                if client.isActive { origin = channel } else { channel.close(promise: nil) }
            case .failure:
                guard client.isActive else { return }
                answer(context, ProxyError(.upstreamFailed, "Could not connect to \(host):\(port)."))
            }
        }
    }

    /// Writes the proxy's own answer inside the TLS and closes.
    private func answer(_ context: ChannelHandlerContext, _ error: ProxyError) {
        state = .decided
        let bytes = ProxyResponse.error(error, accept: head?.headers.first(name: "accept"))
        counter.down.add(Int64(bytes.count), ordering: .relaxed)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(bytes: bytes))).whenComplete { _ in channel.close(promise: nil) }
    }
}

/// The origin's side of an inspected request: sends the request once TLS to the real host is up (its certificate
/// verified), relays the answer to the client with `Connection: close` in its head (the connection carries one
/// inspected request, so the client must not send another on it), and answers 502 itself if the origin fails before
/// answering (a certificate that does not verify, a reset, a head that never ends).
final class OriginRelay: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let client: any Channel
    private var request: [UInt8]
    private let counter: TrafficCounter
    private let host: String
    private enum Phase { case connecting, head, relaying, failed }
    private var phase = Phase.connecting
    /// The answer's head, until its blank line.
    private var head: [UInt8] = []
    /// Longest answer head read.
    static let maximumHeadBytes = 64 * 1024
    /// The last write to the client, which the client's close waits for.
    private var lastWrite: EventLoopFuture<Void>?

    init(client: any Channel, request: [UInt8], counter: TrafficCounter, host: String) {
        self.client = client; self.request = request; self.counter = counter; self.host = host
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: request)), promise: nil)
            request = []
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        switch phase {
        case .failed:
            return
        case .relaying:
            counter.down.add(Int64(buffer.readableBytes), ordering: .relaxed)
            lastWrite = client.write(buffer)
        case .connecting, .head:
            phase = .head
            head += buffer.readableBytesView
            guard let end = Self.endOfHead(head) else {
                if head.count > Self.maximumHeadBytes {
                    fail("\(host) answered with a head longer than \(Self.maximumHeadBytes) bytes.")
                    context.close(promise: nil)
                }
                return
            }
            let bytes = Self.closingHead(Array(head[..<end])) + head[end...]
            head = []
            phase = .relaying
            counter.down.add(Int64(bytes.count), ordering: .relaxed)
            lastWrite = client.write(client.allocator.buffer(bytes: bytes))
        }
    }

    /// Where the head's blank line ends, if it has arrived.
    static func endOfHead(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i + 4
        }
        return nil
    }

    /// An answer's head (through its blank line) with the connection's own fields replaced by `Connection: close`.
    static func closingHead(_ head: [UInt8]) -> [UInt8] {
        let lines = String(decoding: head, as: UTF8.self).components(separatedBy: "\r\n").filter { !$0.isEmpty }
        guard let status = lines.first else { return head }
        var kept = [status]
        for line in lines.dropFirst() {
            let name = line.split(separator: ":", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            if !["connection", "keep-alive", "proxy-connection"].contains(name) { kept.append(line) }
        }
        kept.append("Connection: close")
        return Array((kept.joined(separator: "\r\n") + "\r\n\r\n").utf8)
    }

    func channelReadComplete(context: ChannelHandlerContext) { client.flush() }

    func channelInactive(context: ChannelHandlerContext) {
        switch phase {
        case .relaying:
            let client = self.client
            client.flush()
            if let lastWrite { lastWrite.whenComplete { _ in client.close(promise: nil) } } else { client.close(promise: nil) }
        case .connecting, .head: fail("\(host) closed the connection without answering.")
        case .failed: break
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if phase == .connecting || phase == .head {
            let reason = error is NIOSSLError || error is BoringSSLError
                ? "\(host)'s certificate could not be verified." : "The connection to \(host) failed."
            fail(reason)
        }
        context.close(promise: nil)
    }

    private func fail(_ message: String) {
        phase = .failed
        let bytes = ProxyResponse.error(ProxyError(.upstreamFailed, message), accept: nil)
        counter.down.add(Int64(bytes.count), ordering: .relaxed)
        let client = self.client
        client.writeAndFlush(client.allocator.buffer(bytes: bytes)).whenComplete { _ in client.close(promise: nil) }
    }
}
