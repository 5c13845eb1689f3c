public import TesseraCore

extension ConversationScheme {
    /// The user's latest prompt in a whole request body.
    ///
    /// "Latest" is the trailing run of user turns: everything the user added since the model last spoke. System and
    /// developer instructions, the model's turns and tool results are not the user's prompt.
    public func extractPrompt(from body: [UInt8], limit: Int = PromptExtraction.Prompt.limit) -> PromptExtraction {
        let json: JSONValue
        do { json = try JSONParser.parse(body) } catch { return .notJSON(reason: error.description) }
        return extractPrompt(from: json, limit: limit)
    }

    /// The user's latest prompt in a parsed request body.
    public func extractPrompt(from json: JSONValue, limit: Int = PromptExtraction.Prompt.limit) -> PromptExtraction {
        let parts: [String]?
        switch format {
        case .chatCompletions: parts = Self.latestUserTurn(json["messages"]?.arrayValue, text: Self.chatText)
        case .responses: parts = Self.responsesInput(json["input"])
        case .anthropicMessages: parts = Self.latestUserTurn(json["messages"]?.arrayValue, text: Self.chatText)
        case .geminiContents: parts = Self.geminiContents(json["contents"]?.arrayValue)
        case .cohereChatV1: parts = json["message"]?.stringValue.map { [$0] }
        case .jsonPath(let path): parts = path.strings(in: json)
        }
        guard let parts else { return .unexpectedShape(reason: "the body is not a \(name) request") }
        let text = parts.filter { !$0.isEmpty }
        return text.isEmpty ? .noUserText : .prompt(.init(parts: text, limit: limit))
    }

    /// The text parts of the trailing user messages (`role: "user"`), skipping system and developer messages placed
    /// after them; nil when `messages` is missing or not an array of objects with a role.
    static func latestUserTurn(_ messages: [JSONValue]?, text: (JSONValue?) -> [String]?) -> [String]? {
        guard let messages, !messages.isEmpty else { return nil }
        var turn: [[String]] = []
        for message in messages.reversed() {
            guard let role = message["role"]?.stringValue else { return nil }
            switch role {
            case "user":
                guard let parts = text(message["content"]) else { return nil }
                turn.append(parts)
            case "system", "developer": continue
            default: return turn.reversed().flatMap { $0 }
            }
        }
        return turn.reversed().flatMap { $0 }
    }

    /// A message's `content`: a string, or an array whose `text` / `input_text` parts are kept (images, files,
    /// documents and `tool_result` blocks are not text the user typed); nil for anything else.
    static func chatText(_ content: JSONValue?) -> [String]? {
        switch content {
        case .string(let s): return [s]
        case .array(let parts):
            return parts.compactMap { part -> String? in
                guard let type = part["type"]?.stringValue, type == "text" || type == "input_text" else { return nil }
                return part["text"]?.stringValue
            }
        case .null, nil: return []
        default: return nil
        }
    }

    /// OpenAI responses' `input`: a string, or items of which the trailing user messages count; a function call's
    /// output or the model's message ends the turn.
    static func responsesInput(_ input: JSONValue?) -> [String]? {
        switch input {
        case .string(let s): return [s]
        case .array(let items):
            var turn: [[String]] = []
            for item in items.reversed() {
                let type = item["type"]?.stringValue ?? "message"
                guard type == "message" else { break }
                guard let role = item["role"]?.stringValue else { return nil }
                if role == "system" || role == "developer" { continue }
                guard role == "user" else { break }
                guard let parts = chatText(item["content"]) else { return nil }
                turn.append(parts)
            }
            return turn.reversed().flatMap { $0 }
        default: return nil
        }
    }

    /// Gemini's `contents`: the trailing `user` contents (a missing role is the user's, as in single-turn requests);
    /// their `text` parts, not thoughts, function responses or inline data.
    static func geminiContents(_ contents: [JSONValue]?) -> [String]? {
        guard let contents, !contents.isEmpty else { return nil }
        var turn: [[String]] = []
        for content in contents.reversed() {
            guard content.objectValue != nil else { return nil }
            let role = content["role"]?.stringValue ?? "user"
            guard role == "user" else { break }
            guard let parts = content["parts"]?.arrayValue else { return nil }
            turn.append(parts.compactMap { part in part["thought"]?.boolValue == true ? nil : part["text"]?.stringValue })
        }
        return turn.reversed().flatMap { $0 }
    }
}
