import CLogScan

/// Hostnames to apps, looked up from raw log bytes without making a string. The table is open addressing over flat
/// arrays that the log scanner (CLogScan) probes directly: a slot holds a host or a parent domain of catalog hosts
/// (a marker, app -1), hashed from its first and last eight bytes (lowercased a word at a time) and its length; a hash
/// hit is confirmed byte for byte. A lookup walks the name from its last label, probing each suffix after a dot, and
/// stops at the first suffix the table does not hold, since no catalog host ends in it; the longest matching host
/// wins. A proxy log's names to other sites end at their first probe (`example`, or `site.example` after `example`
/// when a catalog host ends in it), which meets an empty slot: the table has at least eight slots per entry.
struct HostTable: Sendable {
    /// A slot's hash, 0 when empty (hashes are stored with their low bit set, so none is 0).
    private var hashes: [UInt64]
    private var entries: [tessera_host_entry]
    /// The hosts' bytes, lowercase; a marker's are the end of a host's.
    private var text: [UInt8] = []
    private var count = 0

    init() {
        hashes = Array(repeating: 0, count: 64)
        entries = Array(repeating: tessera_host_entry(start: 0, length: 0, app: -1), count: 64)
    }

    /// Adds `host` (a valid lowercase hostname: `isValidHost`) for `app`, and its parent domains as markers.
    mutating func insert(_ host: String, app: Int) {
        let start = text.count
        text.append(contentsOf: host.utf8)
        let length = text.count - start
        for i in start..<text.count where text[i] == UInt8(ascii: ".") { place(from: i + 1, to: start + length, app: -1) }
        place(from: start, to: start + length, app: app)
    }

    /// Puts `text[from..<to]` in the table for `app` (a marker, -1, never replaces a host; a host replaces a marker).
    private mutating func place(from: Int, to: Int, app: Int) {
        if let slot = find(from: from, to: to) {
            if app >= 0 { entries[slot].app = Int32(app) }
            return
        }
        if (count + 1) * 8 > hashes.count { grow() }
        let h = text.withUnsafeBufferPointer { Self.hash($0, from: from, to: to) }
        store(h, tessera_host_entry(start: Int32(from), length: Int32(to - from), app: Int32(app)))
        count += 1
    }

    private mutating func store(_ h: UInt64, _ entry: tessera_host_entry) {
        let mask = hashes.count - 1
        var slot = Int(tessera_host_slot(h, UInt64(mask)))
        while hashes[slot] != 0 { slot = (slot + 1) & mask }
        hashes[slot] = h
        entries[slot] = entry
    }

    private mutating func grow() {
        let old = zip(hashes, entries).filter { $0.0 != 0 }
        hashes = Array(repeating: 0, count: hashes.count * 2)
        entries = Array(repeating: tessera_host_entry(start: 0, length: 0, app: -1), count: hashes.count)
        for (h, e) in old { store(h, e) }
    }

    private func find(from: Int, to: Int) -> Int? {
        let slot = text.withUnsafeBufferPointer { t in
            withTable { tessera_host_find($0, t.baseAddress! + from, to - from) }
        }
        return slot < 0 ? nil : Int(slot)
    }

    /// The app whose host is exactly `host` (any case).
    func exact(_ host: String) -> Int? {
        var name = Array(host.utf8)
        let slot = name.withUnsafeMutableBufferPointer { n in withTable { tessera_host_find($0, n.baseAddress, n.count) } }
        guard slot >= 0, entries[Int(slot)].app >= 0 else { return nil }
        return Int(entries[Int(slot)].app)
    }

    /// The app of `host` or of its most specific parent domain; `host` is ASCII bytes, any case, without a port.
    @inline(__always)
    func lookup(_ host: UnsafeBufferPointer<UInt8>) -> Int? {
        guard let base = host.baseAddress else { return nil }
        let app = withTable { tessera_host_lookup($0, base, host.count) }
        return app < 0 ? nil : Int(app)
    }

    /// The table as the scanner reads it, valid inside `body`.
    @inline(__always)
    func withTable<R>(_ body: (UnsafePointer<tessera_host_table>) throws -> R) rethrows -> R {
        try hashes.withUnsafeBufferPointer { h in
            try entries.withUnsafeBufferPointer { e in
                try text.withUnsafeBufferPointer { t in
                    var table = tessera_host_table(hashes: h.baseAddress, entries: e.baseAddress, text: t.baseAddress,
                                                   mask: UInt64(h.count - 1))
                    return try body(&table)
                }
            }
        }
    }

    /// A hash of `host[from..<to]` lowercased, never 0: from its first and last eight bytes (fewer for a shorter
    /// suffix) and its length, so its cost does not grow with the name (`tessera_host_hash`, which the scanner uses).
    @inline(__always)
    static func hash(_ host: UnsafeBufferPointer<UInt8>, from: Int, to: Int) -> UInt64 {
        guard let base = host.baseAddress else { return tessera_host_hash(nil, 0) }
        return tessera_host_hash(base + from, to - from)
    }

    /// ASCII capitals of a word to small letters, a word at a time (bytes from 0x80 up are left alone).
    @inline(__always)
    static func lowercased(_ w: UInt64) -> UInt64 { tessera_host_lowercased(w) }

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
