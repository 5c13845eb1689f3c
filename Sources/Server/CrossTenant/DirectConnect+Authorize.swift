import Foundation
import TesseraCore

/// `/authorize` for a B2B direct connect user (the request is marked ``DirectConnect/marker``): the home session is the
/// sign-in, both tenants' settings and this tenant's Conditional Access decide, and the code names the home user.
extension DirectConnect {
    /// What `/authorize` already checked and how it answers the client.
    struct AuthorizeRequest {
        let request: APIRequest
        let query: [String: String]
        let application: StoredObject
        let clientID: String
        let redirectURI: String
        let codeChallenge: String?
        /// Sends parameters to the client's redirect URI (query or `form_post`, as it asked).
        let deliver: ([(String, String)]) -> APIResponse
    }

    func authorize(_ ask: AuthorizeRequest, home homeID: String) async throws -> APIResponse {
        let request = ask.request, query = ask.query, prompt = query["prompt"]
        func fail(_ error: String, _ description: String) -> APIResponse {
            var params = [("error", error), ("error_description", description)]
            if let state = query["state"] { params.append(("state", state)) }
            return ask.deliver(params)
        }
        guard let home = try await app.tenantRecord(homeID), home.id != tenant.id else {
            return fail("invalid_request", "AADSTS90002: The home tenant of this direct connect sign-in is not a tenant of this deployment.")
        }
        // Back through home realm discovery: to sign in at home first, or as the guest a user who has one signs in as.
        let unmarked = request.query.filter { $0.name != Self.marker }
        var params = [("home", home.id), ("continue", "/\(request.segments[0])/oauth2/v2.0/authorize?" + AuthorizeEndpoint.encode(unmarked))]
        if let hint = query["login_hint"] { params.append(("login_hint", hint)) }
        let viaHome = APIResponse(status: 302, headers: [("Location", "/\(request.segments[0])/b2b/signin?" + AuthorizeEndpoint.encode(params)),
                                                         ("Cache-Control", "no-store")])
        let session = try await SignInSessions(app: app).current(request, tenant: home.id)
        var user = if let session { try await app.activeUser(tenant: home.id, id: session.userID) } else { StoredObject?.none }
        if let hint = query["login_hint"]?.lowercased(), let named = user,
           ![named.body["userPrincipalName"]?.stringValue, named.body["mail"]?.stringValue].contains(where: { $0?.lowercased() == hint }) {
            user = nil
        }
        guard let session, let user else {
            if prompt == "none" { return fail("login_required", "AADSTS50058: A silent sign-in request was sent but no user is signed in.") }
            return viaHome
        }
        if try await app.directory.externalUser(tenant: tenant.id, homeTenant: home.id, homeUser: user.id) != nil { return viaHome }
        // Tenant restrictions v2, for the home account: the endpoint's own check found no session here to check.
        let restrictions = TenantRestrictionsGate(app: app, tenant: tenant, request: request)
        do {
            try await restrictions.check(userID: user.id, clientID: ask.clientID, homeTenant: home.id)
        } catch let refused as TenantRestrictionsGate.Refusal {
            await log(ask, user: user, home: home.id, session: session, decision: nil, failure: (refused.code, refused.message))
            return restrictions.page(refused)
        }
        if let refused = try await refusal(home: home.id, homeUserID: user.id, clientID: ask.clientID) {
            await log(ask, user: user, home: home.id, session: session, decision: nil, failure: (refused.code, refused.reason))
            return fail("access_denied", "AADSTS\(refused.code): \(refused.reason)")
        }
        let contexts: Set<String>
        do {
            contexts = try ConditionalAccessGate.authenticationContexts(claims: query["claims"])
        } catch let error as OAuthError {
            return fail(error.error, "AADSTS\(error.code): \(error.description)")
        }
        let decision = try await conditionalAccess(request, home: home.id, user: user, session: session, clientID: ask.clientID,
                                                   authenticationContexts: contexts)
        if !Self.admits(decision) {
            // Entra's code: a missing compliant or hybrid joined device is AADSTS53000 / AADSTS53001, as for anyone.
            let (code, reason) = ConditionalAccessGate.refusal(decision)
            await log(ask, user: user, home: home.id, session: session, decision: decision, failure: (code, reason))
            if prompt == "none" { return fail("interaction_required", "AADSTS\(code): \(reason)") }
            return AccessBlockedPage.render(tenant: tenant, code: code, correlationID: request.requestID, now: app.clock.now)
        }
        // Only what this tenant granted for everyone: the user has no object here to hold a consent of its own.
        let missing = try await Consent(app: app, tenant: tenant).missing(scope: query["scope"] ?? "", clientID: ask.clientID, userID: user.id)
        guard missing.isEmpty else {
            return fail("consent_required", "AADSTS65001: An administrator of \(tenant.name) has not consented to \(missing.sorted().joined(separator: ", ")) for the application with ID '\(ask.clientID)' for all users; a B2B direct connect user cannot consent here.")
        }
        let code = AuthorizationCode(
            tenant: tenant.id, clientID: ask.clientID, redirectURI: ask.redirectURI, userID: user.id, scope: query["scope"] ?? "",
            nonce: query["nonce"], codeChallenge: ask.codeChallenge, authTime: session.authTime, sessionID: session.id, amr: session.amr,
            expires: Int64(app.clock.now.addingTimeInterval(AuthorizationCode.lifetime).timeIntervalSince1970), aaguid: session.aaguid,
            acrs: contexts.sorted(), homeTenant: home.id)
        await log(ask, user: user, home: home.id, session: session, decision: decision, failure: nil)
        var answer = [("code", code.encode(app: app))]
        if let state = query["state"] { answer.append(("state", state)) }
        answer.append(("session_state", session.id))
        // The session is the home tenant's: recorded there, so that its logout or revocation tells this tenant's app.
        try await SessionClients(app: app).record(session, clientID: ask.clientID, tenant: home.id, baseURL: request.baseURL,
                                                  resourceTenant: tenant.id)
        return ask.deliver(answer)
    }

