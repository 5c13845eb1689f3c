import TesseraCore

/// Small parsers over line bytes shared by the formats.
enum ByteParsing {
    static let space = UInt8(ascii: " "), tab = UInt8(ascii: "\t"), colon = UInt8(ascii: ":"), slash = UInt8(ascii: "/")

    /// A non-negative decimal integer, or nil.
    @inline(__always)
    static func int(_ p: UnsafeMutableBufferPointer<UInt8>, _ r: Range<Int>) -> Int64? {
        guard !r.isEmpty, r.count <= 18 else { return nil }
        var v: Int64 = 0
        for i in r {
            let d = p[i] &- 48
            guard d < 10 else { return nil }
            v = v * 10 + Int64(d)
        }
        return v
    }

    /// `1733472000.123`: seconds with an optional fraction.
    static func seconds(_ p: UnsafeMutableBufferPointer<UInt8>, _ r: Range<Int>) -> Double? {
        var dot = r.upperBound
        for i in r where p[i] == UInt8(ascii: ".") { dot = i; break }
        guard let whole = int(p, r.lowerBound..<dot) else { return nil }
        var value = Double(whole)
        if dot < r.upperBound {
            guard let frac = int(p, dot + 1..<r.upperBound) else { return nil }
            var scale = 1.0
            for _ in dot + 1..<r.upperBound { scale *= 10 }
            value += Double(frac) / scale
        }
        return value
    }

    /// `2026-12-06T10:15:30[.123][Z]` or with a space for the `T`; UTC.
    static func isoDate(_ p: UnsafeMutableBufferPointer<UInt8>, _ r: Range<Int>) -> Double? {
        guard r.count >= 19 else { return nil }
        let s = r.lowerBound
        guard p[s + 4] == UInt8(ascii: "-"), p[s + 7] == UInt8(ascii: "-"), p[s + 10] == UInt8(ascii: "T") || p[s + 10] == space,
              let y = int(p, s..<s + 4), let mo = int(p, s + 5..<s + 7), let d = int(p, s + 8..<s + 10),
              let time = clock(p, s + 11..<s + 19) else { return nil }
        guard let day = days(year: y, month: mo, day: d) else { return nil }
        var value = Double(day * 86_400) + time
        if s + 19 < r.upperBound, p[s + 19] == UInt8(ascii: ".") {
            var end = s + 20
            while end < r.upperBound, p[end] &- 48 < 10 { end += 1 }
            if let fraction = seconds(p, s + 19 < end ? (s + 19)..<end : end..<end) { value += fraction }
        }
        return value
    }

    /// `HH:mm:ss` as seconds into the day.
    static func clock(_ p: UnsafeMutableBufferPointer<UInt8>, _ r: Range<Int>) -> Double? {
        let s = r.lowerBound
        guard r.count >= 8, p[s + 2] == colon, p[s + 5] == colon, let h = int(p, s..<s + 2), let m = int(p, s + 3..<s + 5),
              let sec = int(p, s + 6..<s + 8), h < 24, m < 60, sec < 61 else { return nil }
        return Double(h * 3600 + m * 60 + sec)
    }

    /// Days since 1970-01-01 of a civil date, its month and day in range.
    static func days(year: Int64, month: Int64, day: Int64) -> Int64? {
        guard (1...12).contains(month), (1...31).contains(day) else { return nil }
        return Int64(CivilDate.days(year: Int(year), month: Int(month), day: Int(day)))
    }

    /// Splits a URL or a CONNECT target into host, port and path: `https://h:8443/p?q`, `h:443`, `h/p`.
    static func url(_ p: UnsafeMutableBufferPointer<UInt8>, _ r: Range<Int>, into e: inout LogEntry) {
        let (host, defaultPort) = urlHost(p, r)
        e.host = host
        var rest = host.upperBound
        if rest < r.upperBound, p[rest] == colon {
            var portEnd = rest + 1
            while portEnd < r.upperBound, p[portEnd] != slash { portEnd += 1 }
            if let port = int(p, rest + 1..<portEnd) { e.port = Int(port) }
            rest = portEnd
        }
        if rest < r.upperBound { e.path = rest..<r.upperBound }
        if e.port == nil { e.port = defaultPort }
    }

    /// The host of a URL or a CONNECT target (empty when it has none), and the port its scheme implies.
    @inline(__always)
    static func urlHost(_ p: UnsafeMutableBufferPointer<UInt8>, _ r: Range<Int>) -> (host: Range<Int>, defaultPort: Int?) {
        var start = r.lowerBound
        // Skip a scheme.
        var i = start
        while i + 2 < r.upperBound, p[i] != slash, p[i] != colon { i += 1 }
        var defaultPort: Int?
        if i + 2 < r.upperBound, p[i] == colon, p[i + 1] == slash, p[i + 2] == slash {
            start = i + 3
            // http:// and https:// name their port when the URL does not.
            if i - r.lowerBound == 4, p[r.lowerBound] | 0x20 == UInt8(ascii: "h") { defaultPort = 80 }
            if i - r.lowerBound == 5, p[r.lowerBound] | 0x20 == UInt8(ascii: "h") { defaultPort = 443 }
        }
        var hostEnd = start
        while hostEnd < r.upperBound, p[hostEnd] != slash, p[hostEnd] != colon, p[hostEnd] != UInt8(ascii: "?") { hostEnd += 1 }
        return (start..<hostEnd, defaultPort)
    }

    /// The next run of non-space bytes from `i`, and moves `i` past it and the spaces after.
    @inline(__always)
    static func token(_ p: UnsafeMutableBufferPointer<UInt8>, _ i: inout Int) -> Range<Int>? {
        while i < p.count, p[i] == space || p[i] == tab { i += 1 }
        guard i < p.count else { return nil }
        let start = i
        while i < p.count, p[i] != space, p[i] != tab { i += 1 }
        return start..<i
    }

    /// `-` stands for "no value" in Squid and W3C logs.
    @inline(__always)
    static func value(_ p: UnsafeMutableBufferPointer<UInt8>, _ r: Range<Int>?) -> Range<Int>? {
        guard let r, !(r.count == 1 && p[r.lowerBound] == UInt8(ascii: "-")) else { return nil }
        return r
    }
}
