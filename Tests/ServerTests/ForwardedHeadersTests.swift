import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
@testable import Server
import TesseraCore

/// A trusted proxy's word on the client, the scheme and the host: in `X-Forwarded-For`/`-Proto`/`-Host` or in RFC 7239
/// `Forwarded`, whichever one kind the deployment was told its proxies set; never from anyone else, and a host it names
/// is served only when it is one of the deployment's public URLs.
@Suite("Forwarded headers: X-Forwarded-Host and RFC 7239 Forwarded, from trusted proxies only")
struct ForwardedHeadersTests {
    static let publicURL = "https://login.contoso.test"

    static func policy(_ kind: ForwardedHeaders, trusting proxies: [String] = ["10.0.0.0/8"]) throws -> NetworkPolicy {
        NetworkPolicy(publicURLs: [publicURL], trustedProxies: try proxies.map { try #require(NetworkPolicy.proxyRange($0)) }, forwardedHeaders: kind)
    }

    @Test("Forwarded values parse as RFC 7239 says: elements, pairs, tokens, quoted strings, names in any case")
    func parser() {
        #expect(NetworkPolicy.parseForwarded("for=192.0.2.60;proto=http;by=203.0.113.43")
            == [["for": "192.0.2.60", "proto": "http", "by": "203.0.113.43"]])
        #expect(NetworkPolicy.parseForwarded("For=\"[2001:db8:cafe::17]:4711\"") == [["for": "[2001:db8:cafe::17]:4711"]])
        #expect(NetworkPolicy.parseForwarded("for=192.0.2.43, for=198.51.100.17") == [["for": "192.0.2.43"], ["for": "198.51.100.17"]])
        #expect(NetworkPolicy.parseForwarded("FOR=1.2.3.4;Proto=HTTPS ;host=\"login.contoso.test\"")
            == [["for": "1.2.3.4", "proto": "HTTPS", "host": "login.contoso.test"]])
        #expect(NetworkPolicy.parseForwarded("for=\"_hidden\\\"x\"") == [["for": "_hidden\"x"]], "a quoted pair stands for its character")
        #expect(NetworkPolicy.parseForwarded(", for=1.2.3.4 ,, ") == [["for": "1.2.3.4"]], "empty list members are skipped")
        #expect(NetworkPolicy.parseForwarded("") == [])
        // Not a Forwarded value: none of it is believed.
        for malformed in ["for=1.2.3.4;for=5.6.7.8", "for", "for=", "=1.2.3.4", "for=\"unterminated", "for=[2001:db8::1]",
                          "for=1.2.3.4 proto=https", "for=a b", "for=1.2.3.4;proto=\"https\"x", "fór=1.2.3.4"] {
            #expect(NetworkPolicy.parseForwarded(malformed) == nil, "\(malformed)")
        }
    }

    @Test("a for= node is an IP address, with or without a port; unknown and obfuscated nodes are none")
    func nodes() {
        #expect(NetworkPolicy.forwardedNode("192.0.2.1") == "192.0.2.1")
        #expect(NetworkPolicy.forwardedNode("192.0.2.1:4711") == "192.0.2.1")
        #expect(NetworkPolicy.forwardedNode("192.0.2.1:_port") == "192.0.2.1")
        #expect(NetworkPolicy.forwardedNode("[2001:db8::1]:4711") == "2001:db8::1")
        #expect(NetworkPolicy.forwardedNode("[2001:db8::1]") == "2001:db8::1")
        for none in ["unknown", "_hidden", "2001:db8::1", "192.0.2.1:999999", "192.0.2.1:", "[192.0.2.1]", "[2001:db8::1]x",
                     "[2001:db8::1", "login.contoso.test", "192.0.2.1:80:80"] {
            #expect(NetworkPolicy.forwardedNode(none) == nil, "\(none)")
        }
    }

