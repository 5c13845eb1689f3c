/// A strict CBOR decoder for data that comes from authenticators and browsers.
///
/// It refuses what WebAuthn and CTAP2 never need and an attacker could use: indefinite lengths, tags, reserved
/// additional-information values, invalid UTF-8, duplicate map keys, nesting deeper than ``Limits/maxDepth``,
/// inputs larger than ``Limits/maxBytes`` and trailing bytes. With ``Limits/canonical`` it also requires CTAP2's
/// canonical form (shortest encodings; map keys sorted by major type, then length, then bytes), which CTAP2
/// requires of what an authenticator signs: the credential public key and the extensions in authenticator data.
public struct CBORDecoder: Sendable {
    /// What the decoder accepts.
    public struct Limits: Sendable {
        public var maxDepth: Int
        public var maxBytes: Int
        public var canonical: Bool
        public init(maxDepth: Int = 16, maxBytes: Int = 1 << 20, canonical: Bool = false) {
            self.maxDepth = maxDepth
            self.maxBytes = maxBytes
            self.canonical = canonical
        }
        /// For authenticator-signed structures.
        public static let ctap2 = Limits(canonical: true)
        /// For attestation objects, which the client assembles.
        public static let strict = Limits()
    }

    public let limits: Limits

    public init(limits: Limits = .strict) { self.limits = limits }

    /// Decodes exactly one item; bytes after it are an error.
    public func decode(_ bytes: [UInt8]) throws(WebAuthnError) -> CBORValue {
        let (value, end) = try decodePrefix(bytes, from: 0)
        guard end == bytes.count else {
            throw WebAuthnError(.cborMalformed, "\(bytes.count - end) bytes after the CBOR item")
        }
        return value
    }

    /// Decodes one item starting at `start` and returns it with the offset just past it, for CBOR embedded in a
    /// larger structure (the credential public key inside authenticator data).
    public func decodePrefix(_ bytes: [UInt8], from start: Int) throws(WebAuthnError) -> (CBORValue, Int) {
        guard bytes.count - start <= limits.maxBytes else {
            throw WebAuthnError(.cborMalformed, "CBOR input of \(bytes.count - start) bytes is over the \(limits.maxBytes)-byte limit")
        }
        var cursor = Cursor(bytes: bytes, offset: start, limits: limits)
        let value = try cursor.item(depth: 0)
        return (value, cursor.offset)
    }
}

private struct Cursor {
    let bytes: [UInt8]
    var offset: Int
    let limits: CBORDecoder.Limits

    func fail(_ message: String) -> WebAuthnError {
        WebAuthnError(.cborMalformed, "\(message) at byte \(offset)")
    }

    mutating func byte() throws(WebAuthnError) -> UInt8 {
        guard offset < bytes.count else { throw fail("truncated CBOR") }
        defer { offset += 1 }
        return bytes[offset]
    }

    /// Reads the argument of a head whose additional information is `info`.
    mutating func argument(_ info: UInt8) throws(WebAuthnError) -> UInt64 {
        let value = try rawArgument(info)
        if limits.canonical {
            let shortest: UInt8 = value < 24 ? 23 : value <= 0xFF ? 24 : value <= 0xFFFF ? 25 : value <= 0xFFFF_FFFF ? 26 : 27
            if info != shortest && !(info < 24 && shortest == 23) {
                throw fail("non-canonical CBOR: an integer or length not in its shortest form")
            }
        }
        return value
    }

    /// The argument as encoded, with no check of its form (floats use it).
    mutating func rawArgument(_ info: UInt8) throws(WebAuthnError) -> UInt64 {
        let value: UInt64
        switch info {
        case 0...23: return UInt64(info)
        case 24: value = UInt64(try byte())
        case 25, 26, 27:
            let width = 1 << Int(info - 24)
            guard bytes.count - offset >= width else { throw fail("truncated CBOR") }
            var n: UInt64 = 0
            for _ in 0..<width { n = n << 8 | UInt64(bytes[offset]); offset += 1 }
            value = n
        case 31: throw fail("indefinite-length CBOR is not allowed")
        default: throw fail("reserved CBOR additional information \(info)")
        }
        return value
    }

