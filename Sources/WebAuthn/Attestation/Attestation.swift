import Foundation
import X509
import Crypto
import _CryptoExtras
import SwiftASN1

/// How an authenticator vouched for a new credential (WebAuthn §6.5.4).
public enum AttestationType: String, Sendable, Hashable {
    /// No attestation: nothing is known about the authenticator.
    case none
    /// Self attestation: the credential signed for itself, which proves possession and nothing else.
    case `self`
    /// Basic attestation: a certificate shared by a batch of authenticators.
    case basic
    /// Attestation CA: a per-key certificate from a CA that saw the authenticator's endorsement (TPM).
    case attCA
    /// Anonymization CA: a per-credential certificate from the vendor's CA (Apple).
    case anonCA
}

/// What a format-specific check established, before trust in its certificates is decided.
struct AttestationOutcome {
    var type: AttestationType
    /// The attestation certificate first, then the rest of the chain the statement carried.
    var certificates: [Certificate]
    /// Chain certificates in `x5c` that could not be parsed, each with why (``AttestationCertificates/unreadable``).
    var unreadable: [String] = []

    init(type: AttestationType, certificates: [Certificate]) {
        self.type = type
        self.certificates = certificates
    }

    init(type: AttestationType, x5c: AttestationCertificates) {
        self.init(type: type, certificates: x5c.certificates)
        self.unreadable = x5c.unreadable
    }
}

/// `x5c` as read. Only the attestation certificate (the first) is covered by a format's checks, so only it must
/// parse; the others are there to build a chain to a trust anchor with. One that does not parse cannot help build
/// one, so it makes the attestation untrusted (unless a chain is found without it), not the registration malformed
/// (§7.1 steps 23–25). Real Windows Hello TPMs send intermediates with negative serial numbers, which RFC 5280
/// §4.1.2.2 asks verifiers to tolerate and swift-certificates refuses to parse.
struct AttestationCertificates {
    /// The certificates that parsed, the attestation certificate first.
    var certificates: [Certificate]
    /// How many certificates `x5c` held.
    var count: Int
    /// `x5c[i]` and why it could not be parsed, for each chain certificate that could not.
    var unreadable: [String]

    var leaf: Certificate { certificates[0] }

    /// Why a DER certificate did not parse, as precisely as can be said without parsing it.
    static func whyUnreadable(_ der: [UInt8]) -> String {
        // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber INTEGER, ... }, ... }
        if let root = try? DER.parse(der), case .constructed(let outer) = root.content,
           let tbs = outer.first(where: { _ in true }), case .constructed(let fields) = tbs.content {
            let serial = fields.first { $0.identifier != ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) }
            if let serial, serial.identifier == .integer, case .primitive(let bytes) = serial.content, let first = bytes.first, first & 0x80 != 0 {
                return "its serial number is negative, which RFC 5280 §4.1.2.2 asks verifiers to tolerate but the X.509 parser refuses"
            }
        }
        return "it is not a valid X.509 certificate"
    }
}

/// The facts every attestation statement format verifies against (§8, "verification procedure" inputs).
struct AttestationInput {
    var statement: CBORValue
    var authenticatorData: AuthenticatorData
    var credential: AttestedCredentialData
    var publicKey: CredentialPublicKey
    var clientDataHash: [UInt8]
    var verificationTime: Date

    /// `authenticatorData || clientDataHash`, what most formats sign.
    var signedData: [UInt8] { authenticatorData.raw + clientDataHash }
}

/// The attestation statement formats this library verifies.
enum AttestationFormat {
    static let supported = ["none", "packed", "fido-u2f", "tpm", "android-key", "android-safetynet", "apple"]

    static func verify(format: String, _ input: AttestationInput) throws(WebAuthnError) -> AttestationOutcome {
        switch format {
        case "none": return try NoneAttestation.verify(input)
        case "packed": return try PackedAttestation.verify(input)
        case "fido-u2f": return try FIDOU2FAttestation.verify(input)
        case "tpm": return try TPMAttestation.verify(input)
        case "android-key": return try AndroidKeyAttestation.verify(input)
        case "android-safetynet": return try AndroidSafetyNetAttestation.verify(input)
        case "apple": return try AppleAttestation.verify(input)
        default: throw WebAuthnError(.attestationUnsupportedFormat, "attestation format \"\(format)\" is not supported")
        }
    }
}

enum NoneAttestation {
    static func verify(_ input: AttestationInput) throws(WebAuthnError) -> AttestationOutcome {
        guard input.statement.mapValue?.isEmpty == true else {
            throw WebAuthnError(.attestationStatementMalformed, "a \"none\" attestation statement must be an empty map")
        }
        return AttestationOutcome(type: .none, certificates: [])
    }
}

// MARK: - Helpers shared by the formats

extension AttestationInput {
    /// `attStmt[key]`, which must be present and of the given shape.
    func field<T>(_ key: String, _ extract: (CBORValue) -> T?, format: String) throws(WebAuthnError) -> T {
        guard let value = statement[textKey: key], let typed = extract(value) else {
            throw WebAuthnError(.attestationStatementMalformed, "the \(format) attestation statement has no valid \"\(key)\"")
        }
        return typed
    }

