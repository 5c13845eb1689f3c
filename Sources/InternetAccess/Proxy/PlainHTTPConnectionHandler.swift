import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import TesseraCore

/// Plain HTTP through the proxy (absolute-form `http://` requests), many on one client connection (keep-alive):
///
/// - Each request is admitted on its own (its `Proxy-Authorization`, or the connection's device certificate, and the
///   filtering policies for its host and path), answered or refused, and recorded (one traffic record each), then the
///   next is read. Pipelined requests wait in NIO's `HTTPServerPipelineHandler` until the answer before them has ended,
///   so answers go back in order and no request reaches an origin before it is admitted.
/// - The body streams to the origin as it arrives, read only while the origin takes it; the answer streams back, the
///   origin read only while the client keeps up.
/// - Origin connections are kept per `host:port` while the origin keeps them open (at most ``maximumIdleOrigins`` idle
///   at once, the oldest closed past that), and opened again when it does not; a request sent whole on a kept connection
///   the origin closed before answering is sent once more on a new one.
/// - `Connection: close` (or HTTP/1.0 without keep-alive) from the client ends the connection after its answer; so does a
///   refusal that arrives before the request's body has ended (the rest is not read), and an answer of unknown length
///   to HTTP/1.0. The connection's idle timeout and NIO's head limits bound it as they bound the inspected path.
final class PlainHTTPConnectionHandler: ChannelDuplexHandler, OriginResponseClient {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Idle origin connections kept at most per client connection.
    static let maximumIdleOrigins = 8

    /// One request and its answer.
    private struct Exchange {
        var head: HTTPRequestHead
        /// `host:port` of its origin.
        var key: String
        var record: TrafficRecord?
        /// Body parts read while the gatekeeper decides.
        var held: [ByteBuffer] = []
        var requestEnded = false
        var upstream = OriginExchange()
        var up: Int64 = 0
    }

    private enum Phase {
        /// Waiting for a request head.
        case idle
        /// The gatekeeper decides; the body waits.
        case deciding
        /// The body goes to the origin as it arrives.
        case streaming
        /// The whole request went to the origin; waiting for the end of its answer.
        case sent
        /// The proxy answered before the request ended: the rest is dropped and the connection closed.
        case refused
    }


    private let shared: ProxyShared
    /// The certificate the client presented to the TLS listener, for every request's admission.
    private let clientCertificate: [UInt8]?
    private var context: ChannelHandlerContext?
    private var phase = Phase.idle
    private var exchange: Exchange?
    /// Counts requests, so an admission that returns after its connection moved on is ignored.
    private var generation = 0
    private var origin = OriginLink.none
    private var originReused = false
    /// Kept origin connections by `host:port`, oldest first.
    private var idle: [(key: String, handler: OriginResponseHandler)] = []
    private var closeAfterResponse = false
    private var pendingRead = false

    init(shared: ProxyShared, clientCertificate: [UInt8]?) {
        self.shared = shared
        self.clientCertificate = clientCertificate
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        context.channel.closeFuture.assumeIsolated().whenComplete { [self] _ in
            if case .open(let handler) = origin { handler.close() }
            origin = .none
            for kept in idle { kept.handler.close() }
            idle = []
            if exchange?.record != nil { finishExchange() }
            self.context = nil
        }
    }

