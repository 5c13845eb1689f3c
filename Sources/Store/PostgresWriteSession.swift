import Synchronization

/// A PostgreSQL write transaction's connection that opens its transaction block (`BEGIN`) only at its first write, and
/// can hold one write back until it knows whether anything follows it.
///
/// Under READ COMMITTED, PostgreSQL's level and the only one the store uses, every statement reads its own snapshot, in a
/// transaction block or not, so the plain reads before a transaction's first write need no block: they run alone. A write
/// that can be made one self-contained statement (a create: its keys, the object and its change-log row) is held
/// (`hold`): when the transaction ends with nothing after it, it runs alone, outside any block, as the transaction's
/// commit, followed by one trivial statement whose answer proves the commit ended (`PostgresSession.executeCommitting`)
/// — a `POST /users` is then two round trips (the create, which checks the UPN's domain itself, and the proof) instead
/// of six with `BEGIN`, three writes and `COMMIT`. When another statement comes first, the block is opened and the held write runs inside
/// it, as it would have at its place.
final class PostgresWriteSession: SQLSession, Sendable {
    private struct State {
        var open = false
        var held: HeldWrite?
        /// The transaction's last statement was sent (`executeLast`): nothing may follow it.
        var ended = false
    }

    /// The connection's statements as they are sent.
    let connection: PostgresSession
    /// Set before anything that may save the transaction's writes is sent (a lost connection after it leaves the
    /// outcome in doubt).
    private let committing: Flag
    private let state = Mutex(State())

    init(_ connection: PostgresSession, committing: Flag) {
        self.connection = connection
        self.committing = committing
    }

    func execute(_ sql: String, _ binds: [SQLValue]) async throws -> [[SQLValue]] {
        try refuseAfterLast()
        if let held = takeHeld() {
            try await begin()
            try await held.inBlock()
        } else if !isOpen, !Self.isPlainRead(sql) {
            try await begin()
        }
        return try await connection.execute(sql, binds)
    }

    /// Runs `sql`, a write, as the transaction's last statement. When nothing was written before it (no block open, no
    /// write held), it runs alone, outside any block, so it is its own commit, and returns once a following `SELECT 1`'s
    /// answer proved that the commit ended (`PostgresSession.executeLast`: both written at once on the connection's event
    /// loop, as `PostgresSession.executeCommitting` does for a prepared create): two round trips instead of `BEGIN`, the
    /// statement and `COMMIT`, and one hop to the loop. Otherwise it runs inside the block, which commits as usual.
    /// Any statement after it is refused (it would run outside the transaction).
    func executeLast(_ sql: String, _ binds: [SQLValue]) async throws -> [[SQLValue]] {
        try refuseAfterLast()
        guard state.withLock({ !$0.open && $0.held == nil }) else {
            // After an earlier write: in the block (opened, with a held write first, as for any write).
            let rows = try await execute(sql, binds)
            state.withLock { $0.ended = true }
            return rows
        }
        state.withLock { $0.ended = true }
        committing.set()
        return try await connection.executeLast(sql, binds)
    }

    private func refuseAfterLast() throws {
        guard !state.withLock({ $0.ended }) else {
            throw StoreError(message: "A statement was sent after its transaction's last statement.")
        }
    }

    /// Holds `write` until the next statement or the end of the transaction; runs it at once inside the block when the
    /// block is open already (an earlier write), after a write held before it.
    func hold(_ write: HeldWrite) async throws {
        try refuseAfterLast()
        if let earlier = takeHeld() {
            try await begin()
            try await earlier.inBlock()
        }
        if isOpen {
            try await write.inBlock()
        } else {
            state.withLock { $0.held = write }
        }
    }

    /// Ends a transaction whose body returned: a held write runs alone (it is the commit, and returns once a following
    /// statement's answer proved that the commit ended), an open block commits, and a transaction that only read has
    /// nothing to end (nor one whose last statement ran alone: it was its own commit). `committing` is set before anything
    /// that may save the writes is sent.
    func commit() async throws {
        if let held = takeHeld() {
            committing.set()
            try await held.alone(connection)
        } else if isOpen {
            committing.set()
            _ = try await connection.execute("COMMIT", [])
        }
    }

    /// Ends a transaction whose body threw: the block, if one was opened, rolls back; a held write is dropped unsent.
    func rollBack() async {
        let wasOpen = state.withLock { state in
            defer { state = State() }
            return state.open
        }
        if wasOpen { _ = try? await connection.execute("ROLLBACK", []) }
    }

    private var isOpen: Bool { state.withLock { $0.open } }

    private func takeHeld() -> HeldWrite? {
        state.withLock { state in
            defer { state.held = nil }
            return state.held
        }
    }

    private func begin() async throws {
        let opening = state.withLock { state in
            defer { state.open = true }
            return !state.open
        }
        if opening { _ = try await connection.execute("BEGIN", []) }
    }

    /// Whether `sql` only reads, taking no lock that must last to the commit: a `SELECT` without a locking clause, an
    /// advisory lock or a sequence or setting change. Anything else (every `WITH`, which may write) opens the block first.
    static func isPlainRead(_ sql: String) -> Bool {
        // The first word, upper-cased by clearing ASCII's lower-case bit.
        let head = sql.utf8.drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\t") }.prefix(6).map { $0 & 0xDF }
        guard head.elementsEqual("SELECT".utf8) else { return false }
        let lower = sql.lowercased()
        return !["for update", "for share", "for no key", "for key share", "pg_advisory", "nextval", "setval", "set_config", "pg_notify"]
            .contains { lower.contains($0) }
    }
}
