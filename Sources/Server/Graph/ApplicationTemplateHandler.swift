import TesseraCore

/// `POST /applicationTemplates/{id}/instantiate` for the one gallery template Tessera has: Microsoft's cross-tenant
/// synchronization configuration (`518e5f48-1fc8-4c48-9387-9fdf28b0dfe7`). It adds an application and its service
/// principal (the `msiam_access` app role, assignment required), whose synchronization jobs push users and groups to a
/// target tenant. Answered with Graph's `applicationServicePrincipal`.
struct ApplicationTemplateHandler {
    let api: GraphAPI
    let context: RequestContext

    static let crossTenantSynchronization = "518e5f48-1fc8-4c48-9387-9fdf28b0dfe7"

    func handle(_ rest: [String]) async throws -> APIResponse {
        guard rest.count == 2, rest[1] == "instantiate" else {
            throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest.last ?? "applicationTemplates")'.")
        }
        guard context.request.method == "POST" else { throw DirectoryError(.methodNotAllowed, "Use POST to instantiate an application template.") }
        try context.caller.require(anyOf: Caller.permissions(for: .application, write: true))
        guard rest[0].lowercased() == Self.crossTenantSynchronization else {
            throw DirectoryError.notFound(rest[0])
        }
        let body = try context.request.jsonObject()
        guard let name = body["displayName"]?.stringValue, !name.isEmpty else { throw DirectoryError.badRequest("Property 'displayName' is required.") }
        let directory = api.app.directory, tenant = context.tenant, actor = context.caller.actor
        let role: JSONValue = ["allowedMemberTypes": ["User"], "displayName": "msiam_access", "id": .string(Identifier.make()), "isEnabled": true,
                               "description": "msiam_access", "value": nil, "origin": "Application"]
        let application = try await directory.create(tenant: tenant, kind: .application, body: [
            "displayName": .string(name), "applicationTemplateId": .string(Self.crossTenantSynchronization), "appRoles": [role],
        ], actor: actor, allowReadOnly: true)
        let servicePrincipal = try await directory.create(tenant: tenant, kind: .servicePrincipal, body: [
            "appId": application.body["appId"] ?? nil, "applicationTemplateId": .string(Self.crossTenantSynchronization),
            "appRoleAssignmentRequired": true, "tags": ["WindowsAzureActiveDirectoryIntegratedApp"],
        ], actor: actor, allowReadOnly: true)
        return .json(["@odata.context": .string("\(context.base)/$metadata#microsoft.graph.applicationServicePrincipal"),
                      "application": Renderer.render(application, select: nil), "servicePrincipal": Renderer.render(servicePrincipal, select: nil)],
                     status: 201)
    }
}
