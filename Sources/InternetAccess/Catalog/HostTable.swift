/// Hostnames to apps, looked up from raw log bytes without making a string: the host is walked from the right, and at
/// each dot the suffix after it (a parent domain) is hashed from two word loads (its first and last eight bytes,
/// lowercased a word at a time, and its length) and probed; a hash hit is confirmed byte for byte. The longest
/// matching suffix wins.
///
/// The table is open addressing over flat arrays, sized to at least eight slots per host: a suffix that is no catalog
/// host (almost all of a proxy log's) meets an empty slot at its first probe, so it costs two loads, a few multiplies,
/// one probe and a compare, whatever its length.
struct HostTable: Sendable {
    /// A slot's hash, 0 when empty (hashes are stored with their low bit set, so none is 0).
    private var hashes: [UInt64]
    /// A slot's host: its bytes in `text` and its app.
    private var entries: [Entry]
    private var text: [UInt8] = []
    private var count = 0

    private struct Entry: Sendable { var start: Int32; var length: Int32; var app: Int32 }

    init() {
        hashes = Array(repeating: 0, count: 64)
        entries = Array(repeating: Entry(start: 0, length: 0, app: 0), count: 64)
    }

    mutating func insert(_ host: String, app: Int) {
        if (count + 1) * 8 > hashes.count { grow() }
        var bytes = Array(host.utf8)
        let h = bytes.withUnsafeMutableBufferPointer { Self.hash(UnsafeBufferPointer($0), from: 0, to: $0.count) }
        place(h, Entry(start: Int32(text.count), length: Int32(bytes.count), app: Int32(app)))
        text.append(contentsOf: bytes)
        count += 1
    }

    private mutating func place(_ h: UInt64, _ entry: Entry) {
        let mask = hashes.count - 1
        var slot = Self.slot(h, mask)
        while hashes[slot] != 0 { slot = (slot + 1) & mask }
        hashes[slot] = h
        entries[slot] = entry
    }

    private mutating func grow() {
        let old = zip(hashes, entries).filter { $0.0 != 0 }
        hashes = Array(repeating: 0, count: hashes.count * 2)
        entries = Array(repeating: Entry(start: 0, length: 0, app: 0), count: hashes.count)
        for (h, e) in old { place(h, e) }
    }

    func exact(_ host: String) -> Int? {
        var bytes = Array(host.utf8)
        return bytes.withUnsafeMutableBufferPointer { p in
            let host = UnsafeBufferPointer(p)
            return match(Self.hash(host, from: 0, to: host.count), host, from: 0, to: host.count)
        }
    }

    @inline(__always)
    func lookup(_ host: UnsafeBufferPointer<UInt8>) -> Int? {
        var end = host.count
        while end > 0, host[end - 1] == UInt8(ascii: ".") { end -= 1 }
        guard end > 0 else { return nil }
        var found: Int?
        var i = end
        while i > 0 {
            i -= 1
            if host[i] == UInt8(ascii: "."), let app = match(Self.hash(host, from: i + 1, to: end), host, from: i + 1, to: end) { found = app }
        }
        if let app = match(Self.hash(host, from: 0, to: end), host, from: 0, to: end) { found = app }
        return found
    }

    /// A hash of `host[from..<to]` lowercased, never 0: from its first and last eight bytes (fewer for a shorter
    /// suffix) and its length, so its cost does not grow with the name.
    @inline(__always)
    static func hash(_ host: UnsafeBufferPointer<UInt8>, from: Int, to: Int) -> UInt64 {
        let length = to - from
        var first: UInt64 = 0, last: UInt64 = 0
        if length >= 8 {
            let raw = UnsafeRawPointer(host.baseAddress!)
            first = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: from, as: UInt64.self))
            last = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: to - 8, as: UInt64.self))
        } else {
            for k in 0..<length { first |= UInt64(host[from + k]) << (8 * k) }
        }
        var h = lowercased(first) &* 0x9e37_79b9_7f4a_7c15
        h ^= lowercased(last) &* 0xc2b2_ae3d_27d4_eb4f
        h ^= UInt64(length) &* 0x1656_67b1_9e37_79f9
        h ^= h >> 29
        return h | 1
    }

    /// Where a hash's probe starts: its high bits (a product's low bits mix least, and the lowest is always set).
    @inline(__always)
    static func slot(_ h: UInt64, _ mask: Int) -> Int { Int(truncatingIfNeeded: h >> 32) & mask }

    /// ASCII capitals of a word to small letters, a word at a time (bytes from 0x80 up are left alone).
    @inline(__always)
    static func lowercased(_ w: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101, low7: UInt64 = 0x7f7f_7f7f_7f7f_7f7f
        let b = w & low7
        // 0x80 in each byte that is from "A" (0x41) through "Z" (0x5a) and below 0x80.
        let capital = (b &+ ones &* (0x80 - 0x41)) & ~(b &+ ones &* (0x80 - 0x5b)) & ~w & (ones &* 0x80)
        return w | (capital >> 2)
    }

    @inline(__always)
    private func match(_ h: UInt64, _ host: UnsafeBufferPointer<UInt8>, from: Int, to: Int) -> Int? {
        hashes.withUnsafeBufferPointer { hashes in
            let mask = hashes.count - 1
            var slot = Self.slot(h, mask)
            while true {
                let stored = hashes[slot]
                if stored == 0 { return nil }
                if stored == h, let app = confirm(slot, host, from: from, to: to) { return app }
                slot = (slot + 1) & mask
            }
        }
    }

    /// Whether the slot's host is `host[from..<to]` (compared lowercased): a hash hit is not proof.
    private func confirm(_ slot: Int, _ host: UnsafeBufferPointer<UInt8>, from: Int, to: Int) -> Int? {
        let e = entries[slot]
        guard Int(e.length) == to - from else { return nil }
        let start = Int(e.start)
        for k in 0..<(to - from) {
            var b = host[from + k]
            if b &- 65 < 26 { b |= 0x20 }
            if b != text[start + k] { return nil }
        }
        return Int(e.app)
    }

    static func isValidHost(_ host: String) -> Bool {
        !host.isEmpty && host.count <= 253 && !host.hasPrefix(".") && !host.hasSuffix(".") && !host.contains("..")
            && host.utf8.allSatisfy { (97...122).contains($0) || (48...57).contains($0) || $0 == 45 || $0 == 46 }
    }
}

/// `*` wildcards over a whole string (any run of characters, `/` included).
enum Glob {
    static func matches(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern.utf8), t = Array(text.utf8)
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count, p[pi] == t[ti] { pi += 1; ti += 1 }
            else if pi < p.count, p[pi] == UInt8(ascii: "*") { star = pi; mark = ti; pi += 1 }
            else if star >= 0 { pi = star + 1; mark += 1; ti = mark }
            else { return false }
        }
        while pi < p.count, p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }
}
