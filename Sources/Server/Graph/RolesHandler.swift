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
                return .json(Self.definition(role))
            }
            let options = try context.parseOptions()
            var roles = BuiltInRoles.all
            if case .compare(let path, .eq, .string(let value))? = options.filter {
                roles = roles.filter { role in
                    switch path.segments {
                    case ["displayName"]: role.displayName.lowercased() == value.lowercased()
                    case ["templateId"], ["id"]: role.templateId == value.lowercased()
                    default: false
                    }
                }
            } else if options.filter != nil {
                throw DirectoryError(.unsupportedQuery, "Only displayName, templateId or id eq filters are supported on roleDefinitions.")
            }
            return .json(["@odata.context": .string("\(context.base)/$metadata#roleManagement/directory/roleDefinitions"),
                          "value": .array(roles.map(Self.definition))])
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
                return .json(Renderer.render(found, select: try context.parseOptions().select))
            }
            try context.caller.require(anyOf: ["RoleManagement.ReadWrite.Directory"])
            try await app.directory.delete(tenant: tenant, id: id, kind: .roleAssignment, actor: context.caller.actor)
            return .noContent
        default:
            throw DirectoryError(.methodNotAllowed, "The HTTP method '\(method)' is not allowed on this resource.")
        }
    }

    /// The legacy view: a role is "activated" when it has an assignment at the tenant scope; its id is its template id.
    func handleDirectoryRoles(_ rest: [String]) async throws -> APIResponse {
        try context.caller.require(anyOf: readPermissions)
        guard method == "GET" else { throw DirectoryError(.methodNotAllowed, "Use GET.") }
        let tenant = self.tenant
        let assignments = try await app.store.read { tx in
            try await tx.query(ObjectQuery(tenant: tenant, kinds: [.roleAssignment],
                                           filter: .compare(PropertyPath(["directoryScopeId"]), .eq, .string("/"))))
        }
        var byRole: [String: [String]] = [:]
        for a in assignments {
            if let role = a.body["roleDefinitionId"]?.stringValue, let principal = a.body["principalId"]?.stringValue {
                byRole[role, default: []].append(principal)
            }
        }
        func render(_ role: BuiltInRole) -> JSONValue {
            ["id": .string(role.templateId), "roleTemplateId": .string(role.templateId), "displayName": .string(role.displayName),
             "description": .string(role.description), "deletedDateTime": nil]
        }
        var key = rest.first
        if key == "roleTemplateId", rest.count >= 2 { key = rest[1] }
        if let key = key?.replacingOccurrences(of: "roleTemplateId=", with: "") {
            guard let role = BuiltInRoles.byTemplateId(key.lowercased()), byRole[role.templateId] != nil else { throw DirectoryError.notFound(key) }
            let memberTail = rest.first == "roleTemplateId" ? Array(rest.dropFirst(2)) : Array(rest.dropFirst())
            if memberTail == ["members"] {
                return try await Lister(context: context, app: app).list(
                    kinds: [.user, .group, .servicePrincipal], scope: .ids(byRole[role.templateId] ?? []),
                    contextPath: "directoryObjects", entity: nil, polymorphic: true)
            }
            return .json(render(role))
        }
        let active = BuiltInRoles.all.filter { byRole[$0.templateId] != nil }
        return .json(["@odata.context": .string("\(context.base)/$metadata#directoryRoles"), "value": .array(active.map(render))])
    }
}
