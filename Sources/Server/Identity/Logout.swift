import Foundation
import TesseraCore
import WebAuthn

/// `oauth2/v2.0/logout`, the end session endpoint: OpenID Connect RP-Initiated Logout 1.0 (GET, or POST with a form
/// body), then Front-Channel and Back-Channel Logout 1.0 for every app the session signed into.
///
/// - `id_token_hint` (an ID token this tenant issued; accepted expired, as §2 allows) names the app and the user. A
///   hint that does not decode, whose signature fails, or that another issuer or tenant made is refused with an error
///   page and nothing else happens: no redirect, the session kept.
/// - `client_id` names the app without a hint (and must agree with the hint's audience).
/// - `post_logout_redirect_uri` must be, exactly (query included), one of the app's registered URIs: a redirect URI of
///   any platform (`web`, `spa`, `publicClient`) or its `web.logoutUrl`; anything else is refused with an error page,
///   never followed. `state` is returned with it.
/// - The session ends without a question only when the hint is for the session's user (its `sid` or `oid`) and a
///   `logout_hint`, if sent, names that user too. Otherwise (no hint, no parameters, another user) a page asks the
///   user to confirm; its form carries a token bound to the session, its expiry and the parameters it will act on, so
///   a cross-site request cannot end a session (no logout CSRF).
/// - Ending the session tells each app it signed into: a hidden iframe per app with a front-channel logout URL
///   (Entra's `web.logoutUrl`) with `iss` and `sid`, and a logout token queued for each app with a back-channel URL.
///   The redirect to `post_logout_redirect_uri` waits for the iframes (5 s at most).
struct Logout {
    let app: TesseraApp
    let tenant: TenantRecord
    let request: APIRequest

    /// The confirmation form's field holding its token.
    static let confirmationField = "x_logout_confirmation"
    /// How long a confirmation page may wait for its answer.
    static let confirmationLifetime: Int64 = 600

    /// A logout request that passed its checks.
    struct Checked {
        var application: StoredObject?
        var clientID: String?
        /// The registered `post_logout_redirect_uri`, when one was asked for.
        var target: String?
        var state: String?
        /// The verified `id_token_hint`'s claims.
        var hint: [String: JSONValue]?
        var logoutHint: String?
    }

    /// Why a logout request is refused: shown on an error page, never sent to the app.
    struct Refusal: Error {
        let code: Int
        let message: String
        var status = 400
    }

    func respond() async throws -> APIResponse {
        do {
            let parameters = try parameters()
            let checked = try await check(parameters)
            let session = try await SignInSessions(app: app).current(request, tenant: tenant.id)
            if let presented = parameters[Self.confirmationField] {
                guard request.method == "POST" else { throw Refusal(code: 50058, message: "The sign-out confirmation must be posted.") }
                return try await confirmed(presented, checked: checked, session: session)
            }
            guard let session else { return try await finish(session: nil, checked: checked) }
            if try await isSilent(checked, session: session) { return try await finish(session: session, checked: checked) }
            return try await confirmation(checked, session: session)
        } catch let refusal as Refusal {
            return LogoutPage.error(tenant: tenant, code: refusal.code, message: refusal.message, correlationID: request.requestID,
                                    status: refusal.status)
        }
    }

    /// The request's parameters: the query of a GET, the form body of a POST. A repeated parameter is refused.
    func parameters() throws -> [String: String] {
        let pairs: [(name: String, value: String)]
        if request.method == "POST" {
            guard request.body.isEmpty || request.header("content-type")?.lowercased().hasPrefix("application/x-www-form-urlencoded") == true else {
                throw Refusal(code: 900144, message: "A sign-out request posted must be a form (application/x-www-form-urlencoded).")
            }
            pairs = APIRequest.parseForm(String(decoding: request.body, as: UTF8.self))
        } else {
            pairs = request.query
        }
        var out: [String: String] = [:]
        for (name, value) in pairs {
            guard out[name] == nil else { throw Refusal(code: 90015, message: "Parameter '\(name)' is duplicated.") }
            out[name] = value
        }
        return out
    }

