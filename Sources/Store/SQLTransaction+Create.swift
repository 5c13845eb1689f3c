import PostgresNIO
import TesseraCore

extension SQLTransaction {
    /// A new object with its keys and change-log row. SQLite runs the three statements (each costs no round trip). On
    /// PostgreSQL the create is held by the write session: as the transaction's only write it runs alone as one statement
    /// that is also the commit (`createAlone`); when more follows, the three run inside the transaction block.
    func create(_ object: StoredObject, keys: [UniqueKey], change: ChangeRecord) async throws {
        try await create(object, keys: keys, change: change, requirement: nil)
    }

    /// `create` when `requirement` holds: read first, except in the one statement of a create run alone on PostgreSQL,
    /// which checks it itself and so saves the round trip of its read.
    func create(_ object: StoredObject, keys: [UniqueKey], change: ChangeRecord, requiring requirement: CreateRequirement) async throws {
        try await create(object, keys: keys, change: change, requirement: requirement)
    }

    private func create(_ object: StoredObject, keys: [UniqueKey], change: ChangeRecord, requirement: CreateRequirement?) async throws {
        guard let session = session as? PostgresWriteSession else {
            try await requirement?.check(tenant: object.tenant, in: self)
            try await claim(tenant: object.tenant, object: object.id, keys: keys)
            try await insert(object)
            _ = try await record(change)
            return
        }
        let dialect = dialect
        try await session.hold(PostgresWriteSession.HeldWrite(
            alone: { connection in
                try await SQLTransaction(session: connection, dialect: dialect)
                    .createAlone(object, keys: keys, change: change, requirement: requirement)
            },
            inBlock: {
                try await requirement?.check(tenant: object.tenant, in: self)
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
    /// A `requirement` is read first, in the same snapshot (`r`), and nothing is inserted without it, which fails the
    /// statement as a missing tenant does.
    /// A failure is then explained as those three would have: the requirement's error when it does not hold; the first
    /// key, in the caller's order, that another object holds; else an object with the id already there.
    func createAlone(_ object: StoredObject, keys: [UniqueKey], change: ChangeRecord, requirement: CreateRequirement? = nil) async throws {
        let claimed = Self.distinct(keys)
        var binds: [SQLValue] = []
        var sql = "WITH "
        var conditions: [String] = []
        if let requirement {
            sql += "r AS (SELECT 1 FROM objects WHERE tenant = ? AND id = ? AND kind = ? AND body -> CAST(? AS TEXT) IS DISTINCT FROM 'false'::jsonb), "
            binds += [.text(object.tenant), .text(requirement.id.lowercased()), .text(requirement.kind.rawValue), .text(requirement.property)]
            conditions.append("EXISTS (SELECT 1 FROM r)")
        }
        if !claimed.isEmpty {
            // One order for every writer, as `claim` inserts them: writers after the same keys wait, never deadlock.
            let sorted = claimed.sorted { ($0.name, $0.value) < ($1.name, $1.value) }
            let values = "VALUES \(Self.tuples(4, sorted.count))"
            sql += "k AS (INSERT INTO unique_keys (tenant, name, value, object) "
                + (conditions.isEmpty ? values : "SELECT * FROM (\(values)) AS v WHERE \(conditions[0])") + " RETURNING 1), "
            binds += sorted.flatMap { [.text(object.tenant), .text($0.name), .text($0.value), .text(object.id)] }
            conditions = ["(SELECT count(*) FROM k) = \(sorted.count)"]
        }
        let keyed = conditions.isEmpty ? "" : " WHERE " + conditions[0]
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
            case "23502":  // not_null_violation: the change's sequence, as the requirement or the tenant's row was not found
                if let requirement, !requirement.isMet(by: try await self.object(tenant: object.tenant, id: requirement.id)) {
                    throw requirement.error
                }
                throw DirectoryError.notFound(change.tenant)
            default:
                throw error
            }
        }
    }
}
