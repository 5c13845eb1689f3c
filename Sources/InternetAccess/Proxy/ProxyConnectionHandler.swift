import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization
import TesseraCore

/// What every connection of one proxy shares: its configuration, who decides, where records go, and the count of
/// open connections.
final class ProxyShared: Sendable {
    let configuration: ProxyConfiguration
    let gatekeeper: any ProxyGatekeeper
    let recorder: TrafficRecorder?
    /// TLS inspection of AI apps, when on.
    let inspector: TLSInspector?
    let now: @Sendable () -> Date
    let open = Atomic<Int>(0)
    /// The client connections open now, so stopping can close them (and so record them) before the last flush.
    let channels = Mutex<[ObjectIdentifier: any Channel]>([:])
    private let ids = Mutex(TransactionID())

    init(configuration: ProxyConfiguration, gatekeeper: any ProxyGatekeeper, recorder: TrafficRecorder?, inspector: TLSInspector?,
         now: @escaping @Sendable () -> Date) {
        self.configuration = configuration; self.gatekeeper = gatekeeper; self.recorder = recorder; self.inspector = inspector
        self.now = now
    }

    func nextID(at date: Date) -> String {
        let ms = UInt64(max(0, date.timeIntervalSince1970 * 1000))
        return ids.withLock { $0.next(milliseconds: ms) }
    }
}

