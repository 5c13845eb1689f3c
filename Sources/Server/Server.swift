import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import NIOSSL
import ServiceLifecycle
import TesseraCore

/// Runs Tessera's HTTP(S) server until cancelled (SIGINT/SIGTERM stop it gracefully).
public enum TesseraServer {
    /// Serves `app` on `host:port`, over TLS with `tls` unless it is nil.
    public static func run(app: TesseraApp, host: String, port: Int, tls: TLSMaterial?, syncInterval: Duration? = .seconds(1800),
                           onReady: @escaping @Sendable () -> Void = {}) async throws {
        let logger = Logger(label: "tessera.http")
        var services: [any Service] = [RetentionService(app: app)]
        if let syncInterval { services.append(SyncService(app: app, interval: syncInterval)) }
        let configuration = ApplicationConfiguration(address: .hostname(host, port: port), serverName: "Tessera")
        if let tls {
            var tlsConfiguration = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(tls.certificatePath).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: tls.keyPath, format: .pem)))
            tlsConfiguration.minimumTLSVersion = .tlsv12
            let application = Application(
                responder: TesseraResponder(app: app, scheme: "https"), server: try .tls(.http1(), tlsConfiguration: tlsConfiguration),
                configuration: configuration, services: services, onServerRunning: { _ in onReady() }, logger: logger)
            try await application.runService()
        } else {
            let application = Application(
                responder: TesseraResponder(app: app, scheme: "http"), server: .http1(), configuration: configuration,
                services: services, onServerRunning: { _ in onReady() }, logger: logger)
            try await application.runService()
        }
    }
}
