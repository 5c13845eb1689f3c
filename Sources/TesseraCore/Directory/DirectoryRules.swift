/// The invariants of each kind of object: required properties, defaults, read-only properties and
/// unique keys. Pure functions of the object and what the transaction can read.
enum DirectoryRules {
    /// Properties no caller may write.
    static let readOnly: [ObjectKind: Set<String>] = [
        .user: ["id", "createdDateTime", "deletedDateTime", "onPremisesSyncEnabled", "onPremisesLastSyncDateTime",
                "onPremisesProvisioningErrors", "securityIdentifier", "creationType", "signInActivity", "assignedPlans",
                "provisionedPlans", "licenseAssignmentStates", "lastPasswordChangeDateTime"],
        .group: ["id", "createdDateTime", "deletedDateTime", "onPremisesSyncEnabled", "onPremisesLastSyncDateTime",
                 "securityIdentifier", "renewedDateTime", "proxyAddresses"],
        .application: ["id", "appId", "createdDateTime", "deletedDateTime", "publisherDomain", "passwordCredentials"],
        .servicePrincipal: ["id", "appId", "deletedDateTime", "appOwnerOrganizationId", "passwordCredentials"],
        .device: ["id", "deletedDateTime"],
        .appRoleAssignment: ["id", "createdDateTime", "principalDisplayName", "principalType", "resourceDisplayName",
                             "principalId", "resourceId", "appRoleId"],
        .roleAssignment: ["id", "principalId", "roleDefinitionId", "directoryScopeId"],
        .conditionalAccessPolicy: ["id", "createdDateTime", "modifiedDateTime", "deletedDateTime"],
        .namedLocation: ["id", "createdDateTime", "modifiedDateTime", "deletedDateTime"],
        .oauth2PermissionGrant: ["id", "clientId", "consentType", "principalId", "resourceId"],
    ]

    static let required: [ObjectKind: [String]] = [
        .user: ["accountEnabled", "displayName", "mailNickname", "userPrincipalName", "passwordProfile"],
        .group: ["displayName", "mailEnabled", "mailNickname", "securityEnabled"],
        .application: ["displayName"],
        .servicePrincipal: ["appId"],
        .device: ["displayName", "deviceId", "operatingSystem", "operatingSystemVersion"],
        .appRoleAssignment: ["principalId", "resourceId", "appRoleId"],
        .roleAssignment: ["principalId", "roleDefinitionId"],
        .conditionalAccessPolicy: ["displayName", "state", "conditions"],
        .namedLocation: ["displayName"],
        .oauth2PermissionGrant: ["clientId", "consentType", "resourceId"],
    ]

    static func prepareCreate(kind: ObjectKind, fields: [String: JSONValue], tenant: String,
                              tx: any DirectoryTransaction, now: String, allowReadOnly: Bool = false) async throws -> [String: JSONValue] {
        var body = fields
        // A synced user has no cloud password.
        for name in required[kind] ?? [] where (body[name] == nil || body[name] == .null) && !(allowReadOnly && name == "passwordProfile") {
            throw DirectoryError.badRequest("Property '\(name)' is required when creating the object.")
        }
        for name in readOnly[kind] ?? [] where !allowReadOnly && name != "id" && body[name] != nil
            && !(kind == .servicePrincipal && name == "appId")
            && !(kind == .appRoleAssignment || kind == .roleAssignment || kind == .oauth2PermissionGrant) {
            throw DirectoryError.badRequest("Property '\(name)' is read-only and cannot be set.")
        }
        if kind != .appRoleAssignment, kind != .roleAssignment, kind != .domain, kind != .oauth2PermissionGrant {
            body["createdDateTime"] = .string(now)
        }
        switch kind {
        case .user: try await UserRules.prepare(&body, tenant: tenant, tx: tx, isCreate: true)
        case .group: GroupRules.prepare(&body)
        case .application: try ApplicationRules.prepareApplication(&body, tenant: tenant, now: now)
        case .servicePrincipal: try await ApplicationRules.prepareServicePrincipal(&body, tenant: tenant, tx: tx)
        case .appRoleAssignment: try await AssignmentRules.prepareAppRoleAssignment(&body, tenant: tenant, tx: tx, now: now)
        case .roleAssignment: try await AssignmentRules.prepareRoleAssignment(&body, tenant: tenant, tx: tx)
        case .device:
            body["accountEnabled"] = body["accountEnabled"] ?? true
            body["registrationDateTime"] = .string(now)
        case .conditionalAccessPolicy: try await PolicyRules.prepareConditionalAccessPolicy(&body, tenant: tenant, tx: tx)
        case .namedLocation:
            try PolicyRules.prepareNamedLocation(&body, type: PolicyRules.schemaEntity(kind: kind, body: fields, current: nil))
        case .oauth2PermissionGrant: try await PolicyRules.prepareGrant(&body, tenant: tenant, tx: tx)
        case .domain: try await prepareDomain(&body, tenant: tenant, tx: tx)
        default: break
        }
        return body
    }

