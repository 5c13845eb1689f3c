import Crypto
import Foundation
import TesseraCore
import WebAuthn

/// OpenID Connect's UserInfo endpoint (Core §5.3), where discovery says it is (`/oidc/userinfo`, as Entra's): GET or
/// POST with the access token a user's sign-in gave the client, in the header or (POST) the form body. It answers the
/// claims the token's scopes allow, with the same pairwise `sub` as the client's ID token; errors are RFC 6750's,
/// in `WWW-Authenticate`.
struct UserInfo {
    let app: TesseraApp

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
        guard let user = try await app.activeUser(tenant: tenant, id: userID) else {
            return Self.challenge("invalid_token", "The user no longer exists or is disabled.", status: 401)
        }
        var claims: [String: JSONValue] = ["sub": .string(Self.subject(tenant: tenant, client: client, user: userID))]
        if scopes.contains("profile") {
            claims["name"] = .optional(user.body["displayName"]?.stringValue)
            claims["given_name"] = .optional(user.body["givenName"]?.stringValue)
            claims["family_name"] = .optional(user.body["surname"]?.stringValue)
            claims["preferred_username"] = .optional(user.body["userPrincipalName"]?.stringValue)
            claims["oid"] = .string(userID)
            claims["tid"] = .string(tenant)
        }
        if scopes.contains("email"), let mail = user.body["mail"]?.stringValue { claims["email"] = .string(mail) }
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
