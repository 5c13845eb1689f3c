import Crypto
import Foundation
import InternetAccess
import NIOCore
import Synchronization
import Testing
import X509
@testable import Server
import TesseraCore
import TesseraTesting

/// `tessera proxy --listen-tls --tls-cert/--tls-key`: the TLS listener presents the given certificate and, once the
/// files are renewed and read again, the new one from the next handshake on.
@Suite struct ProxyCertificateReloadTests {
    @Test func theTLSListenerPresentsTheRenewedCertificate() async throws {
        try await Harness.run { h in
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-proxy-reload-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let certificatePath = folder.appendingPathComponent("fullchain.pem").path, keyPath = folder.appendingPathComponent("privkey.pem").path
            func write(_ key: P256.Signing.PrivateKey) throws {
                let pem = try ServerCertificateTests.issue([.dnsName("proxy.contoso.test")], key: key)
                try Data(pem.utf8).write(to: URL(fileURLWithPath: certificatePath))
                try Data(key.pemRepresentation.utf8).write(to: URL(fileURLWithPath: keyPath))
            }
            let first = P256.Signing.PrivateKey(), second = P256.Signing.PrivateKey()
            try write(first)
            // As `tessera proxy` makes it: no host name to cover (clients reach the proxy by names of their own).
            let served = try ServerTLS(certificatePath: certificatePath, keyPath: keyPath, host: nil, clock: TestClock(), reloadInterval: nil)
            var configuration = ProxyConfiguration(host: "127.0.0.1", port: 0)
            configuration.secureListener = try ProxyConfiguration.SecureListener(host: "127.0.0.1", port: 0, pem: { served.pem },
                                                                                 reloader: { await served.keepReloading() })
            let gate = NetworkAccessGatekeeper(app: h.app, catalog: try AICatalog.bundled(year: 2026), issuerBase: Harness.base)
            let proxy = ForwardProxy(configuration: configuration, gatekeeper: gate, recorder: TrafficRecorder(store: h.app.store), now: { h.clock.now })
            let bound = Mutex<Int?>(nil)
            let task = Task { try await proxy.run(onSecureBound: { address in bound.withLock { $0 = address.port } }) }
            defer { task.cancel() }
            var port: Int?
            for _ in 0..<500 where port == nil {
                try await Task.sleep(for: .milliseconds(10))
                port = bound.withLock { $0 }
            }
            let listening = try #require(port)
            #expect(try await HealthListenerCertificateTests.presentedKey(port: listening) == Certificate.PublicKey(first.publicKey))

            try write(second)
            #expect(served.reload() == .replaced)
            #expect(try await HealthListenerCertificateTests.presentedKey(port: listening) == Certificate.PublicKey(second.publicKey))
        }
    }
}
