import Foundation
import TesseraCore
import WebAuthn

/// The consent prompt of external users, Entra's B2B "Review permissions": a user whose account in this tenant is
/// pending acceptance (`externalUserState` PendingAcceptance: an invitation being redeemed, or a user cross-tenant
/// synchronization provisioned without automatic redemption) accepts this organization's terms the first time it
/// arrives, at the invitation's redeem URL or at `/authorize`. Accept records Accepted with its date (for an invitation,
/// the redemption); Cancel refuses and writes nothing. The prompt is suppressed, and the user accepted without it, only
/// when both tenants' `automaticUserConsentSettings` allow it: this tenant's inbound for the home tenant and the home
/// tenant's outbound for this one. A user of another deployment is always asked (its tenant's settings are not here).
///
/// The form is bound to what it was shown for, as the app consent form is: a MAC over the session and the user (or
/// invitation), checked in constant time, a SameSite session cookie, and a same-origin `Origin` when the browser sends
/// one.
struct ExternalUserConsent {
    let app: TesseraApp
    let tenant: TenantRecord

    /// Whether `home`'s users are accepted here without the prompt.
    func isSuppressed(home: String) async throws -> Bool {
        guard try await app.tenantRecord(home) != nil,
              try await app.directory.crossTenantAccess(tenant: tenant.id, partner: home).automaticRedemption(inbound: true)
        else { return false }
        return try await app.directory.crossTenantAccess(tenant: home, partner: tenant.id).automaticRedemption(inbound: false)
    }

    /// The form's token: the session it was shown in and the user or invitation it was shown for.
    func token(session: String, subject: String) -> String {
        WebAuthn.Base64URL.encode(app.passkeyChallenges.mac("b2b-consent:\(tenant.id)", Array("\(session)|\(subject.lowercased())".utf8)))
    }

    /// The answer a posted form carries: true to accept, false to cancel. Throws when the form was not shown for this
    /// session and subject, or comes from another origin.
    func answer(_ request: APIRequest, session: String, subject: String) throws -> (accepted: Bool, form: ConsentForm) {
        let form = try ConsentForm(request)
        guard let presented = form.fields["consent_token"],
              WebAuthn.constantTimeEquals(Array(presented.utf8), Array(token(session: session, subject: subject).utf8)) else {
            throw DirectoryError(.accessDenied, "The consent form is not valid for this session; start the sign-in again.")
        }
        return (form.fields["decision"] == "accept", form)
    }

    /// At `/authorize`, for the signed-in user: the prompt when it is an external user pending acceptance; nil when it
    /// may go on (not external, accepted already, or accepted now because both tenants suppress the prompt).
    func review(session: SignInSessions.Session, request: APIRequest, redirectURI: String) async throws -> APIResponse? {
        // The user as Conditional Access holds it (read once per change of the tenant): no store read per sign-in.
        guard let user = try await app.conditionalAccess.membership(app: app, tenant: tenant, userID: session.userID).0,
              user.body["externalUserState"]?.stringValue == Invitation.pending,
              let link = try await CrossTenantSignIn(app: app).link(tenant: tenant.id, user: user) else { return nil }
        if try await isSuppressed(home: link.homeTenantID) {
            try await app.directory.acceptExternalUser(tenant: tenant.id, userID: user.id, actor: Self.actor(user))
            return nil
        }
        let homeName = if let issuer = link.issuer { issuer } else { try await app.tenantRecord(link.homeTenantID)?.name ?? link.homeTenantID }
        let segment = request.segments[0]
        let here = "/\(segment)/oauth2/v2.0/authorize?" + AuthorizeEndpoint.encode(request.query)
        return ExternalConsentPage.render(
            tenant: tenant, home: homeName,
            account: user.body["mail"]?.stringValue ?? user.body["userPrincipalName"]?.stringValue ?? "",
            action: "/\(segment)/b2b/consent", fields: [("continue", here)], token: token(session: session.id, subject: user.id),
            formAction: "'self' \(ConsentPage.origin(of: redirectURI))")
    }

    /// `POST /{tenant}/b2b/consent`, the answer to the prompt `/authorize` showed: Accept records the acceptance and
    /// goes back to `/authorize`; Cancel sends the client `access_denied`.
    func respond(_ request: APIRequest) async throws -> APIResponse {
        guard let session = try await SignInSessions(app: app).current(request, tenant: tenant.id),
              let user = try await app.activeUser(tenant: tenant.id, id: session.userID) else {
            throw DirectoryError(.accessDenied, "Sign in first.")
        }
        let (accepted, form) = try answer(request, session: session.id, subject: user.id)
        guard let (continuation, back) = form.continuation(request) else {
            throw DirectoryError.badRequest("The consent form is incomplete.")
        }
        guard !accepted else {
            try await app.directory.acceptExternalUser(tenant: tenant.id, userID: user.id, actor: Self.actor(user))
            return APIResponse(status: 303, headers: [("Location", continuation), ("Cache-Control", "no-store")])
        }
        guard let clientID = back["client_id"], let redirectURI = back["redirect_uri"],
              let application = try await app.application(tenant: tenant.id, appID: clientID),
              AuthorizeEndpoint.redirectKind(redirectURI, application: application) != nil else {
            throw DirectoryError.badRequest("The consent form does not match its authorization request.")
        }
        return ConsentForm.declined(back, redirectURI: redirectURI,
                                    description: "AADSTS65004: The user declined the permissions \(tenant.name) asked for.")
    }

    /// The external user as the audit names who accepted.
    static func actor(_ user: StoredObject) -> Actor {
        Actor(kind: .user, id: user.id, displayName: user.body["displayName"]?.stringValue ?? "",
              userPrincipalName: user.body["userPrincipalName"]?.stringValue)
    }
}
