import Foundation

/// A configuration file for `tessera serve`: a strict subset of TOML 1.0, parsed without a dependency.
///
/// The subset: one `key = value` a line (bare keys: letters, digits, `-` and `_`), no tables, no dotted or quoted
/// keys; values are basic strings (`"…"` with TOML's escapes), literal strings (`'…'`), decimal integers (a sign and
/// `_` between digits allowed, no leading zeros), `true`/`false`, and arrays of strings (which may span lines, hold
/// comments and end with a comma); `#` comments; blank lines. Anything else — a table, a float, a date, a multi-line
/// string, a duplicate key — is refused with its line and column, so a file this parser accepts means the same to
/// any TOML parser.
struct ConfigurationFile: Sendable, Equatable {
    /// A value and where it is in the file.
    struct Entry: Sendable, Equatable {
        var value: Value
        var line: Int
        var column: Int
    }

    /// The values the subset has.
    enum Value: Sendable, Equatable {
        case string(String)
        case integer(Int)
        case boolean(Bool)
        case strings([String])

        /// The TOML type's name, for error messages.
        var typeName: String {
            switch self {
            case .string: "a string"
            case .integer: "an integer"
            case .boolean: "a boolean"
            case .strings: "an array of strings"
            }
        }
    }

    /// The entries by key, and the keys in the order they appear.
    var entries: [String: Entry] = [:]
    var keys: [String] = []

    /// Parses `text`; `path` names the file in errors.
    init(parsing text: String, path: String) throws(ConfigurationError) {
        var parser = Parser(scalars: Array(text.unicodeScalars), path: path)
        try parser.parse(into: &self)
    }
}

/// A configuration that cannot be used: where (file, line and column, or an environment variable) and why.
struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A hand-written recursive-descent parser over Unicode scalars, tracking line and column (both from 1).
private struct Parser {
    let scalars: [Unicode.Scalar]
    let path: String
    var index = 0
    var line = 1
    var lineStart = 0

    init(scalars: [Unicode.Scalar], path: String) {
        self.scalars = scalars
        self.path = path
        if scalars.first == "\u{FEFF}" { index = 1; lineStart = 1 }
    }

