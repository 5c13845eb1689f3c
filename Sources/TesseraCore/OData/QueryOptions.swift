/// One `$orderby` item: a property path and a direction.
public struct OrderByItem: Sendable, Hashable {
    /// The property to sort by.
    public var path: PropertyPath
    /// True for `desc`; false for `asc` or no direction.
    public var descending: Bool

    /// Creates an order-by item.
    public init(path: PropertyPath, descending: Bool = false) {
        self.path = path
        self.descending = descending
    }
}

/// One Graph `$search` term, `"property:value"`.
public struct SearchTerm: Sendable, Hashable {
    /// The property searched, e.g. `displayName`.
    public var property: String
    /// The text searched for, as written between `:` and the closing quote.
    public var value: String

    /// Creates a search term.
    public init(property: String, value: String) {
        self.property = property
        self.value = value
    }
}

/// A Graph `$search` expression; `AND` binds tighter than `OR`.
public indirect enum SearchExpression: Sendable, Hashable {
    /// A single quoted `"property:value"` term.
    case term(SearchTerm)
    /// Both sides must match.
    case and(SearchExpression, SearchExpression)
    /// Either side must match.
    case or(SearchExpression, SearchExpression)
}

/// The OData system query options of a Microsoft Graph collection request.
public struct QueryOptions: Sendable, Hashable {
    /// The parsed `$filter`, or nil when absent.
    public var filter: FilterExpression?
    /// `$select` property names, trimmed; nil when absent.
    public var select: [String]?
    /// `$orderby` items in order; empty when absent.
    public var orderBy: [OrderByItem]
    /// `$top`, validated to `1...maxTop`; nil when absent.
    public var top: Int?
    /// True for `$count=true`.
    public var count: Bool
    /// The parsed `$search`, or nil when absent.
    public var search: SearchExpression?
    /// The opaque `$skiptoken`, or nil when absent.
    public var skipToken: String?
    /// `$expand` navigation property names, trimmed; nil when absent.
    public var expand: [String]?
    /// A nested `$select` per expanded name (`$expand=manager($select=id,displayName)`).
    public var expandSelect: [String: [String]]

    /// Maximum accepted length of a `$search`, `$select`, `$orderby` or `$expand` value, in UTF-8 bytes.
    public static let maxOptionLength = 8192

    /// Creates query options; all options default to absent.
    public init(
        filter: FilterExpression? = nil, select: [String]? = nil, orderBy: [OrderByItem] = [], top: Int? = nil,
        count: Bool = false, search: SearchExpression? = nil, skipToken: String? = nil, expand: [String]? = nil,
        expandSelect: [String: [String]] = [:]
    ) {
        self.filter = filter
        self.select = select
        self.orderBy = orderBy
        self.top = top
        self.count = count
        self.search = search
        self.skipToken = skipToken
        self.expand = expand
        self.expandSelect = expandSelect
    }

