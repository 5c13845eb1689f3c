import Foundation
import Synchronization

/// Entra-style smart lockout and per-source throttling of failed authentication, held in memory on each node (as
/// Entra's is per data centre): a guesser is slowed and then locked out, while the real user, signing in from
/// elsewhere, is not.
///
/// - An **account** (a user name, or a client id at the token endpoint) seen failing `lockoutThreshold` times from one
///   source is locked for that source for `lockoutDuration`; each further failure after a lock ends locks it again for
///   twice as long (up to `maximumLockout`). A success clears it. Another source is not affected.
/// - A **source** (client address) has a bucket of `sourceBurst` failed attempts, refilled at `sourceRefillPerSecond`;
///   when it is empty, every authentication attempt from it is answered 429 with `Retry-After` before any work is
///   done, so nothing it sends writes to the database.
final class SignInThrottle: Sendable {
    struct Settings: Sendable {
        var lockoutThreshold = 10
        var lockoutDuration: TimeInterval = 60
        var maximumLockout: TimeInterval = 3600
        var sourceBurst = 30.0
        var sourceRefillPerSecond = 0.5
        /// Entries idle this long are forgotten.
        var memory: TimeInterval = 3600
    }

    enum Refusal: Equatable, Sendable {
        /// The account is locked for this source until then.
        case lockedOut(until: Date)
        /// The source has used up its failures; retry after this many seconds.
        case throttled(retryAfter: Int)

        func retryAfter(now: Date) -> Int {
            switch self {
            case .lockedOut(let until): max(1, Int(until.timeIntervalSince(now).rounded(.up)))
            case .throttled(let seconds): seconds
            }
        }
    }

    private struct Account {
        var failures = 0
        var lockouts = 0
        var lockedUntil: Date?
        var lastSeen: Date
    }

    private struct State {
        var accounts: [String: Account] = [:]
        var sources: [String: TokenBucket] = [:]
        var lastSweep = Date.distantPast
    }

    let settings: Settings
    private let state = Mutex(State())

    init(settings: Settings = .init()) { self.settings = settings }

    private static func key(_ account: String, _ source: String?) -> String { "\(account.lowercased())\u{0}\(source ?? "-")" }

    /// Whether an attempt for `account` (if known yet) from `source` may go ahead at `now`.
    func check(account: String?, source: String?, now: Date) -> Refusal? {
        state.withLock { state in
            if let source, var bucket = state.sources[source] {
                bucket.refill(at: now, rate: settings.sourceRefillPerSecond, capacity: settings.sourceBurst)
                state.sources[source] = bucket
                if bucket.isEmpty { return .throttled(retryAfter: bucket.secondsUntilNext(rate: settings.sourceRefillPerSecond)) }
            }
            if let account, let entry = state.accounts[Self.key(account, source)], let until = entry.lockedUntil, until > now {
                return .lockedOut(until: until)
            }
            return nil
        }
    }

    /// Counts a failed attempt; returns the lock it caused, if it caused one (so that it can be logged once).
    @discardableResult
    func failed(account: String?, source: String?, now: Date) -> Date? {
        state.withLock { state in
            sweep(&state, now: now)
            if let source {
                var bucket = state.sources[source] ?? TokenBucket(capacity: settings.sourceBurst, at: now)
                bucket.refill(at: now, rate: settings.sourceRefillPerSecond, capacity: settings.sourceBurst)
                bucket.take()
                state.sources[source] = bucket
            }
            guard let account else { return nil }
            let key = Self.key(account, source)
            var entry = state.accounts[key] ?? Account(lastSeen: now)
            entry.lastSeen = now
            entry.failures += 1
            // After a first lock, every failure locks again, for twice as long each time.
            let threshold = entry.lockouts == 0 ? settings.lockoutThreshold : 1
            var locked: Date?
            if entry.failures >= threshold, entry.lockedUntil.map({ $0 <= now }) ?? true {
                let duration = min(settings.maximumLockout, settings.lockoutDuration * pow(2, Double(entry.lockouts)))
                entry.lockedUntil = now.addingTimeInterval(duration)
                entry.lockouts += 1
                entry.failures = 0
                locked = entry.lockedUntil
            }
            state.accounts[key] = entry
            return locked
        }
    }

    /// A success from this source: the account's count for it starts again.
    func succeeded(account: String, source: String?) {
        _ = state.withLock { state in state.accounts.removeValue(forKey: Self.key(account, source)) }
    }

    private func sweep(_ state: inout State, now: Date) {
        guard now.timeIntervalSince(state.lastSweep) > 60 else { return }
        state.lastSweep = now
        let horizon = now.addingTimeInterval(-settings.memory)
        state.accounts = state.accounts.filter { $0.value.lastSeen > horizon || ($0.value.lockedUntil.map { $0 > now } ?? false) }
        state.sources = state.sources.filter { $0.value.updated > horizon && $0.value.tokens < settings.sourceBurst }
    }
}