    @Test("Forwarded: believed from a trusted proxy only, from the right up to the first untrusted node; a malformed one not at all")
    func forwardedFromTrustedProxies() throws {
        let policy = try Self.policy(.forwarded)
        let headers = ["forwarded": "for=198.51.100.1;proto=https;host=login.contoso.test"]
        let connection = ForwardedRequest(scheme: "http", host: "internal:8080", clientAddress: "203.0.113.1")
        #expect(policy.resolve(listener: "http", peer: "203.0.113.1", host: "internal:8080", headers: headers) == connection)
        #expect(policy.resolve(listener: "http", peer: "10.1.2.3", host: "internal:8080", headers: headers)
            == ForwardedRequest(scheme: "https", host: "login.contoso.test", clientAddress: "198.51.100.1"))
        // A client's own element, passed on by the proxies, is not believed: the outermost trusted proxy's element is.
        let chain = ["forwarded": "for=1.2.3.4;proto=http;host=evil.example, for=\"198.51.100.1:5000\";proto=https;host=login.contoso.test, for=10.9.9.9;proto=http;host=internal"]
        #expect(policy.resolve(listener: "http", peer: "10.1.2.3", host: "internal:8080", headers: chain)
            == ForwardedRequest(scheme: "https", host: "login.contoso.test", clientAddress: "198.51.100.1"))
        #expect(policy.resolve(listener: "http", peer: "10.1.2.3", host: "internal:8080", headers: ["forwarded": "for=\"[2001:db8::7]:443\";proto=HTTPS"])
            == ForwardedRequest(scheme: "https", host: "internal:8080", clientAddress: "2001:db8::7"))
        // A proxy that does not know (or hides) its client still says the scheme and host; the client is the proxy.
        #expect(policy.resolve(listener: "http", peer: "10.1.2.3", host: "internal:8080", headers: ["forwarded": "for=unknown;proto=https;host=login.contoso.test"])
            == ForwardedRequest(scheme: "https", host: "login.contoso.test", clientAddress: "10.1.2.3"))
        #expect(policy.resolve(listener: "http", peer: "10.1.2.3", host: "h", headers: ["forwarded": "for=198.51.100.1;proto=gopher"]).scheme == "http")
        #expect(policy.resolve(listener: "http", peer: "10.1.2.3", host: "h", headers: ["forwarded": "for=198.51.100.1;for=1.2.3.4;proto=https"])
            == ForwardedRequest(scheme: "http", host: "h", clientAddress: "10.1.2.3"))
        // In this mode the X-Forwarded headers are the client's, passed on: not read.
        #expect(policy.resolve(listener: "http", peer: "10.1.2.3", host: "internal:8080", headers: [
            "x-forwarded-for": "198.51.100.9", "x-forwarded-proto": "https", "x-forwarded-host": "login.contoso.test",
        ]) == ForwardedRequest(scheme: "http", host: "internal:8080", clientAddress: "10.1.2.3"))
    }

    @Test("X-Forwarded-Host: believed from a trusted proxy only (its last value), beside X-Forwarded-For and -Proto; Forwarded is not read")
    func xForwardedHost() throws {
        let policy = try Self.policy(.xForwarded)
        let headers = ["x-forwarded-host": "login.contoso.test", "x-forwarded-proto": "https", "x-forwarded-for": "198.51.100.1"]
        #expect(policy.resolve(listener: "http", peer: "10.1.2.3", host: "internal:8080", headers: headers)
            == ForwardedRequest(scheme: "https", host: "login.contoso.test", clientAddress: "198.51.100.1"))
        #expect(policy.resolve(listener: "http", peer: "203.0.113.1", host: "internal:8080", headers: headers)
            == ForwardedRequest(scheme: "http", host: "internal:8080", clientAddress: "203.0.113.1"))
        #expect(policy.resolve(listener: "http", peer: "10.1.2.3", host: "internal", headers: ["x-forwarded-host": "evil.example, login.contoso.test"]).host
            == "login.contoso.test")
        #expect(policy.resolve(listener: "https", peer: "10.1.2.3", host: "login.contoso.test", headers: [:])
            == ForwardedRequest(scheme: "https", host: "login.contoso.test", clientAddress: "10.1.2.3"))
        #expect(policy.resolve(listener: "http", peer: "10.1.2.3", host: "internal:8080", headers: ["forwarded": "for=198.51.100.1;proto=https;host=login.contoso.test"])
            == ForwardedRequest(scheme: "http", host: "internal:8080", clientAddress: "10.1.2.3"))
    }

    @Test("a forwarded host is served only when it is a public URL's: nothing else becomes the base URL")
    func forwardedHostIsChecked() throws {
        for (kind, header) in [(ForwardedHeaders.xForwarded, "x-forwarded-host"), (.forwarded, "forwarded")] {
            let policy = try Self.policy(kind)
            func base(_ host: String) -> String? {
                let value = kind == .forwarded ? "proto=https;host=\"\(host)\"" : host
                let resolved = policy.resolve(listener: "https", peer: "10.1.2.3", host: "login.contoso.test", headers: [header: value])
                return policy.baseURL(scheme: resolved.scheme, host: resolved.host)
            }
            #expect(base("login.contoso.test") == Self.publicURL)
            #expect(base("LOGIN.contoso.test:443") == Self.publicURL)
            for other in ["evil.example", "login.contoso.test@evil.example", "login.contoso.test/evil", "login.contoso.test:8443", ""] {
                #expect(base(other) == nil, "\(kind) \(other)")
            }
        }
    }

    // MARK: Requests over a socket

    /// `body` with a client connected over loopback to `h.app` served over plain http, as a proxy on this machine would be.
    static func live(_ h: Harness, _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let application = Application(responder: TesseraResponder(app: h.app, scheme: "http"))
        try await application.test(.live) { client in try await body(client) }
    }

    static func fields(_ pairs: [(String, String)]) -> HTTPFields {
        var fields = HTTPFields()
        for (name, value) in pairs { fields.append(HTTPField(name: HTTPField.Name(name)!, value: value)) }
        return fields
    }

    static func issuer(_ response: TestResponse) -> String? {
        (try? JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8))).flatMap { ($0 as? [String: Any])?["issuer"] as? String }
    }

    @Test("over a socket from a trusted proxy: Forwarded sets the issuer's host and scheme and the client's address; an unserved host is 421; X-Forwarded-* is not read")
    func forwardedOverASocket() async throws {
        try await Harness.run(network: try Self.policy(.forwarded, trusting: ["127.0.0.1", "::1"])) { h in
            let tenant = h.tenant.tenantId
            let discovery = "/\(tenant)/v2.0/.well-known/openid-configuration"
            try await Self.live(h) { client in
                let ok = try await client.execute(uri: discovery, method: .get,
                                                  headers: Self.fields([("Forwarded", "for=198.51.100.7;proto=https;host=login.contoso.test")]))
                #expect(ok.status == .ok)
                #expect(Self.issuer(ok) == "\(Self.publicURL)/\(tenant)/v2.0")
                let evil = try await client.execute(uri: discovery, method: .get, headers: Self.fields([("Forwarded", "for=198.51.100.7;proto=https;host=evil.example")]))
                #expect(evil.status == .misdirectedRequest)
                let xForwarded = try await client.execute(uri: discovery, method: .get, headers: Self.fields([
                    ("X-Forwarded-Host", "login.contoso.test"), ("X-Forwarded-Proto", "https"),
                ]))
                #expect(xForwarded.status == .misdirectedRequest, "in forwarded mode X-Forwarded-Host is not read")
                // The client's address is for='s: /metrics answers this machine and trusted proxies, not 198.51.100.7.
                let scraped = try await client.execute(uri: "/metrics", method: .get, headers: Self.fields([("Forwarded", "proto=https;host=login.contoso.test")]))
                #expect(scraped.status == .ok)
                let forwardedClient = try await client.execute(uri: "/metrics", method: .get,
                                                               headers: Self.fields([("Forwarded", "for=198.51.100.7;proto=https;host=login.contoso.test")]))
                #expect(forwardedClient.status == .notFound)
                let xClient = try await client.execute(uri: "/metrics", method: .get,
                                                       headers: Self.fields([("Forwarded", "proto=https;host=login.contoso.test"), ("X-Forwarded-For", "198.51.100.7")]))
                #expect(xClient.status == .ok, "in forwarded mode X-Forwarded-For is not read")
            }
        }
    }

    @Test("over a socket: X-Forwarded-Host from a trusted proxy sets the issuer's host; from an untrusted peer it is not read")
    func xForwardedHostOverASocket() async throws {
        let headers = Self.fields([("X-Forwarded-Host", "login.contoso.test"), ("X-Forwarded-Proto", "https")])
        try await Harness.run(network: try Self.policy(.xForwarded, trusting: ["127.0.0.1", "::1"])) { h in
            let discovery = "/\(h.tenant.tenantId)/v2.0/.well-known/openid-configuration"
            try await Self.live(h) { client in
                let ok = try await client.execute(uri: discovery, method: .get, headers: headers)
                #expect(ok.status == .ok && Self.issuer(ok) == "\(Self.publicURL)/\(h.tenant.tenantId)/v2.0")
                let evil = try await client.execute(uri: discovery, method: .get,
                                                    headers: Self.fields([("X-Forwarded-Host", "evil.example"), ("X-Forwarded-Proto", "https")]))
                #expect(evil.status == .misdirectedRequest)
                let rfc = try await client.execute(uri: discovery, method: .get, headers: Self.fields([("Forwarded", "proto=https;host=login.contoso.test")]))
                #expect(rfc.status == .misdirectedRequest, "in x-forwarded mode Forwarded is not read")
            }
        }
        try await Harness.run(network: try Self.policy(.xForwarded, trusting: ["192.0.2.1"])) { h in
            let discovery = "/\(h.tenant.tenantId)/v2.0/.well-known/openid-configuration"
            try await Self.live(h) { client in
                let untrusted = try await client.execute(uri: discovery, method: .get, headers: headers)
                #expect(untrusted.status == .misdirectedRequest)
            }
        }
    }
}
