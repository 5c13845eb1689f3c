import Foundation

/// Authentication strength policies: the built-ins (read-only, not stored) and up to 15 custom ones per tenant, each
/// with its combination configurations. Every write records its change first, which takes the tenant's row lock, so
/// two writers check the tenant-wide rules (unique names, at most 15, in use by a Conditional Access policy) one
/// after the other.
extension DirectoryService {
    /// Every strength of the tenant as Graph shows it: the built-ins, then the custom ones in the order they were
    /// created.
    public func authenticationStrengthPolicies(tenant: String) async throws -> [[String: JSONValue]] {
        let custom = try await store.read { tx in
            try await tx.query(ObjectQuery(tenant: tenant, kinds: [.authenticationStrengthPolicy]))
        }
        return AuthenticationStrengthRules.builtInPolicies + custom
            .sorted { ($0.body["createdDateTime"]?.stringValue ?? "", $0.id) < ($1.body["createdDateTime"]?.stringValue ?? "", $1.id) }
            .map(\.body)
    }

    /// One strength by id: a built-in or the tenant's own.
    public func authenticationStrengthPolicy(tenant: String, id: String) async throws -> [String: JSONValue] {
        if let builtIn = AuthenticationStrengthRules.builtIn(id) { return builtIn }
        return try await store.read { tx in try await Self.customStrength(tenant: tenant, id: id, tx: tx) }.body
    }

    /// The Conditional Access policies that require the strength `id`: those that need an MFA claim from it and the
    /// others (Graph's `authenticationStrengthUsage`).
    public func authenticationStrengthUsage(tenant: String, id: String) async throws -> (mfa: [StoredObject], none: [StoredObject]) {
        let strength = id.lowercased()
        let policies = try await store.read { tx in
            if AuthenticationStrengthRules.builtIn(strength) == nil { _ = try await Self.customStrength(tenant: tenant, id: strength, tx: tx) }
            return try await tx.query(ObjectQuery(tenant: tenant, kinds: [.conditionalAccessPolicy]))
        }.filter { AuthenticationStrengthRules.references($0, strength: strength) }
        return (policies.filter(AuthenticationStrengthRules.needsMultifactorClaim),
                policies.filter { !AuthenticationStrengthRules.needsMultifactorClaim($0) })
    }

    /// Creates a custom strength from a Graph body (its display name unique among the tenant's strengths, at most
    /// 15 custom ones).
    public func createAuthenticationStrengthPolicy(tenant: String, body: [String: JSONValue], actor: Actor) async throws -> [String: JSONValue] {
        let now = self.now, id = Identifier.make()
        let stored = try AuthenticationStrengthRules.prepareCreate(body, id: id, now: now)
        return try await write(tenant) { tx in
            try await Self.record(tenant: tenant, id: id, operation: "create", activity: "Add authentication strength policy", actor: actor,
                                  now: now, details: ["displayName": stored["displayName"] ?? .null], tx: tx)
            let existing = try await tx.query(ObjectQuery(tenant: tenant, kinds: [.authenticationStrengthPolicy]))
            guard existing.count < AuthenticationStrengthRules.maxCustomPolicies else {
                throw DirectoryError.badRequest("The tenant has \(existing.count) custom authentication strength policies, the most it may have (\(AuthenticationStrengthRules.maxCustomPolicies)); delete one first.")
            }
            try Self.requireUniqueName(stored["displayName"], id: id, among: existing)
            try await tx.insert(StoredObject(tenant: tenant, id: id, kind: .authenticationStrengthPolicy, body: stored))
            return stored
        }
    }

    /// Changes a custom strength's `displayName` or `description`; the Conditional Access policies that require it
    /// show the new name.
    public func updateAuthenticationStrengthPolicy(tenant: String, id: String, patch: [String: JSONValue], actor: Actor) async throws {
        let now = self.now
        try Self.refuseBuiltIn(id)
        try await write(tenant) { tx in
            let current = try await Self.customStrength(tenant: tenant, id: id, tx: tx)
            let next = try AuthenticationStrengthRules.patched(current.body, with: patch, now: now)
            try await Self.record(tenant: tenant, id: current.id, operation: "update", activity: "Update authentication strength policy",
                                  actor: actor, now: now, details: Self.modified(current.body, next), tx: tx)
            if next["displayName"] != current.body["displayName"] {
                try Self.requireUniqueName(next["displayName"], id: current.id,
                                           among: try await tx.query(ObjectQuery(tenant: tenant, kinds: [.authenticationStrengthPolicy])))
            }
            try await Self.replace(current, with: next, actor: actor, now: now, tx: tx)
        }
    }

