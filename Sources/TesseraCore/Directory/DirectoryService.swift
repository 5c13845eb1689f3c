import Foundation

/// The one writer of the directory. The Graph API, the command line, restore jobs and sync all write
/// through it, so unique keys, links, read-only properties and the change log hold whoever writes.
public struct DirectoryService: Sendable {
    public let store: any DirectoryStore
    public let clock: any TimeSource
    /// How long soft-deleted objects stay restorable.
    public let deletedRetentionDays: Int
    /// Bumped after each committed write, per tenant (shared by copies of this service).
    public let generations = TenantGenerations()
    /// Sign-in records on their way to the store (shared by copies of this service).
    let signInWriter: SignInWriter

    public init(store: any DirectoryStore, clock: any TimeSource = SystemTimeSource(), deletedRetentionDays: Int = 30) {
        self.store = store
        self.clock = clock
        self.deletedRetentionDays = deletedRetentionDays
        signInWriter = SignInWriter(store: store)
    }

    var now: String { Timestamp.format(clock.now) }

    /// Creates an object of `kind` from a Graph request body.
    ///
    /// - Parameter allowReadOnly: for directory sync, which sets what callers may not (`onPremisesSyncEnabled`, …).
    public func create(tenant: String, kind: ObjectKind, body: [String: JSONValue], actor: Actor,
                       id explicitId: String? = nil, allowReadOnly: Bool = false) async throws -> StoredObject {
        try GraphValidator.validate(body, entity: try PolicyRules.schemaEntity(kind: kind, body: body, current: nil))
        let now = self.now, id = explicitId ?? Identifier.makeTimeOrdered(at: clock.now)
        return try await write(tenant) { tx in
            try await Self.insert(kind: kind, body: body, id: id, tenant: tenant, actor: actor, now: now,
                                  allowReadOnly: allowReadOnly, tx: tx)
        }
    }

    /// Creates many objects of `kind` in one transaction (directory sync's initial load): all of them, or, when one
    /// fails, none, and the error is thrown.
    public func createMany(tenant: String, kind: ObjectKind, bodies: [[String: JSONValue]], actor: Actor,
                           allowReadOnly: Bool = false) async throws -> [StoredObject] {
        for body in bodies { try GraphValidator.validate(body, entity: try PolicyRules.schemaEntity(kind: kind, body: body, current: nil)) }
        let now = self.now, instant = clock.now
        return try await write(tenant) { tx in
            var created: [StoredObject] = []
            created.reserveCapacity(bodies.count)
            for body in bodies {
                created.append(try await Self.insert(kind: kind, body: body, id: Identifier.makeTimeOrdered(at: instant), tenant: tenant,
                                                     actor: actor, now: now, allowReadOnly: allowReadOnly, tx: tx))
            }
            return created
        }
    }

    static func insert(kind: ObjectKind, body: [String: JSONValue], id: String, tenant: String, actor: Actor, now: String,
                               allowReadOnly: Bool, tx: any DirectoryTransaction) async throws -> StoredObject {
        let parsed = try RequestBody.parse(body, kind: kind)
        var fields = parsed.properties
        fields["id"] = .string(id)
        let prepared = try await DirectoryRules.prepareCreate(kind: kind, fields: fields, tenant: tenant, tx: tx, now: now,
                                                              allowReadOnly: allowReadOnly)
        let object = StoredObject(tenant: tenant, id: id, kind: kind, body: prepared)
        // Its keys, the object and its change-log row: one statement on PostgreSQL, which also checks a user's UPN domain.
        let keys = DirectoryRules.uniqueKeys(of: object), change = ChangeRecord(
            tenant: tenant, objectId: id, kind: kind, operation: "create", activity: "Add \(kind.auditNoun)",
            actor: actor.initiatedBy, at: now,
            details: ["displayName": .optional(prepared["displayName"]?.stringValue ?? prepared["userPrincipalName"]?.stringValue)])
        if kind == .user, let upn = prepared["userPrincipalName"]?.stringValue {
            try await tx.create(object, keys: keys, change: change, requiring: try UserRules.verifiedDomain(of: upn))
        } else {
            try await tx.create(object, keys: keys, change: change)
        }
        for (relation, targets) in parsed.binds {
            for target in targets { try await link(object, relation: relation, target: target, actor: actor, now: now, tx: tx) }
        }
        return object
    }

    /// Applies a Graph PATCH body to an object.
    ///
    /// - Parameter ifMatch: when set, the write happens only if the object's version is still this one.
    public func update(tenant: String, id: String, kind: ObjectKind?, patch: [String: JSONValue], actor: Actor,
                       ifMatch: Int64? = nil, allowReadOnly: Bool = false) async throws -> StoredObject {
        let now = self.now
        return try await write(tenant) { tx in
            try await Self.update(tenant: tenant, id: id, kind: kind, patch: patch, actor: actor, ifMatch: ifMatch,
                                  allowReadOnly: allowReadOnly, now: now, tx: tx)
        }
    }

