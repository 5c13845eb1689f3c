import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// What the plain and the inspected paths share on the origin's side: opening the connection, and the answer's head as
/// the client gets it.
extension OriginResponseHandler {
    /// Opens a connection to `host:port` (through `configuration.resolve` when it names the address, as curl's
    /// `--resolve`), with TLS to the real host, verified, when `tls` is given, ending in an `OriginResponseHandler`.
    static func connect(on eventLoop: any EventLoop, host: String, port: Int, configuration: ProxyConfiguration,
                        tls: NIOSSLContext? = nil) -> EventLoopFuture<any Channel> {
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.seconds(configuration.connectTimeout))
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            // No idle timer of its own: an origin that goes silent leaves the client's connection silent too, and that
            // one's timer closes both; kept ones close with the client's connection.
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: host)) }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(OriginResponseHandler())
                }
            }
        guard let address = configuration.resolve["\(host):\(port)"] else { return bootstrap.connect(host: host, port: port) }
        do {
            return bootstrap.connect(to: try SocketAddress(ipAddress: address, port: port))
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
    }

    /// The origin's answer head as the client gets it: hop-by-hop headers (and those its `Connection` names) and
    /// `Transfer-Encoding` dropped, in the request's HTTP version. An HTTP/1.0 request's answer of unknown length ends
    /// with the connection (no chunked coding there), which sets `closeAfter`; `Connection` says what happens next.
    static func relayedHead(_ head: HTTPResponseHead, answering request: HTTPRequestHead, closeAfter: inout Bool) -> HTTPResponseHead {
        var dropped = ProxyConnectionHandler.hopByHop.union(["transfer-encoding"])
        for value in head.headers[canonicalForm: "connection"] { dropped.insert(value.lowercased()) }
        var headers = HTTPHeaders()
        for (name, value) in head.headers where !dropped.contains(name.lowercased()) { headers.add(name: name, value: value) }
        if request.version != .http1_1, !headers.contains(name: "content-length"), head.status.mayHaveResponseBody { closeAfter = true }
        if closeAfter {
            headers.add(name: "Connection", value: "close")
        } else if request.version != .http1_1 {
            headers.add(name: "Connection", value: "keep-alive")
        }
        return HTTPResponseHead(version: request.version, status: head.status, headers: headers)
    }
}

/// A client connection's link to its current origin, as the plain and the inspected paths both keep it: none,
/// connecting (with the request parts queued for it), or open.
enum OriginLink {
    case none
    case connecting([HTTPClientRequestPart])
    case open(OriginResponseHandler)

    /// Sends a part on the open connection, or queues it while one is opened; true when there is none yet and the
    /// caller must open it (the part is queued for it).
    mutating func send(_ part: HTTPClientRequestPart) -> Bool {
        switch self {
        case .none:
            self = .connecting([part])
            return true
        case .connecting(var queued):
            queued.append(part)
            self = .connecting(queued)
        case .open(let handler):
            handler.send(part)
        }
        return false
    }

    /// Whether a streamed body may be read on: at most one part waits for a connection being opened.
    var isWritable: Bool {
        switch self {
        case .none: true
        case .connecting(let queued): queued.count < 2
        case .open(let handler): handler.isWritable
        }
    }

    enum Connected { case opened, failed, dropped }

    /// Takes the result of opening the connection `send` asked for: opened (the queued parts sent, `client` answered
    /// from now on), failed, or dropped — the link moved on meanwhile or the client is gone, and a connection that came
    /// anyway is closed.
    mutating func connected(_ result: Result<any Channel, any Error>, for client: any OriginResponseClient, clientGone: Bool) -> Connected {
        guard case .connecting(let queued) = self else {
            if case .success(let channel) = result { channel.close(promise: nil) }
            return .dropped
        }
        switch result {
        case .success(let channel):
            guard !clientGone, let handler = try? channel.pipeline.syncOperations.handler(type: OriginResponseHandler.self) else {
                channel.close(promise: nil)
                self = .none
                return .dropped
            }
            handler.client = client
            self = .open(handler)
            for part in queued { handler.send(part) }
            handler.flush()
            return .opened
        case .failure:
            self = .none
            return .failed
        }
    }
}

/// One request's origin side, as the plain and the inspected paths both keep it: the parts kept while they can be sent
/// again whole, whether they were, whether its answer has begun (the origin's, or the proxy's own), and the answer's
/// body bytes.
struct OriginExchange {
    /// Nil once a body part streamed past what could be sent again.
    private(set) var replay: [HTTPClientRequestPart]? = []
    private(set) var retried = false
    private(set) var answerStarted = false
    var answerBytes: Int64 = 0

    /// A part goes to the origin: kept while the request can still be sent again whole.
    mutating func sending(_ part: HTTPClientRequestPart) { replay?.append(part) }

    /// A body part streamed on its own: the request can no longer be sent again.
    mutating func streamed() { replay = nil }

    /// The answer begins (nothing is sent again after it); false when it had begun already.
    mutating func beginAnswer() -> Bool {
        guard !answerStarted else { return false }
        answerStarted = true
        replay = nil
        return true
    }

    /// What follows an origin connection's close before the end of the answer.
    enum AfterClose: Equatable {
        /// Sent whole on a reused connection the origin closed before answering (it may have closed it as the request
        /// left): sent once more, on a new connection.
        case resend([HTTPClientRequestPart])
        /// The answer had begun: it is cut short, and the client's connection ends too.
        case cutShort
        /// No answer, and no second try: 502.
        case unanswered
    }

    /// Decides what follows the origin's close; `reused` says the connection had answered a request before, `sentWhole`
    /// that the whole request went out.
    mutating func originClosed(reused: Bool, sentWhole: Bool) -> AfterClose {
        if answerStarted { return .cutShort }
        guard reused, sentWhole, !retried, let replay else { return .unanswered }
        retried = true
        self.replay = []
        return .resend(replay)
    }
}
