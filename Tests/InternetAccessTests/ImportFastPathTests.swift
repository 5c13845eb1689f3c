import Foundation
import Testing
@testable import InternetAccess

/// A parser without the fast path (`requestHost` is the protocol's nil): every line takes `parse`.
struct FullParse<Inner: LogParser>: LogParser {
    var inner: Inner
    mutating func parse(_ line: UnsafeMutableBufferPointer<UInt8>, into entry: inout LogEntry) -> ParseOutcome {
        inner.parse(line, into: &entry)
    }
}

/// What the fast path found in a line, and what `parse` made of the same line.
struct FastAndFull {
    var fast: String?
    var outcome: ParseOutcome
    var host: String?

    static func run(_ parser: some LogParser, _ line: String) -> FastAndFull {
        var parser = parser
        var bytes = Array(line.utf8)
        return bytes.withUnsafeMutableBufferPointer { p in
            let fast = parser.requestHost(p).map { String(decoding: UnsafeBufferPointer(rebasing: p[$0]), as: UTF8.self) }
            #expect(Array(UnsafeBufferPointer(p)) == Array(line.utf8), "the fast path changed the line")
            var e = LogEntry()
            let outcome = parser.parse(p, into: &e)
            let host = e.host.map { String(decoding: UnsafeBufferPointer(rebasing: p[$0]), as: UTF8.self) }
            return FastAndFull(fast: fast, outcome: outcome, host: host)
        }
    }
}

@Suite("Traffic import fast path")
struct ImportFastPathTests {
    /// Lines the fast path takes (true) or leaves to `parse` (false); either way the verdict must be `parse`'s.
    static let squidLines: [(String, Bool)] = [
        ("1765015200.123    245 10.0.0.5 TCP_TUNNEL/200 5230 CONNECT api.openai.com:443 alice HIER_DIRECT/104.18.7.192 -", true),
        ("1765015200.123 245 10.0.0.5 TCP_MISS/200 5230 GET http://www.site12.example/page/9 user1 HIER_DIRECT/93.184.1.1 text/html", true),
        ("1765015200\t245\t10.0.0.5\tTCP_MISS/200\t5230\tGET\thttps://API.OpenAI.com:8443/v1?x=1\t-", true),
        ("   1765015200 1 10.0.0.1 TCP_MISS/200 1 GET http://claude.ai?q", true),
        ("1765015200.1 1 10.0.0.1 TCP_MISS/200 1 GET a.example/ends-without-more-fields", true),
        ("1765015200.1 1 10.0.0.1 TCP_MISS/200 1 GET http:///no-host - HIER_NONE/- -", false),
        ("notatime 1 10.0.0.1 TCP_MISS/200 1 GET http://a.test/ - HIER_NONE/- -", false),
        ("1765015200. 1 10.0.0.1 TCP_MISS/200 1 GET http://a.test/ - HIER_NONE/- -", false),
        ("1765015200.1.2 1 10.0.0.1 TCP_MISS/200 1 GET http://a.test/ - HIER_NONE/- -", false),
        (".5 1 10.0.0.1 TCP_MISS/200 1 GET http://a.test/ - HIER_NONE/- -", false),
        ("1234567890123456789.5 1 10.0.0.1 TCP_MISS/200 1 GET http://a.test/ - HIER_NONE/- -", false),
        ("123456789012345678.123456789012345678 1 10.0.0.1 TCP_MISS/200 1 GET http://a.test/ - HIER_NONE/- -", true),
        ("1765015200.1 1 10.0.0.1 TCP_MISS/200", false),
        ("1765015200.1 1 10.0.0.1 TCP_MISS/200 12x GET http://a.test/ - HIER_NONE/- -", false),
        ("1765015200.1 1 10.0.0.1 TCP_MISS/200 1234567890123456789 GET http://a.test/ - HIER_NONE/- -", false),
        ("", false),
        ("    \t ", false),
    ]

