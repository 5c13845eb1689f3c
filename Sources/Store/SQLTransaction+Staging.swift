import TesseraCore

/// The sync staging area (`StagingReader`, `StagingWriter`): the table `staged_objects` (migration 10), one row per
/// staged object with its join, distinguished name, state and conflict mark as columns (indexed where a delta looks
/// them up) and the rest as JSON. A staged object costs its row and three index entries, where as a Graph-table object
/// it cost the row, fourteen index entries and two link rows of its own indexes.
extension SQLTransaction {
    static let stagedColumns = "id, connector, dn, cloud_id, state, conflict, details"

    func stagedObjects(tenant: String, ids: [String]) async throws -> [StagedObject] {
        var found: [String: StagedObject] = [:]
        for chunk in Self.chunks(ids) {
            for row in try await rows("SELECT \(Self.stagedColumns) FROM staged_objects WHERE tenant = ? AND id IN (\(Self.marks(chunk.count)))",
                                      [.text(tenant)] + chunk.map { .text($0) }) {
                let object = try Self.staged(row, tenant: tenant)
                found[object.id] = object
            }
        }
        return ids.compactMap { found[$0] }
    }

    func stagedObjects(tenant: String, connector: String?, states: [String]?, afterId: String?, limit: Int?) async throws -> [StagedObject] {
        var sql = "SELECT \(Self.stagedColumns) FROM staged_objects WHERE tenant = ?"
        var binds: [SQLValue] = [.text(tenant)]
        if let connector {
            sql += " AND connector = ?"
            binds.append(.text(connector))
        }
        if let states {
            guard !states.isEmpty else { return [] }
            sql += " AND state IN (\(Self.marks(states.count)))"
            binds += states.map { .text($0) }
        }
        if let afterId {
            sql += " AND id > ?"
            binds.append(.text(afterId))
        }
        sql += " ORDER BY id"
        // The limit written into the statement: a bound one that changes makes SQLite prepare the statement again.
        if let limit { sql += " LIMIT \(limit)" }
        return try await rows(sql, binds).map { try Self.staged($0, tenant: tenant) }
    }

    func stagedRunIDs(tenant: String, connector: String, afterId: String?, limit: Int) async throws -> [(id: String, runId: String?)] {
        // The run id read by the database from the stored JSON: nothing else of a row is decoded.
        let runID = dialect.text(["runId"], column: dialect.isPostgres ? "details::jsonb" : "details")
        var sql = "SELECT id, \(runID) FROM staged_objects WHERE tenant = ? AND connector = ?"
        var binds: [SQLValue] = [.text(tenant), .text(connector)]
        if let afterId {
            sql += " AND id > ?"
            binds.append(.text(afterId))
        }
        return try await rows(sql + " ORDER BY id LIMIT \(limit)", binds).map { row in
            guard case .text(let id) = row[0] else { throw StoreError(message: "A staged sync object could not be decoded.") }
            return (id, row[1].text)
        }
    }

    func stagedObjects(tenant: String, joinedTo cloudIDs: [String]) async throws -> [StagedObject] {
        var out: [StagedObject] = []
        for chunk in Self.chunks(cloudIDs) {
            out += try await rows("SELECT \(Self.stagedColumns) FROM staged_objects WHERE tenant = ? AND cloud_id IN (\(Self.marks(chunk.count))) ORDER BY id",
                                  [.text(tenant)] + chunk.map { .text($0) }).map { try Self.staged($0, tenant: tenant) }
        }
        return out
    }

    func stagedObjects(tenant: String, connector: String, dns: [String]) async throws -> [StagedObject] {
        var out: [StagedObject] = []
        for chunk in Self.chunks(Array(Set(dns.map(StagedObject.foldedDN)))) {
            out += try await rows(
                "SELECT \(Self.stagedColumns) FROM staged_objects WHERE tenant = ? AND connector = ? AND dn_folded IN (\(Self.marks(chunk.count))) ORDER BY id",
                [.text(tenant), .text(connector)] + chunk.map { .text($0) }).map { try Self.staged($0, tenant: tenant) }
        }
        return out
    }

    func conflictedStagedObjects(tenant: String) async throws -> [StagedObject] {
        try await rows("SELECT \(Self.stagedColumns) FROM staged_objects WHERE tenant = ? AND conflict = 1 ORDER BY id", [.text(tenant)])
            .map { try Self.staged($0, tenant: tenant) }
    }

    func joinedStagedCount(tenant: String, connector: String) async throws -> Int {
        Int(try await rows("SELECT count(*) FROM staged_objects WHERE tenant = ? AND connector = ? AND cloud_id IS NOT NULL",
                           [.text(tenant), .text(connector)]).first?.first?.int ?? 0)
    }

    func putStaged(_ objects: [StagedObject]) async throws {
        // One row per object (the last write of one wins: an upsert may not touch a row twice in a statement).
        var latest: [StagedObject] = [], at: [Key: Int] = [:]
        for object in objects {
            let key = Key(tenant: object.tenant, id: object.id)
            if let index = at[key] { latest[index] = object } else {
                at[key] = latest.count
                latest.append(object)
            }
        }
        // 9 binds a row: 100 rows stay far below both databases' limits on binds per statement.
        for start in stride(from: 0, to: latest.count, by: 100) {
            let chunk = latest[start..<min(start + 100, latest.count)]
            _ = try await rows(
                """
                INSERT INTO staged_objects (tenant, id, connector, dn, dn_folded, cloud_id, state, conflict, details) VALUES \(Self.tuples(9, chunk.count))
                ON CONFLICT (tenant, id) DO UPDATE SET connector = excluded.connector, dn = excluded.dn, dn_folded = excluded.dn_folded,
                  cloud_id = excluded.cloud_id, state = excluded.state, conflict = excluded.conflict, details = excluded.details
                """,
                chunk.flatMap(Self.stagedRow))
        }
    }

