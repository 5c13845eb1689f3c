import Foundation
import TesseraCore

/// Microsoft Graph's directory surface at `/v1.0` and `/beta`.
struct GraphAPI {
    let app: TesseraApp

    /// Entity sets and the kinds they hold.
    static let entitySets: [String: ObjectKind] = [
        "users": .user, "groups": .group, "applications": .application, "servicePrincipals": .servicePrincipal,
        "devices": .device, "organization": .organization, "domains": .domain, "oauth2PermissionGrants": .oauth2PermissionGrant,
    ]

    func handle(_ request: APIRequest) async throws -> APIResponse {
        guard request.body.count <= app.maxBodyBytes else {
            throw DirectoryError(.requestTooLarge, "The request body exceeds the maximum of \(app.maxBodyBytes) bytes.")
        }
        return try await handle(request, as: try await Caller.authenticate(request, app: app))
    }

    /// A request on behalf of a caller already authenticated some other way (the admin center's signed-in user).
    func handle(_ request: APIRequest, as caller: Caller) async throws -> APIResponse {
        let version = request.segments[0]
        var path = Array(request.segments.dropFirst())
        guard !path.isEmpty else {
            return .json(["@odata.context": .string("\(request.baseURL)/\(version)/$metadata"), "value": []])
        }
        // Key-as-segment forms: users('id'), applications(appId='…').
        path = Self.normalizeKeySegments(path)
        let context = RequestContext(request: request, caller: caller, version: version)
        // A governing tenant's administrator writing in a governed tenant is audited at home too.
        if caller.actor.homeTenantId != nil, request.method != "GET" {
            return try await GovernedAudit(app: app).mirroring(caller) {
                path == ["$batch"] ? try await BatchHandler(api: self).handle(context) : try await dispatch(path, context)
            }
        }
        if path == ["$batch"] { return try await BatchHandler(api: self).handle(context) }
        return try await dispatch(path, context)
    }

    func dispatch(_ path: [String], _ c: RequestContext) async throws -> APIResponse {
        let head = path[0]
        if head == "me" {
            guard let userID = c.caller.userID else {
                throw DirectoryError.badRequest("/me request is only valid with delegated authentication flow.")
            }
            return try await me(userID: userID, rest: Array(path.dropFirst()), c)
        }
        if let kind = Self.entitySets[head] {
            return try await ResourceHandler(api: self, context: c, kind: kind).handle(Array(path.dropFirst()))
        }
        switch head {
        case "directoryObjects": return try await DirectoryObjectsHandler(api: self, context: c).handle(Array(path.dropFirst()))
        case "directory" where path.count > 2 && path[1] == "tenantGovernance":
            return try await TenantGovernanceHandler(context: c, app: app).handle(Array(path.dropFirst(2)))
        case "directory": return try await DirectoryObjectsHandler(api: self, context: c).handleDirectory(Array(path.dropFirst()))
        case "roleManagement": return try await RolesHandler(api: self, context: c).handleRoleManagement(Array(path.dropFirst()))
        case "directoryRoles": return try await RolesHandler(api: self, context: c).handleDirectoryRoles(Array(path.dropFirst()))
        case "auditLogs": return try await AuditHandler(api: self, context: c).handle(Array(path.dropFirst()))
        case "connectHealth" where c.version == "beta": return try await HealthHandler(api: self, context: c).handle(Array(path.dropFirst()))
        case "networkAccess" where c.version == "beta": return try await NetworkAccessHandler(api: self, context: c).handle(Array(path.dropFirst()))
        case "policies" where path.count > 1 && path[1] == "authenticationStrengthPolicies":
            return try await AuthenticationStrengthHandler(api: self, context: c, collectionPath: "policies/authenticationStrengthPolicies")
                .policies(Array(path.dropFirst(2)))
        case "policies" where path.count > 1 && path[1] == "crossTenantAccessPolicy":
            return try await CrossTenantAccessHandler(api: self, context: c).handle(Array(path.dropFirst(2)))
        case "tenantRelationships": return try await CrossTenantOrganizationHandler(api: self, context: c).handle(Array(path.dropFirst()))
        case "invitations": return try await CrossTenantInvitationHandler(api: self, context: c).handle(Array(path.dropFirst()))
        case "applicationTemplates": return try await ApplicationTemplateHandler(api: self, context: c).handle(Array(path.dropFirst()))
        case "policies": return try await PolicyHandler(api: self, context: c).handle(Array(path.dropFirst()))
        case "identity" where path.count > 2 && path[1] == "conditionalAccess" && path[2] == "authenticationStrength":
            return try await AuthenticationStrengthHandler.root(api: self, context: c, Array(path.dropFirst(3)))
        case "identity" where path.count > 1 && path[1] == "identityProviders":
            return try await IdentityProvidersHandler(api: self, context: c).handle(Array(path.dropFirst(2)))
        case "identity": return try await ConditionalAccessHandler(api: self, context: c).handle(Array(path.dropFirst()))
        case "admin" where path.count > 1 && path[1] == "configurationManagement":
            return try await ConfigurationManagementHandler(context: c, app: app).handle(Array(path.dropFirst(2)))
        default:
            throw DirectoryError(.badRequest, "Resource not found for the segment '\(head)'.")
        }
    }

