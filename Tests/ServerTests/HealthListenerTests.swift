import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

/// The health listener over real sockets: TLS versions, client certificates and an upload, with TLS clients of
/// swift-nio-ssl (OpenSSL's s_client does the same from outside in `interop/test_health_agents.py`).
@Suite struct HealthListenerTests {
    /// One request over a new TLS connection; throws when the handshake fails.
    static func post(port: Int, tls: TLSConfiguration, body: [UInt8]) async throws -> (status: Int, body: [UInt8]) {
        let context = try NIOSSLContext(configuration: tls)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: "localhost"))
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/upload")
            head.headers.add(name: "Host", value: "localhost")
            head.headers.add(name: "Content-Length", value: "\(body.count)")
            try await outbound.write(.head(head))
            try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body))))
            try await outbound.write(.end(nil))
            var status = 0, received: [UInt8] = []
            for try await part in inbound {
                switch part {
                case .head(let h): status = Int(h.status.code)
                case .body(var buffer): received += buffer.readBytes(length: buffer.readableBytes) ?? []
                case .end: return (status, received)
                }
            }
            throw HealthError.badRequest("the connection closed without a response")
        }
    }

    static func client(_ material: TLSMaterial, key: String? = nil, certificate: String? = nil,
                       versions: ClosedRange<Int> = 12...13) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(material.caPath)
        let names: [Int: TLSVersion] = [10: .tlsv1, 11: .tlsv11, 12: .tlsv12, 13: .tlsv13]
        tls.minimumTLSVersion = names[versions.lowerBound]!
        tls.maximumTLSVersion = names[versions.upperBound]!
        if let key, let certificate {
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(key.utf8), format: .pem))
            tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(certificate.utf8)).map { .certificate($0) }
        }
        return tls
    }

    static func counted(_ h: Harness, _ line: String) async throws -> Bool {
        for _ in 0..<50 {
            if String(decoding: h.app.telemetry.exposition(), as: UTF8.self).contains(line) { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    @Test("TLS 1.0 and 1.1 are refused and counted as protocol_version; TLS 1.2 and 1.3 upload with the agent's certificate and not without")
    func listener() async throws {
        try await Harness.run { h in
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-health-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: folder) }
            let (material, key, certificate, agentID) = try await Self.registeredAgent(h, folder: folder)

            let (ready, announce) = AsyncStream.makeStream(of: String.self)
            let listener = HealthListener(app: h.app, host: "127.0.0.1", port: 0, tls: material) { announce.yield($0) }
            try await withThrowingTaskGroup { group in
                group.addTask { try await listener.run() }
                var urls = ready.makeAsyncIterator()
                let url = try #require(await urls.next())
                let port = try #require(URL(string: url)?.port)
                #expect(try await HealthService(directory: h.app.directory, clock: h.clock).uploadURL() == url)

                for old in [10, 11] {
                    await #expect(throws: (any Error).self) {
                        try await Self.post(port: port, tls: try Self.client(material, key: key.privateKeyPEM, certificate: certificate, versions: old...old),
                                            body: HealthTests.clean.serializedBytes)
                    }
                }
                #expect(try await Self.counted(h, #"tessera_health_tls_handshakes_refused_total{reason="protocol_version"} 2"#))

                for version in [12, 13] {
                    let response = try await Self.post(port: port, tls: try Self.client(material, key: key.privateKeyPEM, certificate: certificate,
                                                                                        versions: version...version),
                                                       body: HealthTests.clean.serializedBytes)
                    #expect(response.status == 200, "\(String(decoding: response.body, as: UTF8.self))")
                    await #expect(throws: (any Error).self) {
                        try await Self.post(port: port, tls: try Self.client(material, versions: version...version), body: HealthTests.clean.serializedBytes)
                    }
                }
                #expect(try await Self.counted(h, #"tessera_health_uploads_total{result="accepted"} 2"#))

                // A certificate from another tenant's CA fails the handshake.
                let stranger = try await HealthCertificateAuthority.loadOrCreate(tenant: "00000000-0000-0000-0000-0000000000bb", store: h.app.store, sealing: h.app.keySealing,
                                                                                 now: h.clock.now)
                let strangerKey = try HealthAgentKey.make(machineName: "elsewhere")
                let forged = try stranger.issue(try HealthCertificateAuthority.request(pem: strangerKey.certificateSigningRequestPEM),
                                                tenant: h.tenant.tenantId, agent: agentID, machineName: "sync01", now: h.clock.now)
                await #expect(throws: (any Error).self) {
                    try await Self.post(port: port, tls: try Self.client(material, key: strangerKey.privateKeyPEM,
                                                                         certificate: try HealthCertificateAuthority.pem(forged)),
                                        body: HealthTests.clean.serializedBytes)
                }
                #expect(try await Self.counted(h, #"tessera_health_tls_handshakes_refused_total{reason="bad_client_certificate"} 1"#))
                group.cancelAll()
            }
        }
    }

    /// A TCP connection from `source` that sends nothing (the start of a slow-handshake attack).
    static func idleConnection(from source: String, port: Int) async throws -> any Channel {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(to: try SocketAddress(ipAddress: source, port: 0))
            .connect(host: "127.0.0.1", port: port).get()
    }

    /// Whether `channel` is closed (by the server) within `limit`.
    /// The server's TLS material in `folder`, and a sync agent registered by a Hybrid Identity Administrator: its key
    /// and the certificate the registration returned.
    static func registeredAgent(_ h: Harness, folder: URL) async throws -> (TLSMaterial, HealthAgentKey, String, String) {
        let material = try TLSMaterial.loadOrCreate(directory: folder.path, hosts: [])
        let admin = try await h.caller(named: "hia", role: BuiltInRoles.hybridIdentityAdministrator)
        let key = try HealthAgentKey.make(machineName: "sync01")
        let made = try await HealthTests.beta(h, "POST", "agents", try HealthTests.registration(csr: key.certificateSigningRequestPEM), as: admin)
        return (material, key, try #require(made.json["certificate"]?.stringValue), made.json["id"]?.stringValue ?? "")
    }

    static func closes(_ channel: any Channel, within limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline, channel.isActive { try? await Task.sleep(for: .milliseconds(20)) }
        return !channel.isActive
    }

    @Test("an address holds at most its limit of connections: one more is closed before TLS and counted; an agent elsewhere still uploads")
    func connectionsPerAddressAreLimited() async throws {
        try await Harness.run { h in
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-health-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: folder) }
            let (material, key, certificate, _) = try await Self.registeredAgent(h, folder: folder)

            let (ready, announce) = AsyncStream.makeStream(of: String.self)
            let listener = HealthListener(app: h.app, host: "127.0.0.1", port: 0, tls: material, maxConnectionsPerAddress: 2) { announce.yield($0) }
            try await withThrowingTaskGroup { group in
                group.addTask { try await listener.run() }
                var urls = ready.makeAsyncIterator()
                let url = try #require(await urls.next())
                let port = try #require(URL(string: url)?.port)

                // 127.0.0.2 opens two connections and says nothing: both are held (the handshake waits for them).
                let held = [try await Self.idleConnection(from: "127.0.0.2", port: port),
                            try await Self.idleConnection(from: "127.0.0.2", port: port)]
                // A third from the same address is closed at once.
                let third = try await Self.idleConnection(from: "127.0.0.2", port: port)
                #expect(await Self.closes(third, within: .seconds(5)))
                #expect(try await Self.counted(h, #"tessera_health_tls_handshakes_refused_total{reason="connection_limit"} 1"#))
                #expect(!(await Self.closes(held[0], within: .milliseconds(300))) && held[1].isActive)

                // The agent, from 127.0.0.1, uploads meanwhile.
                let response = try await Self.post(port: port, tls: try Self.client(material, key: key.privateKeyPEM, certificate: certificate),
                                                   body: HealthTests.clean.serializedBytes)
                #expect(response.status == 200, "\(String(decoding: response.body, as: UTF8.self))")

                // A closed connection gives its place back.
                try await held[0].close()
                var admitted = false
                for _ in 0..<20 where !admitted {
                    let next = try await Self.idleConnection(from: "127.0.0.2", port: port)
                    admitted = !(await Self.closes(next, within: .milliseconds(300)))
                    if admitted { try await next.close() }
                }
                #expect(admitted)
                try await held[1].close()
                group.cancelAll()
            }
        }
    }
}
