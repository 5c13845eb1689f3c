public import Foundation
public import NIOCore
public import NIOPosix
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

    /// Listens until cancelled; `onBound` is told the address (with the port chosen when configured with 0). On the way
    /// out the connections still open are closed, so their traffic records are written with the queued ones.
    public func run(onBound: @Sendable (SocketAddress) -> Void = { _ in }, onRecorderError: @escaping @Sendable (any Error) -> Void = { _ in }) async throws {
        let shared = self.shared
        let idle = configuration.idleTimeout
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: .seconds(idle)))
                    try channel.pipeline.syncOperations.addHandler(ProxyConnectionHandler(shared: shared))
                }
            }
            .bind(host: configuration.host, port: configuration.port).get()
        if let address = server.localAddress { onBound(address) }
        // The recorder runs apart from this task, whose cancellation stops the proxy: it must outlive the connections
        // that cancellation closes, to write their records.
        let recorder = shared.recorder.map { recorder in Task { await recorder.run(onError: onRecorderError) } }
        await withTaskCancellationHandler {
            try? await server.closeFuture.get()
        } onCancel: {
            server.close(promise: nil)
        }
        let open = shared.channels.withLock { Array($0.values) }
        for channel in open { channel.close(promise: nil) }
        // Each close records its connection (a callback registered before this wait) before the wait returns.
        for channel in open { try? await channel.closeFuture.get() }
        recorder?.cancel()
        await recorder?.value
    }
}
