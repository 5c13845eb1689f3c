import Crypto
import Foundation

/// Rules for applications and service principals.
enum ApplicationRules {
    static func prepareApplication(_ body: inout [String: JSONValue], tenant: String, now: String) throws(DirectoryError) {
        body["appId"] = .string(Identifier.make())
        body["signInAudience"] = body["signInAudience"] ?? "AzureADMyOrg"
        for key in ["identifierUris", "keyCredentials", "passwordCredentials", "appRoles", "requiredResourceAccess", "tags", "addIns"]
        where body[key] == nil {
            body[key] = []
        }
        if body["keyCredentials"] != .array([]) { try checkKeyCredentials(&body, now: now) }
        try checkLogoutURLs(body)
    }

    static func prepareServicePrincipal(_ body: inout [String: JSONValue], tenant: String, tx: any DirectoryTransaction) async throws {
        guard let appId = body["appId"]?.stringValue,
              let appObjectId = try await tx.holder(tenant: tenant, key: UniqueKey("appId", appId)),
              let app = try await tx.object(tenant: tenant, id: appObjectId), app.deletedAt == nil
        else {
            throw DirectoryError.badRequest(
                "The appId '\(body["appId"]?.stringValue ?? "")' of the service principal does not reference a valid application object.")
        }
        body["displayName"] = body["displayName"] ?? app.body["displayName"] ?? nil
        body["appDisplayName"] = app.body["displayName"] ?? nil
        body["appRoles"] = app.body["appRoles"] ?? []
        body["appOwnerOrganizationId"] = .string(tenant)
        body["servicePrincipalType"] = body["servicePrincipalType"] ?? "Application"
        body["accountEnabled"] = body["accountEnabled"] ?? true
        body["appRoleAssignmentRequired"] = body["appRoleAssignmentRequired"] ?? false
        body["servicePrincipalNames"] = .strings([appId] + (app.body["identifierUris"]?.arrayValue?.compactMap(\.stringValue) ?? []))
        for key in ["keyCredentials", "passwordCredentials", "oauth2PermissionScopes", "replyUrls", "tags", "alternativeNames",
                    "notificationEmailAddresses", "addIns", "resourceSpecificApplicationPermissions"] where body[key] == nil {
            body[key] = []
        }
    }

    /// Normalises `keyCredentials` written by PATCH: each certificate gets a keyId, its SHA-1 thumbprint
    /// as `customKeyIdentifier`, and the public part only is kept.
    /// Checks and completes `keyCredentials`; a key without dates is valid for a year from `now` (the directory's clock).
    static func checkKeyCredentials(_ body: inout [String: JSONValue], now: String) throws(DirectoryError) {
        guard let credentials = body["keyCredentials"]?.arrayValue else { return }
        var out: [JSONValue] = []
        for credential in credentials {
            guard var fields = credential.objectValue else { throw DirectoryError.badRequest("Invalid keyCredentials entry.") }
            guard let type = fields["type"]?.stringValue, type == "AsymmetricX509Cert" || type == "X509CertAndPassword" else {
                throw DirectoryError.badRequest("Key credential type must be 'AsymmetricX509Cert'.")
            }
            guard fields["usage"]?.stringValue == "Verify" || fields["usage"]?.stringValue == "Sign" else {
                throw DirectoryError.badRequest("Key credential usage must be 'Verify' or 'Sign'.")
            }
            if let key = fields["key"]?.stringValue {
                guard let der = Data(base64Encoded: key), !der.isEmpty else {
                    throw DirectoryError.badRequest("Key credential 'key' must be a base64-encoded X.509 certificate.")
                }
                let thumbprint = Data(Insecure.SHA1.hash(data: der))
                fields["customKeyIdentifier"] = .string(thumbprint.base64EncodedString())
                fields["_certificate"] = .string(key)
                fields["key"] = nil
            } else if fields["_certificate"] == nil {
                throw DirectoryError.badRequest("Key credential 'key' is required.")
            }
            fields["keyId"] = fields["keyId"] ?? .string(Identifier.make())
            fields["displayName"] = fields["displayName"] ?? "CN=certificate"
            if fields["startDateTime"] == nil || fields["endDateTime"] == nil {
                guard let start = Timestamp.parse(now) else { throw DirectoryError(.internalError, "The directory's time '\(now)' is not a timestamp.") }
                fields["startDateTime"] = fields["startDateTime"] ?? .string(now)
                fields["endDateTime"] = fields["endDateTime"] ?? .string(Timestamp.format(start.addingTimeInterval(365 * 86_400)))
            }
            out.append(.object(fields))
        }
        body["keyCredentials"] = .array(out)
    }
}

