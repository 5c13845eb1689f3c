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
        if rest.first == "filteringPolicies" || rest.first == "filteringProfiles" {
            return try await NetworkAccessPolicyHandler(api: api, context: context).handle(rest)
        }
        if context.request.method == "PATCH", rest.count == 3, rest[0] == "reports", rest[1] == "generativeAIApps" {
            return try await sanction(rest[2])
        }
        try authorize()
        guard context.request.method == "GET" else { throw DirectoryError(.methodNotAllowed, "Only GET is supported on /networkAccess logs and reports.") }
        switch rest.first {
        case "logs" where rest.count >= 2 && rest[1] == "traffic":
            if rest.count == 2 { return try await traffic() }
            if rest.count == 3 { return try await trafficRecord(rest[2]) }
        case "generativeAIApps" where rest.count == 1: return try await catalog()
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

    /// `GET /networkAccess/logs/traffic`: newest first, `$filter` on any property, `$top` up to 1000, `$select`, keyset paging.
    func traffic() async throws -> APIResponse {
        let options = try QueryValidator(entity: nil, advanced: true, count: false).resolve(try context.parseOptions())
        guard options.search == nil else { throw DirectoryError(.unsupportedQuery, "$search is not supported on traffic logs.") }
        guard options.orderBy.allSatisfy({ $0.path.segments == ["createdDateTime"] && $0.descending }) else {
            throw DirectoryError(.unsupportedQuery, "Traffic logs are ordered by createdDateTime desc only.")
        }
        let top = options.top ?? Self.pageSize
        guard (1...Self.pageSize).contains(top) else { throw DirectoryError.badRequest("$top must be between 1 and \(Self.pageSize).") }
        var before: String?
        if let token = options.skipToken {
            guard let data = Base64URL.decode(token), case .object(let state)? = try? JSONParser.parse(Array(data)),
                  let id = state["before"]?.stringValue else { throw DirectoryError.badRequest("Invalid $skiptoken.") }
            before = id
        }
        let found = try await TrafficLog.list(tenant: context.tenant, store: api.app.store, filter: options.filter, limit: top + 1, before: before)
        var body: [String: JSONValue] = [
            "@odata.context": .string("\(context.base)/networkAccess/logs/$metadata#traffic"),
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
    /// sanction state.
    func report() async throws -> APIResponse {
        var body = try await DiscoveryReport.build(tenant: context.tenant, store: api.app.store).json
        let sanctions = try await AppSanctions.load(tenant: context.tenant, store: api.app.store)
        body["value"] = .array((body["value"]?.arrayValue ?? []).map { app in
            var app = app
            app["sanctionState"] = .string((app["appId"]?.stringValue.flatMap { sanctions[$0] } ?? .none).rawValue)
            return app
        })
        body["@odata.context"] = .string("\(context.base)/networkAccess/reports/$metadata#generativeAIApps")
        return .json(body)
    }

    /// `GET /networkAccess/reports/generativeAIApps/{appId}/users`: who used one app.
    func users(of appId: String) async throws -> APIResponse {
        let users = try await DiscoveryReport.users(of: appId, tenant: context.tenant, store: api.app.store)
        return .json(["@odata.context": .string("\(context.base)/networkAccess/reports/$metadata#generativeAIAppUsers"),
                      "value": .array(users.map(\.json))])
    }

    /// `GET /networkAccess/generativeAIApps`: the catalog, each app with its hosts, request patterns, scores, the points
    /// each documented fact gave, and the pages the facts come from, so a score can be checked against its sources.
    func catalog() async throws -> APIResponse {
        let catalog = try Self.catalog()
        let sanctions = try await AppSanctions.load(tenant: context.tenant, store: api.app.store)
        let year = Calendar(identifier: .gregorian).component(.year, from: api.app.clock.now)
        let apps: [JSONValue] = zip(catalog.apps, catalog.scores).map { app, score in
            [
                "id": .string(app.id), "displayName": .string(app.name), "publisher": .string(app.publisher),
                "category": .string(app.category.displayName), "hosts": .array(app.hosts.map { .string($0) }),
                "activityPatterns": .array(app.activityPatterns.map { ["pattern": .string($0.pattern), "activity": .string($0.activity.rawValue)] }),
                "riskScore": .int(Int64(score.overall)), "generalScore": .int(Int64(score.general)), "securityScore": .int(Int64(score.security)),
                "complianceScore": .int(Int64(score.compliance)), "legalScore": .int(Int64(score.legal)),
                "scoreReasons": .array(RiskScore.points(app.factors, year: year).map {
                    ["area": .string($0.area.rawValue), "points": .int(Int64($0.points)), "reason": .string($0.reason)]
                }),
                "sources": .object(app.sources.mapValues { ["url": .string($0.url), "asOf": .string($0.asOf)] }),
                "sanctionState": .string((sanctions[app.id] ?? .none).rawValue),
            ]
        }
        return .json(["@odata.context": .string("\(context.base)/networkAccess/$metadata#generativeAIApps"),
                      "catalogVersion": .string(catalog.version), "value": .array(apps)])
    }

    /// `PATCH /networkAccess/reports/generativeAIApps/{appId}` with `{"sanctionState": "sanctioned|unsanctioned|monitored|none"}`.
    func sanction(_ appId: String) async throws -> APIResponse {
        try authorize(write: true)
        guard case .object(let body)? = try? JSONParser.parse(context.request.body), let raw = body["sanctionState"]?.stringValue,
              let state = AppSanctions.State(rawValue: raw), body.count == 1 else {
            throw DirectoryError.badRequest("The body is {\"sanctionState\": \"sanctioned|unsanctioned|monitored|none\"}.")
        }
        guard try Self.catalog().apps.contains(where: { $0.id == appId }) else { throw DirectoryError.notFound(appId) }
        try await AppSanctions.set(state, app: appId, tenant: context.tenant, store: api.app.store)
        return APIResponse(status: 204)
    }

    /// The shipped catalog (checked by its unit tests; a broken file is a 500 here, never a crash).
    static func catalog() throws -> AICatalog { try loadedCatalog.get() }
    private static let loadedCatalog = Result { () throws(CatalogError) -> AICatalog in
        try AICatalog.bundled(year: Calendar(identifier: .gregorian).component(.year, from: Date()))
    }
}
