import Foundation
import Testing
@testable import InternetAccess

/// What a parser made of one line, as strings.
struct Parsed: Equatable {
    var outcome: ParseOutcome
    var fields: [String: String] = [:]

    static func run(_ parser: inout some LogParser, _ line: String) -> Parsed {
        var bytes = Array(line.utf8)
        return bytes.withUnsafeMutableBufferPointer { p in
            var e = LogEntry()
            let outcome = parser.parse(p, into: &e)
            var fields: [String: String] = [:]
            for (name, range) in [("user", e.user), ("sourceIP", e.sourceIP), ("host", e.host), ("path", e.path), ("method", e.method),
                                  ("action", e.action), ("destinationIP", e.destinationIP)] {
                if let text = p.text(range) { fields[name] = text }
            }
            if let t = e.time { fields["time"] = Timestamp8601.format(t) }
            if let v = e.port { fields["port"] = String(v) }
            if let v = e.sentBytes { fields["sent"] = String(v) }
            if let v = e.receivedBytes { fields["received"] = String(v) }
            return Parsed(outcome: outcome, fields: fields)
        }
    }
}

enum Timestamp8601 {
    static func format(_ seconds: Double) -> String {
        let ms = Int64((seconds * 1000).rounded())
        let whole = Date(timeIntervalSince1970: Double(ms / 1000)).formatted(Date.ISO8601FormatStyle(timeZone: .gmt))
        return whole.dropLast() + "." + String(String(ms % 1000 + 1000).dropFirst()) + "Z"
    }
}

