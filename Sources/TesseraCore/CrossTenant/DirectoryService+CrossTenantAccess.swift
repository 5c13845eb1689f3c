extension ObjectKind {
    /// The tenant's cross-tenant access policy with its default configuration (one object).
    public static let crossTenantAccessPolicy = ObjectKind(rawValue: "crossTenantAccessPolicy")
    /// A partner's configuration in the cross-tenant access policy, with its identity synchronization policy.
    public static let crossTenantAccessPolicyPartner = ObjectKind(rawValue: "crossTenantAccessPolicyConfigurationPartner")
}

/// `/policies/crossTenantAccessPolicy`: the policy, its default configuration and partner configurations, each write
/// validated, change-logged (audit, backup) and all or nothing.
extension DirectoryService {
    static let crossTenantAccessPolicyID = "crosstenantaccesspolicy"
    static let allowedCloudEndpoints: Set<String> = ["microsoftonline.com", "microsoftonline.us", "partner.microsoftonline.cn"]

    /// The object id of `partner`'s configuration in a tenant.
    public static func crossTenantPartnerObjectID(_ partner: String) -> String { "crosstenantaccesspolicy-partner-\(partner.lowercased())" }

    /// The policy's own members (`displayName`, `allowedCloudEndpoints`), as Graph shows them.
    public func crossTenantAccessPolicy(tenant: String) async throws -> [String: JSONValue] {
        let stored = try await store.read { tx in try await tx.object(tenant: tenant, id: Self.crossTenantAccessPolicyID) }
        return ["id": "crossTenantAccessPolicy", "displayName": stored?.body["displayName"] ?? "CrossTenantAccessPolicy",
                "allowedCloudEndpoints": stored?.body["allowedCloudEndpoints"] ?? [], "deletedDateTime": nil]
    }

    /// PATCH of the policy: `displayName` and `allowedCloudEndpoints` (Microsoft's three clouds).
    public func updateCrossTenantAccessPolicy(tenant: String, patch: [String: JSONValue], actor: Actor) async throws {
        _ = try CrossTenantJSON.object(.object(patch), "crossTenantAccessPolicy", members: ["displayName", "allowedCloudEndpoints", "id"])
        if let name = patch["displayName"] {
            guard let text = name.stringValue, !text.trimmed.isEmpty else { throw DirectoryError.badRequest("Property 'displayName' must be a non-empty string.") }
        }
        if let endpoints = patch["allowedCloudEndpoints"] {
            guard let list = endpoints.arrayValue, list.allSatisfy({ $0.stringValue.map(Self.allowedCloudEndpoints.contains) == true }) else {
                throw DirectoryError.badRequest("Property 'allowedCloudEndpoints' must list only microsoftonline.com, microsoftonline.us or partner.microsoftonline.cn.")
            }
        }
        try await writePolicy(tenant: tenant, actor: actor, activity: "Update cross-tenant access policy") { body in
            for key in ["displayName", "allowedCloudEndpoints"] where patch[key] != nil { body[key] = patch[key] }
        }
    }

    /// The default configuration, and whether it is the system default (never written, or reset).
    public func crossTenantDefault(tenant: String) async throws -> (configuration: CrossTenantAccessConfiguration, isServiceDefault: Bool) {
        try await store.read { tx in try await self.crossTenantDefault(tenant: tenant, tx: tx) }
    }

    func crossTenantDefault(tenant: String, tx: any DirectoryReader) async throws -> (configuration: CrossTenantAccessConfiguration, isServiceDefault: Bool) {
        guard let stored = try await tx.object(tenant: tenant, id: Self.crossTenantAccessPolicyID)?.body["default"]?.objectValue else {
            return (.systemDefault, true)
        }
        var configuration = CrossTenantAccessConfiguration()
        try configuration.apply(stored)
        // Written before Tessera had tenant restrictions: the system default's.
        if configuration.tenantRestrictions == nil { configuration.tenantRestrictions = CrossTenantAccessConfiguration.systemDefault.tenantRestrictions }
        return (configuration, false)
    }

