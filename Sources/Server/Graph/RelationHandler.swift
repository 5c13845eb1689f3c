import Foundation
import TesseraCore

/// `/{set}/{id}/{relation}…`: members, owners, memberOf, transitive views, manager, credentials and
/// app role assignments.
struct RelationHandler {
    let resource: ResourceHandler
    let id: String

    var context: RequestContext { resource.context }
    var app: TesseraApp { resource.app }
    var kind: ObjectKind { resource.kind }
    var method: String { context.request.method }
    var tenant: String { context.tenant }
    var caller: Caller { context.caller }

    static let memberKinds: [ObjectKind] = [.user, .group, .device, .servicePrincipal]

    func handle(_ rest: [String]) async throws -> APIResponse {
        let relation = rest[0]
        var tail = Array(rest.dropFirst())
        // OData casts: members/microsoft.graph.user
        var kinds: [ObjectKind]? = nil
        if let cast = tail.first, let kindName = GraphAPI.castName(cast) {
            kinds = [ObjectKind(rawValue: kindName)]
            tail.removeFirst()
        }
        switch relation {
        case "members", "owners":
            return try await links(relation, tail: tail, kinds: kinds)
        case "registeredOwners" where kind == .device, "registeredUsers" where kind == .device:
            return try await deviceUsers(DeviceUserRelation(rawValue: relation)!, tail: tail, kinds: kinds)
        case "ownedDevices" where kind == .user:
            return try await userDevices(.registeredOwners, tail: tail, kinds: kinds)
        case "registeredDevices" where kind == .user:
            return try await userDevices(.registeredUsers, tail: tail, kinds: kinds)
        case "memberOf", "transitiveMemberOf":
            try caller.require(anyOf: Caller.permissions(for: kind, write: false))
            return try await memberships(transitive: relation == "transitiveMemberOf", cast: kinds, tail: tail)
        case "transitiveMembers":
            try caller.require(anyOf: Caller.permissions(for: kind, write: false))
            let tenant = self.tenant, id = self.id, directory = app.directory
            let ids = try await app.store.read { tx in
                relation == "transitiveMembers"
                    ? try await directory.transitiveMembers(tenant: tenant, of: id, tx: tx)
                    : try await directory.transitiveGroups(tenant: tenant, of: id, tx: tx)
            }
            return try await list(.ids(ids), kinds: kinds ?? Self.memberKinds, tail: tail)
        case "ownedObjects":
            try caller.require(anyOf: Caller.permissions(for: kind, write: false))
            return try await list(.sources(of: id, relation: "owners"), kinds: kinds ?? [.group, .application, .servicePrincipal, .device], tail: tail)
        case "directReports":
            try caller.require(anyOf: Caller.permissions(for: kind, write: false))
            return try await list(.sources(of: id, relation: "manager"), kinds: kinds ?? [.user], tail: tail)
        case _ where Self.membershipFunctions.contains(relation) && tail.isEmpty:
            return try await membershipFunction(relation)
        case "manager" where kind == .user:
            return try await manager(tail)
        case "addPassword" where kind == .application || kind == .servicePrincipal:
            guard method == "POST" else { throw resource.methodNotAllowed() }
            try caller.require(anyOf: Caller.permissions(for: kind, write: true))
            let body = context.request.body.isEmpty ? [:] : try context.request.jsonObject()
            let credential = body["passwordCredential"]?.objectValue ?? [:]
            let created = try await app.directory.addPassword(
                tenant: tenant, objectId: id, displayName: credential["displayName"]?.stringValue,
                endDateTime: credential["endDateTime"]?.stringValue, actor: caller.actor)
            var out = created
            out["@odata.context"] = .string("\(context.base)/$metadata#microsoft.graph.passwordCredential")
            return .json(out)
        case "removePassword" where kind == .application || kind == .servicePrincipal:
            guard method == "POST" else { throw resource.methodNotAllowed() }
            try caller.require(anyOf: Caller.permissions(for: kind, write: true))
            guard let keyId = try context.request.jsonObject()["keyId"]?.stringValue else {
                throw DirectoryError.badRequest("Property 'keyId' is required.")
            }
            try await app.directory.removePassword(tenant: tenant, objectId: id, keyId: keyId, actor: caller.actor)
            return .noContent
        case "oauth2PermissionGrants" where kind == .servicePrincipal || kind == .user:
            guard tail.isEmpty, method == "GET" else { throw resource.methodNotAllowed() }
            try caller.require(anyOf: Caller.permissions(for: .oauth2PermissionGrant, write: false))
            let field = kind == .servicePrincipal ? "clientId" : "principalId"
            return try await resource.lister.list(kinds: [.oauth2PermissionGrant], contextPath: "oauth2PermissionGrants",
                                                  entity: ObjectKind.oauth2PermissionGrant.rawValue,
                                                  constraint: .compare(PropertyPath([field]), .eq, .string(id)))
        case "appRoleAssignments" where [.user, .group, .servicePrincipal].contains(kind):
            return try await assignments(field: "principalId", tail: tail)
        case "appRoleAssignedTo" where kind == .servicePrincipal:
            return try await assignments(field: "resourceId", tail: tail)
        default:
            throw DirectoryError(.badRequest, "Resource not found for the segment '\(relation)'.")
        }
    }

