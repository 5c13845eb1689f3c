/// A property path inside an OData `$filter`, `$orderby` or lambda expression.
///
/// `onPremisesExtensionAttributes/extensionAttribute1` becomes
/// `["onPremisesExtensionAttributes", "extensionAttribute1"]`.
public struct PropertyPath: Sendable, Hashable, CustomStringConvertible {
    /// Segments after the lambda variable if `isLambdaVariable` is true, else from the resource root.
    /// "onPremisesExtensionAttributes/extensionAttribute1" -> ["onPremisesExtensionAttributes","extensionAttribute1"]
    public var segments: [String]
    /// True when the path starts at the variable of an enclosing any()/all() lambda
    /// (e.g. `p` or `x/skuId` in `assignedLicenses/any(x:x/skuId eq ...)`).
    /// For the bare variable (`p`), `segments` is empty.
    public var isLambdaVariable: Bool

    /// Creates a path from its segments.
    public init(_ segments: [String], isLambdaVariable: Bool = false) {
        self.segments = segments
        self.isLambdaVariable = isLambdaVariable
    }

    /// The path joined with `/`; lambda-variable paths are prefixed with `$it`.
    public var description: String {
        let joined = segments.joined(separator: "/")
        guard isLambdaVariable else { return joined }
        return joined.isEmpty ? "$it" : "$it/" + joined
    }
}

/// A literal value appearing on the right-hand side of a `$filter` comparison or in an `in` list.
public enum ODataLiteral: Sendable, Hashable {
    /// A single-quoted string with `''` escapes already resolved.
    case string(String)
    /// An integer literal that fits in 64 bits.
    case int(Int64)
    /// A decimal or exponent literal (always finite).
    case double(Double)
    /// `true` or `false`.
    case bool(Bool)
    /// `null`.
    case null
    /// A bare GUID literal (8-4-4-4-12 hex), lowercased.
    case guid(String)
    /// An ISO 8601 date-time with offset (e.g. `2024-01-01T00:00:00Z`), as written.
    case dateTimeOffset(String)
}

/// A binary comparison operator of `$filter`.
public enum ComparisonOperator: String, Sendable {
    /// Equal.
    case eq
    /// Not equal.
    case ne
    /// Greater than.
    case gt
    /// Greater than or equal.
    case ge
    /// Less than.
    case lt
    /// Less than or equal.
    case le
}

/// The abstract syntax tree of a parsed `$filter` expression.
public indirect enum FilterExpression: Sendable, Hashable {
    /// Logical conjunction.
    case and(FilterExpression, FilterExpression)
    /// Logical disjunction.
    case or(FilterExpression, FilterExpression)
    /// Logical negation.
    case not(FilterExpression)
    /// `path op literal`.
    case compare(PropertyPath, ComparisonOperator, ODataLiteral)
    /// `startswith(path,'prefix')`.
    case startsWith(PropertyPath, String)
    /// `endswith(path,'suffix')`.
    case endsWith(PropertyPath, String)
    /// `contains(path,'part')`.
    case contains(PropertyPath, String)
    /// `path in (literal, ...)`; the list is never empty.
    case `in`(PropertyPath, [ODataLiteral])
    /// `collection/any(v: predicate)`; `predicate` is nil and `variable` empty for `collection/any()`.
    case any(collection: PropertyPath, variable: String, predicate: FilterExpression?)
    /// `collection/all(v: predicate)`.
    case all(collection: PropertyPath, variable: String, predicate: FilterExpression)
    /// `isof('microsoft.graph.type')`: the object is of this type (its short name, e.g. `countryNamedLocation`).
    case isOf(String)
}

