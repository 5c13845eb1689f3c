/// One generative-AI app of the catalog: where its traffic goes, what kind of app it is, and the documented facts its
/// risk scores are computed from, each with the page it came from.
public struct AIApp: Sendable, Hashable, Codable {
    /// A stable id (`openai-chatgpt`); custom apps added by an administrator use their own.
    public var id: String
    public var name: String
    public var publisher: String
    public var category: Category
    /// Hostnames whose traffic is this app's; a name also covers its subdomains (`openai.com` covers `api.openai.com`).
    public var hosts: [String]
    /// `host/path` patterns (`*` matches any run of characters) whose requests carry prompts or MCP calls.
    public var activityPatterns: [ActivityPattern]
    /// The pages the facts come from, by a short name the facts refer to.
    public var sources: [String: Source]
    public var factors: RiskFactors

    public init(id: String, name: String, publisher: String, category: Category, hosts: [String],
                activityPatterns: [ActivityPattern] = [], sources: [String: Source], factors: RiskFactors) {
        self.id = id; self.name = name; self.publisher = publisher; self.category = category; self.hosts = hosts
        self.activityPatterns = activityPatterns; self.sources = sources; self.factors = factors
    }

    /// What kind of AI app this is.
    public enum Category: String, Sendable, Hashable, Codable, CaseIterable {
        case chatbot, modelAPI, codingAssistant, mcpServer, saasAIFeature, imageGeneration, search
    }

    /// A page a fact was taken from, and the day it was read.
    public struct Source: Sendable, Hashable, Codable {
        public var url: String
        public var asOf: String
        public init(url: String, asOf: String) { self.url = url; self.asOf = asOf }
    }

    /// A request pattern that marks an activity (`prompt`, `mcp`).
    public struct ActivityPattern: Sendable, Hashable, Codable {
        public var pattern: String
        public var activity: Activity
        public init(pattern: String, activity: Activity) { self.pattern = pattern; self.activity = activity }
    }

    /// Graph's `cloudApplicationMetadata.activity`.
    public enum Activity: String, Sendable, Hashable, Codable { case none, prompt, mcp }
}

/// The documented facts about an app; each names the ``AIApp/sources`` entry it was read from.
public struct RiskFactors: Sendable, Hashable, Codable {
    /// Whether prompts are used to train the vendor's models: `never` (by default and contract), `optOut` (unless the
    /// user or admin turns it off), `always`.
    public var trainsOnPrompts: Fact<Training>
    /// How long prompts are kept by default, in days (`nil`: not stated, or kept until deleted).
    public var retentionDays: Fact<Int?>
    public var certifications: Fact<[String]>
    /// Regions where customer data can be kept (`US`, `EU`, …).
    public var dataRegions: Fact<[String]>
    /// Whether an organisation can sign its users in with SAML or OpenID Connect single sign-on.
    public var sso: Fact<Bool>
    /// Whether the vendor offers a data processing agreement (GDPR article 28).
    public var dataProcessingAgreement: Fact<Bool>
    /// Whether administrators get an audit log of their users' activity.
    public var auditLog: Fact<Bool>
    /// The year the vendor was founded.
    public var founded: Fact<Int>

    public enum Training: String, Sendable, Hashable, Codable { case never, optOut, always }

    /// A value and the name of the source it was read from.
    public struct Fact<Value: Sendable & Hashable & Codable>: Sendable, Hashable, Codable {
        public var value: Value
        public var source: String
        public init(_ value: Value, source: String) { self.value = value; self.source = source }
    }
}
