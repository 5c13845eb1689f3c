import Crypto
import Foundation
import SwiftASN1
import TenantPKI
import TesseraCore
@_spi(FixedExpiryValidationTime) import X509

/// A tenant's health CA: it issues its agents' client certificates, and the health listener accepts only
/// certificates it issued. A ``TenantCertificateAuthority`` kept as the tenant setting `health.ca`; its key never
/// leaves the server.
struct HealthCertificateAuthority: Sendable {
    let authority: TenantCertificateAuthority
    var certificate: Certificate { authority.certificate }

    static let kind = TenantCertificateAuthority.Kind(settingKey: "health.ca", lifetime: 20 * 365 * 86_400) { tenant in
        try DistinguishedName {
            CommonName("Tessera health agents CA")
            OrganizationalUnitName(tenant)
            OrganizationName("Tessera")
        }
    }
    /// Client certificates last a year; an agent registers again to renew.
    static let certificateLifetime: TimeInterval = 365 * 86_400

    /// The tenant's CA, made on first use (another node's, when it won the race).
    static func loadOrCreate(tenant: String, store: any DirectoryStore, sealing: KeySealing, now: Date) async throws -> HealthCertificateAuthority {
        Self(authority: try await TenantCertificateAuthority.loadOrCreate(kind, tenant: tenant, store: store, sealing: sealing, now: now))
    }

    static func load(tenant: String, store: any DirectoryStore, sealing: KeySealing) async throws -> HealthCertificateAuthority? {
        try await TenantCertificateAuthority.load(kind, tenant: tenant, store: store, sealing: sealing).map(Self.init)
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
        return try authority.issue(
            publicKey: request.publicKey, subject: subject, notValidBefore: now.addingTimeInterval(-300),
            notValidAfter: now.addingTimeInterval(Self.certificateLifetime),
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.clientAuth])
                SubjectAlternativeNames([GeneralName.uniformResourceIdentifier(Self.agentURI(tenant: tenant, agent: agent))])
            })
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
