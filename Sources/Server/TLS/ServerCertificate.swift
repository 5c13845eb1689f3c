import Crypto
public import Foundation
import NIOCore
import NIOSSL
import SwiftASN1
public import TesseraCore
public import X509

/// A certificate chain and its private key as an organisation gives them to `serve --tls-cert FILE --tls-key FILE`:
/// PEM, the server's certificate first and the intermediates after it (a "full chain", as certbot writes it), the key
/// RSA or ECDSA in PKCS#8, SEC1 or PKCS#1 form. Made only when the key is the certificate's: a pair that does not
/// belong together is refused, never served.
public struct ServerCertificate: Sendable {
    /// The chain, the server's own certificate first.
    public let chain: [Certificate]
    /// The files' bytes, as NIOSSL takes them.
    let chainPEM: [UInt8]
    let keyPEM: [UInt8]

    /// The server's own certificate.
    public var leaf: Certificate { chain[0] }

    /// Parses `chainPEM` and `keyPEM`; throws, saying why, when either is unreadable or the key is not the one the
    /// first certificate certifies.
    public init(chainPEM: String, keyPEM: String, certificateName: String = "the certificate", keyName: String = "the key") throws(ServerCertificateError) {
        let documents: [PEMDocument]
        do { documents = try PEMDocument.parseMultiple(pemString: chainPEM) } catch {
            throw ServerCertificateError("\(certificateName) is not PEM (expected -----BEGIN CERTIFICATE----- blocks)")
        }
        var chain: [Certificate] = []
        for document in documents where document.discriminator == "CERTIFICATE" {
            do { chain.append(try Certificate(derEncoded: document.derBytes)) } catch {
                throw ServerCertificateError("\(certificateName) holds a CERTIFICATE block that is not an X.509 certificate")
            }
        }
        guard !chain.isEmpty else { throw ServerCertificateError("\(certificateName) holds no certificate") }
        if documents.contains(where: { $0.discriminator.hasSuffix("PRIVATE KEY") }) {
            throw ServerCertificateError("\(certificateName) holds a private key: give the key in its own file (--tls-key)")
        }
        let key: Certificate.PrivateKey
        do { key = try Certificate.PrivateKey(pemEncoded: keyPEM) } catch {
            throw ServerCertificateError("\(keyName) is not an unencrypted PEM private key (RSA or ECDSA; PKCS#8, SEC1 or PKCS#1)")
        }
        guard key.publicKey == chain[0].publicKey else {
            throw ServerCertificateError("\(keyName) does not match \(certificateName): the certificate's public key is not this key's (a renewal may have replaced one file but not yet the other)")
        }
        self.chain = chain
        self.chainPEM = Array(chainPEM.utf8)
        self.keyPEM = Array(keyPEM.utf8)
    }

    /// Reads the pair from `certificatePath` and `keyPath`.
    public static func load(certificatePath: String, keyPath: String) throws(ServerCertificateError) -> ServerCertificate {
        guard let chain = FileManager.default.contents(atPath: certificatePath) else {
            throw ServerCertificateError("cannot read the certificate file \(certificatePath)")
        }
        guard let key = FileManager.default.contents(atPath: keyPath) else { throw ServerCertificateError("cannot read the key file \(keyPath)") }
        return try ServerCertificate(chainPEM: String(decoding: chain, as: UTF8.self), keyPEM: String(decoding: key, as: UTF8.self),
                                     certificateName: "the certificate in \(certificatePath)", keyName: "the key in \(keyPath)")
    }

    /// Throws, saying why, unless the certificate is valid at `now` and names `host` (the canonical public URL's host;
    /// nil: any host).
    public func check(host: String?, now: Date) throws(ServerCertificateError) {
        if now > leaf.notValidAfter {
            throw ServerCertificateError("the certificate expired on \(Self.format(leaf.notValidAfter))")
        }
        if now < leaf.notValidBefore {
            throw ServerCertificateError("the certificate is not valid before \(Self.format(leaf.notValidBefore))")
        }
        guard let host else { return }
        guard covers(host) else {
            let names = Self.names(leaf)
            let listed = names.dns.map { "DNS:\($0)" } + names.ip.map { "IP:\($0)" }
            throw ServerCertificateError(listed.isEmpty
                ? "the certificate has no subject alternative names, so it covers no host name (browsers ignore the common name); \(host) needs one"
                : "the certificate does not cover \(host): it names \(listed.joined(separator: ", "))")
        }
    }

