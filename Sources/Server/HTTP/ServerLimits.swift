import Foundation
public import Hummingbird
import HummingbirdCore
import Logging
public import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a connection, and a request from a caller Tessera does not know yet, may cost. An attacker on the port gets
/// no more than this: silent connections are closed, one address cannot hold every descriptor, and request bodies are
/// read only within a budget, after the caller is known where the route allows it.
public struct ServerLimits: Sendable {
    /// Open connections in all; past it the server stops accepting until one closes. Nil: the server raises the
    /// process's open-file limit when it starts and stays below it.
    public var maxConnections: Int?
    /// Open connections from one client address; past it a new connection is closed at once.
    public var maxConnectionsPerAddress: Int
    /// How long a connection may go without a request once open or after a response: covers the TLS handshake, a request
    /// head that trickles in, and keep-alive.
    public var idleTimeout: Duration
    /// How long a request body may take to arrive once its head has (in effect at most `bodyDeadline`).
    public var bodyTimeout: Duration
    /// The largest body of a request that has not authenticated before its body is read (sign-in, token, admin forms).
    public var maxAnonymousBodyBytes: Int
    /// Request bodies held in memory at once, across all connections; past it requests get 503 with `Retry-After`.
    public var maxBufferedBodyBytes: Int
    /// Graph requests a second one caller (a user or an application, per tenant) may make, with twice that as a burst;
    /// past it, 429 with `Retry-After`, as Graph throttles. Zero: no limit.
    public var graphRequestsPerSecond: Int = 500
    /// Token endpoint requests a second from one client address, with twice that as a burst. Zero: no limit.
    public var tokenRequestsPerSecond: Int = 200

    public init(maxConnections: Int? = nil, maxConnectionsPerAddress: Int = 256,
                idleTimeout: Duration = .seconds(30), bodyTimeout: Duration = .seconds(30),
                maxAnonymousBodyBytes: Int = 256 * 1024, maxBufferedBodyBytes: Int = 256 * 1024 * 1024) {
        self.maxConnections = maxConnections
        self.maxConnectionsPerAddress = maxConnectionsPerAddress
        self.idleTimeout = idleTimeout
        self.bodyTimeout = bodyTimeout
        self.maxAnonymousBodyBytes = maxAnonymousBodyBytes
        self.maxBufferedBodyBytes = maxBufferedBodyBytes
    }

    /// How long a body is given in effect: `bodyTimeout`, but at most two thirds of `idleTimeout`. The idle timer closes a
    /// connection that has read nothing for `idleTimeout`, without an answer; a body that stalls completely must be cut
    /// off first (within a tenth of its time, `BodyDeadlines`), so that it too is answered 408 with `Connection: close`,
    /// as one that trickles is.
    public var bodyDeadline: Duration { min(bodyTimeout, idleTimeout * 2 / 3) }

    /// Raises the process's open-file limit to its hard limit (once, as the server starts) and returns how many
    /// connections fit below it with room for the database, files and logs: the connections Tessera accepts must
    /// never be what stops it from opening anything else.
    static func raiseOpenFileLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 900 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = min(limit.rlim_max, 65_536)
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return max(64, Int(min(limit.rlim_cur, 65_536)) - 128)
    }
}

/// Counts open connections per client address, shared by every connection of one server.
final class ConnectionsPerAddress: Sendable {
    let limit: Int
    private let counts = Mutex<[String: Int]>([:])

    init(limit: Int) { self.limit = limit }

    /// Takes a place for `address`; false when it already holds `limit` connections.
    func open(_ address: String) -> Bool {
        counts.withLock { counts in
            let current = counts[address, default: 0]
            guard current < limit else { return false }
            counts[address] = current + 1
            return true
        }
    }

    func close(_ address: String) {
        counts.withLock { counts in
            let remaining = counts[address, default: 1] - 1
            counts[address] = remaining > 0 ? remaining : nil
        }
    }

