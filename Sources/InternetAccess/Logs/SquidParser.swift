import CLogScan

/// Squid's native `access.log` (logformat `squid`):
/// `time.ms elapsed client result/status bytes method URL user hierarchy/peer type`, e.g.
/// `1733472000.123    245 10.0.0.5 TCP_TUNNEL/200 5230 CONNECT api.openai.com:443 alice HIER_DIRECT/104.18.7.192 -`.
/// `bytes` is what Squid sent the client; the native format does not log the request's size.
public struct SquidParser: LogParser {
    public init() {}

    /// The block scanner reads this format itself (LogScanner).
    public static var fastScan: FastScanFormat? { .squid }

    /// The most fields a line's parse reads.
    static let fields = 9

    /// The line's fields found by CLogScan, 64 bytes at a time (the byte loop took about half of a kept line's parse).
    public mutating func parse(_ p: UnsafeMutableBufferPointer<UInt8>, into e: inout LogEntry) -> ParseOutcome {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 2 * Self.fields) { bounds in
            let count = tessera_line_tokens(p.baseAddress, p.count, bounds.baseAddress, Self.fields)
            var n = 0
            return Self.read(p, into: &e) {
                guard n < count else { return nil }
                defer { n += 1 }
                return Int(bounds[2 * n])..<Int(bounds[2 * n + 1])
            }
        }
    }

    /// The line's fields found byte by byte.
    static func parseByLoop(_ p: UnsafeMutableBufferPointer<UInt8>, into e: inout LogEntry) -> ParseOutcome {
        var i = 0
        return read(p, into: &e) { ByteParsing.token(p, &i) }
    }

    /// The entry from the line's fields in order (`next`: the next run of bytes other than spaces and tabs, or nil).
    @inline(__always)
    static func read(_ p: UnsafeMutableBufferPointer<UInt8>, into e: inout LogEntry, next: () -> Range<Int>?) -> ParseOutcome {
        guard let time = next() else { return .skipped }
        guard let t = ByteParsing.seconds(p, time) else { return .malformed("the time is not seconds since 1970") }
        e.time = t
        guard next() != nil, let client = next(), let result = next(),
              let bytes = next(), let method = next(), let url = next()
        else { return .malformed("fewer than 7 fields") }
        e.sourceIP = client
        // TCP_DENIED/403: the action is what follows the slash's left side.
        var slash = result.lowerBound
        while slash < result.upperBound, p[slash] != ByteParsing.slash { slash += 1 }
        e.action = result.lowerBound..<slash
        guard let size = ByteParsing.int(p, bytes) else { return .malformed("the byte count is not a number") }
        e.receivedBytes = size
        e.method = method
        ByteParsing.url(p, url, into: &e)
        if e.host?.isEmpty ?? true { return .malformed("the URL has no host") }
        e.user = ByteParsing.value(p, next())
        if let peer = next() {
            var s = peer.lowerBound
            while s < peer.upperBound, p[s] != ByteParsing.slash { s += 1 }
            e.destinationIP = ByteParsing.value(p, s + 1 < peer.upperBound ? (s + 1)..<peer.upperBound : nil)
        }
        return .entry
    }
}
