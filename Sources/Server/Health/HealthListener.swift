import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
public import ServiceLifecycle
import Synchronization
import SwiftASN1
import TesseraCore
import X509

/// The health listener (`serve --health-listen HOST:PORT`): its own port, where Connect Health agents upload over
/// mutual TLS. TLS 1.2 and 1.3 only, with ECDHE and AES-GCM or ChaCha20-Poly1305 (TLS 1.3's suites are those too);
/// a TLS 1.0 or 1.1 hello is refused with the `protocol_version` alert (70). Every agent presents the client
/// certificate its tenant's health CA issued at registration; a connection without one, or with any other, fails in
/// the handshake. Refused handshakes are counted in `tessera_health_tls_handshakes_refused_total{reason}`.
///
/// The listener presents the deployment's server certificate: the organisation's (`serve --tls-cert/--tls-key`, an
/// agent connects to the same host name) or the data folder's local CA's. It follows ``ServerTLS``: a renewal the
/// main listener reloads reaches the next agent's handshake here too.
///
/// One request a connection: `POST /upload` with the agent's JSON report (at most 1 MiB).
///
/// An address holds at most ``maxConnectionsPerAddress`` connections at once: one more is closed as it is accepted,
/// before any TLS, and counted as `tessera_health_tls_handshakes_refused_total{reason="connection_limit"}`, so a host
/// that opens connections and never finishes them cannot take the listener from the agents elsewhere.
public struct HealthListener: Service {
    let app: TesseraApp
    let host: String
    let port: Int
    let tls: Source
    let maxConnectionsPerAddress: Int
    let onReady: @Sendable (_ uploadURL: String) -> Void
    let logger = Logger(label: "tessera.health")

    static let maxBodyBytes = 1024 * 1024
    static let idleTimeout = TimeAmount.seconds(30)
    /// An agent uploads over one connection every few minutes; a few agents behind one NAT address stay far below this.
    public static let defaultMaxConnectionsPerAddress = 16

    /// Where the listener's certificate comes from.
    enum Source: Sendable {
        /// The data folder's local CA's server certificate, read when the listener starts.
        case material(TLSMaterial)
        /// The certificate the main listener serves, reloaded with it.
        case served(ServerTLS)
    }

    /// A listener on `host:port` with the data folder's local server certificate; `onReady` hears the upload URL once bound.
    public init(app: TesseraApp, host: String, port: Int, tls: TLSMaterial,
                maxConnectionsPerAddress: Int = Self.defaultMaxConnectionsPerAddress,
                onReady: @escaping @Sendable (String) -> Void = { _ in }) {
        self.init(app: app, host: host, port: port, source: .material(tls), maxConnectionsPerAddress: maxConnectionsPerAddress, onReady: onReady)
    }

    /// A listener on `host:port` presenting the certificate `served` holds (the organisation's, with `serve
    /// --tls-cert`), a reloaded one from the next handshake on.
    public init(app: TesseraApp, host: String, port: Int, served: ServerTLS,
                maxConnectionsPerAddress: Int = Self.defaultMaxConnectionsPerAddress,
                onReady: @escaping @Sendable (String) -> Void = { _ in }) {
        self.init(app: app, host: host, port: port, source: .served(served), maxConnectionsPerAddress: maxConnectionsPerAddress, onReady: onReady)
    }

    init(app: TesseraApp, host: String, port: Int, source: Source, maxConnectionsPerAddress: Int,
         onReady: @escaping @Sendable (String) -> Void) {
        precondition(maxConnectionsPerAddress > 0)
        self.app = app
        self.host = host
        self.port = port
        self.tls = source
        self.maxConnectionsPerAddress = maxConnectionsPerAddress
        self.onReady = onReady
    }

    /// The listener's TLS: TLS 1.2 to 1.3, modern suites only, a client certificate required (checked by
    /// ``ClientCertificates`` against the tenant's health CA).
    static func tlsConfiguration(_ certificate: ServerCertificate) throws -> TLSConfiguration {
        var configuration = try certificate.serverConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.maximumTLSVersion = .tlsv13
        configuration.cipherSuiteValues = [
            .TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, .TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, .TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            .TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, .TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, .TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ]
        configuration.certificateVerification = .noHostnameVerification
        return configuration
    }

    struct Connection: Sendable {
        let channel: any Channel
        let stream: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>
    }