    /// Parses raw, already percent-decoded query parameters (keys include the `$`, e.g. "$filter").
    ///
    /// Keys without `$` (e.g. "filter") are not OData options and are ignored; option names are
    /// case-insensitive; unknown `$`-options (e.g. "$foo") and repeated options throw. `$top` must be an
    /// integer in `1...maxTop`; `$count` accepts true/false (case-insensitive); `$skip` throws with
    /// `isUnsupported` set.
    public static func parse(
        _ parameters: [(name: String, value: String)], maxTop: Int = 999
    ) throws(ODataParseError) -> QueryOptions {
        var options = QueryOptions()
        var seen = Set<String>()
        for (rawName, value) in parameters where rawName.hasPrefix("$") {
            let name = rawName.lowercased()
            guard seen.insert(name).inserted else {
                throw ODataParseError(message: "Query option '\(rawName)' was specified more than once.")
            }
            if name != "$filter", name != "$skiptoken", value.utf8.count > maxOptionLength {
                throw ODataParseError(message: "Query option '\(rawName)' exceeds the maximum length of \(maxOptionLength).")
            }
            switch name {
            case "$filter": options.filter = try FilterParser.parse(value)
            case "$select": options.select = try parseNames(value, option: "$select")
            case "$expand": (options.expand, options.expandSelect) = try parseExpand(value)
            case "$orderby": options.orderBy = try parseOrderBy(value)
            case "$search":
                var parser = SearchParser(text: value)
                options.search = try parser.parse()
            case "$top":
                guard let top = Int(value), top >= 1, top <= maxTop else {
                    throw ODataParseError(
                        message: "Invalid page size specified: '\(value)'. Must be between 1 and \(maxTop) inclusive.")
                }
                options.top = top
            case "$count":
                switch value.lowercased() {
                case "true": options.count = true
                case "false": options.count = false
                default:
                    throw ODataParseError(message: "Invalid value '\(value)' for $count. Expected 'true' or 'false'.")
                }
            case "$skiptoken":
                guard !value.isEmpty else { throw ODataParseError(message: "Invalid value '' for $skiptoken.") }
                options.skipToken = value
            case "$skip":
                throw ODataParseError(message: "$skip is not supported on this resource.", isUnsupported: true)
            case "$format", "$apply", "$compute", "$index", "$levels", "$schemaversion", "$deltatoken":
                throw ODataParseError(message: "Query option '\(rawName)' is not supported.", isUnsupported: true)
            default:
                throw ODataParseError(message: "Unrecognized query argument specified: '\(rawName)'.")
            }
        }
        return options
    }

    static func isIdentifier(_ text: Substring) -> Bool {
        guard let first = text.unicodeScalars.first, first.isIdentifierStart else { return false }
        return text.unicodeScalars.allSatisfy(\.isIdentifierPart)
    }

    static func trimmed(_ text: Substring) -> Substring {
        guard let first = text.firstIndex(where: { !$0.isWhitespace }),
              let last = text.lastIndex(where: { !$0.isWhitespace }) else { return "" }
        return text[first...last]
    }

    private static func parseNames(_ value: String, option: String) throws(ODataParseError) -> [String] {
        var names: [String] = []
        for (offset, item) in value.split(separator: ",", omittingEmptySubsequences: false).enumerated() {
            let name = trimmed(item)
            guard isIdentifier(name) else {
                let shown = name.isEmpty ? "an empty property name" : "'\(name)'"
                throw ODataParseError(
                    message: "Invalid \(option) clause: \(shown) at item \(offset + 1) in '\(value)' is not a valid property name.")
            }
            names.append(String(name))
        }
        return names
    }

    /// `name` or `name($select=a,b)` items, separated by commas outside parentheses; other nested options
    /// (`$levels`, `$filter`, …) are unsupported.
    private static func parseExpand(_ value: String) throws(ODataParseError) -> ([String], [String: [String]]) {
        var items: [Substring] = []
        var depth = 0, start = value.startIndex
        for index in value.indices {
            switch value[index] {
            case "(": depth += 1
            case ")": depth -= 1
            case "," where depth == 0:
                items.append(value[start..<index])
                start = value.index(after: index)
            default: break
            }
            guard depth >= 0 else { throw ODataParseError(message: "Invalid $expand clause: unbalanced parentheses in '\(value)'.") }
        }
        guard depth == 0 else { throw ODataParseError(message: "Invalid $expand clause: unbalanced parentheses in '\(value)'.") }
        items.append(value[start...])
        var names: [String] = [], selects: [String: [String]] = [:]
        for raw in items {
            let item = trimmed(raw)
            guard let open = item.firstIndex(of: "(") else {
                names += try parseNames(String(item), option: "$expand")
                continue
            }
            let name = String(trimmed(item[..<open]))
            let inner = trimmed(item[item.index(after: open)..<item.index(before: item.endIndex)])
            guard item.hasSuffix(")"), isIdentifier(Substring(name)), inner.lowercased().hasPrefix("$select="), !inner.contains(";") else {
                throw ODataParseError(message: "Nested query options in $expand other than $select are not supported: '\(item)'.",
                                      isUnsupported: true)
            }
            names.append(name)
            selects[name] = try parseNames(String(inner.dropFirst("$select=".count)), option: "$select")
        }
        return (names, selects)
    }

