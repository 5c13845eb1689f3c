/// What a user's directory roles let them do through Microsoft Graph, in Graph permission names.
///
/// In Entra a delegated call is allowed when the app was granted the scope *and* the signed-in user's roles allow
/// the operation. Tessera models the second half with this table: each built-in role Tessera acts on maps to the
/// Graph permissions whose operations the role's `allowedResourceActions` cover. A role not listed grants nothing
/// beyond what every member user has (`memberDefaults`).
public enum RolePermissions {
    /// What any member user may read (Entra's default user permissions: read users, groups and memberships).
    public static let memberDefaults: Set<String> = [
        "User.ReadBasic.All", "User.Read.All", "Group.Read.All", "GroupMember.Read.All",
    ]

    static let directoryRead: Set<String> = [
        "Directory.Read.All", "User.Read.All", "Group.Read.All", "GroupMember.Read.All", "Application.Read.All",
        "Device.Read.All", "Organization.Read.All", "Domain.Read.All", "RoleManagement.Read.Directory", "RoleManagement.Read.All",
    ]

    /// Backup and Recovery: read backups, make difference reports, recover (Entra Backup Administrator).
    static let backupAdministration: Set<String> = [
        "EntraBackup.Read.All", "EntraBackup.ReadWrite.Preview", "EntraBackup.ReadWrite.Recovery",
    ]

    /// Cross-tenant access settings and the multitenant organization (Security Administrator is the least privileged
    /// role Microsoft documents for writing them).
    static let crossTenantAdministration: Set<String> = [
        "Policy.ReadWrite.CrossTenantAccess", "MultiTenantOrganization.Read.All", "MultiTenantOrganization.ReadWrite.All",
    ]

    /// Tenant Configuration Management: Microsoft lets any privileged role manage monitors and snapshots; readers read.
    static let configurationMonitoring: Set<String> = ["ConfigurationMonitoring.Read.All", "ConfigurationMonitoring.ReadWrite.All"]