    public func run() async throws {
        let contexts = try HealthTLSContexts(served: try tls.served())
        let certificates = ClientCertificates(app: app)
        let telemetry = app.telemetry
        let limit = AcceptedConnectionsPerAddress(limit: maxConnectionsPerAddress, telemetry: telemetry)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(limit) }
            }
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = NIOSSLServerHandler(context: contexts.context()) { chain, promise in certificates.verify(chain, promise) }
                    try channel.pipeline.syncOperations.addHandlers([
                        IdleStateHandler(readTimeout: Self.idleTimeout), handler, RefusedHandshakes(telemetry: telemetry),
                    ])
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    return Connection(channel: channel, stream: try NIOAsyncChannel(wrappingChannelSynchronously: channel))
                }
            }
        let url = uploadURL(boundPort: server.channel.localAddress?.port ?? port)
        try await HealthService(directory: app.directory, clock: app.clock).publish(uploadURL: url)
        logger.info("Health listener on \(host):\(server.channel.localAddress?.port ?? port) (agents upload to \(url))")
        onReady(url)
        await withGracefulShutdownHandler {
            do {
                try await server.executeThenClose { connections in
                    try await withThrowingDiscardingTaskGroup { group in
                        for try await connection in connections {
                            group.addTask { await self.serve(connection) }
                        }
                    }
                }
            } catch {
                logger.debug("Health listener stopped: \(error)")
            }
        } onGracefulShutdown: {
            server.channel.close(promise: nil)
        }
    }

    /// The URL agents are told to upload to: the deployment's canonical host name on the listener's port.
    func uploadURL(boundPort: Int) -> String {
        let host = URL(string: app.network.publicURLs.first ?? "")?.host ?? self.host
        let bracketed = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        return "https://\(bracketed):\(boundPort)/upload"
    }

    /// Reads one request, answers it and closes the connection.
    func serve(_ connection: Connection) async {
        do {
            try await connection.stream.executeThenClose { inbound, outbound in
                var head: HTTPRequestHead?
                var body = ByteBuffer()
                for try await part in inbound {
                    switch part {
                    case .head(let h):
                        head = h
                    case .body(var chunk):
                        guard body.readableBytes + chunk.readableBytes <= Self.maxBodyBytes else {
                            try await Self.write(HealthError(status: 413, code: "Request_EntityTooLarge",
                                                             message: "An upload may hold at most \(Self.maxBodyBytes) bytes."), to: outbound)
                            return
                        }
                        body.writeBuffer(&chunk)
                    case .end:
                        guard let head else { return }
                        let (status, json) = await respond(head, body: Array(buffer: body), channel: connection.channel)
                        try await Self.write(status: status, json: json, to: outbound)
                        return
                    }
                }
            }
        } catch {
            logger.debug("Health connection ended: \(error)")
        }
    }

    func respond(_ head: HTTPRequestHead, body: [UInt8], channel: any Channel) async -> (Int, JSONValue) {
        do {
            guard head.uri == "/upload" || head.uri.hasPrefix("/upload?") else {
                throw HealthError(status: 404, code: "Request_ResourceNotFound", message: "Agents upload to POST /upload.")
            }
            guard head.method == .POST else {
                throw HealthError(status: 405, code: "Request_MethodNotAllowed", message: "Agents upload with POST.")
            }
            // The handshake verified this certificate against its tenant's health CA (``ClientCertificates``).
            guard let peer = try await channel.nioSSL_peerCertificate().get(),
                  let leaf = try? Certificate(derEncoded: try peer.toDERBytes()),
                  let identity = HealthCertificateAuthority.agentIdentity(leaf) else {
                throw HealthError.unauthorized("A health agent's client certificate is required.")
            }
            let service = HealthService(directory: app.directory, clock: app.clock)
            let answer = try await service.receive(tenant: identity.tenant, agent: identity.agent,
                                                   thumbprint: try HealthCertificateAuthority.thumbprint(leaf), body: body)
            app.telemetry.healthUpload(result: "accepted")
            return (200, answer)
        } catch let error as HealthError {
            app.telemetry.healthUpload(result: error.status == 426 ? "agent_too_old" : "refused")
            return (error.status, error.body)
        } catch {
            logger.error("Health upload failed: \(String(describing: error))")
            return (500, HealthError(status: 500, code: "Service_InternalServerError", message: "An unexpected error occurred.").body)
        }
    }

    static func write(_ error: HealthError, to outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>) async throws {
        try await write(status: error.status, json: error.body, to: outbound)
    }

    static func write(status: Int, json: JSONValue, to outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>) async throws {
        let bytes = json.serializedBytes
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
        headers.add(name: "Content-Length", value: "\(bytes.count)")
        headers.add(name: "Connection", value: "close")
        headers.add(name: "Cache-Control", value: "no-store")
        try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)))
        try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: bytes))))
        try await outbound.write(.end(nil))
    }
}

extension HealthListener.Source {
    /// The certificate to present: the served one, or the local one read now.
    func served() throws -> ServerTLS {
        switch self {
        case .material(let material): try ServerTLS(material: material)
        case .served(let served): served
        }
    }
}

