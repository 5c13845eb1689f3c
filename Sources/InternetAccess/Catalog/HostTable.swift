/// Hostnames to apps, looked up from raw log bytes without making a string: each dot-separated suffix of the host is
/// hashed from the right (FNV-1a over the reversed, lowercased bytes), so one pass over the host tries every parent
/// domain, and a hash hit is confirmed byte for byte. The longest matching suffix wins.
struct HostTable: Sendable {
    private var buckets: [UInt64: [(host: [UInt8], app: Int)]] = [:]

    static let offset: UInt64 = 0xcbf2_9ce4_8422_2325
    static let prime: UInt64 = 0x0000_0100_0000_01b3

    mutating func insert(_ host: String, app: Int) {
        let bytes = Array(host.utf8)
        var h = Self.offset
        for b in bytes.reversed() { h = (h ^ UInt64(b)) &* Self.prime }
        buckets[h, default: []].append((bytes, app))
    }

    func exact(_ host: String) -> Int? {
        var h = Self.offset
        for b in host.utf8.reversed() { h = (h ^ UInt64(b)) &* Self.prime }
        return buckets[h]?.first { $0.host.elementsEqual(host.utf8) }?.app
    }

    @inline(__always)
    func lookup(_ host: UnsafeBufferPointer<UInt8>) -> Int? {
        var end = host.count
        while end > 0, host[end - 1] == UInt8(ascii: ".") { end -= 1 }
        var h = Self.offset
        var found: Int?
        var i = end
        while i > 0 {
            i -= 1
            var b = host[i]
            if b &- 65 < 26 { b |= 0x20 }
            if b == UInt8(ascii: ".") , let app = match(h, host, from: i + 1, to: end) { found = app }
            h = (h ^ UInt64(b)) &* Self.prime
        }
        if end > 0, let app = match(h, host, from: 0, to: end) { found = app }
        return found
    }

    @inline(__always)
    private func match(_ h: UInt64, _ host: UnsafeBufferPointer<UInt8>, from: Int, to: Int) -> Int? {
        guard let candidates = buckets[h] else { return nil }
        for c in candidates where c.host.count == to - from {
            var same = true
            for k in 0..<c.host.count {
                var b = host[from + k]
                if b &- 65 < 26 { b |= 0x20 }
                if b != c.host[k] { same = false; break }
            }
            if same { return c.app }
        }
        return nil
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