    /// Whether Conditional Access lets the sign-in through: allowed, or short only of re-authentication (sign-in
    /// frequency is a session control, which Entra does not apply to B2B direct connect users).
    static func admits(_ decision: ConditionalAccessDecision) -> Bool {
        switch decision.outcome {
        case .allow: true
        case .needs(let sets): sets.allSatisfy { $0.requirements == [.reauthentication] }
        case .block: false
        }
    }

    /// This tenant's Conditional Access for the home user: a `b2bDirectConnectUser` of `home`, with no groups or roles
    /// here; the home session's methods count only when this tenant trusts the home tenant's MFA, and the device the
    /// request proves (``DeviceCredential``) only as far as this tenant's `inboundTrust` for the home tenant accepts
    /// its compliance or hybrid join, as for a guest from there.
    func conditionalAccess(_ request: APIRequest, home: String, user: StoredObject, session: SignInSessions.Session, clientID: String,
                           authenticationContexts: Set<String>) async throws -> ConditionalAccessDecision {
        let engine = try await app.conditionalAccess.engine(for: tenant, store: app.store)
        let access = try await app.directory.crossTenantAccess(tenant: tenant.id, partner: home)
        let device = try await DeviceCredential(request: request)?
            .facts(app: app, tenantID: tenant.id, home: CrossTenantSignIn.Home(tenantID: home, access: access, isRemote: false))
        let trust = access.acceptsPartnerMFA
        let authenticated = Date(timeIntervalSince1970: TimeInterval(session.authTime))
        return engine.decide(SignInFacts(
            tenantID: tenant.id,
            subject: .user(id: user.id, groupIDs: [], roleTemplateIDs: [], external: .init(type: .b2bDirectConnectUser, homeTenantID: home)),
            target: .application(appID: clientID), authenticationContexts: authenticationContexts, clientAppType: .browser,
            platform: request.header("user-agent").flatMap(DevicePlatform.init(userAgent:)),
            clientIP: request.clientAddress.flatMap(IPAddress.init), country: app.countries.country(for: request.clientAddress),
            device: device, methodsUsed: trust ? ConditionalAccessGate.methods(amr: session.amr, aaguid: session.aaguid, at: authenticated) : [],
            now: app.clock.now))
    }

    /// The sign-in, in both tenants' logs as Entra keeps them: a `b2bDirectConnect` access from the home tenant to this
    /// one, with this tenant's Conditional Access policies in its own log only.
    func log(_ ask: AuthorizeRequest, user: StoredObject, home: String, session: SignInSessions.Session,
             decision: ConditionalAccessDecision?, failure: (code: Int, reason: String)?) async {
        var event = SignInEvent(kind: .interactiveUser, principal: user, appID: ask.clientID,
                                appDisplayName: ask.application.body["displayName"]?.stringValue, amr: session.amr, authTime: session.authTime,
                                decision: decision, failure: failure, clientAppUsed: "Browser")
        event.crossTenant = ("b2bDirectConnect", home, tenant.id)
        await SignInLog(app: app, tenant: tenant.id).record(event, request: ask.request)
        event.decision = nil
        await SignInLog(app: app, tenant: home).record(event, request: ask.request)
    }
}