    /// `memberOf` and `transitiveMemberOf`: the groups, and the directory roles held tenant-wide (directly, or for
    /// `transitiveMemberOf` through a role-assignable group), as Entra lists them. A cast picks one of the two.
    func memberships(transitive: Bool, cast: [ObjectKind]?, tail: [String]) async throws -> APIResponse {
        let tenant = self.tenant, id = self.id, directory = app.directory
        let groups = try await app.store.read { tx in
            transitive ? try await directory.transitiveGroups(tenant: tenant, of: id, tx: tx)
                : try await tx.sources(tenant: tenant, target: id, relation: "members")
        }
        let wantsRoles = cast == nil || cast == [.directoryRole]
        let roles = wantsRoles
            ? try await RolesHandler.heldRoles(by: [id] + (transitive ? groups : []), tenant: tenant, app: app).map(RolesHandler.directoryRole)
            : []
        if cast == [.directoryRole] {
            if tail == ["$count"] { return try await resource.lister.count(kinds: [.group], scope: .ids([]), entity: "directoryRole", virtual: roles) }
            guard tail.isEmpty, method == "GET" else { throw resource.methodNotAllowed() }
            return try await resource.lister.list(kinds: [.group], scope: .ids([]), contextPath: "directoryObjects",
                                                  entity: "directoryRole", polymorphic: true, virtual: roles)
        }
        let kinds = cast ?? [.group]
        if tail == ["$count"] {
            return try await resource.lister.count(kinds: kinds, scope: .ids(groups), entity: cast == nil ? nil : kinds[0].rawValue, virtual: roles)
        }
        guard tail.isEmpty, method == "GET" else { throw resource.methodNotAllowed() }
        return try await resource.lister.list(kinds: kinds, scope: .ids(groups), contextPath: "directoryObjects",
                                              entity: cast == nil ? nil : kinds[0].rawValue, polymorphic: true, virtual: roles)
    }

    func list(_ scope: QueryScope, kinds: [ObjectKind], tail: [String]) async throws -> APIResponse {
        let entity = kinds.count == 1 ? kinds[0].rawValue : nil
        if tail == ["$count"] { return try await resource.lister.count(kinds: kinds, scope: scope, entity: entity) }
        guard tail.isEmpty, method == "GET" else { throw resource.methodNotAllowed() }
        return try await resource.lister.list(kinds: kinds, scope: scope, contextPath: "directoryObjects", entity: entity,
                                              polymorphic: kinds.count > 1 || kinds.first != kind)
    }

    /// members / owners: list, `$ref` add and remove.
    func links(_ relation: String, tail: [String], kinds: [ObjectKind]?) async throws -> APIResponse {
        let targetKinds = relation == "members" ? Self.memberKinds : [.user, .servicePrincipal]
        if tail == ["$ref"], method == "POST" {
            try requireWrite()
            let target = try Self.referenceTarget(try context.request.jsonObject())
            try await app.directory.addLink(tenant: tenant, source: id, relation: relation, target: target, actor: caller.actor)
            return .noContent
        }
        if tail.count == 2, tail[1] == "$ref", method == "DELETE" {
            try requireWrite()
            try await app.directory.removeLink(tenant: tenant, source: id, relation: relation, target: tail[0].lowercased(), actor: caller.actor)
            return .noContent
        }
        if tail == ["$ref"], method == "DELETE", let target = context.request.parameter("$id")?.split(separator: "/").last {
            try requireWrite()
            try await app.directory.removeLink(tenant: tenant, source: id, relation: relation, target: String(target).lowercased(), actor: caller.actor)
            return .noContent
        }
        try caller.require(anyOf: Caller.permissions(for: kind, write: false))
        return try await list(.targets(of: id, relation: relation), kinds: kinds ?? targetKinds, tail: tail)
    }