    /// Checks the hint, the app and the return address.
    func check(_ parameters: [String: String]) async throws -> Checked {
        var checked = Checked(state: parameters["state"], logoutHint: parameters["logout_hint"].flatMap { $0.isEmpty ? nil : $0 })
        checked.clientID = parameters["client_id"].flatMap { $0.isEmpty ? nil : $0 }
        if let hint = parameters["id_token_hint"], !hint.isEmpty {
            guard let claims = verifiedHint(hint) else {
                throw Refusal(code: 50132, message: "The id_token_hint is not an ID token this tenant issued: it is malformed, its signature does not verify, or another issuer or tenant made it.")
            }
            let audience = claims["aud"]?.stringValue
            if let clientID = checked.clientID, clientID != audience {
                throw Refusal(code: 50132, message: "The id_token_hint was issued to another application than client_id names.")
            }
            checked.clientID = audience
            checked.hint = claims
        }
        if let clientID = checked.clientID {
            guard let application = try await app.application(tenant: tenant.id, appID: clientID) else {
                throw Refusal(code: 700016, message: "Application with identifier '\(clientID)' was not found in the directory '\(tenant.domain)'.")
            }
            checked.application = application
        }
        if let target = parameters["post_logout_redirect_uri"], !target.isEmpty {
            guard let application = checked.application else {
                throw Refusal(code: 50011, message: "A post_logout_redirect_uri needs the application that registered it: send id_token_hint or client_id.")
            }
            guard Self.isRegistered(target, application: application) else {
                throw Refusal(code: 50011, message: "The post_logout_redirect_uri '\(target)' does not match the URIs registered for the application '\(checked.clientID ?? "")'.")
            }
            checked.target = target
        }
        return checked
    }

    /// The hint's claims, when it is an ID token (no access token: those carry `idtyp`) this tenant issued with this
    /// deployment's key, whether or not it expired.
    func verifiedHint(_ hint: String) -> [String: JSONValue]? {
        guard let jwt = JWT.decode(hint), jwt.verify(with: app.signingKeys), jwt.claims["tid"]?.stringValue == tenant.id,
              let issuer = jwt.claims["iss"]?.stringValue, app.network.isOwnIssuer(issuer, tenant: tenant.id, base: request.baseURL),
              jwt.claims["aud"]?.stringValue?.isEmpty == false, jwt.claims["idtyp"] == nil
        else { return nil }
        return jwt.claims
    }

    /// Where an app may be sent back after signing out: exactly one of its redirect URIs (any platform) or its
    /// `web.logoutUrl`. Query strings count: a URI registered with one matches only with the same one.
    static func isRegistered(_ target: String, application: StoredObject) -> Bool {
        AuthorizeEndpoint.redirectKind(target, application: application) != nil || application.body["web"]?["logoutUrl"]?.stringValue == target
    }

    /// Whether the request proves the app asked for this session's user: a hint for that user (by `sid` or `oid`),
    /// and a `logout_hint`, when sent, naming that user.
    func isSilent(_ checked: Checked, session: SignInSessions.Session) async throws -> Bool {
        guard let hint = checked.hint,
              hint["sid"]?.stringValue == session.id || hint["oid"]?.stringValue == session.userID else { return false }
        guard let logoutHint = checked.logoutHint else { return true }
        return try await names(logoutHint, userID: session.userID)
    }

    /// Whether `logoutHint` names the user: its user principal name or mail, any case.
    func names(_ logoutHint: String, userID: String) async throws -> Bool {
        guard let user = try await app.activeUser(tenant: tenant.id, id: userID) else { return false }
        let hint = logoutHint.lowercased()
        return [user.body["userPrincipalName"]?.stringValue, user.body["mail"]?.stringValue].contains { $0?.lowercased() == hint }
    }

    /// The token of a confirmation page: its expiry and a MAC over the session, the expiry and what the form will do.
    func confirmationToken(session: SignInSessions.Session, expires: Int64, checked: Checked) -> String {
        let bound = [session.id, String(expires), checked.clientID ?? "", checked.target ?? "", checked.state ?? ""].joined(separator: "\n")
        return "\(expires).\(WebAuthn.Base64URL.encode(app.passkeyChallenges.mac("logout:\(tenant.id)", Array(bound.utf8))))"
    }

