import Crypto
import CryptoExtras
import Foundation
import Logging
import Synchronization
import TesseraCore

/// OpenID Connect Back-Channel Logout 1.0: when a session ends (RP-initiated logout, `revokeSignInSessions`), every
/// app it signed into that registered a back-channel logout URL (`web.backchannelLogoutUrl`, Tessera's extension of
/// Entra's `webApplication`) gets a signed logout token POSTed to it, from ``BackChannelLogoutQueue``, never on the
/// request's own time.
struct BackChannelLogout {
    let app: TesseraApp

    /// Logout tokens live two minutes: long enough for the queue's retries, short enough to be useless when stolen.
    static let tokenLifetime: Int64 = 120
    static let event = "http://schemas.openid.net/event/backchannel-logout"

    /// The logout token (§2.4) telling `clientID` that session `sessionID` of `userID` ended: `typ` `logout+jwt`, the
    /// pairwise `sub` the client knows the user by, `sid`, the logout event, no `nonce`.
    func token(tenant: String, issuer: String, clientID: String, userID: String, sessionID: String) throws -> String {
        let now = Int64(app.clock.now.timeIntervalSince1970)
        let claims: [String: JSONValue] = [
            "iss": .string(issuer), "aud": .string(clientID), "iat": .int(now), "exp": .int(now + Self.tokenLifetime),
            "jti": .string(Identifier.make()), "sub": .string(UserInfo.subject(tenant: tenant, client: clientID, user: userID)),
            "sid": .string(sessionID), "tid": .string(tenant), "events": [Self.event: [:]],
        ]
        return try JWT.sign(claims: claims, header: ["typ": "logout+jwt", "kid": .string(app.signingKey.kid), "x5t": .string(app.signingKey.kid)],
                            key: app.signingKey.privateKey)
    }

    /// The back-channel logout URL an application registered, when it is one Tessera posts to (https, or http to a
    /// loopback address: the rule Graph's writes enforce, checked again here for objects stored before it).
    static func url(of application: StoredObject) -> URL? {
        guard let text = application.body["web"]?["backchannelLogoutUrl"]?.stringValue, LogoutURLRule.isAcceptable(text) else { return nil }
        return URL(string: text)
    }

    /// Queues a logout token for each app in `sessions` that registered a back-channel URL; returns how many were queued.
    /// Each token's `iss` is the one the app's ID tokens carry (the URL its sign-in came by); `baseURL`, the URL the
    /// logout came by, only for records that do not say.
    @discardableResult
    func notify(_ sessions: [SessionClientRecord], tenant: String, baseURL: String) async -> Int {
        var deliveries: [BackChannelLogoutQueue.Delivery] = []
        for record in sessions {
            // A direct connect sign-in's app, and the tokens it got, are the resource tenant's.
            let issuing = record.issuingTenant(session: tenant)
            let issuer = IdentityPlatform(app: app).issuer(tenant: issuing, base: record.baseURL ?? baseURL)
            do {
                guard let application = try await app.application(tenant: issuing, appID: record.clientID), let url = Self.url(of: application)
                else { continue }
                let token = try token(tenant: issuing, issuer: issuer, clientID: record.clientID, userID: record.userID, sessionID: record.sessionID)
                deliveries.append(.init(url: url, clientID: record.clientID, token: token))
            } catch {
                app.logger.warning("Back-channel logout: no logout token for client \(record.clientID): \(String(describing: error))")
            }
        }
        app.backChannelLogout.enqueue(deliveries, http: app.outbound, logger: app.logger)
        return deliveries.count
    }

    /// Every session of `userID` and the apps it signed into, read before `revokeSignInSessions` deletes them.
    func sessions(tenant: String, userID: String) async throws -> [SessionClientRecord] {
        try await SessionClients(app: app).of(user: userID, tenant: tenant)
    }
}

/// The deliveries of logout tokens, in memory: bounded (past `capacity` waiting deliveries the oldest is dropped, with
/// a log line), at most `concurrency` in flight, each retried with exponential backoff (`backoff`, twice that, …) up
/// to `maxAttempts` when the app cannot be reached or answers 5xx, 408 or 429. A 2xx is delivered; any other answer is
/// the app refusing the token, which another attempt would not change. Deliveries waiting when the process stops are
/// lost (the tokens expire in two minutes anyway); the work runs on a task of its own, never on a request's time.
final class BackChannelLogoutQueue: Sendable {
    struct Delivery: Sendable {
        let url: URL
        let clientID: String
        let token: String
        var attempt = 0
        var due = ContinuousClock.now
        var http: (any OutboundHTTP)? = nil
        var logger: Logger? = nil

        init(url: URL, clientID: String, token: String) {
            self.url = url
            self.clientID = clientID
            self.token = token
        }
    }

    /// What the queue has done, for tests and metrics.
    struct Counts: Sendable, Equatable {
        var delivered = 0, failed = 0, dropped = 0, retried = 0
    }

    private struct State {
        var waiting: [Delivery] = []
        var inFlight = 0
        var running = false
        var counts = Counts()
        var idle: [CheckedContinuation<Void, Never>] = []
        /// The worker's pause, and a wake-up that came while it was not paused.
        var wake: CheckedContinuation<Void, Never>?
        var woken = false
    }

