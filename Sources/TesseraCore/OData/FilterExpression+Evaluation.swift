/// `$filter` over Graph JSON held in memory (audit records, role definitions, directory roles), with the
/// semantics the store's SQL has: strings compare case-insensitively, date-times as instants, a missing value is
/// null, and hidden (`_`-prefixed) members are never read.
extension FilterExpression {
    /// True when `object` matches.
    public func matches(_ object: JSONValue) -> Bool { matches(object, element: nil) }

    func matches(_ root: JSONValue, element: JSONValue?) -> Bool {
        switch self {
        case .and(let a, let b): return a.matches(root, element: element) && b.matches(root, element: element)
        case .or(let a, let b): return a.matches(root, element: element) || b.matches(root, element: element)
        case .not(let a): return !a.matches(root, element: element)
        case .compare(let path, let op, let literal):
            return Self.compare(Self.value(path, root, element), op, literal)
        case .startsWith(let path, let prefix):
            return Self.value(path, root, element)?.stringValue?.lowercased().hasPrefix(prefix.lowercased()) ?? false
        case .endsWith(let path, let suffix):
            return Self.value(path, root, element)?.stringValue?.lowercased().hasSuffix(suffix.lowercased()) ?? false
        case .contains(let path, let part):
            return Self.value(path, root, element)?.stringValue?.lowercased().contains(part.lowercased()) ?? false
        case .in(let path, let literals):
            let value = Self.value(path, root, element)
            return literals.contains { Self.compare(value, .eq, $0) }
        case .any(let collection, _, let predicate):
            let items = Self.value(collection, root, element)?.arrayValue ?? []
            guard let predicate else { return !items.isEmpty }
            return items.contains { predicate.matches(root, element: $0) }
        case .all(let collection, _, let predicate):
            return (Self.value(collection, root, element)?.arrayValue ?? []).allSatisfy { predicate.matches(root, element: $0) }
        case .isOf(let type):
            return root["@odata.type"]?.stringValue?.lowercased() == "#microsoft.graph.\(type)".lowercased()
        }
    }

    static func value(_ path: PropertyPath, _ root: JSONValue, _ element: JSONValue?) -> JSONValue? {
        var current: JSONValue? = path.isLambdaVariable ? element : root
        for (offset, segment) in path.segments.enumerated() {
            if segment == "$count", offset == path.segments.count - 1 {
                return .int(Int64(current?.arrayValue?.count ?? 0))
            }
            guard !segment.hasPrefix("_") else { return nil }
            current = current?[segment]
        }
        return current
    }

    static func compare(_ value: JSONValue?, _ op: ComparisonOperator, _ literal: ODataLiteral) -> Bool {
        func ordered<T: Comparable>(_ a: T, _ b: T) -> Bool {
            switch op {
            case .eq: a == b
            case .ne: a != b
            case .gt: a > b
            case .ge: a >= b
            case .lt: a < b
            case .le: a <= b
            }
        }
        let present = value.flatMap { $0 == .null ? nil : $0 }
        switch literal {
        case .null:
            switch op {
            case .eq: return present == nil
            case .ne: return present != nil
            default: return false
            }
        case .string(let s), .guid(let s):
            guard let text = present?.stringValue else { return op == .ne }
            return ordered(text.lowercased(), s.lowercased())
        case .dateTimeOffset(let s):
            guard let text = present?.stringValue else { return op == .ne }
            if let a = Timestamp.parse(text), let b = Timestamp.parse(s) { return ordered(a, b) }
            return ordered(text.lowercased(), s.lowercased())
        case .bool(let b):
            guard let flag = present?.boolValue else { return op == .ne }
            return op == .eq ? flag == b : op == .ne ? flag != b : false
        case .int(let i):
            guard let number = present?.doubleValue else { return op == .ne }
            return ordered(number, Double(i))
        case .double(let d):
            guard let number = present?.doubleValue else { return op == .ne }
            return ordered(number, d)
        }
    }
}

/// `$search` over Graph JSON held in memory, tokenised as the store's SQL and Graph tokenise: a term matches when a
/// token of the property's text starts with it.
extension SearchExpression {
    /// True when `object` matches.
    public func matches(_ object: JSONValue) -> Bool {
        switch self {
        case .and(let a, let b): return a.matches(object) && b.matches(object)
        case .or(let a, let b): return a.matches(object) || b.matches(object)
        case .term(let term):
            guard !term.property.hasPrefix("_"), let text = object[term.property]?.stringValue else { return false }
            let word = term.value.lowercased()
            return Self.tokens(text).contains { $0.hasPrefix(word) }
        }
    }

    /// The lower-cased tokens of `text`: split at anything but letters and digits, between letters and digits, and
    /// where a lower-case letter meets an upper-case one.
    static func tokens(_ text: String) -> [String] {
        var tokens: [String] = [], current = ""
        var previous: Character?
        for ch in text {
            guard ch.isLetter || ch.isNumber else {
                if !current.isEmpty { tokens.append(current) }
                current = ""
                previous = nil
                continue
            }
            if let p = previous, (p.isLetter != ch.isLetter) || (p.isLowercase && ch.isUppercase) {
                tokens.append(current)
                current = ""
            }
            current += ch.lowercased()
            previous = ch
        }
        if !current.isEmpty { tokens.append(current) }
        return tokens
    }
}
