import Crypto
import Foundation
import TesseraCore
import WebAuthn
import SwiftASN1
import X509

/// Registering a passkey for a user (Graph's `fido2Methods/creationOptions` and `POST fido2Methods`): WebAuthn
/// options with a five-minute single-use challenge, then the verifier, then the tenant's passkey profiles, then
/// storage. Also renders a stored passkey as Graph's `fido2AuthenticationMethod`.
struct PasskeyRegistration {
    let app: TesseraApp
    let tenant: String

    /// The relying party for a request's base URL: its host is the RP ID, its origin the one allowed origin.
    static func relyingParty(baseURL: String, now: Date, trustAnchors: [Certificate] = []) -> RelyingParty {
        let (host, origin) = site(baseURL: baseURL)
        return RelyingParty(id: host, origins: [origin], trustAnchors: trustAnchors, clock: { now })
    }

    /// The host and origin (`scheme://host[:port]`) the browser used. Each of the deployment's few base URLs is parsed
    /// once (every passkey request asks).
    static func site(baseURL: String) -> (host: String, origin: String) {
        if let known = sites[baseURL] { return known }
        let components = URLComponents(string: baseURL)
        let host = components?.host ?? "localhost"
        var origin = "\(components?.scheme ?? "https")://\(host)"
        if let port = components?.port { origin += ":\(port)" }
        sites.set((host, origin), for: baseURL)
        return (host, origin)
    }

    private static let sites = BoundedTable<(host: String, origin: String)>(limit: 64)

    /// `webauthnCredentialCreationOptions` for `user`.
    func creationOptions(user: StoredObject, baseURL: String) async throws -> JSONValue {
        let (configuration, _) = try await app.directory.fido2Configuration(tenant: tenant)
        try Self.checkRegistrationAllowed(configuration)
        let now = app.clock.now
        let (challenge, expires) = app.passkeyChallenges.issue(Self.purpose(tenant: tenant, user: user.id), now: now)
        let party = Self.relyingParty(baseURL: baseURL, now: now)
        let existing = try await app.directory.fido2Methods(tenant: tenant, userID: user.id)
        let name = user.body["userPrincipalName"]?.stringValue ?? user.id
        return [
            "challengeTimeoutDateTime": .string(Timestamp.format(expires)),
            "publicKey": [
                "challenge": .string(WebAuthn.Base64URL.encode(challenge)),
                "timeout": .int(Int64(PasskeyChallenges.lifetime * 1000)),
                "attestation": "direct",
                "rp": ["id": .string(party.id), "name": "Tessera"],
                "user": ["id": .string(WebAuthn.Base64URL.encode(Array(user.id.utf8))), "name": .string(name),
                         "displayName": .string(user.body["displayName"]?.stringValue ?? name)],
                "pubKeyCredParams": .array(COSEAlgorithm.defaultAllowed.map { ["type": "public-key", "alg": .int(Int64($0.rawValue))] }),
                "authenticatorSelection": ["requireResidentKey": true, "residentKey": "required", "userVerification": "required"],
                "excludeCredentials": .array(existing.compactMap { method in
                    method.body["_credentialId"]?.stringValue.map { ["type": "public-key", "id": .string($0), "transports": []] }
                }),
                "extensions": ["credProps": true],
            ],
        ]
    }