    /// `/me` and `/me/authentication/…` for the signed-in user (delegated tokens).
    func me(userID: String, rest: [String], _ c: RequestContext) async throws -> APIResponse {
        let tenant = c.tenant
        guard let user = try await app.store.read({ tx in try await tx.object(tenant: tenant, id: userID) }), user.kind == .user,
              user.deletedAt == nil else { throw DirectoryError.notFound(userID) }
        if rest.isEmpty {
            guard c.request.method == "GET" else { throw DirectoryError(.methodNotAllowed, "Only GET /me is supported.") }
            try c.caller.requireDelegated(anyOf: ["User.Read", "User.ReadWrite", "User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All",
                                                  "Directory.Read.All", "Directory.ReadWrite.All"])
            var body = Renderer.render(user, select: try c.select(entity: "user"))
            body["@odata.context"] = .string("\(c.base)/$metadata#users/$entity")
            return .json(body)
        }
        guard rest.first == "authentication" else {
            // /me/memberOf, /me/manager, /me/getMemberGroups…: the same as /users/{id}/…, with the same permission checks.
            return try await ResourceHandler(api: self, context: c, kind: .user).handle([userID] + rest)
        }
        return try await AuthenticationMethodsHandler(context: c, app: app, user: user, isSelf: true).handle(Array(rest.dropFirst()))
    }

    /// The type name of an OData cast segment (`microsoft.graph.user` or the SDKs' short `graph.user`).
    static func castName(_ segment: String) -> String? {
        for prefix in ["microsoft.graph.", "graph."] where segment.hasPrefix(prefix) { return String(segment.dropFirst(prefix.count)) }
        return nil
    }

    /// Rewrites `users('x')` to `users/x` and `applications(appId='x')` to `applications/appId=x`.
    static func normalizeKeySegments(_ path: [String]) -> [String] {
        var out: [String] = []
        for segment in path {
            if let open = segment.firstIndex(of: "("), segment.hasSuffix(")") {
                let name = String(segment[..<open])
                var key = String(segment[segment.index(after: open)..<segment.index(before: segment.endIndex)])
                if key.hasPrefix("'"), key.hasSuffix("'"), key.count >= 2 { key = String(key.dropFirst().dropLast()) }
                key = key.replacingOccurrences(of: "='", with: "=").replacingOccurrences(of: "''", with: "'")
                if key.hasSuffix("'") { key.removeLast() }
                out.append(name)
                out.append(key)
            } else {
                out.append(segment)
            }
        }
        return out
    }
}

/// One Graph call: the request, the caller and the API version.
struct RequestContext: Sendable {
    let request: APIRequest
    let caller: Caller
    let version: String
    var tenant: String { caller.tenant }
    var base: String { "\(request.baseURL)/\(version)" }
    /// True with `ConsistencyLevel: eventual` (advanced queries).
    var isAdvanced: Bool { request.header("consistencylevel")?.lowercased() == "eventual" }

    func parseOptions() throws(DirectoryError) -> QueryOptions {
        do {
            return try QueryOptions.parse(request.query)
        } catch {
            throw DirectoryError(error.isUnsupported ? .unsupportedQuery : .badRequest, error.message)
        }
    }

    /// The query options with every property name resolved against the schema of `entity` (or of `kinds`).
    func options(entity: String?, kinds: [ObjectKind] = []) throws(DirectoryError) -> QueryOptions {
        let options = try parseOptions()
        return try QueryValidator(entity: entity, kinds: kinds, advanced: isAdvanced, count: options.count, beta: version == "beta")
            .resolve(options)
    }

    /// `$select` and `$expand`, resolved (for a single object).
    func objectOptions(entity: String?, kinds: [ObjectKind] = []) throws(DirectoryError) -> QueryOptions {
        let options = try parseOptions()
        return try QueryValidator(entity: entity, kinds: kinds, advanced: isAdvanced, count: false, beta: version == "beta")
            .resolve(QueryOptions(select: options.select, expand: options.expand, expandSelect: options.expandSelect))
    }

    /// `$select` alone, resolved (for a single object).
    func select(entity: String?, kinds: [ObjectKind] = []) throws(DirectoryError) -> [String]? {
        try objectOptions(entity: entity, kinds: kinds).select
    }

    /// One object as Graph returns it: `$select` applied and `$expand` resolved.
    func render(_ object: StoredObject, _ options: QueryOptions, app: TesseraApp, polymorphic: Bool = false) async throws -> JSONValue {
        let rendered = Renderer.render(object, select: options.select, polymorphic: polymorphic)
        guard let expand = options.expand else { return rendered }
        return try await Expander(app: app, tenant: tenant).expand([rendered], objects: [object], names: expand,
                                                                    selects: options.expandSelect).first ?? rendered
    }

    func etagVersion() throws(DirectoryError) -> Int64? {
        guard let value = request.header("if-match"), value != "*" else { return nil }
        guard let version = ETag.version(value) else {
            throw DirectoryError(.preconditionFailed, "The If-Match ETag does not match the current version of the object.")
        }
        return version
    }
}

/// ETags of directory objects: a weak tag over the object's version.
enum ETag {
    static func make(_ object: StoredObject) -> String { "W/\"\(Base64URL.encode(Data("\(object.id):\(object.version)".utf8)))\"" }
    static func version(_ tag: String) -> Int64? {
        var t = tag
        if t.hasPrefix("W/") { t.removeFirst(2) }
        t = t.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        guard let data = Base64URL.decode(t), let text = String(data: data, encoding: .utf8),
              let colon = text.lastIndex(of: ":") else { return nil }
        return Int64(text[text.index(after: colon)...])
    }
}
