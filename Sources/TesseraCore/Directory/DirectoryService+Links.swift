extension DirectoryService {
    /// The relations Graph exposes as `…/{relation}/$ref`, and which kinds may be on each end.
    static let linkRules: [String: (sources: [ObjectKind], targets: [ObjectKind])] = [
        "members": ([.group], [.user, .group, .device, .servicePrincipal]),
        "owners": ([.group, .application, .servicePrincipal, .device], [.user, .servicePrincipal]),
        "manager": ([.user], [.user]),
        "registeredUsers": ([.device], [.user]),
    ]

    /// A synced group's members come from on-premises: only sync (`allowSynced`) changes them, as in Entra.
    static func checkMembersWritable(_ group: StoredObject, relation: String, allowSynced: Bool) throws(DirectoryError) {
        if relation == "members", !allowSynced, group.body["onPremisesSyncEnabled"] == .bool(true) {
            throw DirectoryError.badRequest(
                "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects currently undergoing migration.")
        }
    }

    /// Adds a link (`POST /groups/{id}/members/$ref`).
    public func addLink(tenant: String, source: String, relation: String, target: String, actor: Actor, allowSynced: Bool = false) async throws {
        guard let rule = Self.linkRules[relation] else { throw DirectoryError.badRequest("Unsupported relation '\(relation)'.") }
        let now = self.now
        try await write(tenant) { tx in
            _ = try await Self.addLink(tenant: tenant, source: source, relation: relation, target: target, rule: rule, actor: actor,
                                       allowSynced: allowSynced, now: now, tx: tx)
        }
    }

    /// `addLink` inside a write transaction (for it and for `apply`); returns the source.
    static func addLink(tenant: String, source: String, relation: String, target: String,
                        rule: (sources: [ObjectKind], targets: [ObjectKind]), actor: Actor, allowSynced: Bool, now: String,
                        tx: any DirectoryTransaction) async throws -> StoredObject {
        guard let from = try await tx.object(tenant: tenant, id: source), from.deletedAt == nil, rule.sources.contains(from.kind)
        else { throw DirectoryError.notFound(source) }
        try checkMembersWritable(from, relation: relation, allowSynced: allowSynced)
        try await link(from, relation: relation, target: target, actor: actor, now: now, tx: tx)
        return from
    }

    /// Adds one link from `from` inside a write transaction, with its change record: the one place links are made,
    /// whether by `$ref` or by a body's `@odata.bind`.
    static func link(_ from: StoredObject, relation: String, target: String, actor: Actor, now: String,
                     tx: any DirectoryTransaction) async throws {
        guard let rule = linkRules[relation], rule.sources.contains(from.kind) else {
            throw DirectoryError.badRequest("Unsupported relation '\(relation)'.")
        }
        let tenant = from.tenant, source = from.id
        guard let to = try await tx.object(tenant: tenant, id: target), to.deletedAt == nil else {
            throw DirectoryError.notFound(target)
        }
        guard rule.targets.contains(to.kind) else {
            throw DirectoryError.badRequest("A \(to.kind.rawValue) cannot be added to '\(relation)'.")
        }
        if source == target { throw DirectoryError.badRequest("An object cannot be a member or owner of itself.") }
        if relation == "manager" {
            for old in try await tx.targets(tenant: tenant, source: source, relation: "manager") {
                try await tx.unlink(tenant: tenant, source: source, relation: "manager", target: old)
            }
        }
        guard try await tx.link(tenant: tenant, source: source, relation: relation, target: target) else {
            throw DirectoryError.badRequest(
                "One or more added object references already exist for the following modified properties: '\(relation)'.")
        }
        try await tx.record(ChangeRecord(
            tenant: tenant, objectId: source, kind: from.kind, operation: "link",
            activity: linkActivity(relation, adding: true, on: from.kind), actor: actor.initiatedBy, at: now,
            details: ["relation": .string(relation), "targetId": .string(target), "targetKind": .string(to.kind.rawValue),
                      "displayName": .optional(from.body["displayName"]?.stringValue),
                      "targetDisplayName": .optional(to.body["displayName"]?.stringValue)]))
    }

    /// Removes a link (`DELETE /groups/{id}/members/{member}/$ref`).
    public func removeLink(tenant: String, source: String, relation: String, target: String, actor: Actor,
                           allowSynced: Bool = false) async throws {
        let now = self.now
        try await write(tenant) { tx in
            _ = try await Self.removeLink(tenant: tenant, source: source, relation: relation, target: target, actor: actor,
                                          allowSynced: allowSynced, now: now, tx: tx)
        }
    }

    /// `removeLink` inside a write transaction (for it and for `apply`); returns the source.
    static func removeLink(tenant: String, source: String, relation: String, target: String, actor: Actor, allowSynced: Bool,
                           now: String, tx: any DirectoryTransaction) async throws -> StoredObject {
        guard let from = try await tx.object(tenant: tenant, id: source), from.deletedAt == nil else {
            throw DirectoryError.notFound(source)
        }
        try checkMembersWritable(from, relation: relation, allowSynced: allowSynced)
        guard try await tx.unlink(tenant: tenant, source: source, relation: relation, target: target) else {
            throw DirectoryError.notFound(target)
        }
        try await tx.record(ChangeRecord(
            tenant: tenant, objectId: source, kind: from.kind, operation: "unlink",
            activity: linkActivity(relation, adding: false, on: from.kind), actor: actor.initiatedBy, at: now,
            details: ["relation": .string(relation), "targetId": .string(target),
                      "displayName": .optional(from.body["displayName"]?.stringValue)]))
        return from
    }

    static func linkActivity(_ relation: String, adding: Bool, on kind: ObjectKind) -> String {
        let verb = adding ? "Add" : "Remove"
        switch relation {
        case "members": return "\(verb) member \(adding ? "to" : "from") group"
        case "owners": return "\(verb) owner \(adding ? "to" : "from") \(kind.auditNoun)"
        case "manager": return adding ? "Set user manager" : "Remove user manager"
        case "registeredUsers": return adding ? "Add registered users to device" : "Remove registered users from device"
        default: return "\(verb) \(relation)"
        }
    }

    /// All groups `id` is in, directly or through nested groups (no duplicates, cycles tolerated).
    public func transitiveGroups(tenant: String, of id: String, tx: any DirectoryReader) async throws -> [String] {
        try await Self.closure(from: id) { try await tx.sources(tenant: tenant, target: $0, relation: "members") }
    }

    /// All members of group `id`, through nested groups (no duplicates, cycles tolerated).
    public func transitiveMembers(tenant: String, of id: String, tx: any DirectoryReader) async throws -> [String] {
        try await Self.closure(from: id) { try await tx.targets(tenant: tenant, source: $0, relation: "members") }
    }

    /// Everything reachable from `start` by `neighbours`, in discovery order, without `start` itself.
    static func closure(from start: String, _ neighbours: (String) async throws -> [String]) async throws -> [String] {
        var seen: Set<String> = [start]
        var order: [String] = []
        var frontier = [start]
        while let next = frontier.popLast() {
            for found in try await neighbours(next) where seen.insert(found).inserted {
                order.append(found)
                frontier.append(found)
            }
        }
        return order
    }
}
