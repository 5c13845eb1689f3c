public import Foundation
public import NIOCore
public import NIOPosix
import NIOSSL
import Synchronization

/// `tessera proxy`: an HTTP/1.1 forward proxy on SwiftNIO. CONNECT tunnels (to the allowed ports) and absolute-form
/// plain HTTP requests, each authenticated and decided by a ``ProxyGatekeeper`` and recorded as a traffic record.
public struct ForwardProxy: Sendable {
    public let configuration: ProxyConfiguration
    let shared: ProxyShared
    let group: MultiThreadedEventLoopGroup

    /// A proxy; with an `inspector`, CONNECTs to the AI apps its configuration covers are inspected (TLS terminated with
    /// the tenant's inspection CA, prompts checked, TLS re-originated to the real host).
    public init(configuration: ProxyConfiguration, gatekeeper: any ProxyGatekeeper, recorder: TrafficRecorder?, inspector: TLSInspector? = nil,
                group: MultiThreadedEventLoopGroup = .singleton, now: @escaping @Sendable () -> Date = { Date() }) {
        self.configuration = configuration
        self.shared = ProxyShared(configuration: configuration, gatekeeper: gatekeeper, recorder: recorder, inspector: inspector, now: now)
        self.group = group
    }

    /// Connections open now.
    public var openConnections: Int { shared.open.load(ordering: .relaxed) }

    /// The inspection CA this proxy signs `tenant`'s leaves with at this moment, by the proxy's own clock: the one a
    /// client of that tenant must trust (nil when the proxy inspects nothing).
    public func inspectionAuthority(tenant: String) async throws -> InspectionCertificateAuthority? {
        guard let inspector = shared.inspector else { return nil }
        return try await inspector.authority(tenant: tenant, now: shared.now())
    }

    /// Listens until cancelled; `onBound` is told the plain listener's address (with the port chosen when configured
    /// with 0), `onSecureBound` the TLS listener's when there is one. On the way out the connections still open are
    /// closed, so their traffic records are written with the queued ones.
    public func run(onBound: @Sendable (SocketAddress) -> Void = { _ in }, onSecureBound: @Sendable (SocketAddress) -> Void = { _ in },
                    onRecorderError: @escaping @Sendable (any Error) -> Void = { _ in }) async throws {
        let shared = self.shared
        var servers = [try await bind(host: configuration.host, port: configuration.port, tls: nil)]
        if let address = servers[0].localAddress { onBound(address) }
        if let secure = configuration.secureListener {
            do {
                servers.append(try await bind(host: secure.host, port: secure.port, tls: secure.contexts))
            } catch {
                try? await servers[0].close()
                throw error
            }
            if let address = servers[1].localAddress { onSecureBound(address) }
        }
        // The recorder runs apart from this task, whose cancellation stops the proxy: it must outlive the connections
        // that cancellation closes, to write their records.
        let recorder = shared.recorder.map { recorder in Task { await recorder.run(onError: onRecorderError) } }
        // `--tls-cert`: the files are read again while the proxy runs; a renewal reaches the next handshake.
        let reloader = configuration.secureListener?.reloader.map { reload in Task { await reload() } }
        defer { reloader?.cancel() }
        let listening = servers
        await withTaskCancellationHandler {
            for server in listening { try? await server.closeFuture.get() }
        } onCancel: {
            for server in listening { server.close(promise: nil) }
        }
        let open = shared.channels.withLock { Array($0.values) }
        for channel in open { channel.close(promise: nil) }
        // Each close records its connection (a callback registered before this wait) before the wait returns.
        for channel in open { try? await channel.closeFuture.get() }
        recorder?.cancel()
        await recorder?.value
    }

    /// A listening channel whose connections each get a ``ProxyConnectionHandler``, behind TLS when `tls` is given.
    private func bind(host: String, port: Int, tls: ProxyConfiguration.SecureListener.Contexts?) async throws -> any Channel {
        let shared = self.shared
        let idle = configuration.idleTimeout
        return try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            // TLS ends with close_notify: a client's FIN is the end of its connection, not a half-close.
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: tls == nil)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let operations = channel.pipeline.syncOperations
                    if let tls {
                        // Any certificate passes the handshake (which proves the client holds its key); the gatekeeper
                        // judges it, so a refusal is a 407 with its reason rather than a broken handshake.
                        try operations.addHandler(NIOSSLServerHandler(context: tls.context()) { _, promise in promise.succeed(.certificateVerified) })
                    }
                    try operations.addHandler(IdleStateHandler(allTimeout: .seconds(idle)))
                    try operations.addHandler(ProxyConnectionHandler(shared: shared, secure: tls != nil))
                }
            }
            .bind(host: host, port: port).get()
    }
}
