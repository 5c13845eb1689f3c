import Crypto
import Foundation
import TesseraCore
import WebAuthn

/// OpenID Connect ID tokens (Core §2): the one place their claims are decided, for the token endpoint and for
/// `/authorize` (`response_type=id_token` and `code id_token`), so both carry the same `sub`, `sid` and claims.
struct IDToken {
    let app: TesseraApp
    let tenant: String
    /// The issuer's base URL (the request's).
    let base: String

    /// The signed ID token for the sign-in `grant` (a code being issued or redeemed, or a refresh token's grant) of `user`.
    /// `external` is what names an external user's home (`idp`, `acct`); `code` and `accessToken`, when the token is
    /// issued alongside them, add `c_hash` and `at_hash` (Core §3.3.2.11, §3.1.3.6).
    func sign(grant: AuthorizationCode, user: StoredObject, external: [String: JSONValue],
              code: String? = nil, accessToken: String? = nil) throws -> String {
        let now = Int64(app.clock.now.timeIntervalSince1970)
        let lifetime = Int64(IdentityPlatform.accessTokenLifetime)
        let issuer = IdentityPlatform(app: app).issuer(tenant: tenant, base: base)
        // Pairwise subject, as Entra's v2 ID tokens: stable per user and client, not the object id.
        let subject = UserInfo.subject(tenant: tenant, client: grant.clientID, user: user.id)
        var claims: [String: JSONValue] = [
            "aud": .string(grant.clientID), "iss": .string(issuer), "iat": .int(now), "nbf": .int(now), "exp": .int(now + lifetime),
            "sub": .string(subject), "oid": .string(user.id), "tid": .string(tenant), "ver": "2.0",
            "auth_time": .int(grant.authTime), "amr": .strings(grant.amr), "sid": .string(grant.sessionID),
            "preferred_username": .optional(user.body["userPrincipalName"]?.stringValue),
            "name": .optional(user.body["displayName"]?.stringValue), "uti": .string(Secrets.randomToken(bytes: 16)),
        ]
        if let nonce = grant.nonce { claims["nonce"] = .string(nonce) }
        if let acr = grant.acr { claims["acr"] = .string(acr) }
        claims.merge(external) { $1 }
        if grant.scope.split(separator: " ").contains("email"), let mail = user.body["mail"]?.stringValue { claims["email"] = .string(mail) }
        if let code { claims["c_hash"] = .string(Self.halfHash(code)) }
        if let accessToken { claims["at_hash"] = .string(Self.halfHash(accessToken)) }
        let header: [String: JSONValue] = ["kid": .string(app.signingKey.kid), "x5t": .string(app.signingKey.kid)]
        return try JWT.sign(claims: claims.filter { $0.value != .null }, header: header, key: app.signingKey.privateKey)
    }

    /// `c_hash` / `at_hash` for RS256: base64url of the left half of the SHA-256 of the value's ASCII octets.
    static func halfHash(_ value: String) -> String {
        WebAuthn.Base64URL.encode(Array(Array(SHA256.hash(data: Array(value.utf8))).prefix(16)))
    }
}
