/// DER for the few small messages the service sends — the AP-REP, its encrypted part, and their GSS-API and SPNEGO
/// framing — written directly: each element is its content framed with its tag and shortest length. (swift-asn1's
/// serializer, generic and closure-driven, was a tenth of a validation for these few dozen bytes.)
enum DERWriter {
    /// `tag`, the shortest length, then `content`.
    static func element(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(content.count + 6)
        out.append(tag)
        out.append(contentsOf: TLVLength.encode(content.count))
        out.append(contentsOf: content)
        return out
    }

    /// `[number] EXPLICIT` around an encoded element.
    static func explicit(_ number: UInt8, _ inner: [UInt8]) -> [UInt8] {
        element(DERReader.Tag.context(number), inner)
    }

    /// An INTEGER in its shortest two's-complement form.
    static func integer(_ value: Int64) -> [UInt8] {
        var bytes = (0..<8).reversed().map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
        while bytes.count > 1, (bytes[0] == 0 && bytes[1] < 0x80) || (bytes[0] == 0xFF && bytes[1] >= 0x80) {
            bytes.removeFirst()
        }
        return element(DERReader.Tag.integer, bytes)
    }
}
