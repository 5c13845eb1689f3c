public import Foundation
public import TesseraCore

/// Streams a proxy or firewall log into traffic records. A format with a fast path (Squid, CEF) goes through the block
/// scanner (`LogScanner`): a mapped file, or a read buffer, is classified 64 bytes at a time, each line's host found
/// with bit operations and looked up in the catalog's host table, so a request to a host that is no catalog app's is
/// only counted. Only a line to a catalog app, or one the fast path is unsure of, is parsed in place, and only requests
/// to catalog apps become records (attributed to a directory user when the log names one), written a batch per
/// transaction. A line that does not parse is counted and reported with its number, and the import goes on. Memory
/// stays one buffer (or the mapped pages not yet passed) and one batch whatever the file's size.
public struct TrafficImporter: Sendable {
    public let catalog: AICatalog
    public let tenant: String
    public let format: LogFormat
    public let mapping: CSVMapping?
    public let origin: String

    /// Records written per transaction.
    public static let batchSize = 1000

    public init(catalog: AICatalog, tenant: String, format: LogFormat, mapping: CSVMapping? = nil) {
        self.catalog = catalog; self.tenant = tenant; self.format = format; self.mapping = mapping
        self.origin = "import:\(format.rawValue)"
    }

    /// What an import did.
    public struct Summary: Sendable, Hashable {
        public var lines = 0
        public var bytes: Int64 = 0
        /// Lines that were requests (parsed), whatever their destination.
        public var requests = 0
        /// Requests to catalog apps, recorded.
        public var recorded = 0
        public var attributed = 0
        /// Requests to catalog apps older than the retention period: not recorded.
        public var expired = 0
        public var skipped = 0
        public var malformed = 0
        /// The first malformed lines (number and reason); all are counted and passed to `onMalformed`.
        public var malformedSamples: [Malformed] = []
        /// Records per catalog app id.
        public var apps: [String: Int] = [:]
        public init() {}
    }

    public struct Malformed: Sendable, Hashable {
        public var line: Int
        public var reason: String
    }

    static let sampleLimit = 20
    /// 10000-01-01T00:00:00Z: a request to a catalog app dated from then on is reported, not recorded.
    static let latestTime: Double = 253_402_300_800
    /// The most distinct user names remembered between lines.
    static let userCacheLimit = 100_000

    /// Imports from a file descriptor, writing records to `store` (nil: parse and match only, for measurements).
    /// `now` decides what is past retention; `onMalformed` hears of every line that does not parse as it is met.
    public func run(fd: Int32, store: (any DirectoryStore)?, users: UserAttribution, now: Date,
                    onMalformed: (Malformed) -> Void = { _ in }) async throws -> Summary {
        // One specialised loop per format: no dynamic dispatch per line.
        switch format {
        case .squid: return try await run(SquidParser(), fd: fd, store: store, users: users, now: now, onMalformed: onMalformed)
        case .w3c: return try await run(W3CParser(), fd: fd, store: store, users: users, now: now, onMalformed: onMalformed)
        case .cef: return try await run(CEFParser(), fd: fd, store: store, users: users, now: now, onMalformed: onMalformed)
        case .leef: return try await run(LEEFParser(), fd: fd, store: store, users: users, now: now, onMalformed: onMalformed)
        case .csv:
            guard let mapping else { throw ImportError(.badMapping, "--format csv needs --mapping FILE") }
            return try await run(CSVParser(mapping: mapping), fd: fd, store: store, users: users, now: now, onMalformed: onMalformed)
        }
    }

