/// A SHA-256 digest's 64 hex digits, as they are written, in eight words: hashed and compared without making a `String`
/// (equal exactly when the texts are). Loaded as they are; decoding them digit by digit was most of reading a pack
/// index, and a `Set` of `String`s about a tenth of a first snapshot's CPU.
public struct DigestKey: Hashable, Sendable {
    var a: UInt64, b: UInt64, c: UInt64, d: UInt64, e: UInt64, f: UInt64, g: UInt64, h: UInt64

    /// Nil unless `text` is 64 bytes long (every stored digest is).
    public init?(_ text: UnsafeBufferPointer<UInt8>) {
        guard text.count == 64, let base = text.baseAddress else { return nil }
        let raw = UnsafeRawPointer(base)
        func word(_ index: Int) -> UInt64 { raw.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self) }
        (a, b, c, d) = (word(0), word(1), word(2), word(3))
        (e, f, g, h) = (word(4), word(5), word(6), word(7))
    }

    public init?(_ digest: String) {
        var digest = digest
        guard let key = digest.withUTF8({ DigestKey($0) }) else { return nil }
        self = key
    }
}
