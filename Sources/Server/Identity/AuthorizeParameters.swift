import Foundation
import TesseraCore

/// The OpenID Connect authentication request parameters of `/authorize` beyond OAuth's (OpenID Connect Core 1.0
/// §3.1.2.1 and §5.5): `prompt`, `max_age`, `acr_values`, the `claims` parameter's `acr` and the claims it asks
/// userinfo for, checked before anything is decided. `ui_locales`, `claims_locales` and `display` are accepted and
/// change nothing (the pages are in English only, the claims are not localised, and every display is a page);
/// `auth_time` is in every ID token, so an essential `auth_time` is always met.
struct AuthorizeParameters: Sendable {
    /// The `prompt` values Tessera acts on. `create` (OpenID Connect Prompt Create 1.0, Entra's sign-up) is refused:
    /// Tessera has no self-service sign-up; users are created by an administrator or invited.
    static let supportedPrompts = ["none", "login", "consent", "select_account"]
    /// The `acr` value of every sign-in: Entra's v1 `acr` "1" (the user authenticated; here always with a passkey
    /// or a Temporary Access Pass). Authentication contexts (`c1`…`c99`) are the other values a sign-in can claim,
    /// once Conditional Access has decided them.
    static let baselineACR = "1"

    var prompt: Set<String> = []
    /// `max_age` in seconds: an older sign-in is made again.
    var maxAge: Int64?
    /// The `acr` values asked for, in order of preference (the `claims` parameter's `id_token.acr`, else `acr_values`).
    var acrValues: [String] = []
    /// Whether `acr` was asked for as an essential claim: then a sign-in that cannot claim one of the values fails.
    var acrEssential = false
    /// Whether `acr` was asked for at all (only then is it in the ID token, as Entra's v2 ID tokens have none).
    var acrRequested = false
    /// The claims the `claims` parameter's `userinfo` member asks for that userinfo can answer (``UserInfo/releasable``),
    /// sorted: userinfo answers them whether or not their scope was asked for. Others are ignored (Core §5.5), and
    /// `essential` changes nothing: userinfo answers every one the user has a value for.
    var userinfoClaims: [String] = []