    /// PATCH of the default configuration. Its automatic consent settings are always off and cannot be written; its
    /// inbound users can only be everyone (no partner's users are known here).
    public func updateCrossTenantDefault(tenant: String, patch: [String: JSONValue], actor: Actor) async throws {
        let members = Set(CrossTenantAccessConfiguration.b2bNames + ["inboundTrust", "invitationRedemptionIdentityProviderConfiguration", "id",
                                                                     "tenantRestrictions"])
        _ = try CrossTenantJSON.object(.object(patch), "crossTenantAccessPolicyConfigurationDefault",
                                       members: members.union(["automaticUserConsentSettings", "isServiceDefault"]))
        for key in ["automaticUserConsentSettings", "isServiceDefault"] where patch[key] != nil {
            throw DirectoryError.badRequest("Property '\(key)' of the default configuration is read-only.")
        }
        try await writePolicy(tenant: tenant, actor: actor, activity: "Update the company default cross-tenant access setting") { body in
            var configuration = CrossTenantAccessConfiguration.systemDefault
            if let stored = body["default"]?.objectValue { configuration = CrossTenantAccessConfiguration(); try configuration.apply(stored) }
            try configuration.apply(patch)
            for name in CrossTenantAccessConfiguration.b2bNames
            where configuration[b2b: name]?.usersAndGroups == nil || configuration[b2b: name]?.applications == nil {
                throw DirectoryError.badRequest("Property '\(name)' of the default configuration needs both 'usersAndGroups' and 'applications'.")
            }
            for name in ["b2bCollaborationInbound", "b2bDirectConnectInbound"] {
                let targets = configuration[b2b: name]?.usersAndGroups?.targets ?? []
                guard targets.allSatisfy({ $0.target == CrossTenantTargetConfiguration.allUsers }) else {
                    throw DirectoryError.badRequest("Property '\(name).usersAndGroups' of the default configuration can only target AllUsers: name external users and groups in a partner configuration.")
                }
            }
            if patch["inboundTrust"] == .null { configuration.inboundTrust = CrossTenantAccessConfiguration.systemDefault.inboundTrust }
            try Self.checkDefaultTenantRestrictions(&configuration, reset: patch["tenantRestrictions"] == .null)
            configuration.automaticUserConsentSettings = CrossTenantAccessConfiguration.systemDefault.automaticUserConsentSettings
            var stored = configuration.members
            if let idp = patch["invitationRedemptionIdentityProviderConfiguration"] {
                stored["invitationRedemptionIdentityProviderConfiguration"] = try Self.redemptionConfiguration(idp)
            } else if let kept = body["default"]?["invitationRedemptionIdentityProviderConfiguration"] {
                stored["invitationRedemptionIdentityProviderConfiguration"] = kept
            }
            body["default"] = .object(stored)
        }
    }

    /// The default's tenant restrictions: both halves (a default inherits from nothing), users only as everyone (no
    /// partner's users are known here); `null` puts back the system default, and a default stored before Tessera
    /// had them gets the system default's.
    static func checkDefaultTenantRestrictions(_ configuration: inout CrossTenantAccessConfiguration, reset: Bool) throws(DirectoryError) {
        guard let restrictions = configuration.tenantRestrictions, !reset else {
            configuration.tenantRestrictions = CrossTenantAccessConfiguration.systemDefault.tenantRestrictions
            return
        }
        guard let people = restrictions.setting.usersAndGroups, restrictions.setting.applications != nil else {
            throw DirectoryError.badRequest("Property 'tenantRestrictions' of the default configuration needs both 'usersAndGroups' and 'applications'.")
        }
        guard people.targets.allSatisfy({ $0.target == CrossTenantTargetConfiguration.allUsers }) else {
            throw DirectoryError.badRequest("Property 'tenantRestrictions.usersAndGroups' of the default configuration can only target AllUsers: name external users and groups in a partner configuration.")
        }
    }

    /// `resetToSystemDefault`: the default configuration goes back to Entra's.
    public func resetCrossTenantDefault(tenant: String, actor: Actor) async throws {
        try await writePolicy(tenant: tenant, actor: actor, activity: "Reset the cross-tenant access default setting") { body in
            body["default"] = nil
        }
    }

    /// The default configuration's `invitationRedemptionIdentityProviderConfiguration`: as written, or Entra's.
    public func crossTenantDefaultRedemption(tenant: String) async throws -> JSONValue {
        let stored = try await store.read { tx in try await tx.object(tenant: tenant, id: Self.crossTenantAccessPolicyID) }
        return stored?.body["default"]?["invitationRedemptionIdentityProviderConfiguration"] ?? Self.defaultRedemptionConfiguration
    }

