/// The device attributes a Conditional Access device filter may read (Entra's "filter for devices" properties
/// that Tessera knows; the multi-valued `physicalIds` and `systemLabels` are not among them yet).
public enum DeviceAttribute: Int, Sendable, Hashable, CaseIterable {
    case deviceId, displayName, deviceOwnership, enrollmentProfileName, isCompliant, manufacturer, mdmAppId, model
    case operatingSystem, operatingSystemVersion, profileType, trustType
    case extensionAttribute1, extensionAttribute2, extensionAttribute3, extensionAttribute4, extensionAttribute5
    case extensionAttribute6, extensionAttribute7, extensionAttribute8, extensionAttribute9, extensionAttribute10
    case extensionAttribute11, extensionAttribute12, extensionAttribute13, extensionAttribute14, extensionAttribute15

    /// The attribute named `name` (case-insensitive, with or without the `device.` prefix rules write).
    public init?(named name: some StringProtocol) {
        let lowered = name.lowercased()
        let bare = lowered.hasPrefix("device.") ? String(lowered.dropFirst(7)) : lowered
        guard let match = Self.allCases.first(where: { "\($0)".lowercased() == bare }) else { return nil }
        self = match
    }
}

/// A device filter rule (`conditions.devices.deviceFilter.rule`) parsed once: Entra's grammar of
/// `device.attribute -operator "value"` comparisons joined by `-and` / `-or` (`-and` binds tighter) and parentheses.
/// String comparisons ignore case; a property the device does not have is null, which only negative operators
/// (`-ne`, `-notStartsWith`, `-notEndsWith`, `-notContains`, `-notIn`) match, so an unregistered device matches
/// exactly the rules that speak of what it is not.
public indirect enum DeviceFilter: Sendable, Hashable {
    /// A comparison operator (`-eq`, `-notIn`, …), named without its dash.
    public enum Operator: String, Sendable, Hashable, CaseIterable {
        case eq, ne, startsWith, notStartsWith, endsWith, notEndsWith, contains, notContains, `in`, notIn

        var isNegative: Bool { [.ne, .notStartsWith, .notEndsWith, .notContains, .notIn].contains(self) }
    }

    case comparison(DeviceAttribute, Operator, [String])
    case and(DeviceFilter, DeviceFilter)
    case or(DeviceFilter, DeviceFilter)

    /// Whether the device (nil: an unregistered device, every property null) matches.
    public func matches(_ device: DeviceFacts?) -> Bool {
        switch self {
        case .and(let left, let right): return left.matches(device) && right.matches(device)
        case .or(let left, let right): return left.matches(device) || right.matches(device)
        case .comparison(let attribute, let op, let values):
            guard let actual = device?[attribute] else { return op.isNegative }
            let value = values[0]
            switch op {
            case .eq: return actual == value
            case .ne: return actual != value
            case .startsWith: return actual.hasPrefix(value)
            case .notStartsWith: return !actual.hasPrefix(value)
            case .endsWith: return actual.hasSuffix(value)
            case .notEndsWith: return !actual.hasSuffix(value)
            case .contains: return actual.contains(value)
            case .notContains: return !actual.contains(value)
            case .in: return values.contains(actual)
            case .notIn: return !values.contains(actual)
            }
        }
    }
}

