public import Foundation
public import X509
import Crypto

/// A WebAuthn relying party: the configuration every ceremony is checked against, and the two verifications.
///
/// It holds no state between ceremonies: the caller issues challenges, keeps them single-use, and stores
/// credentials. Time is an input (`clock`), so certificate validity can be judged at any moment.
public struct RelyingParty: Sendable {
    /// The RP ID: a registrable domain such as `contoso.com`, or `localhost`.
    public let id: String
    /// Origins a ceremony may come from, compared exactly (scheme, host and port; no prefix or suffix matching).
    public let origins: Set<String>
    /// Top-level origins allowed to embed a ceremony in a cross-origin iframe. Empty: cross-origin is refused.
    public let allowedTopOrigins: Set<String>
    /// Credential algorithms accepted at registration.
    public let allowedAlgorithms: [COSEAlgorithm]
    /// Attestation roots an administrator trusts, in addition to those from metadata.
    public let trustAnchors: [Certificate]
    /// A verified FIDO metadata BLOB, for names, roots and status reports.
    public let metadata: MetadataBLOB?
    /// The time used for certificate validity and metadata status.
    public let clock: @Sendable () -> Date

    let rpIDHash: [UInt8]

    public init(
        id: String, origins: some Sequence<String>, allowedTopOrigins: some Sequence<String> = [],
        allowedAlgorithms: [COSEAlgorithm] = COSEAlgorithm.defaultAllowed, trustAnchors: [Certificate] = [],
        metadata: MetadataBLOB? = nil, clock: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.id = id
        self.origins = Set(origins)
        self.allowedTopOrigins = Set(allowedTopOrigins)
        self.allowedAlgorithms = allowedAlgorithms
        self.trustAnchors = trustAnchors
        self.metadata = metadata
        self.clock = clock
        self.rpIDHash = Array(id.utf8).sha256
    }

    /// Steps shared by both ceremonies (§7.1 steps 7–10, §7.2 steps 11–14).
    func checkClientData(_ clientData: CollectedClientData, type: String, challenge: [UInt8]) throws(WebAuthnError) {
        guard clientData.type == type else {
            throw WebAuthnError(.clientDataType, "clientData.type is \"\(clientData.type)\", expected \"\(type)\"")
        }
        guard constantTimeEquals(clientData.challenge, challenge) else {
            throw WebAuthnError(.clientDataChallenge, "the challenge is not the one issued for this ceremony")
        }
        guard origins.contains(clientData.origin) else {
            throw WebAuthnError(.clientDataOrigin, "origin \"\(clientData.origin)\" is not one of this relying party's origins")
        }
        if let top = clientData.topOrigin {
            guard allowedTopOrigins.contains(top) else {
                throw WebAuthnError(.clientDataTopOrigin, "the ceremony was embedded by \"\(top)\", which is not an allowed top-level origin")
            }
        }
        if clientData.crossOrigin && allowedTopOrigins.isEmpty {
            throw WebAuthnError(.clientDataCrossOrigin, "the ceremony ran in a cross-origin iframe, which this relying party does not allow")
        }
        if clientData.tokenBindingStatus == "present" {
            throw WebAuthnError(.clientDataTokenBinding, "the client used token binding, which this relying party does not support")
        }
    }

    /// Steps shared by both ceremonies on authenticator data (§7.1 steps 13–16, §7.2 steps 15–18).
    func checkAuthenticatorData(_ data: AuthenticatorData, requireUserVerification: Bool) throws(WebAuthnError) {
        guard constantTimeEquals(data.rpIDHash, rpIDHash) else {
            throw WebAuthnError(.authDataRPIDHash, "rpIdHash is not SHA-256(\"\(id)\"): the credential belongs to another relying party")
        }
        guard data.userPresent else { throw WebAuthnError(.authDataUserNotPresent, "the user-present (UP) flag is not set") }
        if requireUserVerification && !data.userVerified {
            throw WebAuthnError(.authDataUserNotVerified, "user verification is required and the user-verified (UV) flag is not set")
        }
        if data.backupState && !data.backupEligible {
            throw WebAuthnError(.authDataBackupStateWithoutEligibility, "the backup-state (BS) flag is set without backup eligibility (BE)")
        }
    }
}

/// What kind of passkey a credential is, from its backup-eligible flag.
///
/// The flag is the authenticator's own claim. A synced passkey provider has no reason to lie about it, but a
/// hostile authenticator could claim `deviceBound`; only verified attestation (``VerifiedRegistration/attestationTrusted``)
/// proves a key lives in hardware it cannot leave. Policies that require device-bound keys should also require
/// trusted attestation.
public enum PasskeyType: String, Sendable, Hashable {
    case deviceBound
    case synced

    init(backupEligible: Bool) { self = backupEligible ? .synced : .deviceBound }
}
