/// Parser for OData v4 `$filter` expressions as Microsoft Graph uses them on directory resources.
///
/// Supports `eq ne gt ge lt le`, `and` (binding tighter than `or`), prefix `not`, parentheses,
/// `startswith`/`endswith`/`contains`, `in (...)` and single-level `any`/`all` lambdas.
/// Keywords and function names are case-insensitive; property names are kept as written.
public enum FilterParser {
    /// Maximum accepted length of a `$filter` expression, in UTF-8 bytes.
    public static let maxLength = 8192
    /// Maximum nesting depth of parentheses, `not` and lambdas.
    public static let maxDepth = 32

    /// Parses a percent-decoded `$filter` value.
    ///
    /// Error positions are 0-based offsets in Unicode scalars; end of input is reported as the length.
    /// - Throws: `ODataParseError` for malformed input (`isUnsupported == false`) or for
    ///   well-formed constructs this server does not implement (`isUnsupported == true`).
    public static func parse(_ text: String) throws(ODataParseError) -> FilterExpression {
        guard text.utf8.count <= maxLength else {
            throw ODataParseError(
                message: "Invalid filter clause: the expression exceeds the maximum length of \(maxLength) characters.")
        }
        var lexer = FilterLexer(text: text)
        var parser = FilterParserState(tokens: try lexer.tokenize(), text: text)
        return try parser.parseRoot()
    }
}

struct FilterToken: Sendable, Hashable {
    enum Kind: Sendable, Hashable {
        case identifier(String)
        case literal(ODataLiteral)
        case openParen, closeParen, comma, slash, colon, end
    }
    var kind: Kind
    var position: Int
}

struct FilterLexer {
    let text: String
    let scalars: [Unicode.Scalar]
    var index = 0

    init(text: String) {
        self.text = text
        self.scalars = Array(text.unicodeScalars)
    }

    private func error(_ detail: String, at position: Int) -> ODataParseError {
        .filter(detail, at: position, in: text)
    }

    private func scalar(at i: Int) -> Unicode.Scalar? { i < scalars.count ? scalars[i] : nil }

    mutating func tokenize() throws(ODataParseError) -> [FilterToken] {
        var tokens: [FilterToken] = []
        while true {
            while let c = scalar(at: index), c == " " || c == "\t" || c == "\r" || c == "\n" { index += 1 }
            let start = index
            guard let c = scalar(at: index) else {
                tokens.append(FilterToken(kind: .end, position: start))
                return tokens
            }
            let kind: FilterToken.Kind
            switch c {
            case "(": index += 1; kind = .openParen
            case ")": index += 1; kind = .closeParen
            case ",": index += 1; kind = .comma
            case "/": index += 1; kind = .slash
            case ":": index += 1; kind = .colon
            case "'": kind = .literal(.string(try scanString()))
            default:
                if index + 36 <= scalars.count, ODataLiteral.isGUID(scalars[index..<index + 36]) {
                    index += 36
                    kind = .literal(.guid(String(String.UnicodeScalarView(scalars[start..<index])).lowercased()))
                } else if c.isASCIIDigit || (c == "-" && scalar(at: index + 1)?.isASCIIDigit == true) {
                    kind = .literal(try scanNumberOrDate())
                } else if c == "$" {
                    // `$count` is the one system segment a path may end with (`assignedLicenses/$count eq 0`).
                    index += 1
                    while let n = scalar(at: index), n.isIdentifierPart { index += 1 }
                    let word = String(String.UnicodeScalarView(scalars[start..<index]))
                    guard word.lowercased() == "$count" else { throw error("unexpected '\(word)'", at: start) }
                    kind = .identifier("$count")
                } else if c.isIdentifierStart {
                    while let n = scalar(at: index), n.isIdentifierPart { index += 1 }
                    kind = .identifier(String(String.UnicodeScalarView(scalars[start..<index])))
                } else {
                    throw error("unexpected character '\(c)'", at: start)
                }
                if case .literal = kind, let n = scalar(at: index), n.isIdentifierPart || n == "-" {
                    throw error("malformed literal", at: start)
                }
            }
            tokens.append(FilterToken(kind: kind, position: start))
        }
    }

    /// Scans `'...'` with `''` as an escaped quote; `index` is on the opening quote.
    private mutating func scanString() throws(ODataParseError) -> String {
        let start = index
        index += 1
        var value = String.UnicodeScalarView()
        while true {
            guard let c = scalar(at: index) else { throw error("unterminated string literal", at: start) }
            index += 1
            if c == "'" {
                guard scalar(at: index) == "'" else { return String(value) }
                index += 1
            }
            value.append(c)
        }
    }

