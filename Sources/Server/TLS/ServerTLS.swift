import Crypto
import Foundation
import HummingbirdCore
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import Synchronization
public import TesseraCore
import UnixSignals
public import X509

/// The certificate the HTTPS listener presents, as an `NIOSSLContext` each new connection takes when it is accepted.
/// With `serve --tls-cert/--tls-key` it follows the two files: ``reload()`` (every few seconds, and on SIGHUP) reads
/// them again and, when they changed and the new pair is one to serve (the key is the certificate's, it is valid now
/// and covers the canonical host), swaps the context. Connections already open keep the one they shook hands with;
/// the next handshake shows the new certificate. A pair that is not (a renewal that has replaced the key but not yet
/// the certificate) is logged as a warning and the old certificate kept, until the files are right.
///
/// A certificate of the organisation's that expires within ``expiryWarningWindow`` (14 days) is warned about when it
/// starts being served and again every day until a renewal replaces it (``warnIfExpiring()``); `/metrics` shows the
/// seconds it has left as `tessera_tls_certificate_expiry_seconds{listener}` (``report(to:listener:)``).
public final class ServerTLS: Sendable {
    struct Served {
        var context: NIOSSLContext
        var leaf: Certificate?
        /// The chain and key served, for a listener that presents them with a TLS configuration of its own.
        var certificate: ServerCertificate
        /// The SHA-256 of the files as last read (served or refused), so a refused pair is warned about once.
        var digest: [UInt8]
        /// When the expiry of this certificate was last warned about (nil: not yet).
        var expiryWarned: Date? = nil
    }

    /// How close to its expiry a served certificate is warned about: 14 days.
    static let expiryWarningWindow: TimeInterval = 14 * 86_400
    /// How often the warning is repeated while the certificate is not renewed: daily.
    static let expiryWarningRepeat: TimeInterval = 86_400

    /// Where the certificate comes from when it is the organisation's own (nil: the generated local one).
    struct Files {
        let certificatePath: String
        let keyPath: String
        /// The host it must cover (nil: any; the proxy's TLS listener, which clients reach by names of their own).
        let host: String?
        let clock: any TimeSource
        /// How often the files are read again (nil: only on SIGHUP).
        let interval: Duration?
    }

    private let served: Mutex<Served>
    let files: Files?
    let logger = Logger(label: "tessera.tls")

    /// The local CA's server certificate `TLSMaterial` made (never reloaded: Tessera itself is its only writer).
    public init(material: TLSMaterial) throws {
        let certificate = try ServerCertificate.load(certificatePath: material.certificatePath, keyPath: material.keyPath)
        served = Mutex(Served(context: try NIOSSLContext(configuration: try certificate.serverConfiguration()), leaf: nil, certificate: certificate, digest: []))
        files = nil
    }

    /// The organisation's certificate chain and key, refused (saying why) unless the key is the certificate's, the
    /// certificate is valid at `clock.now` and it covers `host`, the canonical public URL's host. While the server
    /// runs, the files are read again every `reloadInterval` (nil: never) and on each SIGHUP.
    public init(certificatePath: String, keyPath: String, host: String?, clock: any TimeSource, reloadInterval: Duration?) throws {
        let files = Files(certificatePath: certificatePath, keyPath: keyPath, host: host, clock: clock, interval: reloadInterval)
        let (certificate, digest) = try Self.read(files)
        try certificate.check(host: host, now: clock.now)
        served = Mutex(Served(context: try NIOSSLContext(configuration: try certificate.serverConfiguration()), leaf: certificate.leaf,
                              certificate: certificate, digest: digest))
        self.files = files
        warnIfExpiring()
    }

    /// The context a connection accepted now shakes hands with.
    var context: NIOSSLContext { served.withLock { $0.context } }

    /// The chain and key served now, for a listener that presents them with a TLS configuration of its own (the
    /// health listener): it makes its context again when this is another ``ServerCertificate/chainPEM``.
    var certificate: ServerCertificate { served.withLock { $0.certificate } }

    /// The PEM chain and key served now, as files hold them (for the proxy's TLS listener, which makes its own context).
    public var pem: (chain: [UInt8], key: [UInt8]) {
        let certificate = self.certificate
        return (certificate.chainPEM, certificate.keyPEM)
    }

