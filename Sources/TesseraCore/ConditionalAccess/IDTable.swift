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

    /// Eight bytes at a time, each word folded in with a multiply and a shift (SplitMix64's finaliser).
    static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        func mix(_ value: UInt64) -> UInt64 {
            var z = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        var hash = seed ^ UInt64(bytes.count) &* 0x9E37_79B9_7F4A_7C15
        var offset = 0
        while offset + 8 <= bytes.count {
            hash = mix(hash ^ bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            offset += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while offset < bytes.count {
            tail |= UInt64(bytes[offset]) << shift
            shift += 8
            offset += 1
        }
        return mix(hash ^ tail)
    }
}
