import TesseraCore

/// `$expand` of the navigation properties Microsoft's examples expand (`users/{id}?$expand=manager`,
/// `groups/{id}?$expand=members`, `roleAssignments?$expand=principal`): each related object rendered inline, at
/// most 20 per collection as in Graph, read in one transaction with the page.
struct Expander {
    let app: TesseraApp
    let tenant: String

    /// What can be expanded on each type, and how: a link relation (outgoing or incoming), or an id property.
    enum Navigation {
        case targets(String)
        case sources(String)
        case single(targets: String)
        case property(String)
        case roleDefinition
    }

    static let navigations: [String: [String: Navigation]] = [
        "user": ["manager": .single(targets: "manager"), "directReports": .sources("manager"), "memberOf": .sources("members"),
                 "ownedObjects": .sources("owners")],
        "group": ["members": .targets("members"), "owners": .targets("owners"), "memberOf": .sources("members")],
        "application": ["owners": .targets("owners")],
        "servicePrincipal": ["owners": .targets("owners"), "memberOf": .sources("members")],
        "device": ["memberOf": .sources("members")],
        "unifiedRoleAssignment": ["principal": .property("principalId"), "roleDefinition": .roleDefinition],
    ]

    /// The kinds an expanded navigation property can hold (what a nested `$select` is checked against).
    static let relatedKinds: [ObjectKind] = [.user, .group, .servicePrincipal, .device, .application]

    /// Graph expands at most this many objects of a collection.
    static let collectionLimit = 20

    /// The declared name of an expandable navigation property of `entity`, matched case-insensitively.
    static func resolve(_ name: String, on entities: [String]) throws(DirectoryError) -> String {
        for entity in entities {
            if let declared = navigations[entity]?.keys.first(where: { $0.lowercased() == name.lowercased() }) { return declared }
        }
        throw DirectoryError(.badRequest, "Could not find a navigation property named '\(name)' that can be expanded here.")
    }

    /// Adds the expanded members to each rendered object (same order as `objects`).
    func expand(_ rendered: [JSONValue], objects: [StoredObject], names: [String],
                selects: [String: [String]] = [:]) async throws -> [JSONValue] {
        guard !names.isEmpty else { return rendered }
        let tenant = self.tenant
        let related = try await app.store.read { tx -> [[String: JSONValue]] in
            var out: [[String: JSONValue]] = []
            for object in objects {
                var members: [String: JSONValue] = [:]
                for name in names {
                    guard let navigation = Self.navigations[object.kind.rawValue]?[name] else { continue }
                    switch navigation {
                    case .targets(let relation), .sources(let relation):
                        let isTargets = if case .targets = navigation { true } else { false }
                        let ids = isTargets ? try await tx.targets(tenant: tenant, source: object.id, relation: relation)
                            : try await tx.sources(tenant: tenant, target: object.id, relation: relation)
                        let found = try await tx.objects(tenant: tenant, ids: Array(ids.prefix(Self.collectionLimit)))
                        members[name] = .array(found.filter { $0.deletedAt == nil }.map { Renderer.render($0, select: selects[name], polymorphic: true) })
                    case .single(let relation):
                        if let id = try await tx.targets(tenant: tenant, source: object.id, relation: relation).first,
                           let found = try await tx.object(tenant: tenant, id: id), found.deletedAt == nil {
                            members[name] = Renderer.render(found, select: selects[name], polymorphic: true)
                        }
                    case .property(let property):
                        if let id = object.body[property]?.stringValue, let found = try await tx.object(tenant: tenant, id: id),
                           found.deletedAt == nil {
                            members[name] = Renderer.render(found, select: selects[name], polymorphic: true)
                        }
                    case .roleDefinition:
                        if let id = object.body["roleDefinitionId"]?.stringValue, let role = BuiltInRoles.byTemplateId(id) {
                            members[name] = Renderer.select(RolesHandler.definition(role), selects[name])
                        }
                    }
                }
                out.append(members)
            }
            return out
        }
        return zip(rendered, related).map { value, members in
            guard case .object(var fields) = value else { return value }
            for (name, member) in members { fields[name] = member }
            return .object(fields)
        }
    }
}
