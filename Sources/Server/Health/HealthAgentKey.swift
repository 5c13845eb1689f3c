import Crypto
import SwiftASN1
import X509

/// An agent's key pair and the certificate signing request it registers with: the private key stays with the agent,
/// the request (signed by that key, which proves the agent holds it) goes to `POST /beta/connectHealth/agents`.
public struct HealthAgentKey: Sendable {
    /// The P-256 private key, PEM (PKCS#8).
    public let privateKeyPEM: String
    /// The PKCS#10 request, PEM, with the machine's name as its subject.
    public let certificateSigningRequestPEM: String

    public static func make(machineName: String) throws -> HealthAgentKey {
        let key = P256.Signing.PrivateKey()
        let request = try CertificateSigningRequest(version: .v1, subject: try DistinguishedName { CommonName(machineName) },
                                                    privateKey: .init(key), attributes: .init(), signatureAlgorithm: .ecdsaWithSHA256)
        return HealthAgentKey(privateKeyPEM: key.pemRepresentation, certificateSigningRequestPEM: try request.serializeAsPEM().pemString)
    }
}
