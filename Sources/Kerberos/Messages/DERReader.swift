/// A strict DER reader over the token's own bytes, for RFC 4120's messages on the validation path: each element is
/// read where it lies (nothing copied, no node tree), in the order the ASN.1 module gives, and everything DER forbids
/// is refused: an indefinite or non-minimal length, a length past its enclosing
/// element, a high tag number, a non-minimal INTEGER, set unused bits in a BIT STRING, bytes left over after the last
/// field of a SEQUENCE or in an explicit tag. Every refusal is ``KerberosError/Code/malformed``.
struct DERReader {
    /// Identifier octets of the types RFC 4120 uses (class, constructed bit and tag number in one byte).
    enum Tag {
        static let integer: UInt8 = 0x02
        static let bitString: UInt8 = 0x03
        static let octetString: UInt8 = 0x04
        static let objectIdentifier: UInt8 = 0x06
        static let generalizedTime: UInt8 = 0x18
        static let generalString: UInt8 = 0x1B
        static let sequence: UInt8 = 0x30

        /// `[APPLICATION n]`, constructed.
        static func application(_ number: UInt8) -> UInt8 {
            precondition(number < 31)
            return 0x60 | number
        }

        /// `[n]` (context-specific), constructed: an explicit tag.
        static func context(_ number: UInt8) -> UInt8 {
            precondition(number < 31)
            return 0xA0 | number
        }
    }

    /// The whole input. A constructed element is read by narrowing `end` to it, not by slicing: a slice is a
    /// reference to count, and a validation reads about a hundred elements.
    private let bytes: ArraySlice<UInt8>
    private var position: Int
    private var end: Int
    /// What is being read, for error messages ("the AP-REQ").
    private let what: StaticString

    init(_ bytes: ArraySlice<UInt8>, what: StaticString) {
        self.bytes = bytes
        self.position = bytes.startIndex
        self.end = bytes.endIndex
        self.what = what
    }

    var isAtEnd: Bool { position == end }

    /// The bytes not yet read.
    var rest: ArraySlice<UInt8> { bytes[position..<end] }

    /// The identifier octet of the next element, nil at the end.
    var nextTag: UInt8? { isAtEnd ? nil : bytes[position] }

    private func malformed(_ problem: String) -> KerberosError {
        KerberosError.malformed("\(what) is not valid DER (\(problem))")
    }

    /// The next element, which must carry `tag`: its content, a slice of the input.
    mutating func element(_ tag: UInt8) throws -> ArraySlice<UInt8> {
        bytes[try contentRange(tag)]
    }

    /// The next element, which must carry `tag`: where its content lies in the input, read past.
    private mutating func contentRange(_ tag: UInt8) throws -> Range<Int> {
        guard let found = nextTag else { throw malformed("it ends before an element tagged 0x\(hex(tag))") }
        // The tags asked for are all low tag numbers, so a high-tag-number element never matches.
        guard found == tag else { throw malformed("found tag 0x\(hex(found)) where 0x\(hex(tag)) belongs") }
        var at = position + 1
        guard at < end else { throw malformed("an element ends in its header") }
        let first = bytes[at]
        at += 1
        let length: Int
        if first < 0x80 {
            length = Int(first)
        } else {
            // The long form: 1 to 4 length bytes, minimal (no leading zero, and only for lengths of 128 or more).
            let count = Int(first & 0x7F)
            guard count >= 1, count <= 4 else { throw malformed("an indefinite or over-long length") }
            guard end - at >= count else { throw malformed("an element ends in its length") }
            var value = 0
            for index in at..<(at + count) { value = value << 8 | Int(bytes[index]) }
            guard bytes[at] != 0, value >= 0x80 else { throw malformed("a length not in its shortest form") }
            at += count
            length = value
        }
        guard end - at >= length else { throw malformed("an element is longer than what holds it") }
        position = at + length
        return at..<(at + length)
    }

    /// The next element if it carries `tag` (an OPTIONAL field), else nil and nothing read.
    mutating func optionalElement(_ tag: UInt8) throws -> ArraySlice<UInt8>? {
        nextTag == tag ? try element(tag) : nil
    }

