import TesseraCore

/// `DirectoryTransaction` over one SQL session.
struct SQLTransaction: DirectoryTransaction {
    let session: any SQLSession
    let dialect: SQLDialect

    func rows(_ sql: String, _ binds: [SQLValue] = []) async throws -> [[SQLValue]] {
        try await session.execute(sql, binds)
    }

    // MARK: Tenants

    func tenant(_ idOrDomain: String) async throws -> TenantRecord? {
        let found = try await rows("SELECT id, domain, name, created_at, change_seq FROM tenants WHERE id = ? OR domain = ?",
                                   [.text(idOrDomain.lowercased()), .text(idOrDomain.lowercased())])
        return found.first.map(Self.tenantRecord)
    }

    func tenants() async throws -> [TenantRecord] {
        try await rows("SELECT id, domain, name, created_at, change_seq FROM tenants ORDER BY created_at, id").map(Self.tenantRecord)
    }

    func insertTenant(_ tenant: TenantRecord) async throws {
        let existing = try await rows("SELECT id FROM tenants WHERE id = ? OR domain = ?", [.text(tenant.id), .text(tenant.domain.lowercased())])
        guard existing.isEmpty else { throw DirectoryError.badRequest("A tenant with the domain '\(tenant.domain)' already exists.") }
        _ = try await rows("INSERT INTO tenants (id, domain, name, created_at) VALUES (?, ?, ?, ?)",
                           [.text(tenant.id), .text(tenant.domain.lowercased()), .text(tenant.name), .text(tenant.createdAt)])
    }

    static func tenantRecord(_ row: [SQLValue]) -> TenantRecord {
        TenantRecord(id: row[0].text ?? "", domain: row[1].text ?? "", name: row[2].text ?? "", createdAt: row[3].text ?? "",
                     changeSequence: row[4].int ?? 0)
    }

    // MARK: Objects

    var objectColumns: String { "id, kind, \(dialect.bodyText), version, deleted_at" }

    func object(tenant: String, id: String) async throws -> StoredObject? {
        try await rows("SELECT \(objectColumns) FROM objects WHERE tenant = ? AND id = ?", [.text(tenant), .text(id.lowercased())])
            .first.map { try Self.decode($0, tenant: tenant) }
    }

    func objects(tenant: String, ids: [String]) async throws -> [StoredObject] {
        guard !ids.isEmpty else { return [] }
        var found: [String: StoredObject] = [:]
        for chunk in stride(from: 0, to: ids.count, by: 500).map({ Array(ids[$0..<min($0 + 500, ids.count)]) }) {
            let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
            for row in try await rows("SELECT \(objectColumns) FROM objects WHERE tenant = ? AND id IN (\(marks))",
                                      [.text(tenant)] + chunk.map { .text($0) }) {
                let object = try Self.decode(row, tenant: tenant)
                found[object.id] = object
            }
        }
        return ids.compactMap { found[$0] }
    }

    /// The digest of the body as stored, kept beside it (snapshots read it instead of hashing every body): the SHA-256
    /// of the text SQLite keeps, computed here; PostgreSQL's is of its own JSONB text (what `body::text` reads back),
    /// so it computes it from the bind. Returns the SQL (after the body's bind) and its bind.
    func bodyDigest(_ text: String) -> (sql: String, bind: SQLValue) {
        dialect.isPostgres
            ? ("encode(sha256(convert_to(CAST(? AS JSONB)::text, 'UTF8')), 'hex')", .text(text))
            : ("?", .text(Secrets.fingerprint(text)))
    }

    func insert(_ object: StoredObject) async throws {
        let text = JSONValue.object(object.body).serialized
        let digest = bodyDigest(text)
        let inserted = try await rows(
            """
            INSERT INTO objects (tenant, id, kind, body, digest, version, deleted_at) VALUES (?, ?, ?, \(dialect.jsonBind), \(digest.sql), ?, ?)
            ON CONFLICT (tenant, id) DO NOTHING RETURNING id
            """,
            [.text(object.tenant), .text(object.id), .text(object.kind.rawValue), .text(text), digest.bind,
             .int(object.version), object.deletedAt.map { .text($0) } ?? .null])
        guard !inserted.isEmpty else { throw DirectoryError.badRequest("An object with the id '\(object.id)' already exists.") }
    }

