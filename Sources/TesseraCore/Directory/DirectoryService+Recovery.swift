/// The writes a recovery job makes, through the same path as every other write: unique keys claimed by the
/// database, the change log, the audit record under the job's identity.
extension DirectoryService {
    /// Puts an object back to a body it had (from a snapshot): every property as it was, soft-deleted or not as it
    /// was. A unique key (say, a user principal name) another object took since is a Graph error, and nothing is
    /// written.
    @discardableResult
    public func revert(tenant: String, to old: StoredObject, actor: Actor) async throws -> StoredObject {
        let now = self.now
        return try await write(tenant) { tx in try await Self.revert(tenant: tenant, to: old, actor: actor, now: now, tx: tx) }
    }

    /// `revert` inside a write transaction (for it and for `apply`).
    static func revert(tenant: String, to old: StoredObject, actor: Actor, now: String, tx: any DirectoryTransaction) async throws -> StoredObject {
        guard let current = try await tx.object(tenant: tenant, id: old.id), current.kind == old.kind else {
            throw DirectoryError.notFound(old.id)
        }
        var next = current
        next.body = old.body
        next.deletedAt = old.deletedAt
        next.version = current.version + 1
        // A soft-deleted object holds no unique keys.
        let oldKeys = current.deletedAt == nil ? Set(DirectoryRules.uniqueKeys(of: current)) : []
        let newKeys = next.deletedAt == nil ? Set(DirectoryRules.uniqueKeys(of: next)) : []
        try await tx.release(tenant: tenant, object: old.id, keys: Array(oldKeys.subtracting(newKeys)))
        try await tx.claim(tenant: tenant, object: old.id, keys: Array(newKeys.subtracting(oldKeys)))
        try await tx.update(next, expectedVersion: current.version)
        let modified: [JSONValue] = Set(current.body.keys).union(next.body.keys).sorted()
            .filter { !$0.hasPrefix("_") && current.body[$0] != next.body[$0] }
            .map { key in
                ["displayName": .string(key), "oldValue": .string(DirectoryRules.auditValue(current.body[key])),
                 "newValue": .string(DirectoryRules.auditValue(next.body[key]))]
            }
        let restored = current.deletedAt != nil && next.deletedAt == nil
        try await tx.record(ChangeRecord(
            tenant: tenant, objectId: old.id, kind: current.kind, operation: restored ? "restore" : "update",
            activity: "\(restored ? "Restore" : "Update") \(current.kind.auditNoun) (recovery)", actor: actor.initiatedBy, at: now,
            details: ["displayName": .optional(next.body["displayName"]?.stringValue), "modifiedProperties": .array(modified)]))
        return next
    }

    /// Creates again, with its original id, an object that was permanently deleted, as a snapshot had it. Its
    /// unique keys must be free; if one is taken the error says which, and nothing is written.
    public func reinstate(tenant: String, _ object: StoredObject, actor: Actor) async throws {
        let now = self.now
        try await write(tenant) { tx in _ = try await Self.reinstate(tenant: tenant, object, actor: actor, now: now, tx: tx) }
    }

    /// `reinstate` inside a write transaction (for it and for `apply`); returns the object as created.
    static func reinstate(tenant: String, _ object: StoredObject, actor: Actor, now: String, tx: any DirectoryTransaction) async throws -> StoredObject {
        guard try await tx.object(tenant: tenant, id: object.id) == nil else {
            throw DirectoryError.badRequest("Object '\(object.id)' exists already.")
        }
        var fresh = object
        fresh.version = 1
        if fresh.deletedAt == nil { try await tx.claim(tenant: tenant, object: object.id, keys: DirectoryRules.uniqueKeys(of: fresh)) }
        try await tx.insert(fresh)
        try await tx.record(ChangeRecord(
            tenant: tenant, objectId: object.id, kind: object.kind, operation: "create",
            activity: "Add \(object.kind.auditNoun) (recovery of a hard-deleted object)", actor: actor.initiatedBy, at: now,
            details: ["displayName": .optional(object.body["displayName"]?.stringValue)]))
        return fresh
    }
}
