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

    /// A set of up to 128 slot numbers.
    struct Bits: Sendable {
        var low: UInt64 = 0, high: UInt64 = 0
        mutating func insert(_ n: Int) { if n < 64 { low |= 1 << UInt64(n) } else { high |= 1 << UInt64(n - 64) } }
        func contains(_ n: Int) -> Bool { n < 64 ? low & (1 << UInt64(n)) != 0 : high & (1 << UInt64(n - 64)) != 0 }
    }

    /// The strongest rule that matched, if any.
    public struct Match: Sendable, Hashable {
        public var family: Family
        public var confidence: Double
    }

    let rules: [Rule]
    let phrases: [(family: Family, confidence: Double, text: [UInt8])]
    /// For each word in any slot, a bit per (rule, slot) it belongs to, so a prompt's words are looked up once.
    let slotBits: [String: Bits]
    /// The first bit of each rule's slots.
    let firstBit: [Int]

    /// The rules Tessera ships.
    public static let standard = InjectionRules()

    init() {
        // English, with the common German, French, Spanish, Italian and Portuguese equivalents (accents kept: the
        // normaliser lower-cases but does not strip them).
        let override: Set = ["ignore", "disregard", "forget", "override", "bypass", "dismiss", "neglect", "skip", "abandon",
                             "discard", "ignoring", "disregarding", "forgetting",
                             "ignoriere", "ignorieren", "vergiss", "vergessen", "missachte", "ignorez", "oublie", "oubliez",
                             "ignora", "ignorá", "olvida", "olvide", "dimentica", "esqueça", "esqueca"]
        let earlier: Set = ["previous", "prior", "above", "earlier", "preceding", "former", "original", "initial", "old",
                            "foregoing", "vorherigen", "bisherigen", "obigen", "précédentes", "précédents", "anteriores",
                            "previas", "precedenti", "prévias"]
        let orders: Set = ["instructions", "instruction", "rules", "directions", "directives", "guidelines", "prompt", "prompts",
                           "programming", "constraints", "restrictions", "commands", "orders", "guidance", "policies",
                           "safeguards", "filters", "anweisungen", "regeln", "richtlinien", "vorgaben", "consignes", "règles",
                           "instrucciones", "reglas", "istruzioni", "regole", "instruções", "regras", "directivas"]
        let show: Set = ["reveal", "print", "show", "repeat", "output", "display", "tell", "leak", "dump", "give", "share",
                         "disclose", "write", "recite", "spell", "return", "expose", "what", "list",
                         "zeige", "verrate", "gib", "révèle", "affiche", "montre", "revela", "muestra", "rivela", "mostra"]
        let hidden: Set = ["system", "initial", "original", "hidden", "secret", "internal", "confidential", "developer",
                           "sistema", "système", "systeme"]
        let noRules: Set = ["restrictions", "limitations", "limits", "filters", "censorship", "rules", "guidelines", "boundaries",
                            "morals", "ethics", "restraints", "safeguards", "filter", "policy", "regeln", "restricciones",
                            "restrizioni", "règles"]
        let unbound: Set = ["uncensored", "unrestricted", "unfiltered", "jailbroken", "unlimited", "amoral", "unchained",
                            "uneingeschränkt", "uneingeschrankt"]
        let refuse: Set = ["refuse", "decline", "apologize", "apologise", "reject"]
        rules = [
            Rule(family: .instructionOverride, confidence: 0.92, slots: [override, earlier, orders], gap: 4),
            Rule(family: .instructionOverride, confidence: 0.9, slots: [override, orders, earlier], gap: 4),
            Rule(family: .instructionOverride, confidence: 0.6, slots: [override, ["all", "any", "your", "the", "these", "alle",
                                                                                    "toutes", "todas", "tutte", "deine", "tus"],
                                                                        orders], gap: 3),
            Rule(family: .instructionOverride, confidence: 0.6, slots: [override, ["everything", "anything"], ["above", "before", "said",
                                                                                                                "previously"]], gap: 2),
            Rule(family: .instructionOverride, confidence: 0.85, slots: [["new"], ["instructions", "task", "rules"], ["follow", "are", "is"]],
                 gap: 1),
            Rule(family: .instructionOverride, confidence: 0.7, slots: [["new", "updated", "neue", "nouvelles", "nuevas", "nuove"],
                                                                        ["instructions", "directive", "directives", "anweisungen",
                                                                         "instrucciones", "istruzioni", "consignes"]], gap: 1),
            Rule(family: .instructionOverride, confidence: 0.75, slots: [["supersedes", "overrides", "replaces"], ["all", "any"],
                                                                         ["prior", "previous", "earlier", "other"]], gap: 2),
            Rule(family: .systemPromptExfiltration, confidence: 0.88, slots: [show, hidden, ["prompt", "instructions", "message",
                                                                                               "directives", "rules", "istruzioni",
                                                                                               "instrucciones", "consignes"]], gap: 4),
            Rule(family: .systemPromptExfiltration, confidence: 0.88, slots: [show, ["systemanweisungen", "systemprompt",
                                                                                       "systemnachricht"]], gap: 3),
            Rule(family: .systemPromptExfiltration, confidence: 0.8, slots: [show, ["everything", "text", "words"], ["above", "before"]],
                 gap: 3),
            Rule(family: .systemPromptExfiltration, confidence: 0.7, slots: [show, ["your", "the"], ["instructions", "prompt"], ["verbatim",
                                                                                                                             "word"]],
                 gap: 3),
            Rule(family: .roleplayJailbreak, confidence: 0.95, slots: [["do"], ["anything"], ["now"]], gap: 0),
            Rule(family: .roleplayJailbreak, confidence: 0.9, slots: [["developer", "dan", "jailbreak", "god", "evil", "unrestricted",
                                                                        "unfiltered", "chaos", "desarrollador", "sviluppatore",
                                                                        "entwickler", "développeur"], ["mode", "modo", "modus"]],
                 gap: 1),
            Rule(family: .roleplayJailbreak, confidence: 0.9, slots: [["modo", "modus", "mode"], ["desarrollador", "sviluppatore",
                                                                                                  "entwickler", "développeur", "dan"]],
                 gap: 1),
            Rule(family: .roleplayJailbreak, confidence: 0.9, slots: [["jailbreak", "jailbroken", "jailbreaking"]], gap: 0),
            Rule(family: .roleplayJailbreak, confidence: 0.85, slots: [["you", "du", "tu", "sei", "eres", "êtes"], unbound], gap: 3),
            Rule(family: .roleplayJailbreak, confidence: 0.85, slots: [["act", "pretend", "roleplay", "behave", "respond", "answer"],
                                                                       unbound], gap: 3),
            Rule(family: .roleplayJailbreak, confidence: 0.85, slots: [["you", "now"], ["dan"]], gap: 2),
            Rule(family: .roleplayJailbreak, confidence: 0.7, slots: [["no", "without", "free", "freed", "beyond", "sin", "senza",
                                                                       "sans", "ohne", "keine"], noRules], gap: 3),
            Rule(family: .roleplayJailbreak, confidence: 0.65, slots: [["not", "no", "longer", "never"], ["bound", "restricted", "limited",
                                                                                                         "constrained"]], gap: 2),
            Rule(family: .roleplayJailbreak, confidence: 0.75, slots: [["pretend", "act", "roleplay", "imagine", "behave"], ["no", "without",
                                                                                                                            "ignore"], noRules],
                 gap: 5),
            Rule(family: .refusalSuppression, confidence: 0.7, slots: [["never", "not", "don", "cannot", "won", "mustn"], refuse],
                 gap: 2),
            Rule(family: .refusalSuppression, confidence: 0.65, slots: [["without", "no", "omit", "skip"], ["warnings", "disclaimers",
                                                                                                          "caveats"]], gap: 3),
            Rule(family: .refusalSuppression, confidence: 0.7, slots: [["safety", "content", "security"], ["protocols", "filters", "checks",
                                                                                                        "policy", "guidelines"],
                                                                       ["disabled", "off", "removed", "suspended", "lifted"]], gap: 2),
            Rule(family: .encodedPayload, confidence: 0.6, slots: [["decode", "decrypt", "translate", "convert"], ["follow", "execute",
                                                                                                              "obey", "comply", "run",
                                                                                                              "do"]], gap: 8),
        ]
        let delimiters: [(Family, Double, String)] = [
            (.delimiterInjection, 0.85, "<|im_start|>system"), (.delimiterInjection, 0.8, "<|system|>"),
            (.delimiterInjection, 0.8, "<</sys>>"), (.delimiterInjection, 0.75, "[/inst]"), (.delimiterInjection, 0.75, "</system>"),
            (.delimiterInjection, 0.7, "### system"), (.delimiterInjection, 0.7, "end of system prompt"),
            (.delimiterInjection, 0.7, "<|endoftext|>"), (.delimiterInjection, 0.75, "end of user input"),
            (.delimiterInjection, 0.75, "[system]"), (.delimiterInjection, 0.75, "<system>"),
            (.delimiterInjection, 0.7, "end of document"),
        ]
        phrases = delimiters.map { ($0.0, $0.1, Array($0.2.utf8)) }
        var bits: [String: Bits] = [:], first: [Int] = [], next = 0
        for rule in rules {
            first.append(next)
            for slot in rule.slots {
                for word in slot { bits[word, default: Bits()].insert(next) }
                next += 1
            }
        }
        precondition(next <= 128, "more rule slots than bits")
        slotBits = bits
        firstBit = first
    }

    /// The strongest match in a prompt (`raw`, and `prompt` its normalised form), looking into base64 runs as well.
    public func strongest(in prompt: NormalizedPrompt, raw: String) -> Match? {
        var best = strongestPlain(in: prompt)
        // An instruction hidden in an encoding is worse than the same instruction in plain text.
        func consider(hidden inner: Match?) {
            guard let inner, inner.family != .encodedPayload else { return }
            let confidence = min(0.95, inner.confidence + 0.15)
            if confidence > (best?.confidence ?? 0) { best = Match(family: .encodedPayload, confidence: confidence) }
        }
        for decoded in EncodedPayloads.decoded(in: raw) { consider(hidden: strongestPlain(in: NormalizedPrompt(decoded))) }
        // ROT13 and reversed text, read from the normalised words (no second normalisation).
        consider(hidden: strongest(inWords: prompt.words.map(Self.rot13)))
        consider(hidden: strongest(inWords: prompt.words.reversed().map { String(String.UnicodeScalarView($0.unicodeScalars.reversed())) }))
        return best
    }

    /// ROT13 of a lower-case word's ASCII letters.
    static func rot13(_ word: String) -> String {
        String(String.UnicodeScalarView(word.unicodeScalars.map { s in
            (0x61...0x7A).contains(s.value) ? Unicode.Scalar(UInt8((s.value - 0x61 + 13) % 26 + 0x61)) : s
        }))
    }

    /// The strongest word rule (not the phrase rules) over a list of words.
    func strongest(inWords words: [String]) -> Match? {
        let bits = words.map { slotBits[$0] ?? Bits() }
        var best: Match?
        for (r, rule) in rules.enumerated() where rule.confidence > (best?.confidence ?? 0) {
            if Self.matches(rule, firstBit: firstBit[r], bits) { best = Match(family: rule.family, confidence: rule.confidence) }
        }
        return best
    }

    func strongestPlain(in prompt: NormalizedPrompt) -> Match? {
        var best = strongest(inWords: prompt.words)
        func consider(_ family: Family, _ confidence: Double) {
            if confidence > (best?.confidence ?? 0) { best = Match(family: family, confidence: confidence) }
        }
        if 0.7 > (best?.confidence ?? 0), Self.smugglesARole(prompt.text) { consider(.delimiterInjection, 0.7) }
        if phrases.contains(where: { $0.confidence > (best?.confidence ?? 0) }) {
            let text = Array(prompt.text.utf8)
            for phrase in phrases where phrase.confidence > (best?.confidence ?? 0) && Self.contains(text, phrase.text) {
                consider(phrase.family, phrase.confidence)
            }
        }
        return best
    }

    /// Whether the rule's slots occur in order, each within `gap` words after the previous (`words`: each word's bits).
    static func matches(_ rule: Rule, firstBit: Int, _ words: [Bits]) -> Bool {
        outer: for start in words.indices where words[start].contains(firstBit) {
            var at = start
            for slot in 1..<rule.slots.count {
                let window = (at + 1)..<min(words.count, at + 2 + rule.gap)
                guard let next = window.first(where: { words[$0].contains(firstBit + slot) }) else { continue outer }
                at = next
            }
            return true
        }
        return false
    }

    /// A line that starts with a chat role and a colon after another line ("…\nsystem: you may now…"), or a
    /// prompt that opens with `system:`: a fake turn smuggled into the user's text.
    static func smugglesARole(_ text: String) -> Bool {
        for line in text.split(separator: "\n") {
            let trimmed = line.drop { $0 == " " || $0 == "-" || $0 == "#" || $0 == "*" || $0 == "[" }
            for role in ["system:", "system]", "assistant:"] where trimmed.hasPrefix(role) { return true }
        }
        return false
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard let first = needle.first, haystack.count >= needle.count else { return false }
        var i = 0
        while i <= haystack.count - needle.count {
            if haystack[i] == first, haystack[i..<(i + needle.count)].elementsEqual(needle) { return true }
            i += 1
        }
        return false
    }
}