    /// The subject alternative names of `certificate`: DNS names (lower case) and IP addresses.
    public static func names(_ certificate: Certificate) -> (dns: [String], ip: [IPAddress]) {
        guard let extensionValue = try? certificate.extensions.subjectAlternativeNames else { return ([], []) }
        var dns: [String] = [], ip: [IPAddress] = []
        for name in extensionValue {
            switch name {
            case .dnsName(let value): dns.append(value.lowercased())
            case .ipAddress(let octets):
                if let address = Self.address(Array(octets.bytes)) { ip.append(address) }
            default: break
            }
        }
        return (dns, ip)
    }

    /// Whether the certificate is for `host` (a DNS name, or an IP address, in brackets or not), as a browser checks
    /// it: an IP address only against the IP addresses named, a name only against the DNS names (RFC 6125 with RFC
    /// 9525's wildcard rule: `*` only as the whole left-most label, standing for exactly one label). The subject's
    /// common name is not looked at, as browsers no longer do.
    public func covers(_ host: String) -> Bool { Self.covers(leaf, host) }

    /// Whether `certificate` is for `host`, as ``covers(_:)`` says.
    public static func covers(_ certificate: Certificate, _ host: String) -> Bool {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        let names = Self.names(certificate)
        if let address = IPAddress(bare) { return names.ip.contains(address) }
        return names.dns.contains { Self.dnsName($0, matches: bare) }
    }

    /// Whether the DNS name a certificate presents (`pattern`, possibly `*.contoso.com`) matches `host`.
    static func dnsName(_ pattern: String, matches host: String) -> Bool {
        let host = Self.canonical(host), pattern = Self.canonical(pattern)
        guard !host.isEmpty, !pattern.isEmpty else { return false }
        let hostLabels = host.split(separator: ".", omittingEmptySubsequences: false)
        let patternLabels = pattern.split(separator: ".", omittingEmptySubsequences: false)
        guard !hostLabels.contains(where: \.isEmpty), !patternLabels.contains(where: \.isEmpty) else { return false }
        guard patternLabels.first == "*" else {
            return !pattern.contains("*") && pattern == host
        }
        // `*.com` covers nothing: a wildcard needs two labels after it, and no other `*` may appear.
        guard patternLabels.count >= 3, !patternLabels.dropFirst().contains(where: { $0.contains("*") }),
              hostLabels.count == patternLabels.count
        else { return false }
        return hostLabels.dropFirst() == patternLabels.dropFirst()
    }

    /// A name in lower case without the trailing dot of a fully qualified name.
    static func canonical(_ name: String) -> String {
        let lower = name.lowercased()
        return lower.hasSuffix(".") ? String(lower.dropLast()) : lower
    }

    static func address(_ bytes: [UInt8]) -> IPAddress? {
        switch bytes.count {
        case 4: return IPAddress(bytes.map(String.init).joined(separator: "."))
        case 16: return IPAddress(value: bytes.reduce(UInt128(0)) { $0 << 8 | UInt128($1) })
        default: return nil
        }
    }

    static func format(_ date: Date) -> String {
        date.formatted(.iso8601)
    }

    /// The TLS configuration a server presents this chain with: TLS 1.2 and up.
    func serverConfiguration() throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMBytes(chainPEM).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: keyPEM, format: .pem)))
        configuration.minimumTLSVersion = .tlsv12
        // How long a closing connection waits for the peer's close_notify (NIOSSL's default is 5 s): a graceful
        // shutdown closes idle keep-alive connections, such as a load balancer's pooled ones, and waits for them.
        configuration.shutdownTimeout = .seconds(1)
        return configuration
    }
}

/// Why a certificate and key cannot be served: a sentence for the administrator.
public struct ServerCertificateError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
