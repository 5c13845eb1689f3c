import Foundation
import SwiftASN1

/// Entry points for the libFuzzer target (`Fuzz/`): every parser that reads bytes an attacker controls, reached
/// directly so that the fuzzer does not have to get past signature checks first. Not API.
@_spi(Fuzzing)
public enum FuzzEntry {
    /// Runs `bytes` through every parser. Anything other than a thrown ``WebAuthnError`` (a crash, a trap, a
    /// hang) is a bug.
    public static func run(_ bytes: [UInt8]) {
        _ = try? CBORDecoder(limits: .strict).decode(bytes)
        _ = try? CBORDecoder(limits: .ctap2).decode(bytes)
        _ = try? CredentialPublicKey(cose: bytes)
        _ = try? AuthenticatorData(bytes)
        _ = try? CollectedClientData(json: bytes)
        _ = JSON.parse(bytes)
        _ = try? RegistrationResponse(json: bytes)
        _ = try? RegistrationResponse(graphJSON: bytes)
        _ = try? AuthenticationResponse(json: bytes)
        _ = try? TPMAttestation.PublicArea(bytes)
        _ = try? TPMAttestation.AttestationInfo(bytes)
        _ = AttestationCertificates.whyUnreadable(bytes)
        if let node = try? DER.parse(bytes) {
            _ = try? AndroidKeyAttestation.KeyDescription(node)
            _ = try? AppleAttestation.nonce(in: node)
        }
        _ = Inspector.explain(bytes)
        attestation(bytes)
    }

    /// An attestation object through its format's verification, with a fixed client data hash.
    static func attestation(_ bytes: [UInt8]) {
        guard let object = try? AttestationObject(bytes), let credential = object.authenticatorData.attestedCredential,
              let key = try? credential.publicKey() else { return }
        _ = try? AttestationFormat.verify(format: object.format, AttestationInput(
            statement: object.statement, authenticatorData: object.authenticatorData, credential: credential, publicKey: key,
            clientDataHash: [UInt8](repeating: 0x5A, count: 32), verificationTime: Date(timeIntervalSince1970: 1_700_000_000)))
    }
}
