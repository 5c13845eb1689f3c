/// What the proxy asks of prompt protection for one request: which scheme reads the body, the user's prompt in it,
/// the detector's assessment, and the verdict — including for bodies no scheme could read, which the prompt policy
/// passes or blocks (``unreadableBodies``). Pure: no network, no clock, no storage.
public struct PromptInspector: Sendable {
    /// The detector.
    public var detector: PromptDetector
    /// An administrator's schemes, tried before the built-in ones.
    public var customSchemes: [ConversationScheme]
    /// The verdict for a body a scheme claims but cannot read: not JSON, not its shape, or over the buffering limit.
    public var unreadableBodies: PromptDetector.Verdict

    /// An inspector; unreadable bodies are allowed unless told otherwise (Entra passes what it cannot parse).
    public init(detector: PromptDetector, customSchemes: [ConversationScheme] = [],
                unreadableBodies: PromptDetector.Verdict = .allow) {
        self.detector = detector; self.customSchemes = customSchemes; self.unreadableBodies = unreadableBodies
    }

    /// One inspected request.
    public struct Inspection: Sendable, Hashable {
        /// The scheme that read the body.
        public var scheme: ConversationScheme
        /// What the scheme found.
        public var extraction: PromptExtraction
        /// The detector's assessment, when there was a prompt.
        public var assessment: PromptDetector.Assessment?
        /// What to do with the request.
        public var verdict: PromptDetector.Verdict
    }

    /// The scheme for a request, if any: requests to other hosts and paths are not conversations.
    public func scheme(host: String, path: String) -> ConversationScheme? {
        ConversationScheme.scheme(for: host, path: path, custom: customSchemes)
    }

    /// Inspects a whole body (or a ``PromptBodyBuffer``'s extraction); nil when no scheme applies.
    public func inspect(host: String, path: String, body: [UInt8]) -> Inspection? {
        guard let scheme = scheme(host: host, path: path) else { return nil }
        return inspect(scheme.extractPrompt(from: body), scheme: scheme)
    }

    /// Decides on an extraction made by `scheme`.
    public func inspect(_ extraction: PromptExtraction, scheme: ConversationScheme) -> Inspection {
        switch extraction {
        case .prompt(let prompt):
            let assessment = detector.assess(prompt.text)
            return Inspection(scheme: scheme, extraction: extraction, assessment: assessment, verdict: assessment.verdict)
        case .noUserText:
            return Inspection(scheme: scheme, extraction: extraction, assessment: nil, verdict: .allow)
        case .notJSON, .unexpectedShape, .tooLarge:
            return Inspection(scheme: scheme, extraction: extraction, assessment: nil, verdict: unreadableBodies)
        }
    }
}
