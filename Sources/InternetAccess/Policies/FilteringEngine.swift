/// The decision for one destination, from the security profiles Conditional Access put on a user's traffic: a pure
/// function of the tenant's profiles and policies, the destination and the administrators' sanction tags.
///
/// Entra's order: profiles by priority (lower first), within a profile its enabled policy links by priority, within a
/// policy its rules in order; the first rule that matches decides with its policy's action; nothing matching allows.
/// A profile from a report-only Conditional Access policy is evaluated the same way but never enforced: its match is
/// reported beside the enforced decision. The prompt policy is the one linked (and enabled) in the first profile by
/// priority that links one, enforced profiles before report-only ones.
///
/// URL rules (a host and a path) are judged only where the path is seen: plain HTTP requests and the requests inside an
/// inspected tunnel. A CONNECT tunnel shows only its host, so, as in Entra (URL filtering needs TLS inspection; without
/// it only FQDN and category rules apply), a tunnel is decided without them; the verdict keeps them as ``PathRules``,
/// so the proxy judges each request of a tunnel it inspects and the traffic record of one it does not names the URL
/// rules left unjudged (`urlRulesNotEvaluated`).
public struct FilteringEngine: Sendable, Hashable {
    /// A security profile that applies to this user's traffic, and the Conditional Access policy that put it there.
    public struct ProfileInScope: Sendable, Hashable {
        public var profileID: String
        public var conditionalAccessPolicyID: String
        public var reportOnly: Bool
        public init(profileID: String, conditionalAccessPolicyID: String, reportOnly: Bool) {
            self.profileID = profileID.lowercased(); self.conditionalAccessPolicyID = conditionalAccessPolicyID; self.reportOnly = reportOnly
        }
    }

    /// Where a connection or request goes, as the proxy sees it.
    public struct Destination: Sendable, Hashable {
        /// The hostname, lowercased, without a port.
        public var host: String
        /// The path (with its query), when the proxy sees it (plain HTTP, inspected TLS); nil for a CONNECT tunnel.
        public var path: String?
        /// The catalog app and what the administrators tagged it.
        public var app: AIApp?
        public var sanction: AppSanctions.State
        public init(host: String, path: String? = nil, app: AIApp? = nil, sanction: AppSanctions.State = .none) {
            self.host = host.lowercased(); self.path = path; self.app = app; self.sanction = sanction
        }
    }

    /// The rule that matched, where it is, and what it does.
    public struct Match: Sendable, Hashable {
        public var action: FilteringAction
        public var profileID: String
        public var policyID: String
        public var policyName: String
        public var ruleID: String
        public var ruleName: String
        public var conditionalAccessPolicyID: String
    }

    /// The enforced match (nil: nothing matched, allowed), the report-only one (what a report-only policy would do) and
    /// the prompt policy on the user's traffic (nil: prompts are not inspected).
    public struct Verdict: Sendable, Hashable {
        public var enforced: Match?
        public var reportOnly: Match?
        public var prompt: PromptPolicy.InScope?
        /// For a destination without a path (a tunnel): the URL rules in scope whose host part names its host, which only
        /// a request's path can decide.
        public var pathRules: PathRules?
        /// Whether the connection or request is blocked.
        public var blocks: Bool { enforced?.action == .block }
        public init(enforced: Match? = nil, reportOnly: Match? = nil, prompt: PromptPolicy.InScope? = nil) {
            self.enforced = enforced; self.reportOnly = reportOnly; self.prompt = prompt
        }
    }

    /// The URL rules a tunnel's decision could not judge, and how to decide one of its requests once its path is seen.
    public struct PathRules: Sendable, Hashable {
        /// The ids of the URL rules, in the order they are evaluated.
        public let ruleIDs: [String]
        let engine: FilteringEngine
        let destination: Destination
        let scopes: [ProfileInScope]

        /// The verdict for a request to `path` (with its query) on the tunnel's host.
        public func verdict(path: String) -> Verdict {
            var destination = destination
            destination.path = path
            return engine.decide(destination, scopes: scopes)
        }
    }

    let profiles: [String: FilteringProfile]
    let policies: [String: FilteringPolicy]
    let promptPolicies: [String: PromptPolicy]

