public import ArgumentParser
import InternetAccess
import Foundation
import NIOSSL
import Logging
import Server
import Store
import TesseraCore
import SwiftASN1
import X509

/// `tessera`: the command line. Thin: it parses, calls the libraries and prints.
public struct TesseraCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "tessera",
        abstract: "A self-hosted identity platform that speaks Microsoft Graph and the Microsoft identity platform.",
        subcommands: [Serve.self, TenantCommand.self, BackupCommand.self, SyncCommand.self, HybridCommand.self, DeviceCommand.self, ConditionalAccessCommand.self, WebAuthnCommand.self, TrafficCommand.self, ProxyCommand.self, HealthCommand.self, KeysCommand.self, ConfigCommand.self, MigrateCommand.self, Bench.self])
    public init() {}
}

/// Where the data lives: shared by every command.
struct StorageOptions: ParsableArguments {
    @Option(help: "Data folder (SQLite database, TLS material).")
    var data: String = ProcessInfo.processInfo.environment["TESSERA_DATA"] ?? "./tessera-data"

    @Option(help: "Database: a postgres:// URL, or omit for SQLite in the data folder.")
    var database: String?

    @OptionGroup var keyEncryption: KeyEncryptionOptions

    /// Runs `body` with the store open and closes it however `body` ends (an error included: an open connection
    /// must not be dropped).
    func withStore<T>(_ body: (SQLDirectoryStore) async throws -> T) async throws -> T {
        let store = try await openStore()
        do {
            let result = try await body(store)
            try await store.shutdown()
            return result
        } catch {
            try? await store.shutdown()
            throw error
        }
    }

    /// The tenant named by id or domain; or every tenant when `all` and none is named; else the only one.
    static func tenants(_ store: SQLDirectoryStore, named tenant: String?, all: Bool = false) async throws -> [TenantRecord] {
        let every = try await store.read { tx in try await tx.tenants() }
        if let tenant {
            guard let found = try await store.read({ tx in try await tx.tenant(tenant) }) else {
                throw ValidationError("no tenant '\(tenant)'")
            }
            return [found]
        }
        if all || every.count == 1 { return every }
        throw ValidationError("there are \(every.count) tenants: say which with --tenant")
    }