extension DeviceFilter {
    /// Why a rule could not be parsed, with the position (in characters) where parsing stopped.
    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        public var message: String
        public var position: Int
        public var description: String { "\(message) at character \(position + 1)" }
    }

    /// Parses a rule; throws on anything outside the grammar (an unknown attribute or operator, a missing quote).
    public init(rule: String) throws(ParseError) {
        var parser = Parser(text: Array(rule))
        let filter = try parser.parseOr()
        parser.skipSpaces()
        guard parser.index == parser.text.count else { throw parser.error("Unexpected '\(parser.text[parser.index])'") }
        self = filter
    }

    private struct Parser {
        let text: [Character]
        var index = 0

        func error(_ message: String) -> ParseError { ParseError(message: message, position: index) }

        mutating func skipSpaces() { while index < text.count, text[index].isWhitespace { index += 1 } }

        /// Consumes `-keyword` (case-insensitive) if it comes next.
        mutating func consume(keyword: String) -> Bool {
            skipSpaces()
            let word = Array("-" + keyword.lowercased())
            guard index + word.count <= text.count,
                  zip(text[index..<index + word.count], word).allSatisfy({ $0.lowercased() == String($1) })
            else { return false }
            let end = index + word.count
            guard end == text.count || !(text[end].isLetter || text[end].isNumber) else { return false }
            index = end
            return true
        }

        mutating func parseOr() throws(ParseError) -> DeviceFilter {
            var left = try parseAnd()
            while consume(keyword: "or") { left = .or(left, try parseAnd()) }
            return left
        }

        mutating func parseAnd() throws(ParseError) -> DeviceFilter {
            var left = try parsePrimary()
            while consume(keyword: "and") { left = .and(left, try parsePrimary()) }
            return left
        }

        mutating func parsePrimary() throws(ParseError) -> DeviceFilter {
            skipSpaces()
            guard index < text.count else { throw error("Expected a comparison") }
            if text[index] == "(" {
                index += 1
                let inner = try parseOr()
                skipSpaces()
                guard index < text.count, text[index] == ")" else { throw error("Expected ')'") }
                index += 1
                return inner
            }
            let start = index
            while index < text.count, text[index].isLetter || text[index].isNumber || text[index] == "." { index += 1 }
            let name = String(text[start..<index])
            guard let attribute = DeviceAttribute(named: name) else {
                index = start
                throw error("Unknown device property '\(name)'")
            }
            skipSpaces()
            guard index < text.count, text[index] == "-" else { throw error("Expected an operator such as -eq") }
            let opStart = index
            index += 1
            while index < text.count, text[index].isLetter { index += 1 }
            let opName = String(text[opStart + 1..<index]).lowercased()
            guard let op = Operator.allCases.first(where: { $0.rawValue.lowercased() == opName }) else {
                index = opStart
                throw error("Unknown operator '-\(opName)'")
            }
            skipSpaces()
            let values: [String]
            if op == .in || op == .notIn {
                guard index < text.count, text[index] == "[" else { throw error("Expected '[' after -\(op.rawValue)") }
                index += 1
                var list: [String] = []
                skipSpaces()
                if index < text.count, text[index] == "]" { throw error("Expected at least one value") }
                while true {
                    list.append(try parseValue())
                    skipSpaces()
                    guard index < text.count else { throw error("Expected ']'") }
                    if text[index] == "]" { index += 1; break }
                    guard text[index] == "," else { throw error("Expected ',' or ']'") }
                    index += 1
                }
                values = list
            } else {
                values = [try parseValue()]
            }
            return .comparison(attribute, op, values)
        }

        /// A double-quoted string (a doubled quote or a backslash escapes a quote) or `True` / `False`.
        mutating func parseValue() throws(ParseError) -> String {
            skipSpaces()
            guard index < text.count else { throw error("Expected a value") }
            if text[index] == "\"" {
                index += 1
                var value = ""
                while index < text.count {
                    let c = text[index]
                    if c == "\\", index + 1 < text.count, text[index + 1] == "\"" {
                        value.append("\""); index += 2; continue
                    }
                    if c == "\"" {
                        if index + 1 < text.count, text[index + 1] == "\"" { value.append("\""); index += 2; continue }
                        index += 1
                        return value.lowercased()
                    }
                    value.append(c)
                    index += 1
                }
                throw error("Unterminated string")
            }
            let start = index
            while index < text.count, text[index].isLetter { index += 1 }
            let word = String(text[start..<index]).lowercased()
            guard word == "true" || word == "false" else {
                index = start
                throw error("Expected a quoted value, True or False")
            }
            return word
        }
    }
}

/// The device a sign-in comes from, as the device filter and the device grant controls see it.
public struct DeviceFacts: Sendable, Hashable {
    /// Values by attribute, lowercased once here so a decision compares without allocating.
    private var values: [String?]
    /// `AzureAd` (Entra joined), `ServerAD` (hybrid joined) or `Workplace` (registered).
    public var trustType: String? { self[.trustType] }
    /// Whether the device is marked compliant.
    public var isCompliant: Bool { self[.isCompliant] == "true" }
    /// Whether the device is Microsoft Entra hybrid joined (trust type `ServerAD`).
    public var isHybridJoined: Bool { self[.trustType] == "serverad" }

    /// A device with these properties; every other property is null.
    public init(deviceId: String, displayName: String? = nil, trustType: String? = nil, isCompliant: Bool = false,
                operatingSystem: String? = nil, other: [DeviceAttribute: String] = [:]) {
        values = Array(repeating: nil, count: DeviceAttribute.allCases.count)
        for (attribute, value) in other { values[attribute.rawValue] = value.lowercased() }
        values[DeviceAttribute.deviceId.rawValue] = deviceId.lowercased()
        values[DeviceAttribute.displayName.rawValue] = displayName?.lowercased()
        values[DeviceAttribute.trustType.rawValue] = trustType?.lowercased()
        values[DeviceAttribute.isCompliant.rawValue] = isCompliant ? "true" : "false"
        values[DeviceAttribute.operatingSystem.rawValue] = operatingSystem?.lowercased()
    }

    /// The attribute's value, lowercased; nil when the device does not have it.
    public subscript(attribute: DeviceAttribute) -> String? { values[attribute.rawValue] }
}
