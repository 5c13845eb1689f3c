import ArgumentParser
import Dispatch
import Foundation
import InternetAccess
import Logging
import NIOCore
import NIOSSL
import Server
import Store
import TesseraCore

/// `tessera proxy`: the forward proxy for Internet Access (issue 17), its own process over the same store as `serve`:
/// it validates users' access tokens, asks Conditional Access and the filtering policies, and writes traffic records.
struct ProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy", abstract: "Run the forward proxy: CONNECT and plain HTTP, for users with a Tessera access token or a device certificate.",
        discussion: """
        Clients send Proxy-Authorization: Bearer <a Tessera access token for a user> (Graph's audience, as the resource \
        APIs take); on the TLS listener (--listen-tls) a device may instead present the certificate its tenant's device CA \
        issued (tessera device join), and is then its registered owner's traffic, with the device's facts in Conditional \
        Access. Plain HTTP keeps its connections (each request admitted, filtered and recorded). Conditional Access policies that include the Internet Access traffic profile \
        (5dc48733-b5df-475c-a49b-fa307ef00853) and name a security profile in sessionControls.globalSecureAccessFilteringProfile \
        decide what each user may reach; every connection becomes a traffic record (GET /beta/networkAccess/logs/traffic).
        """)

    @OptionGroup var storage: StorageOptions
    @Option(help: "Address to listen on, HOST:PORT.") var listen: String = "127.0.0.1:3128"
    @Option(help: ArgumentHelp("Also listen with TLS at HOST:PORT (an HTTPS proxy): clients may authenticate with their device certificate (from `tessera device join`) instead of, or beside, a bearer token.",
                               valueName: "HOST:PORT"))
    var listenTLS: String?
    @Option(help: ArgumentHelp("PEM certificate chain of the TLS listener (its own first). Default: the data folder's tls/server.pem, which serve uses (made with its CA tls/ca.pem if missing).",
                               valueName: "file"))
    var tlsCert: String?
    @Option(help: ArgumentHelp("PEM private key of --tls-cert.", valueName: "file")) var tlsKey: String?
    @Option(help: "Seconds between checks of --tls-cert and --tls-key for a renewal (0: only on SIGHUP); a renewed pair reaches new connections without a restart.")
    var tlsReloadInterval: Int = 5
    @Option(help: ArgumentHelp("The URL Tessera (serve) is reached at, whose tokens the proxy accepts (repeat for more).",
                               discussion: "Default: https://localhost:8443, and the same on 127.0.0.1 and [::1]."))
    var server: [String] = []
    @Option(help: "A port CONNECT may reach besides 443 (repeatable).") var allowPort: [Int] = []
    @Option(help: "A port plain HTTP may reach besides 80 (repeatable).") var allowHTTPPort: [Int] = []
    @Option(help: "Connections open at once; more get 503.") var maxConnections: Int = 4096
    @Option(help: "Seconds a client has to send its request head.") var headTimeout: Int = 10
    @Option(help: "Seconds a connection or tunnel may stay silent both ways.") var idleTimeout: Int = 120
    @Option(help: "Largest request head, in bytes.") var maxHeadBytes: Int = 16 * 1024
    @Option(help: ArgumentHelp("host:port:address: connect to address for host:port instead of resolving it, as curl's --resolve (for tests).",
                               valueName: "host:port:address"))
    var resolve: [String] = []
    @Flag(help: ArgumentHelp("Inspect CONNECTs to the AI apps prompt protection reads (api.openai.com, api.anthropic.com…) for users whose security profile links a prompt policy: TLS terminated with the tenant's inspection CA, prompts checked as the policy says; never other destinations."))
    var inspectAIApps = false
    @Option(name: .customLong("no-inspect"), help: ArgumentHelp("A host never inspected, tunnelled untouched; .example.com covers its subdomains (repeatable).", valueName: "host"))
    var noInspect: [String] = []
    @Option(name: .customLong("tenant-restrictions-host"),
            help: ArgumentHelp("An identity platform host (the URL serve is reached at, login.microsoftonline.com…) whose requests get tenant restrictions v2's sec-Restrict-Tenant-Access-Policy header naming the user's tenant, any the client sent replaced: its CONNECTs are opened with the tenant's inspection CA for every user (repeatable; .example.com covers subdomains).",
                               valueName: "host"))
    var tenantRestrictionsHost: [String] = []
    @Option(help: ArgumentHelp("PEM file of the roots the real hosts' certificates must chain to when the proxy opens TLS, instead of the system's (for tests).", valueName: "file"))
    var originCA: String?
    @Option(help: ArgumentHelp("Write the inspection CA certificates of --tenant that clients must trust now (made if there is none; during a rotation the old and the new) as PEM to this file and exit.", valueName: "file"))
    var inspectionCAOut: String?
    @Flag(help: ArgumentHelp("Make a new inspection CA for --tenant and exit: published at once (--inspection-ca-out writes both), signing leaves after --rotation-overlap-days; the old one stays published until its last leaf expires."))
    var rotateInspectionCA = false
    @Option(help: ArgumentHelp("Days the new CA of --rotate-inspection-ca is published before it signs (at least 1).", valueName: "days"))
    var rotationOverlapDays: Int = 7
    @Option(help: ArgumentHelp("The tenant id for --inspection-ca-out.", valueName: "id")) var tenant: String?
    @Option(help: "Log format: text, or json.") var logFormat: LogFormat = .text
    @Option(help: "Log level.") var logLevel: String = "info"

    func configurationValue() throws -> ProxyConfiguration {
        let (host, port) = try Self.checked { () throws(ProxyError) in try ProxyConfiguration.listenAddress(listen) }
        var configuration = ProxyConfiguration(host: host, port: port)
        for p in allowPort + allowHTTPPort where !(1...65_535).contains(p) { throw ValidationError("port \(p) is not 1 to 65535") }
        configuration.tunnelPorts.formUnion(allowPort)
        configuration.httpPorts.formUnion(allowHTTPPort)
        guard maxConnections >= 1 else { throw ValidationError("--max-connections must be at least 1") }
        guard (1...300).contains(headTimeout) else { throw ValidationError("--head-timeout must be 1 to 300 seconds") }
        guard (1...86_400).contains(idleTimeout) else { throw ValidationError("--idle-timeout must be 1 to 86400 seconds") }
        guard (1024...1_048_576).contains(maxHeadBytes) else { throw ValidationError("--max-head-bytes must be 1024 to 1048576") }
        configuration.maximumConnections = maxConnections
        configuration.headTimeout = Int64(headTimeout)
        configuration.idleTimeout = Int64(idleTimeout)
        configuration.maximumHeadBytes = maxHeadBytes
        for entry in resolve { try Self.checked { () throws(ProxyError) in try configuration.addResolve(entry) } }
        configuration.secureListener = try secureListener()
        return configuration
    }

    /// The TLS listener of `--listen-tls`, nil without it; its certificate is `--tls-cert`/`--tls-key`, or the one serve
    /// uses from the data folder.
    func secureListener() throws -> ProxyConfiguration.SecureListener? {
        guard let listenTLS else {
            if tlsCert != nil || tlsKey != nil { throw ValidationError("--tls-cert and --tls-key need --listen-tls") }
            return nil
        }
        let (host, port) = try Self.checked { () throws(ProxyError) in try ProxyConfiguration.listenAddress(listenTLS) }
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
        let certificatePath: String, keyPath: String
        if let tlsCert, let tlsKey {
            // The organisation's certificate, read again as serve's is (the same checks but the host name's).
            guard (0...86_400).contains(tlsReloadInterval) else { throw ValidationError("--tls-reload-interval must be 0 to 86400 seconds") }
            let served: ServerTLS
            do {
                served = try ServerTLS(certificatePath: tlsCert, keyPath: tlsKey, host: nil, clock: SystemTimeSource(),
                                       reloadInterval: tlsReloadInterval == 0 ? nil : .seconds(tlsReloadInterval))
            } catch let error as ServerCertificateError {
                throw ValidationError("--tls-cert \(tlsCert) cannot be served: \(error)")
            }
            do {
                return try ProxyConfiguration.SecureListener(host: host, port: port, pem: { served.pem }, reloader: { await served.keepReloading() })
            } catch {
                throw ValidationError("the TLS listener's certificate and key do not make a TLS context: \(error)")
            }
        } else {
            let material = try TLSMaterial.loadOrCreate(directory: storage.data + "/tls", hosts: [host])
            (certificatePath, keyPath) = (material.certificatePath, material.keyPath)
        }
        let chain: [NIOSSLCertificate], key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificatePath)
            key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        } catch {
            throw ValidationError("the TLS listener's certificate \(certificatePath) or key \(keyPath) is not readable PEM: \(error)")
        }
        guard !chain.isEmpty else { throw ValidationError("\(certificatePath) holds no certificate") }
        do {
            return try ProxyConfiguration.SecureListener(host: host, port: port, certificateChain: chain, privateKey: key)
        } catch {
            throw ValidationError("the TLS listener's certificate and key do not make a TLS context (does the key match?): \(error)")
        }
    }

    /// TLS inspection's settings, nil without `--inspect-ai-apps` or `--tenant-restrictions-host`.
    func inspectionConfiguration() throws -> TLSInspectionConfiguration? {
        guard inspectAIApps || !tenantRestrictionsHost.isEmpty else {
            if !noInspect.isEmpty || originCA != nil { throw ValidationError("--no-inspect and --origin-ca need --inspect-ai-apps or --tenant-restrictions-host") }
            return nil
        }
        if !inspectAIApps, !noInspect.isEmpty { throw ValidationError("--no-inspect needs --inspect-ai-apps") }
        var roots: [NIOSSLCertificate]?
        if let originCA {
            do {
                roots = try NIOSSLCertificate.fromPEMFile(originCA)
            } catch {
                throw ValidationError("--origin-ca \(originCA) is not a readable PEM certificate file: \(error)")
            }
            if roots?.isEmpty ?? true { throw ValidationError("--origin-ca \(originCA) holds no certificate") }
        }
        var configuration = TLSInspectionConfiguration(prompts: PromptInspector(detector: try PromptDetector.bundled()), originTrustRoots: roots)
        for host in noInspect {
            guard !host.isEmpty, !host.contains(where: { $0 == ":" || $0 == "/" || $0 == " " }) else {
                throw ValidationError("--no-inspect takes a host name, not '\(host)'")
            }
            configuration.addBypass(host)
        }
        configuration.inspectsPrompts = inspectAIApps
        for host in tenantRestrictionsHost {
            guard !host.isEmpty, !host.contains(where: { $0 == ":" || $0 == "/" || $0 == " " }) else {
                throw ValidationError("--tenant-restrictions-host takes a host name, not '\(host)'")
            }
            configuration.addTenantRestrictionHost(host)
        }
        return configuration
    }

    static func checked<T>(_ body: () throws(ProxyError) -> T) throws -> T {
        do { return try body() } catch { throw ValidationError(error.message) }
    }

    func run() async throws {
        guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("--log-level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))") }
        logFormat.bootstrap(level: level)
        let logger = Logger(label: "tessera.proxy")
        let configuration = try configurationValue()
        var urls: [String] = []
        for url in server {
            guard let normalised = NetworkPolicy.normalise(url) else { throw ValidationError("--server \(url) is not a URL with a host name and nothing after it") }
            urls.append(normalised)
        }
        if urls.isEmpty { urls = NetworkPolicy.loopback(scheme: "https", host: "127.0.0.1", port: 8443) }
        let catalog = try TrafficCommand.catalog()
        let inspection = try inspectionConfiguration()
        let keyEncryption = try storage.keyEncryption.load(), sealing = KeySealing(keyEncryption: keyEncryption)
        let store = try await storage.openStore()
        if rotateInspectionCA {
            guard let tenant else { throw ValidationError("--rotate-inspection-ca needs --tenant") }
            guard rotationOverlapDays >= 1 else { throw ValidationError("--rotation-overlap-days must be at least 1") }
            do {
                let rotated = try await InspectionCertificateAuthority.rotate(tenant: tenant, store: store, sealing: sealing, now: Date(),
                                                                              overlap: Double(rotationOverlapDays) * 86_400)
                say("Made a new TLS inspection CA for tenant \(tenant): published now, signing from \(rotated.nextActiveFrom.map(Timestamp.format) ?? "now"); give clients the PEM --inspection-ca-out writes")
            } catch let error as InspectionCertificateAuthority.RotationError {
                try await store.shutdown()
                throw ValidationError(error.description)
            }
            if inspectionCAOut == nil {
                try await store.shutdown()
                return
            }
        }
        if let out = inspectionCAOut {
            guard let tenant else { throw ValidationError("--inspection-ca-out needs --tenant") }
            let authorities = try await InspectionCertificateAuthority.current(tenant: tenant, store: store, sealing: sealing, now: Date())
            try Data(try authorities.pem.utf8).write(to: URL(fileURLWithPath: out))
            try await store.shutdown()
            say("Wrote the TLS inspection CA\(authorities.published.count > 1 ? "s" : "") of tenant \(tenant) to \(out)")
            return
        }
        // Without --tls-cert there is nothing to read again on SIGHUP (`systemctl reload`, a certbot deploy hook): it is
        // logged, where the signal's default would end the proxy. Ignored from here on, before it is trapped.
        var hangups: Task<Void, Never>?
        if tlsCert == nil {
            signal(SIGHUP, SIG_IGN)
            hangups = Task { await ServerTLS.takeHangupsWithoutCertificate() }
        }
        defer { hangups?.cancel() }
        let app = try await TesseraApp.make(store: store, network: NetworkPolicy(publicURLs: urls), keyEncryption: keyEncryption)
        let recorder = TrafficRecorder(store: app.store)
        let proxy = ForwardProxy(configuration: configuration, gatekeeper: NetworkAccessGatekeeper(app: app, catalog: catalog, issuerBase: urls[0]),
                                 recorder: recorder, inspector: try inspection.map { try TLSInspector(configuration: $0, store: app.store, sealing: app.keySealing) })
        let issuer = urls[0]
        let task = Task {
            try await proxy.run(onBound: { address in
                say("Tessera proxy is listening on \(address.ipAddress ?? configuration.host):\(address.port ?? configuration.port) (tokens from \(issuer))")
            }, onSecureBound: { address in
                say("Tessera proxy is listening with TLS on \(address.ipAddress ?? "-"):\(address.port ?? 0) (tokens, or device certificates)")
            }, onRecorderError: { error in
                logger.error("traffic records could not be written: \(String(describing: error))")
            })
        }
        var sources: [any DispatchSourceSignal] = []
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { task.cancel() }
            source.resume()
            sources.append(source)
        }
        defer { sources.forEach { $0.cancel() } }
        let outcome = await task.result
        let counts = recorder.counts
        logger.info("stopped: \(counts.written) traffic records written, \(counts.dropped) dropped")
        try await store.shutdown()
        try outcome.get()
    }
}
