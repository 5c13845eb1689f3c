import Foundation
import TesseraCore

/// Authentication strengths: `/identity/conditionalAccess/authenticationStrength/…` (policies, their combination
/// configurations, `updateAllowedCombinations`, `usage`, the method modes and the allowed combinations) and the same
/// policies at `/policies/authenticationStrengthPolicies`.
struct AuthenticationStrengthHandler {
    let api: GraphAPI
    let context: RequestContext
    /// Where the policies collection was addressed (`identity/conditionalAccess/authenticationStrength/policies` or
    /// `policies/authenticationStrengthPolicies`), for `@odata.context`.
    let collectionPath: String

    var directory: DirectoryService { api.app.directory }
    var tenant: String { context.tenant }
    var method: String { context.request.method }

    static let readPermissions = ["Policy.Read.All", "Policy.ReadWrite.ConditionalAccess", "Policy.ReadWrite.AuthenticationMethod"]
    static let writePermissions = ["Policy.ReadWrite.ConditionalAccess", "Policy.ReadWrite.AuthenticationMethod"]
    /// The roles that may change strengths for a signed-in user, as Microsoft documents (and Global Administrator).
    static let writeRoles: Set<String> = [BuiltInRoles.globalAdministrator, BuiltInRoles.conditionalAccessAdministrator,
                                          BuiltInRoles.securityAdministrator]

