/// What `tessera tenant create` reports: how to reach the new tenant.
public struct ProvisionedTenant: Sendable {
    public let tenantId: String
    public let domain: String
    public let adminUserPrincipalName: String
    public let adminUserId: String
    public let clientId: String
    /// Shown once; only its digest is stored.
    public let clientSecret: String
}

/// Creates a tenant with what Entra gives a new one: an organization, its initial domain, the Microsoft
/// Graph service principal (whose app roles are Graph's application permissions), a first Global
/// Administrator, and an app registration holding the permissions an operator needs to automate it.
public struct TenantProvisioner: Sendable {
    /// The permissions the bootstrap app registration is granted.
    public static let bootstrapPermissions = [
        "Directory.ReadWrite.All", "User.ReadWrite.All", "Group.ReadWrite.All", "Application.ReadWrite.All",
        "RoleManagement.ReadWrite.Directory", "Policy.ReadWrite.AuthenticationMethod", "Policy.ReadWrite.ConditionalAccess",
        "AuditLog.Read.All", "UserAuthenticationMethod.ReadWrite.All", "Policy.ReadWrite.Authorization",
        "DelegatedPermissionGrant.ReadWrite.All", "EntraBackup.ReadWrite.Recovery", "OnPremDirectorySynchronization.ReadWrite.All",
        "Policy.ReadWrite.CrossTenantAccess", "MultiTenantOrganization.ReadWrite.All", "User.Invite.All",
    ]

    let directory: DirectoryService

    public init(directory: DirectoryService) {
        self.directory = directory
    }

