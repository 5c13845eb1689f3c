import Foundation
import TesseraCore

/// Refresh tokens: `<id>.<secret>`, only the secret's salted digest kept, as a ``RefreshTokenRecord`` in the credential
/// store (never a Graph object). Each use spends the token and issues its successor in the same family, in one commit;
/// presenting a spent token again is treated as theft and revokes the whole family.
struct RefreshTokens {
    let app: TesseraApp
    static let lifetime: TimeInterval = 90 * 86_400

    /// Issues a token carrying what the next access and ID tokens need.
    /// `codeDigest` names the authorization code the family began with, so that a replay of that code revokes it.
    func issue(tenant: String, code: AuthorizationCode, confidential: Bool, family: String? = nil, codeDigest: String? = nil) async throws -> String {
        try await app.store.write { tx in
            try await issue(tenant: tenant, code: code, confidential: confidential, family: family, codeDigest: codeDigest, tx: tx)
        }
    }

    /// The same inside the caller's transaction (a code is spent and its refresh token issued in one commit).
    func issue(tenant: String, code: AuthorizationCode, confidential: Bool, family: String? = nil, codeDigest: String? = nil,
               tx: any DirectoryTransaction) async throws -> String {
        let (row, token) = try make(tenant: tenant, code: code, confidential: confidential, family: family, codeDigest: codeDigest)
        try await tx.insertCredential(row)
        return token
    }

    /// A new token and the row that stores it, not yet written (an authorization code's token is written with the
    /// code's spend: `SingleUseSpends`).
    func make(tenant: String, code: AuthorizationCode, confidential: Bool, family: String? = nil,
              codeDigest: String? = nil) throws -> (row: CredentialRow, token: String) {
        let id = Identifier.make()
        let secret = Secrets.randomToken(bytes: 32)
        let row = try RefreshTokenRecord(
            id: id, digest: Secrets.digest(secret), grant: code.grant, confidential: confidential, familyID: family ?? id,
            issuedForCode: codeDigest, expires: app.clock.now.addingTimeInterval(Self.lifetime)).row(tenant: tenant)
        return (row, "\(id).\(secret)")
    }

    /// Spends a token and issues its successor in the same family, in one commit, so that a reuse (which revokes the
    /// family once it sees the token spent) always finds the successor too. Returns the grant the token continues, with
    /// `acrs` as the authentication contexts now satisfied, and the successor; throws invalid_grant.
    func rotate(tenant: String, token: String, clientID: String?, acrs: [String]) async throws -> (code: AuthorizationCode, refreshToken: String) {
        let invalid = OAuthError(error: "invalid_grant", code: 70008,
                                 description: "The provided refresh token is invalid, expired or revoked. Sign in again.")
        guard let (id, secret) = Self.parts(token) else { throw invalid }
        let now = app.clock.now
        enum Outcome: Sendable { case rotated(AuthorizationCode, String), reused(String), invalid }
        let outcome: Outcome = try await app.store.write { tx in
            guard var record = try await tx.credential(RefreshTokenRecord.self, tenant: tenant, id: id),
                  Secrets.matches(secret, digest: record.digest), record.expires > now,
                  clientID == nil || clientID == record.grant.clientID
            else { return .invalid }
            guard record.state == .unused else { return .reused(record.familyID) }
            record.state = .used
            // Of two requests spending the same token at once, the one that finds it spent is a reuse.
            guard try await tx.replaceCredential(record, tenant: tenant, ifStateIs: .unused) else { return .reused(record.familyID) }
            var code = AuthorizationCode(grant: record.grant, tenant: tenant)
            code.acrs = acrs
            let next = try await issue(tenant: tenant, code: code, confidential: record.confidential, family: record.familyID, tx: tx)
            return .rotated(code, next)
        }
        switch outcome {
        case .invalid: throw invalid
        case .reused(let family):
            try await revokeFamily(tenant: tenant, family: family)
            throw invalid
        case .rotated(let code, let next):
            return (code, next)
        }
    }

    /// What a token carries and whether its client is confidential, without spending it; nil when the token is not a
    /// live one.
    func peek(tenant: String, token: String) async throws -> (code: AuthorizationCode, confidential: Bool)? {
        guard let (id, secret) = Self.parts(token) else { return nil }
        let now = app.clock.now
        guard let record = try await app.store.read({ tx in try await tx.credential(RefreshTokenRecord.self, tenant: tenant, id: id) }),
              Secrets.matches(secret, digest: record.digest), record.expires > now, record.state == .unused
        else { return nil }
        return (AuthorizationCode(grant: record.grant, tenant: tenant), record.confidential)
    }

    /// Revokes the family that began with the authorization code whose digest is `codeDigest`, in the caller's transaction.
    func revokeIssued(tenant: String, codeDigest: String, tx: any DirectoryTransaction) async throws {
        guard let first = try await tx.credential(RefreshTokenRecord.self, tenant: tenant, handle: codeDigest) else { return }
        try await tx.deleteCredentials(tenant: tenant, kind: RefreshTokenRecord.kind, family: first.familyID)
    }

    func revokeFamily(tenant: String, family: String) async throws {
        _ = try await app.store.write { tx in try await tx.deleteCredentials(tenant: tenant, kind: RefreshTokenRecord.kind, family: family) }
    }

    /// `revokeSignInSessions`: every session, refresh token and approved device code of the user, gone.
    func revokeAll(tenant: String, userID: String) async throws {
        // Sessions this process kept are read again once the deletion has committed (or failed).
        defer { app.signInSessionCache.revoked() }
        _ = try await app.store.write { tx in try await tx.deleteCredentials(tenant: tenant, userID: userID, kinds: nil) }
    }

    /// A token's id and secret, when it has the shape of one.
    static func parts(_ token: String) -> (id: String, secret: String)? {
        let parts = token.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2, Identifier.isGUID(parts[0]) else { return nil }
        return (parts[0], parts[1])
    }
}

extension AuthorizationCode {
    /// What a refresh token keeps of the grant it continues.
    var grant: SignInGrant {
        SignInGrant(userID: userID, clientID: clientID, redirectURI: redirectURI, scope: scope, sessionID: sessionID, authTime: authTime,
                    amr: amr, aaguid: aaguid, acrs: acrs, acr: acr, grantID: grantID, userinfoClaims: userinfoClaims.isEmpty ? nil : userinfoClaims)
    }

    /// The grant a refresh token continues, as the code it began with (no nonce, challenge or expiry: those were the code's).
    /// `auth_time`, `amr` and `acr` stay the original sign-in's (OpenID Connect Core §12.2).
    init(grant: SignInGrant, tenant: String) {
        self.init(tenant: tenant, clientID: grant.clientID, redirectURI: grant.redirectURI, userID: grant.userID, scope: grant.scope,
                  nonce: nil, codeChallenge: nil, authTime: grant.authTime, sessionID: grant.sessionID, amr: grant.amr, expires: 0,
                  aaguid: grant.aaguid, acrs: grant.acrs, acr: grant.acr, userinfoClaims: grant.userinfoClaims ?? [], grantID: grant.grantID)
    }
}
