import Foundation
import TesseraCore

/// `/users`, `/groups`, `/applications`, `/servicePrincipals`, `/devices`, `/organization`, `/domains`
/// and their members, owners, credentials and assignments.
struct ResourceHandler {
    let api: GraphAPI
    let context: RequestContext
    let kind: ObjectKind

    var app: TesseraApp { api.app }
    var method: String { context.request.method }
    var lister: Lister { Lister(context: context, app: app) }
    var tenant: String { context.tenant }

    func handle(_ rest: [String]) async throws -> APIResponse {
        if rest.isEmpty {
            switch method {
            case "GET":
                try context.caller.require(anyOf: Caller.permissions(for: kind, write: false))
                return try await lister.list(kinds: [kind], contextPath: kind.entitySet, entity: kind.rawValue)
            case "POST" where kind != .organization:
                try context.caller.require(anyOf: Caller.permissions(for: kind, write: true))
                let body = try context.request.jsonObject()
                // A domain's id is its name (`POST /domains {"id": "contoso.com"}`).
                let explicitId = kind == .domain ? body["id"]?.stringValue?.lowercased() : nil
                if kind == .domain, explicitId == nil { throw DirectoryError.badRequest("Property 'id' is required: the domain name.") }
                let created = try await app.directory.create(tenant: tenant, kind: kind, body: body, actor: context.caller.actor,
                                                             id: explicitId)
                return Self.created(created, context: context)
            default: throw methodNotAllowed()
            }
        }
        if rest == ["$count"], method == "GET" {
            try context.caller.require(anyOf: Caller.permissions(for: kind, write: false))
            return try await lister.count(kinds: [kind], entity: kind.rawValue)
        }
        if rest.first == "delta", kind == .user || kind == .group {
            try context.caller.require(anyOf: Caller.permissions(for: kind, write: false))
            return try await DeltaHandler(context: context, app: app, kind: kind).handle()
        }
        let id = try await resolve(rest[0])
        if rest.count == 1 { return try await single(id) }
        if kind == .domain, rest.count == 2, rest[1] == "verify" {
            // Tessera checks no DNS record: the administrator who calls verify vouches for owning the name.
            guard method == "POST" else { throw methodNotAllowed() }
            try context.caller.require(anyOf: Caller.permissions(for: .domain, write: true))
            let verified = try await app.directory.update(tenant: tenant, id: id, kind: .domain, patch: ["isVerified": true],
                                                          actor: context.caller.actor)
            var body = Renderer.render(verified, select: nil)
            body["@odata.context"] = .string("\(context.base)/$metadata#domains/$entity")
            return .json(body)
        }
        if kind == .user, rest.count == 2, rest[1] == "revokeSignInSessions" {
            guard method == "POST" else { throw methodNotAllowed() }
            try context.caller.require(anyOf: Caller.permissions(for: .user, write: true))
            try await context.caller.requireMayManage(user: id, app: app)
            // Every app each session signed into hears of it by back-channel logout (front-channel needs the user's browser).
            let signedInto = try await BackChannelLogout(app: app).sessions(tenant: tenant, userID: id)
            try await RefreshTokens(app: app).revokeAll(tenant: tenant, userID: id)
            await BackChannelLogout(app: app).notify(signedInto, tenant: tenant, baseURL: context.request.baseURL)
            // As Entra does: tokens issued before now are revoked (the proxy refuses their access tokens too).
            _ = try await app.directory.update(tenant: tenant, id: id, kind: .user, patch: [
                "signInSessionsValidFromDateTime": .string(Timestamp.format(app.clock.now))], actor: context.caller.actor, allowReadOnly: true)
            return .json(["@odata.context": .string("\(context.base)/$metadata#Edm.Boolean"), "value": true])
        }
        if kind == .user, rest[1] == "authentication" {
            let tenant = self.tenant
            guard let user = try await app.store.read({ tx in try await tx.object(tenant: tenant, id: id) }) else { throw DirectoryError.notFound(id) }
            return try await AuthenticationMethodsHandler(context: context, app: app, user: user).handle(Array(rest.dropFirst(2)))
        }
        if kind == .servicePrincipal, rest[1] == "synchronization" {
            let tenant = self.tenant
            guard let sp = try await app.store.read({ tx in try await tx.object(tenant: tenant, id: id) }), sp.kind == .servicePrincipal,
                  sp.deletedAt == nil else { throw DirectoryError.notFound(id) }
            return try await SynchronizationHandler(context: context, app: app, servicePrincipal: sp).handle(Array(rest.dropFirst(2)))
        }
        return try await RelationHandler(resource: self, id: id).handle(Array(rest.dropFirst()))
    }

