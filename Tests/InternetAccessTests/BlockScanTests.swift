import Foundation
import Testing
@testable import InternetAccess

/// SplitMix64: the same sequence on every run.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

/// A line as the scanner handed it back, or as the reference cuts it.
struct CutLine: Equatable, CustomStringConvertible {
    var number: Int
    /// nil for a truncated line.
    var text: [UInt8]?
    var description: String { "\(number): \(text.map { String(decoding: $0, as: UTF8.self).debugDescription } ?? "truncated")" }
}

/// Log text for the scanner's tests: generated requests of every shape, and lines meant to break it.
enum ScanCorpus {
    static let aiHosts = ["api.openai.com", "chatgpt.com", "claude.ai", "API.Anthropic.COM", "generativelanguage.googleapis.com",
                          "poe.com", "www.perplexity.ai", "grok.x.ai", "x.ai."]

    static func host(_ r: inout SeededGenerator) -> String {
        switch Int.random(in: 0..<10, using: &r) {
        case 0..<3: return aiHosts.randomElement(using: &r)!
        case 3: return "sub\(Int.random(in: 0..<50, using: &r)).googleapis.com"
        case 4: return String(repeating: "long-label.", count: Int.random(in: 4..<12, using: &r)) + "example"
        case 5: return "h\(Int.random(in: 0..<9, using: &r)).io"
        default: return "www.site\(Int.random(in: 0..<5000, using: &r)).example"
        }
    }

    static func squid(_ r: inout SeededGenerator) -> String {
        let h = host(&r)
        let time = Bool.random(using: &r) ? "1765015\(Int.random(in: 100...999, using: &r)).\(Int.random(in: 0...999, using: &r))" : "1765015200"
        let pad = String(repeating: " ", count: Int.random(in: 0..<8, using: &r))
        let sep = Int.random(in: 0..<10, using: &r) == 0 ? "\t" : " "
        let target: String
        switch Int.random(in: 0..<5, using: &r) {
        case 0: target = "\(h):443"
        case 1: target = "http://\(h)/page/\(Int.random(in: 0..<100_000, using: &r))?q=\(Int.random(in: 0..<9, using: &r))"
        case 2: target = "https://\(h):8443/v1/" + String(repeating: "p", count: Int.random(in: 0..<90, using: &r))
        case 3: target = "ftp://\(h)"
        default: target = "\(h)/no-scheme"
        }
        let method = ["CONNECT", "GET", "POST"].randomElement(using: &r)!
        let tail = [" user\(Int.random(in: 0..<500, using: &r)) HIER_DIRECT/93.184.1.\(Int.random(in: 0..<250, using: &r)) -", " -", ""]
            .randomElement(using: &r)!
        return [time, "\(pad)\(Int.random(in: 0..<2000, using: &r))", "10.0.\(Int.random(in: 0..<8, using: &r)).9", "TCP_MISS/200",
                "\(Int.random(in: 0..<60_000, using: &r))", method, target].joined(separator: sep) + tail
    }

    static func cef(_ r: inout SeededGenerator) -> String {
        let h = host(&r)
        let prefix = ["<134>Dec  6 10:00:00 fw01 ", "", "<134>Dec  6 10:00:00 CEFhost Contoso CE "].randomElement(using: &r)!
        var pairs = ["rt=1765015\(Int.random(in: 100...999, using: &r))000", "src=10.0.0.\(Int.random(in: 1..<250, using: &r))"]
        switch Int.random(in: 0..<6, using: &r) {
        case 0: pairs += ["dhost=\(h)", "request=https://\(h)/p"]
        case 1: pairs += ["request=https://\(h)/p?x=1", "dhost=\(h)"]
        case 2: pairs += ["url=http://\(h):80/x"]
        case 3: pairs += ["dst=104.18.\(Int.random(in: 0..<250, using: &r)).1"]
        case 4: pairs += ["dstHost=\(h)", "host="]
        default: pairs += ["msg=a note with spaces  ", "host=\(h)", "dst=1.2.3.4"]
        }
        pairs += ["suser=user\(Int.random(in: 0..<500, using: &r))", "act=allow"]
        pairs.shuffle(using: &r)
        return prefix + "CEF:0|Contoso|Proxy|1.0|web|Allowed|3|" + pairs.joined(separator: String(repeating: " ", count: Int.random(in: 1...2, using: &r)))
    }