    /// An update inside a write transaction: the one implementation of `update`'s rules, for it and for `apply`.
    static func update(tenant: String, id: String, kind: ObjectKind?, patch: [String: JSONValue], actor: Actor, ifMatch: Int64?,
                       allowReadOnly: Bool, now: String, tx: any DirectoryTransaction) async throws -> StoredObject {
        guard let current = try await tx.object(tenant: tenant, id: id), current.deletedAt == nil,
              kind == nil || current.kind == kind
        else { throw DirectoryError.notFound(id) }
        try GraphValidator.validate(patch, entity: try PolicyRules.schemaEntity(kind: current.kind, body: patch, current: current))
        if let ifMatch, ifMatch != current.version {
            throw DirectoryError(.preconditionFailed, "The object was changed since it was read: the If-Match ETag does not match.")
        }
        let parsed = try RequestBody.parse(patch, kind: current.kind)
        let fields = parsed.properties.filter { !$0.key.hasPrefix("@odata") }
        for (relation, _) in parsed.binds { try Self.checkMembersWritable(current, relation: relation, allowSynced: allowReadOnly) }
        if fields.isEmpty, !parsed.binds.isEmpty {
            // Only links: the object itself does not change.
            for (relation, targets) in parsed.binds {
                for target in targets { try await Self.link(current, relation: relation, target: target, actor: actor, now: now, tx: tx) }
            }
            return current
        }
        var next = current
        next.body = try await DirectoryRules.prepareUpdate(
            current: current, patch: fields, tx: tx, now: now, allowReadOnly: allowReadOnly)
        next.version = current.version + 1
        let oldKeys = Set(DirectoryRules.uniqueKeys(of: current)), newKeys = Set(DirectoryRules.uniqueKeys(of: next))
        try await tx.release(tenant: tenant, object: id, keys: Array(oldKeys.subtracting(newKeys)))
        try await tx.claim(tenant: tenant, object: id, keys: Array(newKeys.subtracting(oldKeys)))
        try await tx.update(next, expectedVersion: current.version)
        let modified: [JSONValue] = fields.keys.sorted().filter { !$0.hasPrefix("_") }.map { key in
            ["displayName": .string(key),
             "oldValue": .string(DirectoryRules.auditValue(current.body[key])),
             "newValue": .string(DirectoryRules.auditValue(next.body[key]))]
        }
        try await tx.record(ChangeRecord(
            tenant: tenant, objectId: id, kind: current.kind, operation: "update",
            activity: "Update \(current.kind.auditNoun)", actor: actor.initiatedBy, at: now,
            details: ["displayName": .optional(next.body["displayName"]?.stringValue), "modifiedProperties": .array(modified)]))
        for (relation, targets) in parsed.binds {
            for target in targets { try await Self.link(next, relation: relation, target: target, actor: actor, now: now, tx: tx) }
        }
        return next
    }

    /// Deletes an object: users, groups, applications and service principals go to deleted items for
    /// `deletedRetentionDays`; other kinds are removed at once.
    public func delete(tenant: String, id: String, kind: ObjectKind?, actor: Actor, ifMatch: Int64? = nil) async throws {
        let now = self.now
        try await write(tenant) { tx in
            _ = try await Self.delete(tenant: tenant, id: id, kind: kind, actor: actor, ifMatch: ifMatch, now: now, tx: tx)
        }
    }

    /// A delete inside a write transaction (for `delete` and `apply`); returns the object as it was.
    static func delete(tenant: String, id: String, kind: ObjectKind?, actor: Actor, ifMatch: Int64?, now: String,
                       tx: any DirectoryTransaction) async throws -> StoredObject {
        guard let current = try await tx.object(tenant: tenant, id: id), current.deletedAt == nil,
              kind == nil || current.kind == kind
        else { throw DirectoryError.notFound(id) }
        if let ifMatch, ifMatch != current.version {
            throw DirectoryError(.preconditionFailed, "The object was changed since it was read: the If-Match ETag does not match.")
        }
        try DirectoryRules.checkDeletable(current)
        if current.kind == .namedLocation { try await PolicyRules.checkUnused(location: current, tx: tx) }
        try await tx.release(tenant: tenant, object: id, keys: DirectoryRules.uniqueKeys(of: current))
        if current.kind.isSoftDeletable {
            var next = current
            next.deletedAt = now
            next.body["deletedDateTime"] = .string(now)
            next.version += 1
            try await tx.update(next, expectedVersion: current.version)
            if current.kind == .application {
                // Entra soft-deletes an application's service principal with it.
                if let appId = current.body["appId"]?.stringValue,
                   let spId = try await tx.holder(tenant: tenant, key: UniqueKey("servicePrincipal:appId", appId)),
                   let sp = try await tx.object(tenant: tenant, id: spId) {
                    try await tx.release(tenant: tenant, object: spId, keys: DirectoryRules.uniqueKeys(of: sp))
                    try await tx.purge(tenant: tenant, id: spId)
                }
            }
        } else {
            try await tx.purge(tenant: tenant, id: id)
        }
        try await tx.record(ChangeRecord(
            tenant: tenant, objectId: id, kind: current.kind, operation: "delete",
            activity: "Delete \(current.kind.auditNoun)", actor: actor.initiatedBy, at: now,
            details: ["displayName": .optional(current.body["displayName"]?.stringValue)]))
        return current
    }

