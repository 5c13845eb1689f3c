/// A small strict JSON reader (RFC 8259) for the JSON WebAuthn verification meets: collected client data, the
/// SafetyNet JWS and FIDO metadata. The library keeps to swift-crypto, swift-certificates and swift-asn1, so it
/// has its own.
public indirect enum JSON: Sendable, Equatable {
    case object(JSONObject)
    case array([JSON])
    case string(String)
    case number(Double)
    case bool(Bool)
    case null

    public subscript(key: String) -> JSON? { if case .object(let o) = self { o[key] } else { nil } }
    public var string: String? { if case .string(let s) = self { s } else { nil } }
    public var number: Double? { if case .number(let n) = self { n } else { nil } }
    public var bool: Bool? { if case .bool(let b) = self { b } else { nil } }
    public var array: [JSON]? { if case .array(let a) = self { a } else { nil } }
    public var object: JSONObject? { if case .object(let o) = self { o } else { nil } }

    /// Parses one JSON text; duplicate object keys, trailing content and nesting deeper than 64 are refused.
    public static func parse(_ bytes: some Collection<UInt8>) -> JSON? {
        var parser = JSONReader(bytes: Array(bytes))
        guard let value = parser.value(depth: 0) else { return nil }
        parser.whitespace()
        return parser.index == parser.bytes.count ? value : nil
    }
}

/// A JSON object's members in document order. The objects WebAuthn reads are small, so a list searched in order
/// beats hashing; duplicate keys are refused while parsing.
public struct JSONObject: Sendable, Equatable {
    public var members: [Member]

    public struct Member: Sendable, Equatable {
        public var key: String
        public var value: JSON
    }

    public subscript(key: String) -> JSON? {
        for member in members where member.key == key { return member.value }
        return nil
    }
}

struct JSONReader {
    let bytes: [UInt8]
    var index = 0

    mutating func whitespace() {
        while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 { index += 1 }
    }

    mutating func literal(_ text: StaticString) -> Bool {
        let count = text.utf8CodeUnitCount
        guard bytes.count - index >= count else { return false }
        for i in 0..<count where bytes[index + i] != text.utf8Start[i] { return false }
        index += count
        return true
    }