/// An error describing why an OData query option could not be parsed.
public struct ODataParseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Human readable, Graph-style message,
    /// e.g. "Invalid filter clause: expected a literal value at position 14 in 'displayName eq'."
    public var message: String
    /// True for well-formed but unsupported constructs (maps to `Request_UnsupportedQuery`);
    /// false for malformed input (maps to `Request_BadRequest`).
    public var isUnsupported: Bool

    /// Creates an error.
    public init(message: String, isUnsupported: Bool = false) {
        self.message = message
        self.isUnsupported = isUnsupported
    }

    /// The message.
    public var description: String { message }

    /// A `$filter` error at a 0-based character (Unicode scalar) position within `text`.
    static func filter(
        _ detail: String, at position: Int, in text: String, unsupported: Bool = false
    ) -> ODataParseError {
        let shown = text.unicodeScalars.count > 200 ? String(text.prefix(200)) + "..." : text
        return ODataParseError(
            message: "Invalid filter clause: \(detail) at position \(position) in '\(shown)'.",
            isUnsupported: unsupported)
    }
}

// MARK: - Literal validation helpers (shared by the lexer)

extension Unicode.Scalar {
    var isASCIIDigit: Bool { value >= 0x30 && value <= 0x39 }
    var isASCIILetter: Bool { (value | 0x20) >= 0x61 && (value | 0x20) <= 0x7A }
    var isHexDigit: Bool { isASCIIDigit || ((value | 0x20) >= 0x61 && (value | 0x20) <= 0x66) }
    var isIdentifierStart: Bool { isASCIILetter || self == "_" }
    var isIdentifierPart: Bool { isIdentifierStart || isASCIIDigit }
}

extension ODataLiteral {
    /// True when `s` is exactly a 8-4-4-4-12 hex GUID.
    static func isGUID(_ s: ArraySlice<Unicode.Scalar>) -> Bool {
        guard s.count == 36 else { return false }
        for (offset, c) in s.enumerated() {
            let dash = offset == 8 || offset == 13 || offset == 18 || offset == 23
            if dash ? c != "-" : !c.isHexDigit { return false }
        }
        return true
    }

    /// True for a date-only literal, `YYYY-MM-DD` (an `Edm.Date`, which Graph compares with date-times as midnight UTC).
    static func isDate(_ s: [Unicode.Scalar]) -> Bool {
        guard s.count == 10, s[4] == "-", s[7] == "-" else { return false }
        let digits = [0, 1, 2, 3, 5, 6, 8, 9]
        guard digits.allSatisfy({ s[$0].isASCIIDigit }) else { return false }
        let month = Int(s[5].value - 0x30) * 10 + Int(s[6].value - 0x30), day = Int(s[8].value - 0x30) * 10 + Int(s[9].value - 0x30)
        return (1...12).contains(month) && (1...31).contains(day)
    }

    /// Loose ISO 8601 check: `YYYY-MM-DDThh:mm[:ss[.f+]](Z|±hh:mm)` with plausible field ranges.
    static func isDateTimeOffset(_ s: [Unicode.Scalar]) -> Bool {
        var i = 0
        func number(_ width: Int, _ range: ClosedRange<Int>) -> Bool {
            guard i + width <= s.count else { return false }
            var n = 0
            for c in s[i..<i + width] {
                guard c.isASCIIDigit else { return false }
                n = n * 10 + Int(c.value - 0x30)
            }
            i += width
            return range.contains(n)
        }
        func char(_ options: Unicode.Scalar...) -> Bool {
            guard i < s.count, options.contains(s[i]) else { return false }
            i += 1
            return true
        }
        guard number(4, 0...9999), char("-"), number(2, 1...12), char("-"), number(2, 1...31),
              char("T", "t"), number(2, 0...23), char(":"), number(2, 0...59) else { return false }
        if char(":") {
            guard number(2, 0...60) else { return false }
            if char(".") {
                let start = i
                while i < s.count, s[i].isASCIIDigit { i += 1 }
                guard i > start else { return false }
            }
        }
        if char("Z", "z") { return i == s.count }
        guard char("+", "-"), number(2, 0...23), char(":"), number(2, 0...59) else { return false }
        return i == s.count
    }
}
