import Foundation
import Testing
import TesseraCore
@testable import InternetAccess

@Suite("Internet Access filtering: policies, profiles and decisions")
struct ProxyFilteringTests {
    static let catalog = try! AICatalog.bundled(year: 2026)
    static func app(_ id: String) -> AIApp { catalog.apps.first { $0.id == id }! }

    static func policy(_ id: String, _ action: String, _ rules: [JSONValue]) throws -> FilteringPolicy {
        var n = 0
        return try FilteringPolicy(create: ["name": .string(id), "action": .string(action), "policyRules": .array(rules)], id: id,
                                   now: "2026-01-01T00:00:00Z", newID: { n += 1; return "\(id)-rule\(n)" })
    }

    static func fqdn(_ values: String...) -> JSONValue {
        ["@odata.type": "#microsoft.graph.networkaccess.fqdnFilteringRule", "name": "hosts", "ruleType": "fqdn",
         "destinations": .array(values.map { ["@odata.type": "#microsoft.graph.networkaccess.fqdn", "value": .string($0)] })]
    }

    static func category(_ name: String) -> JSONValue {
        ["@odata.type": "#microsoft.graph.networkaccess.webCategoryFilteringRule", "name": .string(name), "ruleType": "webCategory",
         "destinations": [["@odata.type": "#microsoft.graph.networkaccess.webCategory", "name": .string(name)]]]
    }

    static func profile(_ id: String, priority: Int64, links: [(String, Int64, Bool)]) -> FilteringProfile {
        var profile = FilteringProfile(id: id, now: "2026-01-01T00:00:00Z")
        profile.name = id
        profile.priority = priority
        profile.links = links.map { policy, priority, enabled in
            var link = FilteringProfile.Link(id: "\(id)-\(policy)", now: "2026-01-01T00:00:00Z")
            link.policyID = policy
            link.priority = priority
            link.enabled = enabled
            return link
        }
        return profile
    }

    static func scope(_ profile: String, reportOnly: Bool = false) -> FilteringEngine.ProfileInScope {
        .init(profileID: profile, conditionalAccessPolicyID: "ca-\(profile)", reportOnly: reportOnly)
    }

    @Test("fqdn rules match the host, and *. also its subdomains and the domain itself")
    func fqdnRules() throws {
        let engine = FilteringEngine(profiles: [Self.profile("p", priority: 1, links: [("block", 1, true)])],
                                     policies: [try Self.policy("block", "block", [Self.fqdn("bing.com", "*.contoso.com")])])
        func blocks(_ host: String) -> Bool { engine.decide(.init(host: host), scopes: [Self.scope("p")]).blocks }
        #expect(blocks("bing.com"))
        #expect(!blocks("www.bing.com"))
        #expect(blocks("contoso.com"))
        #expect(blocks("a.b.CONTOSO.com"))
        #expect(!blocks("notcontoso.com"))
        #expect(!engine.decide(.init(host: "bing.com"), scopes: []).blocks)
    }

    @Test("web categories: every catalog app, a catalog category, and the apps tagged unsanctioned")
    func categories() throws {
        let engine = FilteringEngine(
            profiles: [Self.profile("ai", priority: 1, links: [("all", 1, true)]), Self.profile("chat", priority: 1, links: [("chatbots", 1, true)]),
                       Self.profile("unsanctioned", priority: 1, links: [("unsanctioned", 1, true)])],
            policies: [try Self.policy("all", "block", [Self.category("ArtificialIntelligence")]),
                       try Self.policy("chatbots", "block", [Self.category("chatbot")]),
                       try Self.policy("unsanctioned", "block", [Self.category("UnsanctionedGenerativeAI")])])
        let chatGPT = Self.app("openai-chatgpt"), api = Self.app("openai-api")
        #expect(chatGPT.category == .chatbot && api.category == .modelAPI)
        #expect(engine.decide(.init(host: "api.openai.com", app: api), scopes: [Self.scope("ai")]).blocks)
        #expect(!engine.decide(.init(host: "example.com"), scopes: [Self.scope("ai")]).blocks)
        #expect(engine.decide(.init(host: "chatgpt.com", app: chatGPT), scopes: [Self.scope("chat")]).blocks)
        #expect(!engine.decide(.init(host: "api.openai.com", app: api), scopes: [Self.scope("chat")]).blocks)
        #expect(!engine.decide(.init(host: "api.openai.com", app: api, sanction: .sanctioned), scopes: [Self.scope("unsanctioned")]).blocks)
        #expect(engine.decide(.init(host: "api.openai.com", app: api, sanction: .unsanctioned), scopes: [Self.scope("unsanctioned")]).blocks)
    }

