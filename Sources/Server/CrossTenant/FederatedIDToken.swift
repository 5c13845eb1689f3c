import Crypto
import CryptoExtras
import Foundation
import TesseraCore
import WebAuthn

/// What a provider's ID token says about its user, once it is accepted.
struct FederatedIDToken: Sendable, Hashable {
    var issuer: String
    /// `oid` when the provider gives one (Entra and Tessera do: the same for every client), else `sub`.
    var subject: String
    /// `tid`, the user's home tenant, when the provider names one and its issuer is that tenant's.
    var tenantID: String?
    /// The addresses that name the user (`email`, `preferred_username`), lowercased.
    var addresses: [String]
    var name: String?
    /// How the user signed in at home (`amr`), which this tenant counts only when it trusts the home tenant's MFA.
    var amr: [String]

    /// The decision on a token: accepted with its claims, or refused with the reason.
    enum Verdict: Sendable, Hashable {
        case accepted(FederatedIDToken)
        case refused(String)
    }

    /// Five minutes of clock skew, as Entra allows.
    static let skew: TimeInterval = 300

    /// Checks an ID token (OpenID Connect Core 3.1.3.7) against the provider's keys (a JWKS's `keys`): an RS256
    /// signature by the key its `kid` names, `iss` exactly the provider's issuer, `aud` the client (and `azp` the client
    /// when `aud` names others), `exp` not past and `iat` not ahead of `now` (with `skew`), and the `nonce` sent.
    static func check(_ token: String, keys: [JSONValue], issuer: String, clientID: String, nonce: String, now: Date) -> Verdict {
        guard let jwt = JWT.decode(token) else { return .refused("The identity provider's ID token is not a JWT.") }
        guard jwt.header["alg"]?.stringValue == "RS256" else { return .refused("The ID token is not signed with RS256.") }
        let kid = jwt.header["kid"]?.stringValue
        let candidates = keys.filter { key in
            key["kty"]?.stringValue == "RSA" && (key["use"]?.stringValue ?? "sig") == "sig" && (kid == nil || key["kid"]?.stringValue == kid)
        }
        let verified = candidates.contains { key in
            guard let n = key["n"]?.stringValue.flatMap(WebAuthn.Base64URL.decode), let e = key["e"]?.stringValue.flatMap(WebAuthn.Base64URL.decode),
                  let publicKey = try? _RSA.Signing.PublicKey(n: n, e: e) else { return false }
            return jwt.verify(with: publicKey)
        }
        guard verified else { return .refused("The ID token's signature does not verify with the identity provider's keys.") }
        let claims = jwt.claims
        guard claims["iss"]?.stringValue == issuer else { return .refused("The ID token's issuer is not '\(issuer)'.") }
        let audiences = claims["aud"]?.stringValue.map { [$0] } ?? claims["aud"]?.arrayValue?.compactMap(\.stringValue) ?? []
        guard audiences.contains(clientID) else { return .refused("The ID token was issued to another client.") }
        if audiences.count > 1, claims["azp"]?.stringValue != clientID { return .refused("The ID token's authorized party is another client.") }
        let instant = now.timeIntervalSince1970
        guard let exp = claims["exp"]?.doubleValue, exp + skew > instant else { return .refused("The ID token has expired.") }
        guard let iat = claims["iat"]?.doubleValue, iat - skew <= instant else { return .refused("The ID token was issued in the future.") }
        guard let sent = claims["nonce"]?.stringValue, constantTimeEquals(Array(sent.utf8), Array(nonce.utf8)) else {
            return .refused("The ID token's nonce is not the one this sign-in sent.")
        }
        guard let subject = claims["oid"]?.stringValue ?? claims["sub"]?.stringValue, !subject.isEmpty else {
            return .refused("The ID token names no subject.")
        }
        let addresses = ["email", "preferred_username"].compactMap { claims[$0]?.stringValue?.lowercased() }
        // `tid` counts only when the configured issuer names that tenant (as Entra's and Tessera's do), so a provider
        // cannot borrow another tenant's cross-tenant settings (its inbound trust) by claiming its id.
        let tenant = claims["tid"]?.stringValue.flatMap { tid in
            Identifier.isGUID(tid) && issuer.lowercased().contains("/\(tid.lowercased())/") ? tid.lowercased() : nil
        }
        return .accepted(FederatedIDToken(issuer: issuer, subject: subject, tenantID: tenant, addresses: addresses,
                                          name: claims["name"]?.stringValue, amr: claims["amr"]?.arrayValue?.compactMap(\.stringValue) ?? []))
    }
}
