import CLogScan

/// The formats whose lines the importer's block scanner reads itself (CLogScan: 64 bytes at a time into bitmasks of
/// the bytes that matter, each line's host found with bit operations and looked up in the catalog's host table), so
/// that a request to a host that is no catalog app's costs no call and no parse.
public enum FastScanFormat: Sendable {
    case squid, cef
}

/// A line the scanner hands back: its bytes (without the newline or a `\r` before it) in the buffer scanned.
struct ScannedLine {
    var range: Range<Int>
    /// The host the fast path found (a catalog host's when scanning with a table); nil when the parser must decide.
    var host: Range<Int>?
    /// The catalog app of `host` when scanning with a table (the scanner looked it up), else nil.
    var app: Int?
    /// The line's number in the input, from 1.
    var number: Int
    /// A line of the scanner's `maxLine` bytes or more: reported, not read.
    var truncated: Bool
}

/// Splits buffers into lines and runs the fast path of a format over them, keeping what one buffer leaves to the next
/// (the line count, a long line being skipped). The lines handed back are valid until the next scan.
final class LogScanner {
    let format: tessera_log_format
    let maxLine: Int
    private var state = tessera_log_state()
    private let found: UnsafeMutableBufferPointer<tessera_log_line>

    /// `maxLine`: the length from which a line is handed back truncated; `capacity`: the most lines a scan hands back.
    init(format: FastScanFormat?, maxLine: Int, capacity: Int = 1024) {
        switch format {
        case .squid: self.format = tessera_log_squid
        case .cef: self.format = tessera_log_cef
        case nil: self.format = tessera_log_lines
        }
        self.maxLine = maxLine
        found = .allocate(capacity: capacity)
    }

    deinit { found.deallocate() }

    /// Lines met so far.
    var lines: Int { Int(state.lines) }
    /// Lines the fast path found to be requests to hosts that are no catalog app's (counted, not handed back).
    var requests: Int { Int(state.requests) }
    /// The most lines one scan hands back.
    var capacity: Int { found.count }

    /// Scans `bytes[from...]` and moves `from` past what it handled; `final` when the input ends with `bytes`. With a
    /// `table` it hands back the lines the fast path is unsure of, those to catalog hosts and truncated ones;
    /// without one, every line (a host found or not). Fewer than `capacity` lines back means it went as far as it can.
    func scan(_ bytes: UnsafeBufferPointer<UInt8>, from: inout Int, final: Bool,
              table: UnsafePointer<tessera_host_table>?) -> Found {
        var at = from
        let count = tessera_log_scan(format, bytes.baseAddress, bytes.count, &at, final ? 1 : 0, maxLine, table, &state,
                                     found.baseAddress, found.count)
        from = at
        return Found(lines: UnsafeBufferPointer(rebasing: found[0..<count]))
    }

    /// The instructions scans use: the best the processor has (the default), or a given set, so that tests can compare
    /// them on the same input.
    enum Instructions: CaseIterable {
        case best, portable, sse2, avx2, avx512
    }

    /// Makes every later scan in the process use `instructions`; false, changing nothing, where they are missing.
    @discardableResult
    static func use(_ instructions: Instructions) -> Bool {
        switch instructions {
        case .best: tessera_log_scan_use(tessera_log_best) != 0
        case .portable: tessera_log_scan_use(tessera_log_portable) != 0
        case .sse2: tessera_log_scan_use(tessera_log_sse2) != 0
        case .avx2: tessera_log_scan_use(tessera_log_avx2) != 0
        case .avx512: tessera_log_scan_use(tessera_log_avx512) != 0
        }
    }

    /// The lines one scan handed back.
    struct Found: RandomAccessCollection {
        let lines: UnsafeBufferPointer<tessera_log_line>
        var startIndex: Int { 0 }
        var endIndex: Int { lines.count }

        subscript(i: Int) -> ScannedLine {
            let l = lines[i]
            let host = l.kind == Int32(tessera_log_host.rawValue)
            return ScannedLine(range: Int(l.start)..<Int(l.end), host: host ? Int(l.host_start)..<Int(l.host_end) : nil,
                               app: host && l.app >= 0 ? Int(l.app) : nil, number: Int(l.number), truncated: l.kind == Int32(tessera_log_truncated.rawValue))
        }
    }
}

extension LogParser {
    /// The fast path's host for one line (the block scanner run over it alone): the host `parse` reports for a line it
    /// certainly parses as a request, or nil. A line that still ends in `\r` is left to `parse` (the scanner reads a
    /// `\r` before the end of the data as part of the line ending).
    public func requestHost(_ line: UnsafeMutableBufferPointer<UInt8>) -> Range<Int>? {
        guard let format = Self.fastScan, line.last != 13 else { return nil }
        let scanner = LogScanner(format: format, maxLine: Int.max, capacity: 1)
        var from = 0
        return scanner.scan(UnsafeBufferPointer(line), from: &from, final: true, table: nil).first?.host
    }
}
