import Crypto
import Foundation
import SwiftASN1
import TenantPKI
import TesseraCore
import X509

/// A tenant's device CA: it issues the certificates registered devices authenticate with, as Entra's
/// `MS-Organization-Access` CA does. A ``TenantCertificateAuthority`` kept as the tenant setting
/// `deviceCertificateAuthority`, made when the first device registers.
struct DeviceCertificateAuthority: Sendable {
    let authority: TenantCertificateAuthority
    var certificate: Certificate { authority.certificate }

    static let kind = TenantCertificateAuthority.Kind(settingKey: "deviceCertificateAuthority", lifetime: 20 * 365 * 86_400) { tenant in
        try DistinguishedName {
            CommonName("MS-Organization-Access")
            OrganizationalUnitName(tenant)
        }
    }
    /// Device certificates live ten years, as Entra's do.
    static let deviceCertificateLifetime: TimeInterval = 10 * 365 * 86_400

    /// The tenant's CA, nil until the first device registers.
    static func load(tenant: String, store: any DirectoryStore, sealing: KeySealing) async throws -> DeviceCertificateAuthority? {
        try await TenantCertificateAuthority.load(kind, tenant: tenant, store: store, sealing: sealing).map(Self.init)
    }

    /// The tenant's CA, created (by whichever node comes first) when the first device registers.
    static func loadOrCreate(tenant: String, store: any DirectoryStore, sealing: KeySealing, now: Date) async throws -> DeviceCertificateAuthority {
        Self(authority: try await TenantCertificateAuthority.loadOrCreate(kind, tenant: tenant, store: store, sealing: sealing, now: now))
    }

    /// A device certificate for the key of `csr` (whose signature proves the device holds it), with the subject
    /// `CN=<deviceId>`, for client authentication.
    func issue(for csr: CertificateSigningRequest, deviceID: String, now: Date) throws -> Certificate {
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else {
            throw DeviceRegistrationError.badRequest("The certificate request's signature does not verify with its own key.")
        }
        return try authority.issue(
            publicKey: csr.publicKey, subject: try DistinguishedName { CommonName(deviceID) },
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(Self.deviceCertificateLifetime),
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
                try ExtendedKeyUsage([.clientAuth])
            })
    }
}

extension Certificate {
    /// The DER encoding.
    var derBytes: [UInt8] {
        get throws {
            var serializer = DER.Serializer()
            try serializer.serialize(self)
            return serializer.serializedBytes
        }
    }
}
