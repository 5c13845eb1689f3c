import Crypto
import Foundation
import TesseraCore
import WebAuthn

/// Authorization codes: what the token endpoint needs, MACed with the deployment key so any replica can check
/// them, valid ten minutes, and spent through `consumeOnce` at redemption.
struct AuthorizationCode: Sendable {
    var tenant: String
    var clientID: String
    var redirectURI: String
    var userID: String
    var scope: String
    var nonce: String?
    var codeChallenge: String?
    var authTime: Int64
    var sessionID: String
    var amr: [String]
    var expires: Int64
    /// The AAGUID of the passkey the session signed in with, when it did.
    var aaguid: String? = nil
    /// The authentication contexts the sign-in satisfied (the access token's `acrs`).
    var acrs: [String] = []
    /// The home tenant of a B2B direct connect user, whose `userID` is then that tenant's user (nothing of it is here).
    var homeTenant: String? = nil
    /// The ID token's `acr`, when the authorization request asked for one (`acr_values` or the `claims` parameter).
    var acr: String? = nil
    /// The claims the `claims` parameter asked userinfo for (among those userinfo answers).
    var userinfoClaims: [String] = []
    /// The grant the code began, set when it is redeemed (never in the code itself): ``RevokedGrants/grantID(codeDigest:app:)``.
    var grantID: String? = nil

    static let lifetime: TimeInterval = 600

    func encode(app: TesseraApp) -> String {
        var claims: [String: JSONValue] = [
            "t": .string(tenant), "c": .string(clientID), "r": .string(redirectURI), "u": .string(userID), "s": .string(scope),
            "a": .int(authTime), "sid": .string(sessionID), "amr": .strings(amr), "x": .int(expires),
            "j": .string(Secrets.randomToken(bytes: 12)),
        ]
        if let nonce { claims["n"] = .string(nonce) }
        if let codeChallenge { claims["p"] = .string(codeChallenge) }
        if let aaguid { claims["g"] = .string(aaguid) }
        if !acrs.isEmpty { claims["acrs"] = .strings(acrs) }
        if let homeTenant { claims["h"] = .string(homeTenant) }
        if let acr { claims["acr"] = .string(acr) }
        if !userinfoClaims.isEmpty { claims["ui"] = .strings(userinfoClaims) }
        let payload = JSONValue.object(claims).serializedBytes
        return WebAuthn.Base64URL.encode(payload) + "." + WebAuthn.Base64URL.encode(app.passkeyChallenges.mac("code", payload))
    }

    /// Decodes and checks a code's MAC and expiry (not whether it was already used).
    static func decode(_ code: String, app: TesseraApp) -> AuthorizationCode? {
        let parts = code.split(separator: ".", omittingEmptySubsequences: false)
        guard code.utf8.count < 4096, parts.count == 2, let payload = WebAuthn.Base64URL.decode(String(parts[0])),
              let mac = WebAuthn.Base64URL.decode(String(parts[1])),
              WebAuthn.constantTimeEquals(mac, app.passkeyChallenges.mac("code", payload)),
              let claims = try? JSONParser.parse(payload),
              let tenant = claims["t"]?.stringValue, let client = claims["c"]?.stringValue, let redirect = claims["r"]?.stringValue,
              let user = claims["u"]?.stringValue, let scope = claims["s"]?.stringValue, let authTime = claims["a"]?.intValue,
              let sid = claims["sid"]?.stringValue, let expires = claims["x"]?.intValue,
              expires > Int64(app.clock.now.timeIntervalSince1970)
        else { return nil }
        return AuthorizationCode(tenant: tenant, clientID: client, redirectURI: redirect, userID: user, scope: scope,
                                 nonce: claims["n"]?.stringValue, codeChallenge: claims["p"]?.stringValue, authTime: authTime,
                                 sessionID: sid, amr: claims["amr"]?.arrayValue?.compactMap(\.stringValue) ?? [], expires: expires,
                                 aaguid: claims["g"]?.stringValue, acrs: claims["acrs"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                                 homeTenant: claims["h"]?.stringValue, acr: claims["acr"]?.stringValue,
                                 userinfoClaims: claims["ui"]?.arrayValue?.compactMap(\.stringValue) ?? [])
    }
}
