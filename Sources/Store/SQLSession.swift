/// One connection inside a transaction (or a read view).
///
/// Besides statements, a session is told which write ends its transaction (`executeLast`) and which write can be held
/// back until the transaction's end (`hold`): PostgreSQL runs such a write, when it is the transaction's only one, alone
/// as its own commit, saving `BEGIN` and `COMMIT`; SQLite, whose statements cost no round trip, runs both in place.
protocol SQLSession: Sendable {
    /// Runs one statement with `?` placeholders; returns rows as positional values.
    func execute(_ sql: String, _ binds: [SQLValue]) async throws -> [[SQLValue]]

    /// Runs `sql`, a write, as its transaction's last statement; any statement after it in the same transaction is
    /// refused where it could run outside the transaction (PostgreSQL). It returns only once the write's outcome is known:
    /// committed when it ran alone as its own commit, or part of the still-open transaction.
    func executeLast(_ sql: String, _ binds: [SQLValue]) async throws -> [[SQLValue]]

    /// Runs `write` as the session can best: held until the transaction's end and then run alone as its commit when
    /// nothing else was written (PostgreSQL), or at once, in place, as statements of the transaction.
    func hold(_ write: HeldWrite) async throws
}

/// A write a session may hold back: how it runs as its transaction's only write (outside a block, on the bare
/// PostgreSQL connection, returning only once its commit is proven to have ended: `PostgresSession.executeCommitting`)
/// and how it runs inside the transaction, as statements of this session (SQLite always; PostgreSQL when more is written).
struct HeldWrite: Sendable {
    let alone: @Sendable (PostgresSession) async throws -> Void
    let inBlock: @Sendable () async throws -> Void
}