    mutating func length(_ info: UInt8) throws(WebAuthnError) -> Int {
        let n = try argument(info)
        // Every item takes at least one byte, so a count larger than what is left is a lie; refusing it here keeps
        // a hostile length from reserving memory.
        guard n <= UInt64(bytes.count - offset) else { throw fail("CBOR length \(n) exceeds the input") }
        return Int(n)
    }

    mutating func item(depth: Int) throws(WebAuthnError) -> CBORValue {
        guard depth <= limits.maxDepth else { throw fail("CBOR nested deeper than \(limits.maxDepth)") }
        let head = try byte()
        let major = head >> 5
        let info = head & 0x1F
        switch major {
        case 0: return .unsigned(try argument(info))
        case 1: return .negative(try argument(info))
        case 2:
            let n = try length(info)
            defer { offset += n }
            return .bytes(Array(bytes[offset..<offset + n]))
        case 3:
            let n = try length(info)
            guard let text = String(validating: bytes[offset..<offset + n], as: UTF8.self) else {
                throw fail("CBOR text string is not valid UTF-8")
            }
            offset += n
            return .text(text)
        case 4:
            let n = try length(info)
            var items: [CBORValue] = []
            items.reserveCapacity(n)
            for _ in 0..<n { items.append(try item(depth: depth + 1)) }
            return .array(items)
        case 5:
            let n = try length(info)
            var pairs: [CBORValue.Pair] = []
            pairs.reserveCapacity(n)
            var seen = Set<CBORValue>()
            var previousKey: ArraySlice<UInt8>? = nil
            for _ in 0..<n {
                let keyStart = offset
                let key = try item(depth: depth + 1)
                let encodedKey = bytes[keyStart..<offset]
                guard seen.insert(key).inserted else { throw fail("duplicate CBOR map key") }
                if limits.canonical, let previous = previousKey, !Self.canonicallyOrdered(previous, encodedKey) {
                    throw fail("non-canonical CBOR: map keys out of order")
                }
                previousKey = encodedKey
                pairs.append(CBORValue.Pair(key, try item(depth: depth + 1)))
            }
            return .map(pairs)
        case 6:
            throw fail("CBOR tags are not allowed")
        default:
            switch info {
            case 20: return .bool(false)
            case 21: return .bool(true)
            case 22: return .null
            case 23: return .undefined
            case 25:
                let bits = UInt16(try rawArgument(info))
                return .float(Double(Float16Bits(bits)))
            case 26:
                return .float(Double(Float(bitPattern: UInt32(try rawArgument(info)))))
            case 27:
                return .float(Double(bitPattern: try rawArgument(info)))
            case 24:
                let value = try byte()
                guard value >= 32 else { throw fail("CBOR simple value \(value) encoded in two bytes") }
                throw fail("unassigned CBOR simple value \(value)")
            default:
                throw fail("unassigned CBOR simple value \(info)")
            }
        }
    }

    /// CTAP2 canonical order: lower major type first, then shorter encoding, then bytewise lower.
    static func canonicallyOrdered(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>) -> Bool {
        let majorA = a.first! >> 5, majorB = b.first! >> 5
        if majorA != majorB { return majorA < majorB }
        if a.count != b.count { return a.count < b.count }
        return a.lexicographicallyPrecedes(b)
    }
}

/// IEEE 754 half precision, decoded by hand so the library does not depend on `Float16` being available.
private func Float16Bits(_ bits: UInt16) -> Double {
    let sign: Double = bits & 0x8000 != 0 ? -1 : 1
    let exponent = Int(bits >> 10 & 0x1F)
    let fraction = Double(bits & 0x3FF)
    switch exponent {
    case 0: return sign * fraction * 0x1p-24
    case 31: return fraction == 0 ? sign * .infinity : .nan
    default: return sign * (1 + fraction / 1024) * Double(sign: .plus, exponent: exponent - 15, significand: 1)
    }
}