    /// Lines meant to break a scanner: quotes, NUL bytes, escapes, fields past the first 64 bytes, long lines.
    static let squidAdversarial = [
        "\"1765015200.123\" \"245\" \"10.0.0.5\" \"TCP_TUNNEL/200\" \"5230\" \"CONNECT\" \"api.openai.com:443\" \"alice\"",
        "1765015200.1 1 10.0.0.1 TCP\u{0}MISS/200 5 GET http://api.open\u{0}ai.com/ -",
        "1765015200.1\u{0} 1 10.0.0.1 TCP_MISS/200 5 GET http://claude.ai/ -",
        "1765015200.1 1 10.0.0.1 TCP_MISS/200 5 GET \u{0}",
        String(repeating: "1", count: 70) + " 1 10.0.0.1 TCP_MISS/200 5 GET http://claude.ai/",
        String(repeating: " ", count: 70) + "1765015200 1 10.0.0.1 TCP_MISS/200 5 GET http://claude.ai/",
        "1765015200" + String(repeating: " ", count: 40) + "1 10.0.0.1 TCP_MISS/200 5 GET http://claude.ai/",
        "1765015200 1 10.0.0.1 TCP_MISS/200 5 GET http://" + String(repeating: "a", count: 80) + ".claude.ai/x",
        "1765015200 1 10.0.0.1 TCP_MISS/200 5 GET a?b://claude.ai/x",
        "1765015200 1 10.0.0.1 TCP_MISS/200 5 GET http:/claude.ai",
        "1765015200 1 10.0.0.1 TCP_MISS/200 5 GET :",
        "1765015200 1 10.0.0.1 TCP_MISS/200 5 GET ://",
        "1765015200 1 10.0.0.1 TCP_MISS/200 5 GET claude.ai\r",
        "1765015200 1 10.0.0.1 TCP_MISS/200 5 GET claude.ai\r\r",
        "1765015200 1 10.0.0.1 TCP_MISS/200 5 GET \rclaude.ai",
        "1765015200.1.1 1 10.0.0.1 TCP_MISS/200 5 GET claude.ai",
        "123456789012345678.123456789012345678 1 10.0.0.1 TCP_MISS/200 5 GET claude.ai",
        "1234567890123456789 1 10.0.0.1 TCP_MISS/200 5 GET claude.ai",
        "1765015200 1 10.0.0.1 TCP_MISS/200 123456789012345678 GET claude.ai",
        "1765015200 1 10.0.0.1 TCP_MISS/200 1234567890123456789 GET claude.ai",
        "1765015200 1 10.0.0.1 TCP_MISS/200 -5 GET claude.ai",
        "1765015200 1 10.0.0.1 TCP_MISS/200 5 GET",
        "# a comment",
        "\r",
        "",
        " \t ",
        "1765015200 1 10.0.0.1 TCP_MISS/200 5 GET http://claude.ai/" + String(repeating: "x", count: 12_000),
        "1765015200 1 10.0.0.1 TCP_MISS/200 5 GET http://www.site1.example/" + String(repeating: "y", count: 9_000),
        // The URL past the first 64 bytes (the six fields before it within them), the method running past them.
        "1765015200.123  1999 192.168.100.200 TCP_TUNNEL/200 123456789 CONNECT claude.ai:443 user1 -",
        "1765015200.123  1999 192.168.100.200 TCP_TUNNEL/200 123456789 CONNECT",
        "1765015200.123  1999 192.168.100.200 TCP_TUNNEL/200 123456789 CONNECT   ",
        "1765015200.123  1999 192.168.100.200 TCP_TUNNEL/200 123456789 CONNECT\r",
        "1765015200 1 10.0.0.1 TCP_MISS/200 5 " + String(repeating: "M", count: 70) + " http://claude.ai/",
        "1765015200 1 10.0.0.1 TCP_MISS/200 5 " + String(repeating: "M", count: 70),
        "1765015200 1 10.0.0.1 TCP_MISS/200 " + String(repeating: "5", count: 18) + String(repeating: " ", count: 30) + "GET claude.ai",
    ]

