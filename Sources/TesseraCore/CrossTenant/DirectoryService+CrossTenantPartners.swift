extension CrossTenantPartnerConfiguration {
    /// Reads a stored partner configuration.
    public init(stored body: [String: JSONValue]) throws {
        guard let tenantID = body["tenantId"]?.stringValue else { throw DirectoryError.badRequest("A stored partner configuration has no tenantId.") }
        var settings = CrossTenantAccessConfiguration()
        try settings.apply(body.filter { $0.value != .null })
        let sync = body["identitySynchronization"]?.objectValue.map {
            CrossTenantIdentitySyncPolicy(displayName: $0["displayName"]?.stringValue, isSyncAllowed: $0["userSyncInbound"]?["isSyncAllowed"]?.boolValue)
        }
        self.init(tenantID: tenantID, settings: settings, isServiceProvider: body["isServiceProvider"]?.boolValue,
                  isInMultiTenantOrganization: body["isInMultiTenantOrganization"]?.boolValue, identitySynchronization: sync)
    }

    /// The configuration as stored (Graph's members, and the identity synchronization policy).
    public var stored: [String: JSONValue] {
        var body = graph
        body["identitySynchronization"] = identitySynchronization.map { $0.graph(tenantID: tenantID) } ?? .null
        return body
    }

    /// The configuration as Graph shows it.
    public var graph: [String: JSONValue] {
        var body = settings.members
        body["tenantId"] = .string(tenantID)
        body["isServiceProvider"] = isServiceProvider.map(JSONValue.bool) ?? .null
        body["isInMultiTenantOrganization"] = .bool(isInMultiTenantOrganization ?? false)
        return body
    }
}

extension CrossTenantIdentitySyncPolicy {
    /// Graph's `crossTenantIdentitySyncPolicyPartner`.
    public func graph(tenantID: String) -> JSONValue {
        ["tenantId": .string(tenantID), "displayName": .optional(displayName),
         "userSyncInbound": ["isSyncAllowed": isSyncAllowed.map(JSONValue.bool) ?? .null]]
    }
}

/// Partner configurations (`/policies/crossTenantAccessPolicy/partners`) and their identity synchronization policies.
extension DirectoryService {
    static let partnerMembers: Set<String> = Set(CrossTenantAccessConfiguration.b2bNames).union([
        "inboundTrust", "automaticUserConsentSettings", "isServiceProvider", "isInMultiTenantOrganization", "tenantId",
        "tenantRestrictions", "identitySynchronization",
    ])

    /// Every partner configuration of the tenant, by partner tenant id.
    public func crossTenantPartners(tenant: String) async throws -> [CrossTenantPartnerConfiguration] {
        let rows = try await store.read { tx in try await tx.query(ObjectQuery(tenant: tenant, kinds: [.crossTenantAccessPolicyPartner])) }
        return try rows.filter { $0.deletedAt == nil }.map { try CrossTenantPartnerConfiguration(stored: $0.body) }.sorted { $0.tenantID < $1.tenantID }
    }

    /// One partner's configuration; 404 when the tenant has none for it.
    public func crossTenantPartner(tenant: String, partner: String) async throws -> CrossTenantPartnerConfiguration {
        let id = Self.crossTenantPartnerObjectID(partner)
        guard let stored = try await store.read({ tx in try await tx.object(tenant: tenant, id: id) }) else {
            throw DirectoryError.notFound(partner)
        }
        return try CrossTenantPartnerConfiguration(stored: stored.body)
    }

    /// Creates a partner configuration from Graph's body (`tenantId` required; a tenant cannot be its own partner).
    @discardableResult
    public func createCrossTenantPartner(tenant: String, body: [String: JSONValue], actor: Actor) async throws -> CrossTenantPartnerConfiguration {
        _ = try CrossTenantJSON.object(.object(body), "crossTenantAccessPolicyConfigurationPartner", members: Self.partnerMembers)
        guard let partner = try CrossTenantJSON.string(body["tenantId"], "tenantId"), Identifier.isGUID(partner) else {
            throw DirectoryError.badRequest("Property 'tenantId' is required and must be a tenant id (a GUID).")
        }
        guard partner.lowercased() != tenant.lowercased() else {
            throw DirectoryError.badRequest("A tenant cannot be its own partner: 'tenantId' names this tenant.")
        }
        var configuration = CrossTenantPartnerConfiguration(tenantID: partner)
        try Self.applyPartner(body, to: &configuration)
        let now = self.now, result = configuration
        try await write(tenant) { tx in
            let id = Self.crossTenantPartnerObjectID(partner)
            if try await tx.object(tenant: tenant, id: id) != nil {
                throw DirectoryError(.conflict, "A partner configuration for tenant '\(partner.lowercased())' already exists.")
            }
            try await tx.insert(StoredObject(tenant: tenant, id: id, kind: .crossTenantAccessPolicyPartner, body: result.stored))
            try await tx.record(ChangeRecord(tenant: tenant, objectId: id, kind: .crossTenantAccessPolicyPartner, operation: "create",
                                             activity: "Add a partner to cross-tenant access setting", actor: actor.initiatedBy, at: now,
                                             details: ["displayName": .string(result.tenantID)]))
        }
        return result
    }

