import PostgresNIO
import TesseraCore

/// A sign-in step's writes as one (`SingleUseSpends`): SQLite runs them as statements of the transaction (each costs no
/// round trip); PostgreSQL as one data-modifying statement, run alone as the commit when it is the transaction's only
/// write (`SQLSession.executeLast`).
extension SQLTransaction {
    func spend(tenant: String, key: String, expiresAt: String, now: String, inserting rows: [CredentialRow],
               if condition: SpendCondition?) async throws -> SpendOutcome {
        if dialect.isPostgres {
            return try await spendInOneStatement(tenant: tenant, key: key, expiresAt: expiresAt, now: now, inserting: rows, if: condition)
        }
        switch condition {
        case .unchanged(let object):
            let current = try await self.rows("SELECT 1 FROM objects WHERE tenant = ? AND id = ? AND version = ?",
                                              [.text(object.tenant), .text(object.id), .int(object.version)])
            guard !current.isEmpty else { return .objectChanged }
            guard try await consumeOnce(tenant: tenant, key: key, expiresAt: expiresAt, now: now) else { return .alreadySpent }
        case .live(let recordTenant, let kind, let id):
            // The record's check is part of the key's insert (no statement more); which of the two refused is asked only
            // when one did.
            _ = try await self.rows("DELETE FROM single_use WHERE tenant = ? AND expires_at < ?", [.text(tenant), .text(now)])
            let taken = try await self.rows(
                """
                INSERT INTO single_use (tenant, key, expires_at) SELECT ?, ?, ?
                WHERE EXISTS (SELECT 1 FROM credential_records WHERE tenant = ? AND id = ? AND kind = ? AND expires_at > ?)
                ON CONFLICT DO NOTHING RETURNING key
                """,
                [.text(tenant), .text(key), .text(expiresAt), .text(recordTenant), .text(id), .text(kind.rawValue), .text(now)])
            if taken.isEmpty {
                let held = try await self.rows("SELECT 1 FROM single_use WHERE tenant = ? AND key = ?", [.text(tenant), .text(key)])
                return held.isEmpty ? .objectChanged : .alreadySpent
            }
        case nil:
            guard try await consumeOnce(tenant: tenant, key: key, expiresAt: expiresAt, now: now) else { return .alreadySpent }
        }
        for row in rows { try await insertCredential(row) }
        return .spent
    }

    /// On PostgreSQL, in this order, each part reading the one before it: `ok`, one row when there is no condition, the
    /// object is still at its version or the record still lives; `swept`, the tenant's expired keys (but this one) deleted; `spent`, this key
    /// inserted, or an expired holder of it taken over, only with `ok` (of two spenders, the second waits for the first's
    /// row and then finds it unexpired: no row); `made`, the records inserted only with `spent`, without `ON CONFLICT`, so
    /// an id or handle already taken fails the whole statement and nothing, the key included, is saved. The answer says
    /// which held.
    private func spendInOneStatement(tenant: String, key: String, expiresAt: String, now: String, inserting rows: [CredentialRow],
                                     if condition: SpendCondition?) async throws -> SpendOutcome {
        var sql = "WITH "
        var binds: [SQLValue] = []
        switch condition {
        case .unchanged(let object):
            sql += "ok AS (SELECT 1 FROM objects WHERE tenant = ? AND id = ? AND version = ?),\n"
            binds += [.text(object.tenant), .text(object.id), .int(object.version)]
        case .live(let recordTenant, let kind, let id):
            sql += "ok AS (SELECT 1 FROM credential_records WHERE tenant = ? AND id = ? AND kind = ? AND expires_at > ?),\n"
            binds += [.text(recordTenant), .text(id), .text(kind.rawValue), .text(now)]
        case nil:
            sql += "ok AS (SELECT 1),\n"
        }
        sql += """
            swept AS (DELETE FROM single_use WHERE tenant = ? AND expires_at < ? AND key <> ? AND EXISTS (SELECT 1 FROM ok)),
            spent AS (INSERT INTO single_use (tenant, key, expires_at) SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM ok)
              ON CONFLICT (tenant, key) DO UPDATE SET expires_at = excluded.expires_at WHERE single_use.expires_at < ? RETURNING 1)
            """
        binds += [.text(tenant), .text(now), .text(key), .text(tenant), .text(key), .text(expiresAt), .text(now)]
        if !rows.isEmpty {
            let row = "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM spent)"
            sql += """
                ,
                made AS (INSERT INTO credential_records (tenant, id, kind, user_id, family, handle, state, expires_at, payload)
                  \(Array(repeating: row, count: rows.count).joined(separator: " UNION ALL ")) RETURNING 1)
                """
            for row in rows {
                binds += [.text(row.tenant), .text(row.id), .text(row.kind.rawValue), Self.optional(row.userID), Self.optional(row.family),
                          Self.optional(row.handle), .text(row.state), .text(row.expiresAt), .text(row.payload)]
            }
        }
        sql += "\nSELECT (SELECT count(*) FROM ok), (SELECT count(*) FROM spent)"
        if !rows.isEmpty { sql += ", (SELECT count(*) FROM made)" }
        var live = false
        if case .live = condition {
            // Whether the key was held before this statement (the main query sees the snapshot the statement began with),
            // asked only when the record is gone: a code presented again after its session ended is still a replay.
            live = true
            sql += ", (SELECT count(*) FROM single_use WHERE tenant = ? AND key = ? AND expires_at >= ? AND NOT EXISTS (SELECT 1 FROM ok))"
            binds += [.text(tenant), .text(key), .text(now)]
        }
        let answer: [[SQLValue]]
        do {
            answer = try await session.executeLast(sql, binds)
        } catch let error as PSQLError where error.code == .server && error.serverInfo?[.sqlState] == "23505" {
            // unique_violation: only the records can conflict (the key has its ON CONFLICT). Nothing was saved.
            throw DirectoryError.duplicate(error.serverInfo?[.constraintName] == "credential_records_by_handle" ? "handle" : "id")
        }
        guard let counts = answer.first, counts.count >= 2 else {
            throw StoreError(message: "A single-use key's spend returned no answer.")
        }
        if counts[0].int != 1 { return live && counts.last?.int == 1 ? .alreadySpent : .objectChanged }
        if counts[1].int != 1 { return .alreadySpent }
        return .spent
    }
}