    func count(_ address: String) -> Int { counts.withLock { $0[address, default: 0] } }
}

/// First in a connection's pipeline (before TLS): refuses a connection whose address already holds its share, and
/// gives the place back when the connection closes.
final class AddressAdmissionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    let connections: ConnectionsPerAddress
    private var admitted: String?
    private var decided = false

    init(connections: ConnectionsPerAddress) { self.connections = connections }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { admit(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        admit(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        release()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) { release() }

    private func admit(_ context: ChannelHandlerContext) {
        guard !decided else { return }
        decided = true
        let address = context.channel.remoteAddress?.ipAddress ?? "unknown"
        if connections.open(address) {
            admitted = address
        } else {
            context.close(promise: nil)
        }
    }

    private func release() {
        if let admitted { connections.close(admitted) }
        admitted = nil
    }
}

/// A server child channel with the address admission in front of `base` (which may be TLS over HTTP/1.1).
struct AdmittedChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base
    let connections: ConnectionsPerAddress

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(AddressAdmissionHandler(connections: connections))
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// The bytes of request bodies held at once: a reservation is taken before a body is read and given back when its
/// request is answered.
final class BodyBudget: Sendable {
    let capacity: Int
    private let used = Mutex(0)

    init(capacity: Int) { self.capacity = capacity }

    func reserve(_ bytes: Int) -> Bool {
        used.withLock { used in
            guard used + bytes <= capacity else { return false }
            used += bytes
            return true
        }
    }

    func release(_ bytes: Int) { used.withLock { $0 -= bytes } }

    var inUse: Int { used.withLock { $0 } }
}

/// The request context Tessera's responder runs with: Hummingbird's, plus the connection's peer address.
public struct TesseraRequestContext: Hummingbird.RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// The connection the request arrived on: a late body's read is ended through it (`TesseraResponder`).
    let connection: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        connection = source.channel
    }
}

/// A token bucket: it holds up to `capacity` tokens and gains `rate` a second; each request or failure takes one.
struct TokenBucket: Sendable {
    private(set) var tokens: Double
    private(set) var updated: Date

    init(capacity: Double, at now: Date) {
        tokens = capacity
        updated = now
    }

    /// Adds what `rate` has earned since the last update, up to `capacity`.
    mutating func refill(at now: Date, rate: Double, capacity: Double) {
        tokens = min(capacity, tokens + max(0, now.timeIntervalSince(updated)) * rate)
        updated = now
    }

    mutating func take() { tokens -= 1 }

    var isEmpty: Bool { tokens < 1 }

    /// Whole seconds until the next token, at `rate`.
    func secondsUntilNext(rate: Double) -> Int { max(1, Int(((1 - tokens) / rate).rounded(.up))) }
}

/// Token buckets per key (a Graph caller, a client address at the token endpoint): `rate` requests a second
/// sustained, `burst` at once; past that a request is answered 429 with `Retry-After`.
final class RateLimiter: Sendable {
    let rate: Double
    let burst: Double
    private let buckets = Mutex<[String: TokenBucket]>([:])

    init(rate: Double, burst: Double) {
        self.rate = rate
        self.burst = burst
    }

    /// Takes one request from `key`'s bucket; nil when allowed, else the seconds to wait.
    func take(_ key: String, now: Date = Date()) -> Int? {
        buckets.withLock { buckets in
            if buckets.count > 100_000 {
                // Forget the buckets that have refilled (callers who have been quiet): they would start full anyway.
                buckets = buckets.filter { now.timeIntervalSince($0.value.updated) < burst / rate }
            }
            var bucket = buckets[key] ?? TokenBucket(capacity: burst, at: now)
            bucket.refill(at: now, rate: rate, capacity: burst)
            defer { buckets[key] = bucket }
            if bucket.isEmpty { return bucket.secondsUntilNext(rate: rate) }
            bucket.take()
            return nil
        }
    }
}
