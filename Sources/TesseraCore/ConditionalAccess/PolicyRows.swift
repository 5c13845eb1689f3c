/// Sets of policies as bits: row `r` is `words` 64-bit words, and bit `i` of a row says "policy `i`". A decision
/// combines whole rows (a few word ORs for 200 policies) instead of asking each policy in turn.
struct PolicyRows: Sendable {
    private(set) var storage: [UInt64]
    /// Words per row: one per 64 policies.
    let words: Int

    init(rows: Int, policies: Int) {
        words = Self.words(for: policies)
        storage = Array(repeating: 0, count: rows * words)
    }

    static func words(for policies: Int) -> Int { max(1, (policies + 63) / 64) }

    var rowCount: Int { storage.count / words }

    /// Adds `policy` to `row`, growing the table when `row` is past its end.
    mutating func insert(_ policy: Int, row: Int) {
        if row >= rowCount { storage.append(contentsOf: repeatElement(0, count: (row + 1 - rowCount) * words)) }
        storage[row * words + policy >> 6] |= 1 << UInt64(policy & 63)
    }
}

/// Word-level operations on rows held in a decision's or a program's storage.
extension UnsafeMutablePointer<UInt64> {
    @inline(__always) func copy(from source: UnsafePointer<UInt64>, words: Int) {
        for w in 0..<words { self[w] = source[w] }
    }

    @inline(__always) func formUnion(_ source: UnsafePointer<UInt64>, words: Int) {
        for w in 0..<words { self[w] |= source[w] }
    }

    @inline(__always) func clear(words: Int) {
        for w in 0..<words { self[w] = 0 }
    }
}
