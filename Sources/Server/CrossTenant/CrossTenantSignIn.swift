import TesseraCore

/// What the identity platform asks about external users (guests who redeemed an invitation): whether B2B
/// collaboration lets them in, which home tenant and trust Conditional Access sees, and the claims their tokens carry.
struct CrossTenantSignIn {
    let app: TesseraApp

    /// B2B collaboration of a home tenant's user with a resource tenant (and its application `clientID`, when one is
    /// named): the resource tenant's inbound settings for the home tenant, then the home tenant's outbound settings
    /// for the resource tenant. The user's groups are the home tenant's.
    func b2bCollaboration(resource: String, home: String, homeUserID: String, clientID: String?) async throws -> CrossTenantAccess.Decision {
        let directory = app.directory
        let groups = Set(try await app.store.read { tx in try await directory.transitiveGroups(tenant: home, of: homeUserID, tx: tx) })
        let inbound = try await directory.crossTenantAccess(tenant: resource, partner: home)
            .b2bCollaboration(inbound: true, userID: homeUserID, groupIDs: groups, applicationID: clientID)
        guard inbound == .allowed else { return inbound }
        return try await directory.crossTenantAccess(tenant: home, partner: resource)
            .b2bCollaboration(inbound: false, userID: homeUserID, groupIDs: groups, applicationID: clientID)
    }

    /// B2B collaboration of the user `link` names with `resource`. A user of another deployment is decided by this
    /// tenant's inbound settings alone, for its home tenant (the provider's `tid`) and on the user itself: its groups
    /// and its tenant's outbound settings are its deployment's, which decided when it signed the user in.
    func b2bCollaboration(resource: String, link: ExternalUserLink, clientID: String?) async throws -> CrossTenantAccess.Decision {
        guard link.isRemote else {
            return try await b2bCollaboration(resource: resource, home: link.homeTenantID, homeUserID: link.homeUserID, clientID: clientID)
        }
        return try await app.directory.crossTenantAccess(tenant: resource, partner: link.homeTenantID)
            .b2bCollaboration(inbound: true, userID: link.homeUserID, groupIDs: [], applicationID: clientID)
    }

    /// The home identity of `user` of `tenant` when it is an external user who redeemed an invitation.
    func link(tenant: String, user: StoredObject?) async throws -> ExternalUserLink? {
        // Invited users, and B2B users cross-tenant synchronization provisioned (no creationType, an externalUserState).
        guard let user, user.body["creationType"]?.stringValue == "Invitation" || user.body["externalUserState"] != nil else { return nil }
        return try await app.directory.externalUserLink(tenant: tenant, userID: user.id)
    }

    /// Why `userID`'s sign-in to `clientID` in `tenant` is refused by the cross-tenant access settings; nil when the
    /// user is not external or may go on.
    func refusal(tenant: String, userID: String, clientID: String) async throws -> String? {
        let user = try await app.activeSignInUser(tenant: tenant, id: userID)
        guard let link = try await link(tenant: tenant, user: user) else { return nil }
        switch try await b2bCollaboration(resource: tenant, link: link, clientID: clientID) {
        case .allowed: return nil
        case .blocked(let reason): return reason
        }
    }

    /// An external user's home, as Conditional Access weighs what comes from it.
    struct Home {
        let tenantID: String
        /// This tenant's settings for the home tenant (its `inboundTrust` says which home claims count here).
        let access: CrossTenantAccess
        /// A tenant of another deployment, whose devices this one cannot check.
        let isRemote: Bool
    }

    /// For Conditional Access: the user's home tenant and this tenant's settings for it; nil for a user of this tenant.
    func home(tenant: String, user: StoredObject?) async throws -> Home? {
        guard let link = try await link(tenant: tenant, user: user) else { return nil }
        let access = try await app.directory.crossTenantAccess(tenant: tenant, partner: link.homeTenantID)
        return Home(tenantID: link.homeTenantID, access: access, isRemote: link.isRemote)
    }

    /// The claims an external user's tokens add: `idp`, the home tenant's issuer (a provider's, for a user of another
    /// deployment), and `acct` (0 a member, 1 a guest).
    func claims(tenant: String, user: StoredObject, base: String) async throws -> [String: JSONValue] {
        guard let link = try await link(tenant: tenant, user: user) else { return [:] }
        let guest = user.body["userType"]?.stringValue?.lowercased() != "member"
        let idp = link.issuer ?? IdentityPlatform(app: app).issuer(tenant: link.homeTenantID, base: base)
        return ["idp": .string(idp), "acct": .int(guest ? 1 : 0)]
    }
}
