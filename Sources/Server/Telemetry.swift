import Foundation
import Metrics
import Prometheus
import Synchronization
import TesseraCore

/// What an operator scrapes at `/metrics`: swift-metrics instruments on a Prometheus registry of this app's own (no
/// process-wide bootstrap, so every app, and every test, counts only itself). Labels are bounded: routes are templates,
/// never ids, and tenants are not a label.
public final class Telemetry: Sendable {
    let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory
    /// The listeners whose certificate expiry `/metrics` shows: the seconds left, asked at each scrape.
    private let certificates = Mutex<[String: @Sendable () -> Double?]>([:])

    public init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [.milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                                                   .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
                                                   .seconds(1), .seconds(2), .seconds(5), .seconds(10), .seconds(30)]
        self.factory = factory
    }

    /// The exposition text (Prometheus 0.0.4).
    public func exposition() -> [UInt8] {
        for (listener, secondsLeft) in certificates.withLock({ $0 }) {
            guard let seconds = secondsLeft() else { continue }
            Gauge(label: "tessera_tls_certificate_expiry_seconds", dimensions: [("listener", listener)], factory: factory).record(seconds)
        }
        return registry.emitToBuffer()
    }

    /// Shows `tessera_tls_certificate_expiry_seconds{listener}`, the seconds `secondsLeft` says the certificate
    /// `listener` presents has before it expires, so monitoring can alert before clients refuse it.
    func watchCertificate(listener: String, secondsLeft: @escaping @Sendable () -> Double?) {
        certificates.withLock { $0[listener] = secondsLeft }
    }

    func request(route: String, method: String, status: Int, duration: Duration) {
        // A method is the client's word (any token): outside HTTP's own it is "other", so neither the registry nor the
        // instruments kept below grow with what a client makes up.
        let method = Self.methods.contains(method) ? method : "other"
        let instruments = requestInstruments.kept(RequestKey(route: route, method: method, status: status)) {
            RequestInstruments(
                requests: Metrics.Counter(label: "tessera_http_requests_total", dimensions: [("route", route), ("method", method), ("status", String(status))],
                                          factory: factory),
                duration: Metrics.Timer(label: "tessera_http_request_duration_seconds", dimensions: [("route", route), ("method", method)],
                                        factory: factory))
        }
        instruments.requests.increment()
        instruments.duration.recordNanoseconds(Self.nanoseconds(duration))
    }

    /// The methods that are labels of their own (RFC 9110's and PATCH).
    static let methods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"]

    /// A request's counter and timer by route, method and status, made once each (the labels are bounded: routes are
    /// templates, methods ``methods`` or "other", statuses three digits): making them sanitized the labels and looked them
    /// up in the registry at every request.
    private let requestInstruments = Mutex<[RequestKey: RequestInstruments]>([:])

    struct RequestKey: Hashable, Sendable {
        let route: String
        let method: String
        let status: Int
    }

    struct RequestInstruments: Sendable {
        let requests: Metrics.Counter
        let duration: Metrics.Timer
    }

    func signIn(method: String, succeeded: Bool) {
        let result = succeeded ? "success" : "failure"
        counters.kept(InstrumentKey(name: "signIn", first: method, second: result)) {
            Counter(label: "tessera_sign_ins_total", dimensions: [("method", method), ("result", result)], factory: factory)
        }.increment()
    }

    func token(grant: String) {
        counters.kept(InstrumentKey(name: "token", first: grant)) {
            Counter(label: "tessera_tokens_issued_total", dimensions: [("grant", grant)], factory: factory)
        }.increment()
    }

    /// The sign-in and token counters and the store's transaction timers, made once per label set and kept, as a
    /// request's are (making one sanitized its labels and looked it up in the registry: three times a sign-in). Their
    /// labels come from Tessera's code (a sign-in method, a grant, a transaction's kind), never from a client.
    private let counters = Mutex<[InstrumentKey: Metrics.Counter]>([:])
    private let timers = Mutex<[InstrumentKey: Metrics.Timer]>([:])

    struct InstrumentKey: Hashable, Sendable {
        let name: String
        let first: String
        var second: String = ""
    }

    func lockout(kind: String) {
        Counter(label: "tessera_lockouts_total", dimensions: [("kind", kind)], factory: factory).increment()
    }

    func throttled(kind: String) {
        Counter(label: "tessera_throttled_total", dimensions: [("kind", kind)], factory: factory).increment()
    }

    func transaction(kind: String, duration: Duration) {
        timers.kept(InstrumentKey(name: "transaction", first: kind)) {
            Metrics.Timer(label: "tessera_store_transaction_duration_seconds", dimensions: [("kind", kind)], factory: factory)
        }.recordNanoseconds(Self.nanoseconds(duration))
    }

    /// A handshake the health listener refused (`protocol_version` for TLS 1.0/1.1), and an agent's upload by result.
    func healthHandshakeRefused(reason: String) {
        Counter(label: "tessera_health_tls_handshakes_refused_total", dimensions: [("reason", reason)], factory: factory).increment()
    }

    func healthUpload(result: String) {
        Counter(label: "tessera_health_uploads_total", dimensions: [("result", result)], factory: factory).increment()
    }

    /// A background job: a sync run, a snapshot, retention, a recovery.
    public func job(kind: String, succeeded: Bool, duration: Duration) {
        Metrics.Timer(label: "tessera_job_duration_seconds", dimensions: [("kind", kind), ("result", succeeded ? "success" : "failure")],
                      factory: factory).recordNanoseconds(Self.nanoseconds(duration))
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    }

    /// The route a path belongs to, as a template: `/v1.0/users/{id}/memberOf` is `/v1.0/users`, a tenant's token endpoint
    /// `/{tenant}/oauth2/v2.0/token`. Anything unknown is `other`, so a client cannot mint label values.
    static func route(_ segments: [String]) -> String {
        guard let first = segments.first else { return "/" }
        switch first {
        case "v1.0", "beta":
            guard segments.count > 1 else { return "/\(first)" }
            let resource = segments[1]
            let known = resource.allSatisfy { $0.isLetter || $0 == "$" } && resource.count <= 40
            return "/\(first)/\(known ? resource : "{resource}")"
        case "admin", "healthz", "readyz", "metrics":
            return "/\(first)"
        case "oidc":
            return segments == ["oidc", "userinfo"] ? "/oidc/userinfo" : "other"
        default:
            let rest = segments.dropFirst().joined(separator: "/")
            return tenantEndpoints.contains(rest) ? "/{tenant}/\(rest)" : "other"
        }
    }

    /// The identity platform's endpoints under a tenant, each its own route label (made once, not at every request).
    static let tenantEndpoints: Set<String> = [
        "v2.0/.well-known/openid-configuration", ".well-known/openid-configuration", "discovery/v2.0/keys", "discovery/keys",
        "oauth2/v2.0/token", "oauth2/v2.0/authorize", "oauth2/v2.0/logout", "oauth2/v2.0/devicecode", "oauth2/v2.0/consent",
        "devicelogin", "login", "login/passkey", "login/passkey/options", "login/tap", "login/enroll", "login/enroll/options",
    ]
}

/// The store, timed: every transaction's duration goes to ``Telemetry``.
struct InstrumentedStore: DirectoryStore {
    let base: any DirectoryStore
    let telemetry: Telemetry

    func migrate() async throws { try await base.migrate() }

    func write<T: Sendable>(_ body: @Sendable (any DirectoryTransaction) async throws -> T) async throws -> T {
        let start = ContinuousClock.now
        defer { telemetry.transaction(kind: "write", duration: ContinuousClock.now - start) }
        return try await base.write(body)
    }

    func read<T: Sendable>(_ body: @Sendable (any DirectoryReadView) async throws -> T) async throws -> T {
        let start = ContinuousClock.now
        defer { telemetry.transaction(kind: "read", duration: ContinuousClock.now - start) }
        return try await base.read(body)
    }

    func shutdown() async throws { try await base.shutdown() }
}

private extension Mutex {
    /// The instrument kept under `key`, made by `make` the first time it is asked for.
    borrowing func kept<Key: Hashable & Sendable, Instrument: Sendable>(_ key: Key, make: () -> Instrument) -> Instrument where Value == [Key: Instrument] {
        withLock { table in
            if let found = table[key] { return found }
            let made = make()
            table[key] = made
            return made
        }
    }
}
