import TesseraCore

/// `/policies/crossTenantAccessPolicy`: the policy, `default` (with `resetToSystemDefault`), `partners` keyed by tenant
/// id and each partner's `identitySynchronization`, as Microsoft documents them in v1.0.
struct CrossTenantAccessHandler {
    let api: GraphAPI
    let context: RequestContext

    static let readPermissions = ["Policy.Read.All", "Policy.ReadWrite.CrossTenantAccess"]
    static let writePermissions = ["Policy.ReadWrite.CrossTenantAccess"]

    var tenant: String { context.tenant }
    var method: String { context.request.method }
    var directory: DirectoryService { api.app.directory }
    var metadata: String { "\(context.base)/$metadata#policies/crossTenantAccessPolicy" }

    func handle(_ rest: [String]) async throws -> APIResponse {
        switch rest.first {
        case nil: return try await policy()
        case "default": return try await defaults(Array(rest.dropFirst()))
        case "partners": return try await partners(Array(rest.dropFirst()))
        case let segment?: throw DirectoryError(.badRequest, "Resource not found for the segment '\(segment)'.")
        }
    }

    func policy() async throws -> APIResponse {
        switch method {
        case "GET":
            try context.caller.require(anyOf: Self.readPermissions)
            var body = try await directory.crossTenantAccessPolicy(tenant: tenant)
            body["@odata.context"] = .string("\(metadata)/$entity")
            return .json(.object(body))
        case "PATCH":
            try context.caller.require(anyOf: Self.writePermissions)
            try await directory.updateCrossTenantAccessPolicy(tenant: tenant, patch: try context.request.jsonObject(), actor: context.caller.actor)
            return .noContent
        default:
            throw DirectoryError(.methodNotAllowed, "The cross-tenant access policy supports GET and PATCH.")
        }
    }

    func defaults(_ rest: [String]) async throws -> APIResponse {
        if let action = rest.first {
            guard rest.count == 1, ["resettosystemdefault", "microsoft.graph.resettosystemdefault"].contains(action.lowercased()) else {
                throw DirectoryError(.badRequest, "Resource not found for the segment '\(action)'.")
            }
            guard method == "POST" else { throw DirectoryError(.methodNotAllowed, "resetToSystemDefault is an action: POST it.") }
            try context.caller.require(anyOf: Self.writePermissions)
            try await directory.resetCrossTenantDefault(tenant: tenant, actor: context.caller.actor)
            return .noContent
        }
        switch method {
        case "GET":
            try context.caller.require(anyOf: Self.readPermissions)
            let (configuration, isServiceDefault) = try await directory.crossTenantDefault(tenant: tenant)
            let stored = try await directory.crossTenantDefaultRedemption(tenant: tenant)
            var body = configuration.graphMembers
            body["@odata.context"] = .string("\(metadata)/default/$entity")
            // The policy id a tenant restrictions header names (Microsoft: "the id field returned" here).
            body["id"] = .string(TenantRestrictionHeader.policyID(tenant: tenant))
            body["isServiceDefault"] = .bool(isServiceDefault)
            body["invitationRedemptionIdentityProviderConfiguration"] = stored
            return .json(.object(body))
        case "PATCH":
            try context.caller.require(anyOf: Self.writePermissions)
            try await directory.updateCrossTenantDefault(tenant: tenant, patch: try context.request.jsonObject(), actor: context.caller.actor)
            return .noContent
        default:
            throw DirectoryError(.methodNotAllowed, "The default configuration supports GET and PATCH, and the resetToSystemDefault action.")
        }
    }

    func partners(_ rest: [String]) async throws -> APIResponse {
        guard let partner = rest.first else {
            switch method {
            case "GET":
                try context.caller.require(anyOf: Self.readPermissions)
                let all = try await directory.crossTenantPartners(tenant: tenant)
                return .json(["@odata.context": .string("\(metadata)/partners"), "value": .array(all.map { .object($0.graph) })])
            case "POST":
                try context.caller.require(anyOf: Self.writePermissions)
                let created = try await directory.createCrossTenantPartner(tenant: tenant, body: try context.request.jsonObject(),
                                                                           actor: context.caller.actor)
                var body = created.graph
                body["@odata.context"] = .string("\(metadata)/partners/$entity")
                return .json(.object(body), status: 201)
            default:
                throw DirectoryError(.methodNotAllowed, "Partner configurations are listed with GET and created with POST.")
            }
        }
        guard Identifier.isGUID(partner) else { throw DirectoryError.notFound(partner) }
        if rest.count > 1 {
            guard rest.count == 2, rest[1] == "identitySynchronization" else {
                throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest[1])'.")
            }
            return try await identitySynchronization(partner)
        }
        switch method {
        case "GET":
            try context.caller.require(anyOf: Self.readPermissions)
            var body = try await directory.crossTenantPartner(tenant: tenant, partner: partner).graph
            body["@odata.context"] = .string("\(metadata)/partners/$entity")
            return .json(.object(body))
        case "PATCH":
            try context.caller.require(anyOf: Self.writePermissions)
            try await directory.updateCrossTenantPartner(tenant: tenant, partner: partner, patch: try context.request.jsonObject(),
                                                         actor: context.caller.actor)
            return .noContent
        case "DELETE":
            try context.caller.require(anyOf: Self.writePermissions)
            try await directory.deleteCrossTenantPartner(tenant: tenant, partner: partner, actor: context.caller.actor)
            return .noContent
        default:
            throw DirectoryError(.methodNotAllowed, "A partner configuration supports GET, PATCH and DELETE.")
        }
    }

    func identitySynchronization(_ partner: String) async throws -> APIResponse {
        switch method {
        case "GET":
            try context.caller.require(anyOf: Self.readPermissions)
            guard let policy = try await directory.crossTenantPartner(tenant: tenant, partner: partner).identitySynchronization else {
                throw DirectoryError.notFound("identitySynchronization")
            }
            var body = policy.graph(tenantID: partner.lowercased()).objectValue ?? [:]
            body["@odata.context"] = .string("\(metadata)/partners('\(partner.lowercased())')/identitySynchronization/$entity")
            return .json(.object(body))
        case "PUT", "PATCH":
            try context.caller.require(anyOf: Self.writePermissions)
            try await directory.putCrossTenantIdentitySync(tenant: tenant, partner: partner, body: try context.request.jsonObject(),
                                                           merge: method == "PATCH", actor: context.caller.actor)
            return .noContent
        case "DELETE":
            try context.caller.require(anyOf: Self.writePermissions)
            try await directory.putCrossTenantIdentitySync(tenant: tenant, partner: partner, body: nil, merge: false, actor: context.caller.actor)
            return .noContent
        default:
            throw DirectoryError(.methodNotAllowed, "identitySynchronization supports PUT, GET, PATCH and DELETE.")
        }
    }
}