    /// `x5c`: a non-empty array of DER certificates whose first, the attestation certificate, must parse.
    func certificates(format: String) throws(WebAuthnError) -> AttestationCertificates {
        let items: [CBORValue] = try field("x5c", { $0.arrayValue }, format: format)
        guard !items.isEmpty else { throw WebAuthnError(.attestationStatementMalformed, "the \(format) x5c is empty") }
        var x5c = AttestationCertificates(certificates: [], count: items.count, unreadable: [])
        for (index, item) in items.enumerated() {
            guard let der = item.bytesValue else {
                throw WebAuthnError(.attestationStatementMalformed, "x5c[\(index)] is not a byte string")
            }
            do {
                x5c.certificates.append(try Certificate(derEncoded: der))
            } catch {
                let why = AttestationCertificates.whyUnreadable(der)
                guard index > 0 else {
                    throw WebAuthnError(.attestationCertificateMalformed, "the attestation certificate x5c[0] cannot be read: \(why)")
                }
                x5c.unreadable.append("x5c[\(index)] cannot be read: \(why)")
            }
        }
        return x5c
    }
}

enum CertificateChecks {
    static let aaguidExtension: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 45724, 1, 1, 4]

    /// Verifies `signature` over `data` with the certificate's key, by the COSE algorithm the statement names.
    static func verify(_ signature: [UInt8], over data: [UInt8], with certificate: Certificate, algorithm: COSEAlgorithm) throws(WebAuthnError) -> Bool {
        let key = certificate.publicKey
        func mismatch() -> WebAuthnError {
            WebAuthnError(.attestationAlgorithmMismatch, "the attestation certificate's key cannot make \(algorithm) signatures")
        }
        switch algorithm {
        case .es256:
            guard let k = P256.Signing.PublicKey(key) else { throw mismatch() }
            guard let s = try? P256.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return k.isValidSignature(s, for: data)
        case .es384:
            guard let k = P384.Signing.PublicKey(key) else { throw mismatch() }
            guard let s = try? P384.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return k.isValidSignature(s, for: data)
        case .es512:
            guard let k = P521.Signing.PublicKey(key) else { throw mismatch() }
            guard let s = try? P521.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return k.isValidSignature(s, for: data)
        case .eddsa:
            guard let k = Curve25519.Signing.PublicKey(key) else { throw mismatch() }
            return k.isValidSignature(signature, for: data)
        default:
            guard let scheme = RSAScheme(algorithm) else {
                throw WebAuthnError(.attestationAlgorithmMismatch, "attestation algorithm \(algorithm) is not supported")
            }
            guard let k = _RSA.Signing.PublicKey(key) else { throw mismatch() }
            return scheme.isValid(signature, over: [data], key: k)
        }
    }

    /// Whether the certificate certifies exactly the credential's public key.
    static func certificate(_ certificate: Certificate, holds key: CredentialPublicKey) -> Bool {
        let certKey = certificate.publicKey
        switch key.key {
        case .p256(let k): return P256.Signing.PublicKey(certKey)?.rawRepresentation == k.rawRepresentation
        case .p384(let k): return P384.Signing.PublicKey(certKey)?.rawRepresentation == k.rawRepresentation
        case .p521(let k): return P521.Signing.PublicKey(certKey)?.rawRepresentation == k.rawRepresentation
        case .ed25519(let k): return Curve25519.Signing.PublicKey(certKey)?.rawRepresentation == k.rawRepresentation
        case .rsa(let k, _): return _RSA.Signing.PublicKey(certKey)?.derRepresentation == k.derRepresentation
        }
    }

    /// If the certificate has the FIDO AAGUID extension, it must not be critical and must equal `aaguid`.
    static func checkAAGUIDExtension(_ certificate: Certificate, _ aaguid: AAGUID) throws(WebAuthnError) {
        guard let ext = certificate.extensions[oid: aaguidExtension] else { return }
        guard !ext.critical else {
            throw WebAuthnError(.attestationCertificateRequirements, "the AAGUID extension (1.3.6.1.4.1.45724.1.1.4) must not be critical")
        }
        guard let octets = try? ASN1OctetString(derEncoded: ext.value), octets.bytes.count == 16 else {
            throw WebAuthnError(.attestationCertificateRequirements, "the AAGUID extension is not an OCTET STRING of 16 bytes")
        }
        guard Array(octets.bytes) == aaguid.bytes else {
            throw WebAuthnError(.attestationAAGUIDMismatch,
                                "the certificate's AAGUID \(AAGUID(bytes: Array(octets.bytes))) is not the authenticator's \(aaguid)")
        }
    }

    /// Whether the certificate says it is not a CA (basic constraints absent or CA false).
    static func isNotCA(_ certificate: Certificate) -> Bool {
        guard let constraints = try? certificate.extensions.basicConstraints else { return true }
        if case .isCertificateAuthority = constraints { return false }
        return true
    }

    /// The values of one attribute type in a distinguished name.
    static func attribute(_ type: ASN1ObjectIdentifier, in name: DistinguishedName) -> [String] {
        name.flatMap { rdn in rdn.filter { $0.type == type }.map { String(describing: $0.value) } }
    }

    /// The DER body of an extension parsed as a node, for private extensions.
    static func extensionNode(_ certificate: Certificate, _ oid: ASN1ObjectIdentifier) -> ASN1Node? {
        guard let ext = certificate.extensions[oid: oid] else { return nil }
        return try? DER.parse(ext.value)
    }
}

extension Array where Element == UInt8 {
    /// SHA-256 as bytes (copied from the digest in one go; iterating a `Digest` costs a call per byte).
    var sha256: [UInt8] { SHA256.hash(data: self).withUnsafeBytes { Array($0) } }
}
