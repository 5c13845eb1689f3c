import TesseraCore

/// `/identity/conditionalAccess`: policies, named locations, the deleted ones (kept 30 days, restorable), and the
/// What If action `evaluate` (`ConditionalAccessHandler+Evaluate.swift`).
struct ConditionalAccessHandler {
    let api: GraphAPI
    let context: RequestContext

    static let collections: [String: ObjectKind] = ["policies": .conditionalAccessPolicy, "namedLocations": .namedLocation]

    func handle(_ rest: [String]) async throws -> APIResponse {
        guard rest.first == "conditionalAccess", rest.count >= 2 else {
            throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest.last ?? "identity")'.")
        }
        if rest.count == 2, rest[1] == "evaluate" || rest[1] == "microsoft.graph.evaluate" { return try await evaluate() }
        if let kind = Self.collections[rest[1]] {
            if kind == .conditionalAccessPolicy { try await safeguard(Array(rest.dropFirst(2))) }
            return try await ResourceHandler(api: api, context: context, kind: kind).handle(Array(rest.dropFirst(2)))
        }
        guard rest[1] == "deletedItems", rest.count >= 3, let kind = Self.collections[rest[2]] else {
            throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest[1])'.")
        }
        return try await deletedItems(kind, Array(rest.dropFirst(3)))
    }

    /// A policy being created or changed must not lock out every Global Administrator or the caller
    /// (``ConditionalAccessSafeguard``): checked on the policy as it would be stored, before anything is written.
    func safeguard(_ rest: [String]) async throws {
        let method = context.request.method
        guard (rest.isEmpty && method == "POST") || (rest.count == 1 && method == "PATCH"),
              let body = try? context.request.jsonObject() else { return }
        var candidate = body
        if rest.count == 1 {
            let tenant = context.tenant, id = rest[0].lowercased()
            guard let current = try await api.app.store.read({ tx in try await tx.object(tenant: tenant, id: id) }),
                  current.kind == .conditionalAccessPolicy, current.deletedAt == nil else { return }
            candidate = DirectoryService.conditionalAccessPolicy(current.body, patchedWith: body)
        }
        guard let tenant = try await api.app.tenantRecord(context.tenant) else { return }
        try await ConditionalAccessSafeguard(app: api.app, tenant: tenant).check(candidate, caller: context.caller, request: context.request)
    }

    /// `deletedItems/policies`, `deletedItems/policies/{id}` (GET, DELETE: permanently), `…/{id}/restore`.
    func deletedItems(_ kind: ObjectKind, _ rest: [String]) async throws -> APIResponse {
        let method = context.request.method, app = api.app, tenant = context.tenant
        let path = "identity/conditionalAccess/deletedItems/\(kind == .namedLocation ? "namedLocations" : "policies")"
        if rest.isEmpty {
            guard method == "GET" else { throw DirectoryError(.methodNotAllowed, "Use GET.") }
            try context.caller.require(anyOf: Caller.permissions(for: kind, write: false))
            return try await Lister(context: context, app: app).list(kinds: [kind], deleted: true, contextPath: path, entity: kind.rawValue)
        }
        let id = rest[0].lowercased()
        guard let object = try await app.store.read({ tx in try await tx.object(tenant: tenant, id: id) }), object.kind == kind,
              object.deletedAt != nil
        else { throw DirectoryError.notFound(rest[0]) }
        switch (rest.count, method) {
        case (1, "GET"):
            try context.caller.require(anyOf: Caller.permissions(for: kind, write: false))
            var body = Renderer.render(object, select: try context.select(entity: kind.rawValue))
            body["@odata.context"] = .string("\(context.base)/$metadata#\(path)/$entity")
            return .json(body)
        case (1, "DELETE"):
            try context.caller.require(anyOf: Caller.permissions(for: kind, write: true))
            try await app.directory.purgeDeleted(tenant: tenant, id: id, actor: context.caller.actor)
            return .noContent
        case (2, "POST") where rest[1] == "restore" || rest[1].hasSuffix(".restore"):
            try context.caller.require(anyOf: Caller.permissions(for: kind, write: true))
            let restored = try await app.directory.restore(tenant: tenant, id: id, actor: context.caller.actor)
            var body = Renderer.render(restored, select: nil)
            body["@odata.context"] = .string("\(context.base)/$metadata#\(kind.entitySet)/$entity")
            return .json(body)
        default:
            throw DirectoryError(.methodNotAllowed, "The HTTP method '\(method)' is not allowed on this resource.")
        }
    }
}
