/// DER for the few small messages the service sends — the AP-REP, its encrypted part, and their GSS-API and SPNEGO
/// framing — written directly into one buffer: each element's tag, a length byte, then its content, after which the
/// length is filled in (and only a content of 128 bytes or more, whose length takes more bytes, is moved to make
/// room). (swift-asn1's serializer, generic and closure-driven, was a tenth of a validation for these few hundred
/// bytes.)
struct DERWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 256) {
        bytes.reserveCapacity(capacity)
    }

    /// An element tagged `tag` whose content `body` writes.
    mutating func element(_ tag: UInt8, _ body: (inout DERWriter) throws -> Void) rethrows {
        bytes.append(tag)
        bytes.append(0)
        let start = bytes.count
        try body(&self)
        let length = bytes.count - start
        if length < 0x80 {
            bytes[start - 1] = UInt8(length)
        } else {
            let count = Self.lengthBytes(length)
            bytes[start - 1] = 0x80 | UInt8(count)
            bytes.insert(contentsOf: repeatElement(0, count: count), at: start)
            for index in 0..<count {
                bytes[start + index] = UInt8(truncatingIfNeeded: length >> (8 * (count - 1 - index)))
            }
        }
    }

    /// An element tagged `tag` with `content`.
    mutating func element(_ tag: UInt8, _ content: some Collection<UInt8>) {
        bytes.append(tag)
        length(content.count)
        bytes.append(contentsOf: content)
    }

    /// DER's length octets: the short form below 128, else 0x80 | n and the length in n bytes.
    mutating func length(_ length: Int) {
        if length < 0x80 {
            bytes.append(UInt8(length))
            return
        }
        let count = Self.lengthBytes(length)
        bytes.append(0x80 | UInt8(count))
        for index in 0..<count { bytes.append(UInt8(truncatingIfNeeded: length >> (8 * (count - 1 - index)))) }
    }

    /// How many bytes the long form needs for `length`.
    private static func lengthBytes(_ length: Int) -> Int {
        var count = 1
        while length >> (8 * count) != 0 { count += 1 }
        return count
    }

    /// `[number] EXPLICIT` around what `body` writes.
    mutating func explicit(_ number: UInt8, _ body: (inout DERWriter) throws -> Void) rethrows {
        try element(DERReader.Tag.context(number), body)
    }

    /// An INTEGER in its shortest two's-complement form.
    mutating func integer(_ value: Int64) {
        var skip = 0
        while skip < 7 {
            let byte = UInt8(truncatingIfNeeded: value >> (56 - 8 * skip))
            let next = UInt8(truncatingIfNeeded: value >> (48 - 8 * skip))
            guard (byte == 0 && next < 0x80) || (byte == 0xFF && next >= 0x80) else { break }
            skip += 1
        }
        bytes.append(DERReader.Tag.integer)
        bytes.append(UInt8(8 - skip))
        for index in skip..<8 { bytes.append(UInt8(truncatingIfNeeded: value >> (56 - 8 * index))) }
    }

    /// A KerberosTime: GeneralizedTime "YYYYMMDDHHMMSSZ".
    mutating func time(_ seconds: Int64) {
        bytes.append(DERReader.Tag.generalizedTime)
        bytes.append(15)
        KerberosTime.append(seconds, to: &bytes)
    }

    /// Bytes already encoded.
    mutating func append(_ encoded: some Collection<UInt8>) {
        bytes.append(contentsOf: encoded)
    }
}