    static let cefAdversarial = [
        "CEF:0|Contoso|Proxy|1.0|web|Allowed|3|dhost=claude.ai suser=CONTOSO\\\\bob",
        "CEF:0|Contoso|Pro\\|xy|1.0|web|Allowed|3|dhost=claude.ai",
        "CEF:0|Contoso|Proxy|1.0|web|Allowed|3|dhost=claude.ai msg=a\\=b",
        "CEF:0|Contoso|Proxy|1.0|web|Allowed|3|dhost=\"api.openai.com\" suser=\"bob\"",
        "CEF:0|Contoso|Proxy|1.0|web|Allowed|3|dhost==x dpt=1",
        "CEF:0|Contoso|Proxy|1.0|web|Allowed|3|dhost= claude.ai",
        "CEF:0|Contoso|Proxy|1.0|web|Allowed|3|=dhost=claude.ai",
        "CEF:0|Contoso|Proxy|1.0|web|Allowed|3|a=b=c dhost=claude.ai   ",
        "CEF:0|Contoso|Proxy|1.0|web|Allowed|3|request=https://claude.ai/x?y=1&z=2",
        "CEF:0|Contoso|Proxy|1.0|web|Allowed|3|dhost=claude.ai dhost=",
        "CEF:0|Contoso|Proxy|1.0|web|Allowed|3|host=poe.com dstHost=claude.ai url=http://x.ai",
        "CEF:0|Contoso|Proxy|1.0|web|Allowed|3|dhost=cl\u{0}aude.ai",
        "CEF:0|Contoso|Proxy|1.0|web|Allowed|3|\u{0}dhost=claude.ai",
        "CEF:0|Contoso|Proxy|1.0|web|Allowed|3|dhost=claude.ai\r",
        "CEF:0|Contoso|Proxy|1.0|web|Allowed|3",
        "CEF:0|Contoso|Proxy|1.0|web|Allowed|3|",
        "CEF:0|a|b|c|d|e|f|g|h|dhost=claude.ai",
        "xCEF:0|Contoso|Proxy|1.0|web|Allowed|3|dhost=claude.ai",
        "CEF CEF:0|Contoso|Proxy|1.0|web|Allowed|3|dhost=claude.ai",
        "<134>Dec  6 10:00:00 fw01 CEF:",
        "CE",
        "CEF:0|Contoso|Proxy|1.0|web|Allowed|3|msg=" + String(repeating: "m ", count: 60) + "dhost=claude.ai",
        "CEF:0|Contoso|Proxy|1.0|web|Allowed|3|" + String(repeating: "k", count: 90) + "=v dhost=claude.ai",
        "CEF:0|Contoso|Proxy|1.0|web|Allowed|3|msg=" + String(repeating: "z", count: 10_000) + " dhost=claude.ai",
        "CEF:0|Contoso|Proxy|1.0|web|Allowed|3|dhost=claude.ai msg=" + String(repeating: "w", count: 20_000),
        "",
        // `CEF:` past the first 64 bytes; `st=` and `rl=` in the header and in keys that name no host.
        "<134>Dec  6 10:00:00 firewall-number-one.internal.example.org.with-a-long-name CEF:0|Contoso|Proxy|1.0|web|Allowed|3|dhost=claude.ai",
        "<134>Dec  6 10:00:00 " + String(repeating: "C", count: 80) + " CEF:0|Contoso|Proxy|1.0|web|Allowed|3|dhost=poe.com",
        "CEF:0|st=1|rl=2|Proxy|1.0|web|3|xst=1 curl=2 ast=3 dhost=claude.ai request=https://poe.com/",
        "CEF:0|Contoso|Proxy|1.0|web|Allowed|3|dhost= request=https://claude.ai/x",
        "CEF:0|Contoso|Proxy|1.0|web|Allowed|3|dhost=poe.com request=https://claude.ai/ dhost=",
        "CEF:0|Contoso|Proxy|1.0|web|Allowed|3|request=https://claude.ai/x dhost=poe.com url=http://x.ai/",
    ]

