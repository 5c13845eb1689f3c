import Foundation
public import TesseraCore

/// What Tessera believes about the network: the names it is reached by, and the proxies whose forwarding headers it
/// trusts. Nothing a client sends is believed otherwise: a `Host` that is not one of ``publicURLs`` is refused (so the
/// issuer, endpoints and links cannot be steered), and a proxy's forwarding headers (``forwardedHeaders``: the
/// `X-Forwarded-*` ones or RFC 7239 `Forwarded`) count only from a ``trustedProxies`` peer; a host they name is checked
/// against ``publicURLs`` as a `Host` is.
public struct NetworkPolicy: Sendable {
    /// The URLs this deployment answers to, normalised (`https://login.contoso.com`, `https://localhost:8443`); the
    /// first is canonical. Empty: whatever the request says (only for an app driven in-process, as tests do).
    public var publicURLs: [String]
    /// Peers allowed to say, in ``forwardedHeaders``, whom they forward for, and the scheme and host the client used.
    public var trustedProxies: [IPAddressRange]
    /// The one kind of forwarding header the trusted proxies set.
    public var forwardedHeaders: ForwardedHeaders

    public init(publicURLs: [String] = [], trustedProxies: [IPAddressRange] = [], forwardedHeaders: ForwardedHeaders = .xForwarded) {
        self.publicURLs = publicURLs.compactMap(Self.normalise)
        self.trustedProxies = trustedProxies
        self.forwardedHeaders = forwardedHeaders
    }

    /// The URLs a server on `host:port` answers to when none are configured: the loopback names, and `host` itself
    /// when it is a specific address.
    public static func loopback(scheme: String, host: String, port: Int) -> [String] {
        var hosts = ["localhost", "127.0.0.1", "[::1]"]
        if !["0.0.0.0", "::", "localhost", "127.0.0.1", "::1"].contains(host) { hosts.append(host.contains(":") ? "[\(host)]" : host) }
        return hosts.map { "\(scheme)://\($0):\(port)" }
    }

    /// `scheme://host[:port]` in lower case without a default port or trailing slash; nil when `url` is not one.
    public static func normalise(_ url: String) -> String? {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(), scheme == "https" || scheme == "http",
              let host = components.host?.lowercased(), !host.isEmpty, components.path.isEmpty || components.path == "/",
              components.query == nil, components.user == nil
        else { return nil }
        let shownHost = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        if let port = components.port, !(scheme == "https" && port == 443), !(scheme == "http" && port == 80) {
            return "\(scheme)://\(shownHost):\(port)"
        }
        return "\(scheme)://\(shownHost)"
    }

    /// The base URL of a request that came in over `scheme` with this `Host`, or nil when the deployment does not
    /// answer to that name.
    public func baseURL(scheme: String, host: String?) -> String? {
        guard let host, !host.isEmpty, Self.isPlainHost(host) else {
            return publicURLs.isEmpty ? "\(scheme)://localhost" : nil
        }
        let written = "\(scheme)://\(host)"
        // A host written as the deployment's own URL has it (every request of a client that was given that URL):
        // normalising it again, through Foundation's URL parser, was 1% of a `POST /users`' CPU.
        if publicURLs.contains(written) { return written }
        guard let candidate = Self.normalise(written) else { return nil }
        if publicURLs.isEmpty { return candidate }
        return publicURLs.contains(candidate) ? candidate : nil
    }

    /// Whether a `Host` value has no whitespace, `/` or `@` (no path or user information smuggled into the URL made of
    /// it), judged scalar by scalar: a `/` or `@` followed by a combining mark is still a `/` or `@` in the URL (judged as
    /// Characters, "evil/\u{0301}x" passed). ASCII (what clients send) byte by byte: walking every request's `Host` by
    /// Character (grapheme breaking) was about 1% of a kept-alive `GET /healthz`'s CPU.
    static func isPlainHost(_ host: String) -> Bool {
        var ascii = true
        for byte in host.utf8 {
            // Unicode's White_Space in ASCII: tab, line feed, vertical tab, form feed, carriage return and space.
            if (byte >= 0x09 && byte <= 0x0D) || byte == 0x20 || byte == UInt8(ascii: "/") || byte == UInt8(ascii: "@") { return false }
            if byte >= 0x80 { ascii = false }
        }
        // Beyond ASCII, Unicode's other white space (next line, no-break, line separator, ideographic space, …).
        return ascii || host.unicodeScalars.allSatisfy { !$0.properties.isWhitespace }
    }

    /// Whether `url` (any URL) lies on one of this deployment's own base URLs; without configured ones, on `base`.
    public func isOwn(_ url: String, base: String) -> Bool {
        guard let components = URLComponents(string: url), let scheme = components.scheme, let host = components.host else { return false }
        let port = components.port.map { ":\($0)" } ?? ""
        guard let origin = Self.normalise("\(scheme)://\(host.contains(":") ? "[\(host)]" : host)\(port)") else { return false }
        return publicURLs.isEmpty ? origin == base : publicURLs.contains(origin)
    }