    func update(_ object: StoredObject, expectedVersion: Int64) async throws {
        let text = JSONValue.object(object.body).serialized
        let digest = bodyDigest(text)
        let updated = try await rows(
            "UPDATE objects SET body = \(dialect.jsonBind), digest = \(digest.sql), version = ?, deleted_at = ? WHERE tenant = ? AND id = ? AND version = ? RETURNING id",
            [.text(text), digest.bind, .int(object.version), object.deletedAt.map { .text($0) } ?? .null,
             .text(object.tenant), .text(object.id), .int(expectedVersion)])
        guard !updated.isEmpty else {
            throw DirectoryError(.conflict, "The object was changed by another request; read it again and retry.")
        }
    }

    func purge(tenant: String, id: String) async throws {
        if dialect.isPostgres {
            // The object, its links both ways and its keys in one statement (one round trip).
            _ = try await rows(
                """
                WITH gone_links AS (DELETE FROM links WHERE tenant = ? AND (source = ? OR target = ?)),
                     gone_keys AS (DELETE FROM unique_keys WHERE tenant = ? AND object = ?)
                DELETE FROM objects WHERE tenant = ? AND id = ?
                """, [.text(tenant), .text(id), .text(id), .text(tenant), .text(id), .text(tenant), .text(id)])
            return
        }
        _ = try await rows("DELETE FROM objects WHERE tenant = ? AND id = ?", [.text(tenant), .text(id)])
        _ = try await rows("DELETE FROM links WHERE tenant = ? AND (source = ? OR target = ?)", [.text(tenant), .text(id), .text(id)])
        _ = try await rows("DELETE FROM unique_keys WHERE tenant = ? AND object = ?", [.text(tenant), .text(id)])
    }

    static func decode(_ row: [SQLValue], tenant: String) throws -> StoredObject {
        guard case .text(let id) = row[0], case .text(let kind) = row[1], case .text(let body) = row[2],
              case .object(let fields) = try JSONParser.parse(body)
        else { throw StoreError(message: "A stored object could not be decoded.") }
        return StoredObject(tenant: tenant, id: id, kind: ObjectKind(rawValue: kind), body: fields,
                            version: row[3].int ?? 1, deletedAt: row[4].text)
    }

    // MARK: Unique keys

    func claim(tenant: String, object: String, keys: [UniqueKey]) async throws {
        // The primary key is the rule: of two writers, the database lets exactly one insert. Every key goes in one
        // statement (one round trip on PostgreSQL), in one order for every writer, so two writers claiming the same keys
        // wait for each other instead of each holding one the other needs.
        let claimed = Self.distinct(keys)
        guard !claimed.isEmpty else { return }
        var inserted: Set<KeyName> = []
        // SQLite: `OR IGNORE`, the same as `DO NOTHING` on the primary key (the table's only unique constraint; no value is
        // NULL), and a statement that can no longer abort half-way, so SQLite opens no statement journal for it: a
        // journal copies every page the statement changes, and a batch's 500 keys land on pages all over the index
        // (100,000 keys in 500-row statements: 1.73 s of CPU with `ON CONFLICT DO NOTHING`, 1.46 s with `OR IGNORE`).
        let insert = dialect.isPostgres ? "INSERT INTO" : "INSERT OR IGNORE INTO"
        let onConflict = dialect.isPostgres ? " ON CONFLICT (tenant, name, value) DO NOTHING" : ""
        for chunk in Self.chunks(claimed.sorted { ($0.name, $0.value) < ($1.name, $1.value) }) {
            for row in try await rows(
                "\(insert) unique_keys (tenant, name, value, object) VALUES \(Self.tuples(4, chunk.count))\(onConflict) RETURNING name, value",
                chunk.flatMap { [.text(tenant), .text($0.name), .text($0.value), .text(object)] }) {
                inserted.insert(KeyName(name: row[0].text ?? "", value: row[1].text ?? ""))
            }
        }
        // A key that was not inserted is held already: by this object (a claim made again) or by another, the first
        // of which, in the caller's order, is the error.
        let held = claimed.filter { !inserted.contains(KeyName($0)) }
        guard !held.isEmpty else { return }
        let holders = try await holders(tenant: tenant, keys: held)
        if let taken = held.first(where: { holders[KeyName($0)] != object }) { throw taken.conflictError }
    }

    func release(tenant: String, object: String, keys: [UniqueKey]) async throws {
        for chunk in Self.chunks(Self.distinct(keys)) {
            _ = try await rows("DELETE FROM unique_keys WHERE tenant = ? AND object = ? AND (\(Self.keyMatch(chunk.count)))",
                               [.text(tenant), .text(object)] + chunk.flatMap { [.text($0.name), .text($0.value)] })
        }
    }

