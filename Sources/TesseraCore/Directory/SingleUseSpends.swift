/// What ``SingleUseSpends/spend(tenant:key:expiresAt:now:inserting:if:)`` found.
public enum SpendOutcome: Sendable, Equatable {
    /// The key was fresh: it is spent now and the records were added.
    case spent
    /// The key was spent before (a replay, or a concurrent request won): no record was added.
    case alreadySpent
    /// What the spend was conditioned on no longer holds (the object named as unchanged is gone or at another version;
    /// the record named as live is gone or expired) and the key was not spent before: nothing was written, not even the
    /// key spent.
    case objectChanged
}

/// What a spend holds on besides its key being fresh, read in the spend's own statement.
public enum SpendCondition: Sendable {
    /// An object read before is still at the version it was read at (a passkey without a counter).
    case unchanged(StoredObject)
    /// A credential record still exists and has not expired (the sign-in session an authorization code was issued from:
    /// a sign-out or `revokeSignInSessions` deletes it).
    case live(tenant: String, kind: CredentialKind, id: String)
}

/// A sign-in step's writes as one: a single-use key spent and, only when it was fresh, credential records added (an
/// authorization code and its refresh token; a passkey challenge and its session). Part of every
/// ``DirectoryTransaction``.
public protocol SingleUseSpends: Sendable {
    /// Spends `key` as ``SingleUseKeys/consumeOnce(tenant:key:expiresAt:now:)`` does and, when it was fresh, inserts
    /// `rows` as ``CredentialWriter/insertCredential(_:)`` does each (a taken id or handle throws, and nothing is saved).
    /// With a `condition`, only while it holds; else nothing at all is written (``SpendOutcome/objectChanged``, or
    /// ``SpendOutcome/alreadySpent`` when the key was spent before all the same).
    ///
    /// The transaction's last statement: nothing may follow it in the same transaction. On PostgreSQL it is one
    /// statement, and when it is the transaction's only write it runs alone, outside a transaction block, as the commit
    /// (two round trips where `BEGIN`, the spend, the condition's read, the inserts and `COMMIT` were five or six).
    func spend(tenant: String, key: String, expiresAt: String, now: String, inserting rows: [CredentialRow],
               if condition: SpendCondition?) async throws -> SpendOutcome
}
