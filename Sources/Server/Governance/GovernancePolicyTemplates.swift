import Foundation
import TesseraCore

/// `/directory/tenantGovernance/governancePolicyTemplates`: the governing tenant's policy templates — which of its
/// role-assignable security groups get which built-in roles in a governed tenant once a relationship is accepted.
/// The system's `default` template always exists (Microsoft's): it can be read and changed, not deleted.
struct GovernancePolicyTemplates {
    let context: RequestContext
    let app: TesseraApp

    static let kind = ObjectKind(rawValue: "tenantGovernancePolicyTemplate")
    static let readPermissions = ["TenantGovernance-PolicyTemplate.Read.All", "TenantGovernance-PolicyTemplate.ReadWrite.All"]
    static let writePermissions = ["TenantGovernance-PolicyTemplate.ReadWrite.All"]
    static let writable: Set<String> = [
        "@odata.type", "displayName", "description", "delegatedAdministrationRoleAssignments", "multiTenantApplicationsToProvision",
        "governedTenantCanTerminate",
    ]

    var method: String { context.request.method }
    var tenant: String { context.tenant }
    /// Graph's type name: beta keeps it in the `tenantGovernanceServices` namespace.
    var typeName: String {
        context.version == "beta" ? "#microsoft.graph.tenantGovernanceServices.governancePolicyTemplate" : "#microsoft.graph.tenantGovernancePolicyTemplate"
    }
    var collection: String { "\(context.base)/$metadata#directory/tenantGovernance/governancePolicyTemplates" }

