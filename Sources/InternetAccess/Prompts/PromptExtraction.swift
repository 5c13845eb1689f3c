/// What a conversation scheme found in a request body: the user's latest prompt, or why there is none.
///
/// Never thrown: a body that is not JSON, or not the scheme's shape, is a value the prompt policy decides on
/// (pass or block), so a hostile body can only ever produce one of these cases.
public enum PromptExtraction: Sendable, Hashable {
    /// The user's latest turn: its text parts, joined with newlines, cut at ``Prompt/limit`` characters.
    case prompt(Prompt)
    /// The body has the scheme's shape but its latest turn carries no user text (only tool results, images or files).
    case noUserText
    /// The body is not JSON (or not UTF-8); the reason names the byte where parsing stopped.
    case notJSON(reason: String)
    /// The body is JSON but not the scheme's request shape.
    case unexpectedShape(reason: String)
    /// The body is larger than the buffering limit (``PromptBodyBuffer``), so it was not read whole.
    case tooLarge(limit: Int)

    /// The extracted prompt, if there is one.
    public var prompt: Prompt? { if case .prompt(let p) = self { p } else { nil } }

    /// A prompt as the detector sees it.
    public struct Prompt: Sendable, Hashable {
        /// Entra inspects the first 10,000 characters of a prompt; so does Tessera.
        public static let limit = 10_000

        /// The text, at most ``limit`` characters.
        public var text: String
        /// True when the user's text was longer than ``limit`` characters and was cut.
        public var truncated: Bool

        /// Joins the text parts of the user's latest turn and cuts the result at `limit` characters.
        public init(parts: [String], limit: Int = Prompt.limit) {
            let joined = parts.joined(separator: "\n")
            var end = joined.startIndex, count = 0
            while end < joined.endIndex, count < limit { joined.formIndex(after: &end); count += 1 }
            text = String(joined[..<end])
            truncated = end < joined.endIndex
        }
    }
}
