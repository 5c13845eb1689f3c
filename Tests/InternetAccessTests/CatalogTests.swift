import Foundation
import Testing
@testable import InternetAccess

@Suite("AI app catalog")
struct CatalogTests {
    static let catalog = try! AICatalog.bundled(year: 2026)

    @Test("the shipped catalog loads, with a source for every fact of every entry")
    func shippedCatalogLoads() throws {
        let catalog = Self.catalog
        #expect(catalog.apps.count >= 25)
        for app in catalog.apps {
            #expect(!app.sources.isEmpty, "\(app.id)")
            for source in app.sources.values { #expect(source.url.hasPrefix("https://")) }
        }
        for id in ["openai-chatgpt", "openai-api", "anthropic-claude", "anthropic-api", "google-gemini-api", "microsoft-copilot",
                   "mistral-api", "cohere-api", "deepseek-chat", "xai-grok", "perplexity", "github-copilot", "hugging-face",
                   "character-ai", "poe"] {
            #expect(catalog.apps.contains { $0.id == id }, "\(id)")
        }
    }

    @Test("scores follow the documented facts: no training, certifications and SSO score better")
    func scoresFollowFacts() throws {
        let catalog = Self.catalog
        func score(_ id: String) throws -> RiskScore { catalog.scores[try #require(catalog.apps.firstIndex { $0.id == id })] }
        let openAI = try score("openai-api"), deepSeek = try score("deepseek-api")
        #expect(openAI.overall > deepSeek.overall)
        #expect(openAI.legal > deepSeek.legal)
        #expect(deepSeek.compliance == 0)
        for s in catalog.scores { for v in [s.general, s.security, s.compliance, s.legal, s.overall] { #expect((0...10).contains(v)) } }
    }

    @Test("each point given has its reason, and the overall score is the rounded mean")
    func scoringIsExplained() {
        let facts = RiskFactors(trainsOnPrompts: .init(.never, source: "p"), retentionDays: .init(30, source: "p"),
                                certifications: .init(["SOC2", "ISO27001"], source: "t"), dataRegions: .init(["EU"], source: "t"),
                                sso: .init(true, source: "t"), dataProcessingAgreement: .init(true, source: "p"),
                                auditLog: .init(false, source: "t"), founded: .init(2020, source: "a"))
        let score = RiskScore(facts, year: 2026)
        // general: 5 (age, capped) + 2 (SSO without an audit log); security: 4 + 3 (certified controls);
        // compliance: 3 + 3; legal: 4 + 2 + 2 + 2.
        #expect(score == RiskScore(general: 7, security: 7, compliance: 6, legal: 10))
        #expect(score.overall == 8)
        #expect(RiskScore.points(facts, year: 2026).contains { $0.reason == "training on prompts: never" && $0.points == 4 })
    }

    @Test("hostnames match with their subdomains, any case, a trailing dot; the most specific host wins")
    func hostMatching() throws {
        let catalog = Self.catalog
        func id(_ host: String) -> String? { catalog.app(forHost: host).map { catalog.apps[$0].id } }
        #expect(id("api.openai.com") == "openai-api")
        #expect(id("API.OpenAI.com.") == "openai-api")
        #expect(id("chatgpt.com") == "openai-chatgpt")
        #expect(id("ab.chatgpt.com") == "openai-chatgpt")
        #expect(id("notchatgpt.com") == nil)
        #expect(id("openai.com") == nil)
        #expect(id("myresource.openai.azure.com") == "azure-openai")
        #expect(id("example.com") == nil)
        #expect(id("") == nil)
    }

    @Test("request patterns tell prompts and MCP calls from other requests")
    func activities() throws {
        let catalog = Self.catalog
        let api = try #require(catalog.app(forHost: "api.openai.com"))
        #expect(catalog.activity(app: api, host: "api.openai.com", path: "/v1/chat/completions") == .prompt)
        #expect(catalog.activity(app: api, host: "api.openai.com", path: "/v1/models") == AIApp.Activity.none)
        let copilot = try #require(catalog.app(forHost: "api.githubcopilot.com"))
        #expect(catalog.activity(app: copilot, host: "api.githubcopilot.com", path: "/mcp/") == .mcp)
        let azure = try #require(catalog.app(forHost: "contoso.openai.azure.com"))
        #expect(catalog.activity(app: azure, host: "contoso.openai.azure.com",
                                 path: "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21") == .prompt)
    }

    static let entry = """
        {"id": "acme-chat", "name": "Acme Chat", "publisher": "Acme", "category": "chatbot", "hosts": ["chat.acme.test"],
         "activityPatterns": [], "sources": {"p": {"url": "https://acme.test/privacy", "asOf": "2026-12-01"}},
         "factors": {"trainsOnPrompts": {"value": "always", "source": "p"}, "retentionDays": {"value": null, "source": "p"},
          "certifications": {"value": [], "source": "p"}, "dataRegions": {"value": ["US"], "source": "p"},
          "sso": {"value": false, "source": "p"}, "dataProcessingAgreement": {"value": false, "source": "p"},
          "auditLog": {"value": false, "source": "p"}, "founded": {"value": 2024, "source": "SOURCE"}}}
        """

    static func load(_ entries: [String]) throws(CatalogError) -> AICatalog {
        try AICatalog(data: Data("{\"version\": \"t\", \"apps\": [\n\(entries.joined(separator: ",\n"))\n]}".utf8), year: 2026)
    }

    @Test("a catalog whose fact names no listed source is refused with the entry and its line")
    func refusesUnsourcedFact() throws {
        let good = Self.entry.replacingOccurrences(of: "SOURCE", with: "p")
        #expect(try Self.load([good]).apps.count == 1)
        let second = good.replacingOccurrences(of: "acme-chat", with: "acme-two").replacingOccurrences(of: "chat.acme.test", with: "two.acme.test")
        let bad = Self.entry.replacingOccurrences(of: "acme-chat", with: "acme-bad").replacingOccurrences(of: "chat.acme.test", with: "bad.acme.test")
        let error = try #require(throws: CatalogError.self) { try Self.load([good, second, bad]) }
        #expect(error.code == .missingSource)
        #expect(error.entry == "acme-bad")
        #expect(error.line == 2 + 2 * 6)
        #expect(error.description.contains("founded"))
    }

    @Test("duplicate hosts, a missing field and broken JSON are refused with where they are", arguments: [
        ("dup", CatalogError.Code.duplicate), ("missing", .invalidEntry), ("syntax", .syntax), ("http", .missingSource),
    ])
    func refusesBrokenCatalogs(_ kind: String, _ code: CatalogError.Code) throws {
        let good = Self.entry.replacingOccurrences(of: "SOURCE", with: "p")
        let entries: [String] = switch kind {
        case "dup": [good, good.replacingOccurrences(of: "acme-chat", with: "acme-other")]
        case "missing": [good, good.replacingOccurrences(of: "acme-chat", with: "acme-b").replacingOccurrences(of: "\"publisher\": \"Acme\",", with: "")]
        case "syntax": [good, good.replacingOccurrences(of: "\"sso\":", with: "\"sso\"")]
        default: [good.replacingOccurrences(of: "https://acme.test", with: "http://acme.test")]
        }
        let error = try #require(throws: CatalogError.self) { try Self.load(entries) }
        #expect(error.code == code, "\(error)")
        if kind == "dup" || kind == "missing" { #expect(error.line == 8, "\(error)") }
        if kind == "syntax" { #expect(error.line == 12, "\(error)") }
    }
}

@Suite("Transaction ids")
struct TransactionIDTests {
    @Test("ids are UUID version 7, lowercase, distinct, and ordered by their time")
    func ordered() {
        var ids = TransactionID()
        let made = (0..<1000).map { ids.next(milliseconds: 1_765_015_200_000 + UInt64($0 / 10)) }
        #expect(Set(made).count == made.count)
        for id in made {
            #expect(UUID(uuidString: id) != nil)
            #expect(id == id.lowercased())
            #expect(Array(id)[14] == "7")
            #expect("89ab".contains(Array(id)[19]))
        }
        let byTime = stride(from: 0, to: 1000, by: 10).map { made[$0] }
        #expect(byTime == byTime.sorted())
        #expect(made[0].hasPrefix("019af31a-a100-7"))
    }
}
