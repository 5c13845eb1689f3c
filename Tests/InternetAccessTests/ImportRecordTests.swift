import Foundation
import Store
import Testing
import TesseraCore
@testable import InternetAccess

/// Records as the importer writes them (the scanner's app, users remembered by their names' bytes, records made only
/// when stored) against records made line by line from the full parse, with each user field's text attributed afresh.
extension BlockScanTests {
    /// Users for the corpus: user0…user99 by UPN, most with a sAMAccountName; user7's is shared by two users (ambiguous).
    static let corpusUsers: UserAttribution = {
        var users: [(UserAttribution.User, String?)] = []
        for n in 0..<100 {
            users.append((UserAttribution.User(id: "u\(n)", userPrincipalName: "user\(n)@contoso.test"), n % 3 == 0 ? nil : "user\(n)"))
        }
        users.append((UserAttribution.User(id: "twin", userPrincipalName: "twin@fabrikam.test"), "user7"))
        users.append((UserAttribution.User(id: "alice", userPrincipalName: "alice@contoso.test"), "alice"))
        return UserAttribution(users: users)
    }()

    /// User fields meant to trip a cache keyed by bytes: case, domains, names that share their length and first and
    /// last eight bytes, invalid UTF-8, non-ASCII letters, an ambiguous name.
    static let userNames: [[UInt8]] = [
        Array("alice".utf8), Array("ALICE".utf8), Array("Alice@contoso.test".utf8), Array("CONTOSO\\alice".utf8),
        Array("alice@other.test".utf8), Array("user7".utf8), Array("user4@contoso.test".utf8), Array("USER4@CONTOSO.TEST".utf8),
        Array("userAAAA1AAAAuser".utf8), Array("userAAAA2AAAAuser".utf8), Array("user12345678user".utf8), Array("user12345679user".utf8),
        [0x61, 0x6C, 0xFF, 0x69, 0x63, 0x65], [0x61, 0x6C, 0xFE, 0x69, 0x63, 0x65], Array("ålice".utf8), Array("Ålice".utf8),
        Array("user99".utf8), Array("user100".utf8), Array("u".utf8),
    ]

    /// The corpus with lines whose user fields are `userNames`, each several times.
    static func recordCorpus(_ format: FastScanFormat, seed: UInt64) -> [UInt8] {
        var text = ScanCorpus.text(format, count: 1200, seed: seed, openEnd: false)
        for round in 0..<3 {
            for (n, name) in userNames.enumerated() {
                let host = ["claude.ai", "api.openai.com", "chat.deepseek.com"][(n + round) % 3]
                let head = format == .squid
                    ? "17650152\(10 + n).5 12 10.0.0.\(n) TCP_MISS/200 \(100 + n) GET http://\(host)/p\(n) "
                    : "CEF:0|Contoso|Proxy|1.0|web|Allowed|3|rt=17650152\(10 + n)000 src=10.0.0.\(n) dhost=\(host) suser="
                text += Array(head.utf8) + name + Array((format == .squid ? " HIER_DIRECT/1.2.3.4 -\n" : " act=allow\n").utf8)
            }
        }
        return text
    }

    /// A record's stored body without its transaction id (random), as comparable text.
    static func comparable(_ body: [String: JSONValue]) -> String {
        var body = body
        body["transactionId"] = nil
        return JSONValue.object(body).serialized
    }

    /// The records made line by line: every line fully parsed, its host looked up, its user field's text attributed.
    static func referenceRecords(_ text: [UInt8], _ parser: some LogParser, importer: TrafficImporter, now: Date) -> [String] {
        var parser = parser
        let users = corpusUsers
        var records: [String] = []
        for line in ScanCorpus.reference(text, maxLine: 1 << 20) {
            guard var bytes = line.text else { continue }
            bytes.withUnsafeMutableBufferPointer { p in
                var e = LogEntry()
                guard parser.parse(p, into: &e) == .entry, let host = e.host,
                      let app = importer.catalog.appIndex(host: UnsafeBufferPointer(rebasing: p[host])) else { return }
                let time = e.time ?? now.timeIntervalSince1970
                guard time < TrafficImporter.latestTime,
                      time >= now.timeIntervalSince1970 - Double(TrafficLog.retentionDays) * 86_400 else { return }
                var record = importer.makeRecord(p, e, app: app, time: time, id: "x")
                if let name = record.loginUser, let user = users.user(named: name) {
                    record.userId = user.id
                    record.userPrincipalName = user.userPrincipalName
                }
                records.append(comparable(record.body))
            }
        }
        return records.sorted()
    }

