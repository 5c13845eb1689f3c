import Crypto
import Foundation
import TesseraCore
import WebAuthn

/// `GET /{tenant}/oauth2/v2.0/authorize`: the authorization code flow with PKCE. A request without a current
/// session goes to the sign-in page and comes back here; with one, the browser is sent to the client's redirect
/// URI with a code.
struct AuthorizeEndpoint {
    let app: TesseraApp
    let tenant: TenantRecord
    let request: APIRequest

    /// The parameter the sign-in page adds when it sends the browser back, so `prompt=login` is satisfied by a
    /// sign-in made after the request, not by the old session.
    static let signedInAfter = "x_signed_in_after"
    /// Added when the consent page sends the browser back, so that `prompt=consent` asks once.
    static let consented = "x_consented"

    /// Whether `text` is not all whitespace (`CharacterSet.whitespaces`, as `trimmingCharacters(in: .whitespaces)` trims):
    /// a printable ASCII byte other than the space settles it without Foundation, anything else asks Foundation.
    static func holdsNonWhitespace(_ text: String) -> Bool {
        if text.utf8.contains(where: { $0 > 0x20 && $0 < 0x7F }) { return true }
        return !text.trimmingCharacters(in: .whitespaces).isEmpty
    }

    func respond() async throws -> APIResponse {
        var query: [String: String] = [:]
        for (name, value) in request.query {
            if query[name] != nil { throw OAuthError.invalidRequest(90015, "Parameter '\(name)' is duplicated.") }
            query[name] = value
        }
        // A request object's parameters supersede the query's (OpenID Connect Core §6.3.3, RFC 9101); it is verified
        // once the redirect URI is known, so that a refusal reaches the client.
        let requestObject: RequestObject?
        var requestObjectRefusal: OAuthError?
        do { requestObject = try RequestObject(query: query) } catch let error as OAuthError { (requestObject, requestObjectRefusal) = (nil, error) }
        if let requestObject { query = requestObject.merged(into: query) }
        guard let clientID = query["client_id"], !clientID.isEmpty else {
            throw OAuthError.invalidRequest(900144, "The request body must contain the following parameter: 'client_id'.")
        }
        guard let redirectURI = query["redirect_uri"], !redirectURI.isEmpty else {
            throw OAuthError.invalidRequest(900144, "The request must contain the following parameter: 'redirect_uri'.")
        }
        let tenantID = tenant.id
        guard let application = try await app.application(tenant: tenantID, appID: clientID) else {
            throw OAuthError(error: "unauthorized_client", code: 700016,
                             description: "Application with identifier '\(clientID)' was not found in the directory '\(tenant.domain)'.")
        }
        guard let clientKind = Self.redirectKind(redirectURI, application: application) else {
            throw OAuthError(error: "invalid_request", code: 50011,
                             description: "The redirect URI '\(redirectURI)' specified in the request does not match the redirect URIs configured for the application '\(clientID)'.")
        }
        // From here on, errors go back to the client's redirect URI, in the response mode (query, fragment, form_post).
        let state = query["state"]
        let answer = AuthorizationResponse(query: query, redirectURI: redirectURI)
        func deliver(_ params: [(String, String)]) -> APIResponse { answer.deliver(params) }
        func fail(_ error: String, _ description: String) -> APIResponse {
            var params = [("error", error), ("error_description", Self.errorDescription(description))]
            if let state { params.append(("state", state)) }
            return deliver(params)
        }
        func refuse(_ error: OAuthError) -> APIResponse { fail(error.error, "AADSTS\(error.code): \(error.description)") }
        if query["request_uri"] != nil {
            return fail("request_uri_not_supported", "AADSTS90101: request_uri is not supported: send the request object by value, as 'request'.")
        }
        if let requestObjectRefusal { return refuse(requestObjectRefusal) }
        do {
            try requestObject?.verify(clientID: clientID, application: application, app: app, tenant: tenantID, base: request.baseURL)
        } catch let error as OAuthError { return refuse(error) }
        // prompt, max_age, acr_values, claims: checked before anything is decided.
        let parameters: AuthorizeParameters
        do { parameters = try AuthorizeParameters(query) } catch let error as OAuthError { return refuse(error) }
        // id_token_hint (Core §3.1.2.1): an ID token of ours naming the user the client expects; a forged one is refused.
        var hintedUser: String?
        if let hint = query["id_token_hint"] {
            guard let user = AuthorizeParameters.hintedUser(hint, app: app, tenant: tenantID, base: request.baseURL) else {
                return fail("invalid_request", "AADSTS50132: The id_token_hint is not an ID token this tenant issued.")
            }
            hintedUser = user
        }
        if let refused = answer.refusal(query: query, application: application) { return fail(refused.error, refused.description) }
        guard let scope = query["scope"], Self.holdsNonWhitespace(scope) else {
            return fail("invalid_request", "AADSTS900144: The request body must contain the following parameter: 'scope'.")
        }
        let challenge = query["code_challenge"]
        if challenge != nil || query["code_challenge_method"] != nil {
            guard query["code_challenge_method"] == "S256", let challenge, challenge.count >= 43, challenge.count <= 128 else {
                return fail("invalid_request", "AADSTS501491: code_challenge_method must be S256 with a 43 to 128 character code_challenge.")
            }
        } else if clientKind != "web" && answer.code {
            return fail("invalid_request", "AADSTS9002325: Proof Key for Code Exchange is required for cross-origin authorization code redemption.")
        }
        let prompt = parameters.prompt
        let now = Int64(app.clock.now.timeIntervalSince1970)
        let sessions = SignInSessions(app: app)
        var session = try await sessions.current(request, tenant: tenantID)
        if let after = query[Self.signedInAfter].flatMap(Int64.init) {
            // Back from the sign-in page: only a sign-in made after the request counts.
            if let current = session, current.authTime < after { session = nil }
        } else if let current = session, parameters.requiresSignIn(authTime: current.authTime, now: now) {
            // prompt=login, or a sign-in older than max_age: sign in again.
            session = nil
        }
        if let hint = query["login_hint"]?.lowercased(), let current = session {
            let user = try await app.store.read { tx in try await tx.object(tenant: tenantID, id: current.userID) }
            // An invited user signs in with its home address, which is its mail here.
            let names = [user?.body["userPrincipalName"]?.stringValue,
                         user?.body["creationType"]?.stringValue == "Invitation" ? user?.body["mail"]?.stringValue : nil]
            if !names.contains(where: { $0?.lowercased() == hint }) { session = nil }
        }
        // The session of another user than the hint's is not the sign-in the client asked about.
        if let hintedUser, let current = session, current.userID != hintedUser { session = nil }
        // Tenant restrictions v2: the restricting tenant's policy, when a network or device marks the request.
        if let refused = try await TenantRestrictionsGate(app: app, tenant: tenant, request: request)
            .authorize(userID: session?.userID, clientID: clientID, application: application) { return refused }
        guard let session else {
            // A POST from the client's site carries no SameSite=Lax cookie: the same request again by GET, which does.
            if request.method == "POST" {
                return APIResponse(status: 303, headers: [("Location", "/\(request.segments[0])/oauth2/v2.0/authorize?" + Self.encode(request.query)),
                                                          ("Cache-Control", "no-store")])
            }
            // A partner's user with no guest here, signed in at home: B2B direct connect, when both tenants allow it.
            if let home = query[DirectConnect.marker] {
                return try await DirectConnect(app: app, tenant: tenant).authorize(.init(
                    request: request, query: query, application: application, clientID: clientID, redirectURI: redirectURI,
                    codeChallenge: challenge, deliver: deliver), home: home)
            }
            if prompt.contains("none") { return fail("login_required", "AADSTS50058: A silent sign-in request was sent but no user is signed in.") }
            // To the sign-in page, which sends the browser back here once a passkey sign-in succeeds.
            let continuation = signInContinuation(parameters, now: now)
            // A user of another tenant of this deployment signs in at home and comes back as this tenant's guest.
            if let hint = query["login_hint"], let external = try await ExternalSignIn.homeRealm(
                app: app, tenant: tenant, segment: request.segments[0], loginHint: hint, continuation: continuation) { return external }
            // domain_hint names the organization to sign in with: another tenant's is home realm discovery, as a login_hint.
            if query["login_hint"] == nil, let domain = query["domain_hint"], !domain.contains("@"), let external = try await ExternalSignIn.homeRealm(
                app: app, tenant: tenant, segment: request.segments[0], loginHint: "@" + domain.lowercased(), continuation: continuation) { return external }
            var login = [("continue", continuation)]
            if let hint = query["login_hint"] {
                login.append(("login_hint", hint))
            } else if let hintedUser, let name = try await app.store.read({ tx in try await tx.object(tenant: tenantID, id: hintedUser) })?
                        .body["userPrincipalName"]?.stringValue {
                login.append(("login_hint", name)) // the id_token_hint's user is the one to sign in
            }
            return APIResponse(status: 302, headers: [("Location", "/\(request.segments[0])/login?" + Self.encode(login)),
                                                      ("Cache-Control", "no-store")])
        }
        // prompt=select_account: continue as the account signed in, or sign in with another.
        if prompt.contains("select_account"), query[Self.signedInAfter] == nil {
            return try await accountPicker(session: session, parameters: parameters, now: now)
        }
        // An external user's sign-in is B2B collaboration, which both tenants' cross-tenant access settings must allow.
        if let reason = try await CrossTenantSignIn(app: app).refusal(tenant: tenantID, userID: session.userID, clientID: clientID) {
            return fail("access_denied", "AADSTS500213: \(reason)")
        }
        // An external user pending acceptance first accepts this organization's terms (Entra's B2B consent prompt).
        if let review = try await ExternalUserConsent(app: app, tenant: tenant).review(session: session, request: request, redirectURI: redirectURI) {
            if prompt.contains("none") {
                return fail("interaction_required", "AADSTS65001: The user has not accepted the permissions of \(tenant.name) yet; send an interactive request.")
            }
            return review
        }
        // Conditional Access decides the sign-in before anything is issued for it.
        let contexts: Set<String>
        do {
            contexts = try ConditionalAccessGate.authenticationContexts(claims: query["claims"]).union(parameters.requestedContexts)
        } catch let error as OAuthError {
            return fail(error.error, "AADSTS\(error.code): \(error.description)")
        }
        let (decision, refusal) = try await conditionalAccess(session: session, clientID: clientID, application: application,
                                                              authenticationContexts: contexts, continuation: request.query)
        if let refused = refusal {
            if prompt.contains("none"), refused.status == 302 {
                return fail("interaction_required", "AADSTS50076: Due to a configuration change made by your administrator, you must sign in again.")
            }
            return refused
        }
        // An essential acr the sign-in cannot claim is a failed authentication (Core §5.5.1.1).
        let (acr, unmet) = parameters.acr(satisfied: contexts)
        if unmet {
            return fail("unmet_authentication_requirements",
                        "AADSTS75011: The sign-in cannot meet the essential acr values requested (\(parameters.acrValues.joined(separator: " "))): Tessera claims 1 and the authentication contexts c1 to c99.")
        }
        // Delegated access needs consent: what is not granted yet is asked for (or, silently, refused).
        let consent = Consent(app: app, tenant: tenant)
        let missing = try await consent.missing(scope: scope, clientID: clientID, userID: session.userID)
        if !missing.isEmpty || (prompt.contains("consent") && query[Self.consented] == nil) {
            if prompt.contains("none") {
                return fail("consent_required", "AADSTS65001: The user or administrator has not consented to use the application with ID '\(clientID)'. Send an interactive authorization request for this user and resource.")
            }
            let asked = missing.isEmpty ? Consent.graphScopes(scope).scopes : missing
            let (forSelf, forOrganisation) = try await consent.authority(userID: session.userID, scopes: asked)
            var back = request.query.filter { $0.name != Self.consented }
            back.append((Self.consented, "1"))
            return ConsentPage.render(
                tenant: tenant, application: application, scopes: asked, mayConsent: forSelf, mayConsentForOrganisation: forOrganisation,
                continuation: "/\(request.segments[0])/oauth2/v2.0/authorize?" + Self.encode(back),
                token: consent.formToken(sessionID: session.id, clientID: clientID, scopes: asked), redirectURI: redirectURI)
        }
        let code = AuthorizationCode(
            tenant: tenantID, clientID: clientID, redirectURI: redirectURI, userID: session.userID, scope: scope,
            nonce: query["nonce"], codeChallenge: challenge, authTime: session.authTime, sessionID: session.id, amr: session.amr,
            expires: Int64(app.clock.now.addingTimeInterval(AuthorizationCode.lifetime).timeIntervalSince1970), aaguid: session.aaguid,
            acrs: contexts.sorted(), acr: acr, userinfoClaims: parameters.userinfoClaims)
        // The user as Conditional Access read it (once per change of the tenant), not a read per sign-in.
        if let user = try await app.conditionalAccess.membership(app: app, tenant: tenant, userID: session.userID).0 {
            await SignInLog(app: app, tenant: tenantID).record(
                SignInEvent(kind: .interactiveUser, principal: user, appID: clientID, appDisplayName: application.body["displayName"]?.stringValue,
                            amr: session.amr, authTime: session.authTime, decision: decision, clientAppUsed: "Browser"),
                request: request)
        }
        // The code and/or an ID token (implicit and hybrid), as the response type asked.
        guard var params = try await answer.parameters(grant: code, encoded: code.encode(app: app), app: app, base: request.baseURL) else {
            return fail("access_denied", "AADSTS50057: The user account is disabled or no longer exists.")
        }
        if let state { params.append(("state", state)) }
        params.append(("session_state", session.id))
        try await SessionClients(app: app).record(session, clientID: clientID, tenant: tenantID, baseURL: request.baseURL)  // for front- and back-channel logout
        var response = deliver(params)
        // A persistent browser session control decides whether the browser keeps the session when it closes.
        if let mode = decision.persistentBrowser,
           let cookie = SignInSessions(app: app).cookie(request, tenant: tenantID, persistent: mode == "always") {
            response.headers.append(("Set-Cookie", cookie))
        }
        return response
    }

