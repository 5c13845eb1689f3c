public import Foundation

/// How a CSV log's columns map to a traffic record: `tessera traffic import --format csv --mapping FILE`. The file is
/// JSON: `{"delimiter": ",", "header": true, "time": "iso8601|epoch|epochMillis|ctime", "columns": {"time": "datetime",
/// "user": "login", "url": "eurl", …}}`; a column is named by its header or by its 1-based number. Fields:
/// time, user, sourceIP, sourcePort, host, url, path, port, destinationIP, method, action, sentBytes, receivedBytes.
public struct CSVMapping: Sendable, Decodable {
    public enum TimeFormat: String, Sendable, Decodable { case iso8601, epoch, epochMillis, ctime }
    public enum Field: String, Sendable, CaseIterable {
        case time, user, sourceIP, sourcePort, host, url, path, port, destinationIP, method, action, sentBytes, receivedBytes
    }

    public var delimiter: String
    public var header: Bool
    public var time: TimeFormat
    public var columns: [String: String]

    public init(delimiter: String = ",", header: Bool = true, time: TimeFormat = .iso8601, columns: [String: String]) {
        self.delimiter = delimiter; self.header = header; self.time = time; self.columns = columns
    }

    enum CodingKeys: String, CodingKey { case delimiter, header, time, columns }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        delimiter = try c.decodeIfPresent(String.self, forKey: .delimiter) ?? ","
        header = try c.decodeIfPresent(Bool.self, forKey: .header) ?? true
        time = try c.decodeIfPresent(TimeFormat.self, forKey: .time) ?? .iso8601
        columns = try c.decode([String: String].self, forKey: .columns)
    }

    /// Reads and checks a mapping file.
    public static func load(_ data: Data) throws(ImportError) -> CSVMapping {
        let mapping: CSVMapping
        do { mapping = try JSONDecoder().decode(CSVMapping.self, from: data) } catch {
            throw ImportError(.badMapping, "the mapping file is not valid: \(error)")
        }
        for key in mapping.columns.keys where Field(rawValue: key) == nil {
            throw ImportError(.badMapping, "unknown field '\(key)' (fields: \(Field.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard mapping.columns["host"] != nil || mapping.columns["url"] != nil else {
            throw ImportError(.badMapping, "the mapping names neither a host nor a url column")
        }
        guard mapping.delimiter.utf8.count == 1 else { throw ImportError(.badMapping, "the delimiter is one character") }
        if !mapping.header, let named = mapping.columns.values.first(where: { Int($0) == nil }) {
            throw ImportError(.badMapping, "without a header line columns are numbers, not '\(named)'")
        }
        return mapping
    }
}

/// CSV (RFC 4180: quoted fields, `""` for a quote inside one) read through a ``CSVMapping``.
public struct CSVParser: LogParser {
    private let mapping: CSVMapping
    private let delimiter: UInt8
    /// The field each column feeds, once the header (or the mapping's numbers) says.
    private var fields: [CSVMapping.Field?] = []
    private var ready = false
    private var values: [Range<Int>?] = []

    public init(mapping: CSVMapping) {
        self.mapping = mapping
        self.delimiter = mapping.delimiter.utf8.first ?? UInt8(ascii: ",")
        if !mapping.header { resolve(names: nil) }
    }

    private mutating func resolve(names: [String]?) {
        var byColumn: [Int: CSVMapping.Field] = [:]
        for (key, column) in mapping.columns {
            guard let field = CSVMapping.Field(rawValue: key) else { continue }
            if let n = Int(column) { byColumn[n - 1] = field }
            else if let names, let n = names.firstIndex(where: { $0.caseInsensitiveCompare(column) == .orderedSame }) { byColumn[n] = field }
        }
        let width = (byColumn.keys.max() ?? -1) + 1
        fields = (0..<width).map { byColumn[$0] }
        values = Array(repeating: nil, count: CSVMapping.Field.allCases.count)
        ready = true
    }

