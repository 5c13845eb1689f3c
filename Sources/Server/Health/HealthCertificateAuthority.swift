import Crypto
import Foundation
import SwiftASN1
import TesseraCore
@_spi(FixedExpiryValidationTime) import X509

/// A tenant's health CA: it issues its agents' client certificates, and the health listener accepts only
/// certificates it issued. Its key is kept in the store (the tenant setting `health.ca`), as the deployment's
/// signing key is, so every node of a cluster issues and verifies alike; it never leaves the server.
struct HealthCertificateAuthority: Sendable {
    let certificate: Certificate
    let key: P256.Signing.PrivateKey

    static let settingKey = "health.ca"
    /// Client certificates last a year; an agent registers again to renew.
    static let certificateLifetime: TimeInterval = 365 * 86_400

    /// The tenant's CA, made on first use (another node's, when it won the race).
    static func loadOrCreate(tenant: String, store: any DirectoryStore, now: Date) async throws -> HealthCertificateAuthority {
        if let existing = try await load(tenant: tenant, store: store) { return existing }
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            CommonName("Tessera health agents CA")
            OrganizationalUnitName(tenant)
            OrganizationName("Tessera")
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(20 * 365 * 86_400), issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: .init(key.publicKey))
            },
            issuerPrivateKey: .init(key))
        let pem = try certificate.serializeAsPEM().pemString
        return try await store.write { tx in
            if let value = try await tx.setting(tenant: tenant, key: settingKey), let existing = try Self(value) { return existing }
            try await tx.putSetting(tenant: tenant, key: settingKey, value: ["certificate": .string(pem), "key": .string(key.pemRepresentation)])
            return HealthCertificateAuthority(certificate: certificate, key: key)
        }
    }

    static func load(tenant: String, store: any DirectoryStore) async throws -> HealthCertificateAuthority? {
        guard let value = try await store.read({ tx in try await tx.setting(tenant: tenant, key: settingKey) }) else { return nil }
        return try Self(value)
    }

    init(certificate: Certificate, key: P256.Signing.PrivateKey) {
        self.certificate = certificate
        self.key = key
    }

    init?(_ value: JSONValue) throws {
        guard let certificate = value["certificate"]?.stringValue, let key = value["key"]?.stringValue else { return nil }
        self.init(certificate: try Certificate(pemEncoded: certificate), key: try P256.Signing.PrivateKey(pemRepresentation: key))
    }

    /// The URI naming an agent in its certificate's subject alternative names.
    static func agentURI(tenant: String, agent: String) -> String { "urn:tessera:health-agent:\(tenant):\(agent)" }

    /// The tenant and agent a certificate names (unverified: check it with `verify` first).
    static func agentIdentity(_ certificate: Certificate) -> (tenant: String, agent: String)? {
        guard let names = try? certificate.extensions.subjectAlternativeNames else { return nil }
        for case .uniformResourceIdentifier(let uri) in names where uri.hasPrefix("urn:tessera:health-agent:") {
            let parts = uri.dropFirst("urn:tessera:health-agent:".count).split(separator: ":")
            if parts.count == 2 { return (String(parts[0]), String(parts[1])) }
        }
        return nil
    }

    /// Issues a client certificate for `agent` to the key in `request`, once the request's own signature proves the
    /// agent holds that key. The subject is the agent's; nothing else of the request is copied.
    func issue(_ request: CertificateSigningRequest, tenant: String, agent: String, machineName: String, now: Date) throws -> Certificate {
        guard request.publicKey.isValidSignature(request.signature, for: request) else {
            throw DirectoryError.badRequest("The certificate signing request's signature does not verify with its public key.")
        }
        let subject = try DistinguishedName {
            CommonName(machineName)
            OrganizationalUnitName(agent)
            OrganizationName("Tessera health agent")
        }
        return try Certificate(
            version: .v3, serialNumber: .init(), publicKey: request.publicKey, notValidBefore: now.addingTimeInterval(-300),
            notValidAfter: now.addingTimeInterval(Self.certificateLifetime), issuer: certificate.subject, subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.clientAuth])
                SubjectAlternativeNames([GeneralName.uniformResourceIdentifier(Self.agentURI(tenant: tenant, agent: agent))])
                AuthorityKeyIdentifier(keyIdentifier: SubjectKeyIdentifier(hash: .init(key.publicKey)).keyIdentifier)
            },
            issuerPrivateKey: .init(key))
    }

    /// True when `leaf` chains to this CA and is valid at `now` (RFC 5280, by swift-certificates' verifier).
    func verify(_ leaf: Certificate, now: Date) async -> Bool {
        var verifier = Verifier(rootCertificates: CertificateStore([certificate])) { RFC5280Policy(fixedExpiryValidationTime: now) }
        if case .validCertificate = await verifier.validate(leaf: leaf, intermediates: CertificateStore()) { return true }
        return false
    }

    /// A certificate from PEM, and back.
    static func certificate(pem: String) throws -> Certificate { try Certificate(pemEncoded: pem) }
    static func pem(_ certificate: Certificate) throws -> String { try certificate.serializeAsPEM().pemString }

    /// A certificate signing request from PEM.
    static func request(pem: String) throws -> CertificateSigningRequest { try CertificateSigningRequest(pemEncoded: pem) }

    /// The SHA-256 of a certificate's DER, hex: what an agent's record keeps.
    static func thumbprint(_ certificate: Certificate) throws -> String {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return SHA256.hash(data: serializer.serializedBytes).map { String(format: "%02x", $0) }.joined()
    }
}
