import X509
import SwiftASN1

/// Explains an attestation object or authenticator data field by field, for `tessera webauthn inspect`.
/// It reports what it finds and where parsing stops; it verifies nothing.
public enum Inspector {
    /// A readable, indented explanation of `bytes`, which may be an attestation object or authenticator data.
    public static func explain(_ bytes: [UInt8]) -> String {
        var out: [String] = []
        if let value = try? CBORDecoder(limits: .strict).decode(bytes), value.mapValue != nil {
            explainAttestationObject(value, bytes: bytes, into: &out)
        } else {
            out.append("authenticator data (\(bytes.count) bytes)")
            explainAuthenticatorData(bytes, indent: "  ", into: &out)
        }
        return out.joined(separator: "\n")
    }

    static func explainAttestationObject(_ value: CBORValue, bytes: [UInt8], into out: inout [String]) {
        out.append("attestation object (\(bytes.count) bytes of CBOR)")
        let format = value[textKey: "fmt"]?.textValue
        out.append("  fmt: \(format.map { "\"\($0)\"" } ?? "missing") — \(formatNote(format))")
        if let statement = value[textKey: "attStmt"] {
            out.append("  attStmt:")
            explainStatement(statement, indent: "    ", into: &out)
        } else {
            out.append("  attStmt: missing")
        }
        if let authData = value[textKey: "authData"]?.bytesValue {
            out.append("  authData (\(authData.count) bytes):")
            explainAuthenticatorData(authData, indent: "    ", into: &out)
        } else {
            out.append("  authData: missing or not a byte string")
        }
        do {
            _ = try AttestationObject(bytes)
        } catch {
            out.append("  problem: \(error.code): \(error.message)")
        }
    }

    static func formatNote(_ format: String?) -> String {
        switch format {
        case "none": "no attestation; nothing is known about the authenticator"
        case "packed": "WebAuthn's own format: self attestation, or a certificate chain in x5c"
        case "fido-u2f": "a U2F security key's registration"
        case "tpm": "a TPM 2.0 certified the key (Windows Hello)"
        case "android-key": "Android hardware keystore"
        case "android-safetynet": "Android SafetyNet (deprecated by Google)"
        case "apple": "Apple anonymous attestation"
        default: "not a format this verifier knows"
        }
    }

    static func explainStatement(_ statement: CBORValue, indent: String, into out: inout [String]) {
        guard let pairs = statement.mapValue else { out.append(indent + "not a map"); return }
        if pairs.isEmpty { out.append(indent + "(empty)") }
        for pair in pairs {
            let key = pair.key.textValue ?? "\(pair.key)"
            switch (key, pair.value) {
            case ("alg", let v): out.append(indent + "alg: \(v.int.map { "\($0) (\(COSEAlgorithm($0)))" } ?? "not an integer")")
            case ("x5c", .array(let certs)):
                out.append(indent + "x5c: \(certs.count) certificate\(certs.count == 1 ? "" : "s")")
                for (index, item) in certs.enumerated() {
                    guard let der = item.bytesValue else { out.append(indent + "  [\(index)] not a byte string"); continue }
                    guard let certificate = try? Certificate(derEncoded: der) else {
                        let consequence = index == 0 ? "the attestation cannot be verified" : "the chain cannot be built through it"
                        out.append(indent + "  [\(index)] cannot be read: \(AttestationCertificates.whyUnreadable(der)); \(consequence)")
                        continue
                    }
                    out.append(indent + "  [\(index)] subject: \(certificate.subject.isEmpty ? "(empty)" : String(describing: certificate.subject))")
                    out.append(indent + "      issuer: \(certificate.issuer)")
                    out.append(indent + "      valid: \(certificate.notValidBefore) to \(certificate.notValidAfter)")
                    if let ext = certificate.extensions[oid: CertificateChecks.aaguidExtension] {
                        out.append(indent + "      AAGUID extension present (critical: \(ext.critical))")
                    }
                }
            case (_, .bytes(let b)):
                out.append(indent + "\(key): \(b.count) bytes \(hex(b.prefix(32)))\(b.count > 32 ? "…" : "")")
                if key == "pubArea" { explainPublicArea(b, indent: indent + "  ", into: &out) }
                if key == "certInfo" { explainCertInfo(b, indent: indent + "  ", into: &out) }
            case (_, .text(let t)): out.append(indent + "\(key): \"\(t)\"")
            default: out.append(indent + "\(key): \(pair.value)")
            }
        }
    }

    static func explainPublicArea(_ bytes: [UInt8], indent: String, into out: inout [String]) {
        do {
            let area = try TPMAttestation.PublicArea(bytes)
            let type = area.type == TPMAttestation.PublicArea.rsa ? "RSA, \(area.rsaModulus.count * 8)-bit modulus, exponent \(area.rsaExponent)"
                : "ECC, curve 0x\(String(area.curve, radix: 16))"
            out.append(indent + "TPMT_PUBLIC: \(type); nameAlg 0x\(String(area.nameAlg, radix: 16, uppercase: false))")
        } catch {
            out.append(indent + "TPMT_PUBLIC: \(error.message)")
        }
    }

    static func explainCertInfo(_ bytes: [UInt8], indent: String, into out: inout [String]) {
        do {
            let info = try TPMAttestation.AttestationInfo(bytes)
            out.append(indent + "TPMS_ATTEST: TPM_GENERATED_VALUE, TPM_ST_ATTEST_CERTIFY; extraData \(info.extraData.count) bytes "
                + "(the hash of authData || clientDataHash); attested name \(hex(info.attestedName.prefix(2))) + \(info.attestedName.count - 2)-byte digest")
        } catch {
            out.append(indent + "TPMS_ATTEST: \(error.message)")
        }
    }

    static func explainAuthenticatorData(_ bytes: [UInt8], indent: String, into out: inout [String]) {
        guard bytes.count >= 37 else { out.append(indent + "too short: \(bytes.count) bytes, at least 37 are needed"); return }
        out.append(indent + "rpIdHash: \(hex(bytes[0..<32])) (SHA-256 of the RP ID)")
        let flags = AuthenticatorData.Flags(rawValue: bytes[32])
        let names: [(AuthenticatorData.Flags, String)] = [
            (.userPresent, "UP user present"), (.userVerified, "UV user verified"), (.backupEligible, "BE backup eligible"),
            (.backupState, "BS backed up"), (.attestedCredentialData, "AT attested credential data"), (.extensionData, "ED extensions"),
        ]
        let set = names.filter { flags.contains($0.0) }.map(\.1)
        out.append(indent + "flags: 0x\(hex([bytes[32]])) = \(set.isEmpty ? "none" : set.joined(separator: ", "))")
        if bytes[32] & 0x22 != 0 { out.append(indent + "  reserved flag bits are set (0x22)") }
        if flags.contains(.backupState) && !flags.contains(.backupEligible) { out.append(indent + "  BS without BE is invalid") }
        out.append(indent + "passkey type: \(flags.contains(.backupEligible) ? "synced (BE set: the credential may be copied to other devices)" : "device-bound by the authenticator's claim (BE clear)")")
        let count = UInt32(bytes[33]) << 24 | UInt32(bytes[34]) << 16 | UInt32(bytes[35]) << 8 | UInt32(bytes[36])
        out.append(indent + "signCount: \(count)\(count == 0 ? " (this authenticator may not keep a counter)" : "")")
        do {
            let data = try AuthenticatorData(bytes)
            if let credential = data.attestedCredential {
                // The inspector verifies nothing, so a name read from the AAGUID is always the authenticator's claim.
                let name = KnownAuthenticators.name(of: credential.aaguid, metadata: nil)
                let note = name.map { " (\($0), as the authenticator claims: only trusted attestation proves it)" }
                    ?? (credential.aaguid == .zero ? " (not given)" : "")
                out.append(indent + "aaguid: \(credential.aaguid)\(note)")
                out.append(indent + "credentialId: \(credential.credentialID.count) bytes \(Base64URL.encode(credential.credentialID))")
                switch credential.publicKeyResult {
                case .success(let key): out.append(indent + "publicKey: \(key.summary), \(credential.publicKeyBytes.count) bytes of COSE")
                case .failure(let error): out.append(indent + "publicKey: unusable: \(error.message)")
                }
            }
            if let extensions = data.extensions {
                out.append(indent + "extensions: \(extensions)")
            }
        } catch {
            out.append(indent + "problem: \(error.code): \(error.message)")
        }
    }
}
