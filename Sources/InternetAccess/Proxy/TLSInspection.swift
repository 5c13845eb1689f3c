import Crypto
public import Foundation
public import NIOSSL
import SwiftASN1
import Synchronization
public import TesseraCore
import X509

/// TLS inspection for AI apps only: which CONNECT destinations the proxy opens (for a user whose security profile links a
/// prompt policy, the hosts a conversation scheme of that policy covers, less the bypass list), the detector, and how it
/// reaches the real host again.
public struct TLSInspectionConfiguration: Sendable {
    /// The detector and any custom schemes; each user's prompt policy (``PromptPolicy``) says which schemes are read and
    /// what an injection gets.
    public var prompts: PromptInspector
    /// Hosts never inspected (tunnelled untouched), compared without case; `.example.com` also covers subdomains.
    public var bypass: Set<String> = []
    /// Roots the real hosts' certificates must chain to: nil for the system's roots (tests name a test CA).
    public var originTrustRoots: [NIOSSLCertificate]?
    /// Whether prompts are inspected at all (`--inspect-ai-apps`); off, only the tenant restrictions hosts are opened.
    public var inspectsPrompts = true
    /// Identity platform hosts whose requests carry tenant restrictions v2's header naming the user's tenant (see
    /// ``restrictsTenants(host:)``), compared without case; `.example.com` also covers subdomains.
    public var tenantRestrictionHosts: Set<String> = []
    /// Largest request body held whole for inspection (a JSON prompt can only be read once its body is whole). A larger
    /// one is never held: it gets the prompt policy's verdict for unreadable bodies, refused (413) or streamed on
    /// uninspected.
    public var maximumBodyBytes = 4 * 1024 * 1024

    public init(prompts: PromptInspector, originTrustRoots: [NIOSSLCertificate]? = nil) {
        self.prompts = prompts; self.originTrustRoots = originTrustRoots
    }

    /// Adds a host to the bypass list.
    public mutating func addBypass(_ host: String) { bypass.insert(Self.normalised(host)) }

    /// Adds an identity platform host whose requests get the tenant restrictions header.
    public mutating func addTenantRestrictionHost(_ host: String) { tenantRestrictionHosts.insert(Self.normalised(host)) }

    /// Whether CONNECTs to `host` are opened for every user, to put tenant restrictions v2's
    /// `sec-Restrict-Tenant-Access-Policy: <the user's tenant>:<its policy id>` on each request (any the client sent
    /// replaced), as Entra's Global Secure Access and TLS-inspecting proxies do for the identity platform. The bypass
    /// list does not apply: these hosts are named on purpose.
    public func restrictsTenants(host: String) -> Bool { Self.covers(tenantRestrictionHosts, host: Self.normalised(host)) }

    static func normalised(_ host: String) -> String {
        var h = host.lowercased()
        if h.hasSuffix(".") { h.removeLast() }
        return h
    }

    /// Whether a host list names `host` (normalised), `.example.com` entries covering subdomains.
    static func covers(_ hosts: Set<String>, host h: String) -> Bool {
        hosts.contains(h) || hosts.contains(where: { $0.hasPrefix(".") && (h.hasSuffix($0) || "." + h == $0) })
    }

    /// Whether a CONNECT to `host` is inspected: a scheme covers it and the bypass list does not name it.
    public func inspects(host: String) -> Bool {
        inspects(host: host, schemes: prompts.customSchemes + ConversationScheme.builtIn)
    }

    /// Whether a CONNECT to `host` is inspected for a user under `policy`: a scheme the policy reads covers it and the
    /// bypass list does not name it.
    public func inspects(host: String, policy: PromptPolicy) -> Bool {
        inspects(host: host, schemes: prompts.customSchemes + policy.inspectedSchemes)
    }

    func inspects(host: String, schemes: [ConversationScheme]) -> Bool {
        let h = Self.normalised(host)
        guard inspectsPrompts, !Self.covers(bypass, host: h) else { return false }
        return schemes.contains { Glob.matches($0.host, h) }
    }
}