@Suite("Log parsers")
struct ParserTests {
    @Test("Squid native lines: CONNECT tunnels, plain HTTP, denied requests, no user")
    func squid() {
        var p = SquidParser()
        let connect = Parsed.run(&p, "1765015200.123    245 10.0.0.5 TCP_TUNNEL/200 5230 CONNECT api.openai.com:443 alice HIER_DIRECT/104.18.7.192 -")
        #expect(connect.outcome == .entry)
        #expect(connect.fields == ["time": "2025-12-06T10:00:00.123Z", "sourceIP": "10.0.0.5", "action": "TCP_TUNNEL", "received": "5230",
                                   "method": "CONNECT", "host": "api.openai.com", "port": "443", "user": "alice",
                                   "destinationIP": "104.18.7.192"])
        let get = Parsed.run(&p, "1765015201.000 12 10.0.0.6 TCP_DENIED/403 3900 GET http://chat.deepseek.com/api/v0/chat/completion - HIER_NONE/- text/html")
        #expect(get.fields["host"] == "chat.deepseek.com")
        #expect(get.fields["path"] == "/api/v0/chat/completion")
        #expect(get.fields["action"] == "TCP_DENIED")
        #expect(get.fields["user"] == nil)
        #expect(get.fields["destinationIP"] == nil)
    }

    @Test("malformed Squid lines say why", arguments: [
        ("notatime 1 10.0.0.1 TCP_MISS/200 1 GET http://a.test/ - HIER_NONE/- -", "the time is not seconds since 1970"),
        ("1765015200.1 1 10.0.0.1 TCP_MISS/200", "fewer than 7 fields"),
        ("1765015200.1 1 10.0.0.1 TCP_MISS/200 12x GET http://a.test/ - HIER_NONE/- -", "the byte count is not a number"),
    ])
    func squidMalformed(_ line: String, _ reason: String) {
        var p = SquidParser()
        #expect(Parsed.run(&p, line).outcome == .malformed(reason))
    }

    @Test("W3C extended: #Fields decides the columns, quoted values, a second #Fields mid-file")
    func w3c() {
        var p = W3CParser()
        #expect(Parsed.run(&p, "#Software: Microsoft Forefront TMG").outcome == .skipped)
        #expect(Parsed.run(&p, "2026-12-06 10:00:00 10.0.0.5 a.test GET / 200").outcome == .malformed("a record before any #Fields line"))
        #expect(Parsed.run(&p, "#Fields: date time c-ip cs-username cs-method cs-host cs-uri-stem sc-status cs-bytes sc-bytes cs(User-Agent)").outcome == .skipped)
        let line = Parsed.run(&p, "2026-12-06 10:00:05 10.0.0.7 CORP\\bob POST api.anthropic.com /v1/messages 200 1234 5678 \"Mozilla/5.0 (X11; \"\"quoted\"\")\"")
        #expect(line.outcome == .entry)
        #expect(line.fields == ["time": "2026-12-06T10:00:05.000Z", "sourceIP": "10.0.0.7", "user": "CORP\\bob", "method": "POST",
                                "host": "api.anthropic.com", "path": "/v1/messages", "action": "200", "sent": "1234", "received": "5678"])
        #expect(Parsed.run(&p, "2026-12-06 10:00:05 10.0.0.7 bob POST").outcome == .malformed("5 fields where #Fields names 11"))
        #expect(Parsed.run(&p, "#Fields: date time c-ip cs-uri").outcome == .skipped)
        let uri = Parsed.run(&p, "2026-12-06 10:00:06 10.0.0.8 https://gemini.google.com/app?hl=en")
        #expect(uri.fields["host"] == "gemini.google.com")
        #expect(uri.fields["path"] == "/app?hl=en")
        #expect(Parsed.run(&p, "2026-13-06 10:00:06 10.0.0.8 https://a.test/").outcome == .malformed("the date or time is not YYYY-MM-DD HH:MM:SS"))
    }

    @Test("CEF: a syslog prefix, escaped pipes in the header, escaped = and \\\\ and spaces in extension values")
    func cef() {
        var p = CEFParser()
        let line = #"<134>Dec  6 10:00:00 fw01 CEF:0|Zscaler|NSSWeblog|5.0|Allowed|Web \| proxy|3|rt=1765015200000 src=10.0.0.5 spt=51000 dst=104.18.7.192 dpt=443 dhost=api.openai.com request=https://api.openai.com/v1/chat/completions requestMethod=POST suser=alice@contoso.test out=2048 in=8192 act=Allowed cs1=a\=b c\\d msg=two words here"#
        let parsed = Parsed.run(&p, line)
        #expect(parsed.outcome == .entry)
        #expect(parsed.fields == ["time": "2025-12-06T10:00:00.000Z", "sourceIP": "10.0.0.5", "destinationIP": "104.18.7.192", "port": "443",
                                  "host": "api.openai.com", "path": "/v1/chat/completions", "method": "POST", "user": "alice@contoso.test",
                                  "sent": "2048", "received": "8192", "action": "Allowed"])
        // An escaped value with spaces, = and a backslash, and a user with a space in it.
        let escaped = Parsed.run(&p, #"CEF:0|V|P|1|1|n|1|suser=CORP\\bob smith dhost=claude.ai request=https://claude.ai/x?a\=1 rt=Dec 06 2026 10:00:00"#)
        #expect(escaped.fields["user"] == "CORP\\bob smith")
        #expect(escaped.fields["path"] == "/x?a=1")
        #expect(escaped.fields["time"] == "2026-12-06T10:00:00.000Z")
        #expect(Parsed.run(&p, "CEF:0|V|P|1|1|n").outcome == .malformed("the CEF header has fewer than 8 fields"))
        #expect(Parsed.run(&p, "CEF:0|V|P|1|1|n|1|src=10.0.0.1 act=blocked").outcome == .malformed("no destination (dhost, request or dst)"))
        #expect(Parsed.run(&p, "just text").outcome == .malformed("no CEF: header"))
    }

    @Test("LEEF 1.0 with tabs and LEEF 2.0 with its own separator, escaped")
    func leef() {
        var p = LEEFParser()
        let one = Parsed.run(&p, "LEEF:1.0|Palo Alto Networks|PAN-OS|10.1|url|devTime=1765015200000\tsrc=10.0.0.9\tusrName=carol\turl=https://chat.mistral.ai/api/chat?x=1\tsrcBytes=10\tdstBytes=20\taction=block")
        #expect(one.outcome == .entry)
        #expect(one.fields == ["time": "2025-12-06T10:00:00.000Z", "sourceIP": "10.0.0.9", "user": "carol", "host": "chat.mistral.ai",
                               "path": "/api/chat?x=1", "port": "443", "sent": "10", "received": "20", "action": "block"])
        let two = Parsed.run(&p, #"LEEF:2.0|Vendor|Proxy|1.0|web|^|devTime=Dec 06 2026 10:00:00^usrName=dave\^x^dhost=poe.com^dstPort=443"#)
        #expect(two.fields["user"] == "dave^x")
        #expect(two.fields["host"] == "poe.com")
        #expect(two.fields["port"] == "443")
        let hex = Parsed.run(&p, "LEEF:2.0|V|P|1|e|x7C|dhost=grok.com|usrName=erin")
        #expect(hex.fields["host"] == "grok.com")
        #expect(hex.fields["user"] == "erin")
        #expect(Parsed.run(&p, "LEEF:2.0|V|P|1|e|zz|dhost=grok.com").outcome == .malformed("the LEEF separator 'zz' is not a character or x-hex code"))
    }

    @Test("CSV through a mapping: a header, quoted fields with delimiters and doubled quotes, Zscaler's ctime")
    func csv() throws {
        let mapping = try CSVMapping.load(Data(#"""
            {"delimiter": ",", "header": true, "time": "ctime",
             "columns": {"time": "datetime", "user": "login", "url": "eurl", "sourceIP": "cip", "action": "action",
                         "sentBytes": "reqsize", "receivedBytes": "respsize", "method": "reqmethod"}}
            """#.utf8))
        var p = CSVParser(mapping: mapping)
        #expect(Parsed.run(&p, "datetime,login,action,eurl,cip,reqmethod,reqsize,respsize,ua").outcome == .skipped)
        let row = Parsed.run(&p, #""Sun Dec  6 10:00:00 2026","frank@contoso.test","Allowed","api.perplexity.ai/chat/completions","10.0.0.10","POST","700","1400","Agent, ""v1"""#)
        #expect(row.outcome == .entry)
        #expect(row.fields == ["time": "2026-12-06T10:00:00.000Z", "user": "frank@contoso.test", "action": "Allowed", "host": "api.perplexity.ai",
                               "path": "/chat/completions", "sourceIP": "10.0.0.10", "method": "POST", "sent": "700", "received": "1400"])
        #expect(Parsed.run(&p, #""Sun Dec  6 10:00:00 2026","frank""#).outcome == .malformed("2 columns where the mapping needs 8"))
        #expect(Parsed.run(&p, #""yesterday",u,Allowed,a.test/,1,GET,1,1,x"#).outcome == .malformed("the time is not ctime"))
    }

    @Test("a Zscaler NSS feed (no header line, columns by number, epoch seconds) through the README's sample mapping")
    func zscalerFeed() throws {
        // NSS feed output format: "%d{epochtime}","%s{login}","%s{action}","%s{eurl}","%s{cip}","%s{reqmethod}","%d{reqsize}","%d{respsize}"
        let mapping = try CSVMapping.load(Data(#"""
            {"delimiter": ",", "header": false, "time": "epoch",
             "columns": {"time": "1", "user": "2", "action": "3", "url": "4", "sourceIP": "5", "method": "6", "sentBytes": "7", "receivedBytes": "8"}}
            """#.utf8))
        var p = CSVParser(mapping: mapping)
        let row = Parsed.run(&p, #""1765015200","dana@contoso.test","Blocked","claude.ai/api/organizations/x/completion","10.0.0.11","POST","812","95""#)
        #expect(row.outcome == .entry)
        #expect(row.fields == ["time": "2025-12-06T10:00:00.000Z", "user": "dana@contoso.test", "action": "Blocked", "host": "claude.ai",
                               "path": "/api/organizations/x/completion", "sourceIP": "10.0.0.11", "method": "POST", "sent": "812", "received": "95"])
        #expect(TrafficImporter.action("Blocked") == .block)
    }

    @Test("a mapping is checked when loaded", arguments: [
        #"{"columns": {"host": "h", "color": "c"}}"#, #"{"columns": {"user": "u"}}"#, #"{"header": false, "columns": {"host": "h"}}"#,
        #"{"delimiter": ";;", "columns": {"host": "1"}}"#, "not json",
    ])
    func badMappings(_ text: String) {
        #expect(throws: ImportError(.badMapping, "")) { try CSVMapping.load(Data(text.utf8)) }
    }
}