    private static func parseOrderBy(_ value: String) throws(ODataParseError) -> [OrderByItem] {
        var items: [OrderByItem] = []
        for (offset, rawItem) in value.split(separator: ",", omittingEmptySubsequences: false).enumerated() {
            let parts = trimmed(rawItem).split(whereSeparator: \.isWhitespace)
            let invalid = ODataParseError(
                message: "Invalid $orderby clause: item \(offset + 1) in '\(value)' must be 'property [asc|desc]'.")
            guard let pathText = parts.first, parts.count <= 2 else { throw invalid }
            let segments = pathText.split(separator: "/", omittingEmptySubsequences: false)
            guard segments.allSatisfy(isIdentifier) else { throw invalid }
            var descending = false
            if parts.count == 2 {
                switch parts[1].lowercased() {
                case "asc": descending = false
                case "desc": descending = true
                default: throw invalid
                }
            }
            items.append(OrderByItem(path: PropertyPath(segments.map(String.init)), descending: descending))
        }
        return items
    }
}

/// Parses Graph `$search` values such as `"displayName:John" OR "mail:john"`.
struct SearchParser {
    let text: String
    let scalars: [Unicode.Scalar]
    var index = 0

    init(text: String) {
        self.text = text
        self.scalars = Array(text.unicodeScalars)
    }

    private func syntaxError(at position: Int) -> ODataParseError {
        guard position < scalars.count else {
            return ODataParseError(message: "Syntax error: unexpected end of $search at position \(position) in '\(text)'.")
        }
        return ODataParseError(
            message: "Syntax error: character '\(scalars[position])' is not valid at position \(position) in '\(text)'.")
    }

    private mutating func skipWhitespace() {
        while index < scalars.count, scalars[index] == " " || scalars[index] == "\t" { index += 1 }
    }

    mutating func parse() throws(ODataParseError) -> SearchExpression {
        var lhs = try parseAnd()
        while try consumeKeyword("OR") { lhs = .or(lhs, try parseAnd()) }
        skipWhitespace()
        guard index == scalars.count else { throw syntaxError(at: index) }
        return lhs
    }

    private mutating func parseAnd() throws(ODataParseError) -> SearchExpression {
        var lhs = try parseTerm()
        while try consumeKeyword("AND") { lhs = .and(lhs, try parseTerm()) }
        return lhs
    }

    /// Consumes `keyword` (case-insensitive) if it is the next word; throws on any other word.
    private mutating func consumeKeyword(_ keyword: String) throws(ODataParseError) -> Bool {
        skipWhitespace()
        var end = index
        while end < scalars.count, scalars[end].isASCIILetter { end += 1 }
        guard end > index else { return false }
        let word = String(String.UnicodeScalarView(scalars[index..<end])).uppercased()
        guard word == "AND" || word == "OR" else { throw syntaxError(at: index) }
        guard word == keyword else { return false }
        index = end
        return true
    }

    private mutating func parseTerm() throws(ODataParseError) -> SearchExpression {
        skipWhitespace()
        guard index < scalars.count, scalars[index] == "\"" else {
            // Unquoted input: report the first character that cannot continue a bare word, like Graph does.
            var position = index
            while position < scalars.count, scalars[position].isIdentifierPart { position += 1 }
            if position == scalars.count, position > index {
                throw ODataParseError(message: "Invalid $search clause: search terms must be quoted, e.g. \"displayName:John\".")
            }
            throw syntaxError(at: position)
        }
        let open = index
        guard let close = scalars[(open + 1)...].firstIndex(of: "\"") else {
            throw ODataParseError(message: "Syntax error: unterminated quoted term at position \(open) in '\(text)'.")
        }
        index = close + 1
        let content = String(String.UnicodeScalarView(scalars[(open + 1)..<close]))
        guard let colon = content.firstIndex(of: ":"), QueryOptions.isIdentifier(content[..<colon]),
              content.index(after: colon) < content.endIndex else {
            throw ODataParseError(
                message: "Invalid $search clause: term '\(content)' at position \(open) must be of the form \"property:value\".")
        }
        return .term(SearchTerm(property: String(content[..<colon]), value: String(content[content.index(after: colon)...])))
    }
}
