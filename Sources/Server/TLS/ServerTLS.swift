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
public final class ServerTLS: Sendable {
    struct Served {
        var context: NIOSSLContext
        var leaf: Certificate?
        /// The SHA-256 of the files as last read (served or refused), so a refused pair is warned about once.
        var digest: [UInt8]
    }

    /// Where the certificate comes from when it is the organisation's own (nil: the generated local one).
    struct Files {
        let certificatePath: String
        let keyPath: String
        let host: String
        let clock: any TimeSource
        /// How often the files are read again (nil: only on SIGHUP).
        let interval: Duration?
    }

    private let served: Mutex<Served>
    let files: Files?
    let logger = Logger(label: "tessera.tls")

    /// The local CA's server certificate `TLSMaterial` made (never reloaded: Tessera itself is its only writer).
    public init(material: TLSMaterial) throws {
        let configuration = try ServerCertificate.load(certificatePath: material.certificatePath, keyPath: material.keyPath).serverConfiguration()
        served = Mutex(Served(context: try NIOSSLContext(configuration: configuration), leaf: nil, digest: []))
        files = nil
    }

    /// The organisation's certificate chain and key, refused (saying why) unless the key is the certificate's, the
    /// certificate is valid at `clock.now` and it covers `host`, the canonical public URL's host. While the server
    /// runs, the files are read again every `reloadInterval` (nil: never) and on each SIGHUP.
    public init(certificatePath: String, keyPath: String, host: String, clock: any TimeSource, reloadInterval: Duration?) throws {
        let files = Files(certificatePath: certificatePath, keyPath: keyPath, host: host, clock: clock, interval: reloadInterval)
        let (certificate, digest) = try Self.read(files)
        try certificate.check(host: host, now: clock.now)
        served = Mutex(Served(context: try NIOSSLContext(configuration: try certificate.serverConfiguration()), leaf: certificate.leaf, digest: digest))
        self.files = files
    }

    /// The context a connection accepted now shakes hands with.
    var context: NIOSSLContext { served.withLock { $0.context } }

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
            served.withLock { $0 = Served(context: context, leaf: certificate.leaf, digest: read) }
            outcome = .replaced
            logger.notice("TLS certificate replaced: new connections get it", metadata: [
                "subject": .string(certificate.leaf.subject.description), "serial": .string(certificate.leaf.serialNumber.bytes.map { String(format: "%02x", $0) }.joined(separator: ":")),
                "not-valid-after": .string(ServerCertificate.format(certificate.leaf.notValidAfter)),
            ])
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

    /// The service that calls ``reload()`` every reload interval and on each SIGHUP while the server runs; none for
    /// the generated certificate.
    var reloader: (any Service)? {
        files.map { CertificateReloadService(tls: self, interval: $0.interval) }
    }
}

/// Reloads a ``ServerTLS`` on SIGHUP and every `interval`, until the server shuts down.
struct CertificateReloadService: Service {
    let tls: ServerTLS
    let interval: Duration?

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
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
                await group.waitForAll()
            }
        }
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