    /// Entra's default order of identity providers for redeeming an invitation.
    public static let defaultRedemptionConfiguration: JSONValue = [
        "primaryIdentityProviderPrecedenceOrder": ["azureActiveDirectory", "externalFederation", "socialIdentityProviders"],
        "fallbackIdentityProvider": "defaultConfiguredIdp",
    ]

    static func redemptionConfiguration(_ value: JSONValue) throws(DirectoryError) -> JSONValue {
        let path = "invitationRedemptionIdentityProviderConfiguration"
        if value == .null { return defaultRedemptionConfiguration }
        let object = try CrossTenantJSON.object(value, path, members: ["primaryIdentityProviderPrecedenceOrder", "fallbackIdentityProvider"])
        let providers: Set<String> = ["azureActiveDirectory", "externalFederation", "socialIdentityProviders", "emailOneTimePasscode",
                                      "microsoftAccount", "defaultConfiguredIdp"]
        let order = object["primaryIdentityProviderPrecedenceOrder"]?.arrayValue ?? []
        guard order.allSatisfy({ $0.stringValue.map(providers.contains) == true }) else {
            throw DirectoryError.badRequest("Property '\(path).primaryIdentityProviderPrecedenceOrder' lists a value that is not a b2bIdentityProvidersType.")
        }
        if let fallback = object["fallbackIdentityProvider"], fallback != .null, fallback.stringValue.map(providers.contains) != true {
            throw DirectoryError.badRequest("Property '\(path).fallbackIdentityProvider' is not a b2bIdentityProvidersType.")
        }
        return .object(object.filter { !$0.key.hasPrefix("@odata.") })
    }

    /// Writes the policy object through `change`, change-logged as `activity`.
    func writePolicy(tenant: String, actor: Actor, activity: String,
                     _ change: @escaping @Sendable (inout [String: JSONValue]) throws -> Void) async throws {
        let now = self.now
        try await write(tenant) { tx in
            let id = Self.crossTenantAccessPolicyID
            let current = try await tx.object(tenant: tenant, id: id)
            var body = current?.body ?? ["id": "crossTenantAccessPolicy", "displayName": "CrossTenantAccessPolicy", "allowedCloudEndpoints": []]
            try change(&body)
            let before = current?.body ?? [:]
            try await tx.put(StoredObject(tenant: tenant, id: id, kind: .crossTenantAccessPolicy, body: body), over: current)
            try await tx.record(ChangeRecord(
                tenant: tenant, objectId: id, kind: .crossTenantAccessPolicy, operation: "update", activity: activity,
                actor: actor.initiatedBy, at: now,
                details: ["displayName": "CrossTenantAccessPolicy", "modifiedProperties": .array(Self.modified(before, body))]))
        }
    }

    /// `modifiedProperties` of an audit entry: each top-level member whose value changed.
    static func modified(_ before: [String: JSONValue], _ after: [String: JSONValue]) -> [JSONValue] {
        Set(before.keys).union(after.keys).sorted().filter { before[$0] != after[$0] }.map { key in
            ["displayName": .string(key), "oldValue": .string(DirectoryRules.auditValue(before[key])),
             "newValue": .string(DirectoryRules.auditValue(after[key]))]
        }
    }

    /// The settings that apply between `tenant` and `partner`: `tenant`'s default and its configuration for `partner`.
    public func crossTenantAccess(tenant: String, partner: String) async throws -> CrossTenantAccess {
        try await store.read { tx in try await self.crossTenantAccess(tenant: tenant, partner: partner, tx: tx) }
    }

    func crossTenantAccess(tenant: String, partner: String, tx: any DirectoryReader) async throws -> CrossTenantAccess {
        let defaults = try await crossTenantDefault(tenant: tenant, tx: tx).configuration
        let stored = try await tx.object(tenant: tenant, id: Self.crossTenantPartnerObjectID(partner))
        return CrossTenantAccess(defaults: defaults, partner: try stored.map { try CrossTenantPartnerConfiguration(stored: $0.body) })
    }
}