    /// Reads the files again every reload interval and on each SIGHUP, and looks at the expiry every hour, until
    /// cancelled (`tessera proxy --tls-cert`, which runs no service group; serve runs ``reloader``).
    public func keepReloading() async {
        guard let reloader else { return }
        try? await reloader.run()
    }

    /// The certificate served now (nil for the generated one).
    public var leaf: Certificate? { served.withLock { $0.leaf } }

    /// What ``reload()`` did.
    public enum Reload: Equatable, Sendable {
        /// The files are as they were when last read.
        case unchanged
        /// New connections get the new certificate.
        case replaced
        /// The files changed into a pair that cannot be served; the old certificate stays.
        case refused(String)
    }

    /// Reads the files again and swaps the certificate when they changed into a pair that can be served.
    @discardableResult
    public func reload() -> Reload {
        guard let files else { return .unchanged }
        let outcome: Reload
        var digest: [UInt8] = []
        do {
            let (certificate, read) = try Self.read(files)
            digest = read
            if read == served.withLock({ $0.digest }) { return .unchanged }
            try certificate.check(host: files.host, now: files.clock.now)
            let context = try NIOSSLContext(configuration: try certificate.serverConfiguration())
            served.withLock { $0 = Served(context: context, leaf: certificate.leaf, certificate: certificate, digest: read) }
            outcome = .replaced
            logger.notice("TLS certificate replaced: new connections get it", metadata: [
                "subject": .string(certificate.leaf.subject.description), "serial": .string(certificate.leaf.serialNumber.bytes.map { String(format: "%02x", $0) }.joined(separator: ":")),
                "not-valid-after": .string(ServerCertificate.format(certificate.leaf.notValidAfter)),
            ])
            warnIfExpiring()
        } catch {
            if digest.isEmpty { digest = Self.digest(files) }
            if digest == served.withLock({ $0.digest }) { return .unchanged }
            served.withLock { $0.digest = digest }  // warned once for these files
            outcome = .refused("\(error)")
            logger.warning("TLS certificate files changed but cannot be served; still serving the previous certificate", metadata: [
                "reason": .string("\(error)"), "certificate": .string(files.certificatePath), "key": .string(files.keyPath),
            ])
        }
        return outcome
    }

    /// The seconds the organisation's certificate served now has left on its clock (negative once it expired; nil
    /// for the generated one, which Tessera renews itself).
    public var secondsUntilExpiry: Double? {
        guard let files, let leaf else { return nil }
        return leaf.notValidAfter.timeIntervalSince(files.clock.now)
    }

    /// Logs a warning naming the certificate's subject, its expiry and the days it has left when the certificate
    /// served expires within ``expiryWarningWindow`` and its expiry was not warned about in the last day; returns
    /// the message logged (nil: nothing was). A replaced certificate starts afresh.
    @discardableResult
    public func warnIfExpiring() -> String? {
        guard let files else { return nil }
        let now = files.clock.now
        let due: Certificate? = served.withLock { served in
            guard let leaf = served.leaf, leaf.notValidAfter.timeIntervalSince(now) <= Self.expiryWarningWindow else { return nil }
            if let last = served.expiryWarned, now.timeIntervalSince(last) < Self.expiryWarningRepeat, now >= last { return nil }
            served.expiryWarned = now
            return leaf
        }
        guard let leaf = due else { return nil }
        let left = leaf.notValidAfter.timeIntervalSince(now)
        let days = Int((max(left, 0) / 86_400).rounded(.down))
        let expiry = ServerCertificate.format(leaf.notValidAfter)
        let message = left <= 0
            ? "the TLS certificate \(leaf.subject) expired on \(expiry): clients refuse it; renew \(files.certificatePath)"
            : "the TLS certificate \(leaf.subject) expires on \(expiry), in \(days) day\(days == 1 ? "" : "s"): renew \(files.certificatePath) (it is read again without a restart)"
        logger.warning("\(message)", metadata: [
            "subject": .string(leaf.subject.description), "not-valid-after": .string(expiry), "days-left": .stringConvertible(days),
        ])
        return message
    }

