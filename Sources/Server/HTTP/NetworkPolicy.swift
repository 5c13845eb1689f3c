import Foundation
public import TesseraCore

/// What Tessera believes about the network: the names it is reached by, and the proxies whose forwarding headers it
/// trusts. Nothing a client sends is believed otherwise: a `Host` that is not one of ``publicURLs`` is refused (so the
/// issuer, endpoints and links cannot be steered), and `X-Forwarded-For` counts only from a ``trustedProxies`` peer.
public struct NetworkPolicy: Sendable {
    /// The URLs this deployment answers to, normalised (`https://login.contoso.com`, `https://localhost:8443`); the
    /// first is canonical. Empty: whatever the request says (only for an app driven in-process, as tests do).
    public var publicURLs: [String]
    /// Peers allowed to say, in `X-Forwarded-For`, whom they forward for.
    public var trustedProxies: [IPAddressRange]

    public init(publicURLs: [String] = [], trustedProxies: [IPAddressRange] = []) {
        self.publicURLs = publicURLs.compactMap(Self.normalise)
        self.trustedProxies = trustedProxies
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
        guard let host, !host.isEmpty, host.allSatisfy({ !$0.isWhitespace && $0 != "/" && $0 != "@" }) else {
            return publicURLs.isEmpty ? "\(scheme)://localhost" : nil
        }
        guard let candidate = Self.normalise("\(scheme)://\(host)") else { return nil }
        if publicURLs.isEmpty { return candidate }
        return publicURLs.contains(candidate) ? candidate : nil
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