    /// Graph's `updateAllowedCombinations`: the new combinations, with what they replaced, the Conditional Access
    /// policies that require the strength, and a warning when a combination was added to a strength in use. A
    /// strength a policy needs an MFA claim from cannot lose MFA, and `fido2` cannot go while a combination
    /// configuration applies to it.
    public func updateAllowedCombinations(tenant: String, id: String, body: [String: JSONValue], actor: Actor) async throws -> JSONValue {
        let now = self.now
        try Self.refuseBuiltIn(id)
        for key in body.keys where key != "allowedCombinations" && !key.hasPrefix("@") {
            throw DirectoryError.badRequest("Parameter '\(key)' is not a parameter of updateAllowedCombinations.")
        }
        let combinations = try AuthenticationStrengthRules.normalizedCombinations(body["allowedCombinations"])
        return try await write(tenant) { tx in
            let current = try await Self.customStrength(tenant: tenant, id: id, tx: tx)
            let previous = current.body["allowedCombinations"]?.arrayValue?.compactMap(\.stringValue) ?? []
            var next = current.body
            next["allowedCombinations"] = .array(combinations.map(JSONValue.string))
            next["requirementsSatisfied"] = .string(AuthenticationStrengthRules.requirementsSatisfied(combinations))
            next["modifiedDateTime"] = .string(now)
            try await Self.record(tenant: tenant, id: current.id, operation: "update", activity: "Update authentication strength policy",
                                  actor: actor, now: now, details: Self.modified(current.body, next), tx: tx)
            if !combinations.contains("fido2"), !(current.body["combinationConfigurations"]?.arrayValue ?? []).isEmpty {
                throw DirectoryError.badRequest("The combination 'fido2' cannot be removed while a combination configuration applies to it; delete the configuration first.")
            }
            let users = try await tx.query(ObjectQuery(tenant: tenant, kinds: [.conditionalAccessPolicy]))
                .filter { AuthenticationStrengthRules.references($0, strength: current.id) }
            if next["requirementsSatisfied"] == "none", let needing = users.first(where: AuthenticationStrengthRules.needsMultifactorClaim) {
                throw DirectoryError.badRequest("The Conditional Access policy '\(needing.body["displayName"]?.stringValue ?? needing.id)' needs multifactor authentication from this strength, so every combination must be multifactor.")
            }
            try await Self.replace(current, with: next, actor: actor, now: now, tx: tx)
            let added = combinations.filter { !previous.contains($0) }
            let name = current.body["displayName"]?.stringValue ?? current.id
            let warning: JSONValue = users.isEmpty || added.isEmpty ? .null : .string(
                "You have lowered the security of the \(name) authentication strength by adding \(added.joined(separator: "; ")). This Authentication Strength is referenced by one or more Conditional Access policies. Review conditionalAccessReferences to understand which Conditional Access policies were impacted by this change. To reverse your changes back, use updateAllowedCombinations action with the previousCombinations values.")
            return ["previousCombinations": .array(previous.map(JSONValue.string)), "currentCombinations": .array(combinations.map(JSONValue.string)),
                    "conditionalAccessReferences": .array(users.map { .string($0.id) }), "additionalInformation": warning]
        }
    }

    /// Deletes a custom strength no Conditional Access policy requires (deleted policies included, which could be
    /// restored).
    public func deleteAuthenticationStrengthPolicy(tenant: String, id: String, actor: Actor) async throws {
        let now = self.now
        try Self.refuseBuiltIn(id)
        try await write(tenant) { tx in
            let current = try await Self.customStrength(tenant: tenant, id: id, tx: tx)
            try await Self.record(tenant: tenant, id: current.id, operation: "delete", activity: "Delete authentication strength policy",
                                  actor: actor, now: now, details: ["displayName": current.body["displayName"] ?? .null], tx: tx)
            let policies = try await tx.query(ObjectQuery(tenant: tenant, kinds: [.conditionalAccessPolicy]))
                + tx.query(ObjectQuery(tenant: tenant, kinds: [.conditionalAccessPolicy], deleted: true))
            if let user = policies.first(where: { AuthenticationStrengthRules.references($0, strength: current.id) }) {
                let name = user.body["displayName"]?.stringValue ?? user.id
                throw DirectoryError.badRequest("The authentication strength '\(current.body["displayName"]?.stringValue ?? current.id)' is used by the Conditional Access policy '\(name)'\(user.deletedAt == nil ? "" : " (in deleted items)"); remove it from the policy first.")
            }
            try await tx.purge(tenant: tenant, id: current.id)
        }
    }

