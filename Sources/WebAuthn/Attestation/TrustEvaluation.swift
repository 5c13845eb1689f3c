import Foundation
@_spi(FixedExpiryValidationTime) import X509
import SwiftASN1

/// Decides whether a certificate chain reaches one of a set of trust anchors, with swift-certificates' RFC 5280
/// verifier at a given time.
enum TrustEvaluation {
    static func chains(_ certificates: [Certificate], to anchors: [Certificate], at time: Date) async -> Bool {
        await evaluate(certificates, to: anchors, at: time) == nil
    }

    /// `nil` when the chain reaches an anchor; otherwise why not, for administrators. `unreadable` names the chain
    /// certificates that could not be parsed, and so could not be used: they are the likely reason when none is found.
    static func evaluate(_ certificates: [Certificate], unreadable: [String], to anchors: [Certificate], at time: Date) async -> String? {
        guard let reason = await evaluate(certificates, to: anchors, at: time) else { return nil }
        guard !unreadable.isEmpty, !anchors.isEmpty else { return reason }
        return "no chain to a trust anchor could be built without the certificates that cannot be read ("
            + unreadable.joined(separator: "; ") + "): \(reason)"
    }

    /// `nil` when the chain reaches an anchor; otherwise why not, for administrators.
    static func evaluate(_ certificates: [Certificate], to anchors: [Certificate], at time: Date) async -> String? {
        guard let leaf = certificates.first else { return "there is no certificate" }
        guard !anchors.isEmpty else { return "no trust anchor is configured for this authenticator" }
        // An administrator may trust an attestation certificate itself (a batch certificate that is self-signed and
        // not a CA, as Chromium's virtual authenticator has); RFC 5280 path building would refuse it as a root. Such
        // an authenticator may mint its self-signed certificate afresh (Chromium does, with a new expiry each time),
        // so what is trusted is the name and key: a leaf with the anchor's subject and public key, signed by that key.
        if anchors.contains(where: { $0 == leaf || ($0.subject == leaf.subject && $0.publicKey == leaf.publicKey && leaf.issuer == leaf.subject
                                                    && leaf.publicKey.isValidSignature(leaf.signature, for: leaf)) }) {
            return leaf.notValidBefore <= time && time <= leaf.notValidAfter
                ? nil : "the trusted attestation certificate is not valid at \(time)"
        }
        var verifier = Verifier(rootCertificates: CertificateStore(anchors)) {
            RFC5280Policy(fixedExpiryValidationTime: time)
            AttestationLeafPolicy()
        }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(certificates.dropFirst()))
        switch result {
        case .validCertificate: return nil
        case .couldNotValidate(let failures):
            if let failure = failures.first { return "\(failure.policyFailureReason)" }
            return "no chain from the attestation certificate reaches a trust anchor"
        }
    }
}

/// Attestation leaves carry critical extensions the RFC 5280 policy does not know (a TPM AIK's subject alternative
/// name is critical because its subject is empty); the format-specific checks have already judged them.
struct AttestationLeafPolicy: VerifierPolicy {
    let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = [
        .X509ExtensionID.subjectAlternativeName,
        .X509ExtensionID.extendedKeyUsage,
        .X509ExtensionID.keyUsage,
        // TPM AIK certificates mark their certificate policies critical; WebAuthn asks nothing of them.
        [2, 5, 29, 32],
    ]

    func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) async -> PolicyEvaluationResult {
        .meetsPolicy
    }
}