    /// `POST /domains`: a domain is added unverified (verification is a manual step here); it cannot hold users
    /// until verified. Its id is its name.
    static func prepareDomain(_ body: inout [String: JSONValue], tenant: String, tx: any DirectoryTransaction) async throws {
        guard let name = body["id"]?.stringValue, TenantProvisioner.isValidDomain(name) else {
            throw DirectoryError.badRequest("Property 'id' must be a domain name, such as contoso.com.")
        }
        guard try await tx.object(tenant: tenant, id: name) == nil else {
            throw DirectoryError.badRequest("Another object with the same value for property id already exists.")
        }
        // What Microsoft's example response shows for a domain just added.
        body["authenticationType"] = body["authenticationType"] ?? "Managed"
        body["availabilityStatus"] = .null
        body["isAdminManaged"] = true
        body["isDefault"] = false
        body["isInitial"] = false
        body["isRoot"] = true
        body["isVerified"] = false
        body["passwordNotificationWindowInDays"] = body["passwordNotificationWindowInDays"] ?? .null
        body["passwordValidityPeriodInDays"] = body["passwordValidityPeriodInDays"] ?? .null
        body["supportedServices"] = body["supportedServices"] ?? []
        body["state"] = .null
    }

    static func prepareUpdate(current: StoredObject, patch: [String: JSONValue], tx: any DirectoryTransaction,
                              now: String, allowReadOnly: Bool) async throws -> [String: JSONValue] {
        if !allowReadOnly {
            for key in patch.keys where readOnly[current.kind]?.contains(key) == true {
                if key == "passwordCredentials" {
                    throw DirectoryError.badRequest("Updates to passwordCredentials are not supported. Use addPassword and removePassword.")
                }
                throw DirectoryError.badRequest("Property '\(key)' is read-only and cannot be set.")
            }
            if current.body["onPremisesSyncEnabled"] == .bool(true) {
                for key in patch.keys where UserRules.syncedProperties.contains(key) {
                    throw DirectoryError.badRequest(
                        "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects currently undergoing migration.")
                }
            }
        }
        for name in required[current.kind] ?? [] where patch[name] == .null {
            throw DirectoryError.badRequest("Property '\(name)' cannot be null.")
        }
        var body = current.body
        for (key, value) in patch {
            // A Conditional Access policy's complex values merge (Microsoft's update example sends only
            // `conditions.signInRiskLevels`); elsewhere a complex value is replaced whole, as Graph does.
            body[key] = current.kind == .conditionalAccessPolicy ? merged(body[key], value) : value
        }
        switch current.kind {
        case .user: try await UserRules.prepare(&body, tenant: current.tenant, tx: tx, isCreate: false)
        case .application:
            try ApplicationRules.checkKeyCredentials(&body, now: now)
            try ApplicationRules.checkLogoutURLs(body)
        case .conditionalAccessPolicy:
            try await PolicyRules.prepareConditionalAccessPolicy(&body, tenant: current.tenant, tx: tx)
            body["modifiedDateTime"] = .string(now)
        case .namedLocation:
            try PolicyRules.prepareNamedLocation(&body, type: PolicyRules.schemaEntity(kind: .namedLocation, body: [:], current: current))
            body["modifiedDateTime"] = .string(now)
        default: break
        }
        return body
    }

