import Foundation
import Synchronization
import TesseraCore

/// The sign-in sessions this process has just started (`PasskeySignIn`), so that the `/authorize` request that follows
/// the passkey step reads no session from the store. A session is kept under the rule of the sign-in path's other
/// caches (`SignInCache`), with a tighter clock:
/// - while this process has committed no write to its tenant through the directory service (disabling or deleting the
///   user, for example) and revoked no session (sign-out, `revokeSignInSessions`: ``revoked()``) since the moment
///   before the session's commit;
/// - for at most `TenantCache.maxAge` by the app's clock, which bounds how long a revocation committed by another node
///   (which this process does not hear of) takes to be seen here, as for every other cluster cache;
/// - and never past the session's expiry.
/// Whether the user may still sign in is checked as before, by `TesseraApp.activeSignInUser`.
final class SignInSessionCache: Sendable {
    /// What was current just before a session's commit: an entry made with it is stale after any later change.
    struct Mark: Sendable {
        let generation: UInt64
        let revocations: UInt64
        let at: Date
    }

    private struct Entry: Sendable {
        let session: SignInSessions.Session
        let expires: Date
        let mark: Mark
    }

    private let entries = BoundedTable<Entry>()
    private let revocations = Atomic<UInt64>(0)

    static let maxAge: TimeInterval = {
        let (seconds, attoseconds) = TenantCache.maxAge.components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }()

    private static func key(_ tenant: String, _ id: String) -> String { tenant + "|" + id.lowercased() }

    /// Taken before a session is written: an entry stored with it is stale once anything it covers moves on.
    func mark(tenant: String, generations: TenantGenerations, now: Date) -> Mark {
        Mark(generation: generations.current(tenant), revocations: revocations.load(ordering: .acquiring), at: now)
    }

    /// Keeps a session this process has committed.
    func keep(_ session: SignInSessions.Session, expires: Date, tenant: String, mark: Mark) {
        entries.set(Entry(session: session, expires: expires, mark: mark), for: Self.key(tenant, session.id))
    }

    /// The session with this id, when it was kept and nothing since can have ended it.
    func session(tenant: String, id: String, generations: TenantGenerations, now: Date) -> SignInSessions.Session? {
        guard let entry = entries[Self.key(tenant, id)] else { return nil }
        let age = now.timeIntervalSince(entry.mark.at)
        guard age >= 0, age < Self.maxAge, entry.expires > now,
              generations.current(tenant) == entry.mark.generation,
              revocations.load(ordering: .acquiring) == entry.mark.revocations
        else { return nil }
        return entry.session
    }

    /// Records that this process deleted sign-in sessions (any tenant's): every kept session is read again.
    func revoked() {
        revocations.add(1, ordering: .releasing)
    }
}
