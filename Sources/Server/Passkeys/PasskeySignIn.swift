import Foundation
import TesseraCore
import WebAuthn

/// The passkey sign-in ceremony the sign-in page drives: request options (a five-minute single-use challenge,
/// discoverable credentials or the named user's), then the assertion: verified by the WebAuthn library against the
/// stored credential, judged again by the user's passkey profiles (a passkey the policy no longer allows is
/// refused with the reason), then the challenge spent, the counter and backup state stored and the session started in
/// one transaction; every attempt written to the sign-in log.
struct PasskeySignIn {
    let app: TesseraApp
    let tenant: String

    /// Who signed in, how, and the session the sign-in started.
    struct Result: Sendable {
        let user: StoredObject
        let method: StoredObject
        let profileID: String?
        /// The session's `Set-Cookie` value.
        let cookie: String
    }

    /// A refusal with the code that goes to the sign-in log and the client.
    struct Failure: Error, Sendable {
        let reason: String
        let message: String
    }

    static func purpose(tenant: String) -> String { "get:\(tenant)" }

    /// `PublicKeyCredentialRequestOptions` as JSON. With a login hint that names a user with passkeys, their
    /// credentials are listed; otherwise the browser offers discoverable credentials (no username needed).
    func options(loginHint: String?, baseURL: String) async throws -> JSONValue {
        let now = app.clock.now
        let (challenge, expires) = app.passkeyChallenges.issue(Self.purpose(tenant: tenant), now: now)
        var allow: [JSONValue] = []
        if let hint = loginHint?.lowercased(), !hint.isEmpty, let user = try await user(principalName: hint) {
            allow = try await app.directory.fido2Methods(tenant: tenant, userID: user.id).compactMap { method in
                method.body["_credentialId"]?.stringValue.map { ["type": "public-key", "id": .string($0)] }
            }
        }
        return [
            "challenge": .string(WebAuthn.Base64URL.encode(challenge)),
            "rpId": .string(PasskeyRegistration.relyingParty(baseURL: baseURL, now: now).id),
            "timeout": .int(Int64(PasskeyChallenges.lifetime * 1000)),
            "userVerification": "required",
            "allowCredentials": .array(allow),
            "challengeTimeoutDateTime": .string(Timestamp.format(expires)),
        ]
    }

    func user(principalName: String) async throws -> StoredObject? {
        let tenant = self.tenant
        return try await app.store.read { tx in
            try await tx.object(tenant: tenant, holding: UniqueKey("userPrincipalName", principalName))
        }
    }

    /// Verifies an assertion (the JSON of `navigator.credentials.get()`) and returns who signed in.
    func finish(credential: [UInt8], baseURL: String, ipAddress: String?) async throws -> Result {
        var user: StoredObject?
        var method: StoredObject?
        do {
            let result = try await verify(credential, baseURL: baseURL, user: &user, method: &method)
            try await log(user: user, method: method, ipAddress: ipAddress, failure: nil)
            return result
        } catch let failure as Failure {
            // A spent challenge says nothing about who sent the response: its record names no one.
            let spent = failure.reason == Self.challengeInvalid.reason
            try await log(user: spent ? nil : user, method: spent ? nil : method, ipAddress: ipAddress, failure: failure)
            throw failure
        }
    }

    static let challengeInvalid = Failure(reason: "challenge.invalid", message: "The sign-in request expired or was already used; start again.")