    /// `patch` over `base`: objects merge member by member, anything else (arrays, scalars, null) replaces.
    static func merged(_ base: JSONValue?, _ patch: JSONValue) -> JSONValue {
        guard case .object(var out)? = base, case .object(let changes) = patch else { return patch }
        for (key, value) in changes { out[key] = merged(out[key], value) }
        return .object(out)
    }

    /// The keys that must be unique in the tenant for this object.
    static func uniqueKeys(of object: StoredObject) -> [UniqueKey] {
        var keys: [UniqueKey] = []
        let body = object.body
        func add(_ name: String, _ property: String) {
            if let value = body[property]?.stringValue, !value.isEmpty { keys.append(UniqueKey(name, value)) }
        }
        switch object.kind {
        case .user:
            add("userPrincipalName", "userPrincipalName")
            add("onPremisesImmutableId", "onPremisesImmutableId")
            for address in body["proxyAddresses"]?.arrayValue ?? [] {
                if let value = address.stringValue { keys.append(UniqueKey("proxyAddresses", value)) }
            }
        case .group:
            for address in body["proxyAddresses"]?.arrayValue ?? [] {
                if let value = address.stringValue { keys.append(UniqueKey("proxyAddresses", value)) }
            }
            add("onPremisesSecurityIdentifier", "onPremisesSecurityIdentifier")
        case .application:
            add("appId", "appId")
            for uri in body["identifierUris"]?.arrayValue ?? [] {
                if let value = uri.stringValue { keys.append(UniqueKey("identifierUris", value)) }
            }
        case .servicePrincipal:
            add("servicePrincipal:appId", "appId")
        case .device:
            add("deviceId", "deviceId")
        case .appRoleAssignment:
            if let p = body["principalId"]?.stringValue, let r = body["resourceId"]?.stringValue,
               let a = body["appRoleId"]?.stringValue {
                keys.append(UniqueKey("appRoleAssignment", "\(p)|\(r)|\(a)"))
            }
        case .roleAssignment:
            if let p = body["principalId"]?.stringValue, let r = body["roleDefinitionId"]?.stringValue {
                keys.append(UniqueKey("roleAssignment", "\(p)|\(r)|\(body["directoryScopeId"]?.stringValue ?? "/")"))
            }
        case .oauth2PermissionGrant:
            if let c = body["clientId"]?.stringValue, let r = body["resourceId"]?.stringValue {
                keys.append(UniqueKey("oauth2PermissionGrant", "\(c)|\(r)|\(body["principalId"]?.stringValue ?? "AllPrincipals")"))
            }
        default: break
        }
        return keys
    }

    static func checkDeletable(_ object: StoredObject) throws(DirectoryError) {
        if object.kind == .servicePrincipal, object.body["appId"]?.stringValue == GraphPermissions.graphAppId {
            throw DirectoryError(.accessDenied, "The Microsoft Graph service principal cannot be deleted.")
        }
        if object.kind == .organization {
            throw DirectoryError(.methodNotAllowed, "The organization cannot be deleted.")
        }
    }

    /// A value as audit logs show it: JSON text.
    static func auditValue(_ value: JSONValue?) -> String {
        guard let value else { return "" }
        if case .object(let o) = value, o.keys.contains(where: { $0.hasPrefix("_") }) { return "[redacted]" }
        return value.serialized
    }
}

extension DirectoryService {
    /// A Conditional Access policy as a PATCH would leave it: its complex values merged member by member, as
    /// ``update(tenant:id:kind:patch:actor:ifMatch:allowReadOnly:)`` merges them.
    public static func conditionalAccessPolicy(_ current: [String: JSONValue], patchedWith patch: [String: JSONValue]) -> [String: JSONValue] {
        var body = current
        for (key, value) in patch { body[key] = DirectoryRules.merged(body[key], value) }
        return body
    }
}