    static let cefLines: [(String, Bool)] = [
        ("<134>Dec  6 10:00:00 fw01 CEF:0|Contoso|Proxy|1.0|web|Allowed|3|rt=1765015200000 src=10.0.0.5 spt=41000 dhost=www.site7.example "
            + "dpt=443 request=https://www.site7.example/page/1 requestMethod=GET suser=user1 out=100 in=200 act=allow", true),
        ("CEF:0|Contoso|Proxy|1.0|web|Allowed|3|request=https://a.example/x dhost=API.OPENAI.COM", true),
        ("CEF:0|Contoso|Proxy|1.0|web|Allowed|3|dhost= request=https://api.openai.com/v1/x", true),
        ("CEF:0|Contoso|Proxy|1.0|web|Allowed|3|url=http://claude.ai?x=1 request=https://poe.com/", true),
        ("CEF:0|Contoso|Proxy|1.0|web|Allowed|3|dst=104.18.7.192 act=allow", true),
        ("CEF:0|Contoso|Proxy|1.0|web|Allowed|3|dhost=chat.deepseek.com   suser=alice smith", true),
        ("CEF:0|Contoso|Proxy|1.0|web|Allowed|3|dstHost=poe.com host=www.example.com", true),
        // `x=` starts a key, so dhost is empty: no destination, which parse reports.
        ("CEF:0|Contoso|Proxy|1.0|web|Allowed|3|msg=a = b dhost=x=y.example", false),
        ("CEF:0|Contoso|Proxy|1.0|web|Allowed|3|msg=a = b dhost=claude.ai", true),
        ("CEF:0|Contoso|Proxy|1.0|web|Allowed|3|request=https:///nohost", true),
        ("CEF:0|Contoso|Proxy|1.0|web|Allowed|3|dhost=claude.ai suser=CONTOSO\\\\bob", false),
        ("CEF:0|Contoso|Pro\\|xy|1.0|web|Allowed|3|dhost=claude.ai", false),
        ("CEF:0|Contoso|Proxy|1.0|web|Allowed|3|src=10.0.0.1 act=allow", false),
        // A key starts after a space, at the extension's start or right after an `=` that ended a key itself.
        ("CEF:0|Contoso|Proxy|1.0|web|Allowed|3|x=dhost=claude.ai", true),
        ("CEF:0|Contoso|Proxy|1.0|web|Allowed|3|a =dhost=claude.ai", false),
        ("CEF:0|Contoso|Proxy|1.0|web|Allowed|3|=dhost=claude.ai", false),
        ("CEF:0|Contoso|Proxy|1.0|web|Allowed|3|xdhost=claude.ai dst=1.2.3.4", true),
        ("CEF:0|Contoso|Proxy|1.0|web|Allowed|3|dhost=claude.ai rt=1 st= rl= url=x", true),
        ("CEF:0|Contoso|Proxy|1.0|web|Allowed|3|dhost=a.example request=https://claude.ai/ url=http://poe.com/", true),
        ("CEF:0|Contoso|Proxy|1.0|web|Allowed|3|request=https://claude.ai/ dhost= url=http://poe.com/", true),
        ("CEF:0|Contoso|Proxy|1.0|web|Allowed|3|dhost=claude.ai msg=a=b c = d", true),
        // `==` in the extension (base64 padding): whether an `=` ends a key depends on the one before it; parse decides.
        ("CEF:0|Contoso|Proxy|1.0|web|Allowed|3|dhost=claude.ai cs1=YWJj== suser=a", false),
        ("CEF:0|Contoso|Proxy|1.0|web|Allowed|3|dhost=", false),
        ("<134>Dec  6 10:00:00 fw01 CEF:0|Contoso|Proxy|1.0|web|Broken", false),
        ("<134>Dec  6 10:00:00 fw01 CE:0|Contoso|Proxy|1.0|web|Allowed|3|dhost=claude.ai", false),
        ("", false),
    ]

    @Test("Squid: the fast path takes well-formed requests and finds the host parse finds; it leaves the rest to parse",
          arguments: squidLines)
    func squid(_ line: String, _ taken: Bool) {
        let r = FastAndFull.run(SquidParser(), line)
        #expect((r.fast != nil) == taken)
        if let fast = r.fast {
            #expect(r.outcome == .entry)
            #expect(fast == r.host)
        }
    }

