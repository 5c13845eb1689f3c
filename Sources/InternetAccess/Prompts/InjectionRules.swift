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
        /// An attack of another family hidden in an encoding (base64, hex, binary, ROT13, reversed…), or a request to
        /// decode something and obey it.
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
        rules = Self.standardRules()
        phrases = Self.standardPhrases.map { ($0.family, $0.confidence, Array($0.text.utf8)) }
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

    /// The strongest match in a prompt (`raw`, and `prompt` its normalised form), looking into encoded text as well.
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
        let reversed = prompt.words.reversed().map { String(String.UnicodeScalarView($0.unicodeScalars.reversed())) }
        consider(hidden: strongest(inWords: reversed))
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
