// Microsoft Graph application permissions (app roles on the Microsoft Graph service principal).
//
// Identifiers, display names and descriptions are Microsoft's own values, as published in the
// Microsoft Graph permissions reference (https://learn.microsoft.com/graph/permissions-reference)
// and exposed by `GET /servicePrincipals(appId='00000003-0000-0000-c000-000000000000')?$select=appRoles`.
// Descriptions keep the first sentence of Microsoft's admin consent description.

/// One Microsoft Graph application permission (an app role on the Microsoft Graph service principal).
public struct GraphPermission: Sendable, Hashable {
    /// The app role id, a lowercase GUID, identical in every tenant.
    public let id: String
    /// The permission value as it appears in the `roles` claim, e.g. `User.ReadWrite.All`.
    public let value: String
    /// The admin consent display name, e.g. "Read and write all users' full profiles".
    public let displayName: String
    /// The first sentence of Microsoft's admin consent description.
    public let description: String

    /// Creates a permission entry.
    public init(id: String, value: String, displayName: String, description: String) {
        self.id = id
        self.value = value
        self.displayName = displayName
        self.description = description
    }
}

/// The catalog of Microsoft Graph application permissions that Tessera knows about.
public enum GraphPermissions {
    /// The appId of the Microsoft Graph first-party application and service principal.
    public static let graphAppId = "00000003-0000-0000-c000-000000000000"

