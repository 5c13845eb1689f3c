/// Memory a `DecisionProgram` owns for its tables once they are built: plain values copied out of Swift arrays, so a
/// decision reads them through pointers without retaining and releasing an array per lookup (which, with 50 groups
/// and 200 policies, cost more than the decision itself). Written only while the program is built, freed with it.
final class Arena: @unchecked Sendable {
    private var blocks: [UnsafeMutableRawPointer] = []

    /// A copy of `values` that lives as long as the arena.
    func freeze<Element: BitwiseCopyable>(_ values: [Element]) -> FrozenArray<Element> {
        let buffer = UnsafeMutableBufferPointer<Element>.allocate(capacity: max(1, values.count))
        _ = buffer.initialize(from: values)
        blocks.append(UnsafeMutableRawPointer(buffer.baseAddress!))
        return FrozenArray(base: UnsafePointer(buffer.baseAddress!), count: values.count)
    }

    deinit {
        for block in blocks { block.deallocate() }
    }
}

/// An immutable array in an `Arena`: a pointer and a count, copied freely.
struct FrozenArray<Element: BitwiseCopyable>: @unchecked Sendable {
    let base: UnsafePointer<Element>
    let count: Int

    @inline(__always) subscript(index: Int) -> Element {
        assert(index >= 0 && index < count)
        return base[index]
    }
}

/// `PolicyRows` frozen: row `r` starts at `base + r * words`; rows past the end are empty.
struct FrozenRows: Sendable {
    let storage: FrozenArray<UInt64>
    let words: Int
    let rowCount: Int

    init(_ rows: PolicyRows, in arena: Arena) {
        storage = arena.freeze(rows.storage)
        words = rows.words
        rowCount = rows.rowCount
    }

    @inline(__always) func row(_ row: Int) -> UnsafePointer<UInt64> { storage.base + row * words }

    @inline(__always) func contains(_ policy: Int, row: Int) -> Bool {
        row < rowCount && self.row(row)[policy >> 6] & (1 << UInt64(policy & 63)) != 0
    }

    /// ORs row `row` into `target` (nothing when the row was never written).
    @inline(__always) func union(row: Int, into target: UnsafeMutablePointer<UInt64>) {
        guard row < rowCount else { return }
        target.formUnion(self.row(row), words: words)
    }
}

/// `IDTable` frozen for lookups: the same slots and hashes, and the ids' UTF-8 bytes end to end, so a lookup
/// hashes and compares bytes without touching a `String` of the table.
struct FrozenIDTable: Sendable {
    private let slots: FrozenArray<Int32>
    private let hashes: FrozenArray<UInt64>
    /// Id `n`'s bytes are `bytes[offsets[n] ..< offsets[n + 1]]`.
    private let offsets: FrozenArray<Int32>
    private let bytes: FrozenArray<UInt8>
    private let seed: UInt64
    let count: Int

    init(_ table: IDTable, in arena: Arena) {
        let layout = table.layout
        slots = arena.freeze(layout.slots)
        hashes = arena.freeze(layout.hashes)
        var offsets: [Int32] = [0], bytes: [UInt8] = []
        for key in table.keys {
            bytes.append(contentsOf: key.utf8)
            offsets.append(Int32(bytes.count))
        }
        self.offsets = arena.freeze(offsets)
        self.bytes = arena.freeze(bytes)
        seed = layout.seed
        count = table.count
    }

    /// The number of `key`, nil when no policy names it.
    @inline(__always) func find(_ key: String) -> Int? {
        guard count > 0 else { return nil }
        if let found = key.utf8.withContiguousStorageIfAvailable({ find(bytes: UnsafeRawBufferPointer($0)) }) { return found }
        return Array(key.utf8).withUnsafeBytes { find(bytes: $0) }
    }

    /// The number of the id whose UTF-8 bytes are `key`.
    @inline(__always) func find(bytes key: UnsafeRawBufferPointer) -> Int? {
        let hash = IDTable.hash(key, seed: seed)
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let entry = Int(slots[slot])
            if entry < 0 { return nil }
            if hashes[entry] == hash {
                let start = Int(offsets[entry]), length = Int(offsets[entry + 1]) - start
                if length == key.count, length == 0 || Self.equal(UnsafeRawPointer(bytes.base + start), key.baseAddress!, length) {
                    return entry
                }
            }
            slot = (slot + 1) & mask
        }
    }

    /// Byte equality, eight at a time (ids are short; a call to `memcmp` costs more than the comparison).
    @inline(__always)
    private static func equal(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ count: Int) -> Bool {
        var offset = 0
        while offset + 8 <= count {
            if a.loadUnaligned(fromByteOffset: offset, as: UInt64.self) != b.loadUnaligned(fromByteOffset: offset, as: UInt64.self) {
                return false
            }
            offset += 8
        }
        while offset < count {
            if a.load(fromByteOffset: offset, as: UInt8.self) != b.load(fromByteOffset: offset, as: UInt8.self) { return false }
            offset += 1
        }
        return true
    }
}
