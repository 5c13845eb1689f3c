import Foundation
import X509
import SwiftASN1

/// `android-key` (§8.4): a key in Android's hardware-backed keystore, described by a certificate extension.
enum AndroidKeyAttestation {
    static let keyDescriptionExtension: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 11129, 2, 1, 17]

    static func verify(_ input: AttestationInput) throws(WebAuthnError) -> AttestationOutcome {
        let alg = COSEAlgorithm(try input.field("alg", { $0.int }, format: "android-key"))
        let sig: [UInt8] = try input.field("sig", { $0.bytesValue }, format: "android-key")
        let x5c = try input.certificates(format: "android-key")
        let leaf = x5c.leaf
        guard try CertificateChecks.verify(sig, over: input.signedData, with: leaf, algorithm: alg) else {
            throw WebAuthnError(.attestationSignature, "the android-key signature does not verify with the credential certificate")
        }
        guard CertificateChecks.certificate(leaf, holds: input.publicKey) else {
            throw WebAuthnError(.attestationPublicKeyMismatch, "the android-key certificate is not for the credential's public key")
        }
        guard let node = CertificateChecks.extensionNode(leaf, keyDescriptionExtension) else {
            throw WebAuthnError(.attestationAndroidKeyDescription, "the certificate has no key description extension (1.3.6.1.4.1.11129.2.1.17)")
        }
        let description: KeyDescription
        do { description = try KeyDescription(node) } catch {
            throw WebAuthnError(.attestationAndroidKeyDescription, "the key description extension is malformed")
        }
        guard constantTimeEquals(description.attestationChallenge, input.clientDataHash) else {
            throw WebAuthnError(.attestationNonceMismatch, "the key description's attestationChallenge is not the clientDataHash")
        }
        let lists = [description.softwareEnforced, description.teeEnforced]
        guard !lists.contains(where: \.allApplications) else {
            throw WebAuthnError(.attestationAndroidKeyDescription, "the key is usable by all applications (allApplications is present)")
        }
        // §8.4.1: the union of both lists, unless only TEE-backed keys are wanted.
        guard lists.contains(where: { $0.origin == 0 }) else {
            throw WebAuthnError(.attestationAndroidKeyDescription, "the key was not generated in the keystore (origin is not KM_ORIGIN_GENERATED)")
        }
        guard lists.contains(where: { $0.purposes.contains(2) }) else {
            throw WebAuthnError(.attestationAndroidKeyDescription, "the key's purposes do not include KM_PURPOSE_SIGN")
        }
        return AttestationOutcome(type: .basic, x5c: x5c)
    }

    /// The parts of Android's `KeyDescription` that WebAuthn checks.
    struct KeyDescription {
        struct AuthorizationList {
            var purposes: [Int] = []
            var allApplications = false
            var origin: Int?
        }
        var attestationChallenge: [UInt8]
        var softwareEnforced: AuthorizationList
        var teeEnforced: AuthorizationList

        init(_ node: ASN1Node) throws {
            guard case .constructed(let children) = node.content else { throw ASN1Error.invalidASN1Object(reason: "KeyDescription") }
            let fields = Array(children)
            guard fields.count >= 8 else { throw ASN1Error.invalidASN1Object(reason: "KeyDescription has \(fields.count) fields") }
            attestationChallenge = Array(try ASN1OctetString(derEncoded: fields[4]).bytes)
            softwareEnforced = try Self.list(fields[6])
            teeEnforced = try Self.list(fields[7])
        }

        static func list(_ node: ASN1Node) throws -> AuthorizationList {
            guard case .constructed(let entries) = node.content else { throw ASN1Error.invalidASN1Object(reason: "AuthorizationList") }
            var list = AuthorizationList()
            for entry in entries where entry.identifier.tagClass == .contextSpecific {
                guard case .constructed(let inner) = entry.content, let value = inner.first(where: { _ in true }) else { continue }
                switch entry.identifier.tagNumber {
                case 1:
                    guard case .constructed(let set) = value.content else { throw ASN1Error.invalidASN1Object(reason: "purpose") }
                    list.purposes = try set.map { try Int(derEncoded: $0) }
                case 600: list.allApplications = true
                case 702: list.origin = try Int(derEncoded: value)
                default: break
                }
            }
            return list
        }
    }
}

