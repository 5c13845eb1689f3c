import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What Tessera believes about the network: the names it is reached by, and the proxies whose forwarding headers it
/// trusts. Nothing a client sends is believed otherwise: a `Host` that is not one of ``publicURLs`` is refused (so the
/// issuer, endpoints and links cannot be steered), and `X-Forwarded-For` counts only from a ``trustedProxies`` peer.
public struct NetworkPolicy: Sendable {
    /// The URLs this deployment answers to, normalised (`https://login.contoso.com`, `https://localhost:8443`); the
    /// first is canonical. Empty: whatever the request says (only for an app driven in-process, as tests do).
    public var publicURLs: [String]
    /// Peers allowed to say, in `X-Forwarded-For`, whom they forward for.
    public var trustedProxies: [IPRange]

    public init(publicURLs: [String] = [], trustedProxies: [IPRange] = []) {
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
            guard IPRange.bytes(of: address) != nil else { break }
            client = address
            if !isTrusted(address) { break }
        }
        return client
    }

    /// Whether `address` may read `/metrics`: this machine, or a trusted proxy (a scraper behind it).
    func mayScrape(_ address: String) -> Bool {
        guard let bytes = IPRange.bytes(of: address) else { return false }
        let loopback = [IPRange("127.0.0.0/8"), IPRange("::1")].compactMap { $0 }
        return loopback.contains { $0.contains(bytes) } || isTrusted(address)
    }

    func isTrusted(_ address: String) -> Bool {
        guard let bytes = IPRange.bytes(of: address) else { return false }
        return trustedProxies.contains { $0.contains(bytes) }
    }
}

/// An IPv4 or IPv6 network in CIDR notation (`10.0.0.0/8`, `::1/128`, or one address).
public struct IPRange: Sendable, Equatable, CustomStringConvertible {
    let network: [UInt8]
    let prefix: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
        guard let first = parts.first, let bytes = Self.bytes(of: first) else { return nil }
        let bits = bytes.count * 8
        let prefix = parts.count == 2 ? Int(parts[1]) : bits
        guard let prefix, (0...bits).contains(prefix) else { return nil }
        self.network = bytes
        self.prefix = prefix
    }

    public var description: String { "\(network.count == 4 ? network.map(String.init).joined(separator: ".") : "ipv6")/\(prefix)" }

    func contains(_ address: [UInt8]) -> Bool {
        var address = address
        // An IPv4 client seen through an IPv6 socket (::ffff:a.b.c.d) is that IPv4 address.
        if network.count == 4, address.count == 16, address[0..<10].allSatisfy({ $0 == 0 }), address[10] == 0xFF, address[11] == 0xFF {
            address = Array(address[12...])
        }
        guard address.count == network.count else { return false }
        var remaining = prefix
        for index in 0..<network.count where remaining > 0 {
            let take = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - take))
            if address[index] & mask != network[index] & mask { return false }
            remaining -= take
        }
        return true
    }

    /// The address's bytes (4 or 16), or nil when `text` is not an IP address.
    static func bytes(of text: String) -> [UInt8]? {
        var text = text
        if text.hasPrefix("["), text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}
