import Foundation
import TesseraCore

/// What `/authorize` answers with (`response_type`: `code`, `id_token` or `code id_token`, OpenID Connect Core §3
/// and OAuth 2.0 Multiple Response Type Encoding Practices) and how it reaches the client (`response_mode`). An ID
/// token here (implicit or hybrid) needs the application's `web.implicitGrantSettings.enableIdTokenIssuance`, as in
/// Entra. Access tokens are issued only by the token endpoint: `token` in a response type is refused.
struct AuthorizationResponse {
    enum Mode: String {
        case query, fragment, formPost = "form_post"
    }

    /// Whether a code and whether an ID token is asked for; both false when the response type is not one Tessera issues.
    let code: Bool
    let idToken: Bool
    /// The response type as the client sent it, for messages.
    let requested: String
    /// The mode asked for when the response type allows it, else the response type's default (fragment with an ID
    /// token, query otherwise), which is also where an error about the mode goes.
    let mode: Mode
    let redirectURI: String

    init(query: [String: String], redirectURI: String) {
        requested = query["response_type"] ?? ""
        let words = Set(requested.split(separator: " ").map(String.init))
        let supported = words == ["code"] || words == ["id_token"] || words == ["code", "id_token"]
        let idToken = supported && words.contains("id_token")
        code = supported && words.contains("code")
        self.idToken = idToken
        let asked = query["response_mode"].flatMap(Mode.init(rawValue:))
        mode = asked.flatMap { idToken && $0 == .query ? nil : $0 } ?? (idToken ? .fragment : .query)
        self.redirectURI = redirectURI
    }

    /// Why the request cannot be answered as asked (`error`, `error_description`), or nil.
    func refusal(query: [String: String], application: StoredObject) -> (error: String, description: String)? {
        guard code || idToken else {
            if requested.trimmingCharacters(in: .whitespaces).isEmpty {
                return ("invalid_request", "AADSTS900144: The request body must contain the following parameter: 'response_type'.")
            }
            if requested.split(separator: " ").contains("token") {
                return ("unsupported_response_type",
                        "AADSTS700051: response_type 'token' is not enabled for the application: Tessera issues access tokens only at the token endpoint.")
            }
            return ("unsupported_response_type", "AADSTS700054: response_type '\(requested)' is not supported: use code, id_token or code id_token.")
        }
        if idToken {
            guard application.body["web"]?["implicitGrantSettings"]?["enableIdTokenIssuance"]?.boolValue == true else {
                return ("unsupported_response_type", "AADSTS700054: response_type 'id_token' is not enabled for the application.")
            }
            // A direct connect user's sign-in is answered by DirectConnect, with a code only.
            guard query[DirectConnect.marker] == nil else {
                return ("unsupported_response_type", "AADSTS700054: response_type '\(requested)' is not available to B2B direct connect users: use code.")
            }
        }
        if let asked = query["response_mode"], asked != mode.rawValue {
            return ("invalid_request", Mode(rawValue: asked) == nil
                ? "AADSTS900352: response_mode must be query, fragment or form_post."
                : "AADSTS900352: response_mode 'query' is not allowed with response_type '\(requested)': use fragment or form_post.")
        }
        // The nonce ties an ID token sent through the browser to the client's session (Core §3.2.2.1, §3.3.2.11).
        if idToken, (query["nonce"] ?? "").isEmpty {
            return ("invalid_request", "AADSTS900144: The request body must contain the following parameter: 'nonce'.")
        }
        return nil
    }

    /// The answer's parameters for a sign-in that passed every check: the code (`encoded`) and/or an ID token for
    /// `grant` (with `c_hash` when a code goes with it). Nil when the user can no longer sign in.
    func parameters(grant: AuthorizationCode, encoded: String, app: TesseraApp, base: String) async throws -> [(String, String)]? {
        var params: [(String, String)] = code ? [("code", encoded)] : []
        if idToken {
            guard let user = try await app.activeUser(tenant: grant.tenant, id: grant.userID) else { return nil }
            let external = try await CrossTenantSignIn(app: app).claims(tenant: grant.tenant, user: user, base: base)
            params.append(("id_token", try IDToken(app: app, tenant: grant.tenant, base: base)
                .sign(grant: grant, user: user, external: external, code: code ? encoded : nil)))
        }
        return params
    }

    /// Sends `params` to the redirect URI: a query, a fragment, or a page that posts them (`form_post`).
    func deliver(_ params: [(String, String)]) -> APIResponse {
        switch mode {
        case .query: AuthorizeEndpoint.redirect(redirectURI, params)
        case .formPost: AuthorizeEndpoint.formPost(redirectURI, params)
        case .fragment:
            APIResponse(status: 302, headers: [
                ("Location", redirectURI + "#" + AuthorizeEndpoint.encode(params.map { (name: $0.0, value: $0.1) })),
                ("Cache-Control", "no-store")])
        }
    }
}
