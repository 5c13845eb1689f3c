/// DER for the few small messages the service sends — the AP-REP, its encrypted part, and their GSS-API and SPNEGO
/// framing — written directly into one buffer: each element's tag, then its content, then its shortest length put in
/// front of the content. (swift-asn1's serializer, generic and closure-driven, was a tenth of a validation for these
/// few hundred bytes.)
struct DERWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 256) {
        bytes.reserveCapacity(capacity)
    }

    /// An element tagged `tag` whose content `body` writes.
    mutating func element(_ tag: UInt8, _ body: (inout DERWriter) throws -> Void) rethrows {
        bytes.append(tag)
        let start = bytes.count
        try body(&self)
        bytes.insert(contentsOf: TLVLength.encode(bytes.count - start), at: start)
    }

    /// An element tagged `tag` with `content`.
    mutating func element(_ tag: UInt8, _ content: some Collection<UInt8>) {
        bytes.append(tag)
        bytes.append(contentsOf: TLVLength.encode(content.count))
        bytes.append(contentsOf: content)
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

    /// Bytes already encoded.
    mutating func append(_ encoded: some Collection<UInt8>) {
        bytes.append(contentsOf: encoded)
    }
}
