import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOSSL
import UnixSignals
public import ServiceLifecycle
import TesseraCore

/// Runs Tessera's HTTP(S) server until cancelled (SIGINT/SIGTERM stop it gracefully).
public enum TesseraServer {
    /// Serves `app` on `host:port`, over TLS with `tls` unless it is nil (each new connection gets the certificate
    /// `tls` holds when it is accepted), within `limits`.
    public static func run(app: TesseraApp, host: String, port: Int, tls: ServerTLS?, syncInterval: Duration? = .seconds(1800),
                           limits: ServerLimits = .init(), services extra: [any Service] = [],
                           shutdown: ShutdownTiming = .init(),
                           onReady: @escaping @Sendable () -> Void = {}) async throws {
        let logger = Logger(label: "tessera.http")
        // First, so it is shut down last: the background jobs are waited for once no request can start another.
        var services: [any Service] = [BackgroundJobsService(jobs: app.jobs), RetentionService(app: app), ConfigurationMonitorService(app: app),
                                       CrossTenantSyncService(app: app), HandbackService(app: app)]
        if let syncInterval { services.append(SyncService(app: app, interval: syncInterval)) }
        services += extra  // e.g. the health listener (`serve --health-listen`)
        // `serve --tls-cert`: renewals without a restart; otherwise SIGHUP is only logged (its default would stop the server).
        // Trapped here, before anything listens: the services start side by side with the listener, and a SIGHUP that came
        // before a service had trapped it (`systemctl reload` right after start) ended the process.
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        services.append(tls?.reloader(hangups: hangups) ?? HangupWithoutCertificateService(logger: Logger(label: "tessera.tls"), hangups: hangups))
        tls?.report(to: app.telemetry, listener: "https")  // its expiry in /metrics
        let configuration = ApplicationConfiguration(
            address: .hostname(host, port: port), serverName: "Tessera",
            availableConnectionsDelegate: MaximumAvailableConnections(limits.maxConnections ?? ServerLimits.raiseOpenFileLimit(), logger: logger))
        let connections = ConnectionsPerAddress(limit: limits.maxConnectionsPerAddress)
        let http1 = HTTP1Channel.Configuration(idleTimeout: .nanoseconds(Telemetry.nanoseconds(limits.idleTimeout)))
        let server = HTTPServerBuilder { responder in
            let plain = HTTP1Channel(responder: responder, configuration: http1)
            if let tls {
                return AdmittedChannel(base: ReloadingTLSChannel(base: plain, tls: tls), connections: connections)
            }
            return AdmittedChannel(base: plain, connections: connections)
        }
        let application = Application(
            responder: TesseraResponder(app: app, scheme: tls == nil ? "http" : "https", limits: limits), server: server,
            configuration: configuration, services: services, onServerRunning: { _ in onReady() }, logger: logger)
        // SIGTERM or SIGINT: the drain service hears it first (it is last in the group), marks the node draining and
        // waits; then the application stops (the listener closes, requests in flight finish, the services end, recovery
        // jobs hand themselves back), all within the shutdown timeout, after which what is left is cancelled.
        var group = ServiceGroupConfiguration(
            services: [.init(service: application), .init(service: DrainService(lifecycle: app.lifecycle, drain: shutdown.drain))],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = shutdown.drain + shutdown.timeout
        group.maximumCancellationDuration = .seconds(5)
        do {
            try await ServiceGroup(configuration: group).run()
        } catch {
            try? await app.directory.flushSignIns()
            throw error
        }
        // Sign-in records still waiting for their batch are written before the process goes.
        try await app.directory.flushSignIns()
    }
}

/// How a node stops on SIGTERM (`serve --drain-seconds`, `--shutdown-timeout`).
public struct ShutdownTiming: Sendable {
    /// How long the node keeps serving after SIGTERM while `/readyz` answers 503, so a load balancer takes it out of
    /// rotation before its listener closes (longer than the balancer's check interval times its fall count).
    public var drain: Duration
    /// How long requests in flight and background work have to finish once the listener is closed.
    public var timeout: Duration

    public init(drain: Duration = .zero, timeout: Duration = .seconds(30)) {
        self.drain = drain
        self.timeout = timeout
    }
}