    /// Restores a soft-deleted object with its original id, claiming its unique keys again.
    public func restore(tenant: String, id: String, actor: Actor) async throws -> StoredObject {
        let now = self.now
        let cutoff = deletedCutoff
        return try await write(tenant) { tx in
            guard let current = try await tx.object(tenant: tenant, id: id), let deletedAt = current.deletedAt,
                  deletedAt >= cutoff
            else { throw DirectoryError.notFound(id) }
            var next = current
            next.deletedAt = nil
            next.body["deletedDateTime"] = nil
            next.version += 1
            try await tx.claim(tenant: tenant, object: id, keys: DirectoryRules.uniqueKeys(of: next))
            try await tx.update(next, expectedVersion: current.version)
            try await tx.record(ChangeRecord(
                tenant: tenant, objectId: id, kind: current.kind, operation: "restore",
                activity: "Restore \(current.kind.auditNoun)", actor: actor.initiatedBy, at: now,
                details: ["displayName": .optional(current.body["displayName"]?.stringValue)]))
            return next
        }
    }

    /// The instant before which soft-deleted objects are past restoring.
    public var deletedCutoff: String {
        Timestamp.format(clock.now.addingTimeInterval(-Double(deletedRetentionDays) * 86_400))
    }

    /// Permanently deletes the tenant's soft-deleted objects that are past the retention period; returns how many.
    @discardableResult
    public func purgeExpiredDeletedItems(tenant: String, batch: Int = 500) async throws -> Int {
        let query = ObjectQuery(tenant: tenant, kinds: ObjectKind.softDeletable, deleted: true,
                                deletedBefore: deletedCutoff, limit: batch)
        var purged = 0
        while true {
            let expired = try await store.read { tx in try await tx.query(query) }
            for object in expired {
                do {
                    try await purgeDeleted(tenant: tenant, id: object.id, actor: .system)
                    purged += 1
                } catch let error as DirectoryError where error.code == .notFound {
                    // Another node purged it first.
                }
            }
            if expired.count < batch { return purged }
        }
    }

    /// Permanently deletes a soft-deleted object.
    public func purgeDeleted(tenant: String, id: String, actor: Actor) async throws {
        let now = self.now
        try await write(tenant) { tx in
            guard let current = try await tx.object(tenant: tenant, id: id), current.deletedAt != nil
            else { throw DirectoryError.notFound(id) }
            // What belongs to a user goes with the user (their links would otherwise vanish and leave, for example,
            // a passkey holding its credential id).
            if current.kind == .user {
                for relation in Self.userOwnedRelations {
                    for method in try await tx.targets(tenant: tenant, source: id, relation: relation) {
                        try await tx.purge(tenant: tenant, id: method)
                    }
                }
                try await tx.deleteCredentials(tenant: tenant, userID: id, kinds: nil)
            }
            if current.kind == .application || current.kind == .servicePrincipal {
                try await tx.deleteCredentials(tenant: tenant, kind: .clientSecret, family: id)
            }
            try await tx.purge(tenant: tenant, id: id)
            try await tx.record(ChangeRecord(
                tenant: tenant, objectId: id, kind: current.kind, operation: "purge",
                activity: "Hard Delete \(current.kind.auditNoun)", actor: actor.initiatedBy, at: now,
                details: ["displayName": .optional(current.body["displayName"]?.stringValue)]))
        }
    }
}

extension DirectoryService {
    /// Records an event in the audit log that changes no object (a sync run, a quarantined object).
    public func recordEvent(tenant: String, objectId: String, kind: ObjectKind, activity: String, actor: Actor,
                            details: [String: JSONValue]) async throws {
        let now = self.now
        try await write(tenant) { tx in
            _ = try await tx.record(ChangeRecord(tenant: tenant, objectId: objectId, kind: kind, operation: "event", activity: activity,
                                                 actor: actor.initiatedBy, at: now, details: .object(details)))
        }
    }
}
