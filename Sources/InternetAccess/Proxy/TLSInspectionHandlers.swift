import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import TesseraCore

/// The requests inside one client's terminated TLS to an inspected host (an AI app whose prompts the user's policy
/// reads, or an identity platform host named for tenant restrictions), one after another on the same connection.
///
/// - Keep-alive: each request is inspected, answered and recorded (one traffic record each), then the next is read.
///   Pipelined requests wait in NIO's `HTTPServerPipelineHandler` until the answer before them has ended, so none reaches
///   the origin before it is inspected.
/// - A request a conversation scheme of the user's prompt policy reads has its body held until it is whole (a JSON
///   prompt can only be read whole; the prompt itself is cut at 10,000 characters), up to
///   ``TLSInspectionConfiguration/maximumBodyBytes``: the policy then blocks it (403 `PromptInjectionBlocked`, the
///   connection stays usable) or it goes to the real host. A body past the limit is never held whole: it gets the
///   policy's verdict for unreadable bodies, refused with 413 (and the connection closed), or passed on uninspected as
///   it streams. Other requests stream to the origin as they arrive, read only while the origin takes them.
/// - The answer streams back part by part (server-sent events arrive as they are sent), and the origin is read only
///   while the client keeps up, so a slow client holds the origin back instead of growing the proxy's memory.
/// - One origin connection at a time, over TLS verified fully (``OriginResponseHandler``), reused while the origin keeps
///   it open and opened again when it does not; a request sent whole on a reused connection the origin closed before
///   answering is sent once more on a new one.
/// - On a host named for tenant restrictions every request goes on with the header naming the user's tenant
///   (``TenantRestrictionHeader``), any the client sent removed.
///
/// A connection that carried no request is recorded once, as the tunnel.
final class InspectedConnectionHandler: ChannelDuplexHandler, OriginResponseClient {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// One request and its answer.
    private struct Exchange {
        var head: HTTPRequestHead
        var record: TrafficRecord
        /// The scheme that reads this request's body, when the prompt policy inspects it.
        var scheme: ConversationScheme?
        /// The body held for inspection.
        var held: ByteBuffer?
        var requestEnded = false
        var upstream = OriginExchange()
        /// Body bytes from the client.
        var up: Int64 = 0
    }

    /// Where the current request is.
    private enum Phase {
        /// Waiting for a request head.
        case idle
        /// The body is held for inspection.
        case holding
        /// The body goes to the origin as it arrives.
        case streaming
        /// The whole request went to the origin; waiting for the end of its answer.
        case sent
        /// The proxy answered itself before the request ended: the rest is dropped and the connection closed.
        case refused
    }


    private let host: String
    private let port: Int
    /// The CONNECT's record: each request's record starts from it.
    private let tunnel: TrafficRecord
    private let inspector: TLSInspector
    /// The prompt policy on this user's traffic, when this host's prompts are inspected.
    private let prompt: PromptPolicy.InScope?
    /// Tenant restrictions' header for an identity platform host, put on every request in place of the client's.
    private let tenantRestriction: TenantRestrictionHeader?
    private let shared: ProxyShared

    private var context: ChannelHandlerContext?
    private var phase = Phase.idle
    private var exchange: Exchange?
    private var requests = 0
    private var origin = OriginLink.none
    /// Whether the origin connection has answered a request already (a close before the next answer may be a race).
    private var originReused = false
    private var closeAfterResponse = false
    private var pendingRead = false

    init(host: String, port: Int, record: TrafficRecord, inspector: TLSInspector, prompt: PromptPolicy.InScope?,
         tenantRestriction: TenantRestrictionHeader?, shared: ProxyShared) {
        self.host = host; self.port = port; self.tunnel = record; self.inspector = inspector; self.prompt = prompt
        self.tenantRestriction = tenantRestriction; self.shared = shared
    }

