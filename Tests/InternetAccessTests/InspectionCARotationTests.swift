import Foundation
import Store
import Testing
import TesseraCore
import X509
@testable import InternetAccess

/// Rotating the inspection CA: the new one published at once, signing after the overlap, the old one published until
/// its last leaf has expired; a running inspector follows without a restart. Each stored plain and sealed with a
/// key-encryption key (the CA and the pending rotation's next CA ciphertext in the store).
@Suite("Inspection CA rotation")
struct InspectionCARotationTests {
    static let kek = try! KeyEncryptionKey(base64: "q83vEjRWeJASNFZ4kBI0VniQEjRWeJASNFZ4kBI0Vng=")

    static func sealing(_ sealed: Bool) -> KeySealing { KeySealing(keyEncryption: sealed ? kek : nil) }

    /// Whether the tenant's inspection CA settings that are present are all sealed (no PEM in them), or all plain.
    static func stored(_ store: SQLDirectoryStore, tenant: String, sealed: Bool) async throws -> Bool {
        let values = try await store.read { tx in
            var values: [JSONValue] = []
            for key in InspectionCertificateAuthority.sealedSettingKeys {
                if let value = try await tx.setting(tenant: tenant, key: key) { values.append(value) }
            }
            return values
        }
        return !values.isEmpty && values.allSatisfy { value in
            sealed == (KeyEncryptionKey.isSealed(value) && !value.serialized.contains("BEGIN") && !value.serialized.contains("PRIVATE"))
        }
    }

    static func withStore(_ body: (SQLDirectoryStore, String) async throws -> Void) async throws {
        let store = try await SQLDirectoryStore.open(":memory:")
        try await store.migrate()
        let tenant = try await TenantProvisioner(directory: DirectoryService(store: store, clock: SystemTimeSource()))
            .create(name: "Contoso", domain: "contoso.test").tenantId
        do { try await body(store, tenant) } catch {
            try await store.shutdown()
            throw error
        }
        try await store.shutdown()
    }

    @Test("published at once, signing after the overlap, the old CA published until its leaves expire; one rotation at a time",
          arguments: [false, true])
    func rotation(sealed: Bool) async throws {
        let sealing = Self.sealing(sealed)
        try await Self.withStore { store, tenant in
            let t0 = Date(timeIntervalSince1970: 1_790_000_000)
            let old = try await InspectionCertificateAuthority.loadOrCreate(tenant: tenant, store: store, sealing: sealing, now: t0).certificate
            let day: TimeInterval = 86_400
            let rotated = try await InspectionCertificateAuthority.rotate(tenant: tenant, store: store, sealing: sealing, now: t0 + day, overlap: 7 * day)
            #expect(rotated.signing.certificate == old)
            #expect(try await Self.stored(store, tenant: tenant, sealed: sealed))
            #expect(rotated.published.count == 2 && rotated.published[0] == old && rotated.nextActiveFrom == t0 + 8 * day)
            let new = rotated.published[1]
            #expect(new.subject != old.subject && new.publicKey != old.publicKey)
            await #expect(throws: InspectionCertificateAuthority.RotationError.self) {
                try await InspectionCertificateAuthority.rotate(tenant: tenant, store: store, sealing: sealing, now: t0 + 2 * day, overlap: 7 * day)
            }
            // Still the old one during the overlap.
            #expect(try await InspectionCertificateAuthority.current(tenant: tenant, store: store, sealing: sealing, now: t0 + 7 * day).signing.certificate == old)
            // After it: the new one signs, the old one is still trusted for the leaves it signed.
            let after = try await InspectionCertificateAuthority.current(tenant: tenant, store: store, sealing: sealing, now: t0 + 8 * day + 1)
            #expect(after.signing.certificate == new && after.published == [new, old] && after.nextActiveFrom == nil)
            #expect(try await InspectionCertificateAuthority.loadOrCreate(tenant: tenant, store: store, sealing: sealing, now: t0 + 9 * day).certificate == new)
            // A week later (a leaf's life), only the new one.
            #expect(try await InspectionCertificateAuthority.current(tenant: tenant, store: store, sealing: sealing, now: t0 + 15 * day + 1).published == [new])
            // The next rotation is allowed again.
            #expect(try await InspectionCertificateAuthority.rotate(tenant: tenant, store: store, sealing: sealing, now: t0 + 16 * day, overlap: day).published.count == 2)
            await #expect(throws: InspectionCertificateAuthority.RotationError.self) {
                try await InspectionCertificateAuthority.rotate(tenant: tenant, store: store, sealing: sealing, now: t0 + 20 * day, overlap: 3600)
            }
            #expect(try await Self.stored(store, tenant: tenant, sealed: sealed))
        }
    }

    @Test("a running inspector mints its leaves from the new CA once the overlap ends, and not before", arguments: [false, true])
    func inspectorFollows(sealed: Bool) async throws {
        let sealing = Self.sealing(sealed)
        try await Self.withStore { store, tenant in
            let t0 = Date(timeIntervalSince1970: 1_790_000_000)
            let day: TimeInterval = 86_400
            let inspector = try TLSInspector(configuration: TLSInspectionConfiguration(prompts: PromptInspector(detector: try PromptDetector.bundled())),
                                             store: store, sealing: sealing)
            let first = try await inspector.leaf(tenant: tenant, host: "api.openai.com", now: t0)
            let old = try await InspectionCertificateAuthority.loadOrCreate(tenant: tenant, store: store, sealing: sealing, now: t0).certificate
            #expect(first.certificate.issuer == old.subject)
            let new = try await InspectionCertificateAuthority.rotate(tenant: tenant, store: store, sealing: sealing, now: t0, overlap: day).published[1]
            let during = try await inspector.leaf(tenant: tenant, host: "api.openai.com", now: t0 + 3600)
            #expect(during.certificate == first.certificate)
            let later = try await inspector.leaf(tenant: tenant, host: "api.openai.com", now: t0 + day + 120)
            #expect(later.certificate.issuer == new.subject && later.certificate != first.certificate)
            #expect(try await inspector.authority(tenant: tenant, now: t0 + day + 120).certificate == new)
            #expect(try await Self.stored(store, tenant: tenant, sealed: sealed))
        }
    }
}
