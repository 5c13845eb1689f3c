import ArgumentParser
import Testing
import TesseraCore
import Server
@testable import TesseraCommands

/// `serve --http` with an https:// public URL and no `--trusted-proxy`: refused, naming every forwarding header the
/// chosen `--forwarded-headers` kind reads, and the other kind's.
@Suite struct ServeProxyingTests {
    let publicURLs = ["https://login.contoso.com"]

    func refusal(_ kind: ForwardedHeaders) -> String? {
        do {
            try Serve.checkProxying(http: true, publicURLs: publicURLs, trustedProxies: [], forwardedHeaders: kind)
            return nil
        } catch let error as ValidationError {
            return error.message
        } catch {
            return "\(error)"
        }
    }

    @Test func theRefusalNamesEveryHeaderOfTheChosenKindFirst() throws {
        let xForwarded = try #require(refusal(.xForwarded))
        #expect(xForwarded.contains("name it with --trusted-proxy"))
        #expect(xForwarded.contains("Tessera believes only its X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host headers"))
        #expect(xForwarded.contains("with --forwarded-headers forwarded, its Forwarded header (RFC 7239: for=, proto= and host=) instead"))

        let forwarded = try #require(refusal(.forwarded))
        #expect(forwarded.contains("Tessera believes only its Forwarded header (RFC 7239: for=, proto= and host=)"))
        #expect(forwarded.contains("with --forwarded-headers x-forwarded, its X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host headers instead"))
    }

    @Test func aTrustedProxyOrAnHTTPPublicURLNeedsNoProxy() throws {
        let proxy = try #require(NetworkPolicy.proxyRange("127.0.0.6"))
        try Serve.checkProxying(http: true, publicURLs: publicURLs, trustedProxies: [proxy], forwardedHeaders: .xForwarded)
        try Serve.checkProxying(http: true, publicURLs: ["http://localhost:8080"], trustedProxies: [], forwardedHeaders: .forwarded)
        try Serve.checkProxying(http: false, publicURLs: publicURLs, trustedProxies: [], forwardedHeaders: .xForwarded)
    }
}