    // MARK: The client's requests

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if closeAfterResponse, exchange == nil { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            begin(context, head)
        case .body(let buffer):
            exchange?.up += Int64(buffer.readableBytes)
            switch phase {
            case .deciding: exchange?.held.append(buffer)
            case .streaming:
                exchange?.upstream.streamed()
                sendToOrigin(context, .body(.byteBuffer(buffer)))
            case .idle, .sent, .refused: break
            }
        case .end:
            exchange?.requestEnded = true
            switch phase {
            case .streaming:
                phase = .sent
                sendToOrigin(context, .end(nil))
            case .refused:
                phase = .idle
            case .idle, .deciding, .sent: break
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if case .open(let handler) = origin { handler.flush() }
        context.fireChannelReadComplete()
    }

    private func begin(_ context: ChannelHandlerContext, _ head: HTTPRequestHead) {
        generation += 1
        let accept = head.headers.first(name: "accept")
        exchange = Exchange(head: head, key: "")
        if !head.isKeepAlive { closeAfterResponse = true }
        let target: ProxyRequestHead
        do {
            target = try Self.target(head)
        } catch {
            refuse(context, error, accept: accept, close: true)
            return
        }
        guard case .http(let path) = target.target else {
            refuse(context, ProxyError(.malformed, "CONNECT opens a new connection to the proxy, not one that carried plain requests."),
                   accept: accept, close: true)
            return
        }
        exchange?.key = "\(target.host):\(target.port)"
        guard shared.configuration.httpPorts.contains(target.port) else {
            refuse(context, ProxyError(.portNotAllowed, "HTTP to port \(target.port) is not allowed through this proxy."), accept: accept, close: false)
            return
        }
        if head.version == .http1_1, head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
            // The proxy asks for the body itself (the origin never sees `Expect`).
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
        }
        phase = .deciding
        let request = ProxyAdmissionRequest(
            proxyAuthorization: head.headers.first(name: "proxy-authorization"), host: target.host, port: target.port, path: path,
            clientAddress: context.channel.remoteAddress?.ipAddress, userAgent: head.headers.first(name: "user-agent"),
            clientCertificate: clientCertificate)
        let gatekeeper = shared.gatekeeper, asked = generation
        context.eventLoop.makeFutureWithTask { try await gatekeeper.admit(request) }.assumeIsolated().whenComplete { [self] result in
            guard asked == generation, phase == .deciding, let context = self.context, context.channel.isActive else { return }
            let destination = ProxyShared.Destination(method: head.method.rawValue, host: target.host, port: target.port, path: path)
            switch shared.outcome(result, destination, client: context.channel.remoteAddress) {
            case .refused(let error, let headers, let inner):
                refuse(context, error, accept: accept, close: false, extra: headers, innerError: inner)
            case .admitted(let record, _, _):
                admitted(context, record: record, target: target, path: path)
            }
        }
    }

    /// The request passes: its head and the body read so far go to the origin (a kept connection to its `host:port`, or
    /// a new one), and reading resumes.
    private func admitted(_ context: ChannelHandlerContext, record: TrafficRecord, target: ProxyRequestHead, path: String) {
        guard var exchange else { return }
        exchange.record = record
        guard let request = Self.originHead(exchange.head, host: target.host, port: target.port, path: path) else {
            self.exchange = exchange
            refuse(context, ProxyError(.malformed, "Only the chunked transfer coding is supported."), accept: nil, close: true)
            return
        }
        let held = exchange.held
        exchange.held = []
        self.exchange = exchange
        if let index = idle.lastIndex(where: { $0.key == exchange.key }) {
            origin = .open(idle.remove(at: index).handler)
            originReused = true
        }
        phase = exchange.requestEnded ? .sent : .streaming
        sendToOrigin(context, .head(request))
        for buffer in held { sendToOrigin(context, .body(.byteBuffer(buffer))) }
        if exchange.requestEnded { sendToOrigin(context, .end(nil)) } else if !held.isEmpty { self.exchange?.upstream.streamed() }
        if case .open(let handler) = origin { handler.flush() }
        resumeReading(context)
    }

    /// The request line as ``ProxyRequestHead`` reads it (absolute form, host and port), strictly; its fields are the
    /// decoder's.
    static func target(_ head: HTTPRequestHead) throws(ProxyError) -> ProxyRequestHead {
        let version = head.version == .http1_0 ? "HTTP/1.0" : "HTTP/1.1"
        let target = try ProxyRequestHead.requestLine(Array("\(head.method.rawValue) \(head.uri) \(version)".utf8)[...])
        guard !(head.headers.contains(name: "content-length") && head.headers.contains(name: "transfer-encoding")) else {
            throw ProxyError(.malformed, "Both Content-Length and Transfer-Encoding (a request smuggling pattern).")
        }
        return target
    }