    /// `count` lines of `format` with the adversarial ones spread among them, each ended by LF or CRLF; the text
    /// ends without a newline, on a request to a catalog host, when `openEnd`.
    static func text(_ format: FastScanFormat, count: Int, seed: UInt64, openEnd: Bool) -> [UInt8] {
        var r = SeededGenerator(state: seed)
        let odd = format == .squid ? squidAdversarial : cefAdversarial
        var text: [UInt8] = []
        for n in 0..<count {
            let line = n % 7 == 3 ? odd[(n / 7) % odd.count] : format == .squid ? squid(&r) : cef(&r)
            text += Array(line.utf8)
            text += Int.random(in: 0..<5, using: &r) == 0 ? [13, 10] : [10]
        }
        if openEnd {
            text += Array((format == .squid ? "1765015200 1 10.0.0.1 TCP_MISS/200 5 CONNECT api.openai.com"
                                            : "CEF:0|Contoso|Proxy|1.0|web|Allowed|3|src=10.0.0.1 dhost=api.openai.com").utf8)
        }
        return text
    }

    /// The lines as LineReader cut them: at `\n` with a `\r` before it dropped, the last one without a newline when it
    /// has bytes; a line of `maxLine` bytes or more before its newline is truncated.
    static func reference(_ text: [UInt8], maxLine: Int) -> [CutLine] {
        var lines: [CutLine] = []
        var start = 0
        while start < text.count {
            let end = text[start...].firstIndex(of: 10) ?? text.count
            var line = Array(text[start..<end])
            if line.count >= maxLine {
                lines.append(CutLine(number: lines.count + 1, text: nil))
            } else {
                if line.last == 13 { line.removeLast() }
                lines.append(CutLine(number: lines.count + 1, text: line))
            }
            start = end + 1
        }
        return lines
    }
}

@Suite("Traffic import block scanner", .serialized)
struct BlockScanTests {
    /// The lines the scanner hands back over `text` read in pieces of at most `piece` bytes into a buffer of `maxLine`
    /// bytes (as LogInput reads a pipe), each with the host the fast path found.
    static func scan(_ text: [UInt8], _ format: FastScanFormat?, maxLine: Int, piece: Int) -> [(CutLine, host: [UInt8]?)] {
        let scanner = LogScanner(format: format, maxLine: maxLine, capacity: 7)
        var buffer: [UInt8] = []
        var offered = 0
        var out: [(CutLine, host: [UInt8]?)] = []
        while true {
            let more = min(piece, maxLine - buffer.count, text.count - offered)
            buffer += text[offered..<offered + more]
            offered += more
            let final = offered == text.count
            var from = 0
            var count: Int
            repeat {
                count = buffer.withUnsafeBufferPointer { b in
                    let found = scanner.scan(b, from: &from, final: final, table: nil)
                    for line in found {
                        let cut = CutLine(number: line.number, text: line.truncated ? nil : Array(b[line.range]))
                        out.append((cut, line.host.map { Array(b[$0]) }))
                    }
                    return found.count
                }
            } while count == scanner.capacity
            buffer.removeFirst(from)
            if final, buffer.isEmpty || from == 0 { break }
        }
        #expect(scanner.lines == out.count)
        return out
    }

    /// Whether every line the fast path took parses as a request to the host it found.
    static func agrees(_ lines: [(CutLine, host: [UInt8]?)], _ parser: some LogParser) -> (taken: Int, disagreements: [String]) {
        var parser = parser
        var taken = 0, disagreements: [String] = []
        for (line, host) in lines {
            guard let host, var bytes = line.text else { continue }
            taken += 1
            bytes.withUnsafeMutableBufferPointer { p in
                var e = LogEntry()
                let outcome = parser.parse(p, into: &e)
                let parsed = e.host.map { Array(p[$0]) }
                if outcome != .entry || parsed != host { disagreements.append("\(line): \(outcome), host \(parsed.map { String(decoding: $0, as: UTF8.self) } ?? "none")") }
            }
        }
        return (taken, disagreements)
    }

