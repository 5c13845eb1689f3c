import Foundation
import InternetAccess
import TesseraCore

/// Graph beta's `/networkAccess`: the traffic log (`networkAccessTraffic`, as Microsoft documents `GET
/// /networkAccess/logs/traffic`) and Tessera's generative-AI discovery reports (`/networkAccess/reports/generativeAIApps`,
/// a shape of its own: Microsoft publishes no Graph API for its shadow-AI report).
struct NetworkAccessHandler {
    let api: GraphAPI
    let context: RequestContext

    /// Microsoft's default and largest page of traffic records.
    static let pageSize = 1000

    /// The directory roles Microsoft lets read Global Secure Access logs and reports: Global Secure Access Log Reader
    /// and Administrator, Security Reader and Administrator, Global Reader and Administrator.
    static let readerRoles: Set<String> = [
        "843318fb-79a6-4168-9e6f-aa9a07481cc4", "ac434307-12b9-4fa1-a708-88bf58caabc1", BuiltInRoles.securityReader,
        BuiltInRoles.securityAdministrator, BuiltInRoles.globalReader, BuiltInRoles.globalAdministrator,
    ]
    static let permissions: Set<String> = ["NetworkAccess.Read.All", "NetworkAccess.ReadWrite.All"]

    /// The roles that may tag apps sanctioned or unsanctioned: Global Secure Access, Security and Global Administrators.
    static let writerRoles: Set<String> = [
        "ac434307-12b9-4fa1-a708-88bf58caabc1", BuiltInRoles.securityAdministrator, BuiltInRoles.globalAdministrator,
    ]

