import Foundation

extension ObjectKind {
    /// A Conditional Access policy (`/identity/conditionalAccess/policies`).
    public static let conditionalAccessPolicy = ObjectKind(rawValue: "conditionalAccessPolicy")
    /// A named location, IP ranges or countries (`/identity/conditionalAccess/namedLocations`); its body keeps its
    /// derived type in `@odata.type`.
    public static let namedLocation = ObjectKind(rawValue: "namedLocation")
    /// The tenant's authorization policy (one object; `/policies/authorizationPolicy`).
    public static let authorizationPolicy = ObjectKind(rawValue: "authorizationPolicy")
    /// A delegated permission grant (`/oauth2PermissionGrants`).
    public static let oauth2PermissionGrant = ObjectKind(rawValue: "oAuth2PermissionGrant")
}

/// The rules of Conditional Access policies, named locations, the authorization policy and delegated permission
/// grants, as Entra applies them when they are written.
enum PolicyRules {
    static let namedLocationTypes = ["ipNamedLocation", "countryNamedLocation"]
    /// Entra's built-in authentication strengths by id, with their names: the decision engine's own
    /// (MFA, passwordless MFA, phishing-resistant MFA).
    static let builtInAuthenticationStrengths: [String: String] = AuthenticationStrength.builtIns.mapValues(\.displayName)
    /// The three guest user roles `guestUserRoleId` may name (User, Guest User, Restricted Guest User).
    static let guestRoles = ["a0b1b346-4d3e-4e8b-98f8-753987be4970", "10dae51f-b6af-4016-8d66-8c2a99b929b3",
                             "2af84b1e-32c8-42b7-82bc-daa82404023b"]

    /// The schema entity a body of `kind` is checked against: a named location's derived type, named by
    /// `@odata.type` (required when one is created; when updated it must be the stored type, if given).
    static func schemaEntity(kind: ObjectKind, body: [String: JSONValue], current: StoredObject?) throws(DirectoryError) -> String {
        guard kind == .namedLocation else { return kind.rawValue }
        let stored = current?.body["@odata.type"]?.stringValue.map(shortType)
        guard let given = body["@odata.type"]?.stringValue.map(shortType) else {
            if let stored { return stored }
            throw DirectoryError.badRequest("A named location needs '@odata.type': #microsoft.graph.ipNamedLocation or #microsoft.graph.countryNamedLocation.")
        }
        guard namedLocationTypes.contains(given) else {
            throw DirectoryError.badRequest("Invalid @odata.type '\(given)' for a named location: use #microsoft.graph.ipNamedLocation or #microsoft.graph.countryNamedLocation.")
        }
        if let stored, stored != given {
            throw DirectoryError.badRequest("The type of a named location cannot be changed (it is \(stored)).")
        }
        return given
    }

    static func shortType(_ type: String) -> String { type.replacingPrefix("#microsoft.graph.").replacingPrefix("microsoft.graph.") }

    // MARK: Conditional Access policies