    @Test("catalog app rules match one app; URL rules only where the path is seen")
    func appAndURLRules() throws {
        let rules: [JSONValue] = [
            ["name": "claude", "ruleType": "cloudApplication", "destinations": [["appId": "anthropic-api"]]],
            ["@odata.type": "#microsoft.graph.networkaccess.urlFilteringRule", "name": "chat api", "ruleType": "url",
             "destinations": [["value": "api.openai.com/v1/chat/*"]]],
        ]
        let engine = FilteringEngine(profiles: [Self.profile("p", priority: 1, links: [("b", 1, true)])], policies: [try Self.policy("b", "block", rules)])
        #expect(engine.decide(.init(host: "api.anthropic.com", app: Self.app("anthropic-api")), scopes: [Self.scope("p")]).blocks)
        #expect(!engine.decide(.init(host: "api.openai.com", app: Self.app("openai-api")), scopes: [Self.scope("p")]).blocks)
        #expect(engine.decide(.init(host: "api.openai.com", path: "/v1/chat/completions", app: Self.app("openai-api")), scopes: [Self.scope("p")]).blocks)
    }

    @Test("a tunnel is decided without URL rules (Entra: URL filtering needs TLS inspection), which stay in the verdict for each inspected request's path")
    func urlRulesOnTunnels() throws {
        let url: JSONValue = ["@odata.type": "#microsoft.graph.networkaccess.urlFilteringRule", "name": "admin pages", "ruleType": "url",
                              "destinations": [["value": "*.example.com/admin/*"]]]
        let engine = FilteringEngine(profiles: [Self.profile("p", priority: 1, links: [("block", 1, true), ("allow", 2, true)])],
                                     policies: [try Self.policy("block", "block", [url]), try Self.policy("allow", "allow", [Self.fqdn("*.example.com")])])
        // The tunnel: the FQDN rule decides, and the URL rule that names the host is kept, unjudged.
        let tunnel = engine.decide(.init(host: "www.example.com"), scopes: [Self.scope("p")])
        #expect(tunnel.enforced?.policyID == "allow" && !tunnel.blocks)
        let rules = try #require(tunnel.pathRules)
        #expect(rules.ruleIDs == ["block-rule1"])
        // Each request inside it, once inspected: its path decides.
        #expect(rules.verdict(path: "/admin/users").blocks && rules.verdict(path: "/admin/users").enforced?.ruleID == "block-rule1")
        #expect(rules.verdict(path: "/home").enforced?.policyID == "allow")
        #expect(rules.verdict(path: "/home").pathRules == nil)
        // A host no URL rule names carries none; nor does a plain request, whose path is seen.
        #expect(engine.decide(.init(host: "example.org"), scopes: [Self.scope("p")]).pathRules == nil)
        #expect(engine.decide(.init(host: "www.example.com", path: "/admin/x"), scopes: [Self.scope("p")]).blocks)
        // The traffic record of a tunnel not inspected names the rules left unjudged.
        var record = TrafficRecord(transactionId: "t", createdDateTime: .init(timeIntervalSince1970: 0), tenantId: "x",
                                   destinationFQDN: "www.example.com", origin: "proxy")
        record.filtering = tunnel
        #expect(record.body["urlRulesNotEvaluated"] == ["block-rule1"])
    }

    @Test("profiles by priority, then links by priority, first match decides; disabled links and profiles are skipped")
    func priorities() throws {
        let policies = [try Self.policy("allow", "allow", [Self.fqdn("*.openai.com")]), try Self.policy("block", "block", [Self.category("GenerativeAI")])]
        let api = Self.app("openai-api")
        let d = FilteringEngine.Destination(host: "api.openai.com", app: api)
        // Within one profile: the allow link comes first.
        var engine = FilteringEngine(profiles: [Self.profile("p", priority: 5, links: [("block", 200, true), ("allow", 100, true)])], policies: policies)
        var verdict = engine.decide(d, scopes: [Self.scope("p")])
        #expect(verdict.enforced?.action == .allow && verdict.enforced?.policyID == "allow" && verdict.enforced?.ruleID == "allow-rule1")
        // Disabled, it no longer counts.
        engine = FilteringEngine(profiles: [Self.profile("p", priority: 5, links: [("block", 200, true), ("allow", 100, false)])], policies: policies)
        #expect(engine.decide(d, scopes: [Self.scope("p")]).blocks)
        // Across profiles: the lower priority number wins.
        engine = FilteringEngine(profiles: [Self.profile("late", priority: 50, links: [("allow", 1, true)]),
                                            Self.profile("early", priority: 10, links: [("block", 1, true)])], policies: policies)
        verdict = engine.decide(d, scopes: [Self.scope("late"), Self.scope("early")])
        #expect(verdict.blocks && verdict.enforced?.profileID == "early" && verdict.enforced?.conditionalAccessPolicyID == "ca-early")
        var disabled = Self.profile("early", priority: 10, links: [("block", 1, true)])
        disabled.enabled = false
        engine = FilteringEngine(profiles: [Self.profile("late", priority: 50, links: [("allow", 1, true)]), disabled], policies: policies)
        #expect(!engine.decide(d, scopes: [Self.scope("late"), Self.scope("early")]).blocks)
    }