    /// - Parameter fresh: read the passkey from the store rather than the sign-in path's cache (after the cached one was
    ///   found changed: its sign-in is verified again from the start).
    private func verify(_ credential: [UInt8], baseURL: String, user: inout StoredObject?, method: inout StoredObject?,
                        fresh: Bool = false) async throws -> Result {
        let now = app.clock.now
        let response: AuthenticationResponse
        let clientData: CollectedClientData
        do {
            response = try AuthenticationResponse(json: credential)
            clientData = try CollectedClientData(json: response.clientDataJSON)
        } catch {
            throw Failure(reason: "response.malformed", message: "The passkey response is not a valid credential: \(error.message)")
        }
        // Ours and unexpired now; spent below, in the transaction that starts the session.
        guard app.passkeyChallenges.isValid(clientData.challenge, purpose: Self.purpose(tenant: tenant), now: now) else {
            throw Self.challengeInvalid
        }
        let tenant = self.tenant
        let key = Hex.encode(response.rawID)
        // The passkey and its user as the sign-in path keeps them (read once per change of the tenant, and at most 1 s
        // old): a passkey changed since, or gone, is found out by the statement that starts the session, which checks its
        // version, and the sign-in is then verified again with the passkey as stored now.
        let read: @Sendable () async throws -> StoredObject? = { [store = app.store] in
            try await store.read { tx in try await tx.object(tenant: tenant, holding: UniqueKey("fido2CredentialId", key)) }
        }
        let found = fresh ? try await read()
                          : try await app.passkeyCache.value("\(tenant)|\(key)", tenant: tenant, generations: app.directory.generations, reading: read)
        guard let passkey = found, passkey.kind == .fido2Method, let ownerID = passkey.body["_userId"]?.stringValue,
              let owner = try await app.signInUser(tenant: tenant, id: ownerID), owner.deletedAt == nil
        else {
            throw Failure(reason: "credential.unknown", message: "This passkey is not registered in this tenant.")
        }
        user = owner
        method = passkey
        guard owner.body["accountEnabled"]?.boolValue != false else {
            throw Failure(reason: "user.disabled", message: "The account is disabled.")
        }
        guard let cose = passkey.body["_publicKey"]?.stringValue.flatMap(WebAuthn.Base64URL.decode),
              let publicKey = try? CredentialPublicKey(cose: cose) else {
            throw Failure(reason: "credential.corrupt", message: "The stored passkey cannot be read.")
        }
        let stored = StoredCredential(
            id: response.rawID, publicKey: publicKey, signCount: UInt32(passkey.body["_signCount"]?.intValue ?? 0),
            backupEligible: passkey.body["_backupEligible"]?.boolValue ?? false, userHandle: Array(owner.id.utf8))
        let party = PasskeyRegistration.relyingParty(baseURL: baseURL, now: now)
        let verified: VerifiedAuthentication
        do {
            verified = try party.verifyAuthentication(response, challenge: clientData.challenge, credential: stored,
                                                      requireUserVerification: true)
        } catch where error.code == .assertionPossibleClone {
            // A counter that went back is either this very response again (its challenge already spent: a replay) or
            // another authenticator with the same key (a clone). Spending the challenge tells which.
            let purpose = Self.purpose(tenant: tenant), challenge = clientData.challenge, challenges = app.passkeyChallenges
            let fresh = try await app.store.write { tx in try await challenges.spend(challenge, purpose: purpose, tenant: tenant, now: now, tx: tx) }
            guard fresh else { throw Self.challengeInvalid }
            throw Failure(reason: error.code.name, message: error.message)
        } catch {
            throw Failure(reason: error.code.name, message: error.message)
        }
        // The policy as it is now, not as it was at registration (both read once per change of the tenant).
        guard let record = try await app.tenantRecord(tenant) else { throw Failure(reason: "tenant.unknown", message: "The tenant does not exist.") }
        let configuration = try await app.passkeyPolicies.configuration(app: app, tenant: record)
        let (_, groups, _) = try await app.conditionalAccess.membership(app: app, tenant: record, userID: owner.id)
        let facts = Fido2Configuration.PasskeyFacts(
            type: passkey.body["passkeyType"]?.stringValue == "synced" ? .synced : .deviceBound,
            aaguid: passkey.body["aaGuid"]?.stringValue ?? "", attested: passkey.body["attestationLevel"]?.stringValue == "attested")
        let decision = configuration.evaluate(facts, for: .init(userID: owner.id, groupIDs: Set(groups)), phase: .signIn)
        guard decision.allowed else { throw Failure(reason: decision.reason, message: decision.message) }
        let challenges = app.passkeyChallenges, directory = app.directory, sessions = SignInSessions(app: app)
        let challenge = clientData.challenge, purpose = Self.purpose(tenant: tenant)
        let aaguid = passkey.body["aaGuid"]?.stringValue, methodID = passkey.id, userID = owner.id
        // A passkey without a counter whose backup state is as stored has nothing of its own to write
        // (`updateFido2Usage`): the challenge is spent and the session started by one statement, while the passkey is
        // still as read. One changed since (a counter, a new backup state, deleted) goes the long way below.
        if verified.newSignCount == 0, (passkey.body["_signCount"]?.intValue ?? 0) == 0,
           (passkey.body["_backupState"]?.boolValue ?? false) == verified.backupState,
           let (key, expiresAt) = challenges.singleUseKey(challenge, purpose: purpose, now: now) {
            let (session, row, cookie) = try sessions.make(tenant: tenant, userID: userID, amr: ["fido", "mfa"], aaguid: aaguid, baseURL: baseURL)
            let mark = sessions.mark(tenant: tenant)
            let spent = try await app.store.write { tx in
                try await tx.spend(tenant: tenant, key: key, expiresAt: expiresAt, now: Timestamp.format(now), inserting: [row],
                                   if: .unchanged(passkey))
            }
            switch spent {
            case .spent:
                // The `/authorize` that follows finds the session without a read.
                sessions.keep(session, tenant: tenant, mark: mark)
                return Result(user: owner, method: passkey, profileID: decision.profileID, cookie: cookie)
            case .alreadySpent: throw Self.challengeInvalid
            case .objectChanged:
                // Nothing was written: the challenge is still unspent.
                if !fresh { return try await verify(credential, baseURL: baseURL, user: &user, method: &method, fresh: true) }
            }
        }
        // One commit: the challenge spent, the counter moved on and the session started. A counter that did not move on
        // still spends the challenge.
        enum Outcome: Sendable { case spent, counterBehind, started(SignInSessions.Session, String) }
        let mark = sessions.mark(tenant: tenant)
        let outcome: Outcome = try await app.store.write { tx in
            guard try await challenges.spend(challenge, purpose: purpose, tenant: tenant, now: now, tx: tx) else { return .spent }
            guard try await directory.updateFido2Usage(tenant: tenant, methodID: methodID, signCount: verified.newSignCount,
                                                       backupState: verified.backupState, tx: tx) else { return .counterBehind }
            let (session, cookie) = try await sessions.start(tenant: tenant, userID: userID, amr: ["fido", "mfa"], aaguid: aaguid,
                                                             baseURL: baseURL, tx: tx)
            return .started(session, cookie)
        }
        switch outcome {
        case .spent:
            throw Self.challengeInvalid
        case .counterBehind:
            throw Failure(reason: WebAuthnError.Code.assertionPossibleClone.name,
                          message: "Another sign-in used this signature counter first: the authenticator may have been cloned.")
        case .started(let session, let cookie):
            sessions.keep(session, tenant: tenant, mark: mark)
            return Result(user: owner, method: passkey, profileID: decision.profileID, cookie: cookie)
        }
    }

    /// One `signIn` record, as Graph shapes it.
    private func log(user: StoredObject?, method: StoredObject?, ipAddress: String?, failure: Failure?) async throws {
        let passkeyType = method?.body["passkeyType"]?.stringValue
        let detail = method.map { "\($0.body["displayName"]?.stringValue ?? "Passkey") (\($0.body["aaGuid"]?.stringValue ?? ""))" }
        try await SignInLog(app: app, tenant: tenant).record(
            user: user, ipAddress: ipAddress, failure: failure,
            method: passkeyType == "synced" ? "Passkey (synced)" : "Passkey (device-bound)", detail: detail,
            succeeded: "MFA completed in Tessera",
            extra: ["aaGuid": .optional(method?.body["aaGuid"]?.stringValue), "passkeyType": .optional(passkeyType)])
    }
}