    private var limit: Int { inspector.configuration.maximumBodyBytes }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        context.channel.closeFuture.assumeIsolated().whenComplete { [self] _ in
            if case .open(let handler) = origin { handler.close() }
            origin = .none
            if exchange != nil {
                finishExchange()
            } else if requests == 0 {
                shared.recorder?.submit(tunnel)
            }
            self.context = nil
        }
    }

    // MARK: The client's requests

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // After an answer that ends the connection, nothing more is read.
        if closeAfterResponse, exchange == nil { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            begin(context, head)
        case .body(let buffer):
            switch phase {
            case .holding: hold(context, buffer)
            case .streaming:
                exchange?.up += Int64(buffer.readableBytes)
                exchange?.upstream.streamed()
                sendToOrigin(context, .body(.byteBuffer(buffer)))
            case .idle, .sent, .refused: break
            }
        case .end:
            exchange?.requestEnded = true
            switch phase {
            case .holding: decide(context, overflowing: false)
            case .streaming:
                phase = .sent
                sendToOrigin(context, .end(nil))
            case .idle, .sent, .refused: break
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if case .open(let handler) = origin { handler.flush() }
        context.fireChannelReadComplete()
    }

    /// The traffic record of the connection's next request: the tunnel's own for the first, a new id and time after.
    private func nextRecord() -> TrafficRecord {
        var record = tunnel
        if requests > 0 {
            let now = shared.now()
            record.transactionId = shared.nextID(at: now)
            record.createdDateTime = now
        }
        requests += 1
        return record
    }

    private func begin(_ context: ChannelHandlerContext, _ head: HTTPRequestHead) {
        let uri = Self.path(head)
        var record = nextRecord()
        record.httpMethod = head.method.rawValue
        record.destinationUrl = "https://\(host)\(port == 443 ? "" : ":\(port)")\(uri)"
        let prompts = inspector.configuration.prompts
        var scheme = prompt.flatMap { _ in prompts.scheme(host: host, path: uri) }
        if let found = scheme, let prompt, !(prompt.policy.inspects(found) || prompts.customSchemes.contains(found)) { scheme = nil }
        // URL rules naming this host, which the tunnel's decision could not judge, decide each request by its path.
        if let rules = tunnel.filtering?.pathRules {
            let verdict = rules.verdict(path: uri)
            record.filtering = verdict
            record.action = verdict.enforced?.action == .alert ? .alert : .allow
            if let match = verdict.enforced, match.action == .block {
                record.action = .block
                exchange = Exchange(head: head, record: record, scheme: nil)
                if !head.isKeepAlive { closeAfterResponse = true }
                let (error, inner) = ProxyResponse.blockedError(host: host, match: match, application: record.application)
                refuse(context, error, close: false, innerError: inner)
                return
            }
        }
        exchange = Exchange(head: head, record: record, scheme: scheme)
        if !head.isKeepAlive { closeAfterResponse = true }
        if head.version == .http1_1, head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
            // The proxy asks for the body itself (the origin never sees `Expect`).
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
        }
        if scheme != nil {
            phase = .holding
            exchange?.held = context.channel.allocator.buffer(capacity: 0)
            return
        }
        guard let request = originHead(head, bodyLength: nil) else {
            refuse(context, ProxyError(.malformed, "Only the chunked transfer coding is supported."), close: true)
            return
        }
        phase = .streaming
        sendToOrigin(context, .head(request))
    }

    /// Adds a piece of a body held for inspection; past the limit, decides without reading it.
    private func hold(_ context: ChannelHandlerContext, _ buffer: ByteBuffer) {
        guard var held = exchange?.held else { return }
        exchange?.held = nil  // no second reference while it grows
        var piece = buffer
        held.writeBuffer(&piece)
        exchange?.held = held
        exchange?.up += Int64(buffer.readableBytes)
        if held.readableBytes > limit { decide(context, overflowing: true) }
    }

    /// The prompt policy's decision on a held body: whole, or past the limit (then it is unreadable).
    private func decide(_ context: ChannelHandlerContext, overflowing: Bool) {
        guard var exchange, let scheme = exchange.scheme, let held = exchange.held, let prompt else { return }
        let prompts = inspector.configuration.prompts
        let extraction = overflowing ? PromptExtraction.tooLarge(limit: limit) : scheme.extractPrompt(from: Array(held.readableBytesView))
        let inspection = prompts.inspect(extraction, scheme: scheme)
        let verdict = prompt.verdict(for: inspection)
        exchange.record.application?.activity = .prompt
        exchange.record.promptPolicyId = prompt.policy.id
        recordInsight(inspection, verdict: verdict, record: exchange.record)
        switch verdict {
        case .block: exchange.record.action = .block
        case .alert: exchange.record.action = .alert
        case .allow: break
        }
        self.exchange = exchange
        if verdict == .block {
            if overflowing {
                refuse(context, ProxyError(.bodyTooLarge, "The request body is larger than the proxy inspects (\(limit) bytes), and your organization's prompt policy blocks what it cannot inspect."),
                       close: true)
            } else {
                refuse(context, ProxyError(.promptBlocked, "This prompt was blocked by your organization's prompt injection protection."), close: false)
            }
            return
        }
        // A whole body goes with its length; one past the limit streams on in the client's framing.
        guard let request = originHead(exchange.head, bodyLength: overflowing ? nil : held.readableBytes) else {
            refuse(context, ProxyError(.malformed, "Only the chunked transfer coding is supported."), close: true)
            return
        }
        self.exchange?.held = nil
        phase = exchange.requestEnded ? .sent : .streaming
        sendToOrigin(context, .head(request))
        if held.readableBytes > 0 { sendToOrigin(context, .body(.byteBuffer(held))) }
        if exchange.requestEnded { sendToOrigin(context, .end(nil)) } else { self.exchange?.upstream.streamed() }
        if case .open(let handler) = origin { handler.flush() }
    }

    /// Queues the `generativeAIInsight` of a request that carried a prompt.
    private func recordInsight(_ inspection: PromptInspector.Inspection, verdict: PromptDetector.Verdict, record: TrafficRecord) {
        guard case .prompt(let text) = inspection.extraction, let assessment = inspection.assessment, let url = record.destinationUrl else { return }
        let now = shared.now()
        var insight = GenerativeAIInsight(transactionId: record.transactionId, eventId: shared.nextID(at: now), createdDateTime: now,
                                          tenantId: record.tenantId, userPrincipalName: record.userPrincipalName, destinationUrl: url,
                                          prompt: text, scheme: inspection.scheme, assessment: assessment, action: verdict)
        insight.policyId = prompt?.policy.id
        shared.recorder?.submit(insight)
    }

    /// The request as the origin gets it: HTTP/1.1, hop-by-hop fields, `Expect` and the proxy's own dropped (and any
    /// tenant restrictions header, replaced by the proxy's); a held body's length stated, a streamed one in the client's
    /// framing (nil for a transfer coding other than chunked).
    private func originHead(_ head: HTTPRequestHead, bodyLength: Int?) -> HTTPRequestHead? {
        var dropped = ProxyConnectionHandler.hopByHop.union(["expect"])
        if tenantRestriction != nil { dropped.insert(TenantRestrictionHeader.name.lowercased()) }
        for value in head.headers[canonicalForm: "connection"] { dropped.insert(value.lowercased()) }
        var headers = HTTPHeaders()
        for (name, value) in head.headers where !dropped.contains(name.lowercased()) { headers.add(name: name, value: value) }
        if let bodyLength {
            headers.remove(name: "transfer-encoding")
            if bodyLength > 0 || [.POST, .PUT, .PATCH].contains(head.method) {
                headers.replaceOrAdd(name: "content-length", value: String(bodyLength))
            } else {
                headers.remove(name: "content-length")
            }
        } else if let coding = headers.first(name: "transfer-encoding") {
            guard coding.lowercased() == "chunked" else { return nil }
        }
        if !headers.contains(name: "host") { headers.add(name: "Host", value: "\(host)\(port == 443 ? "" : ":\(port)")") }
        if let tenantRestriction { headers.add(name: TenantRestrictionHeader.name, value: tenantRestriction.value) }
        return HTTPRequestHead(version: .http1_1, method: head.method, uri: Self.path(head), headers: headers)
    }

    /// The request's target in origin form (anything else is read as `/`).
    static func path(_ head: HTTPRequestHead) -> String { head.uri.hasPrefix("/") ? head.uri : "/" }

    /// Writes the proxy's own answer inside the TLS; `close` ends the connection after it (also when the request has
    /// not ended: the rest of it is dropped).
    private func refuse(_ context: ChannelHandlerContext, _ error: ProxyError, close: Bool, innerError: [String: JSONValue] = [:]) {
        guard var exchange else { return }
        let answer = ProxyResponse.errorAnswer(error, accept: exchange.head.headers.first(name: "accept"), innerError: innerError)
        var head = HTTPResponseHead(version: exchange.head.version, status: .init(statusCode: error.code.status), headers: HTTPHeaders(answer.headers))
        head.headers.add(name: "Content-Length", value: String(answer.body.count))
        if close || !exchange.requestEnded { closeAfterResponse = true }
        if closeAfterResponse { head.headers.add(name: "Connection", value: "close") }
        _ = exchange.upstream.beginAnswer()
        exchange.upstream.answerBytes += Int64(answer.body.count)
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
        // Writing the end lets NIO's pipeline handler pass on a pipelined request at once (from inside this write), so
        // this exchange is over before it; that request may ask for its own connection's end, so whether this answer
        // ends it is decided before.
        let close = closeAfterResponse
        let ended = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if close {
            let channel = context.channel
            ended.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    private func finishExchange() {
        guard var record = exchange?.record, let exchange else { return }
        record.sentBytes = exchange.up
        record.receivedBytes = exchange.upstream.answerBytes
        shared.recorder?.submit(record)
        self.exchange = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is HTTPParserError, exchange?.upstream.answerStarted != true {
            // The decoder closes the connection after this; the answer must be written now.
            if exchange == nil {
                exchange = Exchange(head: HTTPRequestHead(version: .http1_1, method: .GET, uri: "/"), record: nextRecord())
            }
            refuse(context, ProxyError(.malformed, "The request inside the tunnel is not HTTP/1.1."), close: true)
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

    /// The client is read only while the origin takes a streamed body.
    func read(context: ChannelHandlerContext) {
        if phase == .streaming, !originWritable {
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

    /// Whether the client takes more of an answer now.
    var isWritable: Bool { context?.channel.isWritable ?? false }

    func originBecameWritable() {
        guard pendingRead, originWritable, let context else { return }
        pendingRead = false
        context.read()
    }

    // MARK: The origin

    private func sendToOrigin(_ context: ChannelHandlerContext, _ part: HTTPClientRequestPart) {
        exchange?.upstream.sending(part)
        if origin.send(part) { connectOrigin(context) }
    }

    private func connectOrigin(_ context: ChannelHandlerContext) {
        let host = self.host, port = self.port
        OriginResponseHandler.connect(on: context.eventLoop, host: host, port: port, configuration: shared.configuration,
                                      tls: inspector.originContext).assumeIsolated().whenComplete { [self] result in
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
        guard case .open(let current) = origin, current === handler, let context, exchange?.upstream.answerStarted == true else { return }
        if keepAlive {
            originReused = true
        } else {
            origin = .none
            handler.close()
        }
        endResponse(context)
    }

    func originReadComplete() { context?.flush() }

    /// The origin connection closed: between requests it is opened again for the next; before an answer, a request
    /// sent whole on a reused connection is sent once more (the origin may have closed it as the request left), else 502;
    /// during an answer, the client's connection ends too (the answer is cut short).
    func originClosed(_ handler: OriginResponseHandler) {
        guard case .open(let current) = origin, current === handler else { return }
        origin = .none
        guard let context, var exchange, phase == .sent || phase == .streaming || exchange.upstream.answerStarted else { return }
        let next = exchange.upstream.originClosed(reused: originReused, sentWhole: phase == .sent)
        self.exchange = exchange
        switch next {
        case .resend(let parts): for part in parts { sendToOrigin(context, part) }
        case .cutShort:
            finishExchange()
            context.close(promise: nil)
        case .unanswered: originFailed("\(host) closed the connection without answering.")
        }
    }

    /// The origin failed before answering (its certificate did not verify, it reset, its answer was not HTTP): 502.
    func originFailed(_ handler: OriginResponseHandler, _ error: any Error) {
        guard case .open(let current) = origin, current === handler else { return }
        origin = .none
        handler.close()
        let reason = error is NIOSSLError || error is BoringSSLError
            ? "\(host)'s certificate could not be verified." : "The connection to \(host) failed."
        originFailed(reason)
    }

    private func originFailed(_ message: String) {
        guard let context, let exchange else { return }
        if exchange.upstream.answerStarted {
            finishExchange()
            context.close(promise: nil)
        } else {
            refuse(context, ProxyError(.upstreamFailed, message), close: !exchange.requestEnded)
        }
    }
}

/// What an ``OriginResponseHandler`` hands the answer to: the handler of the client's connection.
protocol OriginResponseClient: AnyObject {
    /// Whether the client takes more of an answer now.
    var isWritable: Bool { get }
    func originResponded(_ handler: OriginResponseHandler, _ head: HTTPResponseHead)
    func originBody(_ handler: OriginResponseHandler, _ buffer: ByteBuffer)
    func originEnded(_ handler: OriginResponseHandler, keepAlive: Bool)
    func originReadComplete()
    func originClosed(_ handler: OriginResponseHandler)
    func originFailed(_ handler: OriginResponseHandler, _ error: any Error)
    func originBecameWritable()
}

/// The origin's side of proxied requests (inspected ones over TLS to the real host, verified fully, writes waiting for
/// the handshake; plain ones over TCP): sends what the client's handler gives it, hands each part of the answer back,
/// and reads the origin only while the client takes more.
final class OriginResponseHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    /// Set once connected; cleared when this side closes.
    var client: (any OriginResponseClient)?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    private var keepAlive = true

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        client = nil
    }

    func send(_ part: HTTPClientRequestPart) { context?.write(wrapOutboundOut(part), promise: nil) }
    func flush() { context?.flush() }
    func close() { context?.close(promise: nil) }
    var isWritable: Bool { context?.channel.isWritable ?? false }

    func resumeReading() {
        guard pendingRead else { return }
        pendingRead = false
        context?.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            keepAlive = head.isKeepAlive
            client?.originResponded(self, head)
        case .body(let buffer):
            client?.originBody(self, buffer)
        case .end:
            client?.originEnded(self, keepAlive: keepAlive)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) { client?.originReadComplete() }

    func channelInactive(context: ChannelHandlerContext) {
        let client = self.client
        self.client = nil
        client?.originClosed(self)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let client = self.client
        self.client = nil
        client?.originFailed(self, error)
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { client?.originBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    /// The origin is read only while the client takes more of the answer.
    func read(context: ChannelHandlerContext) {
        if client?.isWritable ?? true {
            context.read()
        } else {
            pendingRead = true
        }
    }
}