    /// Reads and checks the parameters; an `OAuthError` (`invalid_request`) for one that is malformed, which goes
    /// back to the redirect URI.
    init(_ query: [String: String]) throws {
        if let text = query["prompt"] {
            let values = text.split(separator: " ").map(String.init)
            for value in values where !Self.supportedPrompts.contains(value) {
                if value == "create" {
                    throw OAuthError.invalidRequest(90023, "prompt=create asks for self-service sign-up, which this organization does not offer: an administrator creates or invites its users.")
                }
                throw OAuthError.invalidRequest(90023, "Invalid prompt value '\(value)': use none, login, consent or select_account.")
            }
            prompt = Set(values)
            // OpenID Connect Core §3.1.2.1: none with any other value is an error.
            if prompt.contains("none"), prompt.count > 1 {
                throw OAuthError.invalidRequest(90023, "prompt=none cannot be combined with other prompt values.")
            }
        }
        if let text = query["max_age"] {
            guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }), let seconds = Int64(text) else {
                throw OAuthError.invalidRequest(90014, "max_age must be a non-negative whole number of seconds.")
            }
            maxAge = seconds
        }
        if let text = query["acr_values"] {
            acrValues = text.split(separator: " ").map(String.init)
            acrRequested = !acrValues.isEmpty
        }
        if let text = query["claims"], !text.isEmpty {
            guard let parsed = try? JSONParser.parse(Array(text.utf8)), let members = parsed.objectValue else {
                throw OAuthError.invalidRequest(90008, "The claims parameter is not a valid JSON object.")
            }
            // Core §5.5: each member (id_token, userinfo, or one Entra reads, access_token) maps claim names to null or
            // to an object of essential, value and values.
            for (target, requests) in members {
                guard let requests = requests.objectValue else {
                    throw OAuthError.invalidRequest(90008, "The claims parameter's '\(target)' member is not an object.")
                }
                for (name, request) in requests where request != .null {
                    guard let request = request.objectValue else {
                        throw OAuthError.invalidRequest(90008, "The claims parameter's request for '\(name)' is neither null nor an object.")
                    }
                    if let essential = request["essential"], essential.boolValue == nil {
                        throw OAuthError.invalidRequest(90008, "The claims parameter's 'essential' for '\(name)' is not true or false.")
                    }
                    if let values = request["values"], values.arrayValue == nil {
                        throw OAuthError.invalidRequest(90008, "The claims parameter's 'values' for '\(name)' is not an array.")
                    }
                }
            }
            if let requests = parsed["userinfo"]?.objectValue {
                userinfoClaims = requests.keys.filter { UserInfo.releasable[$0] != nil }.sorted()
            }
            if let acr = parsed["id_token"]?["acr"] {
                acrRequested = true
                let values = (acr["values"]?.arrayValue?.compactMap(\.stringValue) ?? []) + (acr["value"]?.stringValue.map { [$0] } ?? [])
                if !values.isEmpty { acrValues = values }
                acrEssential = acr["essential"]?.boolValue == true && !values.isEmpty
            }
        }
    }

    /// The authentication contexts among the `acr` values asked for (essential or not), which Conditional Access
    /// decides for this sign-in as it does MSAL's claims challenge: meeting their policies is the only way to claim them.
    var requestedContexts: Set<String> { Set(acrValues.filter(Self.isAuthenticationContext)) }

    static func isAuthenticationContext(_ value: String) -> Bool {
        value.count >= 2 && value.count <= 3 && value.first == "c" && Int(value.dropFirst()).map { (1...99).contains($0) } == true
    }

    /// Whether a session that signed in at `authTime` must sign in again for this request (`prompt=login`, or a
    /// `max_age` it is older than; `max_age=0` is `prompt=login`).
    func requiresSignIn(authTime: Int64, now: Int64) -> Bool {
        if prompt.contains("login") { return true }
        guard let maxAge else { return false }
        return maxAge == 0 || now - authTime > maxAge
    }

    /// Whether a new sign-in is what this request asks for, so only one made after it counts.
    var asksForNewSignIn: Bool { prompt.contains("login") || prompt.contains("select_account") || maxAge != nil }

    /// The `prompt` to carry back to `/authorize` after the sign-in page: what the sign-in satisfied (`login`,
    /// `select_account`) is dropped, `consent` stays.
    var promptAfterSignIn: String? {
        let rest = Self.supportedPrompts.filter { prompt.contains($0) && $0 != "login" && $0 != "select_account" }
        return rest.isEmpty ? nil : rest.joined(separator: " ")
    }

    /// The ID token's `acr` for a sign-in that satisfied the authentication contexts `contexts`: the first value asked
    /// for that it can claim, else the baseline "1" (nil when `acr` was not asked for). `unmet` when `acr` was
    /// essential and none of its values can be claimed (Core §5.5.1.1: a failed authentication).
    func acr(satisfied contexts: Set<String>) -> (claim: String?, unmet: Bool) {
        guard acrRequested else { return (nil, false) }
        if let met = acrValues.first(where: { $0 == Self.baselineACR || contexts.contains($0) }) { return (met, false) }
        return acrEssential ? (nil, true) : (Self.baselineACR, false)
    }

    /// The user an `id_token_hint` names (its `oid`): an ID token this deployment signed for this tenant, expired
    /// ones included (a hint names a user; it grants nothing). Nil for anything else, which is refused.
    static func hintedUser(_ hint: String, app: TesseraApp, tenant: String, base: String) -> String? {
        guard let jwt = JWT.decode(hint), jwt.verify(with: app.signingKeys), jwt.claims["tid"]?.stringValue == tenant,
              let issuer = jwt.claims["iss"]?.stringValue, app.network.isOwnIssuer(issuer, tenant: tenant, base: base),
              jwt.claims["aud"]?.stringValue != nil, let user = jwt.claims["oid"]?.stringValue
        else { return nil }
        return user
    }

    /// A `POST` to `/authorize` (Core §3.1.2.1: GET and POST) as the same request with its form fields as the query,
    /// so that every continuation (the sign-in page, consent) comes back by GET. Other requests are unchanged.
    static func formEncoded(_ request: APIRequest) -> APIRequest {
        guard request.method == "POST" else { return request }
        var posted = request
        if request.header("content-type")?.lowercased().hasPrefix("application/x-www-form-urlencoded") == true {
            posted.query = request.query + APIRequest.parseForm(String(decoding: request.body, as: UTF8.self))
        }
        posted.body = []
        return posted
    }
}
