// Microsoft Entra built-in directory roles.
//
// Template ids, display names, one-line descriptions and the privileged marker come from
// Microsoft's "Microsoft Entra built-in roles" reference
// (https://learn.microsoft.com/entra/identity/role-based-access-control/permissions-reference).
// `allowedResourceActions` is a representative subset of each role's real actions from the same
// reference; where Microsoft grants fewer than three actions, the full list is given.

/// A built-in Microsoft Entra directory role.
public struct BuiltInRole: Sendable, Hashable {
    /// Microsoft's role template id, a lowercase GUID; also used as the roleDefinition id, as in Entra.
    public let templateId: String
    /// The role's display name, e.g. "Global Administrator".
    public let displayName: String
    /// Microsoft's one-line description of the role.
    public let description: String
    /// Whether Microsoft marks the role PRIVILEGED in the built-in roles reference.
    public let isPrivileged: Bool
    /// A representative subset of Microsoft's resource actions for the role.
    public let allowedResourceActions: [String]

    /// Creates a built-in role entry.
    public init(
        templateId: String,
        displayName: String,
        description: String,
        isPrivileged: Bool,
        allowedResourceActions: [String]
    ) {
        self.templateId = templateId
        self.displayName = displayName
        self.description = description
        self.isPrivileged = isPrivileged
        self.allowedResourceActions = allowedResourceActions
    }
}

/// The catalog of Microsoft Entra built-in roles that Tessera knows about.
public enum BuiltInRoles {
    // MARK: Template ids

    /// Template id of Global Administrator.
    public static let globalAdministrator: String = "62e90394-69f5-4237-9190-012177145e10"
    /// Template id of Global Reader.
    public static let globalReader: String = "f2ef992c-3afb-46b9-b7cf-a126ee74c451"
    /// Template id of Privileged Role Administrator.
    public static let privilegedRoleAdministrator: String = "e8611ab8-c189-46e8-94e1-60213ab1f814"
    /// Template id of Privileged Authentication Administrator.
    public static let privilegedAuthenticationAdministrator: String = "7be44c8a-adaf-4e2a-84d6-ab2649e08a13"
    /// Template id of Authentication Administrator.
    public static let authenticationAdministrator: String = "c4e39bd9-1100-46d3-8c65-fb160da0071f"
    /// Template id of Authentication Policy Administrator.
    public static let authenticationPolicyAdministrator: String = "0526716b-113d-4c15-b2c8-68e3c22b9f80"
    /// Template id of Authentication Extensibility Administrator.
    public static let authenticationExtensibilityAdministrator: String = "25a516ed-2fa0-40ea-a2d0-12923a21473a"
    /// Template id of Conditional Access Administrator.
    public static let conditionalAccessAdministrator: String = "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9"
    /// Template id of Security Administrator.
    public static let securityAdministrator: String = "194ae4cb-b126-40b2-bd5b-6091b380977d"
    /// Template id of Security Reader.
    public static let securityReader: String = "5d6b6bb7-de71-4623-b4af-96380a352509"
    /// Template id of Security Operator.
    public static let securityOperator: String = "5f2222b1-57c3-48ba-8ad5-d4759f1fde6f"
    /// Template id of User Administrator.
    public static let userAdministrator: String = "fe930be7-5e62-47db-91af-98c3a49a38b1"
    /// Template id of Helpdesk Administrator.
    public static let helpdeskAdministrator: String = "729827e3-9c14-49f7-bb1b-9608f156bbb8"
    /// Template id of Password Administrator.
    public static let passwordAdministrator: String = "966707d0-3269-4727-9be2-8c3a10f19b9d"
    /// Template id of Groups Administrator.
    public static let groupsAdministrator: String = "fdd7a751-b60b-444a-984c-02652fe8fa1c"
    /// Template id of Application Administrator.
    public static let applicationAdministrator: String = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"
    /// Template id of Cloud Application Administrator.
    public static let cloudApplicationAdministrator: String = "158c047a-c907-4556-b7ef-446551a6b5f7"
    /// Template id of Application Developer.
    public static let applicationDeveloper: String = "cf1c38e5-3621-4004-a7cb-879624dced7c"
    /// Template id of Hybrid Identity Administrator.
    public static let hybridIdentityAdministrator: String = "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2"
    /// Template id of Directory Readers.
    public static let directoryReaders: String = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b"
    /// Template id of Directory Writers.
    public static let directoryWriters: String = "9360feb5-f418-4baa-8175-e2a00bac4301"
    /// Template id of Directory Synchronization Accounts.
    public static let directorySynchronizationAccounts: String = "d29b2b05-8046-44ba-8758-1e26182fcf32"
    /// Template id of Cloud Device Administrator.
    public static let cloudDeviceAdministrator: String = "7698a772-787b-4ac8-901f-60d6b08affd2"
    /// Template id of Intune Administrator.
    public static let intuneAdministrator: String = "3a2c62db-5318-420d-8d74-23affee5d9d5"
    /// Template id of Exchange Administrator.
    public static let exchangeAdministrator: String = "29232cdf-9323-42fd-ade2-1d097af3e4de"
    /// Template id of SharePoint Administrator.
    public static let sharePointAdministrator: String = "f28a1f50-f6e7-4571-818b-6a12f2af6b6c"
    /// Template id of Teams Administrator.
    public static let teamsAdministrator: String = "69091246-20e8-4a56-aa4d-066075b2a7a8"
    /// Template id of Billing Administrator.
    public static let billingAdministrator: String = "b0f54661-2d74-4c50-afa3-1ec803f12efe"
    /// Template id of License Administrator.
    public static let licenseAdministrator: String = "4d6ac14f-3453-41d0-bef9-a3e0c569773a"
    /// Template id of Reports Reader.
    public static let reportsReader: String = "4a5d8f65-41da-4de4-8968-e035b65339cf"
    /// Template id of Global Secure Access Administrator.
    public static let globalSecureAccessAdministrator: String = "ac434307-12b9-4fa1-a708-88bf58caabc1"
    /// Template id of Global Secure Access Log Reader.
    public static let globalSecureAccessLogReader: String = "843318fb-79a6-4168-9e6f-aa9a07481cc4"
    /// Template id of Attribute Assignment Administrator.
    public static let attributeAssignmentAdministrator: String = "58a13ea3-c632-46ae-9ee0-9c0d43cd7f3d"
    /// Template id of Attribute Assignment Reader.
    public static let attributeAssignmentReader: String = "ffd52fa5-98dc-465c-991d-fc073eb59f8f"
    /// Template id of Attribute Definition Administrator.
    public static let attributeDefinitionAdministrator: String = "8424c6f0-a189-499e-bbd0-26c1753c96d4"
    /// Template id of Attribute Definition Reader.
    public static let attributeDefinitionReader: String = "1d336d2c-4ae8-42ef-9711-b3604ce3fc2c"
    /// Template id of Identity Governance Administrator.
    public static let identityGovernanceAdministrator: String = "45d8d3c5-c802-45c6-b32a-1d70b5e1e86e"
    /// Template id of Lifecycle Workflows Administrator.
    public static let lifecycleWorkflowsAdministrator: String = "59d46f88-662b-457b-bceb-5c3809e5908f"
    /// Template id of Compliance Administrator.
    public static let complianceAdministrator: String = "17315797-102d-40b4-93e0-432062caca18"
    /// Template id of Domain Name Administrator.
    public static let domainNameAdministrator: String = "8329153b-31d0-4727-b945-745eb3bc5f31"
    /// Template id of External Identity Provider Administrator.
    public static let externalIdentityProviderAdministrator: String = "be2f45a1-457d-42af-a067-6ec1fa63bc45"
    /// Template id of Guest Inviter.
    public static let guestInviter: String = "95e79109-95c0-4d8e-aee3-d01accf2d47b"
    /// Template id of Message Center Reader.
    public static let messageCenterReader: String = "790c1fb9-7f7d-4f88-86a1-ef1f95c05c1b"
    /// Template id of Service Support Administrator.
    public static let serviceSupportAdministrator: String = "f023fd81-a637-4b56-95fd-791ac0226033"
    /// Template id of User Experience Success Manager.
    public static let userExperienceSuccessManager: String = "27460883-1df1-4691-b032-3b79643e5e63"
    /// Template id of Organizational Branding Administrator.
    public static let organizationalBrandingAdministrator: String = "92ed04bf-c94a-4b82-9729-b799a7a4c178"

