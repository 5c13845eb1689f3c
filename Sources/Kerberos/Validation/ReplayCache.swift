import Synchronization

/// One authenticator as the replay cache remembers it (RFC 4120 section 3.2.3): the client, the authenticator's
/// time and microseconds, and a hash of its ciphertext (so two authenticators of the same microsecond differ).
public struct ReplayEntry: Hashable, Sendable {
    public let client: String
    public let time: Int64
    public let microseconds: Int32
    public let checksumHash: [UInt8]

    /// The hash as one run of bytes (the synthesized one combines the digest a byte at a time).
    public func hash(into hasher: inout Hasher) {
        hasher.combine(client)
        hasher.combine(time)
        hasher.combine(microseconds)
        checksumHash.withUnsafeBytes { hasher.combine(bytes: $0) }
    }
}

/// Remembers authenticators for the clock-skew window. A server backs it with its store so a cluster shares it.
public protocol ReplayCache: Sendable {
    /// Records `entry` until `expires` (seconds since 1970) and returns true, or returns false if it is already
    /// recorded and not expired at `now`.
    func insert(_ entry: ReplayEntry, expires: Int64, now: Int64) async throws -> Bool
}

/// A replay cache in this process's memory, for one server or for tests; expired entries are dropped as new ones
/// arrive.
public final class InMemoryReplayCache: ReplayCache {
    private struct State {
        var entries: [ReplayEntry: Int64] = [:]
        var nextSweep: Int64 = 0
    }
    private let state = Mutex(State())

    public init() {}

    public func insert(_ entry: ReplayEntry, expires: Int64, now: Int64) -> Bool {
        state.withLock { state in
            if now >= state.nextSweep {
                state.entries = state.entries.filter { $0.value > now }
                state.nextSweep = now + 60
            }
            if let existing = state.entries[entry], existing > now { return false }
            state.entries[entry] = expires
            return true
        }
    }

    /// Forgets everything (for benchmarks that replay one token).
    public func removeAll() {
        state.withLock { $0.entries.removeAll(keepingCapacity: true) }
    }

    /// How many entries are held.
    public var count: Int { state.withLock { $0.entries.count } }
}