    @Test("the records an import stores are those the full parse makes line by line, users attributed by their names' text, under each instruction set",
          arguments: [FastScanFormat.squid, .cef])
    func storedRecordsAsTheFullParseMakesThem(_ format: FastScanFormat) async throws {
        defer { LogScanner.use(.best) }
        let text = Self.recordCorpus(format, seed: 17)
        let now = Date(timeIntervalSince1970: 1_765_015_300)
        let importer = TrafficImporter(catalog: try AICatalog.bundled(year: 2026), tenant: "t", format: format == .squid ? .squid : .cef)
        let reference = format == .squid ? Self.referenceRecords(text, SquidParser(), importer: importer, now: now)
                                         : Self.referenceRecords(text, CEFParser(), importer: importer, now: now)
        #expect(reference.count > 300)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-records-\(UUID().uuidString)")
        try Data(text).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        var sets = 0
        for instructions in LogScanner.Instructions.allCases where LogScanner.use(instructions) {
            sets += 1
            let store = try await SQLDirectoryStore.open(":memory:")
            try await store.migrate()
            let fd = open(file.path, O_RDONLY)
            let summary = try await importer.run(fd: fd, store: store, users: Self.corpusUsers, now: now)
            close(fd)
            let stored = try await TrafficLog.list(tenant: "t", store: store, filter: nil, limit: 100_000)
            try await store.shutdown()
            let records = stored.map { Self.comparable($0.body) }.sorted()
            #expect(records.count == reference.count, "\(instructions)")
            #expect(records == reference, "\(instructions): \(zip(records, reference).first { $0 != $1 }.map { "\($0)\n\($1)" } ?? "")")
            #expect(summary.recorded == reference.count)
            #expect(summary.attributed == reference.filter { $0.contains("\"userId\":\"") }.count)
            // Without a store the import counts the same.
            let again = open(file.path, O_RDONLY)
            let counted = try await importer.run(fd: again, store: nil, users: Self.corpusUsers, now: now)
            close(again)
            #expect(counted == summary, "\(instructions)")
        }
        #expect(sets >= 2)
    }

    @Test("CEF keys read from the bytes before each `=` (`st`, `rl`, a space, an `=`) are found at every offset of a 64-byte block, under each instruction set")
    func cefKeysAcrossBlocks() {
        defer { LogScanner.use(.best) }
        let probes: [(String, String?)] = [
            ("CEF:0|Contoso|Proxy|1.0|web|Allowed|3|src=10.0.0.1 dhost=claude.ai request=https://poe.com/ suser=a", "claude.ai"),
            ("CEF:0|Contoso|Proxy|1.0|web|Allowed|3|src=10.0.0.1 x=dhost=claude.ai suser=a", "claude.ai"),
            ("CEF:0|Contoso|Proxy|1.0|web|Allowed|3|src=10.0.0.1 url=http://claude.ai/x act=allow", "claude.ai"),
            ("CEF:0|Contoso|Proxy|1.0|web|Allowed|3|msg=a =dhost=claude.ai dst=1.2.3.4", "1.2.3.4"),
            ("CEF:0|Contoso|Proxy|1.0|web|Allowed|3|src=10.0.0.1 dhost=claude.ai b=c== suser=a", nil),
            // Keys ending in `st` or `rl` in the header and before the host's; `CEF:` past the first 64 bytes.
            ("CEF:0|st=1|rl=2|Proxy|1.0|web|3|xst=1 curl=2 ast=3 dhost=claude.ai request=https://poe.com/", "claude.ai"),
            ("<134>Dec  6 10:00:00 firewall-number-one.internal.example.org.long CEF:0|C|Proxy|1.0|web|Allowed|3|dhost=poe.com", "poe.com"),
            // A URL sets the host only while none is set; a later empty host unsets it.
            ("CEF:0|Contoso|Proxy|1.0|web|Allowed|3|dhost= request=https://claude.ai/x suser=a", "claude.ai"),
            ("CEF:0|Contoso|Proxy|1.0|web|Allowed|3|dhost=poe.com request=https://claude.ai/ dhost= suser=a", nil),
            ("CEF:0|Contoso|Proxy|1.0|web|Allowed|3|request=https://claude.ai/x dhost=poe.com url=http://x.ai/", "poe.com"),
        ]
        var sets = 0
        for instructions in LogScanner.Instructions.allCases where LogScanner.use(instructions) {
            sets += 1
            for (probe, host) in probes {
                var wrong: [Int] = []
                for shift in 0..<140 {
                    // A filler line of `shift` bytes puts the probe at `shift + 1`.
                    let filler = shift == 0 ? [] : Array(repeating: UInt8(ascii: "#"), count: shift - 1) + [10]
                    let lines = Self.scan(filler + Array(probe.utf8), .cef, maxLine: 1 << 20, piece: 1 << 20)
                    if lines.last?.host.map({ String(decoding: $0, as: UTF8.self) }) != host { wrong.append(shift) }
                }
                #expect(wrong.isEmpty, "\(instructions) \(probe): \(wrong.prefix(10))")
            }
        }
        #expect(sets >= 2)
    }