    func removeStaged(tenant: String, ids: [String]) async throws {
        for chunk in Self.chunks(ids) {
            _ = try await rows("DELETE FROM staged_objects WHERE tenant = ? AND id IN (\(Self.marks(chunk.count)))", [.text(tenant)] + chunk.map { .text($0) })
        }
    }

    private struct Key: Hashable {
        var tenant, id: String
    }

    static func marks(_ count: Int) -> String { Array(repeating: "?", count: count).joined(separator: ",") }

    /// The binds of `putStaged`'s columns for one object.
    static func stagedRow(_ object: StagedObject) -> [SQLValue] {
        [.text(object.tenant), .text(object.id), .text(object.connector), .text(object.dn), .text(StagedObject.foldedDN(object.dn)),
         object.cloudID.map { .text($0) } ?? .null, .text(object.state), .int(object.conflict ? 1 : 0), .text(JSONValue.object(object.details).serialized)]
    }

    static func staged(_ row: [SQLValue], tenant: String) throws -> StagedObject {
        guard case .text(let id) = row[0], case .text(let details) = row[6], case .object(let fields) = try JSONParser.parse(details)
        else { throw StoreError(message: "A staged sync object could not be decoded.") }
        return StagedObject(tenant: tenant, id: id, connector: row[1].text ?? "", dn: row[2].text ?? "", cloudID: row[3].text,
                            state: row[4].text ?? "pending", conflict: row[5].int == 1, details: fields)
    }
}

extension Migrations {
    /// The staging area's table and indexes: by connector (a full run's pages), by joined cloud object (the join map), by
    /// folded distinguished name (a group's members) and, partial, the few with a conflict waiting for release.
    static let stagingTable = [
        """
        CREATE TABLE IF NOT EXISTS staged_objects (
          tenant TEXT NOT NULL, id TEXT NOT NULL, connector TEXT NOT NULL, dn TEXT NOT NULL, dn_folded TEXT NOT NULL, cloud_id TEXT,
          state TEXT NOT NULL, conflict BIGINT NOT NULL, details TEXT NOT NULL, PRIMARY KEY (tenant, id))
        """,
        "CREATE INDEX IF NOT EXISTS staged_by_connector ON staged_objects (tenant, connector, id)",
        "CREATE INDEX IF NOT EXISTS staged_by_cloud ON staged_objects (tenant, cloud_id)",
        "CREATE INDEX IF NOT EXISTS staged_by_dn ON staged_objects (tenant, connector, dn_folded)",
        "CREATE INDEX IF NOT EXISTS staged_conflicts ON staged_objects (tenant, id) WHERE conflict = 1",
    ]

    /// Moves staged objects kept as `syncObject` objects of the Graph table (with `syncJoin`, `syncDN` and `syncConflict`
    /// link rows as their indexes) into `staged_objects`, a page at a time in key order, then removes the old rows.
    static func moveStagedObjects(_ session: any SQLSession, dialect: SQLDialect) async throws {
        let tx = SQLTransaction(session: session, dialect: dialect)
        var after: (tenant: String, id: String)?
        while true {
            var sql = "SELECT tenant, id, \(dialect.bodyText) FROM objects WHERE kind = 'syncObject'"
            var binds: [SQLValue] = []
            if let after {
                sql += " AND (tenant > ? OR (tenant = ? AND id > ?))"
                binds = [.text(after.tenant), .text(after.tenant), .text(after.id)]
            }
            let page = try await session.execute(sql + " ORDER BY tenant, id LIMIT 1000", binds)
            var staged: [StagedObject] = []
            for row in page {
                guard case .text(let tenant) = row[0], case .text(let id) = row[1], case .text(let text) = row[2],
                      case .object(var body) = try JSONParser.parse(text)
                else { throw StoreError(message: "A staged sync object could not be decoded.") }
                let connector = body.removeValue(forKey: "connector")?.stringValue ?? "", dn = body.removeValue(forKey: "dn")?.stringValue ?? ""
                let cloud = body.removeValue(forKey: "cloudId")?.stringValue, state = body.removeValue(forKey: "state")?.stringValue ?? "pending"
                let conflict = body.removeValue(forKey: "conflict") == .bool(true)
                staged.append(StagedObject(tenant: tenant, id: id, connector: connector, dn: dn, cloudID: cloud, state: state, conflict: conflict,
                                           details: body))
            }
            try await tx.putStaged(staged)
            guard page.count == 1000, let last = staged.last else { break }
            after = (last.tenant, last.id)
        }
        _ = try await session.execute("DELETE FROM objects WHERE kind = 'syncObject'", [])
        _ = try await session.execute("DELETE FROM links WHERE relation IN ('syncJoin', 'syncDN', 'syncConflict')", [])
    }
}
