/// Why a catalog (the shipped file or an administrator's custom app) was refused: the entry, its line in the file when
/// known, and what is wrong. Compared by code.
public struct CatalogError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public static let syntax = Code("syntax")
        public static let invalidEntry = Code("invalidEntry")
        public static let duplicate = Code("duplicate")
        public static let missingSource = Code("missingSource")
        public var description: String { name }
    }

    public var code: Code
    public var line: Int?
    public var entry: String?
    public var message: String

    public init(_ code: Code, _ message: String, entry: String? = nil, line: Int? = nil) {
        self.code = code; self.message = message; self.entry = entry; self.line = line
    }

    public var description: String {
        var where_ = line.map { "line \($0): " } ?? ""
        if let entry { where_ += "entry '\(entry)': " }
        return "AI app catalog: \(where_)\(message)"
    }
}

extension CatalogError: Equatable {
    public static func == (a: CatalogError, b: CatalogError) -> Bool { a.code == b.code }
}
