import Testing
@testable import Server
import TesseraCore

/// What the HTTP edge does for every request, done once: the base URL of a `Host` written as the deployment's own URL
/// is taken as written, and the request id minted as the request arrived is the one its handlers see.
@Suite("The HTTP edge's work per request")
struct RequestEdgeTests {
    @Test("a Host written as one of the public URLs gives that URL, as normalising it would; any other spelling is normalised as before")
    func baseURLAsWritten() {
        let policy = NetworkPolicy(publicURLs: ["https://login.contoso.com", "https://localhost:8443", "https://127.0.0.1:8443",
                                                "https://[::1]:8443", "http://[2001:db8::1]:8080", "HTTPS://Login.Fabrikam.com:443/"])
        for url in policy.publicURLs {
            // The premise of answering a URL as written: a normalised URL normalises to itself.
            #expect(NetworkPolicy.normalise(url) == url)
            let scheme = String(url.prefix { $0 != ":" }), host = String(url.dropFirst(scheme.count + 3))
            #expect(policy.baseURL(scheme: scheme, host: host) == url, "\(url)")
        }
        #expect(policy.baseURL(scheme: "https", host: "login.fabrikam.com") == "https://login.fabrikam.com")
        #expect(policy.baseURL(scheme: "https", host: "Login.Fabrikam.com:443") == "https://login.fabrikam.com")
        #expect(policy.baseURL(scheme: "https", host: "LOCALHOST:8443") == "https://localhost:8443")
        #expect(policy.baseURL(scheme: "http", host: "localhost:8443") == nil)
        #expect(policy.baseURL(scheme: "https", host: "localhost:8443@evil.example") == nil)
        #expect(policy.baseURL(scheme: "https", host: "localhost:8443/") == nil)
    }

    @Test("a request carries the id it is given, and mints one only when given none")
    func requestID() {
        let given = APIRequest(method: "GET", path: "/v1.0/users", query: [], headers: [:], body: [], baseURL: "https://x", requestID: "r-1")
        #expect(given.requestID == "r-1")
        let minted = APIRequest(method: "GET", path: "/v1.0/users", query: [], headers: [:], body: [], baseURL: "https://x")
        #expect(Identifier.isGUID(minted.requestID))
    }
}
