/// The digests a pack holds, each kept as the four 64-bit words of its 64 hex digits: built from a pack's index lines
/// (`digest length` or `digest offset length`) without making a `String` a blob, and asked about a row's digest
/// without hashing its text. A first snapshot asks 100,000 times; splitting the index into strings and a `Set` of them
/// was about a tenth of its CPU.
struct PackedDigests {
    private var words: Set<Words> = []

    /// A SHA-256 digest's 64 lower-case hex digits as four words.
    struct Words: Hashable {
        var a: UInt64 = 0, b: UInt64 = 0, c: UInt64 = 0, d: UInt64 = 0

        init?(_ hex: some Collection<UInt8>) {
            guard hex.count == 64 else { return nil }
            var index = 0
            for byte in hex {
                let nibble: UInt64
                switch byte {
                case 48...57: nibble = UInt64(byte - 48)
                case 97...102: nibble = UInt64(byte - 87)
                default: return nil
                }
                switch index >> 4 {
                case 0: a = a << 4 | nibble
                case 1: b = b << 4 | nibble
                case 2: c = c << 4 | nibble
                default: d = d << 4 | nibble
                }
                index += 1
            }
        }
    }

    init() {}

    /// The digests these strings name (any that is not 64 lower-case hex digits is left out: no stored digest is).
    init(_ digests: [String]) {
        words.reserveCapacity(digests.count)
        for digest in digests {
            if let key = Words(digest.utf8) { words.insert(key) }
        }
    }

    /// The digests a pack's index lines name: each line's first field, up to its first space.
    init(index: String) {
        var index = index
        words.reserveCapacity(index.utf8.count / 70)
        index.withUTF8 { bytes in
            var start = 0
            for end in bytes.indices where bytes[end] == 10 {
                var space = start
                while space < end, bytes[space] != 32 { space += 1 }
                if let key = Words(UnsafeBufferPointer(rebasing: bytes[start..<space])) { words.insert(key) }
                start = end + 1
            }
            if start < bytes.count {
                var space = start
                while space < bytes.count, bytes[space] != 32 { space += 1 }
                if let key = Words(UnsafeBufferPointer(rebasing: bytes[start..<space])) { words.insert(key) }
            }
        }
    }

    var count: Int { words.count }

    func contains(_ digest: String) -> Bool {
        Words(digest.utf8).map(words.contains) ?? false
    }
}
