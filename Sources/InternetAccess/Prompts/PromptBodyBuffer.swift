/// Collects a request body that arrives in pieces (a chunked or streamed upload) up to a limit, then extracts the
/// prompt once it is whole.
///
/// A JSON body can only be read once it is complete — the user's latest turn is at the end of `messages` — so the
/// proxy holds it, up to ``limit`` bytes (1 MiB unless told otherwise; a prompt is at most 10,000 characters, and the
/// rest of a conversation rarely comes near that). Past the limit the buffer drops what it holds and the extraction is
/// ``PromptExtraction/tooLarge(limit:)``, which the prompt policy passes or blocks; memory stays bounded either way.
public struct PromptBodyBuffer: Sendable {
    /// The most bytes held.
    public let limit: Int
    private var bytes: [UInt8] = []
    private var overflowed = false

    /// An empty buffer holding at most `limit` bytes.
    public init(limit: Int = 1 << 20) { self.limit = limit }

    /// True once the body went past the limit.
    public var isOverLimit: Bool { overflowed }

    /// Adds the next piece of the body.
    public mutating func append(_ piece: some Collection<UInt8>) {
        guard !overflowed else { return }
        if bytes.count + piece.count > limit {
            overflowed = true
            bytes = []
        } else {
            bytes.append(contentsOf: piece)
        }
    }

    /// The prompt in the whole body, read with `scheme`.
    public func extract(with scheme: ConversationScheme) -> PromptExtraction {
        overflowed ? .tooLarge(limit: limit) : scheme.extractPrompt(from: bytes)
    }
}
