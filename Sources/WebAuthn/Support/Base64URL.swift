/// Base64url without padding (RFC 4648 §5), the encoding of every binary value in WebAuthn's JSON forms.
public enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    private static let standardAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let reverse: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(index) }
        return table
    }()
    private static let standardReverse: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, byte) in standardAlphabet.enumerated() { table[Int(byte)] = UInt8(index) }
        return table
    }()

    /// Encodes bytes as base64url without padding.
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        encode(Array(bytes), alphabet: alphabet, pad: false)
    }

    /// Encodes bytes as standard base64 with padding (certificates in JWS headers and MDS3 use it).
    public static func encodeStandard(_ bytes: some Collection<UInt8>) -> String {
        encode(Array(bytes), alphabet: standardAlphabet, pad: true)
    }

    /// Decodes base64url; padding is tolerated, any other character is refused.
    public static func decode(_ text: String) -> [UInt8]? {
        var text = text
        return text.withUTF8 { decode($0, table: reverse) }
    }

    /// Decodes base64url from a substring.
    public static func decode(_ text: Substring) -> [UInt8]? { decode(String(text)) }

    /// Decodes standard base64 (with or without padding).
    public static func decodeStandard(_ text: String) -> [UInt8]? {
        var text = text
        return text.withUTF8 { decode($0, table: standardReverse) }
    }

    private static func encode(_ bytes: [UInt8], alphabet: [UInt8], pad: Bool) -> String {
        var out = [UInt8]()
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= bytes.count {
            let n = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            out.append(alphabet[Int(n >> 18 & 63)]); out.append(alphabet[Int(n >> 12 & 63)])
            out.append(alphabet[Int(n >> 6 & 63)]); out.append(alphabet[Int(n & 63)])
            index += 3
        }
        let rest = bytes.count - index
        if rest == 1 {
            let n = UInt32(bytes[index]) << 16
            out.append(alphabet[Int(n >> 18 & 63)]); out.append(alphabet[Int(n >> 12 & 63)])
            if pad { out.append(UInt8(ascii: "=")); out.append(UInt8(ascii: "=")) }
        } else if rest == 2 {
            let n = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8
            out.append(alphabet[Int(n >> 18 & 63)]); out.append(alphabet[Int(n >> 12 & 63)])
            out.append(alphabet[Int(n >> 6 & 63)])
            if pad { out.append(UInt8(ascii: "=")) }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether `text` is the unpadded base64url encoding of `bytes`, without allocating.
    public static func matches(_ text: String, _ bytes: [UInt8]) -> Bool {
        var text = text
        return text.withUTF8 { utf8 in alphabet.withUnsafeBufferPointer { alphabet in
            guard utf8.count == (bytes.count * 4 + 2) / 3 else { return false }
            var out = 0
            var index = 0
            var same = true
            while index < bytes.count {
                let b0 = UInt32(bytes[index]), b1 = index + 1 < bytes.count ? UInt32(bytes[index + 1]) : 0
                let b2 = index + 2 < bytes.count ? UInt32(bytes[index + 2]) : 0
                let n = b0 << 16 | b1 << 8 | b2
                let chars = min(4, (bytes.count - index) * 4 / 3 + ((bytes.count - index) < 3 ? 1 : 0))
                for k in 0..<chars {
                    same = same && utf8[out] == alphabet[Int(n >> UInt32(18 - 6 * k) & 63)]
                    out += 1
                }
                index += 3
            }
            return same && out == utf8.count
        } }
    }

    /// Decodes base64url straight from UTF-8 bytes.
    static func decode(_ text: UnsafeBufferPointer<UInt8>) -> [UInt8]? { decode(text, table: reverse) }

    private static func decode(_ text: UnsafeBufferPointer<UInt8>, table: [UInt8]) -> [UInt8]? {
        var count = text.count
        while count > 0, text[count - 1] == UInt8(ascii: "=") { count -= 1 }
        if count % 4 == 1 { return nil }
        var valid = true
        let out = [UInt8](unsafeUninitializedCapacity: count * 3 / 4) { buffer, written in
            table.withUnsafeBufferPointer { table in
                var accumulator: UInt32 = 0
                var bits = 0
                var n = 0
                for i in 0..<count {
                    let value = table[Int(text[i])]
                    if value == 0xFF { valid = false; break }
                    accumulator = accumulator << 6 | UInt32(value)
                    bits += 6
                    if bits >= 8 {
                        bits -= 8
                        buffer[n] = UInt8(truncatingIfNeeded: accumulator >> UInt32(bits))
                        n += 1
                    }
                }
                // Leftover bits must be zero, so one byte string has exactly one encoding.
                if valid && bits > 0 && accumulator & ((1 << UInt32(bits)) - 1) != 0 { valid = false }
                written = n
            }
        }
        return valid ? out : nil
    }
}

/// Compares two byte strings in time that depends only on their lengths, for challenges and other secrets.
public func constantTimeEquals(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
    if let result = a.withContiguousStorageIfAvailable({ a in
        b.withContiguousStorageIfAvailable { b in constantTimeEquals(UnsafeRawBufferPointer(a), UnsafeRawBufferPointer(b)) }
    }), let result { return result }
    return slowConstantTimeEquals(a, b)
}

private func slowConstantTimeEquals(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for (x, y) in zip(a, b) { difference |= x ^ y }
    return difference == 0
}

/// The loop itself, kept out of line so the optimiser cannot turn it into an early-exit comparison.
@inline(never)
func constantTimeEquals(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for i in 0..<a.count { difference |= a[i] ^ b[i] }
    return difference == 0
}

/// Lowercase hexadecimal, for AAGUIDs and the inspector.
func hex(_ bytes: some Collection<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    out.reserveCapacity(bytes.count * 2)
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0x0F)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// Reads big-endian integers and byte runs from a buffer, failing on truncation.
struct ByteReader {
    let bytes: [UInt8]
    private(set) var offset: Int

    init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    var remaining: Int { bytes.count - offset }
    var isAtEnd: Bool { offset == bytes.count }

    mutating func read(_ count: Int) -> ArraySlice<UInt8>? {
        guard count >= 0, count <= remaining else { return nil }
        defer { offset += count }
        return bytes[offset..<offset + count]
    }

    mutating func readUInt8() -> UInt8? { read(1).map { $0.first! } }
    mutating func readUInt16() -> UInt16? { read(2).map { $0.reduce(0) { $0 << 8 | UInt16($1) } } }
    mutating func readUInt32() -> UInt32? { read(4).map { $0.reduce(0) { $0 << 8 | UInt32($1) } } }
    mutating func readUInt64() -> UInt64? { read(8).map { $0.reduce(0) { $0 << 8 | UInt64($1) } } }

    /// A TPM2B: a 16-bit length and that many bytes.
    mutating func readSized16() -> [UInt8]? {
        guard let length = readUInt16(), let body = read(Int(length)) else { return nil }
        return Array(body)
    }

    mutating func skip(_ count: Int) -> Bool { read(count) != nil }
}
