import Crypto
import Foundation
import SwiftASN1
import TesseraCore
import X509

/// A tenant's device CA: it issues the certificates registered devices authenticate with, as Entra's
/// `MS-Organization-Access` CA does. A P-256 key made on first use and kept in the store as the deployment's signing
/// key is (the tenant setting `deviceCertificateAuthority`), so every node of a cluster issues alike.
struct DeviceCertificateAuthority: Sendable {
    let certificate: Certificate
    let privateKey: P256.Signing.PrivateKey

    static let settingKey = "deviceCertificateAuthority"
    /// Device certificates live ten years, as Entra's do.
    static let deviceCertificateLifetime: TimeInterval = 10 * 365 * 86_400

    /// The tenant's CA, nil until the first device registers.
    static func load(tenant: String, store: any DirectoryStore) async throws -> DeviceCertificateAuthority? {
        try await store.read({ tx in try await tx.setting(tenant: tenant, key: settingKey) }).flatMap(Self.init)
    }

    /// The tenant's CA, created (by whichever node comes first) when the first device registers.
    static func loadOrCreate(tenant: String, store: any DirectoryStore, now: Date) async throws -> DeviceCertificateAuthority {
        if let existing = try await load(tenant: tenant, store: store) { return existing }
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            CommonName("MS-Organization-Access")
            OrganizationalUnitName(tenant)
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(20 * 365 * 86_400), issuer: name, subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: .init(key.publicKey))
            },
            issuerPrivateKey: .init(key))
        let value: JSONValue = ["certificate": .string(try certificate.serializeAsPEM().pemString), "key": .string(key.pemRepresentation)]
        return try await store.write { tx in
            // Another node may have made one first: keep the first written.
            if let existing = try await tx.setting(tenant: tenant, key: settingKey).flatMap(Self.init) { return existing }
            try await tx.putSetting(tenant: tenant, key: settingKey, value: value)
            return DeviceCertificateAuthority(certificate: certificate, privateKey: key)
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

    /// A device certificate for the key of `csr` (whose signature proves the device holds it), with the subject
    /// `CN=<deviceId>`, for client authentication.
    func issue(for csr: CertificateSigningRequest, deviceID: String, now: Date) throws -> Certificate {
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else {
            throw DeviceRegistrationError.badRequest("The certificate request's signature does not verify with its own key.")
        }
        return try Certificate(
            version: .v3, serialNumber: .init(), publicKey: csr.publicKey, notValidBefore: now.addingTimeInterval(-300),
            notValidAfter: now.addingTimeInterval(Self.deviceCertificateLifetime), issuer: certificate.subject,
            subject: try DistinguishedName { CommonName(deviceID) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
                try ExtendedKeyUsage([.clientAuth])
                AuthorityKeyIdentifier(keyIdentifier: SubjectKeyIdentifier(hash: .init(privateKey.publicKey)).keyIdentifier)
            },
            issuerPrivateKey: .init(privateKey))
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