    public init(profiles: [FilteringProfile], policies: [FilteringPolicy], promptPolicies: [PromptPolicy] = []) {
        self.profiles = Dictionary(profiles.map { ($0.id.lowercased(), $0) }, uniquingKeysWith: { first, _ in first })
        self.policies = Dictionary(policies.map { ($0.id.lowercased(), $0) }, uniquingKeysWith: { first, _ in first })
        self.promptPolicies = Dictionary(promptPolicies.map { ($0.id.lowercased(), $0) }, uniquingKeysWith: { first, _ in first })
    }

    public func decide(_ destination: Destination, scopes: [ProfileInScope]) -> Verdict {
        let ordered = scopes.compactMap { scope in profiles[scope.profileID].map { (scope, $0) } }
            .filter { $0.1.enabled }
            .sorted { ($0.1.priority, $0.1.id) < ($1.1.priority, $1.1.id) }
        var verdict = Verdict()
        for (scope, profile) in ordered {
            if scope.reportOnly ? verdict.reportOnly != nil : verdict.enforced != nil { continue }
            guard let match = firstMatch(profile, destination, scope: scope) else { continue }
            if scope.reportOnly { verdict.reportOnly = match } else { verdict.enforced = match }
        }
        verdict.prompt = promptPolicy(ordered.filter { !$0.0.reportOnly }) ?? promptPolicy(ordered.filter { $0.0.reportOnly })
        if destination.path == nil {
            let unjudged = ordered.flatMap { _, profile in urlRules(profile, host: destination.host) }
            if !unjudged.isEmpty { verdict.pathRules = PathRules(ruleIDs: unjudged, engine: self, destination: destination, scopes: scopes) }
        }
        return verdict
    }

    /// The ids of a profile's URL rules whose host part (before the first `/`) matches `host`.
    func urlRules(_ profile: FilteringProfile, host: String) -> [String] {
        profile.links.filter { $0.enabled && $0.kind == .filtering }.sorted { ($0.priority, $0.id) < ($1.priority, $1.id) }
            .compactMap { policies[$0.policyID] }
            .flatMap { policy in
                policy.rules.filter { rule in
                    rule.destinations.contains {
                        guard case .url(let pattern) = $0 else { return false }
                        return Glob.matches(String(pattern.prefix { $0 != "/" }), host)
                    }
                }.map(\.id)
            }
    }

    /// The prompt policy of the first of these profiles that links one.
    func promptPolicy(_ ordered: [(ProfileInScope, FilteringProfile)]) -> PromptPolicy.InScope? {
        for (scope, profile) in ordered {
            for link in profile.links where link.kind == .prompt && link.enabled {
                guard let policy = promptPolicies[link.policyID] else { continue }
                return PromptPolicy.InScope(policy: policy, profileID: profile.id, conditionalAccessPolicyID: scope.conditionalAccessPolicyID,
                                            reportOnly: scope.reportOnly)
            }
        }
        return nil
    }

    func firstMatch(_ profile: FilteringProfile, _ destination: Destination, scope: ProfileInScope) -> Match? {
        for link in profile.links.filter({ $0.enabled && $0.kind == .filtering }).sorted(by: { ($0.priority, $0.id) < ($1.priority, $1.id) }) {
            guard let policy = policies[link.policyID] else { continue }
            for rule in policy.rules where rule.destinations.contains(where: { Self.matches($0, destination) }) {
                return Match(action: policy.action, profileID: profile.id, policyID: policy.id, policyName: policy.name,
                             ruleID: rule.id, ruleName: rule.name, conditionalAccessPolicyID: scope.conditionalAccessPolicyID)
            }
        }
        return nil
    }

    static func matches(_ rule: FilteringRule.Destination, _ d: Destination) -> Bool {
        switch rule {
        case .fqdn(let pattern):
            if pattern.hasPrefix("*.") {
                let parent = pattern.dropFirst(2)
                return d.host == parent || d.host.hasSuffix("." + parent)
            }
            return d.host == pattern
        case .url(let pattern):
            guard let path = d.path else { return false }
            return Glob.matches(pattern, d.host + path.lowercased())
        case .webCategory(let name):
            guard let app = d.app else { return false }
            switch name.lowercased() {
            case "artificialintelligence", "generativeai": return true
            case FilteringRule.unsanctionedCategory.lowercased(): return d.sanction == .unsanctioned
            case let category: return app.category.rawValue.lowercased() == category
            }
        case .cloudApplication(let id):
            return d.app?.id == id
        }
    }
}
