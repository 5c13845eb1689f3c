import ArgumentParser
import Foundation
import Logging
import Server
import TesseraCore

extension Serve {
    /// The organisation's certificate (`--tls-cert`, `--tls-key`), checked against the canonical public URL before
    /// anything else starts; nil when none is given (the generated local CA's is served, or plain http). `announce`
    /// says which file is served (`tessera config check` only checks).
    func serverTLS(canonical: String, others: ArraySlice<String>, announce: Bool = true) throws -> ServerTLS? {
        guard tlsCert != nil || tlsKey != nil else { return nil }
        guard let tlsCert, let tlsKey else { throw ValidationError("--tls-cert and --tls-key go together: give both") }
        guard !http else { throw ValidationError("--tls-cert serves https: drop --http (behind a proxy that terminates TLS, the proxy holds the certificate)") }
        guard (0...86_400).contains(tlsReloadInterval) else { throw ValidationError("--tls-reload-interval must be 0 to 86400 seconds") }
        let host = Self.host(of: canonical)
        let served: ServerTLS
        do {
            served = try ServerTLS(certificatePath: tlsCert, keyPath: tlsKey, host: host, clock: clock,
                                   reloadInterval: tlsReloadInterval == 0 ? nil : .seconds(tlsReloadInterval))
        } catch let error as ServerCertificateError {
            let hint = publicURL.isEmpty ? " (without --public-url the canonical URL is \(canonical): give --public-url https://<the name it is for>)" : ""
            throw ValidationError("--tls-cert \(tlsCert) cannot be served for \(canonical): \(error)\(hint)")
        }
        if let leaf = served.leaf {
            for url in others where !ServerCertificate.covers(leaf, Self.host(of: url)) {
                Logger(label: "tessera.tls").warning("the TLS certificate does not cover \(url), a --public-url: browsers will refuse it there")
            }
        }
        if announce {
            say("TLS: serving \(tlsCert) (read again \(tlsReloadInterval == 0 ? "only" : "every \(tlsReloadInterval) s and") on SIGHUP)")
        }
        return served
    }

    /// The host of a normalised public URL, without IPv6 brackets.
    static func host(of url: String) -> String {
        (URL(string: url)?.host ?? url).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
    }

    /// Whether `host` (`--host`) is an address only this machine reaches.
    static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" { return true }
        guard let address = IPAddress(host) else { return false }
        return ["127.0.0.0/8", "::1/128"].compactMap(IPAddressRange.init(cidr:)).contains { $0.contains(address) }
    }
}
