public import X509

/// A registration response (`PublicKeyCredential` of `create()`), with its binary members decoded.
public struct RegistrationResponse: Sendable {
    /// `id`, base64url as the browser sent it.
    public var id: String
    public var rawID: [UInt8]
    public var type: String
    public var clientDataJSON: [UInt8]
    public var attestationObject: [UInt8]

    public init(id: String, rawID: [UInt8], type: String = "public-key", clientDataJSON: [UInt8], attestationObject: [UInt8]) {
        self.id = id
        self.rawID = rawID
        self.type = type
        self.clientDataJSON = clientDataJSON
        self.attestationObject = attestationObject
    }
}

/// A credential that passed every registration step, with what is known about its authenticator.
public struct VerifiedRegistration: Sendable {
    public let credentialID: [UInt8]
    public let publicKey: CredentialPublicKey
    public let signCount: UInt32
    public let aaguid: AAGUID
    /// The attestation statement format (`fmt`).
    public let format: String
    public let attestationType: AttestationType
    /// Whether the attestation chains to a trust anchor (the administrator's or the metadata's).
    public let attestationTrusted: Bool
    /// Why the attestation is not trusted (no certificate, no anchor for it, a chain that cannot be built or
    /// checked); `nil` when it is.
    public let attestationUntrustedReason: String?
    /// The attestation certificates, leaf first, as the authenticator sent them.
    public let attestationCertificates: [Certificate]
    public let backupEligible: Bool
    public let backupState: Bool
    public let userVerified: Bool
    public let passkeyType: PasskeyType
    /// The authenticator's name from metadata, or a well-known name.
    public let authenticatorName: String?
    /// The authenticator's icon (a `data:` URL) from metadata.
    public let authenticatorIcon: String?
    /// Authenticator extension outputs, if any.
    public let extensions: CBORValue?

    /// Whether the AAGUID, and so ``authenticatorName``, is established. A trusted attestation signs the
    /// authenticator data that holds the AAGUID with a key that chains to a trust anchor, so the authenticator is
    /// vouched for; otherwise the AAGUID, and any name read from it, is only what the authenticator claims to be.
    public var aaguidVerified: Bool { attestationTrusted }

    /// Whether the AAGUID is one of Windows Hello's. A claim, not proof: see ``isWindowsHello``.
    public var claimsWindowsHello: Bool { KnownAuthenticators.isWindowsHello(aaguid) }

    /// Whether the key is proven to be Windows Hello's: a Windows Hello AAGUID in a trusted attestation. Any software
    /// can claim Windows Hello's AAGUID and a clear backup-eligible flag; without trusted attestation nothing should
    /// treat the key as Windows Hello, or as bound to a TPM, on that basis.
    public var isWindowsHello: Bool { claimsWindowsHello && aaguidVerified }

    /// Sentences for administrators about what this registration does not prove (empty when attestation is trusted).
    public var caveats: [String] {
        guard !aaguidVerified else { return [] }
        var notes: [String] = []
        if let authenticatorName {
            notes.append("The authenticator's name (\(authenticatorName)) comes from its AAGUID, which is its own claim: the attestation is not trusted.")
        }
        if claimsWindowsHello {
            notes.append("The AAGUID claims Windows Hello, but without trusted attestation the key is not known to be Windows Hello's or to be held by a TPM.")
        }
        if passkeyType == .deviceBound {
            notes.append("Device-bound is the authenticator's claim (backup eligibility clear); only trusted attestation proves a key cannot leave its device.")
        }
        return notes
    }
}

/// The parsed attestation object (§6.5): format, statement and authenticator data.
public struct AttestationObject: Sendable {
    public let format: String
    public let statement: CBORValue
    public let authenticatorData: AuthenticatorData

    public init(_ bytes: [UInt8]) throws(WebAuthnError) {
        let value = try CBORDecoder(limits: .strict).decode(bytes)
        guard let pairs = value.mapValue else { throw WebAuthnError(.attestationObjectMalformed, "the attestation object is not a CBOR map") }
        guard let format = value[textKey: "fmt"]?.textValue else { throw WebAuthnError(.attestationObjectMalformed, "the attestation object has no text \"fmt\"") }
        guard let statement = value[textKey: "attStmt"], statement.mapValue != nil else {
            throw WebAuthnError(.attestationObjectMalformed, "the attestation object has no map \"attStmt\"")
        }
        guard let authData = value[textKey: "authData"]?.bytesValue else {
            throw WebAuthnError(.attestationObjectMalformed, "the attestation object has no byte string \"authData\"")
        }
        guard pairs.count == 3 else { throw WebAuthnError(.attestationObjectMalformed, "the attestation object has members other than fmt, attStmt and authData") }
        self.format = format
        self.statement = statement
        self.authenticatorData = try AuthenticatorData(authData)
    }
}

