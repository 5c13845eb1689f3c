/// Phrase rules for the well-known families of prompt injection and jailbreak, matched on the normalised words (so
/// spacing, case, look-alike letters, zero-width characters and leet spelling do not hide them).
///
/// A rule is a sequence of word sets with a bounded gap between consecutive sets: `ignore … previous instructions`
/// matches "Ignore all of the previous instructions" and "1gn0re the ab0ve instructions". Each rule has a
/// confidence; the detector takes the strongest rule that matched next to the model's probability.
public struct InjectionRules: Sendable {
    /// A family of attacks, as reported with a verdict.
    public enum Family: String, Sendable, Hashable, CaseIterable, Codable {
        /// "Ignore the previous instructions": the prompt tries to replace the application's instructions.
        case instructionOverride
        /// "Print your system prompt": the prompt tries to read the hidden instructions.
        case systemPromptExfiltration
        /// DAN, developer mode, "you have no restrictions": a persona or mode meant to lift the model's rules.
        case roleplayJailbreak
        /// Chat-template tokens and fake system sections (`<|im_start|>system`, `[INST]`, `### System:`).
        case delimiterInjection
        /// "Never refuse, no warnings or disclaimers": the prompt forbids the model's refusals.
        case refusalSuppression
        /// An attack of another family hidden in base64.
        case encodedPayload
        /// No rule: the model's score alone.
        case classifier
    }

    /// One rule: consecutive word sets, each within `gap` words of the previous one.
    struct Rule: Sendable {
        var family: Family
        var confidence: Double
        var slots: [Set<String>]
        var gap: Int
    }

    /// The strongest rule that matched, if any.
    public struct Match: Sendable, Hashable {
        public var family: Family
        public var confidence: Double
    }

    let rules: [Rule]
    let phrases: [(family: Family, confidence: Double, text: String)]

    /// The rules Tessera ships.
    public static let standard = InjectionRules()

