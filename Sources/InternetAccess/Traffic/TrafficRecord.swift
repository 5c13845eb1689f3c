public import Foundation
public import TesseraCore

/// Traffic records (Graph beta's `microsoft.graph.networkaccess.networkAccessTraffic`): one per request or connection
/// to a catalog app, imported from a log (or, later, written by Tessera's proxy). Not directory changes: no change log,
/// no audit; kept ``TrafficLog/retentionDays`` days as Entra keeps its traffic logs.
extension ObjectKind {
    public static let networkAccessTraffic = ObjectKind(rawValue: "networkAccessTraffic")
}

/// One request to a catalog app as Tessera records it; ``body`` is its Graph shape.
public struct TrafficRecord: Sendable, Hashable {
    public var transactionId: String
    public var createdDateTime: Date
    public var tenantId: String
    public var userId: String?
    public var userPrincipalName: String?
    /// The user as the log named them, kept when no directory user matched.
    public var loginUser: String?
    public var sourceIp: String?
    public var sourcePort: Int?
    public var destinationFQDN: String
    public var destinationIp: String?
    public var destinationPort: Int?
    public var destinationUrl: String?
    public var httpMethod: String?
    public var action: Action
    public var sentBytes: Int64
    public var receivedBytes: Int64
    /// The catalog app, its scores and what the request did.
    public var application: Application?
    /// Where the record came from (`import:squid`, `proxy`): Tessera's own property.
    public var origin: String
    /// The filtering decision: the enforced rule as `policyId`, `policyRuleId` (with Tessera's `filteringProfileId`,
    /// `policyName`, `policyRuleName`, `conditionalAccessPolicyId`), and what a report-only policy would have done.
    public var filtering: FilteringEngine.Verdict?
    /// The prompt policy that judged the request's prompt (Tessera's own `promptPolicyId`), when it was inspected.
    public var promptPolicyId: String?
    /// The device the traffic came from (Graph's `deviceId`, `deviceOperatingSystem`, `deviceOperatingSystemVersion`).
    public var deviceId: String?
    public var deviceOperatingSystem: String?
    public var deviceOperatingSystemVersion: String?

    public enum Action: String, Sendable, Hashable { case allow, block, alert }

    /// `cloudApplicationMetadata`: the app, its categories and scores, and the activity (`none`, `prompt`, `mcp`).
    public struct Application: Sendable, Hashable {
        public var catalogId: String
        public var name: String
        public var category: AIApp.Category
        public var score: RiskScore
        public var activity: AIApp.Activity
        public init(catalogId: String, name: String, category: AIApp.Category, score: RiskScore, activity: AIApp.Activity) {
            self.catalogId = catalogId; self.name = name; self.category = category; self.score = score; self.activity = activity
        }
    }

    public init(transactionId: String, createdDateTime: Date, tenantId: String, destinationFQDN: String, action: Action = .allow,
                sentBytes: Int64 = 0, receivedBytes: Int64 = 0, origin: String) {
        self.transactionId = transactionId; self.createdDateTime = createdDateTime; self.tenantId = tenantId
        self.destinationFQDN = destinationFQDN; self.action = action; self.sentBytes = sentBytes; self.receivedBytes = receivedBytes
        self.origin = origin
    }

    /// The Graph shape, as stored and as `GET /beta/networkAccess/logs/traffic` returns it.
    public var body: [String: JSONValue] {
        var metadata: JSONValue = .null
        if let app = application {
            metadata = [
                "@odata.type": "#microsoft.graph.networkaccess.cloudApplicationMetadata",
                "cloudApplicationCatalogId": .string(app.catalogId), "name": .string(app.name),
                "categories": ["Generative AI", .string(app.category.displayName)],
                "riskScore": .int(Int64(app.score.overall)), "generalScore": .int(Int64(app.score.general)),
                "securityScore": .int(Int64(app.score.security)), "complianceScore": .int(Int64(app.score.compliance)),
                "legalScore": .int(Int64(app.score.legal)), "loginUser": .optional(loginUser),
                "activity": .string(app.activity.rawValue),
            ]
        }
        var body: [String: JSONValue] = [
            "@odata.type": "#microsoft.graph.networkaccess.networkAccessTraffic",
            "transactionId": .string(transactionId), "createdDateTime": .string(Timestamp.format(createdDateTime)),
            "tenantId": .string(tenantId), "trafficType": "internet", "deviceCategory": "client",
            "userId": .optional(userId), "userPrincipalName": .optional(userPrincipalName),
            "sourceIp": .optional(sourceIp), "sourcePort": sourcePort.map { .int(Int64($0)) } ?? .null,
            "destinationFQDN": .string(destinationFQDN), "destinationIp": .optional(destinationIp),
            "destinationPort": destinationPort.map { .int(Int64($0)) } ?? .null, "destinationUrl": .optional(destinationUrl),
            "httpMethod": .optional(httpMethod?.lowercased()), "transportProtocol": "tcp",
            "networkProtocol": .string(sourceIp?.contains(":") == true ? "ipv6" : "ipv4"),
            "action": .string(action.rawValue), "sentBytes": .int(sentBytes), "receivedBytes": .int(receivedBytes),
            "headers": ["@odata.type": "#microsoft.graph.networkaccess.headers"],
            "cloudApplicationMetadata": metadata, "origin": .string(origin),
        ]
        if let deviceId { body["deviceId"] = .string(deviceId) }
        if let deviceOperatingSystem { body["deviceOperatingSystem"] = .string(deviceOperatingSystem) }
        if let deviceOperatingSystemVersion { body["deviceOperatingSystemVersion"] = .string(deviceOperatingSystemVersion) }
        if let promptPolicyId { body["promptPolicyId"] = .string(promptPolicyId) }
        if let match = filtering?.enforced {
            body["policyId"] = .string(match.policyID)
            body["policyRuleId"] = .string(match.ruleID)
            for (key, value) in match.annotations { body[key] = value }
        }
        // Tessera's own: URL rules that name this host but could not be judged (a tunnel not inspected shows no path).
        if let rules = filtering?.pathRules { body["urlRulesNotEvaluated"] = .array(rules.ruleIDs.map(JSONValue.string)) }
        if let match = filtering?.reportOnly {
            body["reportOnly"] = .object(match.annotations.merging(
                ["action": .string(match.action.rawValue), "policyId": .string(match.policyID), "policyRuleId": .string(match.ruleID)],
                uniquingKeysWith: { $1 }))
        }
        return body
    }

    /// The stored object for a tenant.
    public var object: StoredObject {
        StoredObject(tenant: tenantId, id: transactionId, kind: .networkAccessTraffic, body: body)
    }
}

extension FilteringEngine.Match {
    /// Tessera's own properties naming where the rule is (Graph names only `policyId` and `policyRuleId`).
    var annotations: [String: JSONValue] {
        ["filteringProfileId": .string(profileID), "policyName": .string(policyName), "policyRuleName": .string(ruleName),
         "conditionalAccessPolicyId": .string(conditionalAccessPolicyID)]
    }
}

extension AIApp.Category {
    /// The label shown in reports and in `cloudApplicationMetadata.categories`.
    public var displayName: String {
        switch self {
        case .chatbot: "Chatbot"
        case .modelAPI: "Model API"
        case .codingAssistant: "Coding assistant"
        case .mcpServer: "MCP server"
        case .saasAIFeature: "AI feature of a SaaS app"
        case .imageGeneration: "Image generation"
        case .search: "AI search"
        }
    }
}