    /// This request again, as the sign-in page sends the browser back to it: `prompt` without what a sign-in satisfies,
    /// and, when a new sign-in was asked for (`prompt=login` or `select_account`, `max_age`), the moment before which
    /// a sign-in does not count.
    func signInContinuation(_ parameters: AuthorizeParameters, now: Int64) -> String {
        var back = request.query.filter { $0.name != "prompt" && $0.name != Self.signedInAfter && $0.name != Self.consented }
        if let prompt = parameters.promptAfterSignIn { back.append(("prompt", prompt)) }
        if parameters.asksForNewSignIn { back.append((Self.signedInAfter, String(now))) }
        return "/\(request.segments[0])/oauth2/v2.0/authorize?" + Self.encode(back)
    }

    /// `prompt=select_account` with a session: a page to continue as its user (this request without `select_account`)
    /// or to sign in with another account (the sign-in page, then this request, satisfied only by that new sign-in).
    func accountPicker(session: SignInSessions.Session, parameters: AuthorizeParameters, now: Int64) async throws -> APIResponse {
        let tenantID = tenant.id
        let user = try await app.store.read { tx in try await tx.object(tenant: tenantID, id: session.userID) }
        var same = request.query.filter { $0.name != "prompt" }
        if let prompt = parameters.promptAfterSignIn { same.append(("prompt", prompt)) }
        let another = "/\(request.segments[0])/login?" + Self.encode([("continue", signInContinuation(parameters, now: now))])
        return AccountPickerPage.render(tenant: tenant, userPrincipalName: user?.body["userPrincipalName"]?.stringValue ?? session.userID,
                                        displayName: user?.body["displayName"]?.stringValue,
                                        continueAs: "/\(request.segments[0])/oauth2/v2.0/authorize?" + Self.encode(same), another: another)
    }