    /// `identity/conditionalAccess/authenticationStrength/{rest}`.
    static func root(api: GraphAPI, context: RequestContext, _ rest: [String]) async throws -> APIResponse {
        let base = "identity/conditionalAccess/authenticationStrength"
        let handler = AuthenticationStrengthHandler(api: api, context: context, collectionPath: "\(base)/policies")
        switch rest.first {
        case nil:
            // The root: its one property is the list of combinations; policies and method modes are its collections.
            try handler.requireRead()
            guard context.request.method == "GET" else { throw handler.methodNotAllowed() }
            return .json(["@odata.context": .string("\(context.base)/$metadata#\(base)/$entity"),
                          "combinations": .array(AuthenticationStrengthRules.combinations.map(JSONValue.string))])
        case "policies":
            return try await handler.policies(Array(rest.dropFirst()))
        case "authenticationMethodModes":
            try handler.requireRead()
            guard context.request.method == "GET" else { throw handler.methodNotAllowed() }
            let modes = AuthenticationStrengthRules.methodModeDetails
            if rest.count == 2 {
                guard let mode = modes.first(where: { $0["id"]?.stringValue == rest[1] }) else { throw DirectoryError.notFound(rest[1]) }
                return .json(handler.annotated(mode, context: "\(base)/authenticationMethodModes/$entity"))
            }
            guard rest.count == 1 else { throw DirectoryError.notFound(rest.joined(separator: "/")) }
            return .json(["@odata.context": .string("\(context.base)/$metadata#\(base)/authenticationMethodModes"), "value": .array(modes)])
        case "combinations" where rest.count == 1:
            try handler.requireRead()
            guard context.request.method == "GET" else { throw handler.methodNotAllowed() }
            return .json(["@odata.context": .string("\(context.base)/$metadata#\(base)/combinations"),
                          "value": .array(AuthenticationStrengthRules.combinations.map(JSONValue.string))])
        default:
            throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest.first ?? "authenticationStrength")'.")
        }
    }

    /// The policies collection and everything under it.
    func policies(_ rest: [String]) async throws -> APIResponse {
        // `usage()` arrives as `usage` and an empty key segment.
        var rest = rest
        if rest.count > 1, rest.last == "" { rest.removeLast() }
        guard let id = rest.first else { return try await collection() }
        if rest == ["$count"] {
            guard method == "GET" else { throw methodNotAllowed() }
            try requireRead()
            let options = try context.options(entity: ObjectKind.authenticationStrengthPolicy.rawValue)
            let all = try await directory.authenticationStrengthPolicies(tenant: tenant).map { JSONValue.object($0) }
            return .text(String(all.filter { options.filter?.matches($0) ?? true }.count))
        }
        switch (rest.count, rest.count > 1 ? Self.operation(rest[1]) : "") {
        case (1, _):
            return try await single(id)
        case (2, "$ref") where method == "DELETE":
            // Microsoft's delete example addresses the policy as `…/{id}/$ref`.
            return try await single(id)
        case (2, "updateAllowedCombinations"):
            guard method == "POST" else { throw methodNotAllowed() }
            try requireWrite()
            let result = try await directory.updateAllowedCombinations(tenant: tenant, id: id, body: try context.request.jsonObject(),
                                                                     actor: context.caller.actor)
            return .json(annotated(result, context: "microsoft.graph.updateAllowedCombinationsResult"))
        case (2, "usage"):
            guard method == "GET" else { throw methodNotAllowed() }
            try requireRead()
            let usage = try await directory.authenticationStrengthUsage(tenant: tenant, id: id)
            return .json(["@odata.context": .string("\(context.base)/$metadata#microsoft.graph.authenticationStrengthUsage"),
                          "mfa": .array(usage.mfa.map { Renderer.render($0, select: nil) }),
                          "none": .array(usage.none.map { Renderer.render($0, select: nil) })])
        case (_, "combinationConfigurations") where rest.count <= 3:
            return try await configurations(policyID: id, rest.count == 3 ? rest[2] : nil)
        default:
            throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest[1])'.")
        }
    }

    /// A bound operation's name without its namespace (`microsoft.graph.usage` is `usage`).
    static func operation(_ segment: String) -> String { GraphAPI.castName(segment) ?? segment }

    func collection() async throws -> APIResponse {
        switch method {
        case "GET":
            try requireRead()
            let options = try context.options(entity: ObjectKind.authenticationStrengthPolicy.rawValue)
            let all = try await directory.authenticationStrengthPolicies(tenant: tenant).map { rendered($0) }
            var body: [String: JSONValue] = ["@odata.context": .string("\(context.base)/$metadata#\(collectionPath)"),
                                             "value": .array(try Lister.inMemory(all, options))]
            if options.count { body["@odata.count"] = .int(Int64(all.filter { options.filter?.matches($0) ?? true }.count)) }
            return .json(.object(body))
        case "POST":
            try requireWrite()
            let created = try await directory.createAuthenticationStrengthPolicy(tenant: tenant, body: try context.request.jsonObject(),
                                                                                 actor: context.caller.actor)
            let id = created["id"]?.stringValue ?? ""
            return .json(annotated(rendered(created), context: "\(collectionPath)/$entity"), status: 201,
                         headers: [("Location", "\(context.base)/\(collectionPath)/\(id)")])
        default:
            throw methodNotAllowed()
        }
    }

    func single(_ id: String) async throws -> APIResponse {
        switch method {
        case "GET":
            try requireRead()
            let select = try context.select(entity: ObjectKind.authenticationStrengthPolicy.rawValue)
            let policy = try await directory.authenticationStrengthPolicy(tenant: tenant, id: id)
            return .json(annotated(Renderer.select(rendered(policy), select), context: "\(collectionPath)/$entity"))
        case "PATCH":
            try requireWrite()
            try await directory.updateAuthenticationStrengthPolicy(tenant: tenant, id: id, patch: try context.request.jsonObject(),
                                                                   actor: context.caller.actor)
            return .noContent
        case "DELETE":
            try requireWrite()
            try await directory.deleteAuthenticationStrengthPolicy(tenant: tenant, id: id, actor: context.caller.actor)
            return .noContent
        default:
            throw methodNotAllowed()
        }
    }

    /// `…/policies/{id}/combinationConfigurations[/{configurationID}]`.
    func configurations(policyID: String, _ configurationID: String?) async throws -> APIResponse {
        let path = "\(collectionPath)('\(policyID.lowercased())')/combinationConfigurations"
        switch (configurationID, method) {
        case (_, "GET"):
            try requireRead()
            let policy = try await directory.authenticationStrengthPolicy(tenant: tenant, id: policyID)
            let all = policy["combinationConfigurations"]?.arrayValue ?? []
            guard let configurationID else {
                return .json(["@odata.context": .string("\(context.base)/$metadata#\(path)"), "value": .array(all)])
            }
            guard let found = all.first(where: { $0["id"]?.stringValue == configurationID.lowercased() }) else {
                throw DirectoryError.notFound(configurationID)
            }
            return .json(annotated(found, context: "\(path)/$entity"))
        case (nil, "POST"):
            try requireWrite()
            let created = try await directory.addCombinationConfiguration(tenant: tenant, policyID: policyID,
                                                                          body: try context.request.jsonObject(), actor: context.caller.actor)
            return .json(annotated(.object(created), context: "\(path)/$entity"), status: 201)
        case (let id?, "PATCH"):
            try requireWrite()
            try await directory.updateCombinationConfiguration(tenant: tenant, policyID: policyID, id: id,
                                                               patch: try context.request.jsonObject(), actor: context.caller.actor)
            return .noContent
        case (let id?, "DELETE"):
            try requireWrite()
            try await directory.deleteCombinationConfiguration(tenant: tenant, policyID: policyID, id: id, actor: context.caller.actor)
            return .noContent
        default:
            throw methodNotAllowed()
        }
    }

    /// A policy as Graph shows it, its combination configurations inline (as Graph's list and get examples show them).
    func rendered(_ policy: [String: JSONValue]) -> JSONValue {
        var out = policy
        out["combinationConfigurations"] = policy["combinationConfigurations"] ?? []
        if let id = policy["id"]?.stringValue {
            out["combinationConfigurations@odata.context"] = .string(
                "\(context.base)/$metadata#\(collectionPath)('\(id)')/combinationConfigurations")
        }
        return Renderer.stripPrivate(.object(out))
    }

    func annotated(_ value: JSONValue, context path: String) -> JSONValue {
        guard case .object(var members) = value else { return value }
        members["@odata.context"] = .string("\(context.base)/$metadata#\(path)")
        return .object(members)
    }

    func requireRead() throws(DirectoryError) {
        try context.caller.require(anyOf: Self.readPermissions)
    }

    /// The permission, and for a signed-in user one of the roles Microsoft documents for these writes.
    func requireWrite() throws(DirectoryError) {
        try context.caller.require(anyOf: Self.writePermissions)
        if context.caller.userID != nil, context.caller.directoryRoles.isDisjoint(with: Self.writeRoles) {
            throw DirectoryError(.accessDenied, "Insufficient privileges to complete the operation: changing authentication strengths needs the Conditional Access Administrator, Security Administrator or Global Administrator role.")
        }
    }

    func methodNotAllowed() -> DirectoryError {
        DirectoryError(.methodNotAllowed, "The HTTP method '\(method)' is not allowed on this resource.")
    }
}