    /// Tessera's id for Entra Backup Reader. Microsoft has not published template ids for the two Backup and
    /// Recovery roles (preview, 2026); Tessera assigns its own and will take Microsoft's once they are published.
    public static let backupReader: String = "7832c867-2a39-44d5-b4e6-a7d152128b32"
    /// Tessera's id for Entra Backup Administrator (see `backupReader`).
    public static let backupAdministrator: String = "ace83dc7-24de-4e54-a14f-e771648b29be"

    // MARK: Catalog

    /// Every known built-in role.
    public static let all: [BuiltInRole] = [
        // MARK: Tenant-wide
        BuiltInRole(
            templateId: globalAdministrator,
            displayName: "Global Administrator",
            description: "Can manage all aspects of Microsoft Entra ID and Microsoft services that use Microsoft Entra identities.",
            isPrivileged: true,
            allowedResourceActions: [
                "microsoft.directory/users/allProperties/allTasks",
                "microsoft.directory/groups/allProperties/allTasks",
                "microsoft.directory/applications/allProperties/allTasks",
                "microsoft.directory/servicePrincipals/allProperties/allTasks",
                "microsoft.directory/devices/allProperties/allTasks",
                "microsoft.directory/domains/allProperties/allTasks",
                "microsoft.directory/organization/allProperties/allTasks",
                "microsoft.directory/roleAssignments/allProperties/allTasks",
                "microsoft.directory/roleDefinitions/allProperties/allTasks",
                "microsoft.directory/conditionalAccessPolicies/allProperties/allTasks",
            ]
        ),
        BuiltInRole(
            templateId: globalReader,
            displayName: "Global Reader",
            description: "Can read everything that a Global Administrator can, but not update anything.",
            isPrivileged: true,
            allowedResourceActions: [
                "microsoft.directory/users/allProperties/read",
                "microsoft.directory/groups/allProperties/read",
                "microsoft.directory/applications/allProperties/read",
                "microsoft.directory/servicePrincipals/allProperties/read",
                "microsoft.directory/devices/allProperties/read",
                "microsoft.directory/domains/allProperties/read",
                "microsoft.directory/organization/allProperties/read",
                "microsoft.directory/roleAssignments/allProperties/read",
                "microsoft.directory/roleDefinitions/allProperties/read",
                "microsoft.directory/conditionalAccessPolicies/allProperties/read",
            ]
        ),
        BuiltInRole(
            templateId: directoryReaders,
            displayName: "Directory Readers",
            description: "Can read basic directory information. Commonly used to grant directory read access to applications and guests.",
            isPrivileged: false,
            allowedResourceActions: [
                "microsoft.directory/users/standard/read",
                "microsoft.directory/groups/standard/read",
                "microsoft.directory/groups/members/read",
                "microsoft.directory/applications/standard/read",
                "microsoft.directory/servicePrincipals/standard/read",
                "microsoft.directory/devices/standard/read",
                "microsoft.directory/domains/standard/read",
                "microsoft.directory/organization/standard/read",
                "microsoft.directory/roleAssignments/standard/read",
                "microsoft.directory/roleDefinitions/standard/read",
            ]
        ),
        BuiltInRole(
            templateId: directoryWriters,
            displayName: "Directory Writers",
            description: "Can read and write basic directory information. For granting access to applications, not intended for users.",
            isPrivileged: true,
            allowedResourceActions: [
                "microsoft.directory/users/create",
                "microsoft.directory/users/basic/update",
                "microsoft.directory/users/userPrincipalName/update",
                "microsoft.directory/users/inviteGuest",
                "microsoft.directory/groups/create",
                "microsoft.directory/groups/members/update",
                "microsoft.directory/groups/owners/update",
                "microsoft.directory/oAuth2PermissionGrants/create",
                "microsoft.directory/servicePrincipals/appRoleAssignedTo/update",
                "microsoft.directory/contacts/create",
            ]
        ),
        BuiltInRole(
            templateId: directorySynchronizationAccounts,
            displayName: "Directory Synchronization Accounts",
            description: "Only used by Microsoft Entra Connect service.",
            isPrivileged: false,
            allowedResourceActions: [
                // Microsoft lists this single action for the role.
                "microsoft.directory/onPremisesSynchronization/standard/read",
            ]
        ),

        // MARK: Roles and authentication
        BuiltInRole(
            templateId: privilegedRoleAdministrator,
            displayName: "Privileged Role Administrator",
            description: "Can manage role assignments in Microsoft Entra ID, and all aspects of Privileged Identity Management.",
            isPrivileged: true,
            allowedResourceActions: [
                "microsoft.directory/roleAssignments/allProperties/allTasks",
                "microsoft.directory/roleDefinitions/allProperties/allTasks",
                "microsoft.directory/directoryRoles/allProperties/allTasks",
                "microsoft.directory/privilegedIdentityManagement/allProperties/allTasks",
                "microsoft.directory/administrativeUnits/allProperties/allTasks",
                "microsoft.directory/groupsAssignableToRoles/create",
                "microsoft.directory/authorizationPolicy/allProperties/allTasks",
                "microsoft.directory/servicePrincipals/managePermissionGrantsForAll.microsoft-company-admin",
            ]
        ),
        BuiltInRole(
            templateId: privilegedAuthenticationAdministrator,
            displayName: "Privileged Authentication Administrator",
            description: "Can access to view, set and reset authentication method information for any user (admin or non-admin).",
            isPrivileged: true,
            allowedResourceActions: [
                "microsoft.directory/users/authenticationMethods/create",
                "microsoft.directory/users/authenticationMethods/delete",
                "microsoft.directory/users/authenticationMethods/standard/read",
                "microsoft.directory/users/authenticationMethods/basic/update",
                "microsoft.directory/users/password/update",
                "microsoft.directory/users/invalidateAllRefreshTokens",
                "microsoft.directory/users/delete",
                "microsoft.directory/users/restore",
                "microsoft.directory/users/userPrincipalName/update",
            ]
        ),
        BuiltInRole(
            templateId: authenticationAdministrator,
            displayName: "Authentication Administrator",
            description: "Can access to view, set and reset authentication method information for any non-admin user.",
            isPrivileged: true,
            allowedResourceActions: [
                "microsoft.directory/users/authenticationMethods/create",
                "microsoft.directory/users/authenticationMethods/delete",
                "microsoft.directory/users/authenticationMethods/standard/restrictedRead",
                "microsoft.directory/users/authenticationMethods/basic/update",
                "microsoft.directory/users/password/update",
                "microsoft.directory/users/invalidateAllRefreshTokens",
                "microsoft.azure.supportTickets/allEntities/allTasks",
            ]
        ),
        BuiltInRole(
            templateId: authenticationPolicyAdministrator,
            displayName: "Authentication Policy Administrator",
            description: "Can create and manage the authentication methods policy, tenant-wide MFA settings, password protection policy, and verifiable credentials.",
            isPrivileged: false,
            allowedResourceActions: [
                "microsoft.directory/organization/strongAuthentication/allTasks",
                "microsoft.directory/userCredentialPolicies/create",
                "microsoft.directory/userCredentialPolicies/basic/update",
                "microsoft.directory/userCredentialPolicies/delete",
                "microsoft.directory/userCredentialPolicies/standard/read",
                "microsoft.directory/verifiableCredentials/configuration/allProperties/read",
                "microsoft.azure.supportTickets/allEntities/allTasks",
            ]
        ),
        BuiltInRole(
            templateId: authenticationExtensibilityAdministrator,
            displayName: "Authentication Extensibility Administrator",
            description: "Customize sign in and sign up experiences for users by creating and managing custom authentication extensions.",
            isPrivileged: true,
            allowedResourceActions: [
                // Microsoft lists this single action for the role.
                "microsoft.directory/customAuthenticationExtensions/allProperties/allTasks",
            ]
        ),
        BuiltInRole(
            templateId: conditionalAccessAdministrator,
            displayName: "Conditional Access Administrator",
            description: "Can manage Conditional Access capabilities.",
            isPrivileged: true,
            allowedResourceActions: [
                "microsoft.directory/conditionalAccessPolicies/create",
                "microsoft.directory/conditionalAccessPolicies/basic/update",
                "microsoft.directory/conditionalAccessPolicies/delete",
                "microsoft.directory/conditionalAccessPolicies/standard/read",
                "microsoft.directory/namedLocations/create",
                "microsoft.directory/namedLocations/basic/update",
                "microsoft.directory/namedLocations/delete",
                "microsoft.directory/namedLocations/standard/read",
            ]
        ),

        // MARK: Security
        BuiltInRole(
            templateId: securityAdministrator,
            displayName: "Security Administrator",
            description: "Can read security information and reports, and manage configuration in Microsoft Entra ID and Office 365.",
            isPrivileged: true,
            allowedResourceActions: [
                "microsoft.directory/conditionalAccessPolicies/create",
                "microsoft.directory/conditionalAccessPolicies/basic/update",
                "microsoft.directory/identityProtection/allProperties/read",
                "microsoft.directory/identityProtection/allProperties/update",
                "microsoft.directory/auditLogs/allProperties/read",
                "microsoft.directory/signInReports/allProperties/read",
                "microsoft.directory/policies/create",
                "microsoft.networkAccess/allEntities/allProperties/allTasks",
                "microsoft.office365.protectionCenter/allEntities/basic/update",
            ]
        ),
        BuiltInRole(
            templateId: securityReader,
            displayName: "Security Reader",
            description: "Can read security information and reports in Microsoft Entra ID and Office 365.",
            isPrivileged: true,
            allowedResourceActions: [
                "microsoft.directory/auditLogs/allProperties/read",
                "microsoft.directory/signInReports/allProperties/read",
                "microsoft.directory/identityProtection/allProperties/read",
                "microsoft.directory/conditionalAccessPolicies/standard/read",
                "microsoft.directory/policies/standard/read",
                "microsoft.directory/privilegedIdentityManagement/allProperties/read",
                "microsoft.networkAccess/allEntities/allProperties/read",
                "microsoft.office365.protectionCenter/allEntities/standard/read",
            ]
        ),
        BuiltInRole(
            templateId: securityOperator,
            displayName: "Security Operator",
            description: "Creates and manages security events.",
            isPrivileged: true,
            allowedResourceActions: [
                "microsoft.directory/identityProtection/allProperties/allTasks",
                "microsoft.directory/cloudAppSecurity/allProperties/allTasks",
                "microsoft.directory/auditLogs/allProperties/read",
                "microsoft.directory/signInReports/allProperties/read",
                "microsoft.directory/users/disable",
                "microsoft.directory/users/invalidateAllRefreshTokens",
                "microsoft.azure.advancedThreatProtection/allEntities/allTasks",
                "microsoft.windows.defenderAdvancedThreatProtection/allEntities/allTasks",
            ]
        ),

        // MARK: Users and groups
        BuiltInRole(
            templateId: userAdministrator,
            displayName: "User Administrator",
            description: "Can manage all aspects of users and groups, including resetting passwords for limited admins.",
            isPrivileged: true,
            allowedResourceActions: [
                "microsoft.directory/users/create",
                "microsoft.directory/users/delete",
                "microsoft.directory/users/basic/update",
                "microsoft.directory/users/password/update",
                "microsoft.directory/users/invalidateAllRefreshTokens",
                "microsoft.directory/users/restore",
                "microsoft.directory/users/assignLicense",
                "microsoft.directory/users/inviteGuest",
                "microsoft.directory/groups/create",
                "microsoft.directory/groups/members/update",
            ]
        ),
        BuiltInRole(
            templateId: helpdeskAdministrator,
            displayName: "Helpdesk Administrator",
            description: "Can reset passwords for non-administrators and Helpdesk Administrators.",
            isPrivileged: true,
            allowedResourceActions: [
                "microsoft.directory/users/password/update",
                "microsoft.directory/users/invalidateAllRefreshTokens",
                "microsoft.directory/bitlockerKeys/key/read",
                "microsoft.azure.supportTickets/allEntities/allTasks",
                "microsoft.office365.supportTickets/allEntities/allTasks",
                "microsoft.office365.serviceHealth/allEntities/allTasks",
            ]
        ),
        BuiltInRole(
            templateId: passwordAdministrator,
            displayName: "Password Administrator",
            description: "Can reset passwords for non-administrators and Password Administrators.",
            isPrivileged: true,
            allowedResourceActions: [
                // Microsoft lists exactly these two actions for the role.
                "microsoft.directory/users/password/update",
                "microsoft.office365.webPortal/allEntities/standard/read",
            ]
        ),
        BuiltInRole(
            templateId: groupsAdministrator,
            displayName: "Groups Administrator",
            description: "Members of this role can create/manage groups, create/manage groups settings like naming and expiration policies, and view groups activity and audit reports.",
            isPrivileged: false,
            allowedResourceActions: [
                "microsoft.directory/groups/create",
                "microsoft.directory/groups/delete",
                "microsoft.directory/groups/basic/update",
                "microsoft.directory/groups/members/update",
                "microsoft.directory/groups/owners/update",
                "microsoft.directory/groups/settings/update",
                "microsoft.directory/groups/dynamicMembershipRule/update",
                "microsoft.directory/deletedItems.groups/restore",
            ]
        ),
        BuiltInRole(
            templateId: guestInviter,
            displayName: "Guest Inviter",
            description: "Can invite guest users independent of the 'members can invite guests' setting.",
            isPrivileged: false,
            allowedResourceActions: [
                "microsoft.directory/users/inviteGuest",
                "microsoft.directory/users/standard/read",
                "microsoft.directory/users/memberOf/read",
                "microsoft.directory/users/manager/read",
                "microsoft.directory/users/directReports/read",
                "microsoft.directory/users/invitedBy/read",
                "microsoft.directory/users/sponsors/read",
                "microsoft.directory/users/photo/read",
            ]
        ),
        BuiltInRole(
            templateId: licenseAdministrator,
            displayName: "License Administrator",
            description: "Can manage product licenses on users and groups.",
            isPrivileged: false,
            allowedResourceActions: [
                "microsoft.directory/users/assignLicense",
                "microsoft.directory/users/reprocessLicenseAssignment",
                "microsoft.directory/users/usageLocation/update",
                "microsoft.directory/groups/assignLicense",
                "microsoft.directory/groups/reprocessLicenseAssignment",
                "microsoft.directory/authorizationPolicy/standard/read",
            ]
        ),

        // MARK: Applications
        BuiltInRole(
            templateId: applicationAdministrator,
            displayName: "Application Administrator",
            description: "Can create and manage all aspects of app registrations and enterprise apps.",
            isPrivileged: true,
            allowedResourceActions: [
                "microsoft.directory/applications/create",
                "microsoft.directory/applications/delete",
                "microsoft.directory/applications/basic/update",
                "microsoft.directory/applications/credentials/update",
                "microsoft.directory/applications/applicationProxy/update",
                "microsoft.directory/servicePrincipals/create",
                "microsoft.directory/servicePrincipals/credentials/update",
                "microsoft.directory/servicePrincipals/managePermissionGrantsForAll.microsoft-application-admin",
                "microsoft.directory/applicationTemplates/instantiate",
                "microsoft.directory/oAuth2PermissionGrants/allProperties/allTasks",
            ]
        ),
        BuiltInRole(
            templateId: cloudApplicationAdministrator,
            displayName: "Cloud Application Administrator",
            description: "Can create and manage all aspects of app registrations and enterprise apps except App Proxy.",
            isPrivileged: true,
            allowedResourceActions: [
                "microsoft.directory/applications/create",
                "microsoft.directory/applications/delete",
                "microsoft.directory/applications/basic/update",
                "microsoft.directory/applications/credentials/update",
                "microsoft.directory/servicePrincipals/create",
                "microsoft.directory/servicePrincipals/credentials/update",
                "microsoft.directory/servicePrincipals/managePermissionGrantsForAll.microsoft-application-admin",
                "microsoft.directory/applicationTemplates/instantiate",
                "microsoft.directory/oAuth2PermissionGrants/allProperties/allTasks",
            ]
        ),
        BuiltInRole(
            templateId: applicationDeveloper,
            displayName: "Application Developer",
            description: "Can create application registrations independent of the 'Users can register applications' setting.",
            isPrivileged: true,
            allowedResourceActions: [
                "microsoft.directory/applications/createAsOwner",
                "microsoft.directory/oAuth2PermissionGrants/createAsOwner",
                "microsoft.directory/servicePrincipals/createAsOwner",
            ]
        ),

        // MARK: Hybrid identity and domains
        BuiltInRole(
            templateId: hybridIdentityAdministrator,
            displayName: "Hybrid Identity Administrator",
            description: "Manage Active Directory to Microsoft Entra cloud provisioning, Microsoft Entra Connect, pass-through authentication (PTA), password hash synchronization (PHS), seamless single sign-on (seamless SSO), and federation settings. Does not have access to manage Microsoft Entra Connect Health.",
            isPrivileged: true,
            allowedResourceActions: [
                "microsoft.directory/cloudProvisioning/allProperties/allTasks",
                "microsoft.directory/onPremisesSynchronization/basic/update",
                "microsoft.directory/onPremisesSynchronization/standard/read",
                "microsoft.directory/passwordHashSync/allProperties/allTasks",
                "microsoft.directory/hybridAuthenticationPolicy/allProperties/allTasks",
                "microsoft.directory/domains/federation/update",
                "microsoft.directory/organization/dirSync/update",
                "microsoft.directory/servicePrincipals/synchronizationJobs/manage",
                "microsoft.directory/provisioningLogs/allProperties/read",
            ]
        ),
        BuiltInRole(
            templateId: domainNameAdministrator,
            displayName: "Domain Name Administrator",
            description: "Can manage domain names in cloud and on-premises.",
            isPrivileged: true,
            allowedResourceActions: [
                "microsoft.directory/domains/allProperties/allTasks",
                "microsoft.office365.supportTickets/allEntities/allTasks",
                "microsoft.office365.webPortal/allEntities/standard/read",
            ]
        ),
        BuiltInRole(
            templateId: externalIdentityProviderAdministrator,
            displayName: "External Identity Provider Administrator",
            description: "Can configure identity providers for use in direct federation.",
            isPrivileged: true,
            allowedResourceActions: [
                // Microsoft lists exactly these two actions for the role.
                "microsoft.directory/domains/federation/update",
                "microsoft.directory/identityProviders/allProperties/allTasks",
            ]
        ),

        // MARK: Devices
        BuiltInRole(
            templateId: cloudDeviceAdministrator,
            displayName: "Cloud Device Administrator",
            description: "Limited access to manage devices in Microsoft Entra ID.",
            isPrivileged: true,
            allowedResourceActions: [
                "microsoft.directory/devices/delete",
                "microsoft.directory/devices/disable",
                "microsoft.directory/devices/enable",
                "microsoft.directory/bitlockerKeys/key/read",
                "microsoft.directory/deviceLocalCredentials/password/read",
                "microsoft.directory/deviceRegistrationPolicy/basic/update",
                "microsoft.directory/deletedItems.devices/restore",
                "microsoft.directory/auditLogs/allProperties/read",
            ]
        ),
        BuiltInRole(
            templateId: intuneAdministrator,
            displayName: "Intune Administrator",
            description: "Can manage all aspects of the Intune product.",
            isPrivileged: true,
            allowedResourceActions: [
                "microsoft.intune/allEntities/allTasks",
                "microsoft.cloudPC/allEntities/allProperties/allTasks",
                "microsoft.directory/devices/create",
                "microsoft.directory/devices/basic/update",
                "microsoft.directory/devices/delete",
                "microsoft.directory/groups.security/create",
                "microsoft.directory/groups.security/members/update",
                "microsoft.directory/bitlockerKeys/key/read",
                "microsoft.directory/users/basic/update",
            ]
        ),

        // MARK: Microsoft 365 workloads
        BuiltInRole(
            templateId: exchangeAdministrator,
            displayName: "Exchange Administrator",
            description: "Can manage all aspects of the Exchange product.",
            isPrivileged: false,
            allowedResourceActions: [
                "microsoft.office365.exchange/allEntities/basic/allTasks",
                "microsoft.directory/groups.unified/create",
                "microsoft.directory/groups.unified/delete",
                "microsoft.directory/groups.unified/members/update",
                "microsoft.directory/groups.unified/owners/update",
                "microsoft.directory/contacts/allProperties/read",
                "microsoft.office365.usageReports/allEntities/allProperties/read",
                "microsoft.office365.supportTickets/allEntities/allTasks",
            ]
        ),
        BuiltInRole(
            templateId: sharePointAdministrator,
            displayName: "SharePoint Administrator",
            description: "Can manage all aspects of the SharePoint service.",
            isPrivileged: false,
            allowedResourceActions: [
                "microsoft.office365.sharePoint/allEntities/allTasks",
                "microsoft.directory/groups.unified/create",
                "microsoft.directory/groups.unified/delete",
                "microsoft.directory/groups.unified/members/update",
                "microsoft.directory/groups.unified/owners/update",
                "microsoft.backup/sharePointProtectionPolicies/allProperties/allTasks",
                "microsoft.office365.migrations/allEntities/allProperties/allTasks",
                "microsoft.office365.usageReports/allEntities/allProperties/read",
            ]
        ),
        BuiltInRole(
            templateId: teamsAdministrator,
            displayName: "Teams Administrator",
            description: "Can manage the Microsoft Teams service.",
            isPrivileged: false,
            allowedResourceActions: [
                "microsoft.teams/allEntities/allProperties/allTasks",
                "microsoft.office365.skypeForBusiness/allEntities/allTasks",
                "microsoft.directory/groups.unified/create",
                "microsoft.directory/groups.unified/delete",
                "microsoft.directory/groups.unified/members/update",
                "microsoft.directory/crossTenantAccessPolicy/partners/crossCloudMeetings/update",
                "microsoft.directory/externalUserProfiles/standard/read",
                "microsoft.office365.usageReports/allEntities/allProperties/read",
            ]
        ),
        BuiltInRole(
            templateId: billingAdministrator,
            displayName: "Billing Administrator",
            description: "Can perform common billing related tasks like updating payment information.",
            isPrivileged: false,
            allowedResourceActions: [
                "microsoft.commerce.billing/allEntities/allProperties/allTasks",
                "microsoft.directory/organization/basic/update",
                "microsoft.azure.supportTickets/allEntities/allTasks",
                "microsoft.office365.supportTickets/allEntities/allTasks",
                "microsoft.office365.serviceHealth/allEntities/allTasks",
                "microsoft.office365.webPortal/allEntities/standard/read",
            ]
        ),
        BuiltInRole(
            templateId: complianceAdministrator,
            displayName: "Compliance Administrator",
            description: "Can read and manage compliance configuration and reports in Microsoft Entra ID and Microsoft 365.",
            isPrivileged: false,
            allowedResourceActions: [
                "microsoft.office365.complianceManager/allEntities/allTasks",
                "microsoft.directory/entitlementManagement/allProperties/read",
                "microsoft.azure.supportTickets/allEntities/allTasks",
                "microsoft.office365.supportTickets/allEntities/allTasks",
                "microsoft.azure.serviceHealth/allEntities/allTasks",
                "microsoft.office365.serviceHealth/allEntities/allTasks",
                "microsoft.office365.webPortal/allEntities/standard/read",
            ]
        ),
        BuiltInRole(
            templateId: serviceSupportAdministrator,
            displayName: "Service Support Administrator",
            description: "Can read service health information and manage support tickets.",
            isPrivileged: false,
            allowedResourceActions: [
                "microsoft.azure.serviceHealth/allEntities/allTasks",
                "microsoft.azure.supportTickets/allEntities/allTasks",
                "microsoft.office365.network/performance/allProperties/read",
                "microsoft.office365.serviceHealth/allEntities/allTasks",
                "microsoft.office365.supportTickets/allEntities/allTasks",
                "microsoft.office365.webPortal/allEntities/standard/read",
            ]
        ),
        BuiltInRole(
            templateId: messageCenterReader,
            displayName: "Message Center Reader",
            description: "Can read messages and updates for their organization in Office 365 Message Center only.",
            isPrivileged: false,
            allowedResourceActions: [
                // Microsoft lists exactly these two actions for the role.
                "microsoft.office365.messageCenter/messages/read",
                "microsoft.office365.webPortal/allEntities/standard/read",
            ]
        ),
        BuiltInRole(
            templateId: userExperienceSuccessManager,
            displayName: "User Experience Success Manager",
            description: "View product feedback, survey results, and reports to find training and communication opportunities.",
            isPrivileged: false,
            allowedResourceActions: [
                "microsoft.commerce.billing/purchases/standard/read",
                "microsoft.office365.messageCenter/messages/read",
                "microsoft.office365.network/performance/allProperties/read",
                "microsoft.office365.organizationalMessages/allEntities/allProperties/read",
                "microsoft.office365.serviceHealth/allEntities/allTasks",
                "microsoft.office365.usageReports/allEntities/standard/read",
                "microsoft.office365.webPortal/allEntities/standard/read",
            ]
        ),
        BuiltInRole(
            templateId: organizationalBrandingAdministrator,
            displayName: "Organizational Branding Administrator",
            description: "Manage all aspects of organizational branding in a tenant.",
            isPrivileged: false,
            allowedResourceActions: [
                // Microsoft lists this single action for the role.
                "microsoft.directory/loginOrganizationBranding/allProperties/allTasks",
            ]
        ),

        // MARK: Reporting
        BuiltInRole(
            templateId: reportsReader,
            displayName: "Reports Reader",
            description: "Can read sign-in and audit reports.",
            isPrivileged: false,
            allowedResourceActions: [
                "microsoft.directory/auditLogs/allProperties/read",
                "microsoft.directory/signInReports/allProperties/read",
                "microsoft.directory/provisioningLogs/allProperties/read",
                "microsoft.office365.usageReports/allEntities/allProperties/read",
                "microsoft.office365.network/performance/allProperties/read",
                "microsoft.office365.webPortal/allEntities/standard/read",
                "microsoft.azure.serviceHealth/allEntities/allTasks",
            ]
        ),

        // MARK: Global Secure Access
        BuiltInRole(
            templateId: globalSecureAccessAdministrator,
            displayName: "Global Secure Access Administrator",
            description: "Create and manage all aspects of Global Secure Internet Access and Microsoft Global Secure Private Access, including managing access to public and private endpoints.",
            isPrivileged: false,
            allowedResourceActions: [
                "microsoft.networkAccess/allEntities/allProperties/allTasks",
                "microsoft.directory/applications/applicationProxy/read",
                "microsoft.directory/connectorGroups/allProperties/read",
                "microsoft.directory/connectors/allProperties/read",
                "microsoft.directory/conditionalAccessPolicies/standard/read",
                "microsoft.directory/namedLocations/standard/read",
                "microsoft.directory/signInReports/allProperties/read",
                "microsoft.directory/auditLogs/allProperties/read",
            ]
        ),
        BuiltInRole(
            templateId: globalSecureAccessLogReader,
            displayName: "Global Secure Access Log Reader",
            description: "Provides designated security personnel with read-only access to network traffic logs in Microsoft Entra Internet Access and Microsoft Entra Private Access for detailed analysis.",
            isPrivileged: false,
            allowedResourceActions: [
                // Microsoft lists this single action for the role.
                "microsoft.networkAccess/trafficLogs/standard/read",
            ]
        ),

        // MARK: Custom security attributes
        BuiltInRole(
            templateId: attributeAssignmentAdministrator,
            displayName: "Attribute Assignment Administrator",
            description: "Assign custom security attribute keys and values to supported Microsoft Entra objects.",
            isPrivileged: false,
            allowedResourceActions: [
                "microsoft.directory/attributeSets/allProperties/read",
                "microsoft.directory/customSecurityAttributeDefinitions/allProperties/read",
                "microsoft.directory/users/customSecurityAttributes/read",
                "microsoft.directory/users/customSecurityAttributes/update",
                "microsoft.directory/servicePrincipals/customSecurityAttributes/read",
                "microsoft.directory/servicePrincipals/customSecurityAttributes/update",
                "microsoft.directory/devices/customSecurityAttributes/read",
                "microsoft.directory/devices/customSecurityAttributes/update",
            ]
        ),
        BuiltInRole(
            templateId: attributeAssignmentReader,
            displayName: "Attribute Assignment Reader",
            description: "Read custom security attribute keys and values for supported Microsoft Entra objects.",
            isPrivileged: false,
            allowedResourceActions: [
                "microsoft.directory/attributeSets/allProperties/read",
                "microsoft.directory/customSecurityAttributeDefinitions/allProperties/read",
                "microsoft.directory/users/customSecurityAttributes/read",
                "microsoft.directory/servicePrincipals/customSecurityAttributes/read",
                "microsoft.directory/devices/customSecurityAttributes/read",
                "microsoft.directory/azureManagedIdentities/customSecurityAttributes/read",
            ]
        ),
        BuiltInRole(
            templateId: attributeDefinitionAdministrator,
            displayName: "Attribute Definition Administrator",
            description: "Define and manage the definition of custom security attributes.",
            isPrivileged: false,
            allowedResourceActions: [
                // Microsoft lists exactly these two actions for the role.
                "microsoft.directory/attributeSets/allProperties/allTasks",
                "microsoft.directory/customSecurityAttributeDefinitions/allProperties/allTasks",
            ]
        ),
        BuiltInRole(
            templateId: attributeDefinitionReader,
            displayName: "Attribute Definition Reader",
            description: "Read the definition of custom security attributes.",
            isPrivileged: false,
            allowedResourceActions: [
                // Microsoft lists exactly these two actions for the role.
                "microsoft.directory/attributeSets/allProperties/read",
                "microsoft.directory/customSecurityAttributeDefinitions/allProperties/read",
            ]
        ),

        // MARK: Identity governance
        BuiltInRole(
            templateId: identityGovernanceAdministrator,
            displayName: "Identity Governance Administrator",
            description: "Manage access using Microsoft Entra ID for identity governance scenarios.",
            isPrivileged: false,
            allowedResourceActions: [
                "microsoft.directory/accessReviews/allProperties/allTasks",
                "microsoft.directory/accessReviews/definitions.applications/allProperties/allTasks",
                "microsoft.directory/accessReviews/definitions.entitlementManagement/allProperties/allTasks",
                "microsoft.directory/accessReviews/definitions.groups/create",
                "microsoft.directory/entitlementManagement/allProperties/allTasks",
                "microsoft.directory/groups/members/update",
                "microsoft.directory/servicePrincipals/appRoleAssignedTo/update",
            ]
        ),
        BuiltInRole(
            templateId: lifecycleWorkflowsAdministrator,
            displayName: "Lifecycle Workflows Administrator",
            description: "Create and manage all aspects of workflows and tasks associated with Lifecycle Workflows in Microsoft Entra ID.",
            isPrivileged: true,
            allowedResourceActions: [
                "microsoft.directory/lifecycleWorkflows/workflows/allProperties/allTasks",
                "microsoft.directory/organization/strongAuthentication/read",
                "microsoft.directory/users/lifeCycleInfo/read",
            ]
        ),
        // MARK: Backup and Recovery (ids assigned by Tessera; see `backupReader`)
        BuiltInRole(
            templateId: backupReader,
            displayName: "Entra Backup Reader",
            description: "Can view Microsoft Entra backups, difference reports and recovery history.",
            isPrivileged: false,
            allowedResourceActions: [
                "microsoft.directory/backups/read",
                "microsoft.directory/recoveryJobs/read",
            ]
        ),
        BuiltInRole(
            templateId: backupAdministrator,
            displayName: "Entra Backup Administrator",
            description: "Can view Microsoft Entra backups, create difference reports and recover objects from a backup.",
            isPrivileged: true,
            allowedResourceActions: [
                "microsoft.directory/backups/read",
                "microsoft.directory/recoveryJobs/read",
                "microsoft.directory/recoveryPreviewJobs/create",
                "microsoft.directory/recoveryJobs/create",
            ]
        ),
    ]

    // MARK: Lookup

    private static let indexByTemplateId: [String: BuiltInRole] = {
        var index: [String: BuiltInRole] = [:]
        for role in all { index[role.templateId] = role }
        return index
    }()

    private static let indexByDisplayName: [String: BuiltInRole] = {
        var index: [String: BuiltInRole] = [:]
        for role in all { index[role.displayName] = role }
        return index
    }()

    private static let indexByLowercasedDisplayName: [String: BuiltInRole] = {
        var index: [String: BuiltInRole] = [:]
        for role in all { index[role.displayName.lowercased()] = role }
        return index
    }()

    /// Looks a role up by its template id (equal to its roleDefinition id); the GUID is compared case-insensitively.
    public static func byTemplateId(_ id: String) -> BuiltInRole? {
        indexByTemplateId[id.lowercased()]
    }

    /// Looks a role up by its display name; an exact match wins, otherwise case is ignored.
    public static func byDisplayName(_ name: String) -> BuiltInRole? {
        indexByDisplayName[name] ?? indexByLowercasedDisplayName[name.lowercased()]
    }
}
