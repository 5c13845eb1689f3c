/// Scores a prompt for injection and jailbreak attempts, in process and without a network: phrase rules for the known
/// families next to a small linear model, on the normalised text (``NormalizedPrompt``).
///
/// The score is the larger of the model's probability and the confidence of the strongest rule that matched; the
/// verdict follows the ``Thresholds``. How well it does is measured, not asserted: `scripts/prompt-detector/evaluate`.
public struct PromptDetector: Sendable {
    /// Where the verdicts change: `block` at or above ``block``, `alert` at or above ``alert``, else `allow`.
    public struct Thresholds: Sendable, Hashable {
        /// The score from which a prompt is blocked.
        public var block: Double
        /// The score from which a prompt is let through with an alert.
        public var alert: Double

        /// Tessera's defaults, chosen on the training script's validation split (its report states their rates).
        public static let standard = Thresholds(uncheckedBlock: 0.8, alert: 0.5)

        /// Thresholds within 0...1 with `alert` ≤ `block`.
        public init(block: Double, alert: Double) throws(PromptError) {
            guard (0...1).contains(block), (0...1).contains(alert), alert <= block else {
                throw PromptError(.invalidThresholds, "thresholds must be within 0...1 with alert (\(alert)) ≤ block (\(block))")
            }
            self.init(uncheckedBlock: block, alert: alert)
        }

        private init(uncheckedBlock block: Double, alert: Double) { self.block = block; self.alert = alert }
    }

    /// What the prompt policy does with a prompt.
    public enum Verdict: String, Sendable, Hashable, Codable {
        case block, alert, allow
    }

    /// A scored prompt.
    public struct Assessment: Sendable, Hashable {
        /// 0...1: the larger of the model's probability and the strongest rule's confidence.
        public var score: Double
        /// The verdict for ``score``.
        public var verdict: Verdict
        /// The family of the strongest rule that matched, or ``InjectionRules/Family/classifier`` when none did.
        public var family: InjectionRules.Family
        /// The model's probability alone.
        public var modelScore: Double
        /// The strongest rule that matched, if any.
        public var rule: InjectionRules.Match?
    }

    /// The model.
    public let model: PromptModel
    /// The phrase rules.
    public let rules: InjectionRules
    /// The thresholds.
    public let thresholds: Thresholds

    /// A detector from its parts.
    public init(model: PromptModel, rules: InjectionRules = .standard, thresholds: Thresholds = .standard) {
        self.model = model; self.rules = rules; self.thresholds = thresholds
    }

    /// The detector with the model shipped with Tessera; a missing or damaged model file is refused with the reason.
    public static func bundled(thresholds: Thresholds = .standard) throws(PromptError) -> PromptDetector {
        PromptDetector(model: try .bundled(), thresholds: thresholds)
    }

    /// Scores a prompt's text (callers pass at most ``PromptExtraction/Prompt/limit`` characters, as extraction does).
    public func assess(_ text: String) -> Assessment {
        let normalized = NormalizedPrompt(text)
        let modelScore = model.probability(normalized)
        let rule = rules.strongest(in: normalized, raw: text)
        let ruleScore = rule?.confidence ?? 0
        let score = max(modelScore, ruleScore)
        let family = rule?.family ?? .classifier
        return Assessment(score: score, verdict: verdict(score), family: family, modelScore: modelScore, rule: rule)
    }

    /// The verdict for a score.
    public func verdict(_ score: Double) -> Verdict {
        score >= thresholds.block ? .block : score >= thresholds.alert ? .alert : .allow
    }
}