    public mutating func parse(_ p: UnsafeMutableBufferPointer<UInt8>, into e: inout LogEntry) -> ParseOutcome {
        if p.isEmpty { return .skipped }
        var i = 0, column = 0
        if !ready {
            var names: [String] = []
            while let r = next(p, &i) { names.append(p.text(r) ?? "") }
            resolve(names: names)
            for (key, column) in mapping.columns where Int(column) == nil && !names.contains(where: { $0.caseInsensitiveCompare(column) == .orderedSame }) {
                return .malformed("the header has no column '\(column)' for \(key)")
            }
            return .skipped
        }
        for n in values.indices { values[n] = nil }
        while column < fields.count, let r = next(p, &i) {
            if let field = fields[column] { values[Self.index(field)] = r.isEmpty ? nil : r }
            column += 1
        }
        guard column == fields.count else { return .malformed("\(column) columns where the mapping needs \(fields.count)") }
        func v(_ f: CSVMapping.Field) -> Range<Int>? { values[Self.index(f)] }
        if let t = v(.time) {
            let parsed: Double? = switch mapping.time {
            case .iso8601: ByteParsing.isoDate(p, t)
            case .epoch: ByteParsing.seconds(p, t)
            case .epochMillis: ByteParsing.int(p, t).map { Double($0) / 1000 }
            case .ctime: ByteParsing.ctime(p, t)
            }
            guard let parsed else { return .malformed("the time is not \(mapping.time.rawValue)") }
            e.time = parsed
        }
        e.user = v(.user); e.sourceIP = v(.sourceIP); e.destinationIP = v(.destinationIP); e.method = v(.method); e.action = v(.action)
        e.sourcePort = v(.sourcePort).flatMap { ByteParsing.int(p, $0) }.map(Int.init)
        if let url = v(.url) { ByteParsing.url(p, url, into: &e) }
        if let host = v(.host) { ByteParsing.url(p, host, into: &e, keepingHost: nil) }
        if let path = v(.path) { e.path = path }
        if let port = v(.port) { e.port = ByteParsing.int(p, port).map(Int.init) }
        if let sent = v(.sentBytes) { guard let n = ByteParsing.int(p, sent) else { return .malformed("sentBytes is not a number") }; e.sentBytes = n }
        if let received = v(.receivedBytes) {
            guard let n = ByteParsing.int(p, received) else { return .malformed("receivedBytes is not a number") }
            e.receivedBytes = n
        }
        guard let host = e.host, !host.isEmpty else { return .malformed("no host") }
        return .entry
    }

    private static func index(_ f: CSVMapping.Field) -> Int { CSVMapping.Field.allCases.firstIndex(of: f)! }

    /// The next field, unquoted in place; nil past the end of the line.
    private func next(_ p: UnsafeMutableBufferPointer<UInt8>, _ i: inout Int) -> Range<Int>? {
        guard i <= p.count else { return nil }
        let quote = UInt8(ascii: "\"")
        if i < p.count, p[i] == quote {
            let start = i + 1
            var read = start, write = start
            while read < p.count {
                if p[read] == quote {
                    if read + 1 < p.count, p[read + 1] == quote { p[write] = quote; write += 1; read += 2; continue }
                    break
                }
                p[write] = p[read]; write += 1; read += 1
            }
            i = read + 1
            while i < p.count, p[i] != delimiter { i += 1 }
            i += 1
            return start..<write
        }
        let start = i
        while i < p.count, p[i] != delimiter { i += 1 }
        defer { i += 1 }
        return start..<i
    }
}

extension ByteParsing {
    /// `Mon Jun 20 15:29:11 2022` (C's ctime, Zscaler's default `%s{time}`), UTC.
    static func ctime(_ p: UnsafeMutableBufferPointer<UInt8>, _ r: Range<Int>) -> Double? {
        let s = r.lowerBound
        guard r.count == 24, p[s + 3] == space, p[s + 7] == space, let month = monthNumber(p, s + 4) else { return nil }
        let dayStart = p[s + 8] == space ? s + 9 : s + 8
        guard let d = int(p, dayStart..<s + 10), let time = clock(p, s + 11..<s + 19), let y = int(p, s + 20..<s + 24),
              let day = days(year: y, month: month, day: d) else { return nil }
        return Double(day * 86_400) + time
    }
}