    static func prepareConditionalAccessPolicy(_ body: inout [String: JSONValue], tenant: String, tx: any DirectoryTransaction) async throws {
        guard let name = body["displayName"]?.stringValue, !name.trimmed.isEmpty else {
            throw DirectoryError.badRequest("Property 'displayName' is required and cannot be empty.")
        }
        guard let conditions = body["conditions"]?.objectValue else { throw DirectoryError.badRequest("Property 'conditions' is required.") }
        guard let users = conditions["users"]?.objectValue else {
            throw DirectoryError.badRequest("Property 'conditions.users' is required: which users the policy applies to.")
        }
        guard let applications = conditions["applications"]?.objectValue else {
            throw DirectoryError.badRequest("Property 'conditions.applications' is required: which applications or user actions the policy applies to.")
        }
        func strings(_ object: [String: JSONValue], _ key: String) -> [String] { object[key]?.arrayValue?.compactMap(\.stringValue) ?? [] }
        let includesSomeone = !strings(users, "includeUsers").isEmpty || !strings(users, "includeGroups").isEmpty
            || !strings(users, "includeRoles").isEmpty || (users["includeGuestsOrExternalUsers"].map { $0 != .null } ?? false)
        guard includesSomeone else {
            throw DirectoryError.badRequest("Property 'conditions.users' must include users, groups, roles or guests (use \"All\" for everyone, \"None\" for no one).")
        }
        guard !strings(applications, "includeApplications").isEmpty || !strings(applications, "includeUserActions").isEmpty
            || !strings(applications, "includeAuthenticationContextClassReferences").isEmpty
        else {
            throw DirectoryError.badRequest("Property 'conditions.applications' must include applications, user actions or authentication contexts (use \"All\" for every application).")
        }
        // Every object a policy names must exist, as Entra checks.
        for key in ["includeUsers", "excludeUsers"] {
            for id in strings(users, key) where !["All", "None", "GuestsOrExternalUsers"].contains(id) {
                try await requireObject(id, kind: .user, property: "conditions.users.\(key)", tenant: tenant, tx: tx)
            }
        }
        for key in ["includeGroups", "excludeGroups"] {
            for id in strings(users, key) { try await requireObject(id, kind: .group, property: "conditions.users.\(key)", tenant: tenant, tx: tx) }
        }
        for key in ["includeRoles", "excludeRoles"] {
            for id in strings(users, key) where BuiltInRoles.byTemplateId(id) == nil {
                throw DirectoryError.badRequest("Invalid value '\(id)' in conditions.users.\(key): no directory role has that template id.")
            }
        }
        for key in ["includeApplications", "excludeApplications"] {
            for id in strings(applications, key) where !["All", "None", "Office365", "MicrosoftAdminPortals"].contains(id) && !Identifier.isGUID(id) {
                throw DirectoryError.badRequest("Invalid value '\(id)' in conditions.applications.\(key): use an application id, \"All\", \"None\", \"Office365\" or \"MicrosoftAdminPortals\".")
            }
        }
        // What the decision engine reads must be readable: a device filter in Entra's grammar, user actions it knows.
        if let devices = conditions["devices"]?.objectValue, let filter = devices["deviceFilter"]?.objectValue {
            guard let mode = filter["mode"]?.stringValue, mode == "include" || mode == "exclude" else {
                throw DirectoryError.badRequest("Property 'conditions.devices.deviceFilter.mode' must be \"include\" or \"exclude\".")
            }
            guard let rule = filter["rule"]?.stringValue, !rule.trimmed.isEmpty else {
                throw DirectoryError.badRequest("Property 'conditions.devices.deviceFilter.rule' is required.")
            }
            do { _ = try DeviceFilter(rule: rule) } catch {
                throw DirectoryError.badRequest("Invalid 'conditions.devices.deviceFilter.rule': \(error.description)")
            }
        }
        for action in strings(applications, "includeUserActions")
        where !["urn:user:registersecurityinfo", "urn:user:registerdevice"].contains(action.lowercased()) {
            throw DirectoryError.badRequest("Invalid value '\(action)' in conditions.applications.includeUserActions: use urn:user:registersecurityinfo or urn:user:registerdevice.")
        }
        if let locations = conditions["locations"]?.objectValue {
            for key in ["includeLocations", "excludeLocations"] {
                for id in strings(locations, key) where !["All", "AllTrusted"].contains(id) {
                    try await requireObject(id, kind: .namedLocation, property: "conditions.locations.\(key)", tenant: tenant, tx: tx)
                }
            }
        }
        let grant = body["grantControls"]?.objectValue
        let session = body["sessionControls"]?.objectValue
        guard grant != nil || session != nil else {
            throw DirectoryError.badRequest("A policy needs grant controls, session controls or both.")
        }
        if var grant {
            let controls = strings(grant, "builtInControls")
            let strength = grant["authenticationStrength"].flatMap { $0 == .null ? nil : $0 }
            guard !controls.isEmpty || strength != nil || !strings(grant, "termsOfUse").isEmpty || !strings(grant, "customAuthenticationFactors").isEmpty else {
                throw DirectoryError.badRequest("Property 'grantControls' must name at least one control (builtInControls, authenticationStrength or termsOfUse).")
            }
            if controls.contains("block"), controls.count > 1 || strength != nil {
                throw DirectoryError.badRequest("The 'block' control cannot be combined with other grant controls.")
            }
            guard let op = grant["operator"]?.stringValue, op == "AND" || op == "OR" else {
                throw DirectoryError.badRequest("Property 'grantControls.operator' must be \"AND\" or \"OR\".")
            }
            if let strength {
                grant["authenticationStrength"] = try await authenticationStrengthReference(strength, tenant: tenant, tx: tx)
                body["grantControls"] = .object(grant)
            }
        }
    }