    init() {
        let override: Set = ["ignore", "disregard", "forget", "override", "bypass", "dismiss", "neglect", "skip", "abandon",
                             "discard", "ignoring", "disregarding", "forgetting"]
        let earlier: Set = ["previous", "prior", "above", "earlier", "preceding", "former", "original", "initial", "old",
                            "foregoing"]
        let orders: Set = ["instructions", "instruction", "rules", "directions", "directives", "guidelines", "prompt", "prompts",
                           "programming", "constraints", "restrictions", "commands", "orders", "guidance", "policies",
                           "safeguards", "filters"]
        let show: Set = ["reveal", "print", "show", "repeat", "output", "display", "tell", "leak", "dump", "give", "share",
                         "disclose", "write", "recite", "spell", "return", "expose", "what"]
        let hidden: Set = ["system", "initial", "original", "hidden", "secret", "internal", "confidential", "developer"]
        let noRules: Set = ["restrictions", "limitations", "limits", "filters", "censorship", "rules", "guidelines", "boundaries",
                            "morals", "ethics", "restraints", "safeguards"]
        let refuse: Set = ["refuse", "decline", "apologize", "apologise", "reject"]
        rules = [
            Rule(family: .instructionOverride, confidence: 0.92, slots: [override, earlier, orders], gap: 4),
            Rule(family: .instructionOverride, confidence: 0.6, slots: [override, ["all", "any", "your", "the", "these"], orders], gap: 3),
            Rule(family: .instructionOverride, confidence: 0.6, slots: [override, ["everything", "anything"], ["above", "before", "said",
                                                                                                                "previously"]], gap: 2),
            Rule(family: .instructionOverride, confidence: 0.85, slots: [["new"], ["instructions", "task", "rules"], ["follow", "are", "is"]],
                 gap: 1),
            Rule(family: .systemPromptExfiltration, confidence: 0.88, slots: [show, hidden, ["prompt", "instructions", "message",
                                                                                               "directives", "rules"]], gap: 4),
            Rule(family: .systemPromptExfiltration, confidence: 0.8, slots: [show, ["everything", "text", "words"], ["above", "before"]],
                 gap: 3),
            Rule(family: .roleplayJailbreak, confidence: 0.95, slots: [["do"], ["anything"], ["now"]], gap: 0),
            Rule(family: .roleplayJailbreak, confidence: 0.9, slots: [["developer", "dan", "jailbreak", "god", "evil", "unrestricted",
                                                                        "unfiltered", "chaos"], ["mode"]], gap: 1),
            Rule(family: .roleplayJailbreak, confidence: 0.9, slots: [["jailbreak", "jailbroken", "jailbreaking"]], gap: 0),
            Rule(family: .roleplayJailbreak, confidence: 0.7, slots: [["no", "without", "free", "freed", "beyond"], ["any"], noRules],
                 gap: 2),
            Rule(family: .roleplayJailbreak, confidence: 0.65, slots: [["not", "no", "longer", "never"], ["bound", "restricted", "limited",
                                                                                                         "constrained"]], gap: 2),
            Rule(family: .roleplayJailbreak, confidence: 0.75, slots: [["pretend", "act", "roleplay", "imagine", "behave"], ["no", "without",
                                                                                                                            "ignore"], noRules],
                 gap: 5),
            Rule(family: .refusalSuppression, confidence: 0.7, slots: [["never", "not", "don", "cannot", "won", "mustn"], refuse],
                 gap: 2),
            Rule(family: .refusalSuppression, confidence: 0.65, slots: [["without", "no", "omit", "skip"], ["warnings", "disclaimers",
                                                                                                          "caveats"]], gap: 3),
        ]
        phrases = [
            (.delimiterInjection, 0.85, "<|im_start|>system"), (.delimiterInjection, 0.8, "<|system|>"),
            (.delimiterInjection, 0.8, "<</sys>>"), (.delimiterInjection, 0.75, "[/inst]"), (.delimiterInjection, 0.75, "</system>"),
            (.delimiterInjection, 0.7, "### system"), (.delimiterInjection, 0.7, "end of system prompt"),
            (.delimiterInjection, 0.7, "<|endoftext|>"),
        ]
    }

    /// The strongest match in a prompt (`raw`, and `prompt` its normalised form), looking into base64 runs as well.
    public func strongest(in prompt: NormalizedPrompt, raw: String) -> Match? {
        var best = strongestPlain(in: prompt)
        for decoded in Base64Runs.decoded(in: raw) {
            if let inner = strongestPlain(in: NormalizedPrompt(decoded)), inner.confidence > (best?.confidence ?? 0) {
                best = Match(family: .encodedPayload, confidence: max(inner.confidence, 0.9))
            }
        }
        return best
    }

    func strongestPlain(in prompt: NormalizedPrompt) -> Match? {
        var best: Match?
        func consider(_ family: Family, _ confidence: Double) {
            if confidence > (best?.confidence ?? 0) { best = Match(family: family, confidence: confidence) }
        }
        let words = prompt.words
        for rule in rules where !(best.map { $0.confidence >= rule.confidence } ?? false) {
            if Self.matches(rule, words) { consider(rule.family, rule.confidence) }
        }
        for phrase in phrases where prompt.text.contains(phrase.text) { consider(phrase.family, phrase.confidence) }
        return best
    }

    /// Whether the slots occur in order, each within `gap` words after the previous.
    static func matches(_ rule: Rule, _ words: [String]) -> Bool {
        guard let first = rule.slots.first else { return false }
        outer: for start in words.indices where first.contains(words[start]) {
            var at = start
            for slot in rule.slots.dropFirst() {
                let window = (at + 1)..<min(words.count, at + 2 + rule.gap)
                guard let next = window.first(where: { slot.contains(words[$0]) }) else { continue outer }
                at = next
            }
            return true
        }
        return false
    }
}
