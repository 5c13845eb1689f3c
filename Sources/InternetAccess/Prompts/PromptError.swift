/// Why prompt protection refused its configuration: a model file or a custom scheme. Compared by code.
public struct PromptError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, as a stable code.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        /// The detector's model file is missing, truncated, of another version or inconsistent.
        public static let invalidModel = Code("invalidModel")
        /// A custom conversation scheme has no host or path, or a JSON path Tessera does not read.
        public static let invalidScheme = Code("invalidScheme")
        /// Thresholds outside 0...1, or an alert threshold above the block threshold.
        public static let invalidThresholds = Code("invalidThresholds")
        public var description: String { name }
    }

    /// The code.
    public var code: Code
    /// What is wrong, for the administrator.
    public var message: String

    /// An error with its code and message.
    public init(_ code: Code, _ message: String) { self.code = code; self.message = message }

    public var description: String { "prompt protection: \(message)" }
}

extension PromptError: Equatable {
    public static func == (a: PromptError, b: PromptError) -> Bool { a.code == b.code }
}