    /// Whether `issuer` is one this deployment issues for `tenant`, reached at `base`.
    public func isOwnIssuer(_ issuer: String, tenant: String, base: String) -> Bool {
        let bases = publicURLs.isEmpty ? [base] : publicURLs
        return bases.contains { issuer == "\($0)/\(tenant)/v2.0" }
    }

    /// The client's address: the peer's, or, when the peer is a trusted proxy, the right-most address in
    /// `X-Forwarded-For` that is not itself a trusted proxy.
    public func clientAddress(peer: String?, forwardedFor: String?) -> String? {
        guard let peer else { return nil }
        guard let forwardedFor, isTrusted(peer) else { return peer }
        var client = peer
        for hop in forwardedFor.split(separator: ",").reversed() {
            let address = hop.trimmingCharacters(in: .whitespaces)
            guard Self.address(address) != nil else { break }
            client = address
            if !isTrusted(address) { break }
        }
        return client
    }

    /// The scheme a request was made with: the listener's, or, from a trusted proxy that terminates TLS (Tessera on
    /// plain http behind it), the one its `X-Forwarded-Proto` says (`https` or `http`; anything else is ignored).
    public func scheme(listener: String, peer: String?, forwardedProto: String?) -> String {
        guard let peer, let forwardedProto, isTrusted(peer) else { return listener }
        let proto = forwardedProto.trimmingCharacters(in: .whitespaces).lowercased()
        return proto == "https" || proto == "http" ? proto : listener
    }

    /// The scheme, host and client address of a request that came in over `listener` from `peer` with `host` (its
    /// `Host`) and `headers` (names in lower case; repeated fields joined with ", "). From a trusted proxy, its word in
    /// ``forwardedHeaders`` replaces what the connection says; the host it names still has to pass ``baseURL(scheme:host:)``.
    public func resolve(listener: String, peer: String?, host: String?, headers: [String: String]) -> ForwardedRequest {
        switch forwardedHeaders {
        case .xForwarded:
            var forwardedHost = host
            if let peer, isTrusted(peer), let value = headers["x-forwarded-host"] {
                // A proxy that appends names the host it was asked for last.
                forwardedHost = value.split(separator: ",", omittingEmptySubsequences: false).last
                    .map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            }
            return ForwardedRequest(scheme: scheme(listener: listener, peer: peer, forwardedProto: headers["x-forwarded-proto"]),
                                    host: forwardedHost, clientAddress: clientAddress(peer: peer, forwardedFor: headers["x-forwarded-for"]))
        case .forwarded:
            let unchanged = ForwardedRequest(scheme: listener, host: host, clientAddress: peer)
            guard let peer, isTrusted(peer), let value = headers["forwarded"], let elements = Self.parseForwarded(value) else { return unchanged }
            // Each proxy appends an element about the request it received: `for` its client, `proto` and `host` what that
            // client used. From the right, each element whose `for` is a trusted proxy passes belief on to the one before.
            var client = peer
            var chosen: [String: String]?
            for element in elements.reversed() {
                chosen = element
                guard let node = element["for"], let address = Self.forwardedNode(node) else { break }
                client = address
                if !isTrusted(address) { break }
            }
            guard let chosen else { return unchanged }
            let proto = chosen["proto"]?.lowercased()
            return ForwardedRequest(scheme: proto == "https" || proto == "http" ? proto ?? listener : listener,
                                    host: chosen["host"] ?? host, clientAddress: client)
        }
    }

    /// The elements of an RFC 7239 `Forwarded` value, each its parameters by lower-case name; nil when the value is not
    /// one (a proxy's word that cannot be read is not believed in part). Empty list members are skipped.
    public static func parseForwarded(_ value: String) -> [[String: String]]? {
        var elements: [[String: String]] = []
        var element: [String: String] = [:]
        var characters = Array(value.unicodeScalars)[...]
        func skipSpace() { while let c = characters.first, c == " " || c == "\t" { characters.removeFirst() } }
        while true {
            skipSpace()
            guard let first = characters.first else { break }
            if first == "," || first == ";" {
                characters.removeFirst()
                if first == ",", !element.isEmpty { elements.append(element); element = [:] }
                continue
            }
            let name = String(String.UnicodeScalarView(characters.prefix { isTokenCharacter($0) })).lowercased()
            guard !name.isEmpty else { return nil }
            characters.removeFirst(name.unicodeScalars.count)
            guard characters.first == "=" else { return nil }
            characters.removeFirst()
            var parsed = String.UnicodeScalarView()
            if characters.first == "\"" {
                characters.removeFirst()
                var closed = false
                while let c = characters.popFirst() {
                    if c == "\"" { closed = true; break }
                    if c == "\\" {
                        guard let escaped = characters.popFirst() else { return nil }
                        parsed.append(escaped)
                    } else {
                        parsed.append(c)
                    }
                }
                guard closed else { return nil }
            } else {
                let token = characters.prefix { isTokenCharacter($0) }
                guard !token.isEmpty else { return nil }
                parsed.append(contentsOf: token)
                characters.removeFirst(token.count)
            }
            guard element[name] == nil else { return nil }  // a parameter occurs at most once an element
            element[name] = String(parsed)
            skipSpace()
            guard characters.isEmpty || characters.first == ";" || characters.first == "," else { return nil }
        }
        if !element.isEmpty { elements.append(element) }
        return elements
    }

