import TesseraCore

/// `/tenantRelationships/multiTenantOrganization`, its `tenants` (keyed by tenant id) and `joinRequest`, as Microsoft
/// documents them in v1.0. Security Administrator is the least privileged role that writes them.
struct CrossTenantOrganizationHandler {
    let api: GraphAPI
    let context: RequestContext

    static let readPermissions = ["MultiTenantOrganization.ReadBasic.All", "MultiTenantOrganization.Read.All", "MultiTenantOrganization.ReadWrite.All"]
    static let writePermissions = ["MultiTenantOrganization.ReadWrite.All"]

    var tenant: String { context.tenant }
    var method: String { context.request.method }
    var directory: DirectoryService { api.app.directory }
    var metadata: String { "\(context.base)/$metadata#tenantRelationships/multiTenantOrganization" }

    func handle(_ rest: [String]) async throws -> APIResponse {
        guard rest.first == "multiTenantOrganization" else {
            throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest.first ?? "tenantRelationships")'.")
        }
        let tail = Array(rest.dropFirst())
        switch tail.first {
        case nil: return try await organization()
        case "tenants": return try await tenants(Array(tail.dropFirst()))
        case "joinRequest" where tail.count == 1: return try await joinRequest()
        case let segment?: throw DirectoryError(.badRequest, "Resource not found for the segment '\(segment)'.")
        }
    }

    func organization() async throws -> APIResponse {
        switch method {
        case "GET":
            try context.caller.require(anyOf: Self.readPermissions)
            var body = try await directory.multiTenantOrganization(tenant: tenant)?.graph ?? MultiTenantOrganization.inactive
            body["@odata.context"] = .string("\(metadata)/$entity")
            return .json(.object(body))
        case "PUT":
            try context.caller.require(anyOf: Self.writePermissions)
            var body = try await directory.createMultiTenantOrganization(tenant: tenant, body: try context.request.jsonObject(),
                                                                        actor: context.caller.actor).graph
            body["@odata.context"] = .string("\(metadata)/$entity")
            return .json(.object(body), status: 201)
        case "PATCH":
            try context.caller.require(anyOf: Self.writePermissions)
            try await directory.updateMultiTenantOrganization(tenant: tenant, patch: try context.request.jsonObject(), actor: context.caller.actor)
            return .noContent
        default:
            throw DirectoryError(.methodNotAllowed, "The multitenant organization supports GET, PUT and PATCH.")
        }
    }

    func tenants(_ rest: [String]) async throws -> APIResponse {
        guard let member = rest.first else {
            switch method {
            case "GET":
                try context.caller.require(anyOf: Self.readPermissions)
                let members = try await directory.multiTenantOrganizationMembers(tenant: tenant)
                return .json(["@odata.context": .string("\(metadata)/tenants"), "value": .array(members.map { .object($0.graph) })])
            case "POST":
                try context.caller.require(anyOf: Self.writePermissions)
                var body = try await directory.addMultiTenantOrganizationMember(tenant: tenant, body: try context.request.jsonObject(),
                                                                               actor: context.caller.actor).graph
                body["@odata.context"] = .string("\(metadata)/tenants/$entity")
                return .json(.object(body), status: 201)
            default:
                throw DirectoryError(.methodNotAllowed, "Tenants are listed with GET and added with POST.")
            }
        }
        guard rest.count == 1, Identifier.isGUID(member) else { throw DirectoryError.notFound(rest.joined(separator: "/")) }
        switch method {
        case "GET":
            try context.caller.require(anyOf: Self.readPermissions)
            guard let found = try await directory.multiTenantOrganizationMembers(tenant: tenant).first(where: { $0.tenantID == member.lowercased() }) else {
                throw DirectoryError.notFound(member)
            }
            var body = found.graph
            body["@odata.context"] = .string("\(metadata)/tenants/$entity")
            return .json(.object(body))
        case "PATCH":
            try context.caller.require(anyOf: Self.writePermissions)
            try await directory.updateMultiTenantOrganizationMember(tenant: tenant, member: member, patch: try context.request.jsonObject(),
                                                                    actor: context.caller.actor)
            return .noContent
        case "DELETE":
            try context.caller.require(anyOf: Self.writePermissions)
            try await directory.removeMultiTenantOrganizationMember(tenant: tenant, member: member, actor: context.caller.actor)
            return .noContent
        default:
            throw DirectoryError(.methodNotAllowed, "A tenant of the organization supports GET, PATCH and DELETE.")
        }
    }

    func joinRequest() async throws -> APIResponse {
        switch method {
        case "GET":
            try context.caller.require(anyOf: Self.readPermissions)
            var body = try await directory.multiTenantOrganizationJoinRequest(tenant: tenant).graph
            body["@odata.context"] = .string("\(metadata)/joinRequest/$entity")
            return .json(.object(body))
        case "PATCH":
            try context.caller.require(anyOf: Self.writePermissions)
            try await directory.updateMultiTenantOrganizationJoinRequest(tenant: tenant, patch: try context.request.jsonObject(),
                                                                         actor: context.caller.actor)
            return .noContent
        default:
            throw DirectoryError(.methodNotAllowed, "The join request supports GET and PATCH.")
        }
    }
}
