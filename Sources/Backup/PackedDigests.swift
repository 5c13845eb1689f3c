import TesseraCore

/// The digests a pack holds, each kept as its 64 hex digits' bytes in eight words: built from a pack's index lines
/// (`digest length` or `digest offset length`) without making a `String` a blob, and asked about a row's digest
/// without hashing its text as a `String`. A first snapshot asks 100,000 times; splitting the index into strings and
/// a `Set` of them was about a tenth of its CPU.
struct PackedDigests {
    private var words: Set<DigestKey> = []

    init() {}

    /// The digests these strings name (any that is not 64 bytes long is left out: no stored digest is).
    init(_ digests: [String]) {
        words.reserveCapacity(digests.count)
        for digest in digests {
            if let key = DigestKey(digest) { words.insert(key) }
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
                if let key = DigestKey(UnsafeBufferPointer(rebasing: bytes[start..<space])) { words.insert(key) }
                var end = space
                while end < bytes.count, bytes[end] != 10 { end += 1 }
                start = end + 1
            }
        }
    }

    var count: Int { words.count }

    func contains(_ digest: String) -> Bool {
        DigestKey(digest).map(words.contains) ?? false
    }
}