    @Test("mapped logs whose parsers rewrite lines (W3C's quoted values, CEF's escapes) are parsed from a copy, not the read-only mapping")
    func mappedLinesRewrittenFromACopy() async throws {
        let now = Date(timeIntervalSince1970: 1_765_015_300)
        let users = UserAttribution(users: [(UserAttribution.User(id: "1", userPrincipalName: "alice@contoso.test"), "alice")])
        let logs: [(LogFormat, String)] = [
            (.w3c, "#Fields: date time c-ip cs-username cs-host cs-uri-stem cs(User-Agent)\n"
                + "2025-12-06 10:00:05 10.0.0.5 \"alice\" claude.ai /x \"Mozilla \"\"5\"\"\"\n"
                + "2025-12-06 10:00:06 10.0.0.5 \"CONTOSO\\alice\" \"api.openai.com\" /v1 -\n"),
            (.cef, "CEF:0|Contoso|Proxy|1.0|web|Allowed|3|rt=1765015205000 dhost=claude.ai suser=CONTOSO\\\\alice msg=a\\=b\n"
                + "CEF:0|Contoso|Pro\\|xy|1.0|web|Allowed|3|rt=1765015206000 dhost=api.openai.com suser=alice\n"),
        ]
        for (format, text) in logs {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-quoted-\(UUID().uuidString)")
            try Data(text.utf8).write(to: file)
            defer { try? FileManager.default.removeItem(at: file) }
            let fd = open(file.path, O_RDONLY)
            defer { close(fd) }
            let importer = TrafficImporter(catalog: try AICatalog.bundled(year: 2026), tenant: "t", format: format)
            let summary = try await importer.run(fd: fd, store: nil, users: users, now: now)
            #expect(summary.malformed == 0 && summary.recorded == 2 && summary.attributed == 2, "\(format): \(summary)")
            #expect(summary.apps == ["anthropic-claude": 1, "openai-api": 1], "\(format)")
        }
    }

    @Test("the user-name cache answers as the names' text does, resolving each name once until it is full, then starting again")
    func userNameCache() {
        let users = Self.corpusUsers
        var cache = UserNameCache(limit: 7)
        var resolved = 0
        var names = Self.userNames
        for n in 0..<40 { names.append(Array("user\(n)".utf8)); names.append(Array("USER\(n)@contoso.test".utf8)) }
        for round in 0..<3 {
            var wrong: [String] = []
            for name in names {
                let expected = users.user(named: String(decoding: name, as: UTF8.self))
                let found = name.withUnsafeBufferPointer { b in
                    cache.user(named: b) { resolved += 1; return users.user(named: String(decoding: $0, as: UTF8.self)) }
                }
                if found != expected { wrong.append("\(round): \(String(decoding: name, as: UTF8.self))") }
                #expect(cache.count <= 7)
            }
            #expect(wrong.isEmpty, "\(wrong.prefix(5))")
        }
        // A cache that holds them all resolves each name once, however often it is met.
        var big = UserNameCache(limit: 1000)
        resolved = 0
        for _ in 0..<5 {
            for name in names {
                _ = name.withUnsafeBufferPointer { b in
                    big.user(named: b) { resolved += 1; return users.user(named: String(decoding: $0, as: UTF8.self)) }
                }
            }
        }
        #expect(resolved == Set(names).count)
        // Names with the same length and first and last eight bytes are told apart.
        func hash(_ name: String) -> UInt64 { Array(name.utf8).withUnsafeBufferPointer { UserNameCache.hash($0) } }
        #expect(hash("userAAAA1AAAAuser") != hash("userAAAA2AAAAuser"))
    }
}
