import Crypto
public import Foundation
import NIOSSL
import SwiftASN1
public import TesseraCore
public import X509

/// A tenant's TLS inspection CA: the proxy terminates TLS to inspected AI apps with leaves it issues, so clients must
/// trust it (``pem``). A P-256 key made on first use and kept in the store as a tenant setting
/// (`tlsInspectionCertificateAuthority`), so every proxy of a deployment issues alike; never used for anything else.
public struct InspectionCertificateAuthority: Sendable {
    public let certificate: Certificate
    let privateKey: P256.Signing.PrivateKey

    static let settingKey = "tlsInspectionCertificateAuthority"
    /// Leaves live a week; the proxy mints a new one a day before its leaf expires.
    static let leafLifetime: TimeInterval = 7 * 86_400

    /// The tenant's CA, created (by whichever proxy comes first) if there is none yet.
    public static func loadOrCreate(tenant: String, store: any DirectoryStore, now: Date) async throws -> InspectionCertificateAuthority {
        if let existing = try await store.read({ tx in try await tx.setting(tenant: tenant, key: settingKey) }).flatMap(Self.init) {
            return existing
        }
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            CommonName("Tessera TLS Inspection CA")
            OrganizationalUnitName(tenant)
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(10 * 365 * 86_400), issuer: name, subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: .init(key.publicKey))
            },
            issuerPrivateKey: .init(key))
        let value: JSONValue = ["certificate": .string(try certificate.serializeAsPEM().pemString), "key": .string(key.pemRepresentation)]
        return try await store.write { tx in
            // Another proxy may have made one first: keep the first written.
            if let existing = try await tx.setting(tenant: tenant, key: settingKey).flatMap(Self.init) { return existing }
            try await tx.putSetting(tenant: tenant, key: settingKey, value: value)
            return InspectionCertificateAuthority(certificate: certificate, privateKey: key)
        }
    }

    private init(certificate: Certificate, privateKey: P256.Signing.PrivateKey) {
        self.certificate = certificate
        self.privateKey = privateKey
    }

    private init?(_ json: JSONValue) {
        guard let pem = json["certificate"]?.stringValue, let keyPEM = json["key"]?.stringValue,
              let certificate = try? Certificate(pemEncoded: pem), let key = try? P256.Signing.PrivateKey(pemRepresentation: keyPEM)
        else { return nil }
        self.init(certificate: certificate, privateKey: key)
    }

    /// The CA certificate as PEM, for clients' trust stores.
    public var pem: String {
        get throws { try certificate.serializeAsPEM().pemString }
    }

    /// A server certificate for `host` (its only subject alternative name) with `key`, valid for ``leafLifetime``.
    func issueLeaf(host: String, key: P256.Signing.PrivateKey, now: Date) throws -> Certificate {
        try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(Self.leafLifetime), issuer: certificate.subject,
            subject: try DistinguishedName { CommonName(host) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames([.dnsName(host)])
                AuthorityKeyIdentifier(keyIdentifier: SubjectKeyIdentifier(hash: .init(privateKey.publicKey)).keyIdentifier)
            },
            issuerPrivateKey: .init(privateKey))
    }
}