    @Test("a report-only profile's match is reported beside the enforced decision and never blocks")
    func reportOnly() throws {
        let engine = FilteringEngine(profiles: [Self.profile("p", priority: 1, links: [("block", 1, true)])],
                                     policies: [try Self.policy("block", "block", [Self.fqdn("*.openai.com")])])
        let verdict = engine.decide(.init(host: "api.openai.com"), scopes: [Self.scope("p", reportOnly: true)])
        #expect(!verdict.blocks)
        #expect(verdict.enforced == nil)
        #expect(verdict.reportOnly?.action == .block && verdict.reportOnly?.policyID == "block")
    }

    @Test("filtering policies and profiles refuse what Graph would refuse", arguments: [
        (["name": "x", "action": "deny", "policyRules": []], "action must be block, allow or alert."),
        (["name": "x", "policyRules": []], "action is required (block, allow or alert)."),
        (["action": "block"], "name is required."),
        (["name": "x", "action": "block", "color": "red"], "Property 'color' does not exist on type 'microsoft.graph.networkaccess.filteringPolicy' or cannot be written."),
        (["name": "x", "action": "block", "policyRules": [["name": "r", "ruleType": "fqdn", "destinations": [["value": "bad host!"]]]]],
         "Rule 'r': 'bad host!' is not a domain name or *.domain."),
        (["name": "x", "action": "block", "policyRules": [["name": "r", "ruleType": "webCategory", "destinations": [["name": "Gambling"]]]]],
         "Rule 'r': 'Gambling' is not a web category Tessera knows (artificialintelligence, chatbot, codingassistant, generativeai, imagegeneration, mcpserver, modelapi, saasaifeature, search, unsanctionedgenerativeai)."),
        (["name": "x", "action": "block", "policyRules": [["name": "r", "ruleType": "ipAddress", "destinations": [["value": "1.2.3.4"]]]]],
         "Rule 'r': ruleType must be fqdn, webCategory, url or cloudApplication."),
        (["name": "x", "action": "block", "policyRules": [["name": "r", "ruleType": "fqdn", "destinations": []]]],
         "Rule 'r' needs between 1 and 1000 destinations."),
    ] as [(JSONValue, String)])
    func policyValidation(_ body: JSONValue, _ message: String) {
        do {
            _ = try FilteringPolicy(create: body.objectValue ?? [:], id: "p", now: "2026-01-01T00:00:00Z", newID: { "r" })
            Issue.record("accepted \(body)")
        } catch {
            #expect(error.code == .badRequest)
            #expect(error.message == message)
        }
    }

    @Test("a profile needs a name and a priority; its links a policy and a priority from 0 to 65000")
    func profileValidation() throws {
        var profile = FilteringProfile(id: "p", now: "t")
        #expect(throws: DirectoryError.badRequest("priority is required.")) {
            try profile.apply(["name": "p"], now: "t", creating: true, newID: { "l" })
        }
        #expect(throws: DirectoryError.badRequest("priority is required.")) {
            try profile.apply(["name": "p", "priority": 1, "policies": [["policy": ["id": "x"]]]], now: "t", creating: true, newID: { "l" })
        }
        #expect(throws: DirectoryError.badRequest("state must be enabled or disabled.")) {
            try profile.apply(["name": "p", "priority": 1, "state": "on"], now: "t", creating: true, newID: { "l" })
        }
        try profile.apply(["name": "p", "priority": 100, "policies": [["priority": 100, "policy": ["id": "ABC"]]]], now: "t", creating: true,
                          newID: { "l1" })
        #expect(profile.links.map(\.policyID) == ["abc"])
        #expect(FilteringProfile(stored: profile.stored(tenant: "t")) == profile)
    }
}