    /// The answer to a create: 201, the object, where it is and its ETag (also for a create in a `$batch`).
    static func created(_ object: StoredObject, context: RequestContext) -> APIResponse {
        let base = context.base, headers = [("Location", "\(base)/\(object.kind.entitySet)/\(object.id)"), ("ETag", ETag.make(object))]
        let odataContext = "\(base)/$metadata#\(object.kind.entitySet)/$entity"
        // A user (the creates that come by the thousand) is written straight to bytes, the same bytes as the rendering below.
        if let bytes = Renderer.userBytes(object, context: odataContext) { return .json(bytes: bytes, status: 201, headers: headers) }
        var rendered = Renderer.render(object, select: nil)
        rendered["@odata.context"] = .string(odataContext)
        return .json(rendered, status: 201, headers: headers)
    }

    func methodNotAllowed() -> DirectoryError {
        DirectoryError(.methodNotAllowed, "The HTTP method '\(method)' is not allowed on this resource.")
    }

    /// An id, a UPN (users) or `appId=…` (applications, service principals) to an object id of this kind.
    func resolve(_ key: String) async throws -> String {
        let tenant = self.tenant, kind = self.kind
        let found: StoredObject? = try await app.store.read { tx in
            if kind == .user, key.contains("@") {
                guard let id = try await tx.holder(tenant: tenant, key: UniqueKey("userPrincipalName", key)) else { return nil }
                return try await tx.object(tenant: tenant, id: id)
            }
            if key.hasPrefix("deviceId="), kind == .device {
                guard let id = try await tx.holder(tenant: tenant, key: UniqueKey("deviceId", String(key.dropFirst(9)))) else { return nil }
                return try await tx.object(tenant: tenant, id: id)
            }
            if key.hasPrefix("appId="), kind == .application || kind == .servicePrincipal {
                let name = kind == .application ? "appId" : "servicePrincipal:appId"
                guard let id = try await tx.holder(tenant: tenant, key: UniqueKey(name, String(key.dropFirst(6)))) else { return nil }
                return try await tx.object(tenant: tenant, id: id)
            }
            return try await tx.object(tenant: tenant, id: key)
        }
        guard let found, found.kind == kind, found.deletedAt == nil else { throw DirectoryError.notFound(key) }
        return found.id
    }

    func single(_ id: String) async throws -> APIResponse {
        switch method {
        case "GET":
            try context.caller.require(anyOf: Caller.permissions(for: kind, write: false))
            let options = try context.objectOptions(entity: kind.rawValue)
            let tenant = self.tenant
            guard let object = try await app.store.read({ tx in try await tx.object(tenant: tenant, id: id) }) else {
                throw DirectoryError.notFound(id)
            }
            var body = try await context.render(object, options, app: app)
            body["@odata.context"] = .string("\(context.base)/$metadata#\(kind.entitySet)/$entity")
            body["@odata.etag"] = .string(ETag.make(object))
            return .json(body, headers: [("ETag", ETag.make(object))])
        case "PATCH":
            try context.caller.require(anyOf: Caller.permissions(for: kind, write: true))
            guard kind != .domain else { throw methodNotAllowed() }
            if kind == .user { try await context.caller.requireMayManage(user: id, app: app) }
            _ = try await app.directory.update(tenant: tenant, id: id, kind: kind, patch: try context.request.jsonObject(),
                                               actor: context.caller.actor, ifMatch: try context.etagVersion())
            return .noContent
        case "DELETE":
            try context.caller.require(anyOf: Caller.permissions(for: kind, write: true))
            guard kind != .organization, kind != .domain else { throw methodNotAllowed() }
            if kind == .user { try await context.caller.requireMayManage(user: id, app: app) }
            try await app.directory.delete(tenant: tenant, id: id, kind: kind, actor: context.caller.actor,
                                           ifMatch: try context.etagVersion())
            return .noContent
        default:
            throw methodNotAllowed()
        }
    }
}
