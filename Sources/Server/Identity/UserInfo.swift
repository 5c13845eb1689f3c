import Crypto
import Foundation
import TesseraCore
import WebAuthn

/// OpenID Connect's UserInfo endpoint (Core §5.3), where discovery says it is (`/oidc/userinfo`, as Entra's): GET or
/// POST with the access token a user's sign-in gave the client, in the header or (POST) the form body. It answers the
/// claims the token's scopes allow, and those the authorization request's `claims` parameter asked userinfo for
/// (Core §5.5), with the same pairwise `sub` as the client's ID token; errors are RFC 6750's, in `WWW-Authenticate`.
/// A token whose grant was revoked (its authorization code replayed) is refused.
struct UserInfo {
    let app: TesseraApp

    /// The access-token claim listing what the `claims` parameter asked userinfo for (Tessera's own).
    static let requestedClaims = "userinfo_claims"

    /// The claims userinfo answers beyond `sub`, each with the scope that releases it. The `claims` parameter may ask
    /// for any of them by name without its scope: the OpenID Connect scopes need no consent here (see Consent), so a
    /// claim asked for by name gives a client nothing its scope would not.
    static let releasable: [String: String] = [
        "name": "profile", "given_name": "profile", "family_name": "profile", "preferred_username": "profile", "oid": "profile",
        "tid": "profile", "email": "email",
    ]

    func respond(_ request: APIRequest) async throws -> APIResponse {
        guard request.method == "GET" || request.method == "POST" else { throw DirectoryError(.methodNotAllowed, "Use GET or POST.") }
        var header = request.header("authorization")
        if header == nil, request.method == "POST", request.header("content-type")?.lowercased().hasPrefix("application/x-www-form-urlencoded") == true,
           let token = APIRequest.parseForm(String(decoding: request.body, as: UTF8.self)).first(where: { $0.name == "access_token" })?.value {
            header = "Bearer \(token)"
        }
        guard header != nil else { return Self.challenge(nil, "The access token is missing.", status: 401) }
        let jwt: JWT
        do {
            jwt = try Caller.verifiedToken(header, app: app, base: request.baseURL)
        } catch {
            return Self.challenge("invalid_token", error.message, status: 401)
        }
        let scopes = Set((jwt.claims["scp"]?.stringValue ?? "").split(separator: " ").map(String.init))
        guard jwt.claims["idtyp"]?.stringValue == "user", scopes.contains("openid"),
              let tenant = jwt.claims["tid"]?.stringValue, let userID = jwt.claims["oid"]?.stringValue,
              let client = jwt.claims["appid"]?.stringValue
        else { return Self.challenge("insufficient_scope", "The access token was not issued to a user with the openid scope.", status: 403) }
        if let refusal = try await app.revokedGrants.refusal(jwt, app: app) {
            return Self.challenge("invalid_token", refusal, status: 401)
        }
        guard let user = try await app.activeUser(tenant: tenant, id: userID) else {
            return Self.challenge("invalid_token", "The user no longer exists or is disabled.", status: 401)
        }
        let values: [String: JSONValue] = [
            "name": .optional(user.body["displayName"]?.stringValue), "given_name": .optional(user.body["givenName"]?.stringValue),
            "family_name": .optional(user.body["surname"]?.stringValue),
            "preferred_username": .optional(user.body["userPrincipalName"]?.stringValue), "oid": .string(userID), "tid": .string(tenant),
            "email": .optional(user.body["mail"]?.stringValue),
        ]
        let asked = Set(jwt.claims[Self.requestedClaims]?.arrayValue?.compactMap(\.stringValue) ?? [])
        var claims: [String: JSONValue] = ["sub": .string(Self.subject(tenant: tenant, client: client, user: userID))]
        for (name, scope) in Self.releasable where scopes.contains(scope) || asked.contains(name) {
            claims[name] = values[name] ?? .null
        }
        return .json(.object(claims.filter { $0.value != .null }), headers: [("Cache-Control", "no-store"), ("Pragma", "no-cache")])
    }

    /// The pairwise subject of `user` for `client`: the ID token's `sub`, stable per user and client, not the object id.
    static func subject(tenant: String, client: String, user: String) -> String {
        WebAuthn.Base64URL.encode(Array(SHA256.hash(data: Array("\(tenant):\(client):\(user)".utf8))))
    }

    static func challenge(_ error: String?, _ description: String, status: Int) -> APIResponse {
        var value = "Bearer realm=\"tessera\""
        if let error { value += ", error=\"\(error)\", error_description=\"\(description.replacingOccurrences(of: "\"", with: "'"))\"" }
        return APIResponse(status: status, headers: [("WWW-Authenticate", value), ("Cache-Control", "no-store")])
    }
}