    /// Reads the element tagged `tag` with `body` over its content, which `body` must read entirely.
    mutating func constructed<T>(_ tag: UInt8, _ body: (inout DERReader) throws -> T) throws -> T {
        let content = try contentRange(tag)
        let outerEnd = end
        (position, end) = (content.lowerBound, content.upperBound)
        let value = try body(&self)
        guard isAtEnd else { throw malformed("bytes after the last field of an element tagged 0x\(hex(tag))") }
        end = outerEnd
        return value
    }

    /// `SEQUENCE { … }`.
    mutating func sequence<T>(_ body: (inout DERReader) throws -> T) throws -> T {
        try constructed(Tag.sequence, body)
    }

    /// `[APPLICATION n] SEQUENCE { … }`, as every Kerberos message is.
    mutating func applicationSequence<T>(_ number: UInt8, _ body: (inout DERReader) throws -> T) throws -> T {
        try constructed(Tag.application(number)) { try $0.sequence(body) }
    }

    /// A field `[n] EXPLICIT …`: one element inside the tag.
    mutating func field<T>(_ number: UInt8, _ body: (inout DERReader) throws -> T) throws -> T {
        try constructed(Tag.context(number), body)
    }

    /// An OPTIONAL field `[n] EXPLICIT …`, nil when the next element is not tagged `[n]`.
    mutating func optionalField<T>(_ number: UInt8, _ body: (inout DERReader) throws -> T) throws -> T? {
        nextTag == Tag.context(number) ? try field(number, body) : nil
    }

    /// Skips one element whatever its tag (a field this library does not use, read as DER all the same).
    mutating func skipElement() throws {
        guard let tag = nextTag else { throw malformed("it ends before an element") }
        _ = try contentRange(tag)
    }

    /// `SEQUENCE OF`: `body` reads each element in turn.
    mutating func sequenceOf(_ body: (inout DERReader) throws -> Void) throws {
        try sequence { elements in
            while !elements.isAtEnd { try body(&elements) }
        }
    }

    // MARK: Universal types

    /// An INTEGER in its shortest two's-complement form, as a 64-bit value of at most `maxBytes` bytes.
    private mutating func integer(maxBytes: Int) throws -> Int64 {
        let content = try contentRange(Tag.integer)
        guard !content.isEmpty else { throw malformed("an empty INTEGER") }
        let first = bytes[content.lowerBound]
        if content.count > 1 {
            let second = bytes[content.lowerBound + 1]
            guard !(first == 0 && second < 0x80), !(first == 0xFF && second >= 0x80) else {
                throw malformed("an INTEGER not in its shortest form")
            }
        }
        guard content.count <= maxBytes else { throw malformed("an INTEGER out of range") }
        var value: Int64 = first >= 0x80 ? -1 : 0
        for index in content { value = value << 8 | Int64(bytes[index]) }
        return value
    }

    /// Int32 ::= INTEGER (-2147483648..2147483647).
    mutating func int32() throws -> Int32 {
        let value = try integer(maxBytes: 5)
        guard let narrow = Int32(exactly: value) else { throw malformed("an Int32 out of range") }
        return narrow
    }

    /// UInt32 ::= INTEGER (0..4294967295) (kvno, seq-number); some encoders write them as negative Int32, which reads
    /// as their unsigned bit pattern.
    mutating func uint32() throws -> UInt32 {
        let value = try integer(maxBytes: 5)
        guard value >= Int64(Int32.min), value <= Int64(UInt32.max) else {
            throw KerberosError.malformed("an unsigned 32-bit field is out of range")
        }
        return UInt32(truncatingIfNeeded: value)
    }

    /// OCTET STRING (primitive, as DER requires).
    mutating func octets() throws -> ArraySlice<UInt8> { try element(Tag.octetString) }

    /// BIT STRING: the bits' bytes, its unused trailing bits zero (DER).
    mutating func bitString() throws -> ArraySlice<UInt8> {
        let content = try element(Tag.bitString)
        guard let unused = content.first, unused < 8 else { throw malformed("a BIT STRING without a valid unused-bit count") }
        let bits = content.dropFirst()
        if let last = bits.last {
            guard last & (UInt8(1 << unused) &- 1) == 0 else { throw malformed("a BIT STRING with set unused bits") }
        } else {
            guard unused == 0 else { throw malformed("an empty BIT STRING with unused bits") }
        }
        return bits
    }

