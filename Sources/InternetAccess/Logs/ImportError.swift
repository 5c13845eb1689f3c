/// Why an import could not run (a line that does not parse is not an error: it is counted and reported).
public struct ImportError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable {
        private let name: String
        private init(_ name: String) { self.name = name }
        public static let badMapping = Code("badMapping")
        public static let unreadable = Code("unreadable")
    }

    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) { self.code = code; self.message = message }
    public var description: String { message }
}

extension ImportError: Equatable {
    public static func == (a: ImportError, b: ImportError) -> Bool { a.code == b.code }
}