    /// The strength a policy's `grantControls.authenticationStrength` names by id (a built-in or one of the tenant's
    /// custom ones), as the policy shows it. The strength's other properties may be given back as read (they are
    /// ignored: the id decides); anything else is refused.
    static func authenticationStrengthReference(_ strength: JSONValue, tenant: String, tx: any DirectoryReader) async throws -> JSONValue {
        let shown: Set<String> = ["id", "displayName", "description", "policyType", "requirementsSatisfied", "allowedCombinations",
                                  "createdDateTime", "modifiedDateTime", "combinationConfigurations"]
        guard let members = strength.objectValue, members.keys.allSatisfy({ shown.contains($0) || $0.hasPrefix("@odata.") }) else {
            throw DirectoryError.badRequest("Invalid 'grantControls.authenticationStrength': name an authentication strength policy by its 'id'.")
        }
        guard let id = members["id"]?.stringValue?.lowercased(), !id.isEmpty else {
            throw DirectoryError.badRequest("Invalid 'grantControls.authenticationStrength': 'id' is required.")
        }
        if let builtIn = AuthenticationStrengthRules.builtIn(id) { return AuthenticationStrengthRules.reference(builtIn) }
        guard Identifier.isGUID(id), let custom = try await tx.object(tenant: tenant, id: id), custom.kind == .authenticationStrengthPolicy else {
            throw DirectoryError.badRequest("Invalid 'grantControls.authenticationStrength': '\(id)' is neither a built-in authentication strength (\(builtInAuthenticationStrengths.keys.sorted().joined(separator: ", "))) nor one of the tenant's custom ones (listed at /identity/conditionalAccess/authenticationStrength/policies).")
        }
        return AuthenticationStrengthRules.reference(custom.body)
    }

    static func requireObject(_ id: String, kind: ObjectKind, property: String, tenant: String, tx: any DirectoryReader) async throws {
        guard Identifier.isGUID(id), let object = try await tx.object(tenant: tenant, id: id.lowercased()), object.kind == kind,
              object.deletedAt == nil
        else {
            throw DirectoryError.badRequest("Invalid value '\(id)' in \(property): no \(kind.auditNoun) has that id.")
        }
    }

    // MARK: Named locations

    static func prepareNamedLocation(_ body: inout [String: JSONValue], type: String) throws(DirectoryError) {
        guard let name = body["displayName"]?.stringValue, !name.trimmed.isEmpty else {
            throw DirectoryError.badRequest("Property 'displayName' is required and cannot be empty.")
        }
        body["@odata.type"] = .string("#microsoft.graph.\(type)")
        if type == "ipNamedLocation" {
            guard let ranges = body["ipRanges"]?.arrayValue, !ranges.isEmpty else {
                throw DirectoryError.badRequest("Property 'ipRanges' is required: at least one IPv4 or IPv6 range in CIDR notation.")
            }
            var normalized: [JSONValue] = []
            for range in ranges {
                guard let cidr = range["cidrAddress"]?.stringValue, let family = cidrFamily(cidr) else {
                    throw DirectoryError.badRequest("Invalid value '\(range["cidrAddress"]?.stringValue ?? range.serialized)' in ipRanges: expected an address range in CIDR notation, such as 203.0.113.0/24 or 2001:db8::/48.")
                }
                let expected = family == 4 ? "#microsoft.graph.iPv4CidrRange" : "#microsoft.graph.iPv6CidrRange"
                if let declared = range["@odata.type"]?.stringValue, shortType(declared) != shortType(expected) {
                    throw DirectoryError.badRequest("The range '\(cidr)' is an IPv\(family) range but is declared \(declared).")
                }
                normalized.append(["@odata.type": .string(expected), "cidrAddress": .string(cidr)])
            }
            body["ipRanges"] = .array(normalized)
            body["isTrusted"] = body["isTrusted"].flatMap { $0 == .null ? nil : $0 } ?? false
        } else {
            guard let countries = body["countriesAndRegions"]?.arrayValue, !countries.isEmpty else {
                throw DirectoryError.badRequest("Property 'countriesAndRegions' is required: at least one two-letter ISO 3166 country or region code.")
            }
            for country in countries {
                guard let code = country.stringValue, code.count == 2, code.allSatisfy({ $0.isASCII && $0.isUppercase }) else {
                    throw DirectoryError.badRequest("Invalid value '\(country.stringValue ?? country.serialized)' in countriesAndRegions: expected a two-letter ISO 3166 code such as \"NZ\".")
                }
            }
            body["countryLookupMethod"] = body["countryLookupMethod"].flatMap { $0 == .null ? nil : $0 } ?? "clientIpAddress"
            body["includeUnknownCountriesAndRegions"] = body["includeUnknownCountriesAndRegions"].flatMap { $0 == .null ? nil : $0 } ?? false
        }
    }

    /// 4 or 6 for a valid CIDR range (`address/prefix`), nil otherwise.
    /// 4 or 6 for a CIDR range the decision engine can read, nil for anything else.
    static func cidrFamily(_ text: String) -> Int? {
        guard IPAddressRange(cidr: text) != nil else { return nil }
        return text.contains(":") ? 6 : 4
    }