    static let table: [String: Set<String>] = [
        BuiltInRoles.globalAdministrator: directoryRead.union([
            "Directory.ReadWrite.All", "User.ReadWrite.All", "Group.ReadWrite.All", "GroupMember.ReadWrite.All",
            "Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All", "Device.ReadWrite.All", "Organization.ReadWrite.All",
            "Domain.ReadWrite.All", "RoleManagement.ReadWrite.Directory", "UserAuthenticationMethod.Read.All",
            "UserAuthenticationMethod.ReadWrite.All", "Policy.Read.All", "Policy.Read.AuthenticationMethod",
            "Policy.ReadWrite.AuthenticationMethod", "AuditLog.Read.All", "Policy.Read.ConditionalAccess",
            "Policy.ReadWrite.ConditionalAccess", "Policy.ReadWrite.Authorization", "DelegatedPermissionGrant.ReadWrite.All",
            "OnPremDirectorySynchronization.Read.All", "OnPremDirectorySynchronization.ReadWrite.All",
        ]).union(backupAdministration).union(crossTenantAdministration).union(["User.Invite.All"]).union(configurationMonitoring)
            .union(["TenantGovernance-PolicyTemplate.Read.All", "TenantGovernance-PolicyTemplate.ReadWrite.All",
                    "TenantGovernance-Request.Read.All", "TenantGovernance-Request.ReadWrite.All",
                    "TenantGovernance-Relationship.Read.All", "TenantGovernance-Relationship.ReadWrite.All"])
            .union(["IdentityProvider.Read.All", "IdentityProvider.ReadWrite.All"])
            .union(["TenantGovernance-RelatedTenant.Read.All", "TenantGovernance-RelatedTenant.ReadWrite.All",
                    "TenantGovernance-Invitation.Read.All", "TenantGovernance-Invitation.ReadWrite.All",
                    "TenantGovernance-Setting.Read.All", "TenantGovernance-Setting.ReadWrite.All"]),
        BuiltInRoles.globalReader: directoryRead.union([
            "UserAuthenticationMethod.Read.All", "Policy.Read.All", "Policy.Read.AuthenticationMethod", "AuditLog.Read.All",
            "Policy.Read.ConditionalAccess", "EntraBackup.Read.All", "MultiTenantOrganization.Read.All",
            "ConfigurationMonitoring.Read.All", "TenantGovernance-PolicyTemplate.Read.All", "TenantGovernance-Request.Read.All",
            "TenantGovernance-Relationship.Read.All", "TenantGovernance-RelatedTenant.Read.All", "TenantGovernance-Invitation.Read.All",
            "TenantGovernance-Setting.Read.All",
        ]),
        BuiltInRoles.backupReader: ["EntraBackup.Read.All"],
        BuiltInRoles.backupAdministrator: backupAdministration,
        BuiltInRoles.conditionalAccessAdministrator: directoryRead.union([
            "Policy.Read.All", "Policy.Read.ConditionalAccess", "Policy.ReadWrite.ConditionalAccess",
        ]),
        BuiltInRoles.privilegedRoleAdministrator: directoryRead.union(["RoleManagement.ReadWrite.Directory", "Policy.Read.All"]),
        BuiltInRoles.userAdministrator: directoryRead.union([
            "User.ReadWrite.All", "Group.ReadWrite.All", "GroupMember.ReadWrite.All", "User.Invite.All",
        ]),
        BuiltInRoles.guestInviter: ["User.Invite.All"],
        BuiltInRoles.groupsAdministrator: directoryRead.union(["Group.ReadWrite.All", "GroupMember.ReadWrite.All"]),
        BuiltInRoles.authenticationAdministrator: directoryRead.union([
            "UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All", "AuditLog.Read.All",
        ]),
        BuiltInRoles.privilegedAuthenticationAdministrator: directoryRead.union([
            "UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All", "AuditLog.Read.All",
        ]),
        BuiltInRoles.authenticationPolicyAdministrator: directoryRead.union([
            "Policy.Read.All", "Policy.Read.AuthenticationMethod", "Policy.ReadWrite.AuthenticationMethod", "AuditLog.Read.All",
        ]),
        BuiltInRoles.securityAdministrator: directoryRead.union([
            "Policy.Read.All", "Policy.Read.AuthenticationMethod", "AuditLog.Read.All", "Policy.Read.ConditionalAccess",
            "Policy.ReadWrite.ConditionalAccess",
        ]).union(crossTenantAdministration).union(configurationMonitoring),
        BuiltInRoles.securityReader: directoryRead.union([
            "Policy.Read.All", "Policy.Read.AuthenticationMethod", "AuditLog.Read.All", "Policy.Read.ConditionalAccess",
            "MultiTenantOrganization.Read.All", "ConfigurationMonitoring.Read.All",
        ]),
        BuiltInRoles.reportsReader: directoryRead.union(["AuditLog.Read.All"]),
        BuiltInRoles.helpdeskAdministrator: directoryRead.union(["UserAuthenticationMethod.Read.All"]),
        BuiltInRoles.applicationAdministrator: directoryRead.union([
            "Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All", "DelegatedPermissionGrant.ReadWrite.All",
        ]),
        BuiltInRoles.cloudApplicationAdministrator: directoryRead.union([
            "Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All", "DelegatedPermissionGrant.ReadWrite.All",
        ]),
        BuiltInRoles.cloudDeviceAdministrator: directoryRead.union(["Device.ReadWrite.All"]),
        BuiltInRoles.directoryReaders: directoryRead,
        BuiltInRoles.hybridIdentityAdministrator: directoryRead.union(["OnPremDirectorySynchronization.Read.All"]),
        // External identity providers (`/identity/identityProviders`): the least privileged role Microsoft documents.
        BuiltInRoles.externalIdentityProviderAdministrator: ["IdentityProvider.Read.All", "IdentityProvider.ReadWrite.All"],
    ]

    /// The Graph permissions a holder of `roles` (template ids) has, member defaults included.
    public static func graphPermissions(roles: some Sequence<String>) -> Set<String> {
        var out = memberDefaults
        for role in roles { out.formUnion(table[role.lowercased()] ?? []) }
        return out
    }
}