    @Test("each instruction set cuts the same lines as LineReader and takes only lines the parsers read as requests to the same host",
          arguments: [FastScanFormat.squid, .cef])
    func agreesWithTheParsers(_ format: FastScanFormat) {
        defer { LogScanner.use(.best) }
        for instructions in LogScanner.Instructions.allCases {
            guard LogScanner.use(instructions) else { continue }
            for (maxLine, piece, openEnd) in [(1 << 20, 1 << 20, true), (1 << 20, 1000, false), (16_384, 8191, true), (300, 77, true), (300, 300, false)] {
                let text = ScanCorpus.text(format, count: 1500, seed: UInt64(maxLine + piece), openEnd: openEnd)
                let lines = Self.scan(text, format, maxLine: maxLine, piece: piece)
                let reference = ScanCorpus.reference(text, maxLine: maxLine)
                #expect(lines.map(\.0) == reference, "\(instructions) \(maxLine) \(piece)")
                let (taken, disagreements) = format == .squid ? Self.agrees(lines, SquidParser()) : Self.agrees(lines, CEFParser())
                #expect(disagreements.isEmpty, "\(instructions) \(maxLine) \(piece): \(disagreements.prefix(5))")
                // Nearly all of the generated requests (6 lines in 7) take the fast path.
                #expect(taken * 7 > reference.count * 5 || maxLine == 300, "\(instructions): \(taken) of \(reference.count)")
                if openEnd, maxLine > 300 { #expect(lines.last?.host.map { String(decoding: $0, as: UTF8.self) } == "api.openai.com") }
            }
        }
    }

    @Test("a line that moves across every offset of a 64-byte block and across an 8 KB chunk's end is read the same way")
    func blockAndChunkBoundaries() {
        defer { LogScanner.use(.best) }
        let probes = [("1765015200.5  12 10.0.0.1 TCP_MISS/200 512 GET http://Claude.AI/x?y user1 -", FastScanFormat.squid),
                      ("CEF:0|Contoso|Proxy|1.0|web|Allowed|3|src=10.0.0.1 dhost=claude.ai request=https://poe.com/ suser=a", .cef)]
        for instructions in LogScanner.Instructions.allCases where LogScanner.use(instructions) {
            for (probe, format) in probes {
                for shift in [0, 1, 31, 32, 63, 64, 65, 8_100, 8_127, 8_128, 8_150, 8_191, 8_192, 8_193] {
                    // A filler line of `shift` bytes puts the probe at `shift + 1`.
                    let filler = shift == 0 ? [] : Array(repeating: UInt8(ascii: "#"), count: shift - 1) + [10]
                    let text = filler + Array(probe.utf8) + [10] + Array(probe.utf8)
                    let lines = Self.scan(text, format, maxLine: 1 << 20, piece: 1 << 20)
                    let hosts = lines.compactMap { $0.host.map { String(decoding: $0, as: UTF8.self) } }
                    #expect(hosts == ["Claude.AI", "Claude.AI"] || hosts == ["claude.ai", "claude.ai"], "\(instructions) \(format) \(shift)")
                }
            }
        }
    }

    @Test("host lookups walk from the last label and stop at a suffix no catalog host ends in, with the longest host's answer")
    func hostLookups() throws {
        let catalog = try AICatalog.bundled(year: 2026)
        var hosts: [String: Int] = [:]
        for (index, app) in catalog.apps.enumerated() { for host in app.hosts { hosts[host] = index } }
        // The longest of the name and its suffixes after a dot that is a catalog host.
        func reference(_ name: String) -> Int? {
            var name = Substring(name.lowercased())
            while name.hasSuffix(".") { name = name.dropLast() }
            var suffixes = [String(name)]
            for (i, c) in name.enumerated() where c == "." { suffixes.append(String(name.dropFirst(i + 1))) }
            return suffixes.lazy.compactMap { hosts[$0] }.first
        }
        var names = Array(hosts.keys)
        for host in hosts.keys {
            names += ["a.\(host)", "x.y.\(host.uppercased())", "\(host).", "\(host)..", ".\(host)", "not\(host)", "a..\(host)",
                      String(host.dropFirst()), String(repeating: "deep.", count: 14) + host]
        }
        names += ["", ".", "..", "com", "ai", "googleapis.com", "www.site12.example", "example", "a.b.c.d.e.f", "localhost"]
        var table = HostTable()
        for (host, app) in hosts { table.insert(host, app: app) }
        var wrong: [String] = []
        for name in names {
            let (found, fromCatalog) = Array(name.utf8).withUnsafeBufferPointer { (table.lookup($0), catalog.appIndex(host: $0)) }
            if found != reference(name) || fromCatalog != found { wrong.append(name) }
        }
        #expect(wrong.isEmpty, "\(wrong.prefix(10))")

        // The scanner's own probe (which reads a short suffix as the word that ends it) agrees.
        let logged = names.filter { !$0.isEmpty }
        var log: [UInt8] = []
        for name in logged { log += Array("1765015200 1 10.0.0.1 TCP_MISS/200 5 CONNECT \(name):443 -\n".utf8) }
        let scanner = LogScanner(format: .squid, maxLine: 1 << 20)
        var from = 0
        var scanned: [Int: Int] = [:]
        log.withUnsafeBufferPointer { b in
            var count: Int
            repeat {
                let found = catalog.hosts.withTable { scanner.scan(b, from: &from, final: true, table: $0) }
                for line in found {
                    guard let host = line.host else { continue }
                    scanned[line.number] = catalog.appIndex(host: UnsafeBufferPointer(rebasing: b[host]))
                }
                count = found.count
            } while count == scanner.capacity
        }
        let expected = logged.enumerated().reduce(into: [Int: Int]()) { result, item in
            if let app = reference(item.element) { result[item.offset + 1] = app }
        }
        #expect(scanned == expected)
        #expect(scanner.requests == scanner.lines - expected.count)
    }

    @Test("the scanner's first probe reads a short host from the word that ends it, without the dots before the host")
    func shortHostAfterDots() {
        defer { LogScanner.use(.best) }
        var table = HostTable()
        table.insert("llm", app: 0)
        table.insert("ai.io", app: 1)
        table.insert("x.y.ai", app: 2)
        let log = Array(("1765015200 1 10.0.0.1 TCP_MISS/200 5 G.T llm:443 -\n" + "1765015200 1 10.0.0.1 TCP_MISS/200 5 G.T.. LLM -\n"
            + "1765015200 1 10.0.0.1 TCP_MISS/200 5 a.b ai.io -\n" + "1765015200 1 10.0.0.1 TCP_MISS/200 5 a.b. q.ai.io. -\n"
            + "1765015200 1 10.0.0.1 TCP_MISS/200 5 a.b y.ai -\n" + "1765015200 1 10.0.0.1 TCP_MISS/200 5 GET z.x.y.ai -\n"
            + "CEF:0|a|b|c|d|e|f|src=1.2 dhost=llm\n" + "CEF:0|a|b|c|d|e|f|dst=1.2.3.4 dhost=io\n").utf8)
        var apps: [FastScanFormat: [Int: Int]] = [:]
        for instructions in LogScanner.Instructions.allCases where LogScanner.use(instructions) {
            for format in [FastScanFormat.squid, .cef] {
                let scanner = LogScanner(format: format, maxLine: 1 << 20)
                var from = 0
                var found: [Int: Int] = [:]
                log.withUnsafeBufferPointer { b in
                    let lines = table.withTable { scanner.scan(b, from: &from, final: true, table: $0) }
                    for line in lines { if let app = line.app { found[line.number] = app } }
                }
                #expect(apps[format] == nil || apps[format] == found, "\(instructions)")
                apps[format] = found
            }
        }
        #expect(apps[.squid] == [1: 0, 2: 0, 3: 1, 4: 1, 6: 2])
        #expect(apps[.cef] == [7: 0])
    }

    /// Imports `text` from a pipe that a thread writes it to.
    static func importPiped(_ text: [UInt8], _ parser: some LogParser, chunkSize: Int) async throws -> (TrafficImporter.Summary, [Int]) {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let (reader, writer) = (fds[0], fds[1])
        defer { close(reader) }
        Thread.detachNewThread {
            var at = 0
            while at < text.count {
                let n = text[at...].withUnsafeBufferPointer { write(writer, $0.baseAddress, min($0.count, 4099)) }
                if n <= 0 { break }
                at += n
            }
            close(writer)
        }
        let importer = TrafficImporter(catalog: try AICatalog.bundled(year: 2026), tenant: "t", format: .squid)
        let heard = LinesHeard()
        let users = UserAttribution(users: [(UserAttribution.User(id: "1", userPrincipalName: "alice@contoso.test"), "alice")])
        let summary = try await importer.run(parser, fd: reader, store: nil, users: users, now: Date(timeIntervalSince1970: 1_765_015_300),
                                             chunkSize: chunkSize) { heard.add($0.line) }
        return (summary, heard.lines)
    }

    @Test("an import reads a mapped file and a pipe alike and as the full parse does, long lines and a last line without a newline included",
          arguments: [FastScanFormat.squid, .cef], [300, 16_384, 1 << 20])
    func mappedAndPiped(_ format: FastScanFormat, _ chunkSize: Int) async throws {
        let bytes = ScanCorpus.text(format, count: 2000, seed: UInt64(chunkSize), openEnd: true)
        let text = String(decoding: bytes, as: UTF8.self)
        let mapped, piped, full: (TrafficImporter.Summary, [Int])
        if format == .squid {
            mapped = try await ImportFastPathTests.importText(text, SquidParser(), chunkSize: chunkSize)
            piped = try await Self.importPiped(bytes, SquidParser(), chunkSize: chunkSize)
            full = try await Self.importPiped(bytes, FullParse(inner: SquidParser()), chunkSize: chunkSize)
        } else {
            mapped = try await ImportFastPathTests.importText(text, CEFParser(), chunkSize: chunkSize)
            piped = try await Self.importPiped(bytes, CEFParser(), chunkSize: chunkSize)
            full = try await Self.importPiped(bytes, FullParse(inner: CEFParser()), chunkSize: chunkSize)
        }
        #expect(mapped.0 == full.0)
        #expect(piped.0 == full.0)
        #expect(mapped.1 == full.1 && piped.1 == full.1)
        #expect(full.0.lines == ScanCorpus.reference(bytes, maxLine: chunkSize).count)
        #expect(full.0.recorded > 100 && full.0.malformed > 0 && full.0.bytes == Int64(bytes.count))
    }

    @Test("a mapped file that ends at a page's end, on a request without a newline, is read to its last byte and no further",
          arguments: [FastScanFormat.squid, .cef])
    func pageEnd(_ format: FastScanFormat) async throws {
        let last = format == .squid ? "1765015200 1 10.0.0.1 TCP_MISS/200 5 CONNECT api.openai.com"
                                    : "CEF:0|Contoso|Proxy|1.0|web|Allowed|3|rt=1765015200000 dhost=api.openai.com"
        let size = 2 * Int(sysconf(Int32(_SC_PAGESIZE)))
        let text = String(repeating: "#", count: size - last.utf8.count - 1) + "\n" + last
        #expect(text.utf8.count == size)
        let (summary, malformed) = format == .squid ? try await ImportFastPathTests.importText(text, SquidParser(), chunkSize: 1 << 20)
                                                    : try await ImportFastPathTests.importText(text, CEFParser(), chunkSize: 1 << 20)
        #expect(summary.lines == 2)
        #expect(malformed == [1])
        #expect(summary.recorded == 1 && summary.apps == ["openai-api": 1])
    }

    @Test("a request to a catalog app dated after the year 9999 is reported with its line, not recorded (its id's milliseconds overflowed)")
    func farFuture() async throws {
        let text = "123456789012345678.5 1 10.0.0.1 TCP_MISS/200 5 CONNECT claude.ai:443 alice -\n"
            + "253402300799.999 1 10.0.0.1 TCP_MISS/200 5 CONNECT claude.ai:443 alice -\n"
            + "123456789012345678.5 1 10.0.0.1 TCP_MISS/200 5 CONNECT www.example.com:443 alice -\n"
        let (summary, malformed) = try await ImportFastPathTests.importText(text, SquidParser(), chunkSize: 1 << 20)
        #expect(malformed == [1])
        #expect(summary.malformedSamples.first?.reason == "the time is after the year 9999")
        #expect(summary.requests == 2 && summary.recorded == 1)
    }
}
