import Foundation
import TesseraCore
import WebAuthn

/// B2B collaboration between tenants of this deployment: a user of tenant A redeems an invitation of tenant B, and
/// later signs in to B's applications, by signing in at home (A's passkey, A's session) and coming back to B, which
/// starts a session for its own user linked to A's (the guest) and issues B's tokens. The cross-tenant access
/// settings of both tenants decide, each time: B's inbound settings for A and A's outbound settings for B.
///
/// Routes, under the resource tenant: `GET /{B}/b2b/redeem?invitation=…&t=…` (the invitation's redeem URL),
/// `GET /{B}/b2b/signin?home=…&continue=…` (where `/authorize` sends a user whose `login_hint` is another tenant's;
/// `provider=…` instead of `home` for a domain an identity provider signs in, see `FederatedSignIn`) and
/// `GET /{B}/b2b/oidc/callback` (where that provider sends the user back).
struct ExternalSignIn {
    let app: TesseraApp
    let tenant: TenantRecord
    let request: APIRequest

    /// Whether `next` is one of these routes, for the sign-in page of the home tenant to send the browser back to.
    static func isContinuation(_ next: String) -> Bool {
        let parts = next.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].isEmpty, Identifier.isGUID(String(parts[1])) else { return false }
        return (parts[2].hasPrefix("b2b/redeem?") || parts[2].hasPrefix("b2b/signin?")) && !next.contains("//") && !next.contains("\\")
    }

    /// The MAC that makes an invitation's redeem URL unguessable.
    func tag(_ invitation: String) -> String {
        WebAuthn.Base64URL.encode(app.passkeyChallenges.mac("b2b-invitation:\(tenant.id)", Array(invitation.lowercased().utf8)))
    }

    /// The URL that redeems `invitation`.
    func redeemURL(_ invitation: String) -> String {
        "\(request.baseURL)/\(tenant.id)/b2b/redeem?" + AuthorizeEndpoint.encode([("invitation", invitation), ("t", tag(invitation))])
    }

    /// Home realm discovery at `/authorize`: a `login_hint` in another tenant of this deployment sends the browser to
    /// sign in there and come back as this tenant's guest; nil for a hint of this tenant (or of none here).
    /// A `domain_hint` comes as `@domain`, which names no user and is not passed on.
    static func homeRealm(app: TesseraApp, tenant: TenantRecord, segment: String, loginHint: String, continuation: String) async throws -> APIResponse? {
        guard let domain = loginHint.split(separator: "@").last.map({ $0.lowercased() }), loginHint.contains("@") else { return nil }
        guard let home = try await app.tenantRecord(domain) else {
            // A user of another deployment, whose domain an identity provider of this tenant signs in.
            guard let provider = try await app.directory.identityProvider(tenant: tenant.id, domain: domain) else { return nil }
            let params = [("provider", provider.id), ("continue", continuation), ("login_hint", loginHint)].filter { $0.1 != "@" + domain }
            return APIResponse(status: 302, headers: [("Location", "/\(segment)/b2b/signin?" + AuthorizeEndpoint.encode(params)),
                                                      ("Cache-Control", "no-store")])
        }
        guard home.id != tenant.id else { return nil }
        // A domain this tenant holds itself is its own users' (domains are not proved by DNS here, so two tenants may).
        let tenantID = tenant.id
        if try await app.store.read({ tx in try await tx.object(tenant: tenantID, id: domain) })?.kind == .domain { return nil }
        let params = [("home", home.id), ("continue", continuation), ("login_hint", loginHint)].filter { $0.1 != "@" + domain }
        return APIResponse(status: 302, headers: [("Location", "/\(segment)/b2b/signin?" + AuthorizeEndpoint.encode(params)),
                                                  ("Cache-Control", "no-store")])
    }

    func respond(_ rest: [String]) async throws -> APIResponse {
        // The consent prompt's answers: at `/authorize` (`consent`), at redemption (the redeem URL itself) and at a
        // provider's redemption (`oidc/consent`).
        if request.method == "POST", rest == ["consent"] { return try await ExternalUserConsent(app: app, tenant: tenant).respond(request) }
        if request.method == "POST", rest == ["redeem"] { return try await redeem() }
        if request.method == "POST", rest == ["oidc", "consent"] { return try await FederatedSignIn(app: app, tenant: tenant, request: request).consent() }
        guard request.method == "GET" else { throw DirectoryError(.methodNotAllowed, "Use GET.") }
        switch rest {
        case ["redeem"]: return try await redeem()
        case ["signin"]: return try await signIn()
        case ["oidc", "callback"]: return try await FederatedSignIn(app: app, tenant: tenant, request: request).callback()
        default: throw DirectoryError.notFound("/" + request.segments.joined(separator: "/"))
        }
    }

    func query(_ name: String) -> String? { request.query.first { $0.name == name }?.value }

    /// This request's own path and query, to come back to after signing in at home.
    var here: String { "/" + request.segments.joined(separator: "/") + "?" + AuthorizeEndpoint.encode(request.query) }

    /// The home tenant's session, or the way there: its sign-in page, which sends the browser back here.
    enum HomeSession {
        case signedIn(SignInSessions.Session)
        case redirect(APIResponse)
    }

    func homeSession(_ home: TenantRecord, hint: String?) async throws -> HomeSession {
        if let session = try await SignInSessions(app: app).current(request, tenant: home.id) { return .signedIn(session) }
        var login = [("continue", here)]
        if let hint { login.append(("login_hint", hint)) }
        return .redirect(APIResponse(status: 302, headers: [("Location", "/\(home.id)/login?" + AuthorizeEndpoint.encode(login)),
                                                           ("Cache-Control", "no-store")]))
    }

    func redeem() async throws -> APIResponse {
        guard let id = query("invitation"), let presented = query("t"),
              WebAuthn.constantTimeEquals(Array(presented.utf8), Array(tag(id).utf8)),
              let invitation = try await app.directory.invitation(tenant: tenant.id, id: id) else {
            return refusal(90072, "This invitation link is not valid for \(tenant.name).", status: 404)
        }
        if let providerID = invitation.identityProviderID {
            // A user of another deployment: redeemed by signing in with the provider of the invitation.
            guard let provider = try? await app.directory.identityProvider(tenant: tenant.id, id: providerID) else {
                return refusal(90072, "The identity provider this invitation was sent through is no longer configured in \(tenant.name).")
            }
            return try await FederatedSignIn(app: app, tenant: tenant, request: request)
                .start(provider, purpose: .redeem(invitationID: invitation.id), loginHint: invitation.email)
        }
        guard let home = try await app.tenantRecord(invitation.homeTenantID) else {
            return refusal(90072, "This invitation link is not valid for \(tenant.name).", status: 404)
        }
        let session: SignInSessions.Session
        switch try await homeSession(home, hint: invitation.email) {
        case .signedIn(let found): session = found
        case .redirect(let response): return response
        }
        guard let homeUser = try await app.activeUser(tenant: home.id, id: session.userID) else {
            return refusal(50020, "The account you signed in with cannot redeem this invitation.")
        }
        let addresses = [homeUser.body["mail"]?.stringValue, homeUser.body["userPrincipalName"]?.stringValue].compactMap { $0?.lowercased() }
        guard addresses.contains(invitation.email.lowercased()) else {
            return refusal(90072, "This invitation was sent to \(invitation.email); you are signed in to \(home.name) as someone else.")
        }
        if case .blocked(let reason) = try await CrossTenantSignIn(app: app).b2bCollaboration(resource: tenant.id, home: home.id,
                                                                                                homeUserID: homeUser.id, clientID: nil) {
            return refusal(500213, reason)
        }
        // The consent prompt, unless both tenants suppress it or the invitation was redeemed already.
        let consent = ExternalUserConsent(app: app, tenant: tenant)
        if invitation.status != Invitation.completed, try await !consent.isSuppressed(home: home.id) {
            guard request.method == "POST" else {
                return ExternalConsentPage.render(tenant: tenant, home: home.name, account: invitation.email, action: here, fields: [],
                                                  token: consent.token(session: session.id, subject: invitation.id),
                                                  formAction: "'self' \(ConsentPage.origin(of: invitation.redirectURL))")
            }
            guard try consent.answer(request, session: session.id, subject: invitation.id).accepted else {
                return refusal(65004, "You declined the permissions \(tenant.name) asked for; the invitation was not redeemed.")
            }
        }
        do {
            let actor = Actor(kind: .user, id: invitation.userID, displayName: invitation.displayName, userPrincipalName: invitation.email)
            try await app.directory.redeem(tenant: tenant.id, invitation: invitation.id, homeUserID: homeUser.id, actor: actor)
        } catch let error as DirectoryError where error.code == .conflict {
            return refusal(90072, error.message)
        }
        return APIResponse(status: 302, headers: [("Location", invitation.redirectURL), ("Cache-Control", "no-store")])
    }

    /// Signs the home tenant's user in to this tenant as the guest it redeemed an invitation as, then back to `/authorize`.
    func signIn() async throws -> APIResponse {
        if let providerID = query("provider") {
            guard let next = query("continue"), isAuthorizeRequest(next),
                  let provider = try? await app.directory.identityProvider(tenant: tenant.id, id: providerID) else {
                throw DirectoryError.badRequest("An external sign-in needs an identity provider of this tenant ('provider') and this tenant's authorization request ('continue').")
            }
            return try await FederatedSignIn(app: app, tenant: tenant, request: request)
                .start(provider, purpose: .signIn(continuation: next), loginHint: query("login_hint"))
        }
        guard let homeID = query("home"), let home = try await app.tenantRecord(homeID), home.id != tenant.id,
              let next = query("continue"), isAuthorizeRequest(next) else {
            throw DirectoryError.badRequest("An external sign-in needs the home tenant ('home') and this tenant's authorization request ('continue').")
        }
        let session: SignInSessions.Session
        switch try await homeSession(home, hint: query("login_hint")) {
        case .signedIn(let found): session = found
        case .redirect(let response): return response
        }
        guard let guestID = try await app.directory.externalUser(tenant: tenant.id, homeTenant: home.id, homeUser: session.userID) else {
            // No guest here: B2B direct connect signs the user in without one, when both tenants allow it.
            let flow = DirectConnect(app: app, tenant: tenant)
            if let refused = try await flow.refusal(home: home.id, homeUserID: session.userID, clientID: DirectConnect.clientID(of: next)) {
                return refusal(refused.code, refused.code == 50020 ? notHere(home) : refused.reason)
            }
            return APIResponse(status: 302, headers: [("Location", DirectConnect.marked(next, home: home.id)), ("Cache-Control", "no-store")])
        }
        guard try await app.activeUser(tenant: tenant.id, id: guestID) != nil else { return refusal(50020, notHere(home)) }
        if case .blocked(let reason) = try await CrossTenantSignIn(app: app).b2bCollaboration(resource: tenant.id, home: home.id,
                                                                                                homeUserID: session.userID, clientID: nil) {
            return refusal(500213, reason)
        }
        // The home session's methods travel; whether this tenant counts them is Conditional Access's question (inbound trust).
        let (_, cookie) = try await SignInSessions(app: app).start(tenant: tenant.id, userID: guestID, amr: session.amr, aaguid: session.aaguid,
                                                                    baseURL: request.baseURL)
        return APIResponse(status: 302, headers: [("Location", next), ("Set-Cookie", cookie), ("Cache-Control", "no-store")])
    }

    /// Why a home tenant's user with no usable guest here is refused.
    func notHere(_ home: TenantRecord) -> String {
        "Your account from \(home.name) does not exist in \(tenant.name) and cannot access its applications. Ask for an invitation, and redeem it, first."
    }

    /// Whether `next` is this tenant's own `/authorize` request (the only place an external sign-in returns to).
    func isAuthorizeRequest(_ next: String) -> Bool {
        next.hasPrefix("/\(request.segments[0])/oauth2/v2.0/authorize?") && !next.contains("//") && !next.contains("\\")
    }

    /// Entra's error page for a refused external sign-in or redemption (the reason is the user's to read: it names
    /// no policy).
    func refusal(_ code: Int, _ message: String, status: Int = 403) -> APIResponse {
        AccessBlockedPage.render(title: "Sign-in refused – \(tenant.name)", heading: "You cannot sign in to \(tenant.name)", message: message,
                                 code: code, correlationID: request.requestID, status: status)
    }
}