    /// RFC 7230's `tchar`: what a token (a parameter name, an unquoted value) is made of.
    static func isTokenCharacter(_ c: Unicode.Scalar) -> Bool {
        c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c) || "!#$%&'*+-.^_`|~".unicodeScalars.contains(c))
    }

    /// The IP address a `Forwarded` `for=` node names (`192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]:4711`); nil
    /// for `unknown`, an obfuscated `_name` or anything else.
    static func forwardedNode(_ node: String) -> String? {
        let host: Substring, port: Substring?
        if node.hasPrefix("[") {
            guard let close = node.firstIndex(of: "]") else { return nil }
            host = node[node.index(after: node.startIndex)..<close]
            let rest = node[node.index(after: close)...]
            guard rest.isEmpty || rest.hasPrefix(":") else { return nil }
            port = rest.isEmpty ? nil : rest.dropFirst()
            guard host.contains(":") else { return nil }
        } else {
            let parts = node.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count <= 2 else { return nil }
            host = parts[0]
            port = parts.count == 2 ? parts[1] : nil
        }
        if let port {
            let digits = !port.isEmpty && port.count <= 5 && port.allSatisfy(\.isASCII) && port.allSatisfy(\.isNumber)
            let obfuscated = port.count > 1 && port.hasPrefix("_") && port.dropFirst().allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
            guard digits || obfuscated else { return nil }
        }
        return IPAddress(String(host)) == nil ? nil : String(host)
    }

    /// Whether `address` may read `/metrics`: this machine, or a trusted proxy (a scraper behind it).
    func mayScrape(_ address: String) -> Bool {
        guard let parsed = Self.address(address) else { return false }
        return Self.loopback.contains { $0.contains(parsed) } || isTrusted(address)
    }

    func isTrusted(_ address: String) -> Bool {
        guard let parsed = Self.address(address) else { return false }
        return trustedProxies.contains { $0.contains(parsed) }
    }

    static let loopback = ["127.0.0.0/8", "::1/128"].compactMap(IPAddressRange.init(cidr:))

    /// An address as a peer or a Host names it (IPv6 possibly in brackets); nil when it is not an IP address.
    static func address(_ text: String) -> IPAddress? {
        IPAddress(text.hasPrefix("[") && text.hasSuffix("]") ? String(text.dropFirst().dropLast()) : text)
    }

    /// A `--trusted-proxy` value: a CIDR range, or one address (a /32 or /128).
    public static func proxyRange(_ text: String) -> IPAddressRange? {
        if text.contains("/") { return IPAddressRange(cidr: text) }
        return address(text).map { IPAddressRange(first: $0, last: $0) }
    }
}

/// The one kind of header a deployment's trusted proxies forward in (`serve --forwarded-headers`). Only one is read: a
/// proxy sets or overwrites the headers it was configured for and passes any other kind on from the client untouched, so
/// reading both would let a client speak for the proxy.
public enum ForwardedHeaders: String, Sendable, CaseIterable {
    /// `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host` (nginx's `proxy_set_header`, HAProxy's
    /// `option forwardfor`, most load balancers).
    case xForwarded = "x-forwarded"
    /// RFC 7239 `Forwarded`: `for=`, `proto=` and `host=` of each proxy's element.
    case forwarded

    /// The headers of this kind Tessera reads from a trusted proxy, for messages that tell an administrator what the
    /// proxy must send.
    public var headerNames: String {
        switch self {
        case .xForwarded: return "X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host headers"
        case .forwarded: return "Forwarded header (RFC 7239: for=, proto= and host=)"
        }
    }
}

/// What a request says about itself once the trusted proxies' word is taken: the scheme and `Host` the client used, and
/// the client's address.
public struct ForwardedRequest: Sendable, Equatable {
    public var scheme: String
    public var host: String?
    public var clientAddress: String?

    public init(scheme: String, host: String?, clientAddress: String?) {
        self.scheme = scheme
        self.host = host
        self.clientAddress = clientAddress
    }
}