    /// KerberosString ::= GeneralString (IA5 in practice).
    mutating func string() throws -> String {
        let content = try contentRange(Tag.generalString)
        return bytes.withUnsafeBufferPointer { buffer in
            let start = content.lowerBound - bytes.startIndex
            let text = UnsafeBufferPointer(rebasing: buffer[start..<(start + content.count)])
            return String(decoding: text, as: UTF8.self)
        }
    }

    /// KerberosTime ::= GeneralizedTime "YYYYMMDDHHMMSSZ", as seconds since 1970.
    mutating func time() throws -> Int64 {
        let content = try contentRange(Tag.generalizedTime)
        guard let seconds = KerberosTime.seconds(bytes, content) else {
            throw malformed("a KerberosTime that is not YYYYMMDDHHMMSSZ in range")
        }
        return seconds
    }

    /// The encoded OBJECT IDENTIFIER's content octets (compared as bytes with the few the library knows).
    mutating func objectIdentifier() throws -> ArraySlice<UInt8> {
        let content = try element(Tag.objectIdentifier)
        guard let last = content.last, last & 0x80 == 0 else { throw malformed("an OBJECT IDENTIFIER that ends mid-arc") }
        return content
    }
}

private func hex(_ byte: UInt8) -> String {
    let digits = Array("0123456789abcdef".utf8)
    return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0xF)]], as: UTF8.self)
}

/// RFC 4120's KerberosTime: GeneralizedTime restricted to "YYYYMMDDHHMMSSZ" (UTC, no fraction).
enum KerberosTime {
    /// The seconds since 1970 of `text`, nil unless it is 15 bytes "YYYYMMDDHHMMSSZ" with fields in range.
    static func seconds(_ text: ArraySlice<UInt8>) -> Int64? {
        seconds(text, text.indices)
    }

    /// The same, of the bytes of `text` in `range` (read in place).
    static func seconds(_ text: ArraySlice<UInt8>, _ range: Range<Int>) -> Int64? {
        guard range.count == 15, text[range.upperBound - 1] == UInt8(ascii: "Z") else { return nil }
        let base = range.lowerBound
        func number(_ at: Int, _ count: Int) -> Int64? {
            var value: Int64 = 0
            for index in (base + at)..<(base + at + count) {
                let byte = text[index]
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                value = value * 10 + Int64(byte - 0x30)
            }
            return value
        }
        guard let year = number(0, 4), let month = number(4, 2), let day = number(6, 2), let hour = number(8, 2),
            let minute = number(10, 2), let second = number(12, 2),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        return daysFromCivil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second
    }

    /// "YYYYMMDDHHMMSSZ" for seconds since 1970.
    static func bytes(_ seconds: Int64) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(15)
        append(seconds, to: &out)
        return out
    }

    /// Appends "YYYYMMDDHHMMSSZ" for seconds since 1970 to `out`.
    static func append(_ seconds: Int64, to out: inout [UInt8]) {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let rest = seconds - days * 86_400
        let (year, month, day) = civilFromDays(days)
        func append(_ value: Int64, _ width: Int) {
            var divisor: Int64 = 1
            for _ in 1..<width { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                out.append(UInt8(0x30 + (rest / divisor) % 10))
                rest %= divisor
                divisor /= 10
            }
        }
        append(year, 4)
        append(month, 2)
        append(day, 2)
        append(rest / 3_600, 2)
        append(rest / 60 % 60, 2)
        append(rest % 60, 2)
        out.append(UInt8(ascii: "Z"))
    }

    // Howard Hinnant's days-from-civil algorithms (proleptic Gregorian calendar).
    private static func daysFromCivil(_ y: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y - 1 : y
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    private static func civilFromDays(_ z: Int64) -> (Int64, Int64, Int64) {
        let z = z + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? yoe + era * 400 + 1 : yoe + era * 400, m, d)
    }
}
