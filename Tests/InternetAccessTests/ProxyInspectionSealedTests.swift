import Foundation
import NIOSSL
import Store
import Testing
import TesseraCore
import TesseraTesting
@testable import InternetAccess

/// TLS inspection with the tenant's inspection CA sealed by the key-encryption key: ciphertext in the store, leaves
/// minted from it that clients trust, refused (and left as it is) by a proxy with another key or none, and sealed on
/// first use when it was made before the proxy had a key.
@Suite("TLS inspection with a sealed CA")
struct ProxyInspectionSealedTests {
    static let otherKek = try! KeyEncryptionKey(base64: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")

    /// The tenant's inspection CA setting as the store holds it.
    static func stored(_ proxy: ProxyInspectionTests.Proxy) async throws -> JSONValue {
        let key = InspectionCertificateAuthority.sealedSettingKeys[0]
        return try #require(try await proxy.store.read { tx in try await tx.setting(tenant: proxy.tenant, key: key) })
    }

    static func isSealed(_ value: JSONValue) -> Bool {
        KeyEncryptionKey.isSealed(value) && !value.serialized.contains("PRIVATE KEY") && !value.serialized.contains("CERTIFICATE")
    }

    /// An inspected request through the proxy, the client trusting the CA the proxy signs with (the proxy and BoringSSL
    /// check the leaves at the real time, as the other proxy tests do).
    static func inspectedRequestPasses(_ proxy: ProxyInspectionTests.Proxy) async throws {
        let trust = try await proxy.inspectionTrust()
        let (answer, text) = try await ProxyInspectionTests.request(proxy.port, host: "api.openai.com", port: proxy.goodOrigin, trust: trust,
                                                                    ProxyInspectionTests.chat("What is the capital of France?"))
        #expect(answer == "HTTP/1.1 200 Connection established\r\n\r\n")
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n") && text.contains("origin saw:\nPOST /v1/chat/completions HTTP/1.1\r\n"), "\(text.prefix(200))")
    }

    @Test("with a key-encryption key the inspection CA is ciphertext in the store, inspected connections are minted from it, and a proxy with another key or none is refused without a change")
    func sealedCA() async throws {
        try await ProxyInspectionTests.run(sealing: InspectionCARotationTests.sealing(true)) { proxy in
            try await Self.inspectedRequestPasses(proxy)
            let sealed = try await Self.stored(proxy)
            #expect(Self.isSealed(sealed), "\(sealed.serialized.prefix(60))")
            for sealing in [KeySealing(keyEncryption: Self.otherKek), KeySealing(keyEncryption: nil)] {
                let other = try TLSInspector(configuration: proxy.inspector.configuration, store: proxy.store, sealing: sealing)
                await #expect(throws: KeyEncryptionError.self) { try await other.authority(tenant: proxy.tenant, now: TestClock.start) }
            }
            #expect(try await Self.stored(proxy) == sealed)
        }
    }

    @Test("a CA made before the proxy had a key is sealed on first use with one, the same CA")
    func plainSealedOnFirstUse() async throws {
        try await ProxyInspectionTests.run { proxy in
            let plain = try await proxy.inspector.authority(tenant: proxy.tenant, now: TestClock.start)
            #expect(try await Self.stored(proxy).serialized.contains("PRIVATE KEY"))
            let keyed = try TLSInspector(configuration: proxy.inspector.configuration, store: proxy.store,
                                         sealing: InspectionCARotationTests.sealing(true))
            #expect(try await keyed.authority(tenant: proxy.tenant, now: TestClock.start).pem == (try plain.pem))
            #expect(Self.isSealed(try await Self.stored(proxy)))
            // The plain proxy no longer opens it.
            let again = try TLSInspector(configuration: proxy.inspector.configuration, store: proxy.store, sealing: KeySealing(keyEncryption: nil))
            await #expect(throws: KeyEncryptionError.self) { try await again.authority(tenant: proxy.tenant, now: TestClock.start) }
        }
    }
}
