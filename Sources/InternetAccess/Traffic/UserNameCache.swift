import Foundation

/// The directory users a log's user fields name, remembered by the field's bytes, so that a name met before costs a
/// hash over its bytes and one comparison: no string, no lowercasing, no `Hasher`. A name not met before is resolved
/// by `UserAttribution.user(named:)` on its text (invalid UTF-8 decoded as `String(decoding:)` does), so the answer is
/// always the one the name's text gives. The cache is bounded: when it holds `limit` names it starts again empty, so a
/// log of endless distinct names cannot grow memory with the file.
struct UserNameCache {
    private struct Slot {
        /// 0 for an empty slot (hashes are stored with their low bit set).
        var hash: UInt64 = 0
        var start: Int32 = 0
        var length: Int32 = 0
        /// An index into `users`, or -1 when the name matches no user (or more than one).
        var user: Int32 = -1
    }

    private var slots: [Slot]
    /// The names' bytes, one after the other.
    private var names: [UInt8] = []
    private var users: [UserAttribution.User] = []
    private(set) var count = 0
    let limit: Int

    init(limit: Int) {
        self.limit = max(1, limit)
        slots = Array(repeating: Slot(), count: 256)
    }

    /// The user `name` names, from the cache or from `resolve` (then remembered).
    mutating func user(named name: UnsafeBufferPointer<UInt8>,
                       resolve: (UnsafeBufferPointer<UInt8>) -> UserAttribution.User?) -> UserAttribution.User? {
        let h = Self.hash(name)
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: h >> 32) & mask
        while true {
            let s = slots[slot]
            if s.hash == 0 { break }
            if s.hash == h, Int(s.length) == name.count, names.withUnsafeBufferPointer({
                name.count == 0 || memcmp($0.baseAddress! + Int(s.start), name.baseAddress!, name.count) == 0
            }) {
                return s.user < 0 ? nil : users[Int(s.user)]
            }
            slot = (slot + 1) & mask
        }
        let user = resolve(name)
        if count >= limit {
            // Start again rather than grow without bound.
            for i in slots.indices { slots[i] = Slot() }
            names.removeAll(keepingCapacity: true)
            users.removeAll(keepingCapacity: true)
            count = 0
        }
        if (count + 1) * 2 > slots.count { grow() }
        var index: Int32 = -1
        if let user { index = Int32(users.count); users.append(user) }
        let start = Int32(names.count)
        names.append(contentsOf: name)
        place(Slot(hash: h, start: start, length: Int32(name.count), user: index))
        count += 1
        return user
    }

    private mutating func place(_ entry: Slot) {
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: entry.hash >> 32) & mask
        while slots[slot].hash != 0 { slot = (slot + 1) & mask }
        slots[slot] = entry
    }

    private mutating func grow() {
        let old = slots
        slots = Array(repeating: Slot(), count: old.count * 2)
        for s in old where s.hash != 0 { place(s) }
    }

    /// A hash of all of the name's bytes, eight at a time, never 0.
    static func hash(_ name: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(name.count)
        guard let base = name.baseAddress else { return h | 1 }
        let raw = UnsafeRawPointer(base)
        var i = 0
        func mix(_ w: UInt64) {
            h = (h ^ w) &* 0xBF58_476D_1CE4_E5B9
            h ^= h >> 31
        }
        while i + 8 <= name.count {
            mix(raw.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            i += 8
        }
        if i < name.count {
            var w: UInt64 = 0
            for k in i..<name.count { w |= UInt64(name[k]) << (8 * UInt64(k - i)) }
            mix(w)
        }
        h = (h ^ (h >> 29)) &* 0x94D0_49BB_1331_11EB
        return (h ^ (h >> 32)) | 1
    }
}
