/// One request as a log line tells it. Text fields are byte ranges into the line (parsers unescape in place), so a
/// line that goes to no catalog app costs no allocation.
public struct LogEntry: Sendable {
    /// Seconds since 1970, UTC.
    public var time: Double?
    public var user: Range<Int>?
    public var sourceIP: Range<Int>?
    public var sourcePort: Int?
    public var host: Range<Int>?
    public var destinationIP: Range<Int>?
    public var port: Int?
    /// The request path (with its query), `/` when the log has none (a CONNECT).
    public var path: Range<Int>?
    public var method: Range<Int>?
    public var action: Range<Int>?
    /// Bytes from the client to the destination, and back.
    public var sentBytes: Int64?
    public var receivedBytes: Int64?

    public init() {}

    mutating func reset() { self = LogEntry() }
}

/// What a parser made of a line.
public enum ParseOutcome: Sendable, Equatable {
    case entry
    /// A header, comment or blank line: not an error, not a request.
    case skipped
    case malformed(String)
}

/// A log format's parser: fills `entry` from one line (without its newline), which it may rewrite in place.
public protocol LogParser {
    mutating func parse(_ line: UnsafeMutableBufferPointer<UInt8>, into entry: inout LogEntry) -> ParseOutcome

    /// The importer's fast path for this format, if it has one: the block scanner finds each line's host (the host
    /// `parse` would report for a line that it certainly parses as a request) without parsing the rest, and only a
    /// line to a catalog app's host, or one the scanner is unsure of (a header, a malformed or escaped line), is then
    /// parsed, so nearly every line of a proxy log costs only a few bit operations. nil: every line takes `parse`.
    static var fastScan: FastScanFormat? { get }
}

extension LogParser {
    public static var fastScan: FastScanFormat? { nil }
}

/// The formats `tessera traffic import` reads.
public enum LogFormat: String, Sendable, CaseIterable {
    case squid, w3c, cef, leef, csv
}

extension UnsafeMutableBufferPointer<UInt8> {
    /// The text of a range of the line.
    func text(_ range: Range<Int>?) -> String? {
        guard let range, !range.isEmpty else { return nil }
        return String(decoding: UnsafeBufferPointer(rebasing: self[range]), as: UTF8.self)
    }
}