/// Rules for app role assignments and directory role assignments.
enum AssignmentRules {
    static func prepareAppRoleAssignment(_ body: inout [String: JSONValue], tenant: String, tx: any DirectoryTransaction,
                                         now: String) async throws {
        guard let principalId = body["principalId"]?.stringValue,
              let principal = try await tx.object(tenant: tenant, id: principalId), principal.deletedAt == nil,
              [.user, .group, .servicePrincipal].contains(principal.kind)
        else { throw DirectoryError.badRequest("Invalid principalId: no user, group or service principal has that id.") }
        guard let resourceId = body["resourceId"]?.stringValue,
              let resource = try await tx.object(tenant: tenant, id: resourceId), resource.kind == .servicePrincipal,
              resource.deletedAt == nil
        else { throw DirectoryError.badRequest("Invalid resourceId: no service principal has that id.") }
        let appRoleId = body["appRoleId"]?.stringValue?.lowercased() ?? ""
        let roles = resource.body["appRoles"]?.arrayValue ?? []
        let known = appRoleId == "00000000-0000-0000-0000-000000000000"
            || roles.contains { $0["id"]?.stringValue?.lowercased() == appRoleId }
        guard known else {
            throw DirectoryError.badRequest("Permission being assigned was not found on application '\(resource.body["appId"]?.stringValue ?? resourceId)'.")
        }
        body["appRoleId"] = .string(appRoleId)
        body["principalType"] = .string(principal.kind == .servicePrincipal ? "ServicePrincipal" : principal.kind == .group ? "Group" : "User")
        body["principalDisplayName"] = principal.body["displayName"] ?? nil
        body["resourceDisplayName"] = resource.body["displayName"] ?? nil
        body["createdDateTime"] = .string(now)
        body["deletedDateTime"] = nil
    }

    static func prepareRoleAssignment(_ body: inout [String: JSONValue], tenant: String, tx: any DirectoryTransaction) async throws {
        guard let roleId = body["roleDefinitionId"]?.stringValue?.lowercased(), BuiltInRoles.byTemplateId(roleId) != nil else {
            throw DirectoryError.badRequest("Invalid roleDefinitionId: no role definition has that id.")
        }
        guard let principalId = body["principalId"]?.stringValue,
              let principal = try await tx.object(tenant: tenant, id: principalId), principal.deletedAt == nil,
              [.user, .group, .servicePrincipal].contains(principal.kind)
        else { throw DirectoryError.badRequest("Invalid principalId: no user, group or service principal has that id.") }
        if principal.kind == .group, principal.body["isAssignableToRole"] != .bool(true) {
            throw DirectoryError.badRequest("Only groups created with isAssignableToRole set to true can be assigned to roles.")
        }
        let scope = body["directoryScopeId"]?.stringValue ?? "/"
        guard scope == "/" || scope.hasPrefix("/administrativeUnits/") || scope.hasPrefix("/") else {
            throw DirectoryError.badRequest("Invalid directoryScopeId '\(scope)'.")
        }
        body["roleDefinitionId"] = .string(roleId)
        body["directoryScopeId"] = .string(scope)
        body["principalOrganizationId"] = .string(tenant)
    }
}

extension UniqueKey {
    /// The error a second holder of this key gets.
    public var conflictError: DirectoryError {
        switch name {
        case "appRoleAssignment": DirectoryError.badRequest("Permission being assigned already exists on the object")
        case "oauth2PermissionGrant":
            DirectoryError(.conflict, "Permission entry already exists: this client already has a grant to this resource for this principal; update its scope instead.")
        case "roleAssignment":
            DirectoryError.badRequest("A conflicting object with one or more of the specified property values is present in the directory.")
        default: DirectoryError.duplicate(name.split(separator: ":").last.map(String.init) ?? name)
        }
    }
}