    /// Verifies and stores the credential in a `POST …/fido2Methods` body.
    func register(user: StoredObject, body: [String: JSONValue], baseURL: String, actor: Actor) async throws -> StoredObject {
        let (configuration, _) = try await app.directory.fido2Configuration(tenant: tenant)
        try Self.checkRegistrationAllowed(configuration)
        for key in body.keys where !["displayName", "publicKeyCredential", "@odata.type"].contains(key) {
            throw DirectoryError.badRequest("Property '\(key)' does not exist on type 'microsoft.graph.fido2AuthenticationMethod'.")
        }
        guard let credential = body["publicKeyCredential"], credential.objectValue != nil else {
            throw DirectoryError.badRequest("'publicKeyCredential' is required: the PublicKeyCredential that navigator.credentials.create() returned.")
        }
        let displayName = body["displayName"]?.stringValue ?? "Passkey"
        guard !displayName.isEmpty, displayName.count <= 256 else { throw DirectoryError.badRequest("'displayName' must be 1 to 256 characters.") }
        let now = app.clock.now
        let party = Self.relyingParty(baseURL: baseURL, now: now, trustAnchors: app.attestationRoots)
        let verified: VerifiedRegistration
        do {
            // Graph's webauthnPublicKeyCredential (id, response, clientExtensionResults) or the browser's JSON.
            let response = try RegistrationResponse(graphJSON: credential.serializedBytes)
            let clientData = try CollectedClientData(json: response.clientDataJSON)
            try await app.passkeyChallenges.redeem(clientData.challenge, purpose: Self.purpose(tenant: tenant, user: user.id),
                                                   tenant: tenant, now: now, store: app.store)
            verified = try await party.verifyRegistration(response, challenge: clientData.challenge, requireUserVerification: true)
        } catch let error as WebAuthnError {
            throw DirectoryError.badRequest("The passkey was refused (\(error.code)): \(error.message)")
        }
        // The tenant's passkey profiles decide whether this kind of passkey is acceptable for this user.
        let groups = try await app.store.read { tx in try await app.directory.transitiveGroups(tenant: tenant, of: user.id, tx: tx) }
        let facts = Fido2Configuration.PasskeyFacts(type: verified.passkeyType == .synced ? .synced : .deviceBound,
                                                    aaguid: verified.aaguid.description, attested: verified.attestationTrusted)
        let decision = configuration.evaluate(facts, for: .init(userID: user.id, groupIDs: Set(groups)), phase: .registration)
        guard decision.allowed else {
            throw DirectoryError.badRequest("The passkey is not allowed by the authentication methods policy (\(decision.reason)): \(decision.message)")
        }
        let method: [String: JSONValue] = [
            "displayName": .string(displayName),
            "aaGuid": .string(verified.aaguid.description),
            "model": .optional(verified.authenticatorName),
            "attestationLevel": verified.attestationTrusted ? "attested" : "notAttested",
            "attestationCertificates": .array(verified.attestationCertificates.map { certificate in
                var serializer = DER.Serializer()
                try? serializer.serialize(certificate)
                return .string(Insecure.SHA1.hash(data: serializer.serializedBytes).map { String(format: "%02x", $0) }.joined())
            }),
            "passkeyType": .string(verified.passkeyType.rawValue),
            "_credentialId": .string(WebAuthn.Base64URL.encode(verified.credentialID)),
            "_publicKey": .string(WebAuthn.Base64URL.encode(verified.publicKey.cose)),
            "_signCount": .int(Int64(verified.signCount)),
            "_backupEligible": .bool(verified.backupEligible),
            "_backupState": .bool(verified.backupState),
            "_format": .string(verified.format),
            "_attestationType": .string(verified.attestationType.rawValue),
            // The AAGUID (so `model`) and the passkey type are the authenticator's claims unless attestation is trusted.
            "_aaguidVerified": .bool(verified.aaguidVerified),
        ]
        return try await app.directory.addFido2Method(
            tenant: tenant, userID: user.id, body: method, credentialKey: verified.credentialID.map { String(format: "%02x", $0) }.joined(),
            actor: actor)
    }

    static func purpose(tenant: String, user: String) -> String { "create:\(tenant):\(user)" }

    static func checkRegistrationAllowed(_ configuration: Fido2Configuration) throws {
        guard configuration.state == .enabled else {
            throw DirectoryError(.accessDenied, "Passkeys (FIDO2) are disabled in this tenant's authentication methods policy.")
        }
        guard configuration.isSelfServiceRegistrationAllowed else {
            throw DirectoryError(.accessDenied, "Passkey registration is not allowed: enable 'isSelfServiceRegistrationAllowed' in the FIDO2 configuration.")
        }
    }

    /// Graph's `fido2AuthenticationMethod` for a stored passkey (private members left out).
    static func render(_ method: StoredObject) -> JSONValue {
        var out = method.body.filter { !$0.key.hasPrefix("_") }
        out["@odata.type"] = "#microsoft.graph.fido2AuthenticationMethod"
        out["id"] = .string(method.id)
        return .object(out)
    }
}