    /// `chunkSize` is the read buffer's size and the longest line: a line of that many bytes or more is reported and
    /// skipped.
    func run<Parser: LogParser>(_ parser: Parser, fd: Int32, store: (any DirectoryStore)?, users: UserAttribution, now: Date,
                                chunkSize: Int = LineReader.defaultChunkSize,
                                onMalformed: (Malformed) -> Void) async throws -> Summary {
        var parser = parser
        let input = try LogInput(fd: fd, bufferSize: chunkSize)
        let scanner = LogScanner(format: Parser.fastScan, maxLine: chunkSize)
        // A mapped file is read-only, and parsers rewrite lines with backslashes in place (unescaping): those are
        // copied here.
        let scratch = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: chunkSize)
        defer { scratch.deallocate() }
        var summary = Summary()
        var batch: [StoredObject] = []
        let cutoff = now.timeIntervalSince1970 - Double(TrafficLog.retentionDays) * 86_400
        let nowSeconds = now.timeIntervalSince1970
        var entry = LogEntry()
        var userCache = UserNameCache(limit: Self.userCacheLimit)
        // Records per catalog app, by index (the summary's dictionary is made once at the end).
        var appCounts = [Int](repeating: 0, count: catalog.apps.count)
        var ids = TransactionID()
        while let (bytes, final) = try input.next() {
            var from = 0
            var found: LogScanner.Found
            repeat {
                found = catalog.hosts.withTable { scanner.scan(bytes, from: &from, final: final, table: $0) }
                for scanned in found {
                    if scanned.truncated {
                        Self.note(&summary, Malformed(line: scanned.number, reason: "longer than \(chunkSize) bytes"), onMalformed)
                        continue
                    }
                    let line: UnsafeMutableBufferPointer<UInt8>
                    let inPlace = UnsafeBufferPointer(rebasing: bytes[scanned.range])
                    // Squid's and CEF's parsers (the formats with a fast path) write to a line only to undo a
                    // backslash escape: their lines without a backslash are read where they are, even on a read-only
                    // mapping (the copy cost a fifth of the import). Others (W3C's and CSV's quotes) get the copy.
                    if input.writable || (Parser.fastScan != nil
                        && (inPlace.isEmpty || memchr(inPlace.baseAddress!, Int32(UInt8(ascii: "\\")), inPlace.count) == nil)) {
                        line = UnsafeMutableBufferPointer(mutating: inPlace)
                    } else {
                        line = UnsafeMutableBufferPointer(rebasing: scratch[0..<scanned.range.count])
                        _ = line.initialize(from: bytes[scanned.range])
                    }
                    entry.reset()
                    switch parser.parse(line, into: &entry) {
                    case .skipped: summary.skipped += 1; continue
                    case .malformed(let reason): Self.note(&summary, Malformed(line: scanned.number, reason: reason), onMalformed); continue
                    case .entry: break
                    }
                    // The scanner looked up the host it found, which is the one the parser finds.
                    guard let hostRange = entry.host,
                          let app = scanned.app ?? catalog.appIndex(host: UnsafeBufferPointer(rebasing: line[hostRange])) else {
                        summary.requests += 1
                        continue
                    }
                    let time = entry.time ?? nowSeconds
                    // A record's time is a Graph DateTimeOffset (and its id holds the milliseconds): years up to 9999.
                    guard time < Self.latestTime else {
                        Self.note(&summary, Malformed(line: scanned.number, reason: "the time is after the year 9999"), onMalformed)
                        continue
                    }
                    summary.requests += 1
                    if time < cutoff { summary.expired += 1; continue }
                    // The user, from the field's bytes; a record is made (strings, URL, id) only when it is stored.
                    var user: UserAttribution.User?
                    if let name = entry.user, !name.isEmpty {
                        user = userCache.user(named: UnsafeBufferPointer(rebasing: line[name])) {
                            users.user(named: String(decoding: $0, as: UTF8.self))
                        }
                        if user != nil { summary.attributed += 1 }
                    }
                    summary.recorded += 1
                    appCounts[app] += 1
                    if store != nil {
                        var record = makeRecord(line, entry, app: app, time: time, id: ids.next(milliseconds: UInt64(max(0, time * 1000))))
                        if let user { record.userId = user.id; record.userPrincipalName = user.userPrincipalName }
                        batch.append(record.object)
                    }
                }
                if let store, batch.count >= Self.batchSize {
                    try await Self.write(batch, to: store)
                    batch.removeAll(keepingCapacity: true)
                }
            } while found.count == scanner.capacity
            input.consume(from)
        }
        if let store, !batch.isEmpty { try await Self.write(batch, to: store) }
        for (app, count) in appCounts.enumerated() where count > 0 { summary.apps[catalog.apps[app].id] = count }
        summary.lines = scanner.lines
        summary.requests += scanner.requests
        summary.bytes = input.bytesRead
        return summary
    }

    static func note(_ summary: inout Summary, _ bad: Malformed, _ onMalformed: (Malformed) -> Void) {
        summary.malformed += 1
        if summary.malformedSamples.count < sampleLimit { summary.malformedSamples.append(bad) }
        onMalformed(bad)
    }

    static func write(_ batch: [StoredObject], to store: any DirectoryStore) async throws {
        try await store.write { tx in for record in batch { try await tx.insert(record) } }
    }

    func makeRecord(_ line: UnsafeMutableBufferPointer<UInt8>, _ e: LogEntry, app index: Int, time: Double, id: String) -> TrafficRecord {
        let date = Date(timeIntervalSince1970: time)
        let host = (line.text(e.host) ?? "").lowercased()
        var record = TrafficRecord(transactionId: id, createdDateTime: date, tenantId: tenant,
                                   destinationFQDN: host, action: Self.action(verdict: UnsafeBufferPointer(rebasing: line[e.action ?? 0..<0])),
                                   sentBytes: e.sentBytes ?? 0, receivedBytes: e.receivedBytes ?? 0, origin: origin)
        record.loginUser = line.text(e.user)
        record.sourceIp = line.text(e.sourceIP)
        record.sourcePort = e.sourcePort
        record.destinationIp = line.text(e.destinationIP)
        record.destinationPort = e.port
        record.httpMethod = line.text(e.method)
        let path = line.text(e.path) ?? ""
        let scheme = e.port == 80 ? "http" : "https"
        let connect = record.httpMethod?.uppercased() == "CONNECT"
        record.destinationUrl = connect ? nil : "\(scheme)://\(host)\(path.hasPrefix("/") || path.isEmpty ? path : "/" + path)"
        let app = catalog.apps[index]
        record.application = .init(catalogId: app.id, name: app.name, category: app.category, score: catalog.scores[index],
                                   activity: connect ? .none : catalog.activity(app: index, host: host, path: path))
        return record
    }

    /// A log's verdict as Graph's `filteringPolicyAction`: denied, blocked, dropped… are `block`.
    static func action(_ raw: String?) -> TrafficRecord.Action {
        guard var raw else { return .allow }
        return raw.withUTF8 { action(verdict: $0) }
    }

    /// The same over the log's bytes (ASCII letters in any case), without making a string: it runs for every record.
    static func action(verdict v: UnsafeBufferPointer<UInt8>) -> TrafficRecord.Action {
        func has(_ word: StaticString) -> Bool {
            let w = word.utf8Start, n = word.utf8CodeUnitCount
            guard v.count >= n else { return false }
            outer: for start in 0...(v.count - n) {
                for k in 0..<n {
                    var b = v[start + k]
                    if b &- 65 < 26 { b |= 0x20 }
                    if b != w[k] { continue outer }
                }
                return true
            }
            return false
        }
        if has("denied") || has("block") || has("drop") || has("deny") || has("reject")
            || (v.count == 3 && (has("403") || has("407"))) { return .block }
        if has("alert") { return .alert }
        return .allow
    }
}