/// The health listener's TLS context for the certificate ``ServerTLS`` serves now: made again, with the listener's
/// own configuration, when a reload has replaced the certificate; until a new one makes a context, the last is kept.
final class HealthTLSContexts: Sendable {
    let served: ServerTLS
    private let current: Mutex<(chain: [UInt8], key: [UInt8], context: NIOSSLContext)>
    let logger = Logger(label: "tessera.health")

    init(served: ServerTLS) throws {
        self.served = served
        let certificate = served.certificate
        current = Mutex((certificate.chainPEM, certificate.keyPEM, try NIOSSLContext(configuration: HealthListener.tlsConfiguration(certificate))))
    }

    /// The context a connection accepted now shakes hands with.
    func context() -> NIOSSLContext {
        let certificate = served.certificate
        return current.withLock { current in
            guard current.chain != certificate.chainPEM || current.key != certificate.keyPEM else { return current.context }
            do {
                current = (certificate.chainPEM, certificate.keyPEM, try NIOSSLContext(configuration: HealthListener.tlsConfiguration(certificate)))
            } catch {
                current = (certificate.chainPEM, certificate.keyPEM, current.context)  // warned once for this pair
                logger.warning("the health listener keeps its previous certificate: the new one makes no TLS context", metadata: ["reason": .string("\(error)")])
            }
            return current.context
        }
    }
}

/// Checks an agent's client certificate during the handshake: it must name a tenant and an agent, and chain to that
/// tenant's health CA at the server's clock. Each tenant's CA is read from the store once.
final class ClientCertificates: Sendable {
    let app: TesseraApp
    private let authorities = Mutex<[String: HealthCertificateAuthority]>([:])

    init(app: TesseraApp) { self.app = app }

    func verify(_ chain: [NIOSSLCertificate], _ promise: EventLoopPromise<NIOSSLVerificationResult>) {
        guard let first = chain.first, let der = try? first.toDERBytes(), let leaf = try? Certificate(derEncoded: der),
              let identity = HealthCertificateAuthority.agentIdentity(leaf) else {
            promise.succeed(.failed)
            return
        }
        promise.completeWithTask {
            guard let ca = try await self.authority(tenant: identity.tenant) else { return .failed }
            return await ca.verify(leaf, now: self.app.clock.now) ? .certificateVerified : .failed
        }
    }

    func authority(tenant: String) async throws -> HealthCertificateAuthority? {
        if let known = authorities.withLock({ $0[tenant] }) { return known }
        guard let loaded = try await HealthCertificateAuthority.load(tenant: tenant, store: app.store, sealing: app.keySealing) else { return nil }
        authorities.withLock { $0[tenant] = loaded }
        return loaded
    }
}

/// On the listening channel, ahead of NIO's accept handler: each accepted connection takes a place of its remote
/// address (``ConnectionsPerAddress``, as the main server's) until it closes; one past the limit is closed at once and
/// never reaches TLS or the accept loop.
final class AcceptedConnectionsPerAddress: ChannelInboundHandler, Sendable {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel

    let connections: ConnectionsPerAddress
    let telemetry: Telemetry

    init(limit: Int, telemetry: Telemetry) {
        self.connections = ConnectionsPerAddress(limit: limit)
        self.telemetry = telemetry
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let connection = unwrapInboundIn(data)
        let address = connection.remoteAddress?.ipAddress ?? "unknown"
        guard connections.open(address) else {
            telemetry.healthHandshakeRefused(reason: "connection_limit")
            connection.close(promise: nil)
            return
        }
        let connections = self.connections
        connection.closeFuture.whenComplete { _ in connections.close(address) }
        context.fireChannelRead(data)
    }
}

/// Counts handshakes the listener refused, by reason, and closes connections that stay idle.
final class RefusedHandshakes: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny
    let telemetry: Telemetry

    init(telemetry: Telemetry) { self.telemetry = telemetry }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? NIOSSLError, case .handshakeFailed(let reason) = error {
            telemetry.healthHandshakeRefused(reason: Self.reason(String(describing: reason)))
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

    /// BoringSSL's reason, as a bounded label.
    static func reason(_ text: String) -> String {
        if text.contains("UNSUPPORTED_PROTOCOL") || text.contains("WRONG_VERSION_NUMBER") { return "protocol_version" }
        if text.contains("PEER_DID_NOT_RETURN_A_CERTIFICATE") { return "no_client_certificate" }
        if text.contains("CERTIFICATE_VERIFY_FAILED") { return "bad_client_certificate" }
        if text.contains("NO_SHARED_CIPHER") { return "no_shared_cipher" }
        return "other"
    }
}
