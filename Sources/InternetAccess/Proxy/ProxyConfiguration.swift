public import NIOSSL
import Synchronization

/// How the forward proxy runs: where it listens, which ports it tunnels to, its limits and its test-only resolver.
public struct ProxyConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// A second listener where clients speak to the proxy over TLS (an HTTPS proxy), off by default.
    public var secureListener: SecureListener?
    /// Ports CONNECT may reach (443 by default) and plain HTTP may reach (80 by default); others get 403.
    public var tunnelPorts: Set<Int> = [443]
    public var httpPorts: Set<Int> = [80]
    /// Longest request head, in bytes.
    public var maximumHeadBytes = 16 * 1024
    /// Seconds a client has to send its whole request head (slow clients).
    public var headTimeout: Int64 = 10
    /// Seconds a connection (or tunnel) may stay without any byte either way.
    public var idleTimeout: Int64 = 120
    /// Connections open at once; more are answered 503 and closed.
    public var maximumConnections = 4096
    /// Seconds to wait for an origin's TCP connection.
    public var connectTimeout: Int64 = 10
    /// `host:port` → address overrides, as curl's `--resolve` (tests map real names to loopback origins).
    public var resolve: [String: String] = [:]

    public init(host: String, port: Int) { self.host = host; self.port = port }

    /// Reads `host:port:address` (curl's `--resolve` form; an IPv6 address may be bracketed).
    public mutating func addResolve(_ entry: String) throws(ProxyError) {
        let parts = entry.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, let port = Int(parts[1]), (1...65_535).contains(port), !parts[2].isEmpty else {
            throw ProxyError(.malformed, "--resolve takes host:port:address, not '\(entry)'.")
        }
        var address = String(parts[2])
        if address.hasPrefix("["), address.hasSuffix("]") { address = String(address.dropFirst().dropLast()) }
        resolve["\(parts[0].lowercased()):\(port)"] = address
    }

    /// Reads `HOST:PORT` (or `[v6]:PORT`).
    public static func listenAddress(_ text: String) throws(ProxyError) -> (String, Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65_535).contains(port) else {
            throw ProxyError(.malformed, "--listen takes HOST:PORT, not '\(text)'.")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw ProxyError(.malformed, "--listen names no host.") }
        return (host, port)
    }
}

extension ProxyConfiguration {
    /// The proxy's TLS listener (`--listen-tls`): the same proxy, spoken over TLS 1.2 or 1.3, which asks every client
    /// for a certificate and lets it present none. The handshake takes any certificate whose key the client proves it
    /// holds; the gatekeeper then decides whether it is a device certificate that counts (a refusal is a 407 the client
    /// can read, not a failed handshake). A bearer token works here as on the plain listener.
    ///
    /// Its certificate is fixed, or follows files that are read again while the proxy runs (`--tls-cert`): then each
    /// new connection shakes hands with the pair read last, and `reloader` runs beside the listener.
    public struct SecureListener: Sendable {
        public var host: String
        public var port: Int
        let contexts: Contexts
        /// Reads the certificate files again until cancelled (nil: a fixed certificate).
        let reloader: (@Sendable () async -> Void)?

        /// A listener presenting `certificateChain` (the proxy's certificate first) with `privateKey`.
        public init(host: String, port: Int, certificateChain: [NIOSSLCertificate], privateKey: NIOSSLPrivateKey) throws {
            self.host = host
            self.port = port
            self.contexts = Contexts(pem: nil, context: try NIOSSLContext(configuration: Self.configuration(certificateChain, privateKey)))
            self.reloader = nil
        }

        /// A listener presenting the PEM chain and key `pem` returns when a connection is accepted (the context is made
        /// again when they changed); `reloader` keeps them current while the proxy runs.
        public init(host: String, port: Int, pem: @escaping @Sendable () -> (chain: [UInt8], key: [UInt8]),
                    reloader: @escaping @Sendable () async -> Void) throws {
            let (chain, key) = pem()
            self.host = host
            self.port = port
            self.contexts = Contexts(pem: pem, chain: chain, key: key, context: try NIOSSLContext(configuration: try Self.configuration(pem: chain, key: key)))
            self.reloader = reloader
        }

        static func configuration(_ certificateChain: [NIOSSLCertificate], _ privateKey: NIOSSLPrivateKey) -> TLSConfiguration {
            var tls = TLSConfiguration.makeServerConfiguration(certificateChain: certificateChain.map { .certificate($0) },
                                                               privateKey: .privateKey(privateKey))
            tls.minimumTLSVersion = .tlsv12
            tls.certificateVerification = .optionalVerification
            tls.applicationProtocols = ["http/1.1"]
            return tls
        }

        static func configuration(pem chain: [UInt8], key: [UInt8]) throws -> TLSConfiguration {
            configuration(try NIOSSLCertificate.fromPEMBytes(chain), try NIOSSLPrivateKey(bytes: key, format: .pem))
        }

        /// The context a connection accepted now shakes hands with: made again when the PEM changed; kept when the
        /// new PEM makes none.
        final class Contexts: Sendable {
            let pem: (@Sendable () -> (chain: [UInt8], key: [UInt8]))?
            private let current: Mutex<(chain: [UInt8], key: [UInt8], context: NIOSSLContext)>

            init(pem: (@Sendable () -> (chain: [UInt8], key: [UInt8]))?, chain: [UInt8] = [], key: [UInt8] = [], context: NIOSSLContext) {
                self.pem = pem
                self.current = Mutex((chain, key, context))
            }

            func context() -> NIOSSLContext {
                guard let pem else { return current.withLock { $0.context } }
                let (chain, key) = pem()
                return current.withLock { current in
                    guard current.chain != chain || current.key != key else { return current.context }
                    let context = (try? SecureListener.configuration(pem: chain, key: key)).flatMap { try? NIOSSLContext(configuration: $0) }
                    current = (chain, key, context ?? current.context)
                    return current.context
                }
            }
        }
    }
}