    var column: Int { index - lineStart + 1 }
    var current: Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }

    func error(_ message: String, line: Int? = nil, column: Int? = nil) -> ConfigurationError {
        ConfigurationError("\(path):\(line ?? self.line):\(column ?? self.column): \(message)")
    }

    mutating func advance() { index += 1 }

    /// Spaces and tabs.
    mutating func skipBlanks() {
        while let c = current, c == " " || c == "\t" { advance() }
    }

    /// A comment (to the end of the line), if one starts here; control characters other than tab are refused in it.
    mutating func skipComment() throws(ConfigurationError) {
        guard current == "#" else { return }
        while let c = current, c != "\n", !(c == "\r" && peek(1) == "\n") {
            if c.value < 0x20 && c != "\t" || c.value == 0x7F { throw error("a control character in a comment") }
            advance()
        }
    }

    func peek(_ offset: Int) -> Unicode.Scalar? { index + offset < scalars.count ? scalars[index + offset] : nil }

    /// The end of a line (LF or CRLF) or of the file; false when something else is here.
    mutating func takeNewline() -> Bool {
        if current == nil { return true }
        if current == "\n" { advance(); line += 1; lineStart = index; return true }
        if current == "\r", peek(1) == "\n" { index += 2; line += 1; lineStart = index; return true }
        return false
    }

    mutating func parse(into file: inout ConfigurationFile) throws(ConfigurationError) {
        while current != nil {
            skipBlanks()
            try skipComment()
            if takeNewline() { continue }
            let keyLine = line, keyColumn = column
            let key = try parseKey()
            skipBlanks()
            guard current == "=" else {
                if current == "." { throw error("dotted keys are not supported: one key = value a line, keys as serve's options are named") }
                throw error("expected '=' after the key '\(key)'")
            }
            advance()
            skipBlanks()
            let value = try parseValue(for: key)
            skipBlanks()
            try skipComment()
            guard takeNewline() else { throw error("expected the end of the line after the value of '\(key)'") }
            if let first = file.entries[key] {
                throw error("the key '\(key)' is defined twice (first on line \(first.line))", line: keyLine, column: keyColumn)
            }
            file.entries[key] = .init(value: value, line: keyLine, column: keyColumn)
            file.keys.append(key)
        }
    }

    mutating func parseKey() throws(ConfigurationError) -> String {
        if current == "[" { throw error("tables are not supported: the file is flat, key = value a line") }
        if current == "\"" || current == "'" { throw error("quoted keys are not supported: keys are serve's option names, e.g. public-url") }
        var key = ""
        while let c = current, Self.isBareKey(c) {
            key.unicodeScalars.append(c)
            advance()
        }
        guard !key.isEmpty else { throw error("expected a key (letters, digits, '-' and '_')") }
        return key
    }

    static func isBareKey(_ c: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || c == "-" || c == "_"
    }

    mutating func parseValue(for key: String) throws(ConfigurationError) -> ConfigurationFile.Value {
        switch current {
        case "\"", "'": return .string(try parseString())
        case "[": return .strings(try parseArray())
        case "t", "f":
            for (word, value) in [("true", true), ("false", false)] where matches(word) {
                let next = peek(word.unicodeScalars.count)
                if let next, Self.isBareKey(next) { break }
                index += word.unicodeScalars.count
                return .boolean(value)
            }
            throw error("the value of '\(key)' is not a string, integer, boolean or array of strings (strings need quotes)")
        case let c? where ("0"..."9").contains(c) || c == "+" || c == "-":
            return .integer(try parseInteger())
        case nil, "\n", "\r", "#":
            throw error("'\(key)' has no value")
        default:
            throw error("the value of '\(key)' is not a string, integer, boolean or array of strings (strings need quotes)")
        }
    }

    func matches(_ word: String) -> Bool {
        for (offset, c) in word.unicodeScalars.enumerated() where peek(offset) != c { return false }
        return true
    }

    mutating func parseInteger() throws(ConfigurationError) -> Int {
        let startColumn = column
        var text = ""
        while let c = current, !(c == " " || c == "\t" || c == "#" || c == "\n" || c == "\r" || c == "," || c == "]") {
            text.unicodeScalars.append(c)
            advance()
        }
        var digits = Substring(text)
        var sign = ""
        if let first = digits.first, first == "+" || first == "-" { sign = first == "-" ? "-" : ""; digits = digits.dropFirst() }
        // TOML: digits with single underscores between them, no leading zero; floats, dates, hex/octal/binary are outside the subset.
        let valid = digits.first.map { ("0"..."9").contains($0) } == true && digits.last.map { ("0"..."9").contains($0) } == true
            && digits.allSatisfy { $0 == "_" || ("0"..."9").contains($0) } && !digits.contains("__")
            && !(digits.count > 1 && digits.first == "0")
        guard valid, let value = Int(sign + digits.filter { $0 != "_" }) else {
            throw error("'\(text)' is not a decimal integer in range (floats, dates and 0x/0o/0b numbers are not supported)", column: startColumn)
        }
        return value
    }

    mutating func parseString() throws(ConfigurationError) -> String {
        let quote = current!
        let startColumn = column
        if peek(1) == quote, peek(2) == quote { throw error("multi-line strings are not supported") }
        advance()
        var text = ""
        while true {
            guard let c = current, c != "\n", !(c == "\r" && peek(1) == "\n") else {
                throw error("the string has no closing \(quote)", column: startColumn)
            }
            if c == quote { advance(); return text }
            if (c.value < 0x20 && c != "\t") || c.value == 0x7F { throw error("a control character in a string (use an escape such as \\n)") }
            if c == "\\", quote == "\"" {
                text.unicodeScalars.append(try parseEscape())
                continue
            }
            text.unicodeScalars.append(c)
            advance()
        }
    }

    mutating func parseEscape() throws(ConfigurationError) -> Unicode.Scalar {
        let escapeColumn = column
        advance()
        guard let c = current else { throw error("the string has no closing \"") }
        advance()
        switch c {
        case "b": return "\u{08}"
        case "t": return "\t"
        case "n": return "\n"
        case "f": return "\u{0C}"
        case "r": return "\r"
        case "\"": return "\""
        case "\\": return "\\"
        case "u", "U":
            let count = c == "u" ? 4 : 8
            var hex = ""
            for _ in 0..<count {
                guard let d = current, d.properties.isASCIIHexDigit else { throw error("\\\(c) needs \(count) hexadecimal digits", column: escapeColumn) }
                hex.unicodeScalars.append(d)
                advance()
            }
            guard let value = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(value) else {
                throw error("\\\(c)\(hex) is not a Unicode scalar value", column: escapeColumn)
            }
            return scalar
        default:
            throw error("\\\(c) is not an escape TOML has (\\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX)", column: escapeColumn)
        }
    }

    /// Blanks, comments and line breaks between an array's elements.
    mutating func skipArraySpace() throws(ConfigurationError) {
        while true {
            skipBlanks()
            try skipComment()
            if current == nil || !takeNewline() { return }
        }
    }

    mutating func parseArray() throws(ConfigurationError) -> [String] {
        let startLine = line, startColumn = column
        advance()
        var values: [String] = []
        while true {
            try skipArraySpace()
            guard let c = current else { throw error("the array has no closing ]", line: startLine, column: startColumn) }
            if c == "]" { advance(); return values }
            guard c == "\"" || c == "'" else { throw error("only arrays of strings are supported (strings need quotes)") }
            values.append(try parseString())
            try skipArraySpace()
            if current == "," { advance(); continue }
            if current == "]" { advance(); return values }
            if current == nil { throw error("the array has no closing ]", line: startLine, column: startColumn) }
            throw error("expected ',' or ']' in the array")
        }
    }
}