    public func create(name: String, domain rawDomain: String) async throws -> ProvisionedTenant {
        let domain = rawDomain.lowercased()
        guard Self.isValidDomain(domain) else { throw DirectoryError.badRequest("'\(rawDomain)' is not a valid domain name.") }
        guard !name.isEmpty, name.count <= 256 else { throw DirectoryError.badRequest("The tenant name must be 1 to 256 characters.") }
        let tenantId = Identifier.make()
        let now = directory.now
        let actor = Actor.system
        try await directory.write(tenantId) { tx in
            try await tx.insertTenant(TenantRecord(id: tenantId, domain: domain, name: name, createdAt: now))
            let organization = StoredObject(tenant: tenantId, id: tenantId, kind: .organization, body: [
                "id": .string(tenantId), "displayName": .string(name), "createdDateTime": .string(now), "tenantType": "AAD",
                "verifiedDomains": [["name": .string(domain), "isDefault": true, "isInitial": true, "type": "Managed", "capabilities": "Email"]],
                "businessPhones": [], "marketingNotificationEmails": [], "technicalNotificationMails": [],
                "securityComplianceNotificationMails": [], "securityComplianceNotificationPhones": [], "assignedPlans": [],
                "provisionedPlans": [], "onPremisesSyncEnabled": nil, "countryLetterCode": nil, "preferredLanguage": "en",
            ])
            try await tx.insert(organization)
            try await tx.insert(StoredObject(tenant: tenantId, id: domain, kind: .domain, body: [
                "id": .string(domain), "authenticationType": "Managed", "isAdminManaged": true, "isDefault": true,
                "isInitial": true, "isRoot": true, "isVerified": true, "supportedServices": ["Email", "OfficeCommunicationsOnlineServices"],
                "availabilityStatus": nil, "passwordValidityPeriodInDays": 2_147_483_647, "passwordNotificationWindowInDays": 14,
            ]))
            try await tx.record(ChangeRecord(tenant: tenantId, objectId: tenantId, kind: .organization, operation: "create",
                                             activity: "Add company", actor: actor.initiatedBy, at: now,
                                             details: ["displayName": .string(name)]))
        }
        // Microsoft Graph's service principal, with Graph's permissions as its app roles.
        let graphRoles: [JSONValue] = GraphPermissions.all.map { permission in
            ["id": .string(permission.id), "value": .string(permission.value), "displayName": .string(permission.displayName),
             "description": .string(permission.description), "allowedMemberTypes": ["Application"], "isEnabled": true,
             "origin": "Application"]
        }
        let graphSp = StoredObject(tenant: tenantId, id: Identifier.make(), kind: .servicePrincipal, body: [
            "appId": .string(GraphPermissions.graphAppId), "displayName": "Microsoft Graph", "appDisplayName": "Microsoft Graph",
            "appRoles": .array(graphRoles), "servicePrincipalType": "Application", "accountEnabled": true,
            "appOwnerOrganizationId": "f8cdef31-a31e-4b4a-93e4-5f571e91255a", "appRoleAssignmentRequired": false,
            "servicePrincipalNames": ["00000003-0000-0000-c000-000000000000", "https://graph.microsoft.com"],
            "keyCredentials": [], "passwordCredentials": [], "oauth2PermissionScopes": [], "replyUrls": [], "tags": [],
            "alternativeNames": [], "notificationEmailAddresses": [], "addIns": [], "resourceSpecificApplicationPermissions": [],
        ])
        try await directory.write(tenantId) { tx in
            var body = graphSp.body
            body["id"] = .string(graphSp.id)
            body["createdDateTime"] = .string(now)
            let object = StoredObject(tenant: tenantId, id: graphSp.id, kind: .servicePrincipal, body: body)
            try await tx.claim(tenant: tenantId, object: object.id, keys: DirectoryRules.uniqueKeys(of: object))
            try await tx.insert(object)
            try await tx.record(ChangeRecord(tenant: tenantId, objectId: object.id, kind: .servicePrincipal, operation: "create",
                                             activity: "Add service principal", actor: actor.initiatedBy, at: now,
                                             details: ["displayName": "Microsoft Graph"]))
        }
        let adminUpn = "admin@\(domain)"
        let admin = try await directory.create(tenant: tenantId, kind: .user, body: [
            "accountEnabled": true, "displayName": "Tessera Administrator", "mailNickname": "admin",
            "userPrincipalName": .string(adminUpn),
            "passwordProfile": ["forceChangePasswordNextSignIn": true, "password": .string(Secrets.makeClientSecret())],
        ], actor: actor)
        _ = try await directory.create(tenant: tenantId, kind: .roleAssignment, body: [
            "principalId": .string(admin.id), "roleDefinitionId": .string(BuiltInRoles.globalAdministrator), "directoryScopeId": "/",
        ], actor: actor)
        let app = try await directory.create(tenant: tenantId, kind: .application, body: [
            "displayName": "Tessera automation",
            "requiredResourceAccess": [["resourceAppId": .string(GraphPermissions.graphAppId), "resourceAccess": .array(
                Self.bootstrapPermissions.compactMap(GraphPermissions.byValue).map { ["id": .string($0.id), "type": "Role"] })]],
        ], actor: actor)
        let appId = app.body["appId"]?.stringValue ?? ""
        let sp = try await directory.create(tenant: tenantId, kind: .servicePrincipal, body: ["appId": .string(appId)], actor: actor)
        for permission in Self.bootstrapPermissions.compactMap(GraphPermissions.byValue) {
            _ = try await directory.create(tenant: tenantId, kind: .appRoleAssignment, body: [
                "principalId": .string(sp.id), "resourceId": .string(graphSp.id), "appRoleId": .string(permission.id),
            ], actor: actor)
        }
        let secret = try await directory.addPassword(tenant: tenantId, objectId: app.id, displayName: "bootstrap",
                                                     endDateTime: nil, actor: actor)
        return ProvisionedTenant(tenantId: tenantId, domain: domain, adminUserPrincipalName: adminUpn, adminUserId: admin.id,
                                 clientId: appId, clientSecret: secret["secretText"]?.stringValue ?? "")
    }

    static func isValidDomain(_ domain: String) -> Bool {
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2, domain.count <= 253 else { return false }
        return labels.allSatisfy { label in
            !label.isEmpty && label.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }
    }
}