    @Test("CEF: the fast path follows the scanner's key rules (dhost over request, dst when nothing else, values to the next key)",
          arguments: cefLines)
    func cef(_ line: String, _ taken: Bool) {
        let r = FastAndFull.run(CEFParser(), line)
        #expect((r.fast != nil) == taken)
        if let fast = r.fast {
            #expect(r.outcome == .entry)
            #expect(fast == r.host)
        }
    }

    @Test("the host table: a name with a catalog host's length and first and last eight bytes is confirmed byte for byte; it grows; short names")
    func hostTable() {
        var table = HostTable()
        for n in 0..<500 { table.insert("host\(n).example", app: n) }
        table.insert("generativelanguage.googleapis.com", app: 500)
        table.insert("x.ai", app: 501)
        func lookup(_ host: String) -> Int? {
            var bytes = Array(host.utf8)
            return bytes.withUnsafeMutableBufferPointer { table.lookup(UnsafeBufferPointer($0)) }
        }
        func hash(_ host: String) -> UInt64 { Array(host.utf8).withUnsafeBufferPointer { HostTable.hash($0, from: 0, to: $0.count) } }
        var missed: [Int] = []
        for n in 0..<500 where lookup("www.HOST\(n).example") != n { missed.append(n) }
        #expect(missed.isEmpty)
        #expect(lookup("host0.EXAMPLE") == 0)
        #expect(table.exact("host499.example") == 499)
        #expect(lookup("generativelanguage.googleapis.com") == 500)
        // Same length, same first and last eight bytes, so the same hash: not the same host.
        #expect(hash("generativeXanguage.googleapis.com") == hash("generativelanguage.googleapis.com"))
        #expect(lookup("generativeXanguage.googleapis.com") == nil)
        #expect(lookup("X.AI") == 501)
        #expect(lookup("grok.x.ai.") == 501)
        #expect(lookup("y.ai") == nil)
        #expect(lookup("ai") == nil)
        #expect(lookup(".") == nil)
        #expect(HostTable.lowercased(0x5b5a_4140_7a61_c1ff) == 0x5b7a_6140_7a61_c1ff)
    }

