import Testing
@testable import InternetAccess

@Suite("Forward proxy: request heads")
struct ProxyRequestHeadTests {
    static func parse(_ text: String, limit: Int = 16 * 1024) throws(ProxyError) -> ProxyRequestHead.Parsed {
        try ProxyRequestHead.parse(Array(text.utf8), limit: limit)
    }

    @Test("CONNECT host:port is a tunnel to that host and port, with its header fields")
    func connect() throws {
        let text = "CONNECT API.OpenAI.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\nProxy-Authorization: Bearer abc\r\n\r\nTLS"
        guard case .complete(let head, let length) = try Self.parse(text) else { Issue.record("incomplete"); return }
        #expect(head.target == .tunnel)
        #expect(head.host == "api.openai.com")
        #expect(head.port == 443)
        #expect(head.header("proxy-authorization") == "Bearer abc")
        #expect(length == text.utf8.count - 3)
    }

    @Test("an absolute-form http request names host, port (80 by default) and the origin-form path with its query")
    func absoluteForm() throws {
        guard case .complete(let head, _) = try Self.parse("GET http://example.com/a/b?q=1#frag HTTP/1.0\r\n\r\n") else { Issue.record("incomplete"); return }
        #expect(head.target == .http(path: "/a/b?q=1"))
        #expect(head.port == 80)
        guard case .complete(let other, _) = try Self.parse("POST http://[::1]:8080?x HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n") else { Issue.record("incomplete"); return }
        #expect(other.host == "::1")
        #expect(other.port == 8080)
        #expect(other.target == .http(path: "/?x"))
    }

    @Test("a head still arriving is incomplete, not an error")
    func incomplete() throws {
        #expect(try Self.parse("CONNECT a.example:443 HTTP/1.1\r\nHost: a") == .incomplete)
        #expect(try Self.parse("") == .incomplete)
    }

    @Test("malformed heads are refused with their code", arguments: [
        ("GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n", ProxyError.Code.notAProxyRequest),
        ("GET https://a.example/ HTTP/1.1\r\n\r\n", .notAProxyRequest),
        ("CONNECT a.example HTTP/1.1\r\n\r\n", .malformed),
        ("CONNECT a.example:0 HTTP/1.1\r\n\r\n", .malformed),
        ("CONNECT a.example:99999 HTTP/1.1\r\n\r\n", .malformed),
        ("CONNECT user@a.example:443 HTTP/1.1\r\n\r\n", .malformed),
        ("CONNECT a.example:443 HTTP/2.0\r\n\r\n", .unsupportedVersion),
        ("CONNECT a.example:443  HTTP/1.1\r\n\r\n", .malformed),
        ("CONNECT a.example:443 HTTP/1.1\nHost: a\r\n\r\n", .malformed),
        ("CONNECT a.example:443 HTTP/1.1\r\nNo colon here\r\n\r\n", .malformed),
        ("CONNECT a.example:443 HTTP/1.1\r\nBad Name: x\r\n\r\n", .malformed),
        ("CONNECT a.example:443 HTTP/1.1\r\nX: a\u{01}b\r\n\r\n", .malformed),
        ("POST http://a.example/ HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", .malformed),
        ("\u{16}\u{03}\u{01}\u{02}\u{00}", .malformed),
        ("CONNECT a_b!.example:443 HTTP/1.1\r\n\r\n", .malformed),
    ])
    func refusesMalformed(_ text: String, _ code: ProxyError.Code) {
        #expect(throws: ProxyError(code, "")) { try Self.parse(text) }
    }

    @Test("a head longer than the limit, or with too many fields, is refused")
    func bounded() {
        let long = "CONNECT a.example:443 HTTP/1.1\r\nX-Pad: " + String(repeating: "a", count: 2000)
        #expect(throws: ProxyError(.headTooLarge, "")) { try Self.parse(long, limit: 1024) }
        #expect(throws: ProxyError(.headTooLarge, "")) { try Self.parse(long + "\r\n\r\n", limit: 1024) }
        let fields = (0...ProxyRequestHead.maximumFields).map { "X-\($0): 1\r\n" }.joined()
        #expect(throws: ProxyError(.headTooLarge, "")) { try Self.parse("CONNECT a.example:443 HTTP/1.1\r\n" + fields + "\r\n") }
    }

    @Test("the origin gets the origin-form request without the token or hop-by-hop fields, one request per connection")
    func originHead() throws {
        let text = "POST http://a.example:8080/v1/x HTTP/1.1\r\nHost: a.example:8080\r\nProxy-Authorization: Bearer secret\r\n"
            + "Connection: keep-alive, X-Drop\r\nX-Drop: 1\r\nProxy-Connection: keep-alive\r\nContent-Length: 2\r\nAccept: */*\r\n\r\n"
        guard case .complete(let head, _) = try Self.parse(text) else { Issue.record("incomplete"); return }
        let sent = String(decoding: ProxyConnectionHandler.originHead(head, path: "/v1/x"), as: UTF8.self)
        #expect(sent == "POST /v1/x HTTP/1.1\r\nHost: a.example:8080\r\nContent-Length: 2\r\nAccept: */*\r\nConnection: close\r\n\r\n")
        guard case .complete(let bare, _) = try Self.parse("GET http://b.example/ HTTP/1.0\r\n\r\n") else { Issue.record("incomplete"); return }
        #expect(String(decoding: ProxyConnectionHandler.originHead(bare, path: "/"), as: UTF8.self)
            == "GET / HTTP/1.1\r\nHost: b.example\r\nConnection: close\r\n\r\n")
    }

    @Test("--resolve and --listen read curl's and HOST:PORT forms, and refuse others")
    func configuration() throws {
        var configuration = ProxyConfiguration(host: "127.0.0.1", port: 0)
        try configuration.addResolve("API.openai.com:443:127.0.0.2")
        try configuration.addResolve("v6.example:443:[::1]")
        #expect(configuration.resolve == ["api.openai.com:443": "127.0.0.2", "v6.example:443": "::1"])
        #expect(throws: ProxyError(.malformed, "")) { try configuration.addResolve("api.openai.com:127.0.0.2") }
        #expect(try ProxyConfiguration.listenAddress("[::1]:3128") == ("::1", 3128))
        #expect(throws: ProxyError(.malformed, "")) { try ProxyConfiguration.listenAddress("3128") }
    }
}