extension RelyingParty {
    /// Verifies a registration (WebAuthn Level 3, §7.1). Steps 1–4 (calling `create()`) are the client's; step 27
    /// (refusing a credential id already registered) and storing the credential are the caller's.
    ///
    /// - Parameters:
    ///   - challenge: the challenge issued for this ceremony.
    ///   - requireUserVerification: whether UV must be set (the options said `userVerification: "required"`).
    ///   - requireTrustedAttestation: refuse a credential whose attestation does not chain to a trust anchor.
    public func verifyRegistration(
        _ response: RegistrationResponse, challenge: [UInt8], requireUserVerification: Bool,
        requireTrustedAttestation: Bool = false
    ) async throws(WebAuthnError) -> VerifiedRegistration {
        guard response.type == "public-key" else { throw WebAuthnError(.responseType, "credential type is \"\(response.type)\", not \"public-key\"") }
        guard Base64URL.matches(response.id, response.rawID) else {
            throw WebAuthnError(.credentialIdMismatch, "the credential's id and rawId differ")
        }
        // Steps 5–10: the client data.
        let clientData = try CollectedClientData(json: response.clientDataJSON)
        try checkClientData(clientData, type: "webauthn.create", challenge: challenge)
        // Step 11.
        let clientDataHash = response.clientDataJSON.sha256
        // Step 12.
        let object = try AttestationObject(response.attestationObject)
        let authData = object.authenticatorData
        // Steps 13–16.
        try checkAuthenticatorData(authData, requireUserVerification: requireUserVerification)
        guard let credential = authData.attestedCredential else {
            throw WebAuthnError(.authDataAttestedCredentialMissing, "a registration's authenticator data must carry attested credential data (AT)")
        }
        guard credential.credentialID == response.rawID else {
            throw WebAuthnError(.credentialIdMismatch, "the credential id in authenticator data is not the response's rawId")
        }
        // Step 26 early: a long id is refused before any signature work.
        guard credential.credentialID.count <= 1023 else {
            throw WebAuthnError(.credentialIdTooLong, "the credential id is \(credential.credentialID.count) bytes; at most 1023 are allowed")
        }
        // Step 19.
        let publicKey = try credential.publicKey()
        guard allowedAlgorithms.contains(publicKey.algorithm) else {
            throw WebAuthnError(.credentialAlgorithmNotAllowed, "\(publicKey.algorithm) is not an allowed algorithm")
        }
        // Step 20: extensions are tolerated; their outputs are returned.
        // Steps 21–22.
        let time = clock()
        let outcome = try AttestationFormat.verify(format: object.format, AttestationInput(
            statement: object.statement, authenticatorData: authData, credential: credential, publicKey: publicKey,
            clientDataHash: clientDataHash, verificationTime: time))
        // Steps 23–25: trust.
        let entry = metadata?.entry(for: credential.aaguid)
        try entry?.checkStatus(at: time)
        let anchors = trustAnchors + (entry?.attestationRootCertificates ?? [])
        let untrustedReason = outcome.certificates.isEmpty
            ? "\(outcome.type.rawValue) attestation carries no certificate"
            : await TrustEvaluation.evaluate(outcome.certificates, unreadable: outcome.unreadable, to: anchors, at: time)
        let trusted = untrustedReason == nil
        if requireTrustedAttestation, let untrustedReason {
            throw WebAuthnError(.attestationUntrusted, "trusted attestation is required and it is not trusted: \(untrustedReason)")
        }
        var type = outcome.type
        if type == .basic, entry?.attestationTypes.contains("attca") == true, entry?.attestationTypes.contains("basic_full") == false {
            type = .attCA
        }
        return VerifiedRegistration(
            credentialID: credential.credentialID, publicKey: publicKey, signCount: authData.signCount, aaguid: credential.aaguid,
            format: object.format, attestationType: type, attestationTrusted: trusted,
            attestationUntrustedReason: untrustedReason, attestationCertificates: outcome.certificates,
            backupEligible: authData.backupEligible, backupState: authData.backupState, userVerified: authData.userVerified,
            passkeyType: PasskeyType(backupEligible: authData.backupEligible),
            authenticatorName: KnownAuthenticators.name(of: credential.aaguid, metadata: metadata),
            authenticatorIcon: entry?.icon, extensions: authData.extensions)
    }
}
