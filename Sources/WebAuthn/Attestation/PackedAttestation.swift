import X509
import SwiftASN1

/// `packed` (WebAuthn §8.2): self attestation, or a batch certificate chain in `x5c`.
enum PackedAttestation {
    static func verify(_ input: AttestationInput) throws(WebAuthnError) -> AttestationOutcome {
        let alg = COSEAlgorithm(try input.field("alg", { $0.int }, format: "packed"))
        let sig: [UInt8] = try input.field("sig", { $0.bytesValue }, format: "packed")
        if input.statement[textKey: "ecdaaKeyId"] != nil {
            throw WebAuthnError(.attestationUnsupportedFormat, "ECDAA attestation was removed from WebAuthn and is not supported")
        }
        guard input.statement[textKey: "x5c"] != nil else {
            // Self attestation: the credential key signs, with the credential's own algorithm.
            guard alg == input.publicKey.algorithm else {
                throw WebAuthnError(.attestationAlgorithmMismatch,
                                    "self attestation uses \(alg) but the credential key is \(input.publicKey.algorithm)")
            }
            guard input.publicKey.isValidSignature(sig, for: input.signedData) else {
                throw WebAuthnError(.attestationSignature, "the packed self-attestation signature does not verify with the credential key")
            }
            return AttestationOutcome(type: .self, certificates: [])
        }
        let x5c = try input.certificates(format: "packed")
        let leaf = x5c.leaf
        guard try CertificateChecks.verify(sig, over: input.signedData, with: leaf, algorithm: alg) else {
            throw WebAuthnError(.attestationSignature, "the packed attestation signature does not verify with the x5c certificate")
        }
        try checkRequirements(leaf)
        try CertificateChecks.checkAAGUIDExtension(leaf, input.credential.aaguid)
        return AttestationOutcome(type: .basic, x5c: x5c)
    }

    /// §8.2.1: version 3; subject C, O, OU = "Authenticator Attestation", CN; not a CA.
    static func checkRequirements(_ certificate: Certificate) throws(WebAuthnError) {
        func fail(_ why: String) -> WebAuthnError {
            WebAuthnError(.attestationCertificateRequirements, "the packed attestation certificate \(why) (WebAuthn §8.2.1)")
        }
        guard certificate.version == .v3 else { throw fail("is not X.509 version 3") }
        let subject = certificate.subject
        let country = CertificateChecks.attribute(.RDNAttributeType.countryName, in: subject)
        guard let c = country.first, c.count == 2 else { throw fail("has no two-letter country (C) in its subject") }
        guard !CertificateChecks.attribute(.RDNAttributeType.organizationName, in: subject).isEmpty else {
            throw fail("has no organization (O) in its subject")
        }
        guard CertificateChecks.attribute(.RDNAttributeType.organizationalUnitName, in: subject) == ["Authenticator Attestation"] else {
            throw fail("does not have OU = \"Authenticator Attestation\" in its subject")
        }
        guard !CertificateChecks.attribute(.RDNAttributeType.commonName, in: subject).isEmpty else {
            throw fail("has no common name (CN) in its subject")
        }
        guard CertificateChecks.isNotCA(certificate) else { throw fail("is a CA certificate") }
    }
}

/// `fido-u2f` (§8.6): a U2F authenticator's registration, re-expressed by the client.
enum FIDOU2FAttestation {
    static func verify(_ input: AttestationInput) throws(WebAuthnError) -> AttestationOutcome {
        let sig: [UInt8] = try input.field("sig", { $0.bytesValue }, format: "fido-u2f")
        let x5c = try input.certificates(format: "fido-u2f")
        guard x5c.count == 1 else {
            throw WebAuthnError(.attestationStatementMalformed, "a fido-u2f x5c holds exactly one certificate, not \(x5c.count)")
        }
        guard case .ec(curve: 1, let x, let y) = input.publicKey.material else {
            throw WebAuthnError(.attestationPublicKeyMismatch, "a fido-u2f credential key must be an EC2 P-256 key")
        }
        let data: [UInt8] = [0x00] + input.authenticatorData.rpIDHash + input.clientDataHash + input.credential.credentialID + [0x04] + x + y
        guard try CertificateChecks.verify(sig, over: data, with: x5c.leaf, algorithm: .es256) else {
            throw WebAuthnError(.attestationSignature, "the fido-u2f attestation signature does not verify with its certificate's P-256 key")
        }
        return AttestationOutcome(type: .basic, x5c: x5c)
    }
}

/// `apple` (§8.8): Apple's anonymous attestation; the nonce is in a certificate extension.
enum AppleAttestation {
    static let nonceExtension: ASN1ObjectIdentifier = [1, 2, 840, 113635, 100, 8, 2]

    static func verify(_ input: AttestationInput) throws(WebAuthnError) -> AttestationOutcome {
        let x5c = try input.certificates(format: "apple")
        let leaf = x5c.leaf
        let nonce = input.signedData.sha256
        guard let node = CertificateChecks.extensionNode(leaf, nonceExtension), let found = try? Self.nonce(in: node) else {
            throw WebAuthnError(.attestationCertificateRequirements, "the apple credential certificate has no readable nonce extension (1.2.840.113635.100.8.2)")
        }
        guard constantTimeEquals(found, nonce) else {
            throw WebAuthnError(.attestationNonceMismatch, "the apple certificate's nonce is not SHA-256(authenticatorData || clientDataHash)")
        }
        guard CertificateChecks.certificate(leaf, holds: input.publicKey) else {
            throw WebAuthnError(.attestationPublicKeyMismatch, "the apple credential certificate is not for the credential's public key")
        }
        return AttestationOutcome(type: .anonCA, x5c: x5c)
    }

    /// `SEQUENCE { [1] EXPLICIT OCTET STRING nonce }`.
    static func nonce(in node: ASN1Node) throws -> [UInt8] {
        guard case .constructed(let children) = node.content else { throw ASN1Error.invalidASN1Object(reason: "not a sequence") }
        for child in children where child.identifier == ASN1Identifier(tagWithNumber: 1, tagClass: .contextSpecific) {
            guard case .constructed(let inner) = child.content, let first = inner.first(where: { _ in true }) else { continue }
            return Array(try ASN1OctetString(derEncoded: first).bytes)
        }
        throw ASN1Error.invalidASN1Object(reason: "no nonce")
    }
}