    private mutating func scanDigits() -> Bool {
        let from = index
        while let c = scalar(at: index), c.isASCIIDigit { index += 1 }
        return index > from
    }

    private mutating func scanNumberOrDate() throws(ODataParseError) -> ODataLiteral {
        let start = index
        // A date starts with four digits followed by '-'.
        if (0..<4).allSatisfy({ scalar(at: start + $0)?.isASCIIDigit == true }), scalar(at: start + 4) == "-" {
            while let c = scalar(at: index), c.isASCIIDigit || "-:.+TtZz".unicodeScalars.contains(c) { index += 1 }
            let raw = Array(scalars[start..<index])
            if ODataLiteral.isDate(raw) { return .dateTimeOffset(String(String.UnicodeScalarView(raw)) + "T00:00:00Z") }
            guard ODataLiteral.isDateTimeOffset(raw) else { throw error("invalid dateTimeOffset literal", at: start) }
            return .dateTimeOffset(String(String.UnicodeScalarView(raw)))
        }
        if scalar(at: index) == "-" { index += 1 }
        var isInteger = true
        _ = scanDigits()
        if scalar(at: index) == "." {
            index += 1
            isInteger = false
            guard scanDigits() else { throw error("malformed number literal", at: start) }
        }
        if let e = scalar(at: index), e == "e" || e == "E" {
            index += 1
            isInteger = false
            if let sign = scalar(at: index), sign == "+" || sign == "-" { index += 1 }
            guard scanDigits() else { throw error("malformed number literal", at: start) }
        }
        let raw = String(String.UnicodeScalarView(scalars[start..<index]))
        if isInteger {
            guard let value = Int64(raw) else { throw error("integer literal out of range", at: start) }
            return .int(value)
        }
        guard let value = Double(raw), value.isFinite else { throw error("number literal out of range", at: start) }
        return .double(value)
    }
}

struct FilterParserState {
    static let keywordLiterals: [String: ODataLiteral] = ["true": .bool(true), "false": .bool(false), "null": .null]
    let tokens: [FilterToken]
    let text: String
    var index = 0
    var depth = 0
    var lambdaVariable: String?

    init(tokens: [FilterToken], text: String) {
        self.tokens = tokens
        self.text = text
    }

    /// The lexer always terminates the stream with `.end`, and `advance` never moves past it.
    private var current: FilterToken { tokens[min(index, tokens.count - 1)] }
    private var next: FilterToken { tokens[min(index + 1, tokens.count - 1)] }
    private mutating func advance() { if index < tokens.count - 1 { index += 1 } }

    private func error(_ detail: String, _ token: FilterToken, unsupported: Bool = false) -> ODataParseError {
        .filter(detail, at: token.position, in: text, unsupported: unsupported)
    }

    private func keyword(_ token: FilterToken) -> String? {
        if case .identifier(let name) = token.kind { return name.lowercased() }
        return nil
    }

    private mutating func expect(_ kind: FilterToken.Kind, _ what: String) throws(ODataParseError) {
        guard current.kind == kind else { throw error("expected \(what)", current) }
        advance()
    }

    mutating func parseRoot() throws(ODataParseError) -> FilterExpression {
        let expression = try parseOr()
        guard current.kind == .end else { throw error("syntax error", current) }
        return expression
    }

    private mutating func parseOr() throws(ODataParseError) -> FilterExpression {
        var lhs = try parseAnd()
        while keyword(current) == "or" {
            advance()
            lhs = .or(lhs, try parseAnd())
        }
        return lhs
    }

    private mutating func parseAnd() throws(ODataParseError) -> FilterExpression {
        var lhs = try parseUnary()
        while keyword(current) == "and" {
            advance()
            lhs = .and(lhs, try parseUnary())
        }
        return lhs
    }

    private mutating func parseUnary() throws(ODataParseError) -> FilterExpression {
        depth += 1
        defer { depth -= 1 }
        guard depth <= FilterParser.maxDepth else {
            throw error("expression is nested too deeply (maximum depth is \(FilterParser.maxDepth))", current)
        }
        if keyword(current) == "not" {
            advance()
            return .not(try parseUnary())
        }
        return try parsePrimary()
    }