    /// The page asking the user to confirm.
    func confirmation(_ checked: Checked, session: SignInSessions.Session) async throws -> APIResponse {
        let user = try await app.activeUser(tenant: tenant.id, id: session.userID)
        let upn = user?.body["userPrincipalName"]?.stringValue ?? ""
        var other: String?
        if let logoutHint = checked.logoutHint, try await !names(logoutHint, userID: session.userID) { other = logoutHint }
        let expires = Int64(app.clock.now.timeIntervalSince1970) + Self.confirmationLifetime
        var fields: [(String, String)] = [(Self.confirmationField, confirmationToken(session: session, expires: expires, checked: checked))]
        if let clientID = checked.clientID { fields.append(("client_id", clientID)) }
        if let target = checked.target { fields.append(("post_logout_redirect_uri", target)) }
        if let state = checked.state { fields.append(("state", state)) }
        return LogoutPage.confirm(tenant: tenant, userPrincipalName: upn, application: checked.application?.body["displayName"]?.stringValue,
                                  otherUser: other, fields: fields, returnTo: checked.target)
    }

    /// The confirmation page's answer: the session ends if the token is this session's, unexpired and for these
    /// parameters.
    func confirmed(_ presented: String, checked: Checked, session: SignInSessions.Session?) async throws -> APIResponse {
        if let origin = request.header("origin"), origin != PasskeyRegistration.site(baseURL: request.baseURL).origin {
            throw Refusal(code: 50058, message: "Cross-origin sign-out confirmations are refused.", status: 403)
        }
        // The session ended meanwhile (another tab): nothing to end, the user goes where the page would have sent them.
        guard let session else { return try await finish(session: nil, checked: checked) }
        let expires = presented.split(separator: ".", maxSplits: 1).first.flatMap { Int64($0) } ?? 0
        let expected = confirmationToken(session: session, expires: expires, checked: checked)
        guard expires >= Int64(app.clock.now.timeIntervalSince1970), WebAuthn.constantTimeEquals(Array(presented.utf8), Array(expected.utf8)) else {
            throw Refusal(code: 50058, message: "The sign-out confirmation is not valid for this session or has expired; sign out again.", status: 403)
        }
        return try await finish(session: session, checked: checked)
    }

    /// Ends `session` (when there is one), tells the apps it signed into, and answers: the front-channel page when an
    /// app has a front-channel URL, else the redirect to the registered target, else the signed-out page.
    func finish(session: SignInSessions.Session?, checked: Checked) async throws -> APIResponse {
        var frames: [String] = []
        let clients = SessionClients(app: app)
        var signedInto: [SessionClientRecord] = []
        if let session { signedInto = try await clients.of(session: session.id, tenant: tenant.id) }
        let cookie = try await SignInSessions(app: app).end(request, tenant: tenant.id)
        if let session {
            try await clients.forget(session: session.id, tenant: tenant.id)
            await BackChannelLogout(app: app).notify(signedInto, tenant: tenant.id, baseURL: request.baseURL)
            frames = try await frontChannel(signedInto, sessionID: session.id)
        }
        let destination = checked.target.map { target in
            AuthorizeEndpoint.redirect(target, checked.state.map { [("state", $0)] } ?? []).headers.first { $0.name == "Location" }?.value ?? target
        }
        var response: APIResponse
        if !frames.isEmpty {
            response = LogoutPage.signedOut(tenant: tenant, frames: frames, continueTo: destination)
        } else if let destination {
            response = APIResponse(status: 302, headers: [("Location", destination), ("Cache-Control", "no-store")])
        } else {
            response = LogoutPage.signedOut(tenant: tenant, frames: [], continueTo: nil)
        }
        response.headers.append(("Set-Cookie", cookie))
        return response
    }

    /// The front-channel logout URLs (`web.logoutUrl`, https or loopback http) of the apps the session signed into,
    /// with `iss` and `sid` (Front-Channel Logout §2, the session variant).
    func frontChannel(_ signedInto: [SessionClientRecord], sessionID: String) async throws -> [String] {
        var urls: [String] = []
        for record in signedInto {
            let issuing = record.issuingTenant(session: tenant.id)  // a direct connect sign-in's app is the resource tenant's
            let issuer = IdentityPlatform(app: app).issuer(tenant: issuing, base: request.baseURL)
            guard let application = try await app.application(tenant: issuing, appID: record.clientID),
                  let url = application.body["web"]?["logoutUrl"]?.stringValue, LogoutURLRule.isAcceptable(url) else { continue }
            urls.append(url + (url.contains("?") ? "&" : "?") + AuthorizeEndpoint.encode([("iss", issuer), ("sid", sessionID)]))
        }
        return urls
    }
}
