/// Squid's native `access.log` (logformat `squid`):
/// `time.ms elapsed client result/status bytes method URL user hierarchy/peer type`, e.g.
/// `1733472000.123    245 10.0.0.5 TCP_TUNNEL/200 5230 CONNECT api.openai.com:443 alice HIER_DIRECT/104.18.7.192 -`.
/// `bytes` is what Squid sent the client; the native format does not log the request's size.
public struct SquidParser: LogParser {
    public init() {}

    /// The block scanner reads this format itself (LogScanner).
    public static var fastScan: FastScanFormat? { .squid }

    public mutating func parse(_ p: UnsafeMutableBufferPointer<UInt8>, into e: inout LogEntry) -> ParseOutcome {
        var i = 0
        guard let time = ByteParsing.token(p, &i) else { return .skipped }
        guard let t = ByteParsing.seconds(p, time) else { return .malformed("the time is not seconds since 1970") }
        e.time = t
        guard ByteParsing.token(p, &i) != nil, let client = ByteParsing.token(p, &i), let result = ByteParsing.token(p, &i),
              let bytes = ByteParsing.token(p, &i), let method = ByteParsing.token(p, &i), let url = ByteParsing.token(p, &i)
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
        e.user = ByteParsing.value(p, ByteParsing.token(p, &i))
        if let peer = ByteParsing.token(p, &i) {
            var s = peer.lowerBound
            while s < peer.upperBound, p[s] != ByteParsing.slash { s += 1 }
            e.destinationIP = ByteParsing.value(p, s + 1 < peer.upperBound ? (s + 1)..<peer.upperBound : nil)
        }
        return .entry
    }
}
