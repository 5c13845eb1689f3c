import TesseraCore

/// A governing tenant's administrators acting in a governed tenant: what an active governance relationship gives a
/// user of the governing tenant, through the policy snapshot's `delegatedAdministrationRoleAssignments` (a group of
/// the governing tenant and the role templates its members hold in the governed tenant).
///
/// The administrator signs in to the governed tenant as an external user (B2B: a guest linked to the home account),
/// and every Graph request asks again (``Caller``), as it asks for directory roles: a relationship terminated, a
/// member removed from the group or a home account disabled takes the roles away at the next request, whatever
/// tokens were issued before.
struct GovernedAccess {
    let app: TesseraApp

    /// The roles an external user holds in a governed tenant, and who it is at home.
    struct Grant: Sendable, Equatable {
        let relationshipID: String
        let governingTenantID: String
        let governingTenantName: String
        /// Role template ids.
        let roles: Set<String>
        /// The home account: the user who acts, as the audit names it.
        let homeUser: StoredObject
    }

    /// What `tenant` lets `homeUserID` of `homeTenantID` do as its governing tenant's administrator: nil without an
    /// active relationship in which `homeTenantID` governs `tenant`, with the home account disabled or gone, or when
    /// the user is in none of the policy's groups.
    func grant(tenant: String, homeTenantID: String, homeUserID: String) async throws -> Grant? {
        let directory = app.directory
        return try await app.store.read { tx -> Grant? in
            // At most one active relationship a pair of tenants (requests refuse a second).
            let relationships = try await tx.query(ObjectQuery(tenant: tenant, kinds: [GovernanceRelationships.relationshipKind]))
            guard let relationship = relationships.first(where: {
                $0.body["status"] == "active" && $0.body["governedTenantId"]?.stringValue == tenant
                    && $0.body["governingTenantId"]?.stringValue == homeTenantID
            }) else { return nil }
            guard let home = try await tx.object(tenant: homeTenantID, id: homeUserID), home.kind == .user,
                  home.body["accountEnabled"]?.boolValue != false else { return nil }
            let groups = Set(try await directory.transitiveGroups(tenant: homeTenantID, of: homeUserID, tx: tx))
            let roles = Self.roles(policy: relationship.body["policySnapshot"], groups: groups)
            guard !roles.isEmpty else { return nil }
            return Grant(relationshipID: relationship.id, governingTenantID: homeTenantID,
                         governingTenantName: relationship.body["governingTenantName"]?.stringValue ?? "", roles: roles, homeUser: home)
        }
    }

    /// The role templates `policy` (a relationship's `policySnapshot`) gives a member of `groups`.
    static func roles(policy: JSONValue?, groups: Set<String>) -> Set<String> {
        var roles: Set<String> = []
        for assignment in policy?["delegatedAdministrationRoleAssignments"]?.arrayValue ?? [] {
            guard let group = assignment["group"]?["id"]?.stringValue?.lowercased(), groups.contains(group) else { continue }
            for template in assignment["roleTemplates"]?.arrayValue ?? [] {
                if let id = template["id"]?.stringValue?.lowercased() { roles.insert(id) }
            }
        }
        return roles
    }

    /// The grant of `user` of `tenant` when it is an external user whose home tenant governs `tenant`.
    func grant(tenant: String, user: String) async throws -> Grant? {
        // A user of another deployment is never a governing administrator here, whatever tenant and user ids its
        // provider's token names: governance is between tenants of this deployment.
        guard let link = try await app.directory.externalUserLink(tenant: tenant, userID: user), !link.isRemote else { return nil }
        return try await grant(tenant: tenant, homeTenantID: link.homeTenantID, homeUserID: link.homeUserID)
    }

    /// The actor a governed tenant's audit names for `grant`: the governing tenant's user, in its tenant.
    static func actor(_ grant: Grant, appId: String?) -> Actor {
        var actor = Actor(kind: .user, id: grant.homeUser.id, displayName: grant.homeUser.body["displayName"]?.stringValue ?? "",
                          userPrincipalName: grant.homeUser.body["userPrincipalName"]?.stringValue, appId: appId)
        actor.homeTenantId = grant.governingTenantID
        actor.homeTenantName = grant.governingTenantName
        return actor
    }
}
