/// The head of a request to the forward proxy (RFC 9112 §3, §9.3.6 of RFC 9110): `CONNECT host:port` (authority
/// form) or an absolute-form `http://host[:port]/path` request, and its header fields. Parsed from raw bytes, bounded
/// and strict: anything else is a ``ProxyError`` (answered 400 and closed), never a trap.
public struct ProxyRequestHead: Sendable, Hashable {
    public enum Target: Sendable, Hashable {
        /// A tunnel (`CONNECT host:port`).
        case tunnel
        /// A plain HTTP request for `path` (origin form, with its query) on the host.
        case http(path: String)
    }

    public var method: String
    public var target: Target
    /// The destination host, lowercased, without brackets for an IPv6 literal.
    public var host: String
    public var port: Int
    /// `HTTP/1.0` or `HTTP/1.1`.
    public var version: String
    /// The header fields in order; names as sent.
    public var headers: [(name: String, value: String)]

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.method == rhs.method && lhs.target == rhs.target && lhs.host == rhs.host && lhs.port == rhs.port
            && lhs.version == rhs.version && lhs.headers.map(\.name) == rhs.headers.map(\.name) && lhs.headers.map(\.value) == rhs.headers.map(\.value)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(method); hasher.combine(host); hasher.combine(port)
    }

    /// The first value of a header field (names compared without case).
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name }?.value
    }

    /// What parsing the start of a connection's bytes gave.
    public enum Parsed: Sendable, Hashable {
        /// The head is not complete yet.
        case incomplete
        /// The head, and how many bytes it took (what follows is the body or the tunnel's first bytes).
        case complete(ProxyRequestHead, length: Int)
    }

    /// Most header fields in a head.
    public static let maximumFields = 100

    /// Parses `bytes` (the connection's first bytes); throws when they cannot be the start of a valid head, or when the
    /// head is longer than `limit` bytes.
    public static func parse(_ bytes: some Collection<UInt8>, limit: Int) throws(ProxyError) -> Parsed {
        let data = Array(bytes.prefix(limit + 4))
        guard let end = Self.endOfHead(data) else {
            if data.count > limit { throw ProxyError(.headTooLarge, "The request head exceeds \(limit) bytes.") }
            // Reject garbage early rather than waiting for a head that never comes.
            if let first = data.first, !(65...90).contains(first) { throw ProxyError(.malformed, "The request does not start with a method.") }
            return .incomplete
        }
        guard end <= limit else { throw ProxyError(.headTooLarge, "The request head exceeds \(limit) bytes.") }
        var lines: [ArraySlice<UInt8>] = []
        var start = 0
        var i = 0
        while i < end {
            if data[i] == 13, data[i + 1] == 10 {
                lines.append(data[start..<i]); i += 2; start = i
            } else if data[i] == 10 || data[i] == 13 || data[i] == 0 {
                throw ProxyError(.malformed, "A bare CR, LF or NUL in the request head.")
            } else {
                i += 1
            }
        }
        lines.append(data[start..<end])  // the last line, ended by the blank line's CRLF
        guard let requestLine = lines.first else { throw ProxyError(.malformed, "The request line is missing.") }
        var head = try Self.requestLine(requestLine)
        let fields = lines.dropFirst()
        guard fields.count <= maximumFields else { throw ProxyError(.headTooLarge, "More than \(maximumFields) header fields.") }
        for line in fields {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex else {
                throw ProxyError(.malformed, "A header field without a name.")
            }
            let name = line[line.startIndex..<colon]
            guard name.allSatisfy(Self.isTokenByte) else { throw ProxyError(.malformed, "A header field name with a forbidden character.") }
            let value = line[(colon + 1)...]
            guard value.allSatisfy({ $0 == 9 || ($0 >= 32 && $0 != 127) }) else {
                throw ProxyError(.malformed, "A header field value with a control character.")
            }
            head.headers.append((String(decoding: name, as: UTF8.self),
                                 String(decoding: value, as: UTF8.self).trimmingSpaces))
        }
        if case .http = head.target, let host = head.header("host"), host.isEmpty {
            throw ProxyError(.malformed, "An empty Host header.")
        }
        if head.headers.contains(where: { $0.name.lowercased() == "content-length" }),
           head.headers.contains(where: { $0.name.lowercased() == "transfer-encoding" }) {
            throw ProxyError(.malformed, "Both Content-Length and Transfer-Encoding (a request smuggling pattern).")
        }
        return .complete(head, length: end + 4)
    }

    /// The index of the blank line's CR (the head ends 4 bytes later), if the bytes hold one.
    static func endOfHead(_ data: [UInt8]) -> Int? {
        guard data.count >= 4 else { return nil }
        for i in 0...(data.count - 4) where data[i] == 13 && data[i + 1] == 10 && data[i + 2] == 13 && data[i + 3] == 10 {
            return i
        }
        return nil
    }

    static func requestLine(_ line: ArraySlice<UInt8>) throws(ProxyError) -> ProxyRequestHead {
        let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, parts[0].allSatisfy(Self.isTokenByte) else {
            throw ProxyError(.malformed, "The request line is not 'METHOD target HTTP/1.x'.")
        }
        let method = String(decoding: parts[0], as: UTF8.self)
        let target = String(decoding: parts[1], as: UTF8.self)
        let version = String(decoding: parts[2], as: UTF8.self)
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else {
            throw ProxyError(.unsupportedVersion, "Only HTTP/1.0 and HTTP/1.1 are spoken here.")
        }
        guard target.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else { throw ProxyError(.malformed, "The request target has a forbidden character.") }
        if method == "CONNECT" {
            let (host, port) = try Self.authority(target, defaultPort: nil)
            return ProxyRequestHead(method: method, target: .tunnel, host: host, port: port, version: version, headers: [])
        }
        guard target.lowercased().hasPrefix("http://") else {
            throw ProxyError(.notAProxyRequest, target.lowercased().hasPrefix("https://")
                ? "Send https requests through CONNECT."
                : "A forward proxy takes CONNECT host:port or an absolute http:// URL.")
        }
        let rest = target.dropFirst(7)
        let slash = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let (host, port) = try Self.authority(String(rest[..<slash]), defaultPort: 80)
        var path = String(rest[slash...])
        if path.isEmpty { path = "/" } else if path.first == "?" { path = "/" + path }
        if let hash = path.firstIndex(of: "#") { path = String(path[..<hash]) }
        return ProxyRequestHead(method: method, target: .http(path: path), host: host, port: port, version: version, headers: [])
    }

    /// `host:port` (or `[v6]:port`); the port is required without a default. No userinfo.
    static func authority(_ text: String, defaultPort: Int?) throws(ProxyError) -> (String, Int) {
        guard !text.isEmpty, !text.contains("@") else { throw ProxyError(.malformed, "The target names no host.") }
        var host: Substring
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw ProxyError(.malformed, "An unclosed IPv6 literal.") }
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            if !after.isEmpty {
                guard after.first == ":" else { throw ProxyError(.malformed, "Junk after an IPv6 literal.") }
                portText = after.dropFirst()
            }
            guard !host.isEmpty, host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
                throw ProxyError(.malformed, "An invalid IPv6 literal.")
            }
        } else if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        } else {
            host = Substring(text)
        }
        let port: Int
        if let portText {
            guard let value = Int(portText), (1...65_535).contains(value), portText.allSatisfy(\.isASCII) else {
                throw ProxyError(.malformed, "The port is not a number from 1 to 65535.")
            }
            port = value
        } else if let defaultPort {
            port = defaultPort
        } else {
            throw ProxyError(.malformed, "CONNECT needs host:port.")
        }
        let lower = host.lowercased()
        guard !lower.isEmpty, lower.utf8.count <= 253,
              lower.utf8.allSatisfy({ (97...122).contains($0) || (48...57).contains($0) || $0 == 45 || $0 == 46 || $0 == 58 || $0 == 95 })
        else { throw ProxyError(.malformed, "The host is not a hostname or an IP address.") }
        return (lower, port)
    }

    static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case 48...57, 65...90, 97...122: true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"): true
        default: false
        }
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