    @Test("a log's verdict read from its bytes, any case: denied, blocked, dropped, rejected and 403/407 block; alerts alert")
    func verdicts() {
        let expected: [(String?, TrafficRecord.Action)] = [
            ("TCP_DENIED", .block), ("Blocked", .block), ("DROP", .block), ("deny", .block), ("Rejected", .block), ("403", .block),
            ("407", .block), ("1403", .allow), ("TCP_TUNNEL", .allow), ("allow", .allow), ("ALERT", .alert), ("", .allow), (nil, .allow),
        ]
        for (raw, action) in expected { #expect(TrafficImporter.action(raw) == action, "\(raw ?? "nil")") }
    }

    /// A log with CRLF and LF line ends, a blank line, a malformed line between good ones and no newline at its end.
    static func log(_ format: LogFormat, start: Int) -> String {
        switch format {
        case .squid:
            return "\(start).100    245 10.0.0.5 TCP_TUNNEL/200 5230 CONNECT api.openai.com:443 alice HIER_DIRECT/104.18.7.192 -\r\n"
                + "\(start + 1).000 12 10.0.0.6 TCP_MISS/200 900 GET http://www.example.com/ bob HIER_DIRECT/93.184.215.14 text/html\n"
                + "\(start + 2).000 12 10.0.0.6 TCP_MISS/200 9x1 GET http://claude.ai/ bob HIER_DIRECT/93.184.215.14 text/html\r\n"
                + "\r\n"
                + "\(start + 3).000 12 10.0.0.6 TCP_MISS/200 77 POST http://CHAT.deepseek.com/api/v0/chat/completion carol HIER_DIRECT/1.2.3.4 -\n"
                + "\(start + 4).000 12 10.0.0.7 TCP_MISS/200 10 GET http://www.example.org/x dave HIER_DIRECT/1.2.3.5 text/html\r\n"
                + "\(start + 5).000 12 10.0.0.7 TCP_TUNNEL/200 10 CONNECT poe.com:443 dave HIER_DIRECT/1.2.3.5 -"
        default:
            let ms = start * 1000
            return "CEF:0|Contoso|Firewall|1.0|web|Allowed|3|rt=\(ms) src=10.0.0.5 dhost=api.openai.com dpt=443 suser=alice in=5230\r\n"
                + "CEF:0|Contoso|Firewall|1.0|web|Allowed|3|rt=\(ms + 1000) src=10.0.0.6 dhost=www.example.com suser=bob\n"
                + "CEF:0|Contoso|Firewall|1.0|web|Broken\r\n"
                + "\r\n"
                + "CEF:0|Contoso|Firewall|1.0|web|Allowed|3|rt=\(ms + 3000) request=https://CHAT.deepseek.com/api/v0/chat/completion suser=carol\n"
                + "CEF:0|Contoso|Firewall|1.0|web|Allowed|3|rt=\(ms + 4000) src=10.0.0.7 dhost=www.example.org suser=CONTOSO\\\\dave\r\n"
                + "CEF:0|Contoso|Firewall|1.0|web|Allowed|3|rt=\(ms + 5000) dhost=poe.com dpt=443 suser=dave"
        }
    }

    static func importText(_ text: String, _ parser: some LogParser, chunkSize: Int) async throws -> (TrafficImporter.Summary, [Int]) {
        let catalog = try AICatalog.bundled(year: 2026)
        let importer = TrafficImporter(catalog: catalog, tenant: "t", format: .squid)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-fast-\(UUID().uuidString)")
        try Data(text.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let fd = open(file.path, O_RDONLY)
        defer { close(fd) }
        let heard = LinesHeard()
        let users = UserAttribution(users: [(UserAttribution.User(id: "1", userPrincipalName: "alice@contoso.test"), "alice")])
        let summary = try await importer.run(parser, fd: fd, store: nil, users: users, now: Date(timeIntervalSince1970: 1_765_015_300),
                                             chunkSize: chunkSize) { heard.add($0.line) }
        return (summary, heard.lines)
    }

    @Test("lines split across reads, CRLF, a blank line, a malformed line between good ones and a last line without a newline",
          arguments: [LogFormat.squid, .cef], [160, 173, 4096])
    func boundaries(_ format: LogFormat, _ chunkSize: Int) async throws {
        let text = Self.log(format, start: 1_765_015_200)
        let (summary, malformed) = format == .squid
            ? try await Self.importText(text, SquidParser(), chunkSize: chunkSize)
            : try await Self.importText(text, CEFParser(), chunkSize: chunkSize)
        #expect(summary.lines == 7)
        #expect(summary.skipped == 1)
        #expect(malformed == [3])
        #expect(summary.requests == 5)
        #expect(summary.recorded == 3)
        #expect(summary.apps == ["openai-api": 1, "deepseek-chat": 1, "poe": 1])
        #expect(summary.attributed == 1)
        #expect(summary.bytes == Int64(text.utf8.count))
    }

    @Test("a generated log imports to the same summary with and without the fast path, in small and large reads",
          arguments: [LogFormat.squid, .cef], [331, 1 << 20])
    func sameAsFullParse(_ format: LogFormat, _ chunkSize: Int) async throws {
        // Every kind of line many times, in a fixed order, ending in LF or CRLF.
        let mix = squidOrCEF(format)
        var text = ""
        for n in 0..<3000 {
            text += mix[(n * 7919) % mix.count].replacingOccurrences(of: "TIME", with: String(1_765_015_200 + n % 90))
            text += n % 5 == 0 ? "\r\n" : "\n"
        }
        let fast = format == .squid ? try await Self.importText(text, SquidParser(), chunkSize: chunkSize)
                                    : try await Self.importText(text, CEFParser(), chunkSize: chunkSize)
        let full = format == .squid ? try await Self.importText(text, FullParse(inner: SquidParser()), chunkSize: chunkSize)
                                    : try await Self.importText(text, FullParse(inner: CEFParser()), chunkSize: chunkSize)
        #expect(fast.0 == full.0)
        #expect(fast.1 == full.1)
        #expect(fast.0.recorded > 0 && fast.0.malformed > 0 && fast.0.lines == 3000)
    }

    func squidOrCEF(_ format: LogFormat) -> [String] {
        let lines = format == .squid ? Self.squidLines.map(\.0) : Self.cefLines.map(\.0)
        return lines.map { $0.replacingOccurrences(of: "1765015200", with: "TIME") }
    }
}
