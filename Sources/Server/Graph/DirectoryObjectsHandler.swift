import Foundation
import TesseraCore

/// `/directoryObjects/{id}`, `/directoryObjects/getByIds` and `/directory/deletedItems`.
struct DirectoryObjectsHandler {
    let api: GraphAPI
    let context: RequestContext

    var app: TesseraApp { api.app }
    var tenant: String { context.tenant }
    var method: String { context.request.method }

    func handle(_ rest: [String]) async throws -> APIResponse {
        try context.caller.require(anyOf: ["Directory.Read.All", "Directory.ReadWrite.All"])
        if rest == ["getByIds"], method == "POST" {
            let body = try context.request.jsonObject()
            guard let ids = body["ids"]?.arrayValue?.compactMap(\.stringValue), ids.count <= 1000 else {
                throw DirectoryError.badRequest("Property 'ids' is required: up to 1000 object ids.")
            }
            let types = Set(body["types"]?.arrayValue?.compactMap(\.stringValue) ?? [])
            let tenant = self.tenant
            let objects = try await app.store.read { tx in try await tx.objects(tenant: tenant, ids: ids.map { $0.lowercased() }) }
            // Directory objects only, as `GET /directoryObjects/{id}` answers: never an authentication method or a policy.
            let value = objects.filter {
                $0.deletedAt == nil && ObjectKind.directoryObjects.contains($0.kind) && (types.isEmpty || types.contains($0.kind.rawValue))
            }.map { Renderer.render($0, select: nil, polymorphic: true) }
            return .json(["@odata.context": .string("\(context.base)/$metadata#directoryObjects"), "value": .array(value)])
        }
        guard rest.count == 1, method == "GET" else { throw DirectoryError(.methodNotAllowed, "Use GET.") }
        if let cast = GraphAPI.castName(rest[0]) {
            // `/directoryObjects/microsoft.graph.user`: the directory objects of one type.
            let kind = ObjectKind(rawValue: cast)
            guard ObjectKind.directoryObjects.contains(kind) else { throw DirectoryError.notFound(rest[0]) }
            return try await Lister(context: context, app: app).list(kinds: [kind], contextPath: "directoryObjects/\(rest[0])",
                                                                     entity: kind.rawValue, polymorphic: true)
        }
        let id = rest[0].lowercased(), tenant = self.tenant
        guard let object = try await app.store.read({ tx in try await tx.object(tenant: tenant, id: id) }), object.deletedAt == nil,
              ObjectKind.directoryObjects.contains(object.kind)
        else { throw DirectoryError.notFound(id) }
        return .json(Renderer.render(object, select: try context.select(entity: object.kind.rawValue), polymorphic: true))
    }

    /// `/directory/deletedItems/microsoft.graph.user`, `/directory/deletedItems/{id}`, `…/{id}/restore`.
    func handleDirectory(_ rest: [String]) async throws -> APIResponse {
        if rest.first == "recovery" { return try await RecoveryHandler(context: context, app: app).handle(Array(rest.dropFirst())) }
        if rest.first == "onPremisesSynchronization" {
            return try await OnPremisesSyncHandler(context: context, app: app).handle(Array(rest.dropFirst()))
        }
        guard rest.first == "deletedItems" else { throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest.first ?? "")'.") }
        let tail = Array(rest.dropFirst())
        if let cast = tail.first, let kindName = GraphAPI.castName(cast) {
            let kind = ObjectKind(rawValue: kindName)
            guard kind.isSoftDeletable, ObjectKind.directoryObjects.contains(kind) else { throw DirectoryError.badRequest("Deleted items of type '\(cast)' are not supported.") }
            try context.caller.require(anyOf: Caller.permissions(for: kind, write: false))
            let lister = Lister(context: context, app: app)
            if tail.count == 2, tail[1] == "$count" { return try await lister.count(kinds: [kind], entity: kind.rawValue) }
            guard tail.count == 1, method == "GET" else { throw DirectoryError(.methodNotAllowed, "Use GET.") }
            return try await lister.list(kinds: [kind], deleted: true, contextPath: "directoryObjects", entity: kind.rawValue, polymorphic: true)
        }
        guard let id = tail.first?.lowercased() else {
            throw DirectoryError.badRequest("Specify the type of deleted items, e.g. /directory/deletedItems/microsoft.graph.user.")
        }
        let tenant = self.tenant
        guard let object = try await app.store.read({ tx in try await tx.object(tenant: tenant, id: id) }), object.deletedAt != nil,
              ObjectKind.directoryObjects.contains(object.kind)
        else { throw DirectoryError.notFound(id) }
        switch (tail.count, method) {
        case (1, "GET"):
            try context.caller.require(anyOf: Caller.permissions(for: object.kind, write: false))
            return .json(Renderer.render(object, select: try context.select(entity: object.kind.rawValue), polymorphic: true))
        case (1, "DELETE"):
            try context.caller.require(anyOf: Caller.permissions(for: object.kind, write: true))
            try await app.directory.purgeDeleted(tenant: tenant, id: id, actor: context.caller.actor)
            return .noContent
        case (2, "POST") where tail[1] == "restore":
            try context.caller.require(anyOf: Caller.permissions(for: object.kind, write: true))
            let restored = try await app.directory.restore(tenant: tenant, id: id, actor: context.caller.actor)
            return .json(Renderer.render(restored, select: nil, polymorphic: true))
        default:
            throw DirectoryError(.methodNotAllowed, "The HTTP method '\(method)' is not allowed on this resource.")
        }
    }
}
