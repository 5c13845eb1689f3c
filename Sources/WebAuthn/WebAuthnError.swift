/// The one error the WebAuthn library throws. Every step of a ceremony that can fail has its own ``Code``, so an
/// administrator can see exactly why a passkey was refused; `message` adds the particulars.
///
/// Compare errors by code: `error.code == .assertionSignature`.
public struct WebAuthnError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A stable, dotted identifier such as `authData.rpIdHash`. New codes never break callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code as shown to administrators and printed by `tessera webauthn`.
        public let name: String
        init(_ name: String) { self.name = name }
        public var description: String { name }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.name): \(message)" }
}

extension WebAuthnError.Code {
    // The response as the browser sent it.
    /// A field of the credential is missing, of the wrong type or not base64url.
    public static let responseMalformed = Self("response.malformed")
    /// `type` is not `public-key`.
    public static let responseType = Self("response.type")
    /// `id` and `rawId` differ, or the credential is not the one expected.
    public static let credentialIdMismatch = Self("credential.idMismatch")

    // Collected client data (§7.1 steps 5–11, §7.2 steps 9–15).
    /// `clientDataJSON` is not a JSON object of the expected shape.
    public static let clientDataMalformed = Self("clientData.malformed")
    /// `type` is not `webauthn.create` (registration) or `webauthn.get` (authentication).
    public static let clientDataType = Self("clientData.type")
    /// The challenge is not the one this relying party issued.
    public static let clientDataChallenge = Self("clientData.challenge")
    /// The origin is not exactly one of the configured origins.
    public static let clientDataOrigin = Self("clientData.origin")
    /// The ceremony ran in a cross-origin iframe and that is not allowed.
    public static let clientDataCrossOrigin = Self("clientData.crossOrigin")
    /// `topOrigin` is present and not one of the allowed top-level origins.
    public static let clientDataTopOrigin = Self("clientData.topOrigin")
    /// Token binding was present and not supported.
    public static let clientDataTokenBinding = Self("clientData.tokenBinding")

    // CBOR and the attestation object.
    /// The CBOR is malformed or breaks a strictness rule (indefinite length, non-canonical, too deep, trailing bytes).
    public static let cborMalformed = Self("cbor.malformed")
    /// The attestation object is not a map of `fmt`, `attStmt` and `authData`.
    public static let attestationObjectMalformed = Self("attestationObject.malformed")

    // Authenticator data.
    /// The authenticator data is truncated, has trailing bytes, or its flags disagree with its contents.
    public static let authDataMalformed = Self("authData.malformed")
    /// `rpIdHash` is not SHA-256 of the relying party id.
    public static let authDataRPIDHash = Self("authData.rpIdHash")
    /// The user-present flag is not set.
    public static let authDataUserNotPresent = Self("authData.userNotPresent")
    /// User verification was required and the user-verified flag is not set.
    public static let authDataUserNotVerified = Self("authData.userNotVerified")
    /// The backup-state flag is set without the backup-eligible flag.
    public static let authDataBackupStateWithoutEligibility = Self("authData.backupStateWithoutEligibility")
    /// The backup-eligible flag differs from the one recorded at registration.
    public static let authDataBackupEligibilityChanged = Self("authData.backupEligibilityChanged")
    /// A registration without attested credential data.
    public static let authDataAttestedCredentialMissing = Self("authData.attestedCredentialMissing")

    // The credential.
    /// The credential id is longer than 1023 bytes.
    public static let credentialIdTooLong = Self("credential.idTooLong")
    /// The COSE key is malformed or inconsistent (curve and algorithm disagree, wrong coordinate length).
    public static let credentialPublicKeyMalformed = Self("credential.publicKeyMalformed")
    /// The COSE key type or algorithm is not one this verifier supports.
    public static let credentialPublicKeyUnsupported = Self("credential.publicKeyUnsupported")
    /// The algorithm is not in the relying party's allowed list.
    public static let credentialAlgorithmNotAllowed = Self("credential.algorithmNotAllowed")

    // Attestation statements (§8).
    /// `fmt` names a format this verifier does not know.
    public static let attestationUnsupportedFormat = Self("attestation.unsupportedFormat")
    /// The attestation statement lacks a field or has one of the wrong type.
    public static let attestationStatementMalformed = Self("attestation.statementMalformed")
    /// The attestation signature does not verify.
    public static let attestationSignature = Self("attestation.signature")
    /// The statement's `alg` does not match the key that signed it.
    public static let attestationAlgorithmMismatch = Self("attestation.algorithmMismatch")
    /// An attestation certificate could not be parsed.
    public static let attestationCertificateMalformed = Self("attestation.certificateMalformed")
    /// An attestation certificate breaks the format's requirements (§8.2.1, §8.3.1, …).
    public static let attestationCertificateRequirements = Self("attestation.certificateRequirements")
    /// The certificate's AAGUID extension differs from the authenticator data's AAGUID.
    public static let attestationAAGUIDMismatch = Self("attestation.aaguidMismatch")
    /// The attested public key is not the credential's public key.
    public static let attestationPublicKeyMismatch = Self("attestation.publicKeyMismatch")
    /// The nonce or challenge bound into the attestation is not this ceremony's.
    public static let attestationNonceMismatch = Self("attestation.nonceMismatch")
    /// TPM `certInfo` (TPMS_ATTEST) is malformed or does not attest this key.
    public static let attestationTPMCertInfo = Self("attestation.tpmCertInfo")
    /// TPM `pubArea` (TPMT_PUBLIC) is malformed or does not match the credential key.
    public static let attestationTPMPubArea = Self("attestation.tpmPubArea")
    /// The Android key description extension is missing, malformed or fails a check.
    public static let attestationAndroidKeyDescription = Self("attestation.androidKeyDescription")
    /// The SafetyNet JWS is malformed, or its signature or certificate is wrong.
    public static let attestationSafetyNetResponse = Self("attestation.safetyNetResponse")
    /// SafetyNet says the device failed its integrity check.
    public static let attestationSafetyNetIntegrity = Self("attestation.safetyNetIntegrity")
    /// The SafetyNet timestamp is in the future or too old.
    public static let attestationSafetyNetTimestamp = Self("attestation.safetyNetTimestamp")
    /// Trusted attestation was required and the chain does not reach a trust anchor.
    public static let attestationUntrusted = Self("attestation.untrusted")

    // Metadata (FIDO MDS3).
    /// The metadata BLOB is malformed, or its signature or certificate chain does not verify.
    public static let metadataBlobInvalid = Self("metadata.blobInvalid")
    /// The metadata service reports the authenticator revoked or its keys compromised.
    public static let metadataAuthenticatorRevoked = Self("metadata.authenticatorRevoked")
    /// The metadata service reports that the authenticator's user verification can be bypassed.
    public static let metadataUserVerificationBypass = Self("metadata.userVerificationBypass")

    // Assertions (§7.2).
    /// The assertion signature does not verify with the stored public key.
    public static let assertionSignature = Self("assertion.signature")
    /// A non-zero signature counter did not increase: the authenticator may have been cloned.
    public static let assertionPossibleClone = Self("assertion.possibleClone")
    /// A discoverable-credential sign-in without a user handle.
    public static let assertionUserHandleMissing = Self("assertion.userHandleMissing")
    /// The user handle is not the one the credential was registered to.
    public static let assertionUserHandleMismatch = Self("assertion.userHandleMismatch")
}
