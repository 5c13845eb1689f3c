/// The W3C extended log file format (IIS, Microsoft Forefront/TMG, Blue Coat/Symantec ProxySG, Zscaler's W3C
/// option): `#Fields:` names the columns of the lines after it; values are separated by spaces or tabs, `-` is empty,
/// values with spaces are in double quotes (a quote inside doubled). A `#Fields` line can come again mid-file.
public struct W3CParser: LogParser {
    private enum Column { case date, time, clientIP, user, method, uri, uriStem, uriQuery, host, port, serverIP, status, action,
                          sentBytes, receivedBytes, other }
    private var columns: [Column] = []

    public init() {}

    public mutating func parse(_ p: UnsafeMutableBufferPointer<UInt8>, into e: inout LogEntry) -> ParseOutcome {
        if p.isEmpty { return .skipped }
        if p[0] == UInt8(ascii: "#") {
            let line = String(decoding: UnsafeBufferPointer(p), as: UTF8.self)
            if line.hasPrefix("#Fields:") {
                columns = line.dropFirst(8).split(whereSeparator: { $0 == " " || $0 == "\t" }).map { Self.column(String($0)) }
            }
            return .skipped
        }
        guard !columns.isEmpty else { return .malformed("a record before any #Fields line") }
        var i = 0, n = 0
        var date: Range<Int>?, time: Range<Int>?, stem: Range<Int>?, query: Range<Int>?, uri: Range<Int>?
        while n < columns.count {
            guard let field = Self.field(p, &i) else { break }
            let value = ByteParsing.value(p, field)
            switch columns[n] {
            case .date: date = value
            case .time: time = value
            case .clientIP: e.sourceIP = value
            case .user: e.user = value
            case .method: e.method = value
            case .uri: uri = value
            case .uriStem: stem = value
            case .uriQuery: query = value
            case .host: e.host = value
            case .port: e.port = value.flatMap { ByteParsing.int(p, $0) }.map(Int.init)
            case .serverIP: e.destinationIP = value
            case .action: e.action = value
            case .status: if e.action == nil { e.action = value }
            case .sentBytes: e.sentBytes = value.flatMap { ByteParsing.int(p, $0) }
            case .receivedBytes: e.receivedBytes = value.flatMap { ByteParsing.int(p, $0) }
            case .other: break
            }
            n += 1
        }
        guard n == columns.count else { return .malformed("\(n) fields where #Fields names \(columns.count)") }
        if let date, let time {
            guard let day = ByteParsing.isoDay(p, date), let seconds = ByteParsing.clock(p, time) else {
                return .malformed("the date or time is not YYYY-MM-DD HH:MM:SS")
            }
            e.time = day + seconds
        }
        if let uri {
            let host = e.host
            ByteParsing.url(p, uri, into: &e)
            if let host { e.host = host }
        } else if let stem {
            if e.host == nil { ByteParsing.url(p, stem, into: &e) } else { e.path = stem }
        }
        if e.path == nil, let query { e.path = query }
        guard let host = e.host, !host.isEmpty else { return .malformed("no host (cs-host, cs(Host) or a full cs-uri)") }
        return .entry
    }

    /// The next field: a quoted string (quotes removed, doubled quotes undoubled in place) or a run of non-blanks.
    static func field(_ p: UnsafeMutableBufferPointer<UInt8>, _ i: inout Int) -> Range<Int>? {
        while i < p.count, p[i] == ByteParsing.space || p[i] == ByteParsing.tab { i += 1 }
        guard i < p.count else { return nil }
        guard p[i] == UInt8(ascii: "\"") else { return ByteParsing.token(p, &i) }
        let start = i + 1
        var read = start, write = start
        while read < p.count {
            if p[read] == UInt8(ascii: "\"") {
                if read + 1 < p.count, p[read + 1] == UInt8(ascii: "\"") { p[write] = p[read]; write += 1; read += 2; continue }
                break
            }
            p[write] = p[read]; write += 1; read += 1
        }
        i = read + 1
        return start..<write
    }

    private static func column(_ name: String) -> Column {
        switch name.lowercased() {
        case "date": .date
        case "time": .time
        case "c-ip": .clientIP
        case "cs-username", "cs-user", "cs-userdn": .user
        case "cs-method": .method
        case "cs-uri", "cs(uri)": .uri
        case "cs-uri-stem": .uriStem
        case "cs-uri-query": .uriQuery
        case "cs-host", "cs(host)", "r-host", "cs-uri-host": .host
        case "s-port", "cs-uri-port", "r-port": .port
        case "s-ip", "r-ip", "r-supplier-ip": .serverIP
        case "sc-status": .status
        case "s-action", "x-action": .action
        case "cs-bytes": .sentBytes
        case "sc-bytes": .receivedBytes
        default: .other
        }
    }
}

extension ByteParsing {
    /// `YYYY-MM-DD` as seconds since 1970.
    static func isoDay(_ p: UnsafeMutableBufferPointer<UInt8>, _ r: Range<Int>) -> Double? {
        let s = r.lowerBound
        guard r.count == 10, p[s + 4] == UInt8(ascii: "-"), p[s + 7] == UInt8(ascii: "-"), let y = int(p, s..<s + 4),
              let m = int(p, s + 5..<s + 7), let d = int(p, s + 8..<s + 10), let day = days(year: y, month: m, day: d) else { return nil }
        return Double(day * 86_400)
    }
}