    /// The object id a `$ref` body's `@odata.id` ends with (also for a `$ref` in a `$batch`).
    static func referenceTarget(_ body: [String: JSONValue]) throws(DirectoryError) -> String {
        guard let reference = body["@odata.id"]?.stringValue, let target = reference.split(separator: "/").last.map(String.init),
              Identifier.isGUID(target) || target.contains("'")
        else { throw DirectoryError.badRequest("Invalid @odata.id: expected a URL that ends with a directory object id.") }
        return (GraphAPI.normalizeKeySegments([target]).last ?? target).lowercased()
    }

    func requireWrite() throws(DirectoryError) {
        var allowed = Caller.permissions(for: kind, write: true)
        if kind == .group { allowed.append("GroupMember.ReadWrite.All") }
        try caller.require(anyOf: allowed)
    }

    func manager(_ tail: [String]) async throws -> APIResponse {
        if tail == ["$ref"], method == "PUT" {
            try caller.require(anyOf: Caller.permissions(for: .user, write: true))
            guard let reference = try context.request.jsonObject()["@odata.id"]?.stringValue,
                  let target = reference.split(separator: "/").last
            else { throw DirectoryError.badRequest("Invalid @odata.id.") }
            try await app.directory.addLink(tenant: tenant, source: id, relation: "manager", target: String(target).lowercased(), actor: caller.actor)
            return .noContent
        }
        if tail == ["$ref"], method == "DELETE" {
            try caller.require(anyOf: Caller.permissions(for: .user, write: true))
            let tenant = self.tenant, id = self.id
            guard let current = try await app.store.read({ tx in try await tx.targets(tenant: tenant, source: id, relation: "manager") }).first
            else { throw DirectoryError.notFound("manager") }
            try await app.directory.removeLink(tenant: tenant, source: id, relation: "manager", target: current, actor: caller.actor)
            return .noContent
        }
        guard tail.isEmpty, method == "GET" else { throw resource.methodNotAllowed() }
        try caller.require(anyOf: Caller.permissions(for: .user, write: false))
        let tenant = self.tenant, id = self.id
        let manager = try await app.store.read { tx -> StoredObject? in
            guard let managerId = try await tx.targets(tenant: tenant, source: id, relation: "manager").first else { return nil }
            return try await tx.object(tenant: tenant, id: managerId)
        }
        guard let manager, manager.deletedAt == nil else { throw DirectoryError.notFound("manager") }
        return .json(Renderer.render(manager, select: try context.select(entity: "user"), polymorphic: true))
    }

    /// App role assignments granted to (`principalId`) or on (`resourceId`) this object.
    func assignments(field: String, tail: [String]) async throws -> APIResponse {
        let constraint = FilterExpression.compare(PropertyPath([field]), .eq, .string(id))
        if tail.isEmpty, method == "GET" {
            try caller.require(anyOf: Caller.permissions(for: .appRoleAssignment, write: false))
            return try await resource.lister.list(kinds: [.appRoleAssignment], contextPath: "appRoleAssignments",
                                                  entity: "appRoleAssignment", constraint: constraint)
        }
        if tail.isEmpty, method == "POST" {
            try caller.require(anyOf: Caller.permissions(for: .appRoleAssignment, write: true))
            var body = try context.request.jsonObject()
            if body[field] == nil { body[field] = .string(id) }
            guard body[field]?.stringValue?.lowercased() == id else {
                throw DirectoryError.badRequest("The \(field) of the assignment must be the object in the URL.")
            }
            let created = try await app.directory.create(tenant: tenant, kind: .appRoleAssignment, body: body, actor: caller.actor)
            return .json(Renderer.render(created, select: nil), status: 201)
        }
        if tail.count == 1, method == "DELETE" || method == "GET" {
            let assignmentId = tail[0].lowercased(), tenant = self.tenant, id = self.id
            let found = try await app.store.read { tx in try await tx.object(tenant: tenant, id: assignmentId) }
            guard let found, found.kind == .appRoleAssignment, found.body[field]?.stringValue == id else {
                throw DirectoryError.notFound(assignmentId)
            }
            if method == "GET" {
                try caller.require(anyOf: Caller.permissions(for: .appRoleAssignment, write: false))
                return .json(Renderer.render(found, select: nil))
            }
            try caller.require(anyOf: Caller.permissions(for: .appRoleAssignment, write: true))
            try await app.directory.delete(tenant: tenant, id: assignmentId, kind: .appRoleAssignment, actor: caller.actor)
            return .noContent
        }
        throw resource.methodNotAllowed()
    }
}