    let capacity: Int
    let concurrency: Int
    let maxAttempts: Int
    let backoff: Duration
    private let state = Mutex(State())

    init(capacity: Int = 1000, concurrency: Int = 8, maxAttempts: Int = 5, backoff: Duration = .seconds(2)) {
        self.capacity = capacity
        self.concurrency = concurrency
        self.maxAttempts = maxAttempts
        self.backoff = backoff
    }

    var counts: Counts { state.withLock { $0.counts } }

    /// Queues `deliveries`, sent with `http`; returns at once.
    func enqueue(_ deliveries: [Delivery], http: any OutboundHTTP, logger: Logger = Logger(label: "tessera")) {
        guard !deliveries.isEmpty else { return }
        let start = state.withLock { state -> Bool in
            for var delivery in deliveries {
                delivery.http = http
                delivery.logger = logger
                if state.waiting.count >= capacity {
                    let dropped = state.waiting.removeFirst()
                    state.counts.dropped += 1
                    logger.warning("Back-channel logout queue full (\(capacity) waiting): dropped the oldest, for client \(dropped.clientID) at \(dropped.url.host ?? "?")")
                }
                state.waiting.append(delivery)
            }
            if state.running { return false }
            state.running = true
            return true
        }
        if start { Task.detached { await self.run() } } else { wake() }
    }

    /// Returns once nothing is waiting or in flight.
    func idle() async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if !state.running { return true }
                state.idle.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    private enum Step {
        case send(Delivery)
        case wait(ContinuousClock.Instant?)
        case done
    }

    /// Wakes the worker: a delivery was queued, an attempt ended or a retry fell due.
    private func wake() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.wake else { state.woken = true; return nil }
            state.wake = nil
            return waiter
        }
        waiter?.resume()
    }

    private func pause() async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if state.woken { state.woken = false; return true }
                state.wake = continuation
                return false
            }
            if now { continuation.resume() }
        }
    }

    private func run() async {
        await withDiscardingTaskGroup { group in
            var armed: ContinuousClock.Instant?
            while true {
                let step = state.withLock { state -> Step in
                    let now = ContinuousClock.now
                    if state.inFlight < concurrency, let index = state.waiting.firstIndex(where: { $0.due <= now }) {
                        state.inFlight += 1
                        return .send(state.waiting.remove(at: index))
                    }
                    if state.waiting.isEmpty && state.inFlight == 0 {
                        state.running = false
                        state.woken = false
                        let waiters = state.idle
                        state.idle = []
                        for waiter in waiters { waiter.resume() }
                        return .done
                    }
                    return .wait(state.inFlight < concurrency ? state.waiting.map(\.due).min() : nil)
                }
                switch step {
                case .send(let delivery):
                    group.addTask {
                        await self.attempt(delivery)
                        self.wake()
                    }
                case .wait(let until):
                    // Until an attempt ends, a delivery is queued or the next retry falls due, whichever comes first.
                    if let until, armed.map({ until < $0 || $0 <= ContinuousClock.now }) ?? true {
                        armed = until
                        group.addTask {
                            try? await Task.sleep(until: until, clock: .continuous)
                            self.wake()
                        }
                    }
                    await pause()
                case .done:
                    group.cancelAll()
                    return
                }
            }
        }
    }

    private func attempt(_ delivery: Delivery) async {
        var delivery = delivery
        delivery.attempt += 1
        let host = delivery.url.host ?? "?"
        var retry = true
        var outcome: String
        do {
            guard let http = delivery.http else { throw DirectoryError(.internalError, "no HTTP client") }
            var request = OutboundRequest(method: "POST", url: delivery.url, headers: [("Content-Type", "application/x-www-form-urlencoded")],
                                          body: Array(AuthorizeEndpoint.encode([("logout_token", delivery.token)]).utf8))
            request.allowsLoopbackHTTP = true
            let response = try await http.send(request)
            if (200..<300).contains(response.status) {
                state.withLock { $0.inFlight -= 1; $0.counts.delivered += 1 }
                return
            }
            retry = response.status >= 500 || response.status == 408 || response.status == 429
            outcome = "answered \(response.status)"
        } catch {
            outcome = "could not be reached (\(String(describing: error)))"
        }
        let again = retry && delivery.attempt < maxAttempts
        let log = delivery.logger
        state.withLock { state in
            state.inFlight -= 1
            if again {
                delivery.due = ContinuousClock.now + backoff * (1 << (delivery.attempt - 1))
                state.counts.retried += 1
                if state.waiting.count >= capacity {
                    let dropped = state.waiting.removeFirst()
                    state.counts.dropped += 1
                    log?.warning("Back-channel logout queue full (\(capacity) waiting): dropped the oldest, for client \(dropped.clientID) at \(dropped.url.host ?? "?")")
                }
                state.waiting.append(delivery)
            } else {
                state.counts.failed += 1
            }
        }
        if again {
            log?.info("Back-channel logout for client \(delivery.clientID) at \(host) \(outcome); attempt \(delivery.attempt + 1) of \(maxAttempts) later")
        } else {
            log?.warning("Back-channel logout for client \(delivery.clientID) at \(host) \(outcome) after \(delivery.attempt) attempts; given up")
        }
    }
}
