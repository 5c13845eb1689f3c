/// The keys of CEF and LEEF records that a traffic record needs, from ArcSight's CEF dictionary and IBM's LEEF
/// predefined attributes, with the spellings proxies use for the rest.
enum KeyValueFields {
    @inline(__always)
    static func apply(_ p: UnsafeMutableBufferPointer<UInt8>, key k: Range<Int>, value v: Range<Int>, into e: inout LogEntry) {
        func `is`(_ name: StaticString) -> Bool {
            guard name.utf8CodeUnitCount == k.count else { return false }
            let s = name.utf8Start
            for n in 0..<k.count where p[k.lowerBound + n] != s[n] { return false }
            return true
        }
        let value: Range<Int>? = v.isEmpty ? nil : v
        switch k.count {
        case 2:
            if `is`("rt") { e.time = ByteParsing.eventTime(p, v) }
            else if `is`("in") { e.receivedBytes = ByteParsing.int(p, v) }
        case 3:
            if `is`("src") { e.sourceIP = value }
            else if `is`("dst") { e.destinationIP = value }
            else if `is`("spt") { e.sourcePort = ByteParsing.int(p, v).map(Int.init) }
            else if `is`("dpt") { e.port = ByteParsing.int(p, v).map(Int.init) }
            else if `is`("out") { e.sentBytes = ByteParsing.int(p, v) }
            else if `is`("act") { e.action = value }
            else if `is`("url") { if let value { ByteParsing.url(p, value, into: &e, keepingHost: e.host) } }
        case 4:
            if `is`("host") { e.host = value }
        case 5:
            if `is`("dhost") { e.host = value }
            else if `is`("suser") { e.user = value }
            else if `is`("start") { if e.time == nil { e.time = ByteParsing.eventTime(p, v) } }
        case 6:
            if `is`("action") { e.action = value }
        case 7:
            if `is`("request") { if let value { ByteParsing.url(p, value, into: &e, keepingHost: e.host) } }
            else if `is`("devTime") { e.time = ByteParsing.eventTime(p, v) }
            else if `is`("usrName") { e.user = value }
            else if `is`("srcPort") { e.sourcePort = ByteParsing.int(p, v).map(Int.init) }
            else if `is`("dstPort") { e.port = ByteParsing.int(p, v).map(Int.init) }
            else if `is`("dstHost") { e.host = value }
        case 8:
            if `is`("srcBytes") { e.sentBytes = ByteParsing.int(p, v) }
            else if `is`("dstBytes") { e.receivedBytes = ByteParsing.int(p, v) }
        case 13:
            if `is`("requestMethod") { e.method = value }
        default: break
        }
    }
}

extension ByteParsing {
    /// A URL whose host does not replace one the record already named (`dhost` before `request`).
    static func url(_ p: UnsafeMutableBufferPointer<UInt8>, _ r: Range<Int>, into e: inout LogEntry, keepingHost host: Range<Int>?) {
        url(p, r, into: &e)
        if let host { e.host = host }
    }

    /// CEF's and LEEF's event times: milliseconds since 1970, or `MMM dd yyyy HH:mm:ss[.SSS]` (UTC), or ISO 8601.
    static func eventTime(_ p: UnsafeMutableBufferPointer<UInt8>, _ r: Range<Int>) -> Double? {
        if let ms = int(p, r) { return Double(ms) / 1000 }
        if let iso = isoDate(p, r) { return iso }
        let s = r.lowerBound
        guard r.count >= 20, p[s + 3] == space, p[s + 6] == space, p[s + 11] == space, let month = monthNumber(p, s),
              let d = int(p, s + 4..<s + 6), let y = int(p, s + 7..<s + 11), let day = days(year: y, month: month, day: d),
              let time = clock(p, s + 12..<s + 20) else { return nil }
        return Double(day * 86_400) + time
    }

    static func monthNumber(_ p: UnsafeMutableBufferPointer<UInt8>, _ s: Int) -> Int64? {
        let names = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
        let a = p[s] | 0x20, b = p[s + 1] | 0x20, c = p[s + 2] | 0x20
        for (n, name) in names.enumerated() {
            let u = Array(name.utf8)
            if u[0] == a, u[1] == b, u[2] == c { return Int64(n + 1) }
        }
        return nil
    }

    /// Undoes backslash escapes in place (`\\`, `\=`, `\|`, the delimiter, `\n`, `\r`); returns the new range.
    @inline(__always)
    static func unescape(_ p: UnsafeMutableBufferPointer<UInt8>, _ r: Range<Int>) -> Range<Int> {
        var read = r.lowerBound
        while read < r.upperBound, p[read] != UInt8(ascii: "\\") { read += 1 }
        if read == r.upperBound { return r }
        var write = read
        while read < r.upperBound {
            var b = p[read]
            if b == UInt8(ascii: "\\"), read + 1 < r.upperBound {
                read += 1
                b = p[read]
                if b == UInt8(ascii: "n") { b = 10 } else if b == UInt8(ascii: "r") { b = 13 }
            }
            p[write] = b
            write += 1; read += 1
        }
        return r.lowerBound..<write
    }

    /// Trailing spaces off a range.
    @inline(__always)
    static func trimmed(_ p: UnsafeMutableBufferPointer<UInt8>, _ r: Range<Int>) -> Range<Int> {
        var end = r.upperBound
        while end > r.lowerBound, p[end - 1] == space { end -= 1 }
        return r.lowerBound..<end
    }

    /// Moves `i` past `n` header fields separated by unescaped `|`; false if the line has fewer.
    @inline(__always)
    static func skipHeaderFields(_ p: UnsafeMutableBufferPointer<UInt8>, _ i: inout Int, _ n: Int) -> Bool {
        var left = n
        while i < p.count, left > 0 {
            if p[i] == UInt8(ascii: "\\") { i += 2; continue }
            if p[i] == UInt8(ascii: "|") { left -= 1 }
            i += 1
        }
        return left == 0
    }

    /// Where `marker` (`CEF:`, `LEEF:`) starts in the line (a syslog header may come first).
    static func find(_ p: UnsafeMutableBufferPointer<UInt8>, _ marker: StaticString) -> Int? {
        let m = marker.utf8Start, n = marker.utf8CodeUnitCount
        guard p.count >= n else { return nil }
        outer: for i in 0...(p.count - n) {
            for k in 0..<n where p[i + k] != m[k] { continue outer }
            return i
        }
        return nil
    }
}
