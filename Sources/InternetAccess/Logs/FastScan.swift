#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Scans over line bytes a word (8 bytes) at a time, for the importer's fast path (`LogParser.requestHost`).
enum FastScan {
    static let ones: UInt64 = 0x0101_0101_0101_0101
    static let low7: UInt64 = 0x7f7f_7f7f_7f7f_7f7f

    /// 0x80 in each byte of `v` that is zero, nothing elsewhere (exact, unlike the borrow trick, so any set bit counts).
    @inline(__always)
    static func zeroBytes(_ v: UInt64) -> UInt64 { ~(((v & low7) &+ low7) | v | low7) }

    /// The first space or tab in `p[i..<p.count]`, or `p.count`.
    @inline(__always)
    static func blank(_ p: UnsafeMutableBufferPointer<UInt8>, from i: Int) -> Int {
        let n = p.count
        var i = i
        let raw = UnsafeRawPointer(p.baseAddress!)
        while i + 8 <= n {
            let v = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            let hits = zeroBytes(v ^ (ones &* 0x20)) | zeroBytes(v ^ (ones &* 0x09))
            if hits != 0 { return i + hits.trailingZeroBitCount >> 3 }
            i += 8
        }
        while i < n, p[i] != ByteParsing.space, p[i] != ByteParsing.tab { i += 1 }
        return i
    }

    /// The next run of non-blank bytes from `i` (which moves past it), as `ByteParsing.token` finds it.
    @inline(__always)
    static func token(_ p: UnsafeMutableBufferPointer<UInt8>, _ i: inout Int) -> Range<Int>? {
        while i < p.count, p[i] == ByteParsing.space || p[i] == ByteParsing.tab { i += 1 }
        guard i < p.count else { return nil }
        let start = i
        i = blank(p, from: i)
        return start..<i
    }

    /// The index of the first `byte` in `p[from..<p.count]`, or nil: a word at a time, inline (for the short distances
    /// between a line's fields, where a call to memchr costs more than it saves).
    @inline(__always)
    static func find(_ byte: UInt8, _ p: UnsafeMutableBufferPointer<UInt8>, from: Int) -> Int? {
        let n = p.count, pattern = ones &* UInt64(byte)
        let raw = UnsafeRawPointer(p.baseAddress!)
        var i = from
        while i + 8 <= n {
            let hits = zeroBytes(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) ^ pattern)
            if hits != 0 { return i + hits.trailingZeroBitCount >> 3 }
            i += 8
        }
        while i < n {
            if p[i] == byte { return i }
            i += 1
        }
        return nil
    }

    /// Whether the line holds `byte` anywhere (libc's memchr, vectorised: one call over the whole line).
    @inline(__always)
    static func contains(_ byte: UInt8, _ p: UnsafeMutableBufferPointer<UInt8>) -> Bool {
        !p.isEmpty && memchr(p.baseAddress!, Int32(byte), p.count) != nil
    }

    /// Where `marker` (4 bytes, such as `CEF:`) first starts in the line.
    @inline(__always)
    static func find(_ marker: StaticString, _ p: UnsafeMutableBufferPointer<UInt8>) -> Int? {
        let m = marker.utf8Start
        var from = 0
        while let i = find(m[0], p, from: from) {
            guard i + marker.utf8CodeUnitCount <= p.count else { return nil }
            var same = true
            for k in 1..<marker.utf8CodeUnitCount where p[i + k] != m[k] { same = false; break }
            if same { return i }
            from = i + 1
        }
        return nil
    }
}

extension SquidParser {
    /// The URL's host of a line with a time, seven fields and a byte count (what `parse` requires), found a word at a time.
    public func requestHost(_ p: UnsafeMutableBufferPointer<UInt8>) -> Range<Int>? {
        var i = 0
        guard let time = FastScan.token(p, &i), ByteParsing.isSeconds(p, time),
              FastScan.token(p, &i) != nil, FastScan.token(p, &i) != nil, FastScan.token(p, &i) != nil,
              let bytes = FastScan.token(p, &i), ByteParsing.int(p, bytes) != nil,
              FastScan.token(p, &i) != nil, let url = FastScan.token(p, &i) else { return nil }
        let host = ByteParsing.urlHost(p, url).host
        return host.isEmpty ? nil : host
    }
}

