/// An authentication response (`PublicKeyCredential` of `get()`), with its binary members decoded.
public struct AuthenticationResponse: Sendable {
    public var id: String
    public var rawID: [UInt8]
    public var type: String
    public var clientDataJSON: [UInt8]
    public var authenticatorData: [UInt8]
    public var signature: [UInt8]
    public var userHandle: [UInt8]?

    public init(id: String, rawID: [UInt8], type: String = "public-key", clientDataJSON: [UInt8], authenticatorData: [UInt8],
                signature: [UInt8], userHandle: [UInt8]?) {
        self.id = id
        self.rawID = rawID
        self.type = type
        self.clientDataJSON = clientDataJSON
        self.authenticatorData = authenticatorData
        self.signature = signature
        self.userHandle = userHandle
    }
}

/// What the relying party stored at registration and needs to check an assertion.
public struct StoredCredential: Sendable {
    public var id: [UInt8]
    public var publicKey: CredentialPublicKey
    public var signCount: UInt32
    public var backupEligible: Bool
    /// The user handle the credential was created for, when known.
    public var userHandle: [UInt8]?

    public init(id: [UInt8], publicKey: CredentialPublicKey, signCount: UInt32, backupEligible: Bool, userHandle: [UInt8]? = nil) {
        self.id = id
        self.publicKey = publicKey
        self.signCount = signCount
        self.backupEligible = backupEligible
        self.userHandle = userHandle
    }
}

/// The result of a verified assertion; store `newSignCount` and `backupState`.
public struct VerifiedAuthentication: Sendable, Hashable {
    public let newSignCount: UInt32
    public let backupState: Bool
    public let backupEligible: Bool
    public let userVerified: Bool
}

extension RelyingParty {
    /// Verifies an assertion (WebAuthn Level 3, §7.2) against a stored credential.
    ///
    /// - Parameters:
    ///   - challenge: the challenge issued for this ceremony.
    ///   - credential: the credential the response's id names (steps 5–7: the caller looks it up by id).
    ///   - requireUserHandle: a discoverable-credential sign-in, where the user handle identifies the user.
    public func verifyAuthentication(
        _ response: AuthenticationResponse, challenge: [UInt8], credential: StoredCredential,
        requireUserVerification: Bool, requireUserHandle: Bool = false
    ) throws(WebAuthnError) -> VerifiedAuthentication {
        guard response.type == "public-key" else { throw WebAuthnError(.responseType, "credential type is \"\(response.type)\", not \"public-key\"") }
        // Step 5: the credential is the one named.
        guard response.rawID == credential.id, Base64URL.matches(response.id, response.rawID) else {
            throw WebAuthnError(.credentialIdMismatch, "the response is for another credential")
        }
        // Step 6: the user handle.
        if let handle = response.userHandle, !handle.isEmpty {
            if let expected = credential.userHandle, !constantTimeEquals(handle, expected) {
                throw WebAuthnError(.assertionUserHandleMismatch, "the user handle is not the one the credential was registered to")
            }
        } else if requireUserHandle {
            throw WebAuthnError(.assertionUserHandleMissing, "a sign-in without a username needs the authenticator's user handle")
        }
        // Steps 10–14.
        let clientData = try CollectedClientData(json: response.clientDataJSON)
        try checkClientData(clientData, type: "webauthn.get", challenge: challenge)
        // Steps 15–18.
        let authData = try AuthenticatorData(response.authenticatorData)
        try checkAuthenticatorData(authData, requireUserVerification: requireUserVerification)
        // Step 19: BE is fixed for a credential's life.
        guard authData.backupEligible == credential.backupEligible else {
            throw WebAuthnError(.authDataBackupEligibilityChanged,
                                "backup eligibility (BE) was \(credential.backupEligible) at registration and is \(authData.backupEligible) now")
        }
        // Steps 20–21.
        guard credential.publicKey.isValidAssertionSignature(response.signature, authenticatorData: response.authenticatorData,
                                                             clientDataJSON: response.clientDataJSON) else {
            throw WebAuthnError(.assertionSignature, "the assertion signature does not verify with the credential's public key")
        }
        // Step 22: the signature counter.
        if authData.signCount != 0 || credential.signCount != 0, authData.signCount <= credential.signCount {
            throw WebAuthnError(.assertionPossibleClone,
                                "the signature counter went from \(credential.signCount) to \(authData.signCount): the authenticator may have been cloned")
        }
        return VerifiedAuthentication(newSignCount: authData.signCount, backupState: authData.backupState,
                                      backupEligible: authData.backupEligible, userVerified: authData.userVerified)
    }
}
