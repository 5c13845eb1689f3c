import CLogScan

/// ArcSight Common Event Format: `CEF:Version|Vendor|Product|Version|Signature ID|Name|Severity|Extension`, after an
/// optional syslog header. In the header a `|` or `\` is escaped with a backslash; the extension is `key=value` pairs
/// separated by spaces, a value running to the space before the next `key=`, with `\=`, `\\`, `\n` and `\r` escaped.
public struct CEFParser: LogParser {
    public init() {}

    /// The block scanner reads this format itself (LogScanner).
    public static var fastScan: FastScanFormat? { .cef }

    /// The most pairs a line's extension may have for CLogScan's pair finder; a line with more is read by the loop.
    static let pairCapacity = 64

    public mutating func parse(_ p: UnsafeMutableBufferPointer<UInt8>, into e: inout LogEntry) -> ParseOutcome {
        if p.isEmpty { return .skipped }
        return Self.parsePairs(p, into: &e) ?? Self.parseByLoop(p, into: &e)
    }

    /// A line without backslashes (nearly all): its header and pairs found by CLogScan in one pass, 64 bytes at a
    /// time, then applied in order as `parseByLoop` applies them (which took about 600 ns a line, a fifth of a CEF
    /// import). nil, with `e` untouched, for a line with a backslash or more than `pairCapacity` pairs.
    @inline(__always)
    static func parsePairs(_ p: UnsafeMutableBufferPointer<UInt8>, into e: inout LogEntry) -> ParseOutcome? {
        let found = withUnsafeTemporaryAllocation(of: tessera_cef_pair.self, capacity: pairCapacity) { pairs in
            let count = tessera_cef_pairs(p.baseAddress, p.count, pairs.baseAddress, pairs.count)
            for pair in pairs[0..<max(0, Int(count))] {
                KeyValueFields.apply(p, key: Int(pair.key_start)..<Int(pair.key_end),
                                     value: Int(pair.value_start)..<Int(pair.value_end), into: &e)
            }
            return count
        }
        switch found {
        case -1: return .malformed("no CEF: header")
        case -2: return .malformed("the CEF header has fewer than 8 fields")
        case 0...: return destination(&e)
        default: return nil
        }
    }

    /// The line read byte by byte: escapes undone in place.
    static func parseByLoop(_ p: UnsafeMutableBufferPointer<UInt8>, into e: inout LogEntry) -> ParseOutcome {
        guard var i = ByteParsing.find(p, "CEF:") else { return .malformed("no CEF: header") }
        guard ByteParsing.skipHeaderFields(p, &i, 7) else { return .malformed("the CEF header has fewer than 8 fields") }
        KeyValueScanner.scan(p, from: i, separator: ByteParsing.space, into: &e)
        return destination(&e)
    }

    @inline(__always)
    static func destination(_ e: inout LogEntry) -> ParseOutcome {
        guard e.host != nil || e.destinationIP != nil else { return .malformed("no destination (dhost, request or dst)") }
        if e.host == nil { e.host = e.destinationIP }
        return .entry
    }
}

/// LEEF (IBM QRadar's Log Event Extended Format): `LEEF:1.0|Vendor|Product|Version|EventID|` then `key=value`
/// attributes separated by tabs; LEEF 2.0 adds a sixth header field naming the separator (a character, or its code as
/// `x5E`/`0x5E`, or `\t`). A separator or backslash inside a value is escaped with a backslash.
public struct LEEFParser: LogParser {
    public init() {}

    public mutating func parse(_ p: UnsafeMutableBufferPointer<UInt8>, into e: inout LogEntry) -> ParseOutcome {
        if p.isEmpty { return .skipped }
        guard var i = ByteParsing.find(p, "LEEF:") else { return .malformed("no LEEF: header") }
        let versionTwo = i + 5 < p.count && p[i + 5] == UInt8(ascii: "2")
        guard ByteParsing.skipHeaderFields(p, &i, 5) else { return .malformed("the LEEF header has fewer than 6 fields") }
        var separator = ByteParsing.tab
        if versionTwo {
            let start = i
            guard ByteParsing.skipHeaderFields(p, &i, 1) else { return .malformed("the LEEF 2.0 header has no separator field") }
            let field = start..<(i - 1)
            switch field.count {
            case 0: break
            case 1: separator = p[field.lowerBound]
            default:
                let text = p.text(field) ?? ""
                if text == "\\t" { separator = ByteParsing.tab }
                else if let code = UInt8(text.lowercased().drop(while: { $0 == "0" || $0 == "x" }), radix: 16) {
                    separator = code
                } else { return .malformed("the LEEF separator '\(text)' is not a character or x-hex code") }
            }
        }
        KeyValueScanner.scan(p, from: i, separator: separator, into: &e)
        guard e.host != nil || e.destinationIP != nil else { return .malformed("no destination (url, dhost or dst)") }
        if e.host == nil { e.host = e.destinationIP }
        return .entry
    }
}

/// `key=value` pairs: a value runs to the separator before the next unescaped `key=` (CEF, where the separator is a
/// space that values may contain) or to the next unescaped separator (LEEF).
enum KeyValueScanner {
    @inline(__always)
    static func scan(_ p: UnsafeMutableBufferPointer<UInt8>, from start: Int, separator: UInt8, into e: inout LogEntry) {
        let equals = UInt8(ascii: "="), backslash = UInt8(ascii: "\\")
        var key: Range<Int>? = nil
        var valueStart = start
        var i = start
        // Values escape their backslashes, so a key never holds one; LEEF values end at the separator.
        let strict = separator != ByteParsing.space
        while i < p.count {
            let b = p[i]
            if b == backslash { i += 2; continue }
            if strict, b == separator {
                if let k = key { emit(p, k, valueStart..<i, &e); key = nil }
                valueStart = i + 1
            } else if b == equals, !(strict && key != nil) {
                var k = i
                while k > valueStart, p[k - 1] != separator { k -= 1 }
                if k < i {
                    if let previous = key { emit(p, previous, ByteParsing.trimmed(p, valueStart..<max(valueStart, k - 1)), &e) }
                    key = k..<i
                    valueStart = i + 1
                }
            }
            i += 1
        }
        if let k = key { emit(p, k, ByteParsing.trimmed(p, valueStart..<min(i, p.count)), &e) }
    }

    @inline(__always)
    static func emit(_ p: UnsafeMutableBufferPointer<UInt8>, _ key: Range<Int>, _ value: Range<Int>, _ e: inout LogEntry) {
        KeyValueFields.apply(p, key: key, value: ByteParsing.unescape(p, value), into: &e)
    }
}
