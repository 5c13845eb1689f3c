import TesseraCore

/// `POST /invitations` (v1.0): invites a user of another tenant of this deployment, or of a domain an identity provider
/// of this tenant signs in (another deployment). No mail is sent: the answer's `inviteRedeemUrl` is the link to give
/// the invited user, who redeems it by signing in at home.
struct CrossTenantInvitationHandler {
    let api: GraphAPI
    let context: RequestContext

    static let permissions = ["User.Invite.All", "User.ReadWrite.All", "Directory.ReadWrite.All"]

    func handle(_ rest: [String]) async throws -> APIResponse {
        guard rest.isEmpty else { throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest[0])'.") }
        guard context.request.method == "POST" else { throw DirectoryError(.methodNotAllowed, "Invitations are created with POST.") }
        try context.caller.require(anyOf: Self.permissions)
        let request = try InvitationRequest(body: try context.request.jsonObject())
        let app = api.app
        guard let tenant = try await app.tenantRecord(context.tenant) else { throw DirectoryError.notFound(context.tenant) }
        let invitation: Invitation
        if let home = try await app.tenantRecord(request.domain) {
            let issuer = IdentityPlatform(app: app).issuer(tenant: home.id, base: context.request.baseURL)
            invitation = try await app.directory.invite(tenant: tenant, request: request, home: home, homeIssuer: issuer, actor: context.caller.actor)
        } else if let provider = try await app.directory.identityProvider(tenant: tenant.id, domain: request.domain) {
            // A user of another deployment, signed in by the identity provider this tenant trusts for the domain.
            invitation = try await app.directory.invite(tenant: tenant, request: request, provider: provider, actor: context.caller.actor)
        } else {
            throw DirectoryError.badRequest("'\(request.domain)' is not a domain of a tenant of this deployment nor of an identity provider of this tenant (/identity/identityProviders): Tessera sends no mail, so only users who can sign in at home can be invited.")
        }
        let redeem = ExternalSignIn(app: app, tenant: tenant, request: context.request).redeemURL(invitation.id)
        var body = invitation.graph(redeemURL: redeem)
        body["@odata.context"] = .string("\(context.base)/$metadata#invitations/$entity")
        return .json(.object(body), status: 201)
    }
}
