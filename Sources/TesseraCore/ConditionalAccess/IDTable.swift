/// A numbering of the ids a tenant's policies name (users, groups, roles, applications, service principals), built
/// when the engine is compiled. A decision looks each of the sign-in's ids up once: a short multiply-and-shift hash
/// over the id's UTF-8 bytes and a linear probe, with no allocation and no `Hasher` (a user in 50 groups costs 50
/// of these, far less than 50 `Set<String>` lookups).
struct IDTable: Sendable {
    /// The ids by number.
    private(set) var keys: [String] = []
    private var hashes: [UInt64] = []
    /// Open addressing: each slot holds a number or -1; a power of two, at most half full.
    private var slots: [Int32] = [-1, -1]
    private let seed = UInt64.random(in: .min ... .max)

    var count: Int { keys.count }

    /// The open-addressing layout, for `FrozenIDTable`.
    var layout: (slots: [Int32], hashes: [UInt64], seed: UInt64) { (slots, hashes, seed) }

    /// The number of `key`, given the next free one if the table does not hold it yet.
    mutating func number(_ key: String) -> Int {
        let hash = Self.hash(key, seed: seed)
        if let known = find(key, hash: hash) { return known }
        let number = keys.count
        keys.append(key)
        hashes.append(hash)
        if keys.count * 2 > slots.count {
            slots = Array(repeating: -1, count: slots.count * 2)
            for entry in keys.indices { place(entry) }
        } else {
            place(number)
        }
        return number
    }

    /// The number of `key`, nil when no policy names it.
    func find(_ key: String) -> Int? {
        keys.isEmpty ? nil : find(key, hash: Self.hash(key, seed: seed))
    }

    private func find(_ key: String, hash: UInt64) -> Int? {
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let entry = Int(slots[slot])
            if entry < 0 { return nil }
            if hashes[entry] == hash, keys[entry] == key { return entry }
            slot = (slot + 1) & mask
        }
    }

    private mutating func place(_ entry: Int) {
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: hashes[entry]) & mask
        while slots[slot] >= 0 { slot = (slot + 1) & mask }
        slots[slot] = Int32(entry)
    }

    static func hash(_ key: String, seed: UInt64) -> UInt64 {
        if let hash = key.utf8.withContiguousStorageIfAvailable({ hash(UnsafeRawBufferPointer($0), seed: seed) }) { return hash }
        return Array(key.utf8).withUnsafeBytes { hash($0, seed: seed) }
    }

    /// Sixteen bytes at a time, each pair of words folded in with one full-width multiply (the 128-bit product's
    /// halves XORed, as wyhash does); the last sixteen bytes overlap the ones before. About three multiplies for a
    /// GUID. A weak hash only costs probes: `FrozenIDTable` compares the bytes of every candidate.
    @inline(__always)
    static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        @inline(__always) func fold(_ a: UInt64, _ b: UInt64) -> UInt64 {
            let product = a.multipliedFullWidth(by: b)
            return product.high ^ product.low
        }
        @inline(__always) func word(_ offset: Int) -> UInt64 { bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self) }
        let count = bytes.count
        let hash = seed ^ UInt64(count) &* 0x9E37_79B9_7F4A_7C15
        guard count > 16 else {
            var a: UInt64 = 0, b: UInt64 = 0
            if count >= 8 {
                a = word(0)
                b = word(count - 8)
            } else {
                for (index, byte) in bytes.enumerated() { a |= UInt64(byte) << UInt64(8 * index) }
            }
            return fold(a ^ 0xA076_1D64_78BD_642F ^ hash, b ^ 0xE703_7ED1_A0B4_28DB)
        }
        var folded = hash
        var offset = 0
        while offset + 16 < count {
            folded = fold(word(offset) ^ 0xA076_1D64_78BD_642F ^ folded, word(offset + 8) ^ 0xE703_7ED1_A0B4_28DB)
            offset += 16
        }
        return fold(word(count - 16) ^ 0x8EBC_6AF0_9C88_C6E3 ^ folded, word(count - 8) ^ 0x5899_65CC_7537_4CC3)
    }
}
