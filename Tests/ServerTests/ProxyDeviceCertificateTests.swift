import Crypto
import Foundation
import InternetAccess
import NIOCore
import NIOPosix
import NIOSSL
import SwiftASN1
import Synchronization
import Testing
@testable import Server
import TesseraCore
import TesseraTesting
import X509

/// Device certificates as proxy authentication, over real TLS: `tessera proxy`'s TLS listener (its certificate made by
/// `TLSMaterial` as serve's is), NIOSSL clients presenting certificates from the tenant's real device CA, and the
/// gatekeeper deciding with the store, Conditional Access and the filtering policies behind it.
@Suite("The proxy's TLS listener: device certificates as proxy authentication")
struct ProxyDeviceCertificateTests {
    typealias P = NetworkAccessPolicyTests
    typealias D = CrossTenantDeviceTrustTests

    /// What a test gets: the proxy's TLS port, the origin's port, the CA to trust the proxy by, and the recorder.
    struct Proxy {
        let port: Int
        let originPort: Int
        let caPath: String
        let recorder: TrafficRecorder
    }

    /// Runs a proxy whose TLS listener uses a certificate from `TLSMaterial` (a local CA, as `serve` makes), and a plain
    /// origin that answers every request `200 hello`.
    static func withProxy(_ h: Harness, _ body: (Proxy) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-proxy-tls-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let material = try TLSMaterial.loadOrCreate(directory: folder.path, hosts: ["127.0.0.1"])
        let origin = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(HelloOrigin()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let originPort = try #require(origin.localAddress?.port)
        var configuration = ProxyConfiguration(host: "127.0.0.1", port: 0)
        configuration.httpPorts.insert(originPort)
        try configuration.addResolve("example.test:\(originPort):127.0.0.1")
        configuration.secureListener = try ProxyConfiguration.SecureListener(
            host: "127.0.0.1", port: 0, certificateChain: try NIOSSLCertificate.fromPEMFile(material.certificatePath),
            privateKey: try NIOSSLPrivateKey(file: material.keyPath, format: .pem))
        let recorder = TrafficRecorder(store: h.app.store)
        let gate = NetworkAccessGatekeeper(app: h.app, catalog: try AICatalog.bundled(year: 2026), issuerBase: Harness.base)
        let proxy = ForwardProxy(configuration: configuration, gatekeeper: gate, recorder: recorder, now: { h.clock.now })
        let bound = Mutex<Int?>(nil)
        let task = Task { try await proxy.run(onSecureBound: { address in bound.withLock { $0 = address.port } }) }
        var port: Int?
        for _ in 0..<500 where port == nil {
            try await Task.sleep(for: .milliseconds(10))
            port = bound.withLock { $0 }
        }
        defer { task.cancel() }
        do {
            try await body(Proxy(port: try #require(port), originPort: originPort, caPath: material.caPath, recorder: recorder))
        } catch {
            try? await origin.close()
            throw error
        }
        try await origin.close()
    }

    /// A client of the TLS listener: trusts the proxy's CA, presents `certificate` (DER and key) when given, sends
    /// `request` and reads until the proxy closes.
    static func send(_ proxy: Proxy, certificate: (der: [UInt8], key: P256.Signing.PrivateKey)?, _ request: String) async throws -> String {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(proxy.caPath))
        if let certificate {
            tls.certificateChain = [.certificate(try NIOSSLCertificate(bytes: certificate.der, format: .der))]
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(certificate.key.pemRepresentation.utf8), format: .pem))
        }
        let context = try NIOSSLContext(configuration: tls)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: proxy.port) { channel in
            channel.eventLoop.makeCompletedFuture {
                // The proxy's certificate names localhost and 127.0.0.1, as serve's does.
                try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: "localhost"))
                return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: request))
            var out: [UInt8] = []
            do {
                for try await var buffer in inbound { out += buffer.readBytes(length: buffer.readableBytes) ?? [] }
            } catch let error as NIOSSLError where error == .uncleanShutdown {}
            return String(decoding: out, as: UTF8.self)
        }
    }

    static func get(_ proxy: Proxy, token: String? = nil) -> String {
        "GET http://example.test:\(proxy.originPort)/page HTTP/1.1\r\nHost: example.test:\(proxy.originPort)\r\n"
            + (token.map { "Proxy-Authorization: Bearer \($0)\r\n" } ?? "") + "Connection: close\r\n\r\n"
    }

    /// The tenant's traffic records once `count` are written (the recorder flushed until then).
    static func records(_ h: Harness, _ proxy: Proxy, count: Int) async throws -> [StoredObject] {
        let tenant = h.tenant.tenantId
        for _ in 0..<200 {
            try await proxy.recorder.flush()
            let found = try await h.app.store.read { tx in try await tx.query(ObjectQuery(tenant: tenant, kinds: [.networkAccessTraffic])) }
            if found.count >= count { return found.sorted { ($0.body["createdDateTime"]?.stringValue ?? "", $0.id) < ($1.body["createdDateTime"]?.stringValue ?? "", $1.id) } }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("fewer than \(count) traffic records")
        return []
    }

    /// A device of the tenant (its certificate from the real device CA), owned by `owner` when given.
    static func device(_ h: Harness, owner: String?, trustType: String = "ServerAd") async throws -> D.Device {
        let device = try await D.register(h, tenant: h.tenant.tenantId, trustType: trustType, isCompliant: false)
        if let owner {
            try await h.app.directory.addLink(tenant: h.tenant.tenantId, source: device.objectID, relation: "owners", target: owner,
                                              actor: DeviceRegistration.actor)
        }
        return device
    }

    @Test("a device certificate from the tenant's device CA authenticates the device's registered owner, or the device alone when it has none; the record carries the device")
    func deviceCertificateAuthenticates() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let alice = try await AdminCenterTests.createUser(h, admin, "alice")
            let device = try await Self.device(h, owner: alice), computer = try await Self.device(h, owner: nil)
            try await Self.withProxy(h) { proxy in
                let answer = try await Self.send(proxy, certificate: (device.der, device.key), Self.get(proxy))
                h.clock.advance(1)
                #expect(answer.hasPrefix("HTTP/1.1 200 "), "\(answer)")
                #expect(answer.hasSuffix("hello"))
                let alone = try await Self.send(proxy, certificate: (computer.der, computer.key), Self.get(proxy))
                #expect(alone.hasPrefix("HTTP/1.1 200 "), "\(alone)")
                let records = try await Self.records(h, proxy, count: 2)
                #expect(records.last?.body["deviceId"]?.stringValue == computer.deviceID)
                #expect(records.last?.body["userId"] == .null)
                let record = try #require(records.first)
                #expect(record.body["userId"]?.stringValue == alice)
                #expect(record.body["userPrincipalName"]?.stringValue == "alice@contoso.test")
                #expect(record.body["deviceId"]?.stringValue == device.deviceID)
                #expect(record.body["deviceOperatingSystem"]?.stringValue == "Windows")
                #expect(record.body["deviceOperatingSystemVersion"]?.stringValue == "10.0.26100")
                #expect(record.body["action"]?.stringValue == "allow")
            }
        }
    }

    @Test("refused with 407 and a reason: no credential, another CA's certificate, an expired one, a disabled owner, a disabled, deleted or re-keyed device")
    func refusals() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let alice = try await AdminCenterTests.createUser(h, admin, "alice")
            let tenant = h.tenant.tenantId
            let bob = try await AdminCenterTests.createUser(h, admin, "bob")
            let bobs = try await Self.device(h, owner: bob)
            #expect(await h.graph("PATCH", "users/\(bob)", token: admin, json: ["accountEnabled": false]).status == 204)
            let disabled = try await Self.device(h, owner: alice), deleted = try await Self.device(h, owner: alice)
            let rekeyed = try await Self.device(h, owner: alice)
            // A certificate made to look like the tenant's CA's (the same issuer name, another key), and one of a CA of
            // no tenant here.
            let foreignKey = P256.Signing.PrivateKey(), now = h.clock.now
            let foreign = try Certificate(
                version: .v3, serialNumber: .init(), publicKey: .init(foreignKey.publicKey), notValidBefore: now.addingTimeInterval(-60),
                notValidAfter: now.addingTimeInterval(86_400), issuer: try DistinguishedName { CommonName("MS-Organization-Access"); OrganizationalUnitName(tenant) },
                subject: try DistinguishedName { CommonName(disabled.deviceID) }, signatureAlgorithm: .ecdsaWithSHA256, extensions: .init(),
                issuerPrivateKey: .init(P256.Signing.PrivateKey()))
            let stranger = try await DeviceCertificateAuthority.loadOrCreate(tenant: UUID().uuidString.lowercased(), store: h.app.store, sealing: h.app.keySealing, now: now)
            let strangers = try stranger.issue(for: try DeviceRegistrationTests.csr(foreignKey), deviceID: disabled.deviceID, now: now)
            // The tenant's own CA, but eleven years ago: expired.
            let authority = try await DeviceCertificateAuthority.loadOrCreate(tenant: tenant, store: h.app.store, sealing: h.app.keySealing, now: h.clock.now)
            let oldKey = P256.Signing.PrivateKey()
            let expired = try authority.issue(for: try DeviceRegistrationTests.csr(oldKey), deviceID: disabled.deviceID,
                                              now: h.clock.now.addingTimeInterval(-11 * 365 * 86_400))
            #expect(await h.graph("PATCH", "devices/\(disabled.objectID)", token: admin, json: ["accountEnabled": false]).status == 204)
            #expect(await h.graph("DELETE", "devices/\(deleted.objectID)", token: admin).status == 204)
            // Registered again with another key: the first certificate is no longer listed.
            let newKey = P256.Signing.PrivateKey()
            let replacement = try authority.issue(for: try DeviceRegistrationTests.csr(newKey), deviceID: rekeyed.deviceID, now: h.clock.now)
            let replacementDER = try replacement.derBytes
            let thumbprint = Insecure.SHA1.hash(data: replacementDER).map { String(format: "%02X", $0) }.joined()
            _ = try await h.app.directory.update(tenant: tenant, id: rekeyed.objectID, kind: .device, patch: [
                "alternativeSecurityIds": [try DeviceRegistration.alternativeSecurityID(replacement, thumbprint: thumbprint)]],
                actor: DeviceRegistration.actor, allowReadOnly: true)

            try await Self.withProxy(h) { proxy in
                let cases: [(String, (der: [UInt8], key: P256.Signing.PrivateKey)?, String, String?)] = [
                    ("nothing", nil, "Access token is empty.", nil),
                    ("an impostor CA", (try foreign.derBytes, foreignKey),
                     "The certificate was not issued by this tenant's device certificate authority.", nil),
                    ("no tenant's CA", (try strangers.derBytes, foreignKey),
                     "The client certificate was not issued by a device certificate authority of this deployment.", nil),
                    ("expired", (try expired.derBytes, oldKey), "The device certificate is outside its validity period.", disabled.deviceID),
                    ("a disabled owner", (bobs.der, bobs.key), "The registered owner of the device WS-\(bobs.deviceID.prefix(4)) is disabled or deleted.",
                     bobs.deviceID),
                    ("disabled", (disabled.der, disabled.key), "The device \(disabled.deviceID) is disabled.", disabled.deviceID),
                    ("deleted", (deleted.der, deleted.key), "The device \(deleted.deviceID) no longer exists.", deleted.deviceID),
                    ("re-keyed", (rekeyed.der, rekeyed.key),
                     "The device \(rekeyed.deviceID) no longer lists this certificate: it was replaced or revoked.", rekeyed.deviceID),
                ]
                var recorded: [String] = []
                for (name, certificate, reason, deviceID) in cases {
                    let answer = try await Self.send(proxy, certificate: certificate, Self.get(proxy))
                    h.clock.advance(1)  // records in order
                    #expect(answer.hasPrefix("HTTP/1.1 407 "), "\(name): \(answer)")
                    #expect(answer.contains("Proxy-Authenticate: Bearer"), "\(name)")
                    let body = try JSONParser.parse(Array((answer.components(separatedBy: "\r\n\r\n").last ?? "").utf8))
                    #expect(body["error"]?["message"]?.stringValue == reason, "\(name): \(answer)")
                    if let deviceID { recorded.append(deviceID) }
                }
                // Each refusal of a device the tenant's CA named is in the tenant's traffic log, as a block.
                let records = try await Self.records(h, proxy, count: recorded.count)
                #expect(records.map { $0.body["deviceId"]?.stringValue ?? "" } == recorded)
                #expect(records.allSatisfy { $0.body["action"]?.stringValue == "block" && $0.body["userId"] == .null })
                // The new certificate of the re-keyed device is the one that counts now.
                let answer = try await Self.send(proxy, certificate: (replacementDER, newKey), Self.get(proxy))
                #expect(answer.hasPrefix("HTTP/1.1 200 "), "\(answer)")
            }
        }
    }

    @Test("a rotated device CA: a running proxy accepts the certificates of the previous CA and of the new one, and refuses the previous CA's with the reason once it is retired")
    func rotatedDeviceCA() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let alice = try await AdminCenterTests.createUser(h, admin, "alice")
            let tenant = h.tenant.tenantId, store = h.app.store, sealing = h.app.keySealing
            let before = try await Self.device(h, owner: alice)
            let old = try #require(try await DeviceCertificateAuthority.load(tenant: tenant, store: store, sealing: sealing)).certificate
            try await Self.withProxy(h) { proxy in
                // The proxy is running when the CA is rotated and when the previous one is retired: it reads them at each connection.
                _ = try await DeviceCertificateAuthority.rotate(tenant: tenant, store: store, sealing: sealing, now: h.clock.now)
                let after = try await Self.device(h, owner: alice)
                let afterCertificate = try Certificate(derEncoded: after.der)
                #expect(!old.publicKey.isValidSignature(afterCertificate.signature, for: afterCertificate), "registered after: the new CA's")
                for device in [before, after] {
                    let answer = try await Self.send(proxy, certificate: (device.der, device.key), Self.get(proxy))
                    h.clock.advance(1)
                    #expect(answer.hasPrefix("HTTP/1.1 200 "), "\(answer)")
                }

                let retiredAt = h.clock.now
                _ = try await DeviceCertificateAuthority.retire(tenant: tenant, store: store, now: retiredAt, thumbprint: nil)
                let refused = try await Self.send(proxy, certificate: (before.der, before.key), Self.get(proxy))
                h.clock.advance(1)
                #expect(refused.hasPrefix("HTTP/1.1 407 "), "\(refused)")
                let body = try JSONParser.parse(Array((refused.components(separatedBy: "\r\n\r\n").last ?? "").utf8))
                #expect(body["error"]?["message"]?.stringValue == "The device certificate was issued by this tenant's previous device certificate "
                    + "authority, retired on \(Timestamp.format(retiredAt)): the device must register again for a certificate from the current one.",
                        "\(refused)")
                let still = try await Self.send(proxy, certificate: (after.der, after.key), Self.get(proxy))
                #expect(still.hasPrefix("HTTP/1.1 200 "), "\(still)")
                let records = try await Self.records(h, proxy, count: 4)
                #expect(records.map { $0.body["action"]?.stringValue } == ["allow", "allow", "block", "allow"])
                #expect(records.map { $0.body["deviceId"]?.stringValue } == [before.deviceID, after.deviceID, before.deviceID, after.deviceID])
            }
        }
    }

    @Test("Conditional Access sees the device: a policy asking for a hybrid joined device refuses a token alone and admits the device's certificate, with or without the token")
    func conditionalAccessSeesTheDevice() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let alice = try await AdminCenterTests.createUser(h, admin, "alice")
            let joined = try await Self.device(h, owner: alice), registered = try await Self.device(h, owner: alice, trustType: "Workplace")
            let policy = await h.graph("POST", "identity/conditionalAccess/policies", token: admin, json: [
                "displayName": "Hybrid joined devices for the internet", "state": "enabled",
                "conditions": ["applications": ["includeApplications": [.string(ConditionalAccessEngine.internetAccessAppID)]],
                               "users": ["includeUsers": [.string(alice)]]],
                "grantControls": ["operator": "OR", "builtInControls": ["domainJoinedDevice"]]])
            #expect(policy.status == 201, "\(policy.text)")
            let client = try await TokenGrantHardeningTests.webApp(h, admin)
            let token = try await P.userToken(h, userID: alice, client: client)
            try await Self.withProxy(h) { proxy in
                let alone = try await Self.send(proxy, certificate: nil, Self.get(proxy, token: token))
                h.clock.advance(1)
                #expect(alone.hasPrefix("HTTP/1.1 403 "), "\(alone)")
                #expect(alone.contains("requires a Microsoft Entra hybrid joined device for internet access, which your access token does not show"))
                let notJoined = try await Self.send(proxy, certificate: (registered.der, registered.key), Self.get(proxy))
                #expect(notJoined.hasPrefix("HTTP/1.1 403 "), "\(notJoined)")
                #expect(notJoined.contains("which this connection does not show"))
                h.clock.advance(1)
                let withDevice = try await Self.send(proxy, certificate: (joined.der, joined.key), Self.get(proxy))
                #expect(withDevice.hasPrefix("HTTP/1.1 200 "), "\(withDevice)")
                h.clock.advance(1)
                let withBoth = try await Self.send(proxy, certificate: (joined.der, joined.key), Self.get(proxy, token: token))
                #expect(withBoth.hasPrefix("HTTP/1.1 200 "), "\(withBoth)")
                let records = try await Self.records(h, proxy, count: 4)
                #expect(records.map { $0.body["action"]?.stringValue } == ["block", "block", "allow", "allow"])
                #expect(records.map { $0.body["deviceId"]?.stringValue } == [nil, registered.deviceID, joined.deviceID, joined.deviceID])
            }
        }
    }
}

/// An origin that answers every request `200 hello` and closes.
final class HelloOrigin: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var received: [UInt8] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        received += buffer.readBytes(length: buffer.readableBytes) ?? []
        guard String(decoding: received, as: UTF8.self).contains("\r\n\r\n") else { return }
        let channel = context.channel
        let answer = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
        context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(string: answer))).whenComplete { _ in channel.close(promise: nil) }
    }
}
