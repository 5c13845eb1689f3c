import Foundation
import InternetAccess
import Testing
@testable import Server
import TesseraCore
import TesseraTesting
import X509

/// The device, health and TLS inspection CAs share TenantPKI's load-or-create: a CA stored before it (a fixed P-256
/// key and certificate in the stored format `{"certificate": PEM, "key": PEM}`, made outside Tessera) still loads under
/// each setting key and issues leaves that chain to it; a setting that is not a CA is an error and is left as it is.
@Suite struct TenantCertificateAuthorityTests {
    static let keyPEM = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg2H4bdehTISaCeKoA
        G+BbEb1tOhrae0yEVQ2cCx0MtQKhRANCAAQe0HQhk9AjjiDfPaeqvU2J7HBkrpK8
        BjdiL/HFTLwUJOyEtFqD0ymZLUkWGI8GKKhFhtpRplTDKOX9zizuG+vD
        -----END PRIVATE KEY-----
        """
    /// CN=A CA stored before TenantPKI, valid 2000–2100, serial 5a17, path length 0.
    static let certificatePEM = """
        -----BEGIN CERTIFICATE-----
        MIIB4zCCAYmgAwIBAgICWhcwCgYIKoZIzj0EAwIwVjElMCMGA1UEAwwcQSBDQSBz
        dG9yZWQgYmVmb3JlIFRlbmFudFBLSTEtMCsGA1UECwwkMDAwMDAwMDAtMDAwMC0w
        MDAwLTAwMDAtMDAwMDAwMDAwMGNjMCAXDTAwMDEwMTAwMDAwMFoYDzIxMDAwMTAx
        MDAwMDAwWjBWMSUwIwYDVQQDDBxBIENBIHN0b3JlZCBiZWZvcmUgVGVuYW50UEtJ
        MS0wKwYDVQQLDCQwMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwY2Mw
        WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQe0HQhk9AjjiDfPaeqvU2J7HBkrpK8
        BjdiL/HFTLwUJOyEtFqD0ymZLUkWGI8GKKhFhtpRplTDKOX9zizuG+vDo0UwQzAS
        BgNVHRMBAf8ECDAGAQH/AgEAMA4GA1UdDwEB/wQEAwIBBjAdBgNVHQ4EFgQUS0rw
        B3kE6b61miQzREU0d1zLASkwCgYIKoZIzj0EAwIDSAAwRQIhALlX8iPu6SNuZIq3
        UEcUaeHSfNP9T6m2PLnzDRQQnZNqAiBnvUTWVRIrcOOjarWZLzBSX9tfQuce2T8b
        VQU62FvBug==
        -----END CERTIFICATE-----
        """
    static let stored: JSONValue = ["certificate": .string(certificatePEM), "key": .string(keyPEM)]

    func put(_ h: Harness, _ key: String, _ value: JSONValue) async throws {
        try await h.app.store.write { tx in try await tx.putSetting(tenant: h.tenant.tenantId, key: key, value: value) }
    }

    @Test("a device, health or inspection CA stored before TenantPKI loads and issues leaves that chain to it")
    func aStoredAuthorityStillLoads() async throws {
        try await Harness.run { h in
            let tenant = h.tenant.tenantId
            let expected = try HealthCertificateAuthority.certificate(pem: Self.certificatePEM)
            for key in ["deviceCertificateAuthority", "health.ca", "tlsInspectionCertificateAuthority"] {
                try await put(h, key, Self.stored)
            }
            let request = try HealthCertificateAuthority.request(pem: try HealthAgentKey.make(machineName: "ws01").certificateSigningRequestPEM)

            let loaded = try await DeviceCertificateAuthority.load(tenant: tenant, store: h.app.store, sealing: h.app.keySealing)
            let device = try #require(loaded)
            #expect(device.certificate == expected)
            let deviceLeaf = try device.issue(for: request, deviceID: "6f1c0b4e-0000-4000-8000-000000000001", now: h.clock.now)
            #expect(deviceLeaf.issuer == expected.subject)
            #expect(expected.publicKey.isValidSignature(deviceLeaf.signature, for: deviceLeaf))
            #expect(try deviceLeaf.extensions.authorityKeyIdentifier?.keyIdentifier == expected.extensions.subjectKeyIdentifier?.keyIdentifier)

            let health = try await HealthCertificateAuthority.loadOrCreate(tenant: tenant, store: h.app.store, sealing: h.app.keySealing, now: h.clock.now)
            #expect(health.certificate == expected)
            let agentLeaf = try health.issue(request, tenant: tenant, agent: "agent-1", machineName: "ws01", now: h.clock.now)
            #expect(await health.verify(agentLeaf, now: h.clock.now))

            let inspection = try await InspectionCertificateAuthority.loadOrCreate(tenant: tenant, store: h.app.store, sealing: h.app.keySealing, now: h.clock.now)
            #expect(inspection.certificate == expected)
        }
    }

    @Test("two loads or creates of one kind give one CA; kinds are separate")
    func oneAuthorityPerKind() async throws {
        try await Harness.run { h in
            let tenant = h.tenant.tenantId
            let first = try await DeviceCertificateAuthority.loadOrCreate(tenant: tenant, store: h.app.store, sealing: h.app.keySealing, now: h.clock.now)
            let again = try await DeviceCertificateAuthority.loadOrCreate(tenant: tenant, store: h.app.store, sealing: h.app.keySealing, now: h.clock.now)
            #expect(first.certificate == again.certificate)
            let health = try await HealthCertificateAuthority.loadOrCreate(tenant: tenant, store: h.app.store, sealing: h.app.keySealing, now: h.clock.now)
            #expect(health.certificate != first.certificate)
            #expect(health.certificate.subject.description.contains("Tessera health agents CA"))
            #expect(first.certificate.subject.description.contains("MS-Organization-Access"))
            // Path length 0, a key-signing CA, valid from an hour before it was made.
            #expect(try first.certificate.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: 0))
            #expect(first.certificate.notValidBefore == h.clock.now.addingTimeInterval(-3600))
        }
    }

    @Test("a setting that is not a CA is an error and is not replaced (leaves it issued would stop verifying)")
    func aCorruptAuthorityIsAnError() async throws {
        try await Harness.run { h in
            let tenant = h.tenant.tenantId
            let corrupt: JSONValue = ["certificate": .string("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"), "key": .string(Self.keyPEM)]
            try await put(h, "deviceCertificateAuthority", corrupt)
            await #expect(throws: (any Error).self) {
                _ = try await DeviceCertificateAuthority.loadOrCreate(tenant: tenant, store: h.app.store, sealing: h.app.keySealing, now: h.clock.now)
            }
            let kept = try await h.app.store.read { tx in try await tx.setting(tenant: tenant, key: "deviceCertificateAuthority") }
            #expect(kept == corrupt)
        }
    }
}
