/// The digests a pack holds, each kept as its 64 hex digits' bytes in eight words: built from a pack's index lines
/// (`digest length` or `digest offset length`) without making a `String` a blob, and asked about a row's digest
/// without hashing its text as a `String`. A first snapshot asks 100,000 times; splitting the index into strings and
/// a `Set` of them was about a tenth of its CPU.
struct PackedDigests {
    private var words: Set<Words> = []

    /// A SHA-256 digest's 64 hex digits, as they are written, in eight words (equal exactly when the texts are).
    struct Words: Hashable {
        var a: UInt64, b: UInt64, c: UInt64, d: UInt64, e: UInt64, f: UInt64, g: UInt64, h: UInt64

        init?(_ text: UnsafeBufferPointer<UInt8>) {
            guard text.count == 64, let base = text.baseAddress else { return nil }
            let raw = UnsafeRawPointer(base)
            func word(_ index: Int) -> UInt64 { raw.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self) }
            (a, b, c, d) = (word(0), word(1), word(2), word(3))
            (e, f, g, h) = (word(4), word(5), word(6), word(7))
        }

        init?(_ digest: String) {
            var digest = digest
            guard let words = digest.withUTF8({ Words($0) }) else { return nil }
            self = words
        }
    }

    init() {}

    /// The digests these strings name (any that is not 64 bytes long is left out: no stored digest is).
    init(_ digests: [String]) {
        words.reserveCapacity(digests.count)
        for digest in digests {
            if let key = Words(digest) { words.insert(key) }
        }
    }

    /// The digests a pack's index lines name: each line's first field, up to its first space.
    init(index: String) {
        var index = index
        words.reserveCapacity(index.utf8.count / 70)
        index.withUTF8 { bytes in
            var start = 0
            while start < bytes.count {
                var space = start
                while space < bytes.count, bytes[space] != 32, bytes[space] != 10 { space += 1 }
                if let key = Words(UnsafeBufferPointer(rebasing: bytes[start..<space])) { words.insert(key) }
                var end = space
                while end < bytes.count, bytes[end] != 10 { end += 1 }
                start = end + 1
            }
        }
    }

    var count: Int { words.count }

    func contains(_ digest: String) -> Bool {
        Words(digest).map(words.contains) ?? false
    }
}
