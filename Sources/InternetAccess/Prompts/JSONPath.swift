public import TesseraCore

/// The subset of JSONPath (RFC 9535) a custom conversation scheme needs: `$`, `.name`, `['name']`, `[n]`, `[-n]`
/// (from the end) and the wildcards `[*]` / `.*`. Filters and recursive descent are refused when the scheme is made.
public struct JSONPath: Sendable, Hashable, CustomStringConvertible {
    /// One step of the path.
    public enum Segment: Sendable, Hashable {
        case member(String)
        case index(Int)
        case wildcard
    }

    /// The steps after `$`.
    public let segments: [Segment]
    /// The path as written.
    public let description: String

    /// Parses a path such as `$.messages[-1].content[*].text`.
    public init(_ text: String) throws(PromptError) {
        func fail(_ why: String) -> PromptError { PromptError(.invalidScheme, "JSON path '\(text)': \(why)") }
        var scalars = Substring(text)
        guard scalars.first == "$" else { throw fail("it must start with $") }
        scalars.removeFirst()
        var segments: [Segment] = []
        while let c = scalars.first {
            if c == "." {
                scalars.removeFirst()
                let name = scalars.prefix { $0 != "." && $0 != "[" }
                guard !name.isEmpty else { throw fail("a '.' must be followed by a member name or *") }
                segments.append(name == "*" ? .wildcard : .member(String(name)))
                scalars = scalars.dropFirst(name.count)
            } else if c == "[" {
                guard let close = scalars.firstIndex(of: "]") else { throw fail("an unclosed [") }
                let inner = scalars[scalars.index(after: scalars.startIndex)..<close]
                if inner == "*" {
                    segments.append(.wildcard)
                } else if let n = Int(inner) {
                    segments.append(.index(n))
                } else if inner.count >= 2, let q = inner.first, q == "'" || q == "\"", inner.last == q {
                    segments.append(.member(String(inner.dropFirst().dropLast())))
                } else {
                    throw fail("'[\(inner)]' is not an index, a quoted name or *")
                }
                scalars = scalars[scalars.index(after: close)...]
            } else {
                throw fail("unexpected '\(c)'")
            }
        }
        self.segments = segments
        description = text
    }

    /// The strings at the path (an array of strings there counts as its strings); nil when nothing is at the path.
    public func strings(in json: JSONValue) -> [String]? {
        var nodes = [json]
        for segment in segments {
            nodes = nodes.flatMap { node -> [JSONValue] in
                switch (segment, node) {
                case (.member(let name), .object(let o)): return o[name].map { [$0] } ?? []
                case (.index(let i), .array(let a)):
                    let at = i < 0 ? a.count + i : i
                    return a.indices.contains(at) ? [a[at]] : []
                case (.wildcard, .array(let a)): return a
                case (.wildcard, .object(let o)): return o.keys.sorted().compactMap { o[$0] }
                default: return []
                }
            }
        }
        guard !nodes.isEmpty else { return nil }
        return nodes.flatMap { node -> [String] in
            switch node {
            case .string(let s): [s]
            case .array(let a): a.compactMap(\.stringValue)
            default: []
            }
        }
    }
}
