import Crypto
import X509
import SwiftASN1

/// `tpm` (§8.3): a TPM 2.0 certifies the credential key with an attestation identity key (AIK) whose certificate
/// comes from a privacy CA. Windows Hello uses it.
enum TPMAttestation {
    static let aikCertificatePurpose: ASN1ObjectIdentifier = [2, 23, 133, 8, 3]
    static let tpmManufacturer: ASN1ObjectIdentifier = [2, 23, 133, 2, 1]
    static let tpmModel: ASN1ObjectIdentifier = [2, 23, 133, 2, 2]
    static let tpmVersion: ASN1ObjectIdentifier = [2, 23, 133, 2, 3]

    static func verify(_ input: AttestationInput) throws(WebAuthnError) -> AttestationOutcome {
        guard try input.field("ver", { $0.textValue }, format: "tpm") == "2.0" else {
            throw WebAuthnError(.attestationStatementMalformed, "only TPM version 2.0 attestation is supported")
        }
        let alg = COSEAlgorithm(try input.field("alg", { $0.int }, format: "tpm"))
        let sig: [UInt8] = try input.field("sig", { $0.bytesValue }, format: "tpm")
        let certInfoBytes: [UInt8] = try input.field("certInfo", { $0.bytesValue }, format: "tpm")
        let pubAreaBytes: [UInt8] = try input.field("pubArea", { $0.bytesValue }, format: "tpm")
        if input.statement[textKey: "ecdaaKeyId"] != nil {
            throw WebAuthnError(.attestationUnsupportedFormat, "ECDAA attestation was removed from WebAuthn and is not supported")
        }
        let x5c = try input.certificates(format: "tpm")

        let pubArea = try PublicArea(pubAreaBytes)
        guard pubArea.matches(input.publicKey) else {
            throw WebAuthnError(.attestationTPMPubArea, "the TPM pubArea key is not the credential public key")
        }
        let certInfo = try AttestationInfo(certInfoBytes)
        let toBeSigned = input.signedData
        let expectedExtraData: [UInt8]
        switch alg {
        case .rs1: expectedExtraData = Array(Insecure.SHA1.hash(data: toBeSigned))
        case .es384, .rs384, .ps384: expectedExtraData = Array(SHA384.hash(data: toBeSigned))
        case .es512, .rs512, .ps512: expectedExtraData = Array(SHA512.hash(data: toBeSigned))
        default: expectedExtraData = toBeSigned.sha256
        }
        guard constantTimeEquals(certInfo.extraData, expectedExtraData) else {
            throw WebAuthnError(.attestationTPMCertInfo, "certInfo.extraData is not the hash of authenticatorData || clientDataHash")
        }
        guard let nameDigest = pubArea.name else {
            throw WebAuthnError(.attestationTPMPubArea, "the pubArea's nameAlg 0x\(String(pubArea.nameAlg, radix: 16)) is not supported")
        }
        guard certInfo.attestedName == nameDigest else {
            throw WebAuthnError(.attestationTPMCertInfo, "certInfo.attested.name is not the name of pubArea")
        }
        let aik = x5c.leaf
        guard try CertificateChecks.verify(sig, over: certInfoBytes, with: aik, algorithm: alg) else {
            throw WebAuthnError(.attestationSignature, "the TPM signature over certInfo does not verify with the AIK certificate")
        }
        try checkAIKCertificate(aik)
        try CertificateChecks.checkAAGUIDExtension(aik, input.credential.aaguid)
        return AttestationOutcome(type: .attCA, x5c: x5c)
    }

    /// §8.3.1: version 3, empty subject, a SAN naming the TPM, the AIK purpose, not a CA.
    static func checkAIKCertificate(_ certificate: Certificate) throws(WebAuthnError) {
        func fail(_ why: String) -> WebAuthnError {
            WebAuthnError(.attestationCertificateRequirements, "the TPM AIK certificate \(why) (WebAuthn §8.3.1)")
        }
        guard certificate.version == .v3 else { throw fail("is not X.509 version 3") }
        guard certificate.subject.isEmpty else { throw fail("has a non-empty subject") }
        guard let names = try? certificate.extensions.subjectAlternativeNames else { throw fail("has no subject alternative name") }
        let tpmNamed = names.contains { name in
            guard case .directoryName(let dn) = name else { return false }
            return !CertificateChecks.attribute(tpmManufacturer, in: dn).isEmpty
        }
        guard tpmNamed else { throw fail("does not name the TPM manufacturer in its subject alternative name") }
        guard let usages = try? certificate.extensions.extendedKeyUsage,
              usages.contains(ExtendedKeyUsage.Usage(oid: aikCertificatePurpose)) else {
            throw fail("lacks the extended key usage tcg-kp-AIKCertificate (2.23.133.8.3)")
        }
        guard CertificateChecks.isNotCA(certificate) else { throw fail("is a CA certificate") }
    }