    /// Adds a combination configuration to a custom strength.
    public func addCombinationConfiguration(tenant: String, policyID: String, body: [String: JSONValue], actor: Actor) async throws -> [String: JSONValue] {
        let now = self.now
        try Self.refuseBuiltIn(policyID, "Combination configurations can only be added to custom authentication strength policies, not to a built-in authentication strength.")
        return try await write(tenant) { tx in
            let current = try await Self.customStrength(tenant: tenant, id: policyID, tx: tx)
            let existing = current.body["combinationConfigurations"]?.arrayValue ?? []
            let configuration = try AuthenticationStrengthRules.prepareConfiguration(body, id: Identifier.make(), policy: current.body, existing: existing)
            var next = current.body
            next["combinationConfigurations"] = .array(existing + [.object(configuration)])
            next["modifiedDateTime"] = .string(now)
            try await Self.record(tenant: tenant, id: current.id, operation: "update", activity: "Update authentication strength policy",
                                  actor: actor, now: now, details: Self.modified(current.body, next), tx: tx)
            try await Self.replace(current, with: next, actor: actor, now: now, tx: tx)
            return configuration
        }
    }

    /// Changes a combination configuration (`allowedAAGUIDs`, `appliesToCombinations`).
    public func updateCombinationConfiguration(tenant: String, policyID: String, id: String, patch: [String: JSONValue], actor: Actor) async throws {
        let now = self.now
        try Self.refuseBuiltIn(policyID)
        try await write(tenant) { tx in
            let current = try await Self.customStrength(tenant: tenant, id: policyID, tx: tx)
            var configurations = current.body["combinationConfigurations"]?.arrayValue ?? []
            guard let index = configurations.firstIndex(where: { $0["id"]?.stringValue == id.lowercased() }),
                  case .object(var merged) = configurations[index]
            else { throw DirectoryError.notFound(id) }
            if let type = patch["@odata.type"]?.stringValue, PolicyRules.shortType(type) != "fido2CombinationConfiguration" {
                throw DirectoryError.badRequest("The type of a combination configuration cannot be changed (it is fido2CombinationConfiguration).")
            }
            let properties = patch.filter { !$0.key.hasPrefix("@") }
            try GraphValidator.validate(properties, entity: "fido2CombinationConfiguration")
            if let given = properties["id"], given.stringValue?.lowercased() != id.lowercased() {
                throw DirectoryError.badRequest("Property 'id' is read-only and cannot be set.")
            }
            for (key, value) in properties where key != "id" { merged[key] = value }
            configurations[index] = .object(try AuthenticationStrengthRules.configuration(merged, id: id.lowercased(), policy: current.body,
                                                                                          existing: configurations))
            var next = current.body
            next["combinationConfigurations"] = .array(configurations)
            next["modifiedDateTime"] = .string(now)
            try await Self.record(tenant: tenant, id: current.id, operation: "update", activity: "Update authentication strength policy",
                                  actor: actor, now: now, details: Self.modified(current.body, next), tx: tx)
            try await Self.replace(current, with: next, actor: actor, now: now, tx: tx)
        }
    }

    /// Removes a combination configuration: any passkey then counts as `fido2` for the strength.
    public func deleteCombinationConfiguration(tenant: String, policyID: String, id: String, actor: Actor) async throws {
        let now = self.now
        try Self.refuseBuiltIn(policyID)
        try await write(tenant) { tx in
            let current = try await Self.customStrength(tenant: tenant, id: policyID, tx: tx)
            let configurations = current.body["combinationConfigurations"]?.arrayValue ?? []
            let remaining = configurations.filter { $0["id"]?.stringValue != id.lowercased() }
            guard remaining.count < configurations.count else { throw DirectoryError.notFound(id) }
            var next = current.body
            next["combinationConfigurations"] = .array(remaining)
            next["modifiedDateTime"] = .string(now)
            try await Self.record(tenant: tenant, id: current.id, operation: "update", activity: "Update authentication strength policy",
                                  actor: actor, now: now, details: Self.modified(current.body, next), tx: tx)
            try await Self.replace(current, with: next, actor: actor, now: now, tx: tx)
        }
    }

