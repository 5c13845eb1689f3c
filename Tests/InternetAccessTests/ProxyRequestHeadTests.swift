import NIOHTTP1
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

    @Test("the origin gets the origin-form request over HTTP/1.1 without the token, hop-by-hop fields or Expect; its connection kept")
    func originHead() throws {
        var headers = HTTPHeaders()
        for (name, value) in [("Host", "a.example:8080"), ("Proxy-Authorization", "Bearer secret"), ("Connection", "keep-alive, X-Drop"),
                              ("X-Drop", "1"), ("Proxy-Connection", "keep-alive"), ("Content-Length", "2"), ("Expect", "100-continue"),
                              ("Accept", "*/*")] { headers.add(name: name, value: value) }
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "http://a.example:8080/v1/x", headers: headers)
        let target = try PlainHTTPConnectionHandler.target(head)
        #expect(target.host == "a.example" && target.port == 8080 && target.target == .http(path: "/v1/x"))
        let sent = try #require(PlainHTTPConnectionHandler.originHead(head, host: target.host, port: target.port, path: "/v1/x"))
        #expect(sent.uri == "/v1/x" && sent.version == .http1_1 && sent.method == .POST)
        #expect(sent.headers.map { "\($0.name): \($0.value)" } == ["Host: a.example:8080", "Content-Length: 2", "Accept: */*"])
        let bare = HTTPRequestHead(version: .http1_0, method: .GET, uri: "http://b.example/", headers: [:])
        let plain = try #require(PlainHTTPConnectionHandler.originHead(bare, host: "b.example", port: 80, path: "/"))
        #expect(plain.version == .http1_1 && plain.headers.map { "\($0.name): \($0.value)" } == ["Host: b.example"])
        // Another coding than chunked is not passed on; an origin-form target and a request smuggling pattern are refused.
        let gzip = HTTPRequestHead(version: .http1_1, method: .POST, uri: "http://b.example/", headers: ["Transfer-Encoding": "gzip"])
        #expect(PlainHTTPConnectionHandler.originHead(gzip, host: "b.example", port: 80, path: "/") == nil)
        #expect(throws: ProxyError(.notAProxyRequest, "")) {
            try PlainHTTPConnectionHandler.target(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/x", headers: [:]))
        }
        #expect(throws: ProxyError(.malformed, "")) {
            try PlainHTTPConnectionHandler.target(HTTPRequestHead(version: .http1_1, method: .POST, uri: "http://b.example/",
                                                                  headers: ["Content-Length": "1", "Transfer-Encoding": "chunked"]))
        }
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