    mutating func value(depth: Int) -> JSON? {
        guard depth < 64 else { return nil }
        whitespace()
        guard index < bytes.count else { return nil }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            index += 1
            var members: [JSONObject.Member] = []
            var keys: Set<String>? = nil // only for large objects, where a linear duplicate check would be quadratic
            whitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return .object(JSONObject(members: members)) }
            while true {
                whitespace()
                guard let key = string() else { return nil }
                whitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return nil }
                index += 1
                guard let item = value(depth: depth + 1) else { return nil }
                if members.count < 16 {
                    guard !members.contains(where: { $0.key == key }) else { return nil }
                } else {
                    if keys == nil { keys = Set(members.map(\.key)) }
                    guard keys!.insert(key).inserted else { return nil }
                }
                members.append(JSONObject.Member(key: key, value: item))
                whitespace()
                guard index < bytes.count else { return nil }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(JSONObject(members: members)) }
                return nil
            }
        case UInt8(ascii: "["):
            index += 1
            var array: [JSON] = []
            whitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return .array(array) }
            while true {
                guard let item = value(depth: depth + 1) else { return nil }
                array.append(item)
                whitespace()
                guard index < bytes.count else { return nil }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(array) }
                return nil
            }
        case UInt8(ascii: "\""):
            return string().map(JSON.string)
        case UInt8(ascii: "t"): return literal("true") ? .bool(true) : nil
        case UInt8(ascii: "f"): return literal("false") ? .bool(false) : nil
        case UInt8(ascii: "n"): return literal("null") ? .null : nil
        default: return number()
        }
    }

    /// Validates one value without building it (for members a caller does not need).
    mutating func skipValue(depth: Int) -> Bool {
        whitespace()
        guard index < bytes.count else { return false }
        switch bytes[index] {
        case UInt8(ascii: "\""): return rawString() != nil || string() != nil
        case UInt8(ascii: "{"), UInt8(ascii: "["): return value(depth: depth) != nil
        default: return value(depth: depth) != nil
        }
    }

    /// The byte range of a string's contents when it has no escapes (the cursor moves past it); otherwise `nil`
    /// and the cursor does not move, so the caller can fall back to ``string()``.
    mutating func rawString() -> Range<Int>? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
        let start = index + 1
        // (end, ascii): the closing quote and whether everything before it is ASCII; nil at an escape or control.
        let scan: (Int, Bool)? = bytes.withUnsafeBufferPointer { p in
            var end = start
            var high: UInt8 = 0
            while end < p.count {
                let c = p[end]
                if c == UInt8(ascii: "\"") { return (end, high < 0x80) }
                if c == UInt8(ascii: "\\") || c < 0x20 { return nil }
                high |= c
                end += 1
            }
            return nil
        }
        guard let (end, ascii) = scan else { return nil }
        // Non-ASCII content must still be valid UTF-8.
        if !ascii, String(validating: bytes[start..<end], as: UTF8.self) == nil { return nil }
        index = end + 1
        return start..<end
    }

    mutating func number() -> JSON? {
        let start = index
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        let digitsStart = index
        while index < bytes.count, (0x30...0x39).contains(bytes[index]) { index += 1 }
        guard index > digitsStart, !(bytes[digitsStart] == 0x30 && index - digitsStart > 1) else { return nil }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            let fractionStart = index
            while index < bytes.count, (0x30...0x39).contains(bytes[index]) { index += 1 }
            guard index > fractionStart else { return nil }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            let exponentStart = index
            while index < bytes.count, (0x30...0x39).contains(bytes[index]) { index += 1 }
            guard index > exponentStart else { return nil }
        }
        return Double(String(decoding: bytes[start..<index], as: UTF8.self)).map(JSON.number)
    }

    mutating func hex4() -> UInt32? {
        guard bytes.count - index >= 4 else { return nil }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[index]
            let digit: UInt32
            switch c {
            case 0x30...0x39: digit = UInt32(c - 0x30)
            case 0x41...0x46: digit = UInt32(c - 0x41 + 10)
            case 0x61...0x66: digit = UInt32(c - 0x61 + 10)
            default: return nil
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    mutating func string() -> String? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
        index += 1
        let start = index
        // Fast path: no escapes.
        while index < bytes.count, bytes[index] != UInt8(ascii: "\""), bytes[index] != UInt8(ascii: "\\"), bytes[index] >= 0x20 { index += 1 }
        guard index < bytes.count else { return nil }
        if bytes[index] == UInt8(ascii: "\"") {
            defer { index += 1 }
            return String(validating: bytes[start..<index], as: UTF8.self)
        }
        var out = Array(bytes[start..<index])
        while index < bytes.count {
            let c = bytes[index]
            if c == UInt8(ascii: "\"") {
                index += 1
                return String(validating: out, as: UTF8.self)
            }
            guard c >= 0x20 else { return nil }
            if c != UInt8(ascii: "\\") { out.append(c); index += 1; continue }
            index += 1
            guard index < bytes.count else { return nil }
            let escape = bytes[index]
            index += 1
            switch escape {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                guard var scalar = hex4() else { return nil }
                if (0xD800...0xDBFF).contains(scalar) {
                    guard literal("\\u"), let low = hex4(), (0xDC00...0xDFFF).contains(low) else { return nil }
                    scalar = 0x10000 + (scalar - 0xD800) << 10 + (low - 0xDC00)
                }
                guard let unicode = Unicode.Scalar(scalar) else { return nil }
                out += Array(String(Character(unicode)).utf8)
            default: return nil
            }
        }
        return nil
    }
}
