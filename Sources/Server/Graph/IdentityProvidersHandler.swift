import TesseraCore

/// `/identity/identityProviders`: the OpenID Connect providers a tenant trusts for B2B collaboration with users of
/// another deployment, in beta's `oidcIdentityProvider` shape (create, list, get, update, delete); no other type of
/// provider exists here (Tessera federates with no social or SAML provider).
struct IdentityProvidersHandler {
    let api: GraphAPI
    let context: RequestContext

    static let readPermissions = ["IdentityProvider.Read.All", "IdentityProvider.ReadWrite.All"]
    static let writePermissions = ["IdentityProvider.ReadWrite.All"]

    var tenant: String { context.tenant }
    var directory: DirectoryService { api.app.directory }
    var metadata: String { "\(context.base)/$metadata#identity/identityProviders" }

    func handle(_ rest: [String]) async throws -> APIResponse {
        let method = context.request.method
        guard let id = rest.first else {
            switch method {
            case "GET":
                try context.caller.require(anyOf: Self.readPermissions)
                let all = try await directory.identityProviders(tenant: tenant)
                return .json(["@odata.context": .string(metadata), "value": .array(all.map { .object($0.graph) })])
            case "POST":
                try context.caller.require(anyOf: Self.writePermissions)
                let created = try await directory.createIdentityProvider(tenant: tenant, body: try context.request.jsonObject(),
                                                                         actor: context.caller.actor, sealing: api.app.keySealing)
                var body = created.graph
                body["@odata.context"] = .string("\(metadata)/$entity")
                return .json(.object(body), status: 201)
            default:
                throw DirectoryError(.methodNotAllowed, "Identity providers are listed with GET and created with POST.")
            }
        }
        guard rest.count == 1 else { throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest[1])'.") }
        switch method {
        case "GET":
            try context.caller.require(anyOf: Self.readPermissions)
            var body = try await directory.identityProvider(tenant: tenant, id: id).graph
            body["@odata.context"] = .string("\(metadata)/$entity")
            return .json(.object(body))
        case "PATCH":
            try context.caller.require(anyOf: Self.writePermissions)
            try await directory.updateIdentityProvider(tenant: tenant, id: id, patch: try context.request.jsonObject(), actor: context.caller.actor,
                                                 sealing: api.app.keySealing)
            return .noContent
        case "DELETE":
            try context.caller.require(anyOf: Self.writePermissions)
            try await directory.deleteIdentityProvider(tenant: tenant, id: id, actor: context.caller.actor, sealing: api.app.keySealing)
            return .noContent
        default:
            throw DirectoryError(.methodNotAllowed, "An identity provider supports GET, PATCH and DELETE.")
        }
    }
}