    private mutating func parsePrimary() throws(ODataParseError) -> FilterExpression {
        let start = current
        switch start.kind {
        case .openParen:
            advance()
            let inner = try parseOr()
            try expect(.closeParen, "')'")
            return inner
        case .literal:
            throw error("a literal cannot be the left operand; expected a property path", start)
        case .identifier(let name):
            if Self.keywordLiterals[name.lowercased()] != nil {
                throw error("a literal cannot be the left operand; expected a property path", start)
            }
            if next.kind == .openParen { return try parseBoolSuffix(try parseFunction(name)) }
            let segments = try parsePath()
            if segments.count > 1, let last = segments.last?.lowercased(), last == "any" || last == "all",
               current.kind == .openParen {
                return try parseBoolSuffix(try parseLambda(Array(segments.dropLast()), isAll: last == "all", at: start))
            }
            let path = resolve(segments)
            let op = current
            if let word = keyword(op), let comparison = ComparisonOperator(rawValue: word) {
                advance()
                return .compare(path, comparison, try parseLiteral())
            }
            guard keyword(op) == "in" else { throw error("expected a comparison operator", op) }
            advance()
            try expect(.openParen, "'(' after 'in'")
            var values = [try parseLiteral()]
            while current.kind == .comma {
                advance()
                values.append(try parseLiteral())
            }
            try expect(.closeParen, "',' or ')'")
            return .in(path, values)
        default:
            throw error("syntax error: expected an expression", start)
        }
    }

    /// Accepts the redundant `eq true` / `eq false` / `ne ...` suffix after a boolean function or lambda.
    private mutating func parseBoolSuffix(_ expression: FilterExpression) throws(ODataParseError) -> FilterExpression {
        guard let op = keyword(current), op == "eq" || op == "ne" else { return expression }
        advance()
        guard let word = keyword(current), word == "true" || word == "false" else {
            throw error("a boolean expression can only be compared with true or false", current)
        }
        advance()
        let value = word == "true"
        return (value == (op == "eq")) ? expression : .not(expression)
    }

    private mutating func parsePath() throws(ODataParseError) -> [String] {
        var segments: [String] = []
        while true {
            guard case .identifier(let segment) = current.kind else { throw error("expected a property name", current) }
            segments.append(segment)
            advance()
            guard current.kind == .slash else { return segments }
            advance()
        }
    }

    private func resolve(_ segments: [String]) -> PropertyPath {
        if let variable = lambdaVariable, segments.first == variable {
            return PropertyPath(Array(segments.dropFirst()), isLambdaVariable: true)
        }
        return PropertyPath(segments)
    }

    private mutating func parseFunction(_ name: String) throws(ODataParseError) -> FilterExpression {
        let nameToken = current
        let function = name.lowercased()
        guard ["startswith", "endswith", "contains", "isof"].contains(function) else {
            throw error("unsupported function '\(name)'", nameToken, unsupported: true)
        }
        advance()
        try expect(.openParen, "'('")
        if function == "isof" {
            guard case .literal(.string(let type)) = current.kind else { throw error("expected a type name in quotes", current) }
            advance()
            try expect(.closeParen, "')'")
            let short = type.hasPrefix("#") ? String(type.dropFirst()) : type
            guard short.hasPrefix("microsoft.graph."), short.count > 16 else { throw error("expected a microsoft.graph type", nameToken) }
            return .isOf(String(short.dropFirst(16)))
        }
        let path = resolve(try parsePath())
        try expect(.comma, "','")
        guard case .literal(.string(let value)) = current.kind else { throw error("expected a string literal", current) }
        advance()
        try expect(.closeParen, "')'")
        switch function {
        case "startswith": return .startsWith(path, value)
        case "endswith": return .endsWith(path, value)
        default: return .contains(path, value)
        }
    }

    private mutating func parseLambda(
        _ collectionSegments: [String], isAll: Bool, at start: FilterToken
    ) throws(ODataParseError) -> FilterExpression {
        guard lambdaVariable == nil else { throw error("nested lambda expressions are not supported", start, unsupported: true) }
        let collection = PropertyPath(collectionSegments)
        advance()  // '('
        if current.kind == .closeParen {
            guard !isAll else { throw error("all() requires a lambda predicate", current) }
            advance()
            return .any(collection: collection, variable: "", predicate: nil)
        }
        guard case .identifier(let variable) = current.kind else { throw error("expected a lambda variable name", current) }
        advance()
        try expect(.colon, "':' after the lambda variable")
        depth += 1
        lambdaVariable = variable
        defer { lambdaVariable = nil; depth -= 1 }
        let predicate = try parseOr()
        try expect(.closeParen, "')' to close the lambda")
        return isAll
            ? .all(collection: collection, variable: variable, predicate: predicate)
            : .any(collection: collection, variable: variable, predicate: predicate)
    }

    private mutating func parseLiteral() throws(ODataParseError) -> ODataLiteral {
        let token = current
        if case .literal(let value) = token.kind {
            advance()
            return value
        }
        if let word = keyword(token), let value = Self.keywordLiterals[word] {
            advance()
            return value
        }
        throw error("expected a literal value", token)
    }
}
