import Crypto
import Foundation
import TesseraCore
import WebAuthn

/// Refresh tokens: `<id>.<secret>`, only the secret's SHA-256 stored, linked from the user so that
/// `revokeSignInSessions` can find them. Each use spends the token and issues its successor in the same family;
/// presenting a spent token again is treated as theft and revokes the whole family.
struct RefreshTokens {
    let app: TesseraApp
    static let kind = ObjectKind(rawValue: "refreshToken")
    static let relation = DirectoryService.refreshTokensRelation
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
        let id = Identifier.make()
        let secret = Secrets.randomToken(bytes: 32)
        let expires = Timestamp.format(app.clock.now.addingTimeInterval(Self.lifetime))
        try await tx.insert(StoredObject(tenant: tenant, id: id, kind: Self.kind, body: [
            "id": .string(id), "_digest": .string(Secrets.digest(secret)), "_userId": .string(code.userID),
            "_clientId": .string(code.clientID), "_redirectUri": .string(code.redirectURI), "_scope": .string(code.scope),
            "_sessionId": .string(code.sessionID), "_amr": .strings(code.amr), "_aaguid": .optional(code.aaguid), "_acrs": .strings(code.acrs), "_authTime": .int(code.authTime),
            "_confidential": .bool(confidential), "family": .string(family ?? id), "_expires": .string(expires), "_used": false,
            // Queried (revocation), so not `_`-hidden: the store never lets a query reach hidden members, and this
            // kind is never served.
            "issuedForCode": .optional(codeDigest),
        ]))
        try await tx.link(tenant: tenant, source: code.userID, relation: Self.relation, target: id)
        return "\(id).\(secret)"
    }

    /// Spends a token; returns what it carried, or throws invalid_grant.
    func redeem(tenant: String, token: String, clientID: String?) async throws -> (code: AuthorizationCode, confidential: Bool, family: String) {
        let invalid = OAuthError(error: "invalid_grant", code: 70008,
                                 description: "The provided refresh token is invalid, expired or revoked. Sign in again.")
        let parts = token.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2, Identifier.isGUID(parts[0]) else { throw invalid }
        let now = app.clock.now
        enum Outcome: Sendable { case ok(StoredObject), reused(String), invalid }
        let outcome: Outcome = try await app.store.write { tx in
            guard var object = try await tx.object(tenant: tenant, id: parts[0]), object.kind == Self.kind,
                  let digest = object.body["_digest"]?.stringValue, Secrets.matches(parts[1], digest: digest),
                  let expires = object.body["_expires"]?.stringValue.flatMap(Timestamp.parse), expires > now
            else { return .invalid }
            if object.body["_used"]?.boolValue == true { return .reused(object.body["family"]?.stringValue ?? object.id) }
            let version = object.version
            object.body["_used"] = true
            object.version = version + 1
            try await tx.update(object, expectedVersion: version)
            return .ok(object)
        }
        switch outcome {
        case .invalid: throw invalid
        case .reused(let family):
            try await revokeFamily(tenant: tenant, family: family)
            throw invalid
        case .ok(let object):
            guard let code = Self.code(object, tenant: tenant), clientID == nil || clientID == code.clientID else { throw invalid }
            return (code, object.body["_confidential"]?.boolValue ?? false, object.body["family"]?.stringValue ?? object.id)
        }
    }

    /// What a stored token carries, as the grant it continues.
    static func code(_ object: StoredObject, tenant: String) -> AuthorizationCode? {
        let body = object.body
        guard let user = body["_userId"]?.stringValue, let client = body["_clientId"]?.stringValue else { return nil }
        return AuthorizationCode(
            tenant: tenant, clientID: client, redirectURI: body["_redirectUri"]?.stringValue ?? "", userID: user,
            scope: body["_scope"]?.stringValue ?? "", nonce: nil, codeChallenge: nil, authTime: body["_authTime"]?.intValue ?? 0,
            sessionID: body["_sessionId"]?.stringValue ?? "", amr: body["_amr"]?.arrayValue?.compactMap(\.stringValue) ?? [], expires: 0,
            aaguid: body["_aaguid"]?.stringValue, acrs: body["_acrs"]?.arrayValue?.compactMap(\.stringValue) ?? [])
    }

    /// What a token carries and whether its client is confidential, without spending it; nil when the token is not a
    /// live one.
    func peek(tenant: String, token: String) async throws -> (code: AuthorizationCode, confidential: Bool)? {
        let parts = token.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2, Identifier.isGUID(parts[0]) else { return nil }
        let now = app.clock.now
        guard let object = try await app.store.read({ tx in try await tx.object(tenant: tenant, id: parts[0]) }), object.kind == Self.kind,
              let digest = object.body["_digest"]?.stringValue, Secrets.matches(parts[1], digest: digest),
              let expires = object.body["_expires"]?.stringValue.flatMap(Timestamp.parse), expires > now,
              object.body["_used"]?.boolValue != true, let code = Self.code(object, tenant: tenant)
        else { return nil }
        return (code, object.body["_confidential"]?.boolValue ?? false)
    }

    /// Revokes every family that began with the authorization code whose digest is `codeDigest`.
    func revokeIssued(tenant: String, codeDigest: String) async throws {
        let first = try await app.store.read { tx in
            try await tx.query(ObjectQuery(tenant: tenant, kinds: [Self.kind], filter: .compare(PropertyPath(["issuedForCode"]), .eq, .string(codeDigest))))
        }
        for family in Set(first.compactMap { $0.body["family"]?.stringValue }) { try await revokeFamily(tenant: tenant, family: family) }
    }

    func revokeFamily(tenant: String, family: String) async throws {
        try await app.store.write { tx in
            let members = try await tx.query(ObjectQuery(tenant: tenant, kinds: [Self.kind],
                                                         filter: .compare(PropertyPath(["family"]), .eq, .string(family))))
            for member in members { try await tx.purge(tenant: tenant, id: member.id) }
        }
    }

    /// `revokeSignInSessions`: every session and refresh token of the user, gone.
    func revokeAll(tenant: String, userID: String) async throws {
        try await app.store.write { tx in
            for relation in [Self.relation, SignInSessions.relation] {
                for id in try await tx.targets(tenant: tenant, source: userID, relation: relation) {
                    try await tx.purge(tenant: tenant, id: id)
                }
            }
        }
    }
}