    /// Who holds each of `keys` (one statement for as many as 500).
    func holders(tenant: String, keys: [UniqueKey]) async throws -> [KeyName: String] {
        var found: [KeyName: String] = [:]
        for chunk in Self.chunks(keys) {
            for row in try await rows(Self.holdersQuery(chunk.count), chunk.flatMap { [.text(tenant), .text($0.name), .text($0.value)] }) {
                found[KeyName(name: row[0].text ?? "", value: row[1].text ?? "")] = row[2].text
            }
        }
        return found
    }

    func holders(tenant: String, of keys: [UniqueKey]) async throws -> [UniqueKey: String] {
        let distinct = Self.distinct(keys)
        let found = try await holders(tenant: tenant, keys: distinct)
        var out: [UniqueKey: String] = [:]
        for key in distinct { out[key] = found[KeyName(key)] }
        return out
    }

    /// The holders of `count` keys: the tenant in every term, so each is a lookup of the primary key (with
    /// `tenant = ? AND (… OR …)` SQLite, without statistics, walked every key of the tenant instead).
    static func holdersQuery(_ count: Int) -> String {
        "SELECT name, value, object FROM unique_keys WHERE "
            + Array(repeating: "(tenant = ? AND name = ? AND value = ?)", count: count).joined(separator: " OR ")
    }

    /// A unique key's name and value as stored (`UniqueKey`'s initialiser normalises; these are already normal).
    struct KeyName: Hashable {
        let name, value: String
        init(name: String, value: String) { (self.name, self.value) = (name, value) }
        init(_ key: UniqueKey) { (name, value) = (key.name, key.value) }
    }

    static func distinct(_ keys: [UniqueKey]) -> [UniqueKey] {
        var seen: Set<UniqueKey> = []
        return keys.filter { seen.insert($0).inserted }
    }

    /// At most 500 at a time: four binds each stay far below both databases' limits on binds per statement.
    static func chunks<T>(_ items: [T]) -> [ArraySlice<T>] {
        stride(from: 0, to: items.count, by: 500).map { items[$0..<min($0 + 500, items.count)] }
    }

    /// `(?, ?, …), (?, ?, …)…`: `count` rows of `width` placeholders.
    static func tuples(_ width: Int, _ count: Int) -> String {
        let row = "(" + Array(repeating: "?", count: width).joined(separator: ", ") + ")"
        return Array(repeating: row, count: count).joined(separator: ", ")
    }

    /// `(name = ? AND value = ?) OR …`, `count` times.
    static func keyMatch(_ count: Int) -> String {
        Array(repeating: "(name = ? AND value = ?)", count: count).joined(separator: " OR ")
    }

    func holder(tenant: String, key: UniqueKey) async throws -> String? {
        try await rows("SELECT object FROM unique_keys WHERE tenant = ? AND name = ? AND value = ?",
                       [.text(tenant), .text(key.name), .text(key.value)]).first?.first?.text
    }

    func object(tenant: String, holding key: UniqueKey) async throws -> StoredObject? {
        try await rows("SELECT \(objectColumns) FROM objects WHERE tenant = ? AND id = "
                       + "(SELECT object FROM unique_keys WHERE tenant = ? AND name = ? AND value = ?)",
                       [.text(tenant), .text(tenant), .text(key.name), .text(key.value)])
            .first.map { try Self.decode($0, tenant: tenant) }
    }

    // MARK: Links

    func link(tenant: String, source: String, relation: String, target: String) async throws -> Bool {
        !(try await rows(
            "INSERT INTO links (tenant, source, relation, target) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING target",
            [.text(tenant), .text(source), .text(relation), .text(target)])).isEmpty
    }

    func unlink(tenant: String, source: String, relation: String, target: String) async throws -> Bool {
        !(try await rows("DELETE FROM links WHERE tenant = ? AND source = ? AND relation = ? AND target = ? RETURNING target",
                         [.text(tenant), .text(source), .text(relation), .text(target)])).isEmpty
    }

    func targets(tenant: String, source: String, relation: String) async throws -> [String] {
        try await rows("SELECT target FROM links WHERE tenant = ? AND source = ? AND relation = ? ORDER BY target",
                       [.text(tenant), .text(source), .text(relation)]).compactMap { $0.first?.text }
    }

