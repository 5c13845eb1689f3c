import Foundation
import TesseraCore

/// `/roleManagement/directory/{roleDefinitions,roleAssignments}` and the legacy `/directoryRoles`.
struct RolesHandler {
    let api: GraphAPI
    let context: RequestContext

    var app: TesseraApp { api.app }
    var tenant: String { context.tenant }
    var method: String { context.request.method }
    var readPermissions: [String] { Caller.permissions(for: .roleAssignment, write: false) }

    static func definition(_ role: BuiltInRole) -> JSONValue {
        ["id": .string(role.templateId), "templateId": .string(role.templateId), "displayName": .string(role.displayName),
         "description": .string(role.description), "isBuiltIn": true, "isEnabled": true, "isPrivileged": .bool(role.isPrivileged),
         "resourceScopes": ["/"], "version": "1",
         "rolePermissions": [["allowedResourceActions": .strings(role.allowedResourceActions), "condition": nil]]]
    }

    func handleRoleManagement(_ rest: [String]) async throws -> APIResponse {
        guard rest.first == "directory", rest.count >= 2 else {
            throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest.first ?? "")'.")
        }
        let tail = Array(rest.dropFirst(2))
        switch rest[1] {
        case "roleDefinitions":
            try context.caller.require(anyOf: readPermissions)
            guard method == "GET" else { throw DirectoryError(.methodNotAllowed, "Custom role definitions are not supported yet.") }
            if let id = tail.first {
                guard let role = BuiltInRoles.byTemplateId(id.lowercased()) else { throw DirectoryError.notFound(id) }
                return .json(Renderer.select(Self.definition(role), try context.select(entity: "unifiedRoleDefinition")))
            }
            let options = try context.options(entity: "unifiedRoleDefinition")
            return .json(["@odata.context": .string("\(context.base)/$metadata#roleManagement/directory/roleDefinitions"),
                          "value": .array(try Lister.inMemory(BuiltInRoles.all.map(Self.definition), options))])
        case "roleAssignments":
            return try await assignments(tail)
        default:
            throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest[1])'.")
        }
    }

    func assignments(_ tail: [String]) async throws -> APIResponse {
        let lister = Lister(context: context, app: app)
        switch (tail.count, method) {
        case (0, "GET"):
            try context.caller.require(anyOf: readPermissions)
            return try await lister.list(kinds: [.roleAssignment], contextPath: "roleManagement/directory/roleAssignments",
                                         entity: "unifiedRoleAssignment")
        case (0, "POST"):
            try context.caller.require(anyOf: ["RoleManagement.ReadWrite.Directory"])
            let created = try await app.directory.create(tenant: tenant, kind: .roleAssignment, body: try context.request.jsonObject(),
                                                         actor: context.caller.actor)
            return .json(Renderer.render(created, select: nil), status: 201)
        case (1, "GET"), (1, "DELETE"):
            let id = tail[0].lowercased(), tenant = self.tenant
            guard let found = try await app.store.read({ tx in try await tx.object(tenant: tenant, id: id) }), found.kind == .roleAssignment
            else { throw DirectoryError.notFound(id) }
            if method == "GET" {
                try context.caller.require(anyOf: readPermissions)
                return .json(try await context.render(found, try context.objectOptions(entity: "unifiedRoleAssignment"), app: app))
            }
            try context.caller.require(anyOf: ["RoleManagement.ReadWrite.Directory"])
            try await app.directory.delete(tenant: tenant, id: id, kind: .roleAssignment, actor: context.caller.actor)
            return .noContent
        default:
            throw DirectoryError(.methodNotAllowed, "The HTTP method '\(method)' is not allowed on this resource.")
        }
    }

    /// A role in the legacy view (`directoryRole`); its id is its template id.
    static func directoryRole(_ role: BuiltInRole) -> JSONValue {
        ["@odata.type": "#microsoft.graph.directoryRole", "id": .string(role.templateId), "roleTemplateId": .string(role.templateId),
         "displayName": .string(role.displayName), "description": .string(role.description), "deletedDateTime": nil]
    }

    /// The roles `principals` hold tenant-wide (the legacy view's memberships), in the catalog's order.
    static func heldRoles(by principals: [String], tenant: String, app: TesseraApp) async throws -> [BuiltInRole] {
        guard !principals.isEmpty else { return [] }
        let query = ObjectQuery(tenant: tenant, kinds: [.roleAssignment], filter: .and(
            .in(PropertyPath(["principalId"]), principals.map { .string($0) }),
            .compare(PropertyPath(["directoryScopeId"]), .eq, .string("/"))))
        let assignments = try await app.store.read { tx in try await tx.query(query) }
        let held = Set(assignments.compactMap { $0.body["roleDefinitionId"]?.stringValue })
        return BuiltInRoles.all.filter { held.contains($0.templateId) }
    }

    /// Roles activated in the legacy view without members (`POST /directoryRoles`), kept as a tenant setting.
    static let activatedSetting = "directoryRoles.activated"

    /// The legacy view: a role is activated when it has an assignment at the tenant scope or was activated from its
    /// template. Its members are the principals of those assignments: adding or removing one writes the same role
    /// assignment the unified API does.
    func handleDirectoryRoles(_ rest: [String]) async throws -> APIResponse {
        let tenant = self.tenant
        let (assignments, activated) = try await app.store.read { tx in
            (try await tx.query(ObjectQuery(tenant: tenant, kinds: [.roleAssignment],
                                            filter: .compare(PropertyPath(["directoryScopeId"]), .eq, .string("/")))),
             try await tx.setting(tenant: tenant, key: Self.activatedSetting)?.arrayValue?.compactMap(\.stringValue) ?? [])
        }
        var byRole: [String: [(principal: String, assignment: String)]] = [:]
        for a in assignments {
            if let role = a.body["roleDefinitionId"]?.stringValue, let principal = a.body["principalId"]?.stringValue {
                byRole[role, default: []].append((principal, a.id))
            }
        }
        func isActive(_ role: BuiltInRole) -> Bool { byRole[role.templateId] != nil || activated.contains(role.templateId) }
        var key = rest.first
        if key == "roleTemplateId", rest.count >= 2 { key = rest[1] }
        guard let key = key?.replacingOccurrences(of: "roleTemplateId=", with: "") else {
            switch method {
            case "GET":
                try context.caller.require(anyOf: readPermissions)
                let options = try context.options(entity: "directoryRole")
                let active = try Lister.inMemory(BuiltInRoles.all.filter(isActive).map(Self.directoryRole), options)
                return .json(["@odata.context": .string("\(context.base)/$metadata#directoryRoles"), "value": .array(active)])
            case "POST":
                return try await activate()
            default:
                throw DirectoryError(.methodNotAllowed, "The HTTP method '\(method)' is not allowed on this resource.")
            }
        }
        guard let role = BuiltInRoles.byTemplateId(key.lowercased()), isActive(role) else { throw DirectoryError.notFound(key) }
        let memberTail = rest.first == "roleTemplateId" ? Array(rest.dropFirst(2)) : Array(rest.dropFirst())
        let members = byRole[role.templateId] ?? []
        switch (memberTail.first, method) {
        case (nil, "GET"):
            try context.caller.require(anyOf: readPermissions)
            return .json(Renderer.select(Self.directoryRole(role), try context.select(entity: "directoryRole")))
        case ("members", "GET") where memberTail.count == 1:
            try context.caller.require(anyOf: readPermissions)
            return try await Lister(context: context, app: app).list(
                kinds: [.user, .group, .servicePrincipal], scope: .ids(members.map(\.principal)),
                contextPath: "directoryObjects", entity: nil, polymorphic: true)
        case ("members", "POST") where memberTail.count == 2 && memberTail[1] == "$ref":
            try context.caller.require(anyOf: ["RoleManagement.ReadWrite.Directory"])
            guard let reference = try context.request.jsonObject()["@odata.id"]?.stringValue,
                  let principal = RequestBody.referencedId(reference) else {
                throw DirectoryError.badRequest("Invalid @odata.id: expected a URL that ends with a directory object id.")
            }
            _ = try await app.directory.create(tenant: tenant, kind: .roleAssignment, body: [
                "principalId": .string(principal), "roleDefinitionId": .string(role.templateId), "directoryScopeId": "/",
            ], actor: context.caller.actor)
            return .noContent
        case ("members", "DELETE") where memberTail.count == 3 && memberTail[2] == "$ref":
            try context.caller.require(anyOf: ["RoleManagement.ReadWrite.Directory"])
            guard let assignment = members.first(where: { $0.principal == memberTail[1].lowercased() }) else {
                throw DirectoryError.notFound(memberTail[1])
            }
            try await app.directory.delete(tenant: tenant, id: assignment.assignment, kind: .roleAssignment, actor: context.caller.actor)
            return .noContent
        default:
            throw DirectoryError(.methodNotAllowed, "The HTTP method '\(method)' is not allowed on this resource.")
        }
    }

    /// `POST /directoryRoles` with `roleTemplateId`: activates a built-in role in the legacy view.
    func activate() async throws -> APIResponse {
        try context.caller.require(anyOf: ["RoleManagement.ReadWrite.Directory"])
        let body = try context.request.jsonObject()
        guard let templateId = body["roleTemplateId"]?.stringValue, let role = BuiltInRoles.byTemplateId(templateId.lowercased()) else {
            throw DirectoryError.badRequest("Property 'roleTemplateId' must name a built-in role template.")
        }
        let tenant = self.tenant
        try await app.store.write { tx in
            var activated = try await tx.setting(tenant: tenant, key: Self.activatedSetting)?.arrayValue?.compactMap(\.stringValue) ?? []
            if !activated.contains(role.templateId) { activated.append(role.templateId) }
            try await tx.putSetting(tenant: tenant, key: Self.activatedSetting, value: .array(activated.map { .string($0) }))
        }
        var out = Self.directoryRole(role)
        out["@odata.context"] = .string("\(context.base)/$metadata#directoryRoles/$entity")
        return .json(out, status: 201, headers: [("Location", "\(context.base)/directoryRoles/\(role.templateId)")])
    }
}