    /// PATCH of a partner configuration: each named setting replaced whole, `null` to inherit the default again.
    public func updateCrossTenantPartner(tenant: String, partner: String, patch: [String: JSONValue], actor: Actor) async throws {
        _ = try CrossTenantJSON.object(.object(patch), "crossTenantAccessPolicyConfigurationPartner", members: Self.partnerMembers)
        if let given = patch["tenantId"], given.stringValue?.lowercased() != partner.lowercased() {
            throw DirectoryError.badRequest("Property 'tenantId' is the key of a partner configuration and cannot be changed.")
        }
        try await changePartner(tenant: tenant, partner: partner, actor: actor, activity: "Update a partner cross-tenant access setting") { configuration in
            try Self.applyPartner(patch, to: &configuration)
        }
    }

    /// Deletes a partner configuration; one that makes the partner a member of this tenant's multitenant organization
    /// stays until the partner leaves it.
    public func deleteCrossTenantPartner(tenant: String, partner: String, actor: Actor) async throws {
        let now = self.now
        try await write(tenant) { tx in
            let id = Self.crossTenantPartnerObjectID(partner)
            guard let current = try await tx.object(tenant: tenant, id: id) else { throw DirectoryError.notFound(partner) }
            if current.body["isInMultiTenantOrganization"]?.boolValue == true {
                throw DirectoryError.badRequest("The partner is in this tenant's multitenant organization; remove it from the organization first.")
            }
            try await tx.purge(tenant: tenant, id: id)
            try await tx.record(ChangeRecord(tenant: tenant, objectId: id, kind: .crossTenantAccessPolicyPartner, operation: "delete",
                                             activity: "Delete partner specific cross-tenant access setting", actor: actor.initiatedBy, at: now,
                                             details: ["displayName": .string(partner.lowercased())]))
        }
    }

    /// PUT of `identitySynchronization` (creates or replaces), PATCH (updates the members given), DELETE (nil).
    public func putCrossTenantIdentitySync(tenant: String, partner: String, body: [String: JSONValue]?, merge: Bool, actor: Actor) async throws {
        var policy: CrossTenantIdentitySyncPolicy?
        if let body {
            _ = try CrossTenantJSON.object(.object(body), "crossTenantIdentitySyncPolicyPartner", members: ["displayName", "userSyncInbound", "tenantId"])
            if let given = body["tenantId"], given.stringValue?.lowercased() != partner.lowercased() {
                throw DirectoryError.badRequest("Property 'tenantId' must be the partner's tenant id.")
            }
            let name = try CrossTenantJSON.string(body["displayName"], "displayName")
            var allowed: Bool?
            if let inbound = body["userSyncInbound"], inbound != .null {
                let object = try CrossTenantJSON.object(inbound, "userSyncInbound", members: ["isSyncAllowed"])
                allowed = try CrossTenantJSON.bool(object["isSyncAllowed"], "userSyncInbound.isSyncAllowed")
            }
            policy = CrossTenantIdentitySyncPolicy(displayName: name, isSyncAllowed: allowed)
        }
        let activity = body == nil ? "Delete a partner cross-tenant identity sync setting"
            : merge ? "Update a partner cross-tenant identity sync setting" : "Create a partner cross-tenant identity sync setting"
        let given = policy, keys = Set(body.map { Array($0.keys) } ?? [])
        try await changePartner(tenant: tenant, partner: partner, actor: actor, activity: activity) { configuration in
            guard let given else {
                guard configuration.identitySynchronization != nil else { throw DirectoryError.notFound("identitySynchronization") }
                configuration.identitySynchronization = nil
                return
            }
            guard merge else { configuration.identitySynchronization = given; return }
            guard var current = configuration.identitySynchronization else { throw DirectoryError.notFound("identitySynchronization") }
            if keys.contains("displayName") { current.displayName = given.displayName }
            if keys.contains("userSyncInbound") { current.isSyncAllowed = given.isSyncAllowed }
            configuration.identitySynchronization = current
        }
    }

    static func applyPartner(_ body: [String: JSONValue], to configuration: inout CrossTenantPartnerConfiguration) throws(DirectoryError) {
        for key in ["isInMultiTenantOrganization", "identitySynchronization"] where body[key] != nil {
            let instead = key == "identitySynchronization" ? "PUT it at partners/{tenantId}/identitySynchronization"
                : "it follows the multitenant organization"
            throw DirectoryError.badRequest("Property '\(key)' cannot be written here: \(instead).")
        }
        try configuration.settings.apply(body)
        if body.keys.contains("isServiceProvider") { configuration.isServiceProvider = try CrossTenantJSON.bool(body["isServiceProvider"], "isServiceProvider") }
    }

    /// Reads, changes and writes one partner configuration in a transaction, change-logged as `activity`.
    func changePartner(tenant: String, partner: String, actor: Actor, activity: String,
                       _ change: @escaping @Sendable (inout CrossTenantPartnerConfiguration) throws -> Void) async throws {
        let now = self.now
        try await write(tenant) { tx in
            let id = Self.crossTenantPartnerObjectID(partner)
            guard let current = try await tx.object(tenant: tenant, id: id) else { throw DirectoryError.notFound(partner) }
            var configuration = try CrossTenantPartnerConfiguration(stored: current.body)
            try change(&configuration)
            let body = configuration.stored
            try await tx.put(StoredObject(tenant: tenant, id: id, kind: .crossTenantAccessPolicyPartner, body: body), over: current)
            try await tx.record(ChangeRecord(tenant: tenant, objectId: id, kind: .crossTenantAccessPolicyPartner, operation: "update",
                                             activity: activity, actor: actor.initiatedBy, at: now,
                                             details: ["displayName": .string(partner.lowercased()),
                                                       "modifiedProperties": .array(Self.modified(current.body, body))]))
        }
    }
}
