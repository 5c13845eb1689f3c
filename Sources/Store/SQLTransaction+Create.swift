import PostgresNIO
import TesseraCore

extension SQLTransaction {
    /// A new object with its keys and change-log row, held by the session (`SQLSession.hold`). SQLite runs the three
    /// statements at once (each costs no round trip). On PostgreSQL, as the transaction's only write it runs alone as one
    /// prepared statement that is also the commit (`createAlone`); when more follows, the three run inside the block.
    func create(_ object: StoredObject, keys: [UniqueKey], change: ChangeRecord) async throws {
        try await create(object, keys: keys, change: change, requirement: nil)
    }

    /// `create` when `requirement` holds: read first, except in the one statement of a create run alone on PostgreSQL,
    /// which checks it itself and so saves the round trip of its read.
    func create(_ object: StoredObject, keys: [UniqueKey], change: ChangeRecord, requiring requirement: CreateRequirement) async throws {
        try await create(object, keys: keys, change: change, requirement: requirement)
    }

    private func create(_ object: StoredObject, keys: [UniqueKey], change: ChangeRecord, requirement: CreateRequirement?) async throws {
        let dialect = dialect
        try await session.hold(HeldWrite(
            alone: { connection in
                try await SQLTransaction(session: connection, dialect: dialect)
                    .createAlone(object, keys: keys, change: change, requirement: requirement, on: connection)
            },
            inBlock: {
                if let requirement { try await checkInPlace(requirement, tenant: object.tenant) }
                try await claim(tenant: object.tenant, object: object.id, keys: keys)
                try await insert(object)
                _ = try await record(change)
            }))
    }

    /// `requirement.check` without reading the object out (SQLite): the database answers whether the object is there, of
    /// the kind, and its property is not JSON `false` (missing or `null` meet it, as in ``CreateRequirement/isMet(by:)``),
    /// so a user's create does not decode its domain's whole body (about 1% of a `POST /users`' CPU on SQLite).
    func checkInPlace(_ requirement: CreateRequirement, tenant: String) async throws {
        guard !dialect.isPostgres else { return try await requirement.check(tenant: tenant, in: self) }
        let met = try await rows("SELECT json_type(body, ?) IS NOT 'false' FROM objects WHERE tenant = ? AND id = ? AND kind = ?",
                                 [.text("$.\"\(requirement.property)\""), .text(tenant), .text(requirement.id.lowercased()),
                                  .text(requirement.kind.rawValue)])
        guard met.first?.first?.int == 1 else { throw requirement.error }
    }

    /// The create as one prepared PostgreSQL statement (`PostgresCreateStatement`) on `connection`, outside a transaction
    /// block, so all or nothing of it is saved, and its commit: it returns once the commit is proven to have ended. The
    /// keys are inserted without `ON CONFLICT` (a key another object holds fails the statement), then the object, then
    /// the tenant's sequence is advanced and the change-log row inserted with it (a missing tenant leaves the sequence
    /// NULL, which fails the statement too). Each step reads the one before it, so PostgreSQL runs them in that order and
    /// the tenant's row, which orders the tenant's writers, is locked last, as `claim`, `insert` and `record` lock it.
    /// A `requirement` is read first, in the same snapshot, and nothing is inserted without it, which fails the statement
    /// as a missing tenant does.
    /// A failure is then explained as those three would have: the requirement's error when it does not hold; the first
    /// key, in the caller's order, that another object holds; else an object with the id already there.
    func createAlone(_ object: StoredObject, keys: [UniqueKey], change: ChangeRecord, requirement: CreateRequirement? = nil,
                     on connection: PostgresSession) async throws {
        let claimed = Self.distinct(keys)
        // One order for every writer, as `claim` inserts them: writers after the same keys wait, never deadlock.
        let sorted = claimed.sorted { ($0.name, $0.value) < ($1.name, $1.value) }
        let statement = PostgresCreateStatement(object: object, requirement: requirement, keys: sorted, change: change,
                                                loop: connection.connection.eventLoop)
        do {
            try await connection.executeCommitting(statement)
        } catch let error as PSQLError where error.code == .server {
            switch error.serverInfo?[.sqlState] {
            case "23505":  // unique_violation: a key, or the id
                let holders = try await holders(tenant: object.tenant, keys: claimed)
                if let taken = claimed.first(where: { holders[KeyName($0)].map { $0 != object.id } ?? false }) { throw taken.conflictError }
                if try await self.object(tenant: object.tenant, id: object.id) != nil {
                    throw DirectoryError.badRequest("An object with the id '\(object.id)' already exists.")
                }
                // The holder was gone again by the time it was looked for.
                throw DirectoryError(.conflict, "Another request changed the directory at the same time; retry.")
            case "23502":  // not_null_violation: the change's sequence, as the requirement or the tenant's row was not found
                if let requirement, !requirement.isMet(by: try await self.object(tenant: object.tenant, id: requirement.id)) {
                    throw requirement.error
                }
                throw DirectoryError.notFound(change.tenant)
            default:
                // PostgresNIO keeps a statement whose preparation failed (a table missing when it was parsed, say) failed
                // on its connection, by name, for as long as the connection lives: the connection is closed, and the pool
                // makes another that prepares it again.
                connection.discard()
                throw error
            }
        }
    }
}