    /// `web` (confidential), `spa` or `publicClient`, by where the redirect URI is registered; nil when nowhere.
    static func redirectKind(_ uri: String, application: StoredObject) -> String? {
        for kind in ["web", "spa", "publicClient"] where
            (application.body[kind]?["redirectUris"]?.arrayValue ?? []).contains(where: { $0.stringValue == uri }) {
            return kind
        }
        return nil
    }

    static func encode(_ params: [(name: String, value: String)]) -> String {
        params.map { "\($0.name)=\(escape($0.value))" }.joined(separator: "&")
    }

    static let allowed: CharacterSet = {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return allowed
    }()

    /// A query value percent-encoded: letters, digits and `-._~` as they are, everything else escaped. ASCII (codes,
    /// states, URLs) by bytes; anything else through Foundation as before (it leaves non-ASCII letters as they are).
    static func escape(_ value: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(value.utf8.count)
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(byte)
            case 0x80...:
                return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
            default:
                out += [UInt8(ascii: "%"), hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    /// `response_mode=form_post`: a page that posts the parameters to the redirect URI at once (the code stays out
    /// of the URL, the history and the Referer). Its CSP allows that one form target and the page's one script.
    /// An `error_description` as RFC 6749 §4.1.2.1 allows it (printable ASCII without `"` and `\`): a description that
    /// quotes a parameter of the request may carry anything, so anything else becomes `?`.
    static func errorDescription(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { (0x20...0x7E).contains($0.value) && $0 != "\"" && $0 != "\\" ? $0 : "?" }))
    }

