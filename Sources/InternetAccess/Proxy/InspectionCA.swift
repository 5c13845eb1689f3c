import Crypto
public import Foundation
import NIOSSL
import SwiftASN1
import TenantPKI
public import TesseraCore
public import X509

/// A tenant's TLS inspection CA: the proxy terminates TLS to inspected AI apps with leaves it issues, so clients must
/// trust it (``pem``). A ``TenantCertificateAuthority`` kept as the tenant setting `tlsInspectionCertificateAuthority`,
/// made by the first proxy that needs it and sealed with the key-encryption key when there is one; never used for
/// anything else.
public struct InspectionCertificateAuthority: Sendable {
    let authority: TenantCertificateAuthority
    public var certificate: Certificate { authority.certificate }

    static let kind = TenantCertificateAuthority.Kind(settingKey: "tlsInspectionCertificateAuthority", lifetime: 10 * 365 * 86_400) {
        tenant in
        try DistinguishedName {
            CommonName("Tessera TLS Inspection CA")
            OrganizationalUnitName(tenant)
        }
    }
    /// Leaves live a week; the proxy mints a new one a day before its leaf expires.
    static let leafLifetime: TimeInterval = 7 * 86_400

    /// The tenant settings that hold an inspection CA's key (the CA's own, a pending rotation's), for sealing them all.
    public static var sealedSettingKeys: [String] { [kind.settingKey, rotationKey] }

    /// The tenant's CA, created (by whichever proxy comes first) if there is none yet.
    public static func loadOrCreate(tenant: String, store: any DirectoryStore, sealing: KeySealing, now: Date) async throws
        -> InspectionCertificateAuthority
    {
        Self(authority: try await TenantCertificateAuthority.loadOrCreate(kind, tenant: tenant, store: store, sealing: sealing, now: now))
    }

    /// The CA certificate as PEM, for clients' trust stores.
    public var pem: String {
        get throws { try certificate.serializeAsPEM().pemString }
    }

    /// A server certificate for `host` (its only subject alternative name) with `key`, valid for ``leafLifetime``.
    func issueLeaf(host: String, key: P256.Signing.PrivateKey, now: Date) throws -> Certificate {
        try authority.issue(
            publicKey: .init(key.publicKey), subject: try DistinguishedName { CommonName(host) },
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(Self.leafLifetime),
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames([.dnsName(host)])
            })
    }
}
