public import Crypto
public import Foundation
import SwiftASN1
public import TesseraCore
public import X509

/// A tenant's own certificate authority: a P-256 key and a self-signed CA certificate, made on first use and kept in
/// the store as a tenant setting `{"certificate": PEM, "key": PEM}`, as the deployment's signing key is, so every node
/// of a cluster issues (and verifies) alike; sealed with the key-encryption key when there is one (``KeySealing``).
/// The device CA, the health agents' CA and the TLS inspection CA are each one of these under their own setting key;
/// what they issue is theirs.
public struct TenantCertificateAuthority: Sendable {
    /// What distinguishes one kind of tenant CA from another: where it is kept and what its certificate says.
    public struct Kind: Sendable {
        /// The tenant setting that holds it.
        public let settingKey: String
        /// The subject (and issuer) of a new CA certificate, given the tenant's id.
        public let subject: @Sendable (_ tenant: String) throws -> DistinguishedName
        /// How long a new CA certificate is valid.
        public let lifetime: TimeInterval

        public init(settingKey: String, lifetime: TimeInterval, subject: @escaping @Sendable (_ tenant: String) throws -> DistinguishedName) {
            self.settingKey = settingKey
            self.subject = subject
            self.lifetime = lifetime
        }

        /// Where the tenant's CA of this kind is stored, and the name its sealing is bound to.
        public func setting(tenant: String) -> SealedSetting { SealedSetting(tenant: tenant, key: settingKey) }
    }

    public let certificate: Certificate
    public let privateKey: P256.Signing.PrivateKey

    public init(certificate: Certificate, privateKey: P256.Signing.PrivateKey) {
        self.certificate = certificate
        self.privateKey = privateKey
    }

    /// The CA as stored. A setting that is present but not a CA is an error, never replaced: certificates it issued
    /// would stop verifying.
    public init(stored value: JSONValue) throws {
        guard let pem = value["certificate"]?.stringValue, let keyPEM = value["key"]?.stringValue else {
            throw StoredAuthorityError()
        }
        self.init(certificate: try Certificate(pemEncoded: pem), privateKey: try P256.Signing.PrivateKey(pemRepresentation: keyPEM))
    }

    /// What ``init(stored:)`` reads.
    public var stored: JSONValue {
        get throws { ["certificate": .string(try certificate.serializeAsPEM().pemString), "key": .string(privateKey.pemRepresentation)] }
    }

    /// The tenant's CA of this kind, nil until one is made. A CA stored plain (made before there was a key-encryption
    /// key) is sealed in the store when `sealing` has one.
    public static func load(_ kind: Kind, tenant: String, store: any DirectoryStore, sealing: KeySealing) async throws -> TenantCertificateAuthority? {
        try await sealing.load(kind.setting(tenant: tenant), store: store).map(Self.init(stored:))
    }

    /// The tenant's CA of this kind, made if there is none yet (its key sealed when `sealing` has a key-encryption
    /// key); when two nodes race, the first written is kept and both return it.
    public static func loadOrCreate(_ kind: Kind, tenant: String, store: any DirectoryStore, sealing: KeySealing, now: Date) async throws
        -> TenantCertificateAuthority
    {
        try Self(stored: try await sealing.loadOrCreate(kind.setting(tenant: tenant), store: store, make: {
            try make(subject: kind.subject(tenant), lifetime: kind.lifetime, now: now).stored
        }))
    }

    /// A new self-signed CA (path length 0: it signs leaves only), valid from an hour before `now` for `lifetime`.
    public static func make(subject: DistinguishedName, lifetime: TimeInterval, now: Date) throws -> TenantCertificateAuthority {
        let key = P256.Signing.PrivateKey()
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(lifetime), issuer: subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: .init(key.publicKey))
            },
            issuerPrivateKey: .init(key))
        return TenantCertificateAuthority(certificate: certificate, privateKey: key)
    }

    /// The authority key identifier the leaves it issues carry (the CA key's subject key identifier).
    public var authorityKeyIdentifier: AuthorityKeyIdentifier {
        AuthorityKeyIdentifier(keyIdentifier: SubjectKeyIdentifier(hash: .init(privateKey.publicKey)).keyIdentifier)
    }

    /// A leaf for `publicKey` signed by this CA (ECDSA with SHA-256), its issuer this CA's subject. `extensions` are
    /// the leaf's own; the authority key identifier is added.
    public func issue(
        publicKey: Certificate.PublicKey, subject: DistinguishedName, notValidBefore: Date, notValidAfter: Date,
        extensions: Certificate.Extensions
    ) throws -> Certificate {
        var extensions = extensions
        try extensions.append(Certificate.Extension(authorityKeyIdentifier, critical: false))
        return try Certificate(
            version: .v3, serialNumber: .init(), publicKey: publicKey, notValidBefore: notValidBefore, notValidAfter: notValidAfter,
            issuer: certificate.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions,
            issuerPrivateKey: .init(privateKey))
    }
}

/// A tenant setting meant to hold a CA holds something else.
public struct StoredAuthorityError: Error, CustomStringConvertible {
    public var description: String { "the stored certificate authority has no certificate or key" }
}
