/// Tenant-wide policies kept as singleton objects, so they are in the change log (audit, backup) like any other
/// write.
extension ObjectKind {
    /// The tenant's authentication methods policy (one object, id `authenticationmethodspolicy`).
    public static let authenticationMethodsPolicy = ObjectKind(rawValue: "authenticationMethodsPolicy")
}

extension DirectoryService {
    /// Object ids are stored in lowercase.
    static let authenticationMethodsPolicyID = "authenticationmethodspolicy"

    /// The tenant's FIDO2 configuration: the stored one, migrated to passkey profiles if it predates them, or the
    /// tenant default when none was ever written.
    public func fido2Configuration(tenant: String) async throws -> (configuration: Fido2Configuration, lastModified: String?) {
        let stored = try await store.read { tx in try await tx.object(tenant: tenant, id: Self.authenticationMethodsPolicyID) }
        guard let stored, let fido2 = stored.body["fido2"] else { return (.tenantDefault, nil) }
        return (try Fido2Configuration(stored: fido2).migrated(), stored.body["lastModifiedDateTime"]?.stringValue)
    }

    /// Reverts the FIDO2 configuration to the tenant default (Graph's DELETE), whatever it holds.
    public func resetFido2Configuration(tenant: String, actor: Actor) async throws {
        try await replaceFido2Configuration(tenant: tenant, with: .tenantDefault, actor: actor, validated: false)
    }

    /// Replaces the FIDO2 configuration after checking Entra's rules against the current one.
    @discardableResult
    public func replaceFido2Configuration(tenant: String, with next: Fido2Configuration, actor: Actor,
                                          validated: Bool = true) async throws -> Fido2Configuration {
        let now = self.now
        return try await write(tenant) { tx in
            let id = Self.authenticationMethodsPolicyID
            let current = try await tx.object(tenant: tenant, id: id)
            let previous = try current?.body["fido2"].map { try Fido2Configuration(stored: $0).migrated() } ?? .tenantDefault
            if validated { try next.validate(replacing: previous) }
            var body = current?.body ?? [:]
            body["fido2"] = next.json
            body["lastModifiedDateTime"] = .string(now)
            try await tx.put(StoredObject(tenant: tenant, id: id, kind: .authenticationMethodsPolicy, body: body), over: current)
            try await tx.record(ChangeRecord(
                tenant: tenant, objectId: id, kind: .authenticationMethodsPolicy, operation: "update",
                activity: "Update authentication methods policy", actor: actor.initiatedBy, at: now,
                details: ["displayName": "Authentication Methods Policy", "method": "Fido2"]))
            return next
        }
    }
}

extension DirectoryService {
    /// Object ids are stored in lowercase; Graph shows the id as `authorizationPolicy`.
    static let authorizationPolicyID = "authorizationpolicy"

    /// The tenant's authorization policy: as last written, or Entra's defaults.
    public func authorizationPolicy(tenant: String) async throws -> [String: JSONValue] {
        let stored = try await store.read { tx in try await tx.object(tenant: tenant, id: Self.authorizationPolicyID) }
        var body = stored?.body ?? PolicyRules.authorizationPolicyDefaults
        body["id"] = "authorizationPolicy"
        return body
    }

    /// Applies a Graph PATCH to the authorization policy (validated against the schema and Entra's values).
    @discardableResult
    public func updateAuthorizationPolicy(tenant: String, patch: [String: JSONValue], actor: Actor) async throws -> [String: JSONValue] {
        try GraphValidator.validate(patch, entity: ObjectKind.authorizationPolicy.rawValue)
        let now = self.now
        return try await write(tenant) { tx in
            let id = Self.authorizationPolicyID
            let current = try await tx.object(tenant: tenant, id: id)
            let before = current?.body ?? PolicyRules.authorizationPolicyDefaults
            let body = try PolicyRules.patchedAuthorizationPolicy(before, with: patch)
            try await tx.put(StoredObject(tenant: tenant, id: id, kind: .authorizationPolicy, body: body), over: current)
            let modified: [JSONValue] = Set(before.keys).union(body.keys).sorted().filter { before[$0] != body[$0] }.map { key in
                ["displayName": .string(key), "oldValue": .string(DirectoryRules.auditValue(before[key])),
                 "newValue": .string(DirectoryRules.auditValue(body[key]))]
            }
            try await tx.record(ChangeRecord(
                tenant: tenant, objectId: id, kind: .authorizationPolicy, operation: "update",
                activity: "Update authorization policy", actor: actor.initiatedBy, at: now,
                details: ["displayName": "Authorization Policy", "modifiedProperties": .array(modified)]))
            return body
        }
    }
}

extension DirectoryTransaction {
    /// Writes `object` over `current` (its stored version, read in this transaction), or inserts it when there is
    /// none: for objects that are replaced whole (tenant-wide policies, sync's staging objects).
    public func put(_ object: StoredObject, over current: StoredObject?) async throws {
        guard let current else { return try await insert(object) }
        var next = object
        next.version = current.version + 1
        try await update(next, expectedVersion: current.version)
    }
}