    /// The request as the origin gets it: origin-form target over HTTP/1.1, without hop-by-hop fields, `Expect` and the
    /// token (nil for a transfer coding other than chunked).
    static func originHead(_ head: HTTPRequestHead, host: String, port: Int, path: String) -> HTTPRequestHead? {
        var dropped = ProxyConnectionHandler.hopByHop.union(["expect"])
        for value in head.headers[canonicalForm: "connection"] { dropped.insert(value.lowercased()) }
        var headers = HTTPHeaders()
        if !head.headers.contains(name: "host") { headers.add(name: "Host", value: "\(host)\(port == 80 ? "" : ":\(port)")") }
        for (name, value) in head.headers where !dropped.contains(name.lowercased()) { headers.add(name: name, value: value) }
        if let coding = headers.first(name: "transfer-encoding"), coding.lowercased() != "chunked" { return nil }
        return HTTPRequestHead(version: .http1_1, method: head.method, uri: path, headers: headers)
    }

    /// Writes the proxy's own answer; `close` ends the connection after it, as does a request whose body has not ended.
    private func refuse(_ context: ChannelHandlerContext, _ error: ProxyError, accept: String?, close: Bool,
                        extra: [(String, String)] = [], innerError: [String: JSONValue] = [:]) {
        guard var exchange else { return }
        let answer = ProxyResponse.errorAnswer(error, accept: accept, extra: extra, innerError: innerError)
        var head = HTTPResponseHead(version: exchange.head.version, status: .init(statusCode: error.code.status), headers: HTTPHeaders(answer.headers))
        head.headers.add(name: "Content-Length", value: String(answer.body.count))
        if close || !exchange.requestEnded { closeAfterResponse = true }
        if closeAfterResponse { head.headers.add(name: "Connection", value: "close") }
        _ = exchange.upstream.beginAnswer()
        // Recorded already, when it was (a refusal of the gatekeeper's names its tenant there).
        exchange.record = nil
        self.exchange = exchange
        phase = exchange.requestEnded ? .idle : .refused
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: answer.body)))), promise: nil)
        endResponse(context)
    }

    /// Ends the answer to the current request: its record written, and the connection closed after it when it cannot
    /// carry another request.
    private func endResponse(_ context: ChannelHandlerContext) {
        if exchange?.requestEnded == false { closeAfterResponse = true }
        finishExchange()
        if phase != .refused { phase = .idle }
        // Writing the end lets NIO's pipeline handler pass on a pipelined request at once (from inside this write), which
        // may ask for its own connection's end: whether this answer ends it is decided before.
        let close = closeAfterResponse
        let ended = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if close {
            let channel = context.channel
            ended.whenComplete { _ in channel.close(promise: nil) }
        } else {
            resumeReading(context)
        }
    }

    /// Reads again if a read was held back and nothing holds it now.
    private func resumeReading(_ context: ChannelHandlerContext) {
        guard pendingRead, phase != .deciding, phase != .streaming || originWritable else { return }
        pendingRead = false
        context.read()
    }

    private func finishExchange() {
        guard let exchange else { return }
        self.exchange = nil
        guard var record = exchange.record else { return }
        record.sentBytes = exchange.up
        record.receivedBytes = exchange.upstream.answerBytes
        shared.recorder?.submit(record)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is HTTPParserError, exchange?.upstream.answerStarted != true {
            // The decoder closes the connection after this; the answer must be written now.
            if exchange == nil { exchange = Exchange(head: HTTPRequestHead(version: .http1_1, method: .GET, uri: "/"), key: "") }
            refuse(context, ProxyError(.malformed, "The request is not HTTP/1.1."), accept: nil, close: true)
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

    // MARK: Backpressure

    /// The client is not read while the gatekeeper decides, and a streamed body only while the origin takes it.
    func read(context: ChannelHandlerContext) {
        if phase == .deciding || (phase == .streaming && !originWritable) {
            pendingRead = true
        } else {
            context.read()
        }
    }

    private var originWritable: Bool { origin.isWritable }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, case .open(let handler) = origin { handler.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func originBecameWritable() {
        if let context { resumeReading(context) }
    }

    // MARK: The origins

    private func sendToOrigin(_ context: ChannelHandlerContext, _ part: HTTPClientRequestPart) {
        exchange?.upstream.sending(part)
        if origin.send(part) { connectOrigin(context) }
    }

    private func connectOrigin(_ context: ChannelHandlerContext) {
        guard let key = exchange?.key, let colon = key.lastIndex(of: ":"), let port = Int(key[key.index(after: colon)...]) else { return }
        let host = String(key[..<colon])
        OriginResponseHandler.connect(on: context.eventLoop, host: host, port: port, configuration: shared.configuration).assumeIsolated().whenComplete { [self] result in
            switch origin.connected(result, for: self, clientGone: self.context == nil) {
            case .opened:
                originReused = false
                originBecameWritable()
            case .failed: originFailed("Could not connect to \(host):\(port).")
            case .dropped: break
            }
        }
    }

    func originResponded(_ handler: OriginResponseHandler, _ head: HTTPResponseHead) {
        guard case .open(let current) = origin, current === handler, let context, var exchange, exchange.upstream.beginAnswer() else {
            handler.close()
            return
        }
        self.exchange = exchange
        let relayed = OriginResponseHandler.relayedHead(head, answering: exchange.head, closeAfter: &closeAfterResponse)
        context.write(wrapOutboundOut(.head(relayed)), promise: nil)
    }

    func originBody(_ handler: OriginResponseHandler, _ buffer: ByteBuffer) {
        guard case .open(let current) = origin, current === handler, let context, exchange?.upstream.answerStarted == true else { return }
        exchange?.upstream.answerBytes += Int64(buffer.readableBytes)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
    }

    func originEnded(_ handler: OriginResponseHandler, keepAlive: Bool) {
        guard case .open(let current) = origin, current === handler, let context, let exchange, exchange.upstream.answerStarted else { return }
        origin = .none
        if keepAlive {
            idle.append((exchange.key, handler))
            if idle.count > Self.maximumIdleOrigins { idle.removeFirst().handler.close() }
        } else {
            handler.close()
        }
        endResponse(context)
    }

    func originReadComplete() { context?.flush() }

    /// An origin connection closed: a kept one is forgotten; the current one before its answer has a request sent whole
    /// on a kept connection sent once more, else 502; during an answer, the client's connection ends too.
    func originClosed(_ handler: OriginResponseHandler) {
        guard case .open(let current) = origin, current === handler else {
            idle.removeAll { $0.handler === handler }
            return
        }
        origin = .none
        guard let context, var exchange, phase == .sent || phase == .streaming || exchange.upstream.answerStarted else { return }
        let next = exchange.upstream.originClosed(reused: originReused, sentWhole: phase == .sent)
        self.exchange = exchange
        switch next {
        case .resend(let parts): for part in parts { sendToOrigin(context, part) }
        case .cutShort:
            finishExchange()
            context.close(promise: nil)
        case .unanswered: originFailed("\(exchange.key) closed the connection without answering.")
        }
    }

    func originFailed(_ handler: OriginResponseHandler, _ error: any Error) {
        guard case .open(let current) = origin, current === handler else {
            idle.removeAll { $0.handler === handler }
            return
        }
        origin = .none
        handler.close()
        originFailed("The connection to \(exchange?.key ?? "the origin") failed.")
    }

    private func originFailed(_ message: String) {
        guard let context, let exchange else { return }
        if exchange.upstream.answerStarted {
            finishExchange()
            context.close(promise: nil)
        } else {
            // The record of an admitted request is written (502 is its answer).
            let record = exchange.record
            refuse(context, ProxyError(.upstreamFailed, message), accept: exchange.head.headers.first(name: "accept"), close: !exchange.requestEnded)
            if let record { shared.recorder?.submit(record) }
        }
    }
}