    func handle(_ rest: [String]) async throws -> APIResponse {
        switch (rest.count, method) {
        case (0, "GET"):
            try context.caller.require(anyOf: Self.readPermissions)
            let values = try await templates().map { render($0.body) }
            return .json(["@odata.context": .string(collection), "value": .array(try Lister.inMemory(values, context.parseOptions()))])
        case (0, "POST"):
            try context.caller.require(anyOf: Self.writePermissions)
            let body = try context.request.jsonObject()
            let fields = try await checked(body, creating: true)
            let now = Timestamp.format(app.clock.now), id = Identifier.make()
            var stored = fields
            stored.merge(["id": .string(id), "createdDateTime": .string(now), "lastModifiedDateTime": .string(now), "version": "1.0"]) { _, b in b }
            stored["governedTenantCanTerminate"] = stored["governedTenantCanTerminate"] ?? false
            let object = StoredObject(tenant: tenant, id: id, kind: Self.kind, body: stored)
            try await app.store.write { tx in try await tx.insert(object) }
            var response = entity(render(object.body))
            response.status = 201
            return response
        case (1, "GET"):
            try context.caller.require(anyOf: Self.readPermissions)
            return entity(render(try await template(rest[0]).body))
        case (1, "PATCH"):
            try context.caller.require(anyOf: Self.writePermissions)
            let fields = try await checked(try context.request.jsonObject(), creating: false)
            let current = try await template(rest[0])
            var body = current.body
            body.merge(fields) { _, b in b }
            body["lastModifiedDateTime"] = .string(Timestamp.format(app.clock.now))
            body["version"] = .string(Self.nextVersion(body["version"]?.stringValue))
            let updated = StoredObject(tenant: tenant, id: current.id, kind: Self.kind, body: body)
            try await app.store.write { tx in
                if let existing = try await tx.object(tenant: updated.tenant, id: updated.id) {
                    var next = updated
                    next.version = existing.version + 1
                    try await tx.update(next, expectedVersion: existing.version)
                } else {
                    try await tx.insert(updated)  // the default template, written for the first time
                }
            }
            return .noContent
        case (1, "DELETE"):
            try context.caller.require(anyOf: Self.writePermissions)
            guard rest[0].lowercased() != "default" else {
                throw DirectoryError.badRequest("The default policy template cannot be deleted.")
            }
            let found = try await template(rest[0])
            try await app.store.write { tx in try await tx.purge(tenant: found.tenant, id: found.id) }
            return .noContent
        case (0, _), (1, _):
            throw DirectoryError(.methodNotAllowed, "Use GET or POST on the collection, GET, PATCH or DELETE on a template.")
        default:
            throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest.last ?? "")'.")
        }
    }

    // MARK: Reading

    /// The system's default template, as a tenant that never changed it has it.
    func defaultTemplate() -> StoredObject {
        let created = Timestamp.format(Date(timeIntervalSince1970: 0))
        return StoredObject(tenant: tenant, id: "default", kind: Self.kind, body: [
            "id": "default", "displayName": "Default", "description": "The policy applied to relationships created for add-on tenants.",
            "governedTenantCanTerminate": false, "createdDateTime": .string(created), "lastModifiedDateTime": .string(created),
            "version": "1.0", "delegatedAdministrationRoleAssignments": [], "multiTenantApplicationsToProvision": [],
        ])
    }

    func templates() async throws -> [StoredObject] {
        let tenant = self.tenant
        let stored = try await app.store.read { tx in try await tx.query(ObjectQuery(tenant: tenant, kinds: [Self.kind])) }
        let others = stored.filter { $0.id != "default" }.sorted { $0.id < $1.id }
        return [stored.first { $0.id == "default" } ?? defaultTemplate()] + others
    }

    func template(_ id: String) async throws -> StoredObject {
        let tenant = self.tenant, key = id.lowercased()
        if let found = try await app.store.read({ tx in try await tx.object(tenant: tenant, id: key) }), found.kind == Self.kind { return found }
        if key == "default" { return defaultTemplate() }
        throw DirectoryError.notFound(id)
    }

    func render(_ body: [String: JSONValue]) -> JSONValue {
        var out = body.filter { !$0.key.hasPrefix("_") }
        out["@odata.type"] = .string(typeName)
        return .object(out)
    }

    func entity(_ value: JSONValue) -> APIResponse {
        guard case .object(var body) = value else { return .json(value) }
        body["@odata.context"] = .string("\(collection)/$entity")
        return .json(.object(body))
    }

    /// "1.0" → "2.0": Microsoft counts a template's version up by one at each update.
    static func nextVersion(_ version: String?) -> String {
        let major = Int(version?.split(separator: ".").first ?? "") ?? 1
        return "\(major + 1).0"
    }

    // MARK: Checking

    /// The writable properties of a request, checked: each delegated role assignment names a role-assignable security
    /// group of this tenant and built-in role templates; Tessera provisions no multitenant applications yet, so it
    /// refuses a template that asks for any rather than keep a promise it cannot keep.
    func checked(_ body: [String: JSONValue], creating: Bool) async throws -> [String: JSONValue] {
        for key in body.keys where !Self.writable.contains(key) {
            throw DirectoryError.badRequest("Property '\(key)' is read-only or does not exist on type '\(typeName.dropFirst())'.")
        }
        var out: [String: JSONValue] = [:]
        for name in ["displayName", "description"] {
            if let value = body[name] {
                guard let text = value.stringValue, !text.trimmingCharacters(in: .whitespaces).isEmpty else {
                    throw DirectoryError.badRequest("'\(name)' must be a non-empty string.")
                }
                out[name] = value
            } else if creating {
                throw DirectoryError.badRequest("'\(name)' is required.")
            }
        }
        if let value = body["governedTenantCanTerminate"] {
            guard value.boolValue != nil else { throw DirectoryError.badRequest("'governedTenantCanTerminate' must be a boolean.") }
            out["governedTenantCanTerminate"] = value
        }
        if let apps = body["multiTenantApplicationsToProvision"] {
            guard let list = apps.arrayValue else { throw DirectoryError.badRequest("'multiTenantApplicationsToProvision' must be a collection.") }
            guard list.isEmpty else {
                throw DirectoryError(.badRequest, "Tessera does not provision multitenant applications in governed tenants yet: 'multiTenantApplicationsToProvision' must be empty.")
            }
            out["multiTenantApplicationsToProvision"] = []
        } else if creating {
            out["multiTenantApplicationsToProvision"] = []
        }
        if let value = body["delegatedAdministrationRoleAssignments"] {
            guard let list = value.arrayValue else {
                throw DirectoryError.badRequest("'delegatedAdministrationRoleAssignments' must be a collection.")
            }
            var assignments: [JSONValue] = []
            for (index, item) in list.enumerated() {
                assignments.append(try await checkedAssignment(item, path: "delegatedAdministrationRoleAssignments[\(index)]"))
            }
            out["delegatedAdministrationRoleAssignments"] = .array(assignments)
        } else if creating {
            throw DirectoryError.badRequest("'delegatedAdministrationRoleAssignments' is required.")
        }
        return out
    }

    func checkedAssignment(_ item: JSONValue, path: String) async throws -> JSONValue {
        guard let object = item.objectValue else { throw DirectoryError.badRequest("'\(path)' must be a delegatedAdministrationRoleAssignment.") }
        for key in object.keys where !["@odata.type", "roleTemplates", "group", "groupDisplayName"].contains(key) {
            throw DirectoryError.badRequest("Property '\(key)' does not exist on type 'delegatedAdministrationRoleAssignment'.")
        }
        guard let groupID = object["group"]?["id"]?.stringValue else { throw DirectoryError.badRequest("'\(path).group' must give the group's 'id'.") }
        let tenant = self.tenant
        guard let group = try await app.store.read({ tx in try await tx.object(tenant: tenant, id: groupID.lowercased()) }),
              group.kind == .group, group.deletedAt == nil else {
            throw DirectoryError.badRequest("'\(path).group': no group '\(groupID)' in this tenant.")
        }
        guard group.body["securityEnabled"] == true, group.body["isAssignableToRole"] == true else {
            throw DirectoryError.badRequest("'\(path).group': the group must be a role-assignable security group (isAssignableToRole true).")
        }
        guard let roles = object["roleTemplates"]?.arrayValue, !roles.isEmpty else {
            throw DirectoryError.badRequest("'\(path).roleTemplates' must name at least one role template.")
        }
        var templates: [JSONValue] = []
        for role in roles {
            guard let id = role["id"]?.stringValue, let builtIn = BuiltInRoles.byTemplateId(id) else {
                throw DirectoryError.badRequest("'\(path).roleTemplates': \(role["id"]?.serialized ?? "a role") is not a built-in role template.")
            }
            templates.append(["id": .string(builtIn.templateId), "name": .string(builtIn.displayName)])
        }
        return ["roleTemplates": .array(templates), "group": ["id": .string(group.id)],
                "groupDisplayName": group.body["displayName"] ?? .null]
    }
}