extension CEFParser {
    /// The destination of a line without backslashes (escapes change what the fields are: those take `parse`), found by
    /// jumping from `|` to `|` and `=` to `=` a word at a time, reading only the keys that name a host, by the rules of
    /// `KeyValueScanner` and `KeyValueFields`: `dhost`, `host` and `dstHost` set the host, `request` and `url` set it
    /// from their URL when none is set yet, and `dst` stands in for a record that has none.
    public func requestHost(_ p: UnsafeMutableBufferPointer<UInt8>) -> Range<Int>? {
        guard !p.isEmpty, !FastScan.contains(UInt8(ascii: "\\"), p), var i = FastScan.find("CEF:", p) else { return nil }
        for _ in 0..<7 {
            guard let bar = FastScan.find(UInt8(ascii: "|"), p, from: i) else { return nil }
            i = bar + 1
        }
        var host: Range<Int>?, destinationIP: Range<Int>?
        @inline(__always)
        func apply(_ k: Range<Int>, _ v: Range<Int>) {
            switch k.count {
            case 3:
                if ByteParsing.equals(p, k, "dst") { destinationIP = v.isEmpty ? nil : v }
                else if ByteParsing.equals(p, k, "url"), !v.isEmpty, host == nil { host = ByteParsing.urlHost(p, v).host }
            case 4: if ByteParsing.equals(p, k, "host") { host = v.isEmpty ? nil : v }
            case 5: if ByteParsing.equals(p, k, "dhost") { host = v.isEmpty ? nil : v }
            case 7:
                if ByteParsing.equals(p, k, "dstHost") { host = v.isEmpty ? nil : v }
                else if ByteParsing.equals(p, k, "request"), !v.isEmpty, host == nil { host = ByteParsing.urlHost(p, v).host }
            default: break
            }
        }
        var key: Range<Int>?
        var valueStart = i
        while let equals = FastScan.find(UInt8(ascii: "="), p, from: i) {
            var k = equals
            while k > valueStart, p[k - 1] != ByteParsing.space { k -= 1 }
            if k < equals {
                if let previous = key { apply(previous, ByteParsing.trimmed(p, valueStart..<max(valueStart, k - 1))) }
                key = k..<equals
                valueStart = equals + 1
            }
            i = equals + 1
        }
        if let k = key { apply(k, ByteParsing.trimmed(p, valueStart..<p.count)) }
        return host ?? destinationIP
    }
}

extension ByteParsing {
    /// Whether `p[r]` is `name`'s bytes.
    @inline(__always)
    static func equals(_ p: UnsafeMutableBufferPointer<UInt8>, _ r: Range<Int>, _ name: StaticString) -> Bool {
        guard name.utf8CodeUnitCount == r.count else { return false }
        let s = name.utf8Start
        for n in 0..<r.count where p[r.lowerBound + n] != s[n] { return false }
        return true
    }

    /// Whether `seconds` would read `p[r]`: 1 to 18 digits, then optionally a dot and 1 to 18 digits.
    @inline(__always)
    static func isSeconds(_ p: UnsafeMutableBufferPointer<UInt8>, _ r: Range<Int>) -> Bool {
        var dot = r.upperBound
        var i = r.lowerBound
        while i < r.upperBound {
            let b = p[i]
            if b == UInt8(ascii: ".") { dot = i; break }
            guard b &- 48 < 10 else { return false }
            i += 1
        }
        guard (1...18).contains(dot - r.lowerBound) else { return false }
        if dot == r.upperBound { return true }
        guard (1...18).contains(r.upperBound - dot - 1) else { return false }
        for j in dot + 1..<r.upperBound where p[j] &- 48 >= 10 { return false }
        return true
    }
}
