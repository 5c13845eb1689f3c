import Foundation
public import TesseraCore

/// What the traffic records say about generative-AI use: per app, its users, requests, bytes each way, first and last
/// seen and a daily trend; per user of one app, the same. Built by one pass over the tenant's records (at most
/// ``TrafficLog/retentionDays`` days of requests to catalog apps).
public struct DiscoveryReport: Sendable {
    /// One app's use.
    public struct AppUsage: Sendable, Hashable {
        public var appId: String
        public var name: String
        public var category: String
        public var scores: [String: Int]
        public var users = Set<String>()
        public var requests = 0
        public var prompts = 0
        public var blocked = 0
        public var sentBytes: Int64 = 0
        public var receivedBytes: Int64 = 0
        public var firstSeen = ""
        public var lastSeen = ""
        /// Requests per day (`YYYY-MM-DD`).
        public var daily: [String: Int] = [:]
        public var riskScore: Int { scores["riskScore"] ?? 0 }
    }

    /// One user's use of an app.
    public struct UserUsage: Sendable, Hashable {
        /// The directory user's UPN, or the name the log gave when no user matched.
        public var user: String
        public var userId: String?
        public var requests = 0
        public var prompts = 0
        public var sentBytes: Int64 = 0
        public var receivedBytes: Int64 = 0
        public var firstSeen = ""
        public var lastSeen = ""
    }

    /// Apps, riskiest first (lowest overall score), then by users and requests.
    public var apps: [AppUsage]
    /// Requests per day over all apps.
    public var daily: [(day: String, requests: Int)]
    /// How many records the report read.
    public var records: Int

    /// Reads the tenant's records (those of one app when `appId` is set).
    public static func build(tenant: String, store: any DirectoryStore, appId: String? = nil) async throws -> DiscoveryReport {
        var byApp: [String: AppUsage] = [:]
        var days: [String: Int] = [:]
        var count = 0
        try await scan(tenant: tenant, store: store, appId: appId) { body in
            guard let meta = body["cloudApplicationMetadata"]?.objectValue, let id = meta["cloudApplicationCatalogId"]?.stringValue else { return }
            count += 1
            var usage = byApp[id] ?? AppUsage(
                appId: id, name: meta["name"]?.stringValue ?? id,
                category: meta["categories"]?.arrayValue?.last?.stringValue ?? "",
                scores: Dictionary(uniqueKeysWithValues: ["riskScore", "generalScore", "securityScore", "complianceScore", "legalScore"]
                    .map { ($0, Int(meta[$0]?.intValue ?? 0)) }))
            if let user = Self.userKey(body) { usage.users.insert(user) }
            Self.add(body, meta, to: &usage.requests, &usage.prompts, &usage.sentBytes, &usage.receivedBytes, &usage.firstSeen, &usage.lastSeen)
            if body["action"]?.stringValue == "block" { usage.blocked += 1 }
            let day = String((body["createdDateTime"]?.stringValue ?? "").prefix(10))
            usage.daily[day, default: 0] += 1
            days[day, default: 0] += 1
            byApp[id] = usage
        }
        let apps = byApp.values.sorted {
            ($0.riskScore, -$0.users.count, -$0.requests, $0.appId) < ($1.riskScore, -$1.users.count, -$1.requests, $1.appId)
        }
        return DiscoveryReport(apps: apps, daily: days.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, records: count)
    }

    /// The users of one app, most requests first.
    public static func users(of appId: String, tenant: String, store: any DirectoryStore) async throws -> [UserUsage] {
        var byUser: [String: UserUsage] = [:]
        try await scan(tenant: tenant, store: store, appId: appId) { body in
            guard let key = Self.userKey(body), let meta = body["cloudApplicationMetadata"]?.objectValue else { return }
            var u = byUser[key] ?? UserUsage(user: key, userId: body["userId"]?.stringValue)
            Self.add(body, meta, to: &u.requests, &u.prompts, &u.sentBytes, &u.receivedBytes, &u.firstSeen, &u.lastSeen)
            byUser[key] = u
        }
        return byUser.values.sorted { ($0.requests, $1.user) > ($1.requests, $0.user) }
    }

    static func userKey(_ body: [String: JSONValue]) -> String? {
        body["userPrincipalName"]?.stringValue ?? body["cloudApplicationMetadata"]?["loginUser"]?.stringValue
    }

    static func add(_ body: [String: JSONValue], _ meta: [String: JSONValue], to requests: inout Int, _ prompts: inout Int,
                    _ sent: inout Int64, _ received: inout Int64, _ first: inout String, _ last: inout String) {
        requests += 1
        if meta["activity"]?.stringValue == "prompt" { prompts += 1 }
        sent += body["sentBytes"]?.intValue ?? 0
        received += body["receivedBytes"]?.intValue ?? 0
        let at = body["createdDateTime"]?.stringValue ?? ""
        if first.isEmpty || at < first { first = at }
        if at > last { last = at }
    }

    /// Every record of the tenant (of one app), a page at a time.
    static func scan(tenant: String, store: any DirectoryStore, appId: String?,
                     _ body: ([String: JSONValue]) -> Void) async throws {
        let filter: FilterExpression? = appId.map {
            .compare(PropertyPath(["cloudApplicationMetadata", "cloudApplicationCatalogId"]), .eq, .string($0))
        }
        var after: String?
        while true {
            let query = ObjectQuery(tenant: tenant, kinds: [.networkAccessTraffic], filter: filter, limit: 2000, afterId: after)
            let page = try await store.read { tx in try await tx.query(query) }
            for object in page { body(object.body) }
            guard page.count == 2000, let last = page.last else { return }
            after = last.id
        }
    }
}

extension DiscoveryReport {
    /// The report as JSON (`tessera traffic report --json` and `GET /beta/networkAccess/reports/generativeAIApps`).
    public var json: JSONValue {
        [
            "value": .array(apps.map(\.json)),
            "dailyTrend": .array(daily.map { ["day": .string($0.day), "requests": .int(Int64($0.requests))] }),
        ]
    }
}

extension DiscoveryReport.AppUsage {
    public var json: JSONValue {
        [
            "appId": .string(appId), "displayName": .string(name), "category": .string(category),
            "riskScore": .int(Int64(riskScore)), "generalScore": .int(Int64(scores["generalScore"] ?? 0)),
            "securityScore": .int(Int64(scores["securityScore"] ?? 0)), "complianceScore": .int(Int64(scores["complianceScore"] ?? 0)),
            "legalScore": .int(Int64(scores["legalScore"] ?? 0)),
            "userCount": .int(Int64(users.count)), "requestCount": .int(Int64(requests)), "promptCount": .int(Int64(prompts)),
            "blockedCount": .int(Int64(blocked)), "sentBytes": .int(sentBytes), "receivedBytes": .int(receivedBytes),
            "firstSeenDateTime": .string(firstSeen), "lastSeenDateTime": .string(lastSeen),
            "dailyTrend": .array(daily.sorted { $0.key < $1.key }.map { ["day": .string($0.key), "requests": .int(Int64($0.value))] }),
        ]
    }
}

extension DiscoveryReport.UserUsage {
    public var json: JSONValue {
        [
            "user": .string(user), "userId": .optional(userId), "requestCount": .int(Int64(requests)), "promptCount": .int(Int64(prompts)),
            "sentBytes": .int(sentBytes), "receivedBytes": .int(receivedBytes),
            "firstSeenDateTime": .string(firstSeen), "lastSeenDateTime": .string(lastSeen),
        ]
    }
}