    static func formPost(_ uri: String, _ params: [(String, String)]) -> APIResponse {
        let nonce = Secrets.randomToken(bytes: 16)
        let fields = params.map { "<input type=\"hidden\" name=\"\(Page.escape($0.0))\" value=\"\(Page.escape($0.1))\">" }.joined()
        let html = """
        <!doctype html><html lang="en"><head><meta charset="utf-8"><title>Signing in…</title></head><body>
        <form method="post" action="\(Page.escape(uri))">\(fields)<noscript><button type="submit">Continue</button></noscript></form>
        <script nonce="\(nonce)">document.forms[0].submit();</script></body></html>
        """
        let target = ConsentPage.origin(of: uri)
        return APIResponse(status: 200, headers: [
            ("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store"), ("Referrer-Policy", "no-referrer"),
            ("Content-Security-Policy", "default-src 'none'; script-src 'nonce-\(nonce)'; form-action \(target); frame-ancestors 'none'; base-uri 'none'"),
        ], body: Array(html.utf8))
    }

    static func redirect(_ uri: String, _ params: [(String, String)]) -> APIResponse {
        let separator = params.isEmpty ? "" : uri.contains("?") ? "&" : "?"
        return APIResponse(status: 302, headers: [("Location", uri + separator + encode(params.map { (name: $0.0, value: $0.1) })),
                                                  ("Cache-Control", "no-store")])
    }
}