    func openStore() async throws -> SQLDirectoryStore {
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let url = database ?? ProcessInfo.processInfo.environment["TESSERA_DATABASE"] ?? (data + "/tessera.sqlite")
        let store = try await SQLDirectoryStore.open(url)
        try await store.migrate()
        return store
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the server.")
    /// Read before the rest is parsed (ServeConfiguration.swift): here for the help and so that parsing accepts it.
    @Option(help: "A configuration file (TOML: `key = value` a line, keys as these options are named) with any of these options; environment variables TESSERA_<OPTION> win over it, flags over both (`tessera config check`). Default: $TESSERA_CONFIG.")
    var config: String?
    @OptionGroup var storage: StorageOptions
    @Option(help: "Address to listen on.") var host: String = "127.0.0.1"
    @Option(help: "Port to listen on.") var port: Int = 8443
    @Flag(help: "Serve plain http instead of https (MSAL and azure-identity need https): for local tools, or behind a reverse proxy that terminates TLS (give its https:// --public-url and --trusted-proxy). Only on a loopback --host unless --allow-http-on-network.")
    var http = false
    @Flag(help: "Allow --http on an address other machines reach (a reverse proxy on another machine, over a network only it can use).")
    var allowHttpOnNetwork = false
    @Option(help: ArgumentHelp("The server's certificate chain to serve instead of the generated local CA's: PEM, the server's certificate first, then its intermediates (certbot's fullchain.pem).",
                               discussion: "It must cover the canonical --public-url's host, be valid now and match --tls-key, or serve refuses to start. Read again every --tls-reload-interval seconds and on SIGHUP: a renewed pair is served to new connections without a restart."))
    var tlsCert: String?
    @Option(help: "The private key of --tls-cert (PEM: RSA or ECDSA, unencrypted).") var tlsKey: String?
    @Option(help: "Seconds between checks of --tls-cert and --tls-key for a renewal (0: only on SIGHUP).") var tlsReloadInterval: Int = 5
    @Option(help: "A PEM file of attestation root certificates to trust for passkeys (profiles that enforce attestation need them).")
    var attestationRoots: String?
    @Option(help: "A PEM file of CA certificates trusted, besides the system's, for the OpenID Connect identity providers of B2B with other deployments.")
    var identityProviderCa: String?
    @Option(help: "Days each tenant's daily snapshots are kept.") var backupRetentionDays: Int = 5
    @Option(help: "Minutes between directory sync cycles for tenants with a connector (0: only `tessera sync run`).") var syncInterval: Int = 30
    @Option(help: ArgumentHelp("A URL users and clients reach Tessera by, e.g. https://login.contoso.com (repeat for more; the first is canonical). Requests for any other host are refused, and the issuer and every link are built from these.",
                               discussion: "Default: https://localhost:PORT, and the same on 127.0.0.1 and [::1]."))
    var publicURL: [String] = []
    @Option(help: "An address or CIDR range of a reverse proxy whose forwarding headers (--forwarded-headers) are believed (repeatable). Without one, the client address, scheme and host are the connection's.")
    var trustedProxy: [String] = []
    @Option(help: ArgumentHelp("The headers the --trusted-proxy sets: x-forwarded (X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host) or forwarded (RFC 7239 Forwarded: for=, proto=, host=).",
                               discussion: "Only that kind is read (a proxy passes the other kind on from the client untouched), and a host it names must be a --public-url's."))
    var forwardedHeaders: String = ForwardedHeaders.xForwarded.rawValue
    @Option(help: "Open connections allowed from one client address.") var maxConnectionsPerAddress: Int = 256
    @Option(help: "Seconds a connection may stay without a request (TLS handshake and request head included).") var idleTimeout: Int = 30
    @Option(help: "Graph requests a second per caller (user or app, per tenant), twice that in a burst; then 429 (0: no limit).")
    var graphRateLimit: Int = 500
    @Option(help: "Token endpoint requests a second per client address, twice that in a burst; then 429 (0: no limit).")
    var tokenRateLimit: Int = 200
    @Option(help: ArgumentHelp("Tor's geoip files that say which country an IP address is in, for country named locations: a folder holding geoip and geoip6, or one file.",
                               discussion: "Default: $TESSERA_COUNTRY_DATABASE, else /usr/share/tor (Debian's tor-geoipdb) when installed; without one every country is unknown."))
    var countryDatabase: String?
    @Option(help: "Listen for Connect Health agents on HOST:PORT (mutual TLS 1.2+ with the tenant's health CA; off unless set).")
    var healthListen: String?
    @Option(help: "Seconds the server keeps serving after SIGTERM while /readyz answers 503, so a load balancer takes it out of rotation first (behind one: longer than its check interval times its fall count).")
    var drainSeconds: Int = 0
    @Option(help: "Seconds requests in flight and background work have after SIGTERM (past the drain) before they are cancelled; a recovery job is handed back to another node at its next batch.")
    var shutdownTimeout: Int = 30
    @Option(help: "Days between rotations of the token-signing key (0: only `tessera keys rotate`); the next key is published this long before it signs.")
    var signingKeyRotationDays: Int = 42
    @Option(help: "Log format: text, or json (one object a line); metadata naming a credential is redacted in both.") var logFormat: LogFormat = .text
    @Option(help: "Log level: trace, debug, info, notice, warning, error or critical.") var logLevel: String = "info"
    /// End-to-end tests move a running debug server's clock (never in a release build).
    @OptionGroup var clockOptions: ClockOptions
    /// The server's clock: the system's, or in a debug build one a test can move.
    var clock: any TimeSource { clockOptions.clock }

    func run() async throws {
        let checked = try checkedOptions()
        logFormat.bootstrap(level: checked.logLevel)
        var roots: [Certificate] = []
        if let path = attestationRoots {
            guard let pem = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read \(path)") }
            let text = String(decoding: pem, as: UTF8.self)
            for block in text.components(separatedBy: "-----END CERTIFICATE-----") where block.contains("-----BEGIN CERTIFICATE-----") {
                do { roots.append(try Certificate(pemEncoded: block + "-----END CERTIFICATE-----")) } catch {
                    throw ValidationError("\(path) holds something that is not a PEM certificate")
                }
            }
            guard !roots.isEmpty else { throw ValidationError("\(path) holds no certificate") }
        }
        // The AI app catalog is data shipped with Tessera: a catalog with an error stops the server here, with the entry.
        do {
            _ = try AICatalog.bundled(year: Calendar(identifier: .gregorian).component(.year, from: Date()))
        } catch {
            throw ValidationError("the AI app catalog cannot be read: \(error)")
        }
        let countries = try Self.loadCountries(named: countryDatabase ?? ProcessInfo.processInfo.environment["TESSERA_COUNTRY_DATABASE"],
                                               logger: Logger(label: "tessera"))
        let urls = checked.publicURLs
        let ownTLS = try serverTLS(canonical: urls[0], others: urls.dropFirst())
        let store = try await storage.openStore()
        var providerRoots: [NIOSSLCertificate] = []
        if let path = identityProviderCa {
            do { providerRoots = try NIOSSLCertificate.fromPEMFile(path) } catch { throw ValidationError("--identity-provider-ca: cannot read PEM certificates from \(path)") }
            guard !providerRoots.isEmpty else { throw ValidationError("--identity-provider-ca: \(path) holds no certificate") }
        }
        let app = try await TesseraApp.make(store: store, clock: clock, attestationRoots: roots, backupRetentionDays: backupRetentionDays,
                                            network: NetworkPolicy(publicURLs: urls, trustedProxies: checked.trustedProxies, forwardedHeaders: checked.forwardedHeaders),
                                            countries: countries,
                                            outbound: try NIOOutboundHTTP(additionalRoots: providerRoots),
                                            keyEncryption: try Self.keyEncryptionKey(storage.keyEncryption, logger: Logger(label: "tessera")),
                                            signingKeyRotation: checked.signingKeyRotation)
        let tenants = try await store.read { tx in try await tx.tenants() }
        try await Self.warnOfCountryLocations(without: countries, store: store, tenants: tenants, logger: Logger(label: "tessera"))
        // Passkeys are bound to a host name (browsers refuse IP addresses as relying-party ids), so the address to give
        // people is a name: the canonical public URL, localhost by default.
        let url = app.network.publicURLs[0]
        if tenants.isEmpty, let created = try await app.makeFirstTenant() {
            // The first administrator signs in once with this pass to register a passkey (there are no passwords).
            let (_, pass) = try await app.directory.createTemporaryAccessPass(
                tenant: created.tenantId, userID: created.adminUserId, lifetimeInMinutes: 8 * 60, isUsableOnce: true, actor: .system)
            say("""
            Tessera created its first tenant. Keep this; the secret is not shown again.
              tenant id:     \(created.tenantId)
              domain:        \(created.domain)
              administrator: \(created.adminUserPrincipalName)
              access pass:   \(pass) (Temporary Access Pass: one use, within 8 hours, to register a passkey)
              client id:     \(created.clientId)
              client secret: \(created.clientSecret)
              token:         POST \(url)/\(created.tenantId)/oauth2/v2.0/token
            """)
        }
        let names = app.network.publicURLs.compactMap { URL(string: $0)?.host }.map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "[]")) }
        let tls = http || ownTLS != nil ? nil : try TLSMaterial.loadOrCreate(directory: storage.data + "/tls", hosts: [host] + names)
        if let tls { say("TLS: trust \(tls.caPath)") }
        let served = try ownTLS ?? tls.map { try ServerTLS(material: $0) }
        var limits = ServerLimits(maxConnectionsPerAddress: maxConnectionsPerAddress, idleTimeout: .seconds(idleTimeout))
        limits.graphRequestsPerSecond = graphRateLimit
        limits.tokenRequestsPerSecond = tokenRateLimit
        try await TesseraServer.run(app: app, host: host, port: port, tls: served,
                                    syncInterval: syncInterval == 0 ? nil : .seconds(syncInterval * 60), limits: limits,
                                    services: try healthListener(app: app, tls: tls, served: ownTLS, names: names),
                                    shutdown: ShutdownTiming(drain: .seconds(drainSeconds), timeout: .seconds(shutdownTimeout))) {
            say("Tessera is listening on \(url) (Graph at \(url)/v1.0; open it by this name: passkeys are bound to it, and browsers refuse IP addresses)")
        }
        try await store.shutdown()
    }
}