    func handle(_ rest: [String]) async throws -> APIResponse {
        if rest.first == "filteringPolicies" || rest.first == "filteringProfiles" || rest.first == "promptPolicies" {
            return try await NetworkAccessPolicyHandler(api: api, context: context).handle(rest)
        }
        if rest.first == "generativeAIApps" { return try await GenerativeAIAppsHandler(api: api, context: context).handle(rest) }
        if context.request.method == "PATCH", rest.count == 3, rest[0] == "reports", rest[1] == "generativeAIApps" {
            return try await sanction(rest[2])
        }
        try authorize()
        guard context.request.method == "GET" else { throw DirectoryError(.methodNotAllowed, "Only GET is supported on /networkAccess logs and reports.") }
        switch rest.first {
        case "logs" where rest.count >= 2 && rest[1] == "traffic":
            if rest.count == 2 { return try await traffic() }
            if rest.count == 3 { return try await trafficRecord(rest[2]) }
        case "logs" where rest.count == 2 && rest[1] == "generativeAiInsights": return try await traffic(kind: .generativeAIInsight)
        case "reports" where rest.count >= 2 && rest[1] == "generativeAIApps":
            if rest.count == 2 { return try await report() }
            if rest.count == 4, rest[3] == "users" { return try await users(of: rest[2]) }
        default: break
        }
        throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest.last ?? "networkAccess")'.")
    }

    /// An app needs NetworkAccess.Read.All (or ReadWrite.All); a user one of ``readerRoles``, and with a delegated token
    /// the scope too.
    func authorize(write: Bool = false) throws(DirectoryError) {
        let caller = context.caller
        let permissions: Set<String> = write ? ["NetworkAccess.ReadWrite.All"] : Self.permissions
        if caller.userID == nil {
            guard !caller.roles.isDisjoint(with: permissions) else {
                throw DirectoryError(.accessDenied, "Insufficient privileges to complete the operation: \(write ? "NetworkAccess.ReadWrite.All" : "NetworkAccess.Read.All") is required.")
            }
            return
        }
        // A delegated token also needs the scope; the admin center (no token: a signed-in administrator) is judged by role.
        let delegated = context.request.verifiedToken != nil || context.request.header("authorization") != nil
        guard !caller.directoryRoles.isDisjoint(with: write ? Self.writerRoles : Self.readerRoles),
              !delegated || !caller.scopes.isDisjoint(with: permissions) else {
            throw DirectoryError(.accessDenied, "Insufficient privileges to complete the operation: NetworkAccess.Read.All and a Global Secure Access reader role are required.")
        }
    }

    /// `GET /networkAccess/logs/traffic` (and `…/logs/generativeAiInsights`, one per inspected prompt): newest first,
    /// `$filter` on any property, `$top` up to 1000, `$select`, keyset paging.
    func traffic(kind: ObjectKind = .networkAccessTraffic) async throws -> APIResponse {
        // Each as Microsoft's examples write it.
        let metadata = kind == .networkAccessTraffic ? "\(context.base)/networkAccess/logs/$metadata#traffic"
            : "\(context.base)/$metadata#networkAccess/logs/generativeAiInsights"
        let options = try QueryValidator(entity: nil, advanced: true, count: false).resolve(try context.parseOptions())
        guard options.search == nil else { throw DirectoryError(.unsupportedQuery, "$search is not supported on traffic logs.") }
        guard options.orderBy.allSatisfy({ $0.path.segments == ["createdDateTime"] && $0.descending }) else {
            throw DirectoryError(.unsupportedQuery, "Network access logs are ordered by createdDateTime desc only.")
        }
        let top = options.top ?? Self.pageSize
        guard (1...Self.pageSize).contains(top) else { throw DirectoryError.badRequest("$top must be between 1 and \(Self.pageSize).") }
        var before: String?
        if let token = options.skipToken {
            guard let data = Base64URL.decode(token), case .object(let state)? = try? JSONParser.parse(Array(data)),
                  let id = state["before"]?.stringValue else { throw DirectoryError.badRequest("Invalid $skiptoken.") }
            before = id
        }
        let found = try await TrafficLog.list(tenant: context.tenant, store: api.app.store, kind: kind, filter: options.filter,
                                              limit: top + 1, before: before)
        var body: [String: JSONValue] = [
            "@odata.context": .string(metadata),
            "value": .array(found.prefix(top).map { Renderer.select(.object(Self.graphBody($0.body)), options.select) }),
        ]
        if found.count > top, let last = found.prefix(top).last {
            body["@odata.nextLink"] = .string(Lister(context: context, app: api.app).nextLink(skipToken: Lister.encode(["before": .string(last.id)])))
        }
        return .json(.object(body))
    }

    func trafficRecord(_ id: String) async throws -> APIResponse {
        let tenant = context.tenant
        guard let record = try await api.app.store.read({ tx in try await tx.object(tenant: tenant, id: id) }),
              record.kind == .networkAccessTraffic else { throw DirectoryError.notFound(id) }
        var body = Self.graphBody(record.body)
        body["@odata.context"] = .string("\(context.base)/networkAccess/logs/$metadata#traffic/$entity")
        return .json(.object(body))
    }

    /// The stored record without Tessera's own bookkeeping.
    static func graphBody(_ body: [String: JSONValue]) -> [String: JSONValue] {
        var out = body
        out["origin"] = nil
        return out
    }

    /// `GET /networkAccess/reports/generativeAIApps`: the apps seen, riskiest first, with a daily trend and each app's
    /// sanction state; the scores are the tenant catalog's now (an administrator's override in place of the catalog's,
    /// whatever the records said when they were written), with `scoreOverridden` and `isCustom`.
    func report() async throws -> APIResponse {
        var body = try await DiscoveryReport.build(tenant: context.tenant, store: api.app.store).json
        let settings = try await AppSanctions.settings(tenant: context.tenant, store: api.app.store)
        let catalog = settings.catalog(shipped: try Self.catalog(), year: Calendar(identifier: .gregorian).component(.year, from: api.app.clock.now))
        var apps = (body["value"]?.arrayValue ?? []).map { app in
            var app = app
            let id = app["appId"]?.stringValue ?? ""
            app["sanctionState"] = .string((settings.sanctions[id] ?? .none).rawValue)
            app["isCustom"] = .bool(settings.customApps.contains { $0.app.id == id })
            app["scoreOverridden"] = .bool(catalog.scoreOverrides[id] != nil)
            if let index = catalog.index(of: id) {
                let s = catalog.scores[index]
                for (key, value) in [("riskScore", s.overall), ("generalScore", s.general), ("securityScore", s.security),
                                     ("complianceScore", s.compliance), ("legalScore", s.legal)] { app[key] = .int(Int64(value)) }
            }
            return app
        }
        // Riskiest first again (an override may have moved an app); the sort is stable, so the report's order breaks ties.
        apps.sort { ($0["riskScore"]?.intValue ?? 0) < ($1["riskScore"]?.intValue ?? 0) }
        body["value"] = .array(apps)
        body["@odata.context"] = .string("\(context.base)/networkAccess/reports/$metadata#generativeAIApps")
        return .json(body)
    }

    /// `GET /networkAccess/reports/generativeAIApps/{appId}/users`: who used one app.
    func users(of appId: String) async throws -> APIResponse {
        let users = try await DiscoveryReport.users(of: appId, tenant: context.tenant, store: api.app.store)
        return .json(["@odata.context": .string("\(context.base)/networkAccess/reports/$metadata#generativeAIAppUsers"),
                      "value": .array(users.map(\.json))])
    }

    /// `PATCH /networkAccess/reports/generativeAIApps/{appId}` with `{"sanctionState": "sanctioned|unsanctioned|monitored|none"}`.
    func sanction(_ appId: String) async throws -> APIResponse {
        try authorize(write: true)
        guard case .object(let body)? = try? JSONParser.parse(context.request.body), let raw = body["sanctionState"]?.stringValue,
              let state = AppSanctions.State(rawValue: raw), body.count == 1 else {
            throw DirectoryError.badRequest("The body is {\"sanctionState\": \"sanctioned|unsanctioned|monitored|none\"}.")
        }
        let settings = try await AppSanctions.settings(tenant: context.tenant, store: api.app.store)
        guard try Self.catalog().index(of: appId) != nil || settings.customApps.contains(where: { $0.app.id == appId }) else {
            throw DirectoryError.notFound(appId)
        }
        try await AppSanctions.set(state, app: appId, tenant: context.tenant, store: api.app.store, actor: context.caller.actor,
                                   now: api.app.clock.now)
        api.app.directory.generations.bump(context.tenant)
        return APIResponse(status: 204)
    }

    /// The shipped catalog (checked by its unit tests; a broken file is a 500 here, never a crash).
    static func catalog() throws -> AICatalog { try loadedCatalog.get() }
    private static let loadedCatalog = Result { () throws(CatalogError) -> AICatalog in
        try AICatalog.bundled(year: Calendar(identifier: .gregorian).component(.year, from: Date()))
    }
}