/// `android-safetynet` (§8.5): a SafetyNet attestation JWS about the device, binding the ceremony in its nonce.
enum AndroidSafetyNetAttestation {
    /// How far the SafetyNet timestamp may be from the verification time.
    static let allowedSkew: TimeInterval = 60

    static func verify(_ input: AttestationInput) throws(WebAuthnError) -> AttestationOutcome {
        _ = try input.field("ver", { $0.textValue }, format: "android-safetynet")
        let response: [UInt8] = try input.field("response", { $0.bytesValue }, format: "android-safetynet")
        func fail(_ why: String) -> WebAuthnError { WebAuthnError(.attestationSafetyNetResponse, "the SafetyNet response \(why)") }
        let parts = response.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3,
              let headerBytes = Base64URL.decode(String(decoding: parts[0], as: UTF8.self)),
              let payloadBytes = Base64URL.decode(String(decoding: parts[1], as: UTF8.self)),
              let signature = Base64URL.decode(String(decoding: parts[2], as: UTF8.self)),
              let header = JSON.parse(headerBytes), let payload = JSON.parse(payloadBytes)
        else { throw fail("is not a compact JWS") }
        guard header["alg"]?.string == "RS256" else { throw fail("is not signed with RS256") }
        guard let x5c = header["x5c"]?.array, !x5c.isEmpty else { throw fail("has no x5c header") }
        // As for a statement's x5c, only the signing certificate must parse; the rest only help build a chain.
        var chain = AttestationCertificates(certificates: [], count: x5c.count, unreadable: [])
        for (index, item) in x5c.enumerated() {
            guard let text = item.string, let der = Base64URL.decodeStandard(text) else {
                throw WebAuthnError(.attestationCertificateMalformed, "the SafetyNet x5c[\(index)] is not base64")
            }
            if let certificate = try? Certificate(derEncoded: der) {
                chain.certificates.append(certificate)
            } else if index == 0 {
                throw WebAuthnError(.attestationCertificateMalformed, "the SafetyNet signing certificate cannot be read: \(AttestationCertificates.whyUnreadable(der))")
            } else {
                chain.unreadable.append("the SafetyNet x5c[\(index)] cannot be read: \(AttestationCertificates.whyUnreadable(der))")
            }
        }
        let leaf = chain.leaf
        let signingInput = Array(parts[0]) + [UInt8(ascii: ".")] + Array(parts[1])
        guard try CertificateChecks.verify(signature, over: signingInput, with: leaf, algorithm: .rs256) else {
            throw fail("signature does not verify with its certificate")
        }
        let names = (try? leaf.extensions.subjectAlternativeNames)?.compactMap { name -> String? in
            if case .dnsName(let dns) = name { dns } else { nil }
        } ?? []
        guard names.contains("attest.android.com") || CertificateChecks.attribute(.RDNAttributeType.commonName, in: leaf.subject).contains("attest.android.com") else {
            throw WebAuthnError(.attestationCertificateRequirements, "the SafetyNet certificate is not issued to attest.android.com")
        }
        guard let nonceText = payload["nonce"]?.string, let nonce = Base64URL.decodeStandard(nonceText) else { throw fail("has no nonce") }
        guard constantTimeEquals(nonce, input.signedData.sha256) else {
            throw WebAuthnError(.attestationNonceMismatch, "the SafetyNet nonce is not SHA-256(authenticatorData || clientDataHash)")
        }
        guard payload["ctsProfileMatch"]?.bool == true else {
            throw WebAuthnError(.attestationSafetyNetIntegrity, "SafetyNet reports ctsProfileMatch false: the device failed its integrity check")
        }
        guard let milliseconds = payload["timestampMs"]?.number else { throw fail("has no timestampMs") }
        let stamp = Date(timeIntervalSince1970: milliseconds / 1000)
        let difference = input.verificationTime.timeIntervalSince(stamp)
        guard difference >= -allowedSkew, difference <= allowedSkew else {
            throw WebAuthnError(.attestationSafetyNetTimestamp, "the SafetyNet timestamp \(stamp) is more than \(Int(allowedSkew)) s from \(input.verificationTime)")
        }
        return AttestationOutcome(type: .basic, x5c: chain)
    }
}
