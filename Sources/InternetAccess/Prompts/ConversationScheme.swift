/// How an AI app's API carries a conversation in a request body, and where in it the user's latest prompt is.
///
/// The built-in schemes follow each vendor's public API reference (linked per entry); most vendors speak OpenAI's
/// chat completions shape. An administrator adds a ``custom(name:host:path:jsonPath:)`` scheme for anything else.
public struct ConversationScheme: Sendable, Hashable {
    /// A stable name (`openai-chat-completions`), as recorded in insights.
    public var name: String
    /// A host, or a `*` pattern (`*-aiplatform.googleapis.com`); compared without case.
    public var host: String
    /// A path pattern (`*` matches any run of characters), compared without the query string.
    public var path: String
    /// The request body's shape.
    public var format: Format

    /// The body shapes Tessera reads.
    public enum Format: Sendable, Hashable {
        /// `messages: [{role, content: string | [{type: "text", text}]}]` (OpenAI chat completions and the vendors
        /// compatible with it, Cohere v2 chat): the trailing `user` messages.
        case chatCompletions
        /// OpenAI responses: `input: string | [{role, content: string | [{type: "input_text", text}]} | items]`.
        case responses
        /// Anthropic messages: `messages: [{role, content: string | [{type: "text", text} | {type: "tool_result"}]}]`;
        /// the top-level `system` is not the user's.
        case anthropicMessages
        /// Gemini `generateContent`: `contents: [{role, parts: [{text} | {functionResponse} | {inlineData}]}]`.
        case geminiContents
        /// Cohere chat v1: the top-level `message`; `chat_history`, `preamble` and `tool_results` are not the prompt.
        case cohereChatV1
        /// An administrator's scheme: the strings found at a JSON path.
        case jsonPath(JSONPath)
    }

    /// A scheme for any host and path pattern.
    public init(name: String, host: String, path: String, format: Format) {
        self.name = name; self.host = host.lowercased(); self.path = path; self.format = format
    }

    /// An administrator's scheme: the prompt is the strings at `jsonPath` (`$.input.messages[-1].text`).
    public static func custom(name: String, host: String, path: String, jsonPath: String) throws(PromptError) -> ConversationScheme {
        guard !host.isEmpty, !path.isEmpty, path.hasPrefix("/") || path.hasPrefix("*") else {
            throw PromptError(.invalidScheme, "scheme '\(name)': a host and a path starting with / are required")
        }
        return ConversationScheme(name: name, host: host, path: path, format: .jsonPath(try JSONPath(jsonPath)))
    }

    /// Whether a request to `host` and `path` (a query string is ignored) is this scheme's.
    public func matches(host requestHost: String, path requestPath: String) -> Bool {
        var h = requestHost.lowercased()
        if h.hasSuffix(".") { h.removeLast() }
        let p = requestPath.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        return Glob.matches(host, h) && Glob.matches(path, p)
    }

    /// The built-in scheme for a request, if any.
    public static func scheme(for host: String, path: String) -> ConversationScheme? {
        builtIn.first { $0.matches(host: host, path: path) }
    }

    /// The first of `custom` (an administrator's, tried first) and the built-in schemes that matches the request.
    public static func scheme(for host: String, path: String, custom: [ConversationScheme]) -> ConversationScheme? {
        custom.first { $0.matches(host: host, path: path) } ?? scheme(for: host, path: path)
    }
}
