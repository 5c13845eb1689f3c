import SwiftASN1

/// A search filter (RFC 4511 §4.5.1), parsed from its string form (RFC 4515): `(&(objectClass=user)(uSNChanged>=42))`,
/// with `\xx` escapes for any byte (an objectGUID: `(objectGUID=\d5\dc\00…)`).
public indirect enum LDAPFilter: Sendable, Hashable {
    case and([LDAPFilter])
    case or([LDAPFilter])
    case not(LDAPFilter)
    case equal(String, [UInt8])
    case greaterOrEqual(String, [UInt8])
    case lessOrEqual(String, [UInt8])
    case approx(String, [UInt8])
    case present(String)
    case substrings(String, initial: [UInt8]?, any: [[UInt8]], final: [UInt8]?)

    public init(_ text: String) throws {
        var parser = Parser(bytes: Array(text.utf8))
        self = try parser.filter()
        guard parser.index == parser.bytes.count else { throw LDAPError("unexpected text after the filter: \(text)") }
    }

    /// `(attribute=value)` with the value escaped: safe for any bytes.
    public static func equal(_ attribute: String, bytes: [UInt8]) -> LDAPFilter { .equal(attribute, bytes) }

    func encode(_ s: inout DER.Serializer) throws {
        func ava(_ tag: UInt, _ attribute: String, _ value: [UInt8]) throws {
            s.appendConstructedNode(identifier: .context(tag)) { s in
                BERWriter.octetString(&s, Array(attribute.utf8))
                BERWriter.octetString(&s, value)
            }
        }
        switch self {
        case .and(let items): try s.appendConstructedNode(identifier: .context(0)) { s in for f in items { try f.encode(&s) } }
        case .or(let items): try s.appendConstructedNode(identifier: .context(1)) { s in for f in items { try f.encode(&s) } }
        case .not(let inner): try s.appendConstructedNode(identifier: .context(2)) { s in try inner.encode(&s) }
        case .equal(let a, let v): try ava(3, a, v)
        case .greaterOrEqual(let a, let v): try ava(5, a, v)
        case .lessOrEqual(let a, let v): try ava(6, a, v)
        case .approx(let a, let v): try ava(8, a, v)
        case .present(let a): BERWriter.octetString(&s, Array(a.utf8), identifier: .context(7))
        case .substrings(let a, let initial, let any, let final):
            s.appendConstructedNode(identifier: .context(4)) { s in
                BERWriter.octetString(&s, Array(a.utf8))
                s.appendConstructedNode(identifier: .sequence) { s in
                    if let initial { BERWriter.octetString(&s, initial, identifier: .context(0)) }
                    for part in any { BERWriter.octetString(&s, part, identifier: .context(1)) }
                    if let final { BERWriter.octetString(&s, final, identifier: .context(2)) }
                }
            }
        }
    }

    struct Parser {
        let bytes: [UInt8]
        var index = 0

        mutating func expect(_ byte: UInt8) throws {
            guard index < bytes.count, bytes[index] == byte else {
                throw LDAPError("malformed filter: expected '\(Character(UnicodeScalar(byte)))' at \(index)")
            }
            index += 1
        }

        mutating func filter() throws -> LDAPFilter {
            try expect(UInt8(ascii: "("))
            guard index < bytes.count else { throw LDAPError("malformed filter: unexpected end") }
            let result: LDAPFilter
            switch bytes[index] {
            case UInt8(ascii: "&"):
                index += 1
                result = .and(try list())
            case UInt8(ascii: "|"):
                index += 1
                result = .or(try list())
            case UInt8(ascii: "!"):
                index += 1
                result = .not(try filter())
            default:
                result = try item()
            }
            try expect(UInt8(ascii: ")"))
            return result
        }

        mutating func list() throws -> [LDAPFilter] {
            var items: [LDAPFilter] = []
            while index < bytes.count, bytes[index] == UInt8(ascii: "(") { items.append(try filter()) }
            guard !items.isEmpty else { throw LDAPError("malformed filter: an empty & or |") }
            return items
        }

        mutating func item() throws -> LDAPFilter {
            let start = index
            while index < bytes.count, !"=<>~()".utf8.contains(bytes[index]) { index += 1 }
            let attribute = String(decoding: bytes[start..<index], as: UTF8.self)
            guard !attribute.isEmpty, index < bytes.count else { throw LDAPError("malformed filter: no attribute or operator") }
            var op = bytes[index]
            if op != UInt8(ascii: "=") {
                index += 1
                try expect(UInt8(ascii: "="))
            } else {
                index += 1
                op = UInt8(ascii: "=")
            }
            // The value, split at unescaped '*'.
            var parts: [[UInt8]] = [[]]
            while index < bytes.count, bytes[index] != UInt8(ascii: ")") {
                let byte = bytes[index]
                if byte == UInt8(ascii: "*") {
                    parts.append([])
                    index += 1
                } else if byte == UInt8(ascii: "\\") {
                    guard index + 2 < bytes.count, let hi = hex(bytes[index + 1]), let lo = hex(bytes[index + 2]) else {
                        throw LDAPError("malformed filter: bad escape at \(index)")
                    }
                    parts[parts.count - 1].append(hi << 4 | lo)
                    index += 3
                } else if byte == UInt8(ascii: "(") {
                    throw LDAPError("malformed filter: unescaped '(' in a value")
                } else {
                    parts[parts.count - 1].append(byte)
                    index += 1
                }
            }
            switch op {
            case UInt8(ascii: ">"): return .greaterOrEqual(attribute, try single(parts))
            case UInt8(ascii: "<"): return .lessOrEqual(attribute, try single(parts))
            case UInt8(ascii: "~"): return .approx(attribute, try single(parts))
            default:
                if parts.count == 1 { return .equal(attribute, parts[0]) }
                if parts.count == 2, parts[0].isEmpty, parts[1].isEmpty { return .present(attribute) }
                return .substrings(attribute, initial: parts[0].isEmpty ? nil : parts[0],
                                   any: parts.dropFirst().dropLast().filter { !$0.isEmpty },
                                   final: parts.last!.isEmpty ? nil : parts.last!)
            }
        }

        func single(_ parts: [[UInt8]]) throws -> [UInt8] {
            guard parts.count == 1 else { throw LDAPError("malformed filter: '*' is only for equality") }
            return parts[0]
        }

        func hex(_ byte: UInt8) -> UInt8? {
            switch byte {
            case 48...57: byte - 48
            case 65...70: byte - 55
            case 97...102: byte - 87
            default: nil
            }
        }
    }
}

extension LDAPFilter {
    /// Escapes bytes for a filter's string form (RFC 4515 §3): `*`, `(`, `)`, `\`, NUL and every non-ASCII byte.
    public static func escape(_ value: [UInt8]) -> String {
        var out = ""
        for byte in value {
            if byte < 0x20 || byte >= 0x7f || "*()\\".utf8.contains(byte) {
                out += "\\" + String(byte, radix: 16, uppercase: false).leftPadded(2)
            } else {
                out.unicodeScalars.append(UnicodeScalar(byte))
            }
        }
        return out
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