extension Serve {
    /// The options `serve` checks before it reads a file or opens the database, as they are used.
    struct CheckedOptions {
        var logLevel: Logger.Level
        /// Normalised; the loopback names when none is given.
        var publicURLs: [String]
        var trustedProxies: [IPAddressRange]
        var forwardedHeaders: ForwardedHeaders
        /// Seconds between scheduled signing-key rotations; nil: only by hand.
        var signingKeyRotation: TimeInterval?
    }

    /// Every value checked (ranges, URLs, addresses, names, options that need or exclude each other) without reading a
    /// file: what `serve` refuses at start, and `tessera config check` refuses too.
    func checkedOptions() throws -> CheckedOptions {
        guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("--log-level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))") }
        guard (1...365).contains(backupRetentionDays) else { throw ValidationError("--backup-retention-days must be 1 to 365") }
        guard (0...10_080).contains(syncInterval) else { throw ValidationError("--sync-interval must be 0 to 10080 minutes (a delta is needed at least weekly)") }
        let scheme = http ? "http" : "https"
        var urls: [String] = []
        for url in publicURL {
            // Behind a proxy that terminates TLS, plain http serves the https:// names the proxy is reached by.
            guard let normalised = NetworkPolicy.normalise(url), normalised.hasPrefix(scheme + "://") || (http && normalised.hasPrefix("https://")) else {
                throw ValidationError("--public-url \(url) is not a \(scheme):// URL with a host name and nothing after it")
            }
            urls.append(normalised)
        }
        if urls.isEmpty { urls = NetworkPolicy.loopback(scheme: scheme, host: host, port: port) }
        var proxies: [IPAddressRange] = []
        for text in trustedProxy {
            guard let range = NetworkPolicy.proxyRange(text) else { throw ValidationError("--trusted-proxy \(text) is not an IP address or CIDR range") }
            proxies.append(range)
        }
        guard let forwardedKind = ForwardedHeaders(rawValue: forwardedHeaders) else {
            throw ValidationError("--forwarded-headers \(forwardedHeaders) is not one of \(ForwardedHeaders.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        try Self.checkProxying(http: http, publicURLs: urls, trustedProxies: proxies, forwardedHeaders: forwardedKind)
        if http, !allowHttpOnNetwork, !Self.isLoopback(host) {
            throw ValidationError("--http on \(host) would serve plain http to other machines: listen on 127.0.0.1 behind a proxy on this machine, or add --allow-http-on-network when a proxy elsewhere reaches it over a private network")
        }
        if tlsCert != nil || tlsKey != nil {
            guard tlsCert != nil, tlsKey != nil else { throw ValidationError("--tls-cert and --tls-key go together: give both") }
            guard !http else { throw ValidationError("--tls-cert serves https: drop --http (behind a proxy that terminates TLS, the proxy holds the certificate)") }
            guard (0...86_400).contains(tlsReloadInterval) else { throw ValidationError("--tls-reload-interval must be 0 to 86400 seconds") }
        }
        guard maxConnectionsPerAddress >= 1 else { throw ValidationError("--max-connections-per-address must be at least 1") }
        guard (1...3600).contains(idleTimeout) else { throw ValidationError("--idle-timeout must be 1 to 3600 seconds") }
        guard graphRateLimit >= 0, tokenRateLimit >= 0 else { throw ValidationError("rate limits cannot be negative") }
        guard (0...300).contains(drainSeconds) else { throw ValidationError("--drain-seconds must be 0 to 300") }
        guard (1...3600).contains(shutdownTimeout) else { throw ValidationError("--shutdown-timeout must be 1 to 3600 seconds") }
        return CheckedOptions(logLevel: level, publicURLs: urls, trustedProxies: proxies, forwardedHeaders: forwardedKind,
                              signingKeyRotation: try Self.signingKeyRotation(days: signingKeyRotationDays))
    }

    /// `--http` with an `https://` public URL means a reverse proxy terminates TLS; without a `--trusted-proxy` every
    /// request would be for `http://…` and get 421, so `serve` stops and names the headers the proxy must send.
    static func checkProxying(http: Bool, publicURLs: [String], trustedProxies: [IPAddressRange], forwardedHeaders: ForwardedHeaders) throws {
        guard http, publicURLs.contains(where: { $0.hasPrefix("https://") }), trustedProxies.isEmpty else { return }
        let other = ForwardedHeaders.allCases.filter { $0 != forwardedHeaders }
            .map { "with --forwarded-headers \($0.rawValue), its \($0.headerNames) instead" }.joined(separator: "; ")
        throw ValidationError("--http with an https:// --public-url means a reverse proxy terminates TLS: name it with --trusted-proxy (Tessera believes only its \(forwardedHeaders.headerNames); \(other))")
    }
}

struct TenantCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tenant", abstract: "Manage tenants.", subcommands: [Create.self, List.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a tenant with an administrator and an automation app.")
        @OptionGroup var storage: StorageOptions
        @Option(help: "Organisation name.") var name: String
        @Option(help: "Initial domain, e.g. contoso.test.") var domain: String
        @Flag(help: "Print one JSON object.") var json = false

        func run() async throws {
            let store = try await storage.openStore()
            let app = try await TesseraApp.make(store: store, keyEncryption: try storage.keyEncryption.load())
            do {
                let created = try await TenantProvisioner(directory: app.directory).create(name: name, domain: domain)
                if json {
                    let value: JSONValue = ["tenantId": .string(created.tenantId), "domain": .string(created.domain),
                                            "adminUserPrincipalName": .string(created.adminUserPrincipalName),
                                            "clientId": .string(created.clientId), "clientSecret": .string(created.clientSecret)]
                    print(value.serialized)
                } else {
                    print("tenant \(created.tenantId) (\(created.domain)); admin \(created.adminUserPrincipalName); client \(created.clientId) secret \(created.clientSecret)")
                }
            } catch let error as DirectoryError {
                try await store.shutdown()
                throw ValidationError(error.message)
            }
            try await store.shutdown()
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tenants.")
        @OptionGroup var storage: StorageOptions
        func run() async throws {
            let store = try await storage.openStore()
            for tenant in try await store.read({ tx in try await tx.tenants() }) {
                print("\(tenant.id)  \(tenant.domain)  \(tenant.name)")
            }
            try await store.shutdown()
        }
    }
}

/// Writes a line to standard output at once (not buffered), so scripts see it while the server runs.
func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}
