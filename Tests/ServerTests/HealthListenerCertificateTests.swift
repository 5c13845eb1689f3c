import Crypto
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import SwiftASN1
import Synchronization
import Testing
import X509
@testable import Server
import TesseraCore
import TesseraTesting

/// `serve --tls-cert/--tls-key --health-listen`: the health listener presents the organisation's certificate, as the
/// main listener does, and a renewal the main listener reloads from the next handshake on.
@Suite struct HealthListenerCertificateTests {
    /// The public key of the certificate the listener on `port` presents in a TLS handshake (which then fails, as
    /// this client has no agent certificate: the server's certificate comes first).
    static func presentedKey(port: Int) async throws -> Certificate.PublicKey? {
        let seen = Mutex<[UInt8]?>(nil)
        let context = try NIOSSLContext(configuration: .makeClientConfiguration())
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: "localhost") { chain, promise in
                        seen.withLock { $0 = try? chain.first?.toDERBytes() }
                        promise.succeed(.certificateVerified)
                    })
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        defer { channel.close(promise: nil) }
        for _ in 0..<250 where seen.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(20)) }
        guard let der = seen.withLock({ $0 }) else { return nil }
        return try Certificate(derEncoded: der).publicKey
    }

    @Test func theListenerPresentsTheServedCertificateAndItsRenewal() async throws {
        try await Harness.run { h in
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-health-tls-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let certificatePath = folder.appendingPathComponent("fullchain.pem").path, keyPath = folder.appendingPathComponent("privkey.pem").path
            func write(_ key: P256.Signing.PrivateKey) throws {
                let pem = try ServerCertificateTests.issue([.dnsName("localhost"), ServerCertificateTests.ip([127, 0, 0, 1])], key: key)
                try Data(pem.utf8).write(to: URL(fileURLWithPath: certificatePath))
                try Data(key.pemRepresentation.utf8).write(to: URL(fileURLWithPath: keyPath))
            }
            let first = P256.Signing.PrivateKey(), second = P256.Signing.PrivateKey()
            try write(first)
            let served = try ServerTLS(certificatePath: certificatePath, keyPath: keyPath, host: "localhost", clock: TestClock(), reloadInterval: nil)

            let (ready, announce) = AsyncStream.makeStream(of: String.self)
            let listener = HealthListener(app: h.app, host: "127.0.0.1", port: 0, served: served) { announce.yield($0) }
            try await withThrowingTaskGroup { group in
                group.addTask { try await listener.run() }
                var urls = ready.makeAsyncIterator()
                let url = try #require(await urls.next())
                let port = try #require(URL(string: url)?.port)
                #expect(try await Self.presentedKey(port: port) == Certificate.PublicKey(first.publicKey))

                try write(second)
                #expect(served.reload() == .replaced)
                #expect(try await Self.presentedKey(port: port) == Certificate.PublicKey(second.publicKey))
                group.cancelAll()
            }
        }
    }
}