    /// Shows the seconds the certificate has left in `telemetry`'s `/metrics`, as
    /// `tessera_tls_certificate_expiry_seconds{listener="<listener>"}`, worked out at each scrape.
    public func report(to telemetry: Telemetry, listener: String) {
        guard files != nil else { return }
        telemetry.watchCertificate(listener: listener) { [weak self] in self?.secondsUntilExpiry }
    }

    static func read(_ files: Files) throws(ServerCertificateError) -> (ServerCertificate, [UInt8]) {
        let certificate = try ServerCertificate.load(certificatePath: files.certificatePath, keyPath: files.keyPath)
        return (certificate, Array(SHA256.hash(data: certificate.chainPEM + [0] + certificate.keyPEM)))
    }

    /// The digest of whatever the files hold now, readable or not.
    static func digest(_ files: Files) -> [UInt8] {
        let chain = FileManager.default.contents(atPath: files.certificatePath).map(Array.init) ?? []
        let key = FileManager.default.contents(atPath: files.keyPath).map(Array.init) ?? []
        return Array(SHA256.hash(data: chain + [0] + key))
    }

    /// The service that calls ``reload()`` every reload interval and on each SIGHUP, and ``warnIfExpiring()`` every
    /// hour, while the server runs; none for the generated certificate.
    var reloader: (any Service)? { reloader(hangups: nil) }

    /// The same, taking SIGHUP from `hangups` (trapped before the server starts listening) when given.
    func reloader(hangups: UnixSignalsSequence?) -> (any Service)? {
        files.map { CertificateReloadService(tls: self, interval: $0.interval, hangups: hangups) }
    }
}

/// Reloads a ``ServerTLS`` on SIGHUP and every `interval`, and looks at its expiry every hour, until the server shuts
/// down.
struct CertificateReloadService: Service {
    let tls: ServerTLS
    let interval: Duration?
    /// SIGHUP, trapped before the server listens (`TesseraServer.run`); trapped here when nil.
    var hangups: UnixSignalsSequence? = nil

    func run() async throws {
        let hangups = if let hangups = self.hangups { hangups } else { await UnixSignalsSequence(trapping: .sighup) }
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await _ in hangups {
                        tls.logger.info("SIGHUP: reading the TLS certificate files again")
                        tls.reload()
                    }
                }
                if let interval {
                    group.addTask {
                        while !Task.isCancelled {
                            try? await Task.sleep(for: interval)
                            if !Task.isCancelled { tls.reload() }
                        }
                    }
                }
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .seconds(3600))
                        if !Task.isCancelled { tls.warnIfExpiring() }
                    }
                }
                await group.waitForAll()
            }
        }
    }
}

/// Takes SIGHUP when there is nothing to reload (the generated certificate, or plain http behind a proxy), so that
/// `systemctl reload` or a certbot deploy hook does not stop the server, as the signal's default action would.
/// `tessera proxy` without `--tls-cert` runs it too (``ServerTLS/takeHangupsWithoutCertificate()``).
struct HangupWithoutCertificateService: Service {
    let logger: Logger
    /// SIGHUP, trapped before the server listens (`TesseraServer.run`); trapped here when nil.
    var hangups: UnixSignalsSequence? = nil

    func run() async throws {
        let hangups = if let hangups = self.hangups { hangups } else { await UnixSignalsSequence(trapping: .sighup) }
        await cancelWhenGracefulShutdown {
            for await _ in hangups {
                logger.notice("SIGHUP: nothing to read again (no --tls-cert); the server goes on")
            }
        }
    }
}

extension ServerTLS {
    /// ``HangupWithoutCertificateService`` outside a service group (`tessera proxy` without `--tls-cert`): SIGHUP is
    /// logged as nothing to read again until the calling task is cancelled.
    public static func takeHangupsWithoutCertificate() async {
        try? await HangupWithoutCertificateService(logger: Logger(label: "tessera.tls")).run()
    }
}

/// Puts TLS in front of `Base` with the context ``ServerTLS`` holds when the connection is accepted, so a replaced
/// certificate reaches new connections without touching open ones.
struct ReloadingTLSChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base
    let tls: ServerTLS

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let context = tls.context
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}
