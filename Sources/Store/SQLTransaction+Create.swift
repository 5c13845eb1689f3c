import PostgresNIO
import TesseraCore

extension SQLTransaction {
    /// A new object with its keys and change-log row. SQLite runs the three statements (each costs no round trip). On
    /// PostgreSQL the create is held by the write session: as the transaction's only write it runs alone as one statement
    /// that is also the commit (`createAlone`); when more follows, the three run inside the transaction block.
    func create(_ object: StoredObject, keys: [UniqueKey], change: ChangeRecord) async throws {
        guard let session = session as? PostgresWriteSession else {
            try await claim(tenant: object.tenant, object: object.id, keys: keys)
            try await insert(object)
            _ = try await record(change)
            return
        }
        let dialect = dialect
        try await session.hold(PostgresWriteSession.HeldWrite(
            alone: { connection in
                try await SQLTransaction(session: connection, dialect: dialect).createAlone(object, keys: keys, change: change)
            },
            inBlock: {
                try await claim(tenant: object.tenant, object: object.id, keys: keys)
                try await insert(object)
                _ = try await record(change)
            }))
    }

    /// The create as one PostgreSQL statement outside a transaction block, so all or nothing of it is saved: the keys
    /// inserted without `ON CONFLICT` (a key another object holds fails the statement), then the object, then the
    /// tenant's sequence advanced and the change-log row inserted with it (a missing tenant leaves the sequence NULL, which
    /// fails the statement too). Each step reads the one before it, so PostgreSQL runs them in that order and the
    /// tenant's row, which orders the tenant's writers, is locked last, as `claim`, `insert` and `record` lock it.
    /// A failure is then explained as those three would have: the first key, in the caller's order, that another object
    /// holds; else an object with the id already there.
    func createAlone(_ object: StoredObject, keys: [UniqueKey], change: ChangeRecord) async throws {
        let claimed = Self.distinct(keys)
        var binds: [SQLValue] = []
        var sql = "WITH "
        var keyed = ""
        if !claimed.isEmpty {
            // One order for every writer, as `claim` inserts them: writers after the same keys wait, never deadlock.
            let sorted = claimed.sorted { ($0.name, $0.value) < ($1.name, $1.value) }
            sql += "k AS (INSERT INTO unique_keys (tenant, name, value, object) VALUES \(Self.tuples(4, sorted.count)) RETURNING 1), "
            binds += sorted.flatMap { [.text(object.tenant), .text($0.name), .text($0.value), .text(object.id)] }
            keyed = " WHERE (SELECT count(*) FROM k) = \(sorted.count)"
        }
        sql += """
            o AS (INSERT INTO objects (tenant, id, kind, body, digest, version, deleted_at)
              SELECT ?, ?, ?, b, encode(sha256(convert_to(b::text, 'UTF8')), 'hex'), ?, ? FROM (SELECT CAST(? AS JSONB) AS b) AS body\(keyed)
              RETURNING 1),
            next AS (UPDATE tenants SET change_seq = change_seq + 1 WHERE id = ? AND (SELECT count(*) FROM o) = 1 RETURNING change_seq)
            INSERT INTO changes (tenant, seq, object, kind, operation, activity, actor, at, details)
            VALUES (?, (SELECT change_seq FROM next), ?, ?, ?, ?, ?, ?, ?) RETURNING seq
            """
        binds += [.text(object.tenant), .text(object.id), .text(object.kind.rawValue), .int(object.version),
                  object.deletedAt.map { .text($0) } ?? .null, .text(JSONValue.object(object.body).serialized)]
        binds += [.text(change.tenant)]
        binds += [.text(change.tenant), .text(change.objectId), .text(change.kind.rawValue), .text(change.operation), .text(change.activity),
                  .text(change.actor.serialized), .text(change.at), .text(change.details.serialized)]
        do {
            _ = try await rows(sql, binds)
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
            case "23502":  // not_null_violation: the change's sequence, as the tenant's row was not found
                throw DirectoryError.notFound(change.tenant)
            default:
                throw error
            }
        }
    }
}