    /// Refuses to delete a named location a Conditional Access policy still uses.
    static func checkUnused(location: StoredObject, tx: any DirectoryReader) async throws {
        let policies = try await tx.query(ObjectQuery(tenant: location.tenant, kinds: [.conditionalAccessPolicy]))
        for policy in policies {
            let locations = policy.body["conditions"]?["locations"]
            let named = ["includeLocations", "excludeLocations"].flatMap { locations?[$0]?.arrayValue?.compactMap(\.stringValue) ?? [] }
            if named.contains(where: { $0.lowercased() == location.id }) {
                throw DirectoryError.badRequest("The named location '\(location.body["displayName"]?.stringValue ?? location.id)' is used by the Conditional Access policy '\(policy.body["displayName"]?.stringValue ?? policy.id)'; remove it from the policy first.")
            }
        }
    }

    // MARK: Authorization policy

    /// The authorization policy a tenant has until it is changed (Entra's defaults).
    static let authorizationPolicyDefaults: [String: JSONValue] = [
        "displayName": "Authorization Policy",
        "description": "Used to manage authorization related settings across the company.",
        "allowInvitesFrom": "everyone", "allowedToSignUpEmailBasedSubscriptions": true, "allowedToUseSSPR": true,
        "allowEmailVerifiedUsersToJoinOrganization": false, "allowUserConsentForRiskyApps": false, "blockMsolPowerShell": false,
        "guestUserRoleId": "10dae51f-b6af-4016-8d66-8c2a99b929b3",
        "defaultUserRolePermissions": [
            "allowedToCreateApps": true, "allowedToCreateSecurityGroups": true, "allowedToCreateTenants": true,
            "allowedToReadBitlockerKeysForOwnedDevice": true, "allowedToReadOtherUsers": true,
            "permissionGrantPoliciesAssigned": ["ManagePermissionGrantsForSelf.microsoft-user-default-legacy"],
        ],
    ]

    static func patchedAuthorizationPolicy(_ current: [String: JSONValue], with patch: [String: JSONValue]) throws(DirectoryError) -> [String: JSONValue] {
        var body = current
        for (key, value) in patch where !key.hasPrefix("@odata") {
            if ["id", "displayName", "description", "deletedDateTime"].contains(key) {
                throw DirectoryError.badRequest("Property '\(key)' is read-only and cannot be set.")
            }
            if value == .null, key != "allowUserConsentForRiskyApps", key != "blockMsolPowerShell", key != "allowInvitesFrom" {
                throw DirectoryError.badRequest("Property '\(key)' cannot be null.")
            }
            if key == "defaultUserRolePermissions", case .object(let given) = value, case .object(var merged)? = body[key] {
                for (name, member) in given { merged[name] = member }
                body[key] = .object(merged)
            } else {
                body[key] = value
            }
        }
        if let role = body["guestUserRoleId"]?.stringValue?.lowercased() {
            guard guestRoles.contains(role) else {
                throw DirectoryError.badRequest("Invalid value for 'guestUserRoleId': use \(guestRoles.joined(separator: ", ")) (User, Guest User, Restricted Guest User).")
            }
            body["guestUserRoleId"] = .string(role)
        }
        return body
    }

    // MARK: Delegated permission grants

    static func prepareGrant(_ body: inout [String: JSONValue], tenant: String, tx: any DirectoryTransaction) async throws {
        for (property, label) in [("clientId", "client"), ("resourceId", "resource")] {
            guard let id = body[property]?.stringValue, Identifier.isGUID(id),
                  let object = try await tx.object(tenant: tenant, id: id.lowercased()), object.kind == .servicePrincipal, object.deletedAt == nil
            else { throw DirectoryError.badRequest("Invalid \(property): no service principal has that id (the \(label) must be a service principal's object id).") }
            body[property] = .string(id.lowercased())
        }
        switch body["consentType"]?.stringValue {
        case "AllPrincipals":
            guard body["principalId"] == nil || body["principalId"] == .null else {
                throw DirectoryError.badRequest("principalId must be null when consentType is AllPrincipals.")
            }
            body["principalId"] = .null
        case "Principal":
            guard let id = body["principalId"]?.stringValue, Identifier.isGUID(id),
                  let user = try await tx.object(tenant: tenant, id: id.lowercased()), user.kind == .user, user.deletedAt == nil
            else { throw DirectoryError.badRequest("Invalid principalId: consentType Principal needs the id of a user.") }
            body["principalId"] = .string(id.lowercased())
        default:
            throw DirectoryError.badRequest("Property 'consentType' must be \"AllPrincipals\" or \"Principal\".")
        }
        let scopes = (body["scope"]?.stringValue ?? "").split(separator: " ").map(String.init)
        body["scope"] = .string(scopes.joined(separator: " "))
    }
}