    func sources(tenant: String, target: String, relation: String) async throws -> [String] {
        try await rows("SELECT source FROM links WHERE tenant = ? AND target = ? AND relation = ? ORDER BY source",
                       [.text(tenant), .text(target), .text(relation)]).compactMap { $0.first?.text }
    }

    // MARK: Change log

    func record(_ change: ChangeRecord) async throws -> Int64 {
        let values: [SQLValue] = [.text(change.objectId), .text(change.kind.rawValue), .text(change.operation), .text(change.activity),
                                  .text(change.actor.serialized), .text(change.at), .text(change.details.serialized)]
        if dialect.isPostgres {
            // The tenant's next sequence number and the change that takes it in one statement: one round trip, and the
            // tenant's row (which orders its writers) is held from here to the commit only.
            guard let seq = try await rows(
                """
                WITH next AS (UPDATE tenants SET change_seq = change_seq + 1 WHERE id = ? RETURNING id, change_seq)
                INSERT INTO changes (tenant, seq, object, kind, operation, activity, actor, at, details)
                SELECT id, change_seq, ?, ?, ?, ?, ?, ?, ? FROM next RETURNING seq
                """, [.text(change.tenant)] + values).first?.first?.int
            else { throw DirectoryError.notFound(change.tenant) }
            return seq
        }
        guard let seq = try await rows("UPDATE tenants SET change_seq = change_seq + 1 WHERE id = ? RETURNING change_seq",
                                       [.text(change.tenant)]).first?.first?.int
        else { throw DirectoryError.notFound(change.tenant) }
        _ = try await rows(
            "INSERT INTO changes (tenant, seq, object, kind, operation, activity, actor, at, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [.text(change.tenant), .int(seq)] + values)
        return seq
    }

    /// A batch's records: for each tenant's run of them, its sequence advanced once and the rows inserted 50 to a statement.
    func record(_ changes: [ChangeRecord]) async throws {
        guard changes.count > 1 else {
            for change in changes { _ = try await record(change) }
            return
        }
        var start = changes.startIndex
        while start < changes.endIndex {
            let tenant = changes[start].tenant
            let end = changes[start...].firstIndex { $0.tenant != tenant } ?? changes.endIndex
            guard let last = try await rows("UPDATE tenants SET change_seq = change_seq + ? WHERE id = ? RETURNING change_seq",
                                            [.int(Int64(end - start)), .text(tenant)]).first?.first?.int
            else { throw DirectoryError.notFound(tenant) }
            var seq = last - Int64(end - start)
            for chunk in stride(from: start, to: end, by: 50) {
                let part = changes[chunk..<min(chunk + 50, end)]
                var binds: [SQLValue] = []
                binds.reserveCapacity(part.count * 9)
                for change in part {
                    seq += 1
                    binds += [.text(tenant), .int(seq), .text(change.objectId), .text(change.kind.rawValue), .text(change.operation), .text(change.activity),
                              .text(change.actor.serialized), .text(change.at), .text(change.details.serialized)]
                }
                _ = try await rows("INSERT INTO changes (tenant, seq, object, kind, operation, activity, actor, at, details) VALUES \(Self.tuples(9, part.count))",
                                   binds)
            }
            start = end
        }
    }

    func changes(tenant: String, kinds: [ObjectKind]?, after seq: Int64, limit: Int) async throws -> [ChangeRecord] {
        var sql = "SELECT seq, object, kind, operation, activity, actor, at, details FROM changes WHERE tenant = ? AND seq > ?"
        var binds: [SQLValue] = [.text(tenant), .int(seq)]
        if let kinds {
            sql += " AND kind IN (\(Array(repeating: "?", count: kinds.count).joined(separator: ",")))"
            binds += kinds.map { .text($0.rawValue) }
        }
        sql += " ORDER BY seq LIMIT ?"
        binds.append(.int(Int64(limit)))
        return try await rows(sql, binds).map { row in
            ChangeRecord(seq: row[0].int ?? 0, tenant: tenant, objectId: row[1].text ?? "", kind: ObjectKind(rawValue: row[2].text ?? ""),
                         operation: row[3].text ?? "", activity: row[4].text ?? "",
                         actor: (try? JSONParser.parse(row[5].text ?? "null")) ?? .null, at: row[6].text ?? "",
                         details: (try? JSONParser.parse(row[7].text ?? "null")) ?? .null)
        }
    }

    func latestSequence(tenant: String) async throws -> Int64 {
        try await rows("SELECT change_seq FROM tenants WHERE id = ?", [.text(tenant)]).first?.first?.int ?? 0
    }

    // MARK: Queries

    func query(_ query: ObjectQuery) async throws -> [StoredObject] {
        var columns = objectColumns
        if let projection = query.projection {
            try QueryTranslator.checkPath(projection)
            columns = "id, kind, \(dialect.projectedBody(projection)), version, deleted_at"
        }
        let translated = try QueryTranslator(dialect: dialect).select(query, columns: columns)
        return try await rows(translated.sql, translated.binds).map { try Self.decode($0, tenant: query.tenant) }
    }

    func count(_ query: ObjectQuery) async throws -> Int {
        let translated = try QueryTranslator(dialect: dialect).count(query)
        return Int(try await rows(translated.sql, translated.binds).first?.first?.int ?? 0)
    }

    func consumeOnce(tenant: String, key: String, expiresAt: String, now: String) async throws -> Bool {
        if dialect.isPostgres {
            // One statement: the tenant's expired keys swept, and this one taken unless it is held and unexpired (an
            // expired holder is taken over, as the sweep would have let it be). Of two takers, the second waits for the
            // first's row and then finds it unexpired.
            return !(try await rows(
                """
                WITH swept AS (DELETE FROM single_use WHERE tenant = ? AND expires_at < ? AND key <> ?)
                INSERT INTO single_use (tenant, key, expires_at) VALUES (?, ?, ?)
                ON CONFLICT (tenant, key) DO UPDATE SET expires_at = excluded.expires_at WHERE single_use.expires_at < ?
                RETURNING key
                """,
                [.text(tenant), .text(now), .text(key), .text(tenant), .text(key), .text(expiresAt), .text(now)])).isEmpty
        }
        _ = try await rows("DELETE FROM single_use WHERE tenant = ? AND expires_at < ?", [.text(tenant), .text(now)])
        return !(try await rows(
            "INSERT INTO single_use (tenant, key, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING RETURNING key",
            [.text(tenant), .text(key), .text(expiresAt)])).isEmpty
    }

    func release(tenant: String, key: String) async throws {
        _ = try await rows("DELETE FROM single_use WHERE tenant = ? AND key = ?", [.text(tenant), .text(key)])
    }

    // MARK: Settings

    func setting(tenant: String, key: String) async throws -> JSONValue? {
        guard let text = try await rows("SELECT value FROM settings WHERE tenant = ? AND key = ?", [.text(tenant), .text(key)])
            .first?.first?.text
        else { return nil }
        return try JSONParser.parse(text)
    }

    func settings(key: String) async throws -> [(tenant: String, value: JSONValue)] {
        try await rows("SELECT tenant, value FROM settings WHERE key = ? ORDER BY tenant", [.text(key)]).compactMap { row in
            guard let tenant = row[0].text, let text = row[1].text else { return nil }
            return (tenant, try JSONParser.parse(text))
        }
    }

    func putSetting(tenant: String, key: String, value: JSONValue) async throws {
        _ = try await rows(
            "INSERT INTO settings (tenant, key, value) VALUES (?, ?, ?) ON CONFLICT (tenant, key) DO UPDATE SET value = excluded.value",
            [.text(tenant), .text(key), .text(value.serialized)])
    }

    func lockedSetting(tenant: String, key: String) async throws -> JSONValue? {
        // SQLite: the transaction holds the one write lock already (BEGIN IMMEDIATE).
        guard dialect.isPostgres else { return try await setting(tenant: tenant, key: key) }
        guard let text = try await rows("SELECT value FROM settings WHERE tenant = ? AND key = ? FOR UPDATE", [.text(tenant), .text(key)])
            .first?.first?.text
        else { return nil }
        return try JSONParser.parse(text)
    }

    func settingOrPut(tenant: String, key: String, value: JSONValue) async throws -> JSONValue {
        let inserted = try await rows("INSERT INTO settings (tenant, key, value) VALUES (?, ?, ?) ON CONFLICT (tenant, key) DO NOTHING RETURNING key",
                                      [.text(tenant), .text(key), .text(value.serialized)])
        if !inserted.isEmpty { return value }
        // Read committed: this statement sees the row the conflicting transaction committed.
        guard let stored = try await setting(tenant: tenant, key: key) else {
            throw StoreError(message: "The setting \(key) of \(tenant) conflicted on insert but cannot be read.")
        }
        return stored
    }
}