    // MARK: Helpers

    static func customStrength(tenant: String, id: String, tx: any DirectoryReader) async throws -> StoredObject {
        guard let object = try await tx.object(tenant: tenant, id: id.lowercased()), object.kind == .authenticationStrengthPolicy else {
            throw DirectoryError.notFound(id)
        }
        return object
    }

    static func refuseBuiltIn(_ id: String, _ message: String = "Built-in authentication strength policies cannot be changed or deleted.") throws(DirectoryError) {
        if AuthenticationStrengthRules.builtIn(id) != nil { throw DirectoryError.badRequest(message) }
    }

    static func requireUniqueName(_ name: JSONValue?, id: String, among existing: [StoredObject]) throws(DirectoryError) {
        let wanted = name?.stringValue?.lowercased() ?? ""
        let taken = AuthenticationStrengthRules.builtInPolicies.contains { $0["displayName"]?.stringValue?.lowercased() == wanted }
            || existing.contains { $0.id != id && $0.body["displayName"]?.stringValue?.lowercased() == wanted }
        if taken {
            throw DirectoryError.badRequest("An authentication strength policy named '\(name?.stringValue ?? "")' already exists; display names must be unique.")
        }
    }

    /// The change log's record of a write to a strength, written before anything else in the transaction.
    static func record(tenant: String, id: String, operation: String, activity: String, actor: Actor, now: String,
                       details: JSONValue, tx: any DirectoryTransaction) async throws {
        _ = try await tx.record(ChangeRecord(tenant: tenant, objectId: id, kind: .authenticationStrengthPolicy, operation: operation,
                                             activity: activity, actor: actor.initiatedBy, at: now, details: details))
    }

    static func modified(_ before: [String: JSONValue], _ after: [String: JSONValue]) -> JSONValue {
        let changed: [JSONValue] = Set(before.keys).union(after.keys).sorted().filter { before[$0] != after[$0] && $0 != "modifiedDateTime" }.map { key in
            ["displayName": .string(key), "oldValue": .string(DirectoryRules.auditValue(before[key])),
             "newValue": .string(DirectoryRules.auditValue(after[key]))]
        }
        return ["displayName": after["displayName"] ?? .null, "modifiedProperties": .array(changed)]
    }

    /// Writes a strength's new body, and shows it in the Conditional Access policies that require it (their
    /// `grantControls.authenticationStrength`), each such change in the change log too.
    static func replace(_ current: StoredObject, with body: [String: JSONValue], actor: Actor, now: String,
                        tx: any DirectoryTransaction) async throws {
        var next = current
        next.body = body
        next.version = current.version + 1
        try await tx.update(next, expectedVersion: current.version)
        let reference = AuthenticationStrengthRules.reference(body)
        let policies = try await tx.query(ObjectQuery(tenant: current.tenant, kinds: [.conditionalAccessPolicy]))
            + tx.query(ObjectQuery(tenant: current.tenant, kinds: [.conditionalAccessPolicy], deleted: true))
        for policy in policies where AuthenticationStrengthRules.references(policy, strength: current.id) {
            guard case .object(var grant)? = policy.body["grantControls"], grant["authenticationStrength"] != reference else { continue }
            let before = grant["authenticationStrength"]
            grant["authenticationStrength"] = reference
            var updated = policy
            updated.body["grantControls"] = .object(grant)
            updated.version = policy.version + 1
            try await tx.update(updated, expectedVersion: policy.version)
            _ = try await tx.record(ChangeRecord(
                tenant: policy.tenant, objectId: policy.id, kind: .conditionalAccessPolicy, operation: "update",
                activity: "Update conditional access policy", actor: actor.initiatedBy, at: now,
                details: ["displayName": policy.body["displayName"] ?? .null, "modifiedProperties": [[
                    "displayName": "grantControls.authenticationStrength", "oldValue": .string(DirectoryRules.auditValue(before)),
                    "newValue": .string(DirectoryRules.auditValue(reference))]]]))
        }
    }
}