    /// Every known Microsoft Graph application permission, grouped by resource.
    public static let all: [GraphPermission] = [
        // MARK: Directory
        GraphPermission(
            id: "7ab1d382-f21e-4acd-a863-ba3e13f7da61",
            value: "Directory.Read.All",
            displayName: "Read directory data",
            description: "Allows the app to read data in your organization's directory, such as users, groups and apps, without a signed-in user."
        ),
        GraphPermission(
            id: "19dbc75e-c2e2-444c-a770-ec69d8559fc7",
            value: "Directory.ReadWrite.All",
            displayName: "Read and write directory data",
            description: "Allows the app to read and write data in your organization's directory, such as users, and groups, without a signed-in user."
        ),
        GraphPermission(
            id: "f20584af-9290-4153-9280-ff8bb2c0ea7f",
            value: "Directory.Write.Restricted",
            displayName: "Manage restricted resources in the directory",
            description: "Allows the app to manage restricted resources based on the other permissions granted to the app, without a signed-in user."
        ),

        // MARK: Users
        GraphPermission(
            id: "df021288-bdef-4463-88db-98f22de89214",
            value: "User.Read.All",
            displayName: "Read all users' full profiles",
            description: "Allows the app to read user profiles without a signed in user."
        ),
        GraphPermission(
            id: "741f803b-c850-494e-b5df-cde7c675a1ca",
            value: "User.ReadWrite.All",
            displayName: "Read and write all users' full profiles",
            description: "Allows the app to read and update user profiles without a signed in user."
        ),
        GraphPermission(
            id: "09850681-111b-4a89-9bed-3f2cae46d706",
            value: "User.Invite.All",
            displayName: "Invite guest users to the organization",
            description: "Allows the app to invite guest users to the organization, without a signed-in user."
        ),
        GraphPermission(
            id: "3011c876-62b7-4ada-afa2-506cbbecc68c",
            value: "User.EnableDisableAccount.All",
            displayName: "Enable and disable user accounts",
            description: "Allows the app to enable and disable users' accounts, without a signed-in user."
        ),
        GraphPermission(
            id: "c529cfca-c91b-489c-af2b-d92990b66ce6",
            value: "User.ManageIdentities.All",
            displayName: "Manage all users' identities",
            description: "Allows the app to read, update and delete identities that are associated with a user's account, without a signed in user."
        ),
        GraphPermission(
            id: "38d9df27-64da-44fd-b7c5-a6fbac20248f",
            value: "UserAuthenticationMethod.Read.All",
            displayName: "Read all users' authentication methods",
            description: "Allows the app to read authentication methods of all users in your organization, without a signed-in user."
        ),
        GraphPermission(
            id: "50483e42-d915-4231-9639-7fdb7fd190e5",
            value: "UserAuthenticationMethod.ReadWrite.All",
            displayName: "Read and write all users' authentication methods",
            description: "Allows the application to read and write authentication methods of all users in your organization, without a signed-in user."
        ),

        // MARK: Groups
        GraphPermission(
            id: "5b567255-7703-4780-807c-7be8301ae99b",
            value: "Group.Read.All",
            displayName: "Read all groups",
            description: "Allows the app to read group properties and memberships, and read conversations for all groups, without a signed-in user."
        ),
        GraphPermission(
            id: "62a82d76-70ea-41e2-9197-370581804d09",
            value: "Group.ReadWrite.All",
            displayName: "Read and write all groups",
            description: "Allows the app to create groups, read all group properties and memberships, update group properties and memberships, and delete groups."
        ),
        GraphPermission(
            id: "bf7b1a76-6e77-406b-b258-bf5c7720e98f",
            value: "Group.Create",
            displayName: "Create groups",
            description: "Allows the app to create groups without a signed-in user."
        ),
        GraphPermission(
            id: "98830695-27a2-44f7-8c18-0c3ebc9698f6",
            value: "GroupMember.Read.All",
            displayName: "Read all group memberships",
            description: "Allows the app to read memberships and basic group properties for all groups without a signed-in user."
        ),
        GraphPermission(
            id: "dbaae8cf-10b5-4b86-a4a1-f871c94c6695",
            value: "GroupMember.ReadWrite.All",
            displayName: "Read and write all group memberships",
            description: "Allows the app to list groups, read basic properties, read and update the membership of the groups this app has access to without a signed-in user."
        ),
        GraphPermission(
            id: "658aa5d8-239f-45c4-aa12-864f4fc7e490",
            value: "Member.Read.Hidden",
            displayName: "Read all hidden memberships",
            description: "Allows the app to read the memberships of hidden groups and administrative units without a signed-in user."
        ),

        // MARK: Administrative units
        GraphPermission(
            id: "134fd756-38ce-4afd-ba33-e9623dbe66c2",
            value: "AdministrativeUnit.Read.All",
            displayName: "Read all administrative units",
            description: "Allows the app to read administrative units and administrative unit membership without a signed-in user."
        ),
        GraphPermission(
            id: "5eb59dd3-1da2-4329-8733-9dabdc435916",
            value: "AdministrativeUnit.ReadWrite.All",
            displayName: "Read and write all administrative units",
            description: "Allows the app to create, read, update, and delete administrative units and manage administrative unit membership without a signed-in user."
        ),

        // MARK: Applications and consent
        GraphPermission(
            id: "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
            value: "Application.Read.All",
            displayName: "Read all applications",
            description: "Allows the app to read all applications and service principals without a signed-in user."
        ),
        GraphPermission(
            id: "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9",
            value: "Application.ReadWrite.All",
            displayName: "Read and write all applications",
            description: "Allows the app to create, read, update and delete applications and service principals without a signed-in user."
        ),
        GraphPermission(
            id: "18a4783c-866b-4cc7-a460-3d5e5662c884",
            value: "Application.ReadWrite.OwnedBy",
            displayName: "Manage apps that this app creates or owns",
            description: "Allows the app to create other applications, and fully manage those applications (read, update, update application secrets and delete), without a signed-in user."
        ),
        GraphPermission(
            id: "06b708a9-e830-4db3-a914-8e69da51d44f",
            value: "AppRoleAssignment.ReadWrite.All",
            displayName: "Manage app permission grants and app role assignments",
            description: "Allows the app to manage permission grants for application permissions to any API (including Microsoft Graph) and application assignments for any app, without a signed-in user."
        ),
        GraphPermission(
            id: "8e8e4742-1d95-4f68-9d56-6ee75648c72a",
            value: "DelegatedPermissionGrant.ReadWrite.All",
            displayName: "Manage all delegated permission grants",
            description: "Allows the app to manage permission grants for delegated permissions exposed by any API (including Microsoft Graph), without a signed-in user."
        ),

        // MARK: Role management
        GraphPermission(
            id: "483bed4a-2ad3-4361-a73b-c83ccdbdc53c",
            value: "RoleManagement.Read.Directory",
            displayName: "Read all directory RBAC settings",
            description: "Allows the app to read the role-based access control (RBAC) settings for your company's directory, without a signed-in user."
        ),
        GraphPermission(
            id: "9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8",
            value: "RoleManagement.ReadWrite.Directory",
            displayName: "Read and write all directory RBAC settings",
            description: "Allows the app to read and manage the role-based access control (RBAC) settings for your company's directory, without a signed-in user."
        ),
        GraphPermission(
            id: "c7fbd983-d9aa-4fa7-84b8-17382c103bc4",
            value: "RoleManagement.Read.All",
            displayName: "Read role management data for all RBAC providers",
            description: "Allows the app to read role-based access control (RBAC) settings for all RBAC providers without a signed-in user."
        ),

        // MARK: Devices
        GraphPermission(
            id: "7438b122-aefc-4978-80ed-43db9fcc7715",
            value: "Device.Read.All",
            displayName: "Read all devices",
            description: "Allows the app to read your organization's devices' configuration information without a signed-in user."
        ),
        GraphPermission(
            id: "1138cb37-bd11-4084-a2b7-9f71582aeddb",
            value: "Device.ReadWrite.All",
            displayName: "Read and write devices",
            description: "Allows the app to read and write all device properties without a signed in user."
        ),

        // MARK: Domains and organization
        GraphPermission(
            id: "dbb9058a-0e50-45d7-ae91-66909b5d4664",
            value: "Domain.Read.All",
            displayName: "Read domains",
            description: "Allows the app to read all domain properties without a signed-in user."
        ),
        GraphPermission(
            id: "7e05723c-0bb0-42da-be95-ae9f08a6e53c",
            value: "Domain.ReadWrite.All",
            displayName: "Read and write domains",
            description: "Allows the app to read and write all domain properties without a signed in user."
        ),
        GraphPermission(
            id: "498476ce-e0fe-48b0-b801-37ba7e2685c6",
            value: "Organization.Read.All",
            displayName: "Read organization information",
            description: "Allows the app to read the organization and related resources, without a signed-in user."
        ),
        GraphPermission(
            id: "292d869f-3427-49a8-9dab-8c70152b74e9",
            value: "Organization.ReadWrite.All",
            displayName: "Read and write organization information",
            description: "Allows the app to read and write the organization and related resources, without a signed-in user."
        ),
        GraphPermission(
            id: "cac88765-0581-4025-9725-5ebc13f729ee",
            value: "CrossTenantInformation.ReadBasic.All",
            displayName: "Read cross-tenant basic information",
            description: "Allows the application to obtain basic tenant information about another target tenant within the Azure AD ecosystem without a signed-in user."
        ),
        GraphPermission(
            id: "5facf0c1-8979-4e95-abcf-ff3d079771c0",
            value: "LicenseAssignment.ReadWrite.All",
            displayName: "Manage all license assignments",
            description: "Allows an app to manage license assignments for users and groups, without a signed-in user."
        ),

        // MARK: Backup and Recovery
        // Graph names these three for Entra Backup and Recovery; their app role ids are not published yet, so
        // Tessera assigns its own.
        GraphPermission(
            id: "b39eff5f-ae31-4683-892c-719644643cc0",
            value: "EntraBackup.Read.All",
            displayName: "Read Microsoft Entra backups",
            description: "Allows the app to read Microsoft Entra backup snapshots, difference reports and recovery jobs, without a signed-in user."
        ),
        GraphPermission(
            id: "5738c069-ecd3-4cf0-b67a-2569ece88edb",
            value: "EntraBackup.ReadWrite.Preview",
            displayName: "Create Microsoft Entra backup difference reports",
            description: "Allows the app to read Microsoft Entra backups and create difference reports between backups and the directory, without a signed-in user."
        ),
        GraphPermission(
            id: "c179f642-d2af-4039-b8ae-68f723e809fa",
            value: "EntraBackup.ReadWrite.Recovery",
            displayName: "Recover Microsoft Entra objects from backups",
            description: "Allows the app to read Microsoft Entra backups, create difference reports and recover directory objects from a backup, without a signed-in user."
        ),

        // MARK: Tenant Configuration Management
        // ReadWrite.All's id is Microsoft's (as listings of the Graph service principal's app roles give it); Read.All's
        // was not found published, so Tessera assigns its own.
        GraphPermission(
            id: "e9645a45-7fec-428f-a162-7fc5cdebdbbc",
            value: "ConfigurationMonitoring.Read.All",
            displayName: "Read all Configuration Monitoring entities",
            description: "Allows the app to read all Configuration Monitoring entities, without a signed-in user."
        ),
        GraphPermission(
            id: "cfa85bfb-2ee8-4e13-8e7f-489e57a015a1",
            value: "ConfigurationMonitoring.ReadWrite.All",
            displayName: "Read and write all Configuration Monitoring entities",
            description: "Allows the app to read and write all Configuration Monitoring entities, without a signed-in user."
        ),

        // MARK: Policies
        GraphPermission(
            id: "246dd0d5-5bd0-4def-940b-0421030a5b68",
            value: "Policy.Read.All",
            displayName: "Read your organization's policies",
            description: "Allows the app to read all your organization's policies without a signed in user."
        ),
        GraphPermission(
            id: "37730810-e9ba-4e46-b07e-8ca78d182097",
            value: "Policy.Read.ConditionalAccess",
            displayName: "Read your organization's conditional access policies",
            description: "Allows the app to read your organization's conditional access policies, without a signed-in user."
        ),
        GraphPermission(
            id: "9e640839-a198-48fb-8b9a-013fd6f6cbcd",
            value: "Policy.Read.PermissionGrant",
            displayName: "Read consent and permission grant policies",
            description: "Allows the app to read policies related to consent and permission grants for applications, without a signed-in user."
        ),
        GraphPermission(
            id: "be74164b-cff1-491c-8741-e671cb536e13",
            value: "Policy.ReadWrite.ApplicationConfiguration",
            displayName: "Read and write your organization's application configuration policies",
            description: "Allows the app to read and write your organization's application configuration policies, without a signed-in user."
        ),
        GraphPermission(
            id: "25f85f3c-f66c-4205-8cd5-de92dd7f0cec",
            value: "Policy.ReadWrite.AuthenticationFlows",
            displayName: "Read and write authentication flow policies",
            description: "Allows the app to read and write all authentication flow policies for the tenant, without a signed-in user."
        ),
        GraphPermission(
            id: "29c18626-4985-4dcd-85c0-193eef327366",
            value: "Policy.ReadWrite.AuthenticationMethod",
            displayName: "Read and write all authentication method policies",
            description: "Allows the app to read and write all authentication method policies for the tenant, without a signed-in user."
        ),
        GraphPermission(
            id: "fb221be6-99f2-473f-bd32-01c6a0e9ca3b",
            value: "Policy.ReadWrite.Authorization",
            displayName: "Read and write your organization's authorization policy",
            description: "Allows the app to read and write your organization's authorization policy without a signed in user."
        ),
        GraphPermission(
            id: "01c0a623-fc9b-48e9-b794-0756f8e8f067",
            value: "Policy.ReadWrite.ConditionalAccess",
            displayName: "Read and write your organization's conditional access policies",
            description: "Allows the app to read and write your organization's conditional access policies, without a signed-in user."
        ),
        GraphPermission(
            id: "338163d7-f101-4c92-94ba-ca46fe52447c",
            value: "Policy.ReadWrite.CrossTenantAccess",
            displayName: "Read and write your organization's cross tenant access policies",
            description: "Allows the app to read and write your organization's cross tenant access policies without a signed-in user."
        ),
        GraphPermission(
            id: "03cc4f92-788e-4ede-b93f-199424d144a5",
            value: "Policy.ReadWrite.ExternalIdentities",
            displayName: "Read and write your organization's external identities policy",
            description: "Allows the application to read and update the organization's external identities policy without a signed-in user."
        ),
        GraphPermission(
            id: "a402ca1c-2696-4531-972d-6e5ee4aa11ea",
            value: "Policy.ReadWrite.PermissionGrant",
            displayName: "Manage consent and permission grant policies",
            description: "Allows the app to manage policies related to consent and permission grants for applications, without a signed-in user."
        ),
        GraphPermission(
            id: "1c6e93a6-28e2-4cbb-9f64-1a46a821124d",
            value: "Policy.ReadWrite.SecurityDefaults",
            displayName: "Read and write your organization's security defaults policy",
            description: "Allows the app to read and write your organization's security defaults policy, without a signed-in user."
        ),

        // MARK: Identity providers and custom security attributes
        GraphPermission(
            id: "e321f0bb-e7f7-481e-bb28-e3b0b32d4bd0",
            value: "IdentityProvider.Read.All",
            displayName: "Read identity providers",
            description: "Allows the app to read your organization’s identity (authentication) providers’ properties without a signed in user."
        ),
        GraphPermission(
            id: "90db2b9a-d928-4d33-a4dd-8442ae3d41e4",
            value: "IdentityProvider.ReadWrite.All",
            displayName: "Read and write identity providers",
            description: "Allows the app to read and write your organization’s identity (authentication) providers’ properties without a signed in user."
        ),
        GraphPermission(
            id: "3b37c5a4-1226-493d-bec3-5d6c6b866f3f",
            value: "CustomSecAttributeAssignment.Read.All",
            displayName: "Read custom security attribute assignments",
            description: "Allows the app to read custom security attribute assignments for all principals in the tenant without a signed in user."
        ),
        GraphPermission(
            id: "de89b5e4-5b8f-48eb-8925-29c2b33bd8bd",
            value: "CustomSecAttributeAssignment.ReadWrite.All",
            displayName: "Read and write custom security attribute assignments",
            description: "Allows the app to read and write custom security attribute assignments for all principals in the tenant without a signed in user."
        ),
        GraphPermission(
            id: "b185aa14-d8d2-42c1-a685-0f5596613624",
            value: "CustomSecAttributeDefinition.Read.All",
            displayName: "Read custom security attribute definitions",
            description: "Allows the app to read custom security attribute definitions for the tenant without a signed in user."
        ),
        GraphPermission(
            id: "12338004-21f4-4896-bf5e-b75dfaf1016d",
            value: "CustomSecAttributeDefinition.ReadWrite.All",
            displayName: "Read and write custom security attribute definitions",
            description: "Allows the app to read and write custom security attribute definitions for the tenant without a signed in user."
        ),

        // MARK: Audit, reports and identity protection
        GraphPermission(
            id: "b0afded3-3588-46d8-8b3d-9842eff778da",
            value: "AuditLog.Read.All",
            displayName: "Read all audit log data",
            description: "Allows the app to read and query your audit log activities, without a signed-in user."
        ),
        GraphPermission(
            id: "230c1aed-a721-4c5d-9cb4-a90514e508ef",
            value: "Reports.Read.All",
            displayName: "Read all usage reports",
            description: "Allows an app to read all service usage reports without a signed-in user."
        ),
        GraphPermission(
            id: "6e472fd1-ad78-48da-a0f0-97ab2c6b769e",
            value: "IdentityRiskEvent.Read.All",
            displayName: "Read all identity risk event information",
            description: "Allows the app to read the identity risk event information for your organization without a signed in user."
        ),
        GraphPermission(
            id: "db06fb33-1953-4b7b-a2ac-f1e2c854f7ae",
            value: "IdentityRiskEvent.ReadWrite.All",
            displayName: "Read and write all risk detection information",
            description: "Allows the app to read and update identity risk detection information for your organization without a signed-in user."
        ),
        GraphPermission(
            id: "dc5007c0-2d7d-4c42-879c-2dab87571379",
            value: "IdentityRiskyUser.Read.All",
            displayName: "Read all identity risky user information",
            description: "Allows the app to read the identity risky user information for your organization without a signed in user."
        ),
        GraphPermission(
            id: "656f6061-f9fe-4807-9708-6a2e0934df76",
            value: "IdentityRiskyUser.ReadWrite.All",
            displayName: "Read and write all risky user information",
            description: "Allows the app to read and update identity risky user information for your organization without a signed-in user."
        ),

        // MARK: Identity governance
        GraphPermission(
            id: "d07a8cc0-3d51-4b77-b3b0-32704d1f69fa",
            value: "AccessReview.Read.All",
            displayName: "Read all access reviews",
            description: "Allows the app to read access reviews, reviewers, decisions and settings in the organization, without a signed-in user."
        ),
        GraphPermission(
            id: "ef5f7d5c-338f-44b0-86c3-351f46c8bb5f",
            value: "AccessReview.ReadWrite.All",
            displayName: "Manage all access reviews",
            description: "Allows the app to read, update, delete and perform actions on access reviews, reviewers, decisions and settings in the organization, without a signed-in user."
        ),
        GraphPermission(
            id: "c74fd47d-ed3c-45c3-9a9e-b8676de685d2",
            value: "EntitlementManagement.Read.All",
            displayName: "Read all entitlement management resources",
            description: "Allows the app to read access packages and related entitlement management resources without a signed-in user."
        ),
        GraphPermission(
            id: "9acd699f-1e81-4958-b001-93b1d2506e19",
            value: "EntitlementManagement.ReadWrite.All",
            displayName: "Read and write all entitlement management resources",
            description: "Allows the app to read and write access packages and related entitlement management resources without a signed-in user."
        ),
        GraphPermission(
            id: "7c67316a-232a-4b84-be22-cea2c0906404",
            value: "LifecycleWorkflows.Read.All",
            displayName: "Read all lifecycle workflows resources",
            description: "Allows the app to list and read all workflows, tasks and related lifecycle workflows resources without a signed-in user."
        ),
        GraphPermission(
            id: "5c505cf4-8424-4b8e-aa14-ee06e3bb23e3",
            value: "LifecycleWorkflows.ReadWrite.All",
            displayName: "Read and write all lifecycle workflows resources",
            description: "Allows the app to create, update, list, read and delete all workflows, tasks and related lifecycle workflows resources without a signed-in user."
        ),

        // MARK: Hybrid identity and provisioning
        GraphPermission(
            id: "bb70e231-92dc-4729-aff5-697b3f04be95",
            value: "OnPremDirectorySynchronization.Read.All",
            displayName: "Read all on-premises directory synchronization information",
            description: "Allows the app to read all on-premises directory synchronization information for the organization, without a signed-in user."
        ),
        GraphPermission(
            id: "c22a92cc-79bf-4bb1-8b6c-e0a05d3d80ce",
            value: "OnPremDirectorySynchronization.ReadWrite.All",
            displayName: "Read and write all on-premises directory synchronization information",
            description: "Allows the app to read and write all on-premises directory synchronization information for the organization, without a signed-in user."
        ),
        GraphPermission(
            id: "5ba43d2f-fa88-4db2-bd1c-a67c5f0fb1ce",
            value: "Synchronization.Read.All",
            displayName: "Read all Azure AD synchronization data.",
            description: "Allows the application to read Azure AD synchronization information, without a signed-in user."
        ),
        GraphPermission(
            id: "9b50c33d-700f-43b1-b2eb-87e89b703581",
            value: "Synchronization.ReadWrite.All",
            displayName: "Read and write all Azure AD synchronization data.",
            description: "Allows the application to configure the Azure AD synchronization service, without a signed-in user."
        ),

        // MARK: Global Secure Access
        GraphPermission(
            id: "b10642fc-a6cf-4c46-87f9-e1f96c2a18aa",
            value: "NetworkAccess.ReadWrite.All",
            displayName: "Read and write all network access information",
            description: "Allows the app to read and write all network access information and configuration settings without a signed-in user."
        ),
        GraphPermission(
            id: "8a3d36bf-cb46-4bcc-bec9-8d92829dab84",
            value: "NetworkAccessPolicy.Read.All",
            displayName: "Read all security and routing policies for network access",
            description: "Allows the app to read your organization's network access policies, without a signed-in user."
        ),
        GraphPermission(
            id: "f0c341be-8348-4989-8e43-660324294538",
            value: "NetworkAccessPolicy.ReadWrite.All",
            displayName: "Read and write all security and routing policies for network access",
            description: "Allows the app to read and write your organization's network access policies, without a signed-in user."
        ),

        // MARK: Multitenant organization
        GraphPermission(
            id: "4f994bc0-31bb-44bb-b480-7a7c1be8c02e",
            value: "MultiTenantOrganization.Read.All",
            displayName: "Read all multi-tenant organization details and tenants",
            description: "Allows the app to read all multi-tenant organization details and tenants, without a signed-in user."
        ),
        GraphPermission(
            id: "920def01-ca61-4d2d-b3df-105b46046a70",
            value: "MultiTenantOrganization.ReadWrite.All",
            displayName: "Read and write all multi-tenant organization details and tenants",
            description: "Allows the app to read and write all multi-tenant organization details and tenants, without a signed-in user."
        ),
    ]

    private static let indexByValue: [String: GraphPermission] = {
        var index: [String: GraphPermission] = [:]
        for permission in all { index[permission.value] = permission }
        return index
    }()

    private static let indexByLowercasedValue: [String: GraphPermission] = {
        var index: [String: GraphPermission] = [:]
        for permission in all { index[permission.value.lowercased()] = permission }
        return index
    }()

    private static let indexById: [String: GraphPermission] = {
        var index: [String: GraphPermission] = [:]
        for permission in all { index[permission.id] = permission }
        return index
    }()

    /// Looks a permission up by its value (e.g. `User.Read.All`).
    ///
    /// An exact match wins; otherwise the lookup ignores case, as Entra ID does for permission names.
    public static func byValue(_ value: String) -> GraphPermission? {
        indexByValue[value] ?? indexByLowercasedValue[value.lowercased()]
    }

    /// Looks a permission up by its app role id; the GUID is compared case-insensitively.
    public static func byId(_ id: String) -> GraphPermission? {
        indexById[id.lowercased()]
    }
}