/// The running side of TLS inspection: each tenant's CA (from the store, made on first use, read again every
/// ``authorityMaxAge`` so a rotation's new CA starts signing here when its overlap ends), the leaves it mints per host
/// (cached until a day before they expire, or until the CA changes), and the client context that verifies the real
/// hosts fully.
public final class TLSInspector: Sendable {
    public let configuration: TLSInspectionConfiguration
    let store: any DirectoryStore
    /// How the tenants' inspection CAs are sealed in the store (the proxy's key-encryption key).
    let sealing: KeySealing
    let originContext: NIOSSLContext
    private let authorities = Mutex<[String: Authority]>([:])
    private let leaves = Mutex<[String: Leaf]>([:])
    /// Leaves cached at most; the cache starts over when full.
    static let maximumLeaves = 10_000
    /// How long a tenant's CA is used before the store is asked again.
    static let authorityMaxAge: TimeInterval = 60

    struct Authority: Sendable {
        let ca: InspectionCertificateAuthority
        /// The key of every leaf this process mints for the tenant.
        let leafKey: P256.Signing.PrivateKey
        let readAt: Date
    }

    struct Leaf: Sendable {
        let context: NIOSSLContext
        let certificate: Certificate
        let renewAfter: Date
    }

    public init(configuration: TLSInspectionConfiguration, store: any DirectoryStore, sealing: KeySealing) throws {
        self.configuration = configuration
        self.store = store
        self.sealing = sealing
        var client = TLSConfiguration.makeClientConfiguration()
        client.certificateVerification = .fullVerification
        if let roots = configuration.originTrustRoots { client.trustRoots = .certificates(roots) }
        client.applicationProtocols = ["http/1.1"]
        self.originContext = try NIOSSLContext(configuration: client)
    }

    /// The tenant's inspection CA that signs leaves now.
    public func authority(tenant: String, now: Date) async throws -> InspectionCertificateAuthority {
        try await authorityEntry(tenant: tenant, now: now).ca
    }

    private func authorityEntry(tenant: String, now: Date) async throws -> Authority {
        let known = authorities.withLock { $0[tenant] }
        if let known, now >= known.readAt, now.timeIntervalSince(known.readAt) < Self.authorityMaxAge { return known }
        let ca = try await InspectionCertificateAuthority.current(tenant: tenant, store: store, sealing: sealing, now: now).signing
        if let known, known.ca.certificate == ca.certificate {
            let renewed = Authority(ca: known.ca, leafKey: known.leafKey, readAt: now)
            authorities.withLock { $0[tenant] = renewed }
            return renewed
        }
        let made = Authority(ca: ca, leafKey: P256.Signing.PrivateKey(), readAt: now)
        authorities.withLock { $0[tenant] = made }
        return made
    }

    /// The server context that presents a leaf for `host` signed by the tenant's CA.
    func serverContext(tenant: String, host: String, now: Date) async throws -> NIOSSLContext {
        try await leaf(tenant: tenant, host: host, now: now).context
    }

    /// The leaf for `host`: the cached one while it is fresh and its CA still signs, else a new one.
    func leaf(tenant: String, host: String, now: Date) async throws -> Leaf {
        let key = "\(tenant) \(host.lowercased())"
        let authority = try await authorityEntry(tenant: tenant, now: now)
        if let leaf = leaves.withLock({ $0[key] }), leaf.renewAfter > now, leaf.certificate.issuer == authority.ca.certificate.subject {
            return leaf
        }
        let certificate = try authority.ca.issueLeaf(host: host.lowercased(), key: authority.leafKey, now: now)
        var server = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: try certificate.derBytes, format: .der)),
                               .certificate(try NIOSSLCertificate(bytes: try authority.ca.certificate.derBytes, format: .der))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(authority.leafKey.pemRepresentation.utf8), format: .pem)))
        server.applicationProtocols = ["http/1.1"]
        let context = try NIOSSLContext(configuration: server)
        let leaf = Leaf(context: context, certificate: certificate, renewAfter: certificate.notValidAfter.addingTimeInterval(-86_400))
        leaves.withLock { cached in
            if cached.count >= Self.maximumLeaves { cached.removeAll(keepingCapacity: true) }
            cached[key] = leaf
        }
        return leaf
    }
}

extension Certificate {
    /// The DER encoding.
    var derBytes: [UInt8] {
        get throws {
            var serializer = DER.Serializer()
            try serializer.serialize(self)
            return serializer.serializedBytes
        }
    }
}