/// One client connection from its first byte until it is joined to an origin: reads the first request head within the
/// head timeout (a malformed or oversized one is refused: 400, 431, 505). A plain HTTP request hands the connection to a
/// ``PlainHTTPConnectionHandler``, which takes it and every request after it. A CONNECT is refused when it may not pass
/// (403 port or policy, 407 no valid token or device certificate, 502 origin down), else the gatekeeper's decision opens
/// it: inspected (``InspectedConnectionHandler``) or glued byte for byte to the origin by a ``GlueHandler`` pair, whose
/// traffic record is written when the client's connection closes, with the bytes both ways.
final class ProxyConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State { case awaitingHead, deciding, joined, closed }
    private var state = State.awaitingHead
    private var received: [UInt8] = []
    private var deadline: Scheduled<Void>?
    private let shared: ProxyShared
    /// Whether the client speaks to the proxy over TLS (the TLS listener): then the certificate it presented, if any,
    /// goes to the gatekeeper.
    private let secure: Bool

    init(shared: ProxyShared, secure: Bool = false) {
        self.shared = shared
        self.secure = secure
    }

    func channelActive(context: ChannelHandlerContext) {
        let shared = self.shared
        let count = shared.open.wrappingAdd(1, ordering: .relaxed).newValue
        let channel = context.channel, key = ObjectIdentifier(channel)
        shared.channels.withLock { $0[key] = channel }
        channel.closeFuture.whenComplete { _ in
            shared.open.subtract(1, ordering: .relaxed)
            _ = shared.channels.withLock { $0.removeValue(forKey: key) }
        }
        if count > shared.configuration.maximumConnections {
            refuse(context, ProxyError(.overloaded, "The proxy has too many connections open; try again shortly."), accept: nil)
            return
        }
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(shared.configuration.headTimeout)) { [self] in
            guard state == .awaitingHead else { return }
            refuse(context, ProxyError(.headTimeout, "The request head did not arrive in time."), accept: nil)
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        state = .closed
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
        switch state {
        case .awaitingHead:
            received += bytes
            let parsed: ProxyRequestHead.Parsed
            do {
                parsed = try ProxyRequestHead.parse(received, limit: shared.configuration.maximumHeadBytes)
            } catch {
                refuse(context, error, accept: nil)
                return
            }
            guard case .complete(let head, let length) = parsed else { return }
            deadline?.cancel()
            state = .deciding
            let raw = received
            received = Array(received[length...])
            context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
            start(context, head, raw: raw)
        case .deciding:
            // Bytes already read when reading stopped: kept for the origin.
            received += bytes
            if received.count > shared.configuration.maximumHeadBytes * 4 {
                refuse(context, ProxyError(.malformed, "Too many bytes before the tunnel opened."), accept: nil)
            }
        case .joined, .closed:
            break
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed, state == .awaitingHead || state == .closed {
            state = .closed
            context.close(promise: nil)
            return
        }
        if event is IdleStateHandler.IdleStateEvent, state == .awaitingHead {
            return  // the head deadline answers slow clients
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        state = .closed
        context.close(promise: nil)
    }

    /// Writes a refusal and closes.
    private func refuse(_ context: ChannelHandlerContext, _ error: ProxyError, accept: String?, extra: [(String, String)] = []) {
        send(context, ProxyResponse.error(error, accept: accept, extra: extra))
    }

    /// Writes the answer, then ends the connection gently: output shut after the answer, what the client still sends
    /// read and dropped until it closes (closing with unread bytes would reset the connection and could destroy the
    /// answer in flight), and a full close after a grace period whatever the client does.
    private func send(_ context: ChannelHandlerContext, _ bytes: [UInt8]) {
        deadline?.cancel()
        state = .closed
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(bytes: bytes))).whenComplete { _ in
            channel.close(mode: .output, promise: nil)
            channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
            channel.eventLoop.scheduleTask(in: Self.lingering) { channel.close(promise: nil) }
        }
    }

    /// How long a refused client may keep the connection before it is closed.
    static let lingering: TimeAmount = .seconds(2)

    private func start(_ context: ChannelHandlerContext, _ head: ProxyRequestHead, raw: [UInt8]) {
        // The head arrived over TLS, so the handshake (and with it any client certificate) is done.
        let certificate = secure ? (try? context.pipeline.syncOperations.nioSSL_peerCertificate()).flatMap { try? $0?.toDERBytes() } : nil
        if case .http = head.target {
            handOver(context, raw: raw, certificate: certificate)
            return
        }
        let accept = head.header("accept")
        guard shared.configuration.tunnelPorts.contains(head.port) else {
            refuse(context, ProxyError(.portNotAllowed, "CONNECT to port \(head.port) is not allowed through this proxy."), accept: accept)
            return
        }
        let request = ProxyAdmissionRequest(
            proxyAuthorization: head.header("proxy-authorization"), host: head.host, port: head.port, path: nil,
            clientAddress: context.channel.remoteAddress?.ipAddress, userAgent: head.header("user-agent"), clientCertificate: certificate)
        let gatekeeper = shared.gatekeeper
        context.eventLoop.makeFutureWithTask { try await gatekeeper.admit(request) }.assumeIsolated().whenComplete { [self] result in
            guard state == .deciding, context.channel.isActive else { return }
            let destination = ProxyShared.Destination(method: head.method, host: head.host, port: head.port, path: nil)
            switch shared.outcome(result, destination, client: context.channel.remoteAddress) {
            case .refused(let error, let headers, let inner):
                send(context, ProxyResponse.error(error, accept: accept, extra: headers, innerError: inner))
            case .admitted(let record, let user, let verdict):
                // Only a user whose security profile links a prompt policy has prompts inspected, and only for the hosts
                // its schemes read. Identity platform hosts named for tenant restrictions are opened for every user, to
                // add the header.
                if let inspector = shared.inspector {
                    let prompt = verdict.prompt.flatMap { inspector.configuration.inspects(host: head.host, policy: $0.policy) ? $0 : nil }
                    let restriction = inspector.configuration.restrictsTenants(host: head.host)
                        ? TenantRestrictionHeader(restrictingTenantID: user.tenantID) : nil
                    if prompt != nil || restriction != nil {
                        inspect(context, head, record: record, tenant: user.tenantID, inspector: inspector, prompt: prompt,
                                tenantRestriction: restriction, accept: accept)
                        return
                    }
                }
                connect(context, head, record: record, accept: accept)
            }
        }
    }

    /// A plain HTTP request: the connection goes to NIO's HTTP/1.1 server codec and a ``PlainHTTPConnectionHandler``,
    /// which takes this request (its bytes read again from the start) and every one after it on the connection.
    private func handOver(_ context: ChannelHandlerContext, raw: [UInt8], certificate: [UInt8]?) {
        do {
            let operations = context.pipeline.syncOperations
            // NIO's server pipeline: a pipelined request waits until the answer before it has ended.
            try operations.configureHTTPServerPipeline(position: .after(self), withPipeliningAssistance: true, withErrorHandling: false)
            try operations.addHandler(PlainHTTPConnectionHandler(shared: shared, clientCertificate: certificate))
        } catch {
            refuse(context, ProxyError(.internalError, "The proxy could not read this connection."), accept: nil)
            return
        }
        state = .joined
        received = []
        context.fireChannelRead(wrapInboundOut(context.channel.allocator.buffer(bytes: raw)))
        context.fireChannelReadComplete()
        let channel = context.channel
        context.pipeline.syncOperations.removeHandler(context: context).whenComplete { _ in
            channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
        }
    }

    private func connect(_ context: ChannelHandlerContext, _ head: ProxyRequestHead, record: TrafficRecord, accept: String?) {
        let configuration = shared.configuration
        let bootstrap = ClientBootstrap(group: context.eventLoop)
            .connectTimeout(.seconds(configuration.connectTimeout))
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .channelOption(ChannelOptions.autoRead, value: false)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: .seconds(configuration.idleTimeout)))
                }
            }
        let connecting: EventLoopFuture<any Channel>
        if let address = configuration.resolve["\(head.host):\(head.port)"] {
            do {
                connecting = bootstrap.connect(to: try SocketAddress(ipAddress: address, port: head.port))
            } catch {
                connecting = context.eventLoop.makeFailedFuture(error)
            }
        } else {
            connecting = bootstrap.connect(host: head.host, port: head.port)
        }
        connecting.assumeIsolated().whenComplete { [self] result in
            switch result {
            case .failure:
                guard state == .deciding, context.channel.isActive else { return }
                shared.recorder?.submit(record)
                refuse(context, ProxyError(.upstreamFailed, "Could not connect to \(head.host):\(head.port)."), accept: accept)
            case .success(let origin):
                guard state == .deciding, context.channel.isActive else {
                    origin.close(promise: nil)
                    return
                }
                join(context, head, origin: origin, record: record)
            }
        }
    }

    private func join(_ context: ChannelHandlerContext, _ head: ProxyRequestHead, origin: any Channel, record: TrafficRecord) {
        let counter = TrafficCounter()
        let (client, upstream) = GlueHandler.pair(counter: counter)
        do {
            try context.pipeline.syncOperations.addHandler(client)
            try origin.pipeline.syncOperations.addHandler(upstream)
        } catch {
            origin.close(promise: nil)
            context.close(promise: nil)
            return
        }
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: ProxyResponse.established)), promise: nil)
        let first = received
        received = []
        if !first.isEmpty {
            counter.up.add(Int64(first.count), ordering: .relaxed)
            origin.writeAndFlush(origin.allocator.buffer(bytes: first), promise: nil)
        }
        state = .joined
        let recorder = shared.recorder
        context.channel.closeFuture.whenComplete { _ in
            var record = record
            record.sentBytes = counter.up.load(ordering: .relaxed)
            record.receivedBytes = counter.down.load(ordering: .relaxed)
            recorder?.submit(record)
        }
        let channel = context.channel
        context.pipeline.syncOperations.removeHandler(context: context).whenComplete { _ in
            channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
            origin.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
        }
    }

    /// Opens the tunnel to an inspected AI app: TLS terminated with a leaf from the tenant's inspection CA, NIO's HTTP/1.1
    /// server codec, and an ``InspectedConnectionHandler`` that inspects each request and re-originates TLS to the real
    /// host for those that pass.
    private func inspect(_ context: ChannelHandlerContext, _ head: ProxyRequestHead, record: TrafficRecord, tenant: String,
                         inspector: TLSInspector, prompt: PromptPolicy.InScope?, tenantRestriction: TenantRestrictionHeader?, accept: String?) {
        let now = shared.now()
        context.eventLoop.makeFutureWithTask { try await inspector.serverContext(tenant: tenant, host: head.host, now: now) }
            .assumeIsolated().whenComplete { [self] result in
                guard state == .deciding, context.channel.isActive else { return }
                do {
                    let tls = NIOSSLServerHandler(context: try result.get())
                    let operations = context.pipeline.syncOperations
                    try operations.addHandler(tls, position: .after(self))
                    // NIO's server pipeline: pipelined requests wait until the answer before them has ended.
                    try operations.configureHTTPServerPipeline(position: .after(tls), withPipeliningAssistance: true, withErrorHandling: false)
                    try operations.addHandler(InspectedConnectionHandler(host: head.host, port: head.port, record: record, inspector: inspector,
                                                                         prompt: prompt, tenantRestriction: tenantRestriction, shared: shared))
                } catch {
                    refuse(context, ProxyError(.internalError, "The proxy could not make a certificate for \(head.host)."), accept: accept)
                    return
                }
                state = .joined
                context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: ProxyResponse.established)), promise: nil)
                if !received.isEmpty {
                    context.fireChannelRead(wrapInboundOut(context.channel.allocator.buffer(bytes: received)))
                    received = []
                }
                let channel = context.channel
                context.pipeline.syncOperations.removeHandler(context: context).whenComplete { _ in
                    // TLS ends with close_notify: a client's FIN is the end of the connection, not a half-close
                    // (else closing waits for a close_notify the client will never send).
                    channel.setOption(ChannelOptions.allowRemoteHalfClosure, value: false).whenFailure { _ in }
                    channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
                }
            }
    }

    /// Header fields that concern one connection (RFC 9110 §7.6.1) and the proxy's own, never passed on.
    static let hopByHop: Set<String> = ["connection", "proxy-connection", "keep-alive", "proxy-authorization", "proxy-authenticate",
                                        "te", "trailer", "upgrade"]
}
