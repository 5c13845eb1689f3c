import Foundation
import InternetAccess
import TesseraCore

/// `/beta/networkAccess/generativeAIApps`: the tenant's AI app catalog (the shipped apps, each with its scores, the
/// points each documented fact gave and the pages the facts come from), the custom apps its administrators add
/// (`POST`, `PATCH` and `DELETE` of `{id}`) and their score overrides (`PATCH` and `DELETE` of `{id}/scoreOverride`).
/// Microsoft publishes no Graph API for Entra's shadow-AI catalog, so this shape is Tessera's own. Every write is
/// audited and moves the tenant's change sequence (``AppSanctions/update``), so the proxy filters with it at the next
/// connection.
struct GenerativeAIAppsHandler {
    let api: GraphAPI
    let context: RequestContext
    var handler: NetworkAccessHandler { NetworkAccessHandler(api: api, context: context) }
    var method: String { context.request.method }
    var year: Int { Calendar(identifier: .gregorian).component(.year, from: api.app.clock.now) }
    var author: String { context.caller.actor.userPrincipalName ?? context.caller.actor.displayName }

    func handle(_ rest: [String]) async throws -> APIResponse {
        try handler.authorize(write: method != "GET")
        guard rest.count <= 2 || (rest.count == 3 && rest[2] == "scoreOverride") else {
            throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest.last ?? "generativeAIApps")'.")
        }
        switch (rest.count, method) {
        case (1, "GET"): return try await list()
        case (1, "POST"): return try await create()
        case (2, "GET"): return try await get(rest[1])
        case (2, "PATCH"): return try await update(rest[1])
        case (2, "DELETE"): return try await delete(rest[1])
        case (3, "GET"): return try await getOverride(rest[1])
        case (3, "PATCH"), (3, "PUT"): return try await setOverride(rest[1])
        case (3, "DELETE"): return try await deleteOverride(rest[1])
        default: throw DirectoryError(.methodNotAllowed, "\(method) is not supported here.")
        }
    }

    /// The tenant's settings and catalog.
    func load() async throws -> (AppSanctions, AICatalog) {
        let settings = try await AppSanctions.settings(tenant: context.tenant, store: api.app.store)
        return (settings, settings.catalog(shipped: try NetworkAccessHandler.catalog(), year: year))
    }

    func list() async throws -> APIResponse {
        let (settings, catalog) = try await load()
        return .json(["@odata.context": .string("\(context.base)/networkAccess/$metadata#generativeAIApps"),
                      "catalogVersion": .string(catalog.version),
                      "value": .array(catalog.apps.indices.map { .object(Self.body(catalog, $0, settings, year: year)) })])
    }

    func get(_ id: String) async throws -> APIResponse {
        let (settings, catalog) = try await load()
        guard let index = catalog.index(of: id) else { throw DirectoryError.notFound(id) }
        var body = Self.body(catalog, index, settings, year: year)
        body["@odata.context"] = .string("\(context.base)/networkAccess/$metadata#generativeAIApps/$entity")
        return .json(.object(body))
    }

    /// One app as served: its facts' scores, an override beside them, where the facts come from, and its tag.
    static func body(_ catalog: AICatalog, _ index: Int, _ settings: AppSanctions, year: Int) -> [String: JSONValue] {
        let app = catalog.apps[index], score = catalog.scores[index], computed = catalog.computedScores[index]
        let custom = settings.customApps.first { $0.app.id == app.id }
        func scores(_ s: RiskScore) -> JSONValue {
            ["riskScore": .int(Int64(s.overall)), "generalScore": .int(Int64(s.general)), "securityScore": .int(Int64(s.security)),
             "complianceScore": .int(Int64(s.compliance)), "legalScore": .int(Int64(s.legal))]
        }
        var body: [String: JSONValue] = [
            "id": .string(app.id), "displayName": .string(app.name), "publisher": .string(app.publisher),
            "category": .string(app.category.displayName), "categoryId": .string(app.category.rawValue),
            "hosts": .array(app.hosts.map { .string($0) }),
            "activityPatterns": .array(app.activityPatterns.map { ["pattern": .string($0.pattern), "activity": .string($0.activity.rawValue)] }),
            "catalogScores": scores(computed),
            "scoreReasons": .array(RiskScore.points(app.factors, year: year).map {
                ["area": .string($0.area.rawValue), "points": .int(Int64($0.points)), "reason": .string($0.reason)]
            }),
            "scoreOverride": catalog.scoreOverrides[app.id]?.json ?? .null,
            "sources": .object(app.sources.mapValues { ["url": .string($0.url), "asOf": .string($0.asOf)] }),
            "sanctionState": .string((settings.sanctions[app.id] ?? .none).rawValue),
            "isCustom": .bool(custom != nil),
        ]
        for (key, value) in scores(score).objectValue ?? [:] { body[key] = value }
        if let custom {
            body["createdBy"] = .string(custom.createdBy)
            body["createdDateTime"] = .string(custom.createdDateTime)
            body["lastModifiedDateTime"] = .string(custom.lastModifiedDateTime)
        }
        return body
    }

    /// `POST`: a custom app; its id and hosts must be free in the tenant's catalog.
    func create() async throws -> APIResponse {
        let shipped = try NetworkAccessHandler.catalog()
        let custom = try CustomApp(body: try context.request.jsonObject(), current: nil, author: author, now: now, year: year)
        let year = self.year
        let settings = try await write("Add generative AI app", custom.app.name) { settings in
            guard !settings.customApps.contains(where: { $0.app.id == custom.app.id }) else { throw DirectoryError.duplicate("id") }
            try Self.check(settings.customApps + [custom], shipped: shipped, year: year)
            settings.customApps.append(custom)
        }
        let catalog = settings.catalog(shipped: shipped, year: year)
        var body = Self.body(catalog, catalog.index(of: custom.app.id) ?? 0, settings, year: year)
        body["@odata.context"] = .string("\(context.base)/networkAccess/$metadata#generativeAIApps/$entity")
        return .json(.object(body), status: 201)
    }

    /// `PATCH`: a custom app's properties (a shipped app's are the catalog's: only its tag and score override change).
    func update(_ id: String) async throws -> APIResponse {
        let shipped = try NetworkAccessHandler.catalog()
        let body = try context.request.jsonObject()
        let (author, now, year) = (self.author, self.now, self.year)
        guard shipped.index(of: id) == nil else {
            throw DirectoryError.badRequest("'\(id)' is an app of the shipped catalog: set its sanction state or its scoreOverride instead.")
        }
        try await write("Update generative AI app", id) { settings in
            guard let at = settings.customApps.firstIndex(where: { $0.app.id == id }) else { throw DirectoryError.notFound(id) }
            settings.customApps[at] = try CustomApp(body: body, current: settings.customApps[at], author: author, now: now, year: year)
            try Self.check(settings.customApps, shipped: shipped, year: year)
        }
        return APIResponse(status: 204)
    }

    /// `DELETE`: a custom app, with its tag and override.
    func delete(_ id: String) async throws -> APIResponse {
        try await write("Delete generative AI app", id) { settings in
            guard let at = settings.customApps.firstIndex(where: { $0.app.id == id }) else { throw DirectoryError.notFound(id) }
            settings.customApps.remove(at: at)
            settings.sanctions[id] = nil
            settings.overrides[id] = nil
        }
        return APIResponse(status: 204)
    }

    func getOverride(_ id: String) async throws -> APIResponse {
        let (_, catalog) = try await load()
        guard catalog.index(of: id) != nil else { throw DirectoryError.notFound(id) }
        guard let override = catalog.scoreOverrides[id] else { throw DirectoryError.notFound("\(id)/scoreOverride") }
        return .json(override.json)
    }

    /// `PATCH` (or `PUT`) `{id}/scoreOverride`: the administrator's scores replace the override there was.
    func setOverride(_ id: String) async throws -> APIResponse {
        let (_, catalog) = try await load()
        guard catalog.index(of: id) != nil else { throw DirectoryError.notFound(id) }
        let override = try ScoreOverride(body: try context.request.jsonObject(), author: author, now: now)
        try await write("Override generative AI app scores", id) { settings in settings.overrides[id] = override }
        return .json(override.json)
    }

    func deleteOverride(_ id: String) async throws -> APIResponse {
        try await write("Remove generative AI app score override", id) { settings in
            guard settings.overrides.removeValue(forKey: id) != nil else { throw DirectoryError.notFound("\(id)/scoreOverride") }
        }
        return APIResponse(status: 204)
    }

    var now: String { Timestamp.format(api.app.clock.now) }

    /// The custom apps must make a catalog with the shipped one: ids and hosts unique.
    static func check(_ custom: [CustomApp], shipped: AICatalog, year: Int) throws(DirectoryError) {
        do {
            _ = try AICatalog(version: shipped.version, apps: shipped.apps + custom.map(\.app), year: year)
        } catch {
            throw DirectoryError(.conflict, error.entry.map { "'\($0)': \(error.message)" } ?? error.message)
        }
    }

    @discardableResult
    func write(_ activity: String, _ target: String, _ change: @escaping @Sendable (inout AppSanctions) throws -> Void) async throws -> AppSanctions {
        let settings = try await AppSanctions.update(tenant: context.tenant, store: api.app.store, actor: context.caller.actor,
                                                     now: api.app.clock.now, activity: activity, target: target, change)
        api.app.directory.generations.bump(context.tenant)
        return settings
    }
}
