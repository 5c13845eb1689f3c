/// What ``SingleUseSpends/spend(tenant:key:expiresAt:now:inserting:ifUnchanged:)`` found.
public enum SpendOutcome: Sendable, Equatable {
    /// The key was fresh: it is spent now and the records were added.
    case spent
    /// The key was spent before (a replay, or a concurrent request won): no record was added.
    case alreadySpent
    /// The object named as unchanged is gone or at another version: nothing was written, not even the key spent.
    case objectChanged
}

/// A sign-in step's writes as one: a single-use key spent and, only when it was fresh, credential records added (an
/// authorization code and its refresh token; a passkey challenge and its session). Part of every
/// ``DirectoryTransaction``.
public protocol SingleUseSpends: Sendable {
    /// Spends `key` as ``SingleUseKeys/consumeOnce(tenant:key:expiresAt:now:)`` does and, when it was fresh, inserts
    /// `rows` as ``CredentialWriter/insertCredential(_:)`` does each (a taken id or handle throws, and nothing is saved).
    /// With `object`, only while that object is still at the version it was read at; else nothing at all is written.
    ///
    /// The transaction's last statement: nothing may follow it in the same transaction. On PostgreSQL it is one
    /// statement, and when it is the transaction's only write it runs alone, outside a transaction block, as the commit
    /// (two round trips where `BEGIN`, the spend, the read of `object`, the inserts and `COMMIT` were five or six).
    func spend(tenant: String, key: String, expiresAt: String, now: String, inserting rows: [CredentialRow],
               ifUnchanged object: StoredObject?) async throws -> SpendOutcome
}