    /// TPMT_PUBLIC (TPM 2.0 Part 2, §12.2.4), the parts WebAuthn uses.
    struct PublicArea {
        static let rsa: UInt16 = 0x0001, ecc: UInt16 = 0x0023, null: UInt16 = 0x0010
        var type: UInt16
        var nameAlg: UInt16
        var raw: [UInt8]
        var rsaModulus: [UInt8] = []
        var rsaExponent: UInt32 = 0
        var curve: UInt16 = 0
        var x: [UInt8] = [], y: [UInt8] = []

        init(_ bytes: [UInt8]) throws(WebAuthnError) {
            func fail(_ why: String) -> WebAuthnError { WebAuthnError(.attestationTPMPubArea, "pubArea \(why)") }
            raw = bytes
            var reader = ByteReader(bytes)
            guard let type = reader.readUInt16(), let nameAlg = reader.readUInt16(), reader.readUInt32() != nil,
                  reader.readSized16() != nil else { throw fail("is truncated") }
            self.type = type
            self.nameAlg = nameAlg
            // TPMT_SYM_DEF_OBJECT: an algorithm and, unless it is TPM_ALG_NULL, key bits and mode.
            guard let symmetric = reader.readUInt16() else { throw fail("is truncated") }
            if symmetric != Self.null { guard reader.skip(4) else { throw fail("is truncated") } }
            // The signing scheme: an algorithm and, unless null, its hash.
            guard let scheme = reader.readUInt16() else { throw fail("is truncated") }
            if scheme != Self.null { guard reader.skip(2) else { throw fail("is truncated") } }
            switch type {
            case Self.rsa:
                guard reader.readUInt16() != nil, let exponent = reader.readUInt32(), let modulus = reader.readSized16() else {
                    throw fail("has truncated RSA parameters")
                }
                rsaExponent = exponent == 0 ? 65537 : exponent
                rsaModulus = modulus
            case Self.ecc:
                guard let curve = reader.readUInt16(), let kdf = reader.readUInt16() else { throw fail("has truncated ECC parameters") }
                if kdf != Self.null { guard reader.skip(2) else { throw fail("is truncated") } }
                guard let x = reader.readSized16(), let y = reader.readSized16() else { throw fail("has a truncated ECC point") }
                self.curve = curve
                self.x = x
                self.y = y
            default:
                throw fail("has key type 0x\(String(type, radix: 16)), neither RSA nor ECC")
            }
            guard reader.isAtEnd else { throw fail("has \(reader.remaining) trailing bytes") }
        }

        /// Whether this is the credential's key.
        func matches(_ key: CredentialPublicKey) -> Bool {
            switch key.material {
            case .rsa(let n, let e):
                let exponent = e.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                return type == Self.rsa && strip(n) == strip(rsaModulus) && e.count <= 8 && exponent == UInt64(rsaExponent)
            case .ec(let crv, let kx, let ky):
                // TPM_ECC_NIST_P256/384/521 are 3/4/5; COSE's are 1/2/3.
                return type == Self.ecc && Int(curve) == crv + 2 && strip(kx) == strip(x) && strip(ky) == strip(y)
            case .okp:
                return false
            }
        }

        private func strip(_ bytes: [UInt8]) -> ArraySlice<UInt8> { bytes.drop { $0 == 0 } }

        /// The TPM name: nameAlg followed by nameAlg's digest of the whole structure.
        var name: [UInt8]? {
            let digest: [UInt8]
            switch nameAlg {
            case 0x0004: digest = Array(Insecure.SHA1.hash(data: raw))
            case 0x000B: digest = raw.sha256
            case 0x000C: digest = Array(SHA384.hash(data: raw))
            case 0x000D: digest = Array(SHA512.hash(data: raw))
            default: return nil
            }
            return [UInt8(nameAlg >> 8), UInt8(nameAlg & 0xFF)] + digest
        }
    }

    /// TPMS_ATTEST of type TPM_ST_ATTEST_CERTIFY (TPM 2.0 Part 2, §10.12.12).
    struct AttestationInfo {
        var extraData: [UInt8]
        var attestedName: [UInt8]

        init(_ bytes: [UInt8]) throws(WebAuthnError) {
            func fail(_ why: String) -> WebAuthnError { WebAuthnError(.attestationTPMCertInfo, "certInfo \(why)") }
            var reader = ByteReader(bytes)
            guard let magic = reader.readUInt32() else { throw fail("is truncated") }
            guard magic == 0xFF54_4347 else { throw fail("does not start with TPM_GENERATED_VALUE") }
            guard let type = reader.readUInt16() else { throw fail("is truncated") }
            guard type == 0x8017 else { throw fail("is not TPM_ST_ATTEST_CERTIFY") }
            guard reader.readSized16() != nil, let extraData = reader.readSized16(),
                  reader.skip(17), // TPMS_CLOCK_INFO
                  reader.skip(8), // firmwareVersion
                  let name = reader.readSized16(), reader.readSized16() != nil
            else { throw fail("is truncated") }
            guard reader.isAtEnd else { throw fail("has \(reader.remaining) trailing bytes") }
            self.extraData = extraData
            self.attestedName = name
        }
    }
}
