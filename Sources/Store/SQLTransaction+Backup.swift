import TesseraCore

// MARK: Backups
//
// Blobs are kept in packs: one row holds up to `packBlobs` blobs (or about `packBytes` of text) side by side, with
// an index of "digest offset length" lines (offsets in UTF-8 bytes). A snapshot's entries and links are one
// manifest row of tab-separated lines. A 100,000-user snapshot is then a few dozen rows rather than 300,000, which
// is what makes it fast on PostgreSQL (whose per-row insert cost, measured server-side, was more than the whole
// 5 s budget) and lets PostgreSQL compress the packs (58 MB of JSON took 8.4 MB).

extension SQLTransaction {
    static let packBlobs = 2000
    static let packBytes = 4 << 20

    /// Multi-row inserts, a few hundred rows a statement.
    func insertRows(_ prefix: String, columns: Int, rows values: [[SQLValue]], suffix: String = "") async throws {
        let row = "(" + Array(repeating: "?", count: columns).joined(separator: ",") + ")"
        for start in stride(from: 0, to: values.count, by: 200) {
            let chunk = values[start..<min(start + 200, values.count)]
            _ = try await rows(prefix + " VALUES " + Array(repeating: row, count: chunk.count).joined(separator: ",") + suffix,
                               chunk.flatMap { $0 })
        }
    }

    func rawObjects(tenant: String, kinds: [ObjectKind], afterId: String?, limit: Int) async throws -> [RawObject] {
        var sql = "SELECT id, kind, \(dialect.bodyText), deleted_at FROM objects WHERE tenant = ? AND kind IN (\(Array(repeating: "?", count: kinds.count).joined(separator: ",")))"
        var binds: [SQLValue] = [.text(tenant)] + kinds.map { .text($0.rawValue) }
        if let afterId {
            sql += " AND id > ?"
            binds.append(.text(afterId))
        }
        sql += " ORDER BY id LIMIT ?"
        binds.append(.int(Int64(limit)))
        return try await rows(sql, binds).map { row in
            RawObject(id: row[0].text ?? "", kind: ObjectKind(rawValue: row[1].text ?? ""), body: row[2].text ?? "", deletedAt: row[3].text)
        }
    }

    func rawObjects(tenant: String, ids: [String]) async throws -> [RawObject] {
        var found: [RawObject] = []
        for start in stride(from: 0, to: ids.count, by: 500) {
            let chunk = ids[start..<min(start + 500, ids.count)]
            found += try await rows("SELECT id, kind, \(dialect.bodyText), deleted_at, digest FROM objects WHERE tenant = ? AND id IN (\(Array(repeating: "?", count: chunk.count).joined(separator: ",")))",
                                    [.text(tenant)] + chunk.map { .text($0) }).map { row in
                RawObject(id: row[0].text ?? "", kind: ObjectKind(rawValue: row[1].text ?? ""), body: row[2].text ?? "", deletedAt: row[3].text,
                          digest: row[4].text)
            }
        }
        return found
    }

    func objectDigests(tenant: String, kinds: [ObjectKind]) async throws -> [ObjectDigest] {
        let marks = Array(repeating: "?", count: kinds.count).joined(separator: ",")
        let binds: [SQLValue] = [.text(tenant)] + kinds.map { .text($0.rawValue) }
        guard !dialect.isPostgres else {
            return try await rows("SELECT id, kind, digest, deleted_at FROM objects WHERE tenant = ? AND kind IN (\(marks)) ORDER BY id", binds).map { row in
                ObjectDigest(id: row[0].text ?? "", kind: ObjectKind(rawValue: row[1].text ?? ""), digest: row[2].text, deletedAt: row[3].text)
            }
        }
        // SQLite: the rowids from the kind index alone, then the rows in rowid order (the IN list is walked sorted), so
        // the table is read front to back; by id it was a random page per row, 2.5 times as long at 100,000 objects.
        return try await rows("""
            SELECT id, kind, digest, deleted_at, rowid FROM objects
            WHERE rowid IN (SELECT rowid FROM objects WHERE tenant = ? AND kind IN (\(marks)))
            """, binds).map { row in
            ObjectDigest(id: row[0].text ?? "", kind: ObjectKind(rawValue: row[1].text ?? ""), digest: row[2].text, deletedAt: row[3].text,
                         position: row[4].int)
        }
    }

    func objectDigests(tenant: String, kinds: [ObjectKind], afterId: String?, limit: Int) async throws -> (rows: [ObjectDigest], next: String?) {
        // The next `limit` ids of any kind from the primary key alone (no row is read for them), then those rows: on
        // SQLite in rowid order (the IN list is walked sorted), so a batch of time-ordered ids reads one stretch of the
        // table. The kinds are picked here, so that a batch of other kinds (staged objects) does not end the scan.
        let after = afterId == nil ? "" : " AND id > ?"
        let binds: [SQLValue] = [.text(tenant)] + (afterId.map { [.text($0)] } ?? []) + [.int(Int64(limit))]
        let sql = dialect.isPostgres
            ? "SELECT id, kind, digest, deleted_at FROM objects WHERE tenant = ?\(after) ORDER BY id LIMIT ?"
            : "SELECT id, kind, digest, deleted_at FROM objects WHERE rowid IN (SELECT rowid FROM objects WHERE tenant = ?\(after) ORDER BY id LIMIT ?) ORDER BY id"
        let found = try await rows(sql, binds)
        let wanted = Set(kinds.map(\.rawValue))
        var digests: [ObjectDigest] = []
        digests.reserveCapacity(found.count)
        for row in found {
            guard let kind = row[1].text, wanted.contains(kind) else { continue }
            digests.append(ObjectDigest(id: row[0].text ?? "", kind: ObjectKind(rawValue: kind), digest: row[2].text, deletedAt: row[3].text))
        }
        return (digests, found.count == limit ? found.last?[0].text : nil)
    }

    func links(tenant: String, relations: [String], after: LinkRow?, limit: Int) async throws -> [LinkRow] {
        let relationMarks = Array(repeating: "?", count: relations.count).joined(separator: ",")
        var sql = "SELECT source, relation, target FROM links WHERE tenant = ? AND relation IN (\(relationMarks))"
        var binds: [SQLValue] = [.text(tenant)] + relations.map { .text($0) }
        if let after {
            sql += " AND (source, relation, target) > (?, ?, ?)"
            binds += [.text(after.source), .text(after.relation), .text(after.target)]
        }
        return try await rows(sql + " ORDER BY source, relation, target LIMIT ?", binds + [.int(Int64(limit))])
            .map { LinkRow(source: $0[0].text ?? "", relation: $0[1].text ?? "", target: $0[2].text ?? "") }
    }

    func objectID(tenant: String, after afterId: String?, skipping count: Int) async throws -> String? {
        // The primary key alone (an index-only scan where the table is vacuumed).
        let after = afterId == nil ? "" : " AND id > ?"
        let binds: [SQLValue] = [.text(tenant)] + (afterId.map { [.text($0)] } ?? []) + [.int(Int64(max(0, count - 1)))]
        return try await rows("SELECT id FROM objects WHERE tenant = ?\(after) ORDER BY id LIMIT 1 OFFSET ?", binds).first?.first?.text
    }

    func scanAndPack(tenant: String, kinds: [ObjectKind], after afterId: String?, through: String?) async throws -> [ObjectDigest]? {
        // SQLite reads a pack on a reader and only stores it on the writer (`readPack`, `putPack`).
        guard dialect.isPostgres else { return nil }
        guard !kinds.isEmpty else { return [] }
        // One range of the primary key, read once: the digests come back and the bodies' text (made once: MATERIALIZED)
        // goes into a pack whose index lines are `digest length`, offsets summed when read. Both aggregates take the
        // rows in the one order the aggregate reads them, so the lengths and the bodies line up without a sort.
        var range = "", binds: [SQLValue] = [.text(tenant)] + kinds.map { .text($0.rawValue) }
        if let afterId {
            range += " AND id > ?"
            binds.append(.text(afterId))
        }
        if let through {
            range += " AND id <= ?"
            binds.append(.text(through))
        }
        let sql = """
            WITH batch AS MATERIALIZED (
              SELECT id, kind, digest, deleted_at, CASE WHEN digest IS NOT NULL THEN \(dialect.bodyText) END AS text FROM objects
              WHERE tenant = ? AND kind IN (\(Array(repeating: "?", count: kinds.count).joined(separator: ",")))\(range)),
            stored AS (
              INSERT INTO backup_packs (tenant, pack, digests, body)
              SELECT ?, ?, string_agg(digest || ' ' || octet_length(text) || chr(10), ''), string_agg(text, '')
              FROM batch WHERE text IS NOT NULL HAVING COUNT(*) > 0 RETURNING 1)
            SELECT id, kind, digest, deleted_at FROM batch ORDER BY id
            """
        return try await rows(sql, binds + [.text(tenant), .text(Identifier.make())]).map { row in
            ObjectDigest(id: row[0].text ?? "", kind: ObjectKind(rawValue: row[1].text ?? ""), digest: row[2].text, deletedAt: row[3].text)
        }
    }

    func releaseMemory() async throws {
        // SQLite keeps the pages a snapshot wrote (its packs' text) in the writer's 64 MB page cache, where nothing reads
        // them again: the clean ones go (the cache refills from the file as it is used).
        guard !dialect.isPostgres else { return }
        _ = try await rows("PRAGMA shrink_memory")
    }

    /// One pack of these objects' bodies, built by the database from the rows as they are now (bodies in id order,
    /// each indexed by the digest kept beside it and its byte range), so no body is read out and written back.
    func packObjects(tenant: String, ids: [String]) async throws -> [String] {
        guard !ids.isEmpty else { return [] }
        let marks = Array(repeating: "?", count: ids.count).joined(separator: ",")
        if !dialect.isPostgres {
            // SQLite: the rows in rowid order (the caller groups ids by position, so a pack is one stretch of the
            // table), each index line only the digest and its length: offsets are the running sum of the lengths
            // before it (`packIndex`), and both aggregates take the rows in the same order, so no window and no sort.
            let index = try await rows("""
                INSERT INTO backup_packs (tenant, pack, digests, body)
                SELECT ?, ?, group_concat(digest || ' ' || octet_length(body) || char(10), ''), group_concat(body, '')
                FROM objects WHERE rowid IN (SELECT rowid FROM objects WHERE tenant = ? AND id IN (\(marks))) AND digest IS NOT NULL
                HAVING COUNT(*) > 0
                RETURNING digests
                """, [.text(tenant), .text(Identifier.make()), .text(tenant)] + ids.map { .text($0) }).first?.first?.text ?? ""
            return Self.packedDigests(index)
        }
        let newline = dialect.isPostgres ? "chr(10)" : "char(10)"
        let concat = dialect.isPostgres ? "string_agg" : "group_concat"
        // The body's text is made once (MATERIALIZED: PostgreSQL renders JSONB as text at some 25 µs an object, and
        // would otherwise do it for the length and again for the pack).
        let sql = """
            WITH bodies AS MATERIALIZED (
              SELECT id, digest, \(dialect.bodyText) AS text FROM objects WHERE tenant = ? AND digest IS NOT NULL AND id IN (\(marks)))
            INSERT INTO backup_packs (tenant, pack, digests, body)
            SELECT ?, ?, \(concat)(digest || ' ' || (running - bytes) || ' ' || bytes || \(newline), '' ORDER BY id), \(concat)(text, '' ORDER BY id)
            FROM (SELECT id, digest, text, bytes, SUM(bytes) OVER (ORDER BY id ROWS UNBOUNDED PRECEDING) AS running
                  FROM (SELECT id, digest, text, octet_length(text) AS bytes FROM bodies) AS sized) AS placed
            HAVING COUNT(*) > 0
            RETURNING digests
            """
        let index = try await rows(sql, [.text(tenant)] + ids.map { .text($0) } + [.text(tenant), .text(Identifier.make())]).first?.first?.text ?? ""
        return Self.packedDigests(index)
    }

    func readPack(tenant: String, ids: [String]) async throws -> PackText? {
        // PostgreSQL builds packs on its own cores (`packObjects`), and renders JSONB as text only once there.
        guard !dialect.isPostgres else { return nil }
        guard !ids.isEmpty else { return PackText(index: "", body: "") }
        let marks = Array(repeating: "?", count: ids.count).joined(separator: ",")
        // As `packObjects` builds it, in rowid order: both aggregates take the rows in the same order.
        let row = try await rows("""
            SELECT group_concat(digest || ' ' || octet_length(body) || char(10), ''), group_concat(body, '')
            FROM objects WHERE rowid IN (SELECT rowid FROM objects WHERE tenant = ? AND id IN (\(marks))) AND digest IS NOT NULL
            """, [.text(tenant)] + ids.map { .text($0) }).first
        return PackText(index: row?[0].text ?? "", body: row?[1].text ?? "")
    }

    func putPack(tenant: String, _ pack: PackText) async throws {
        guard !pack.index.isEmpty else { return }
        // The last pack's pages out of the cache first, so a snapshot's packs never fill it.
        try await releaseMemory()
        _ = try await rows("INSERT INTO backup_packs (tenant, pack, digests, body) VALUES (?, ?, ?, ?)",
                           [.text(tenant), .text(Identifier.make()), .text(pack.index), .text(pack.body)])
    }

    /// The digests a pack's index lines name (each line `digest offset length`, or `digest length` with the offset
    /// the sum of the lengths before it).
    static func packedDigests(_ index: String) -> [String] {
        index.utf8.split(separator: UInt8(ascii: "\n")).compactMap { line in
            line.split(separator: UInt8(ascii: " ")).first.map { String(decoding: $0, as: UTF8.self) }
        }
    }

    func allLinks(tenant: String, relations: [String], sources: [String]?) async throws -> [LinkRow] {
        let relationMarks = Array(repeating: "?", count: relations.count).joined(separator: ",")
        func read(_ chunk: ArraySlice<String>?) async throws -> [LinkRow] {
            var sql = "SELECT source, relation, target FROM links WHERE tenant = ? AND relation IN (\(relationMarks))"
            var binds: [SQLValue] = [.text(tenant)] + relations.map { .text($0) }
            if let chunk {
                sql += " AND source IN (\(Array(repeating: "?", count: chunk.count).joined(separator: ",")))"
                binds += chunk.map { .text($0) }
            }
            return try await rows(sql + " ORDER BY source, relation, target", binds)
                .map { LinkRow(source: $0[0].text ?? "", relation: $0[1].text ?? "", target: $0[2].text ?? "") }
        }
        guard let sources else { return try await read(nil) }
        var found: [LinkRow] = []
        for start in stride(from: 0, to: sources.count, by: 500) { found += try await read(sources[start..<min(start + 500, sources.count)]) }
        return found
    }

    // MARK: Packs

    func putBlobs(tenant: String, _ blobs: [(digest: String, body: String)]) async throws {
        var start = 0
        while start < blobs.count {
            var index = "", body = "", offset = 0, end = start
            while end < blobs.count, end - start < Self.packBlobs, offset < Self.packBytes {
                let blob = blobs[end]
                let length = blob.body.utf8.count
                index += "\(blob.digest) \(offset) \(length)\n"
                body += blob.body
                offset += length
                end += 1
            }
            _ = try await rows("INSERT INTO backup_packs (tenant, pack, digests, body) VALUES (?, ?, ?, ?)",
                               [.text(tenant), .text(Identifier.make()), .text(index), .text(body)])
            start = end
        }
    }

    /// Where the `wanted` blobs are: their pack, and their byte range in it. Index lines are read as bytes and a
    /// digest becomes a String only when it is wanted (at 100,000 blobs, building the whole index was a seventh
    /// of a difference report's time).
    func packIndex(tenant: String, wanted: Set<String>) async throws -> [String: (pack: String, offset: Int, length: Int)] {
        let keys = Set(wanted.compactMap { DigestKey($0) })
        var index: [String: (pack: String, offset: Int, length: Int)] = [:]
        index.reserveCapacity(wanted.count)
        for row in try await rows("SELECT pack, digests FROM backup_packs WHERE tenant = ?", [.text(tenant)]) {
            guard let pack = row[0].text, var lines = row[1].text else { continue }
            lines.withUTF8 { bytes in
                // One pass over the lines, their fields found in place (splitting each line into an array of fields was
                // most of this, and this a tenth of a report).
                var next = 0  // where a `digest length` line's blob starts: after the one before it
                var start = 0
                while start < bytes.count {
                    var end = start, spaces = (start, start), count = 0
                    while end < bytes.count, bytes[end] != 10 {
                        if bytes[end] == 32 {
                            if count == 0 { spaces.0 = end } else if count == 1 { spaces.1 = end }
                            count += 1
                        }
                        end += 1
                    }
                    defer { start = end + 1 }
                    let line = UnsafeBufferPointer(rebasing: bytes[start..<end])
                    guard !line.isEmpty, count == 1 || count == 2,
                          let length = Self.decimal(UnsafeBufferPointer(rebasing: bytes[((count == 1 ? spaces.0 : spaces.1) + 1)..<end]))
                    else { continue }
                    let offset = count == 2 ? Self.decimal(UnsafeBufferPointer(rebasing: bytes[(spaces.0 + 1)..<spaces.1])) : next
                    next += length
                    let digest = UnsafeBufferPointer(rebasing: bytes[start..<spaces.0])
                    guard let offset, let key = DigestKey(digest), keys.contains(key) else { continue }
                    index[String(decoding: digest, as: UTF8.self)] = (pack, offset, length)
                }
            }
        }
        return index
    }

    /// A non-negative decimal number written in ASCII digits.
    static func decimal(_ digits: some Collection<UInt8>) -> Int? {
        guard !digits.isEmpty, digits.count <= 18 else { return nil }
        var value = 0
        for digit in digits {
            guard digit >= 48, digit <= 57 else { return nil }
            value = value * 10 + Int(digit - 48)
        }
        return value
    }

    func blobs(tenant: String, digests: [String]) async throws -> [String: String] {
        guard !digests.isEmpty else { return [:] }
        let index = try await packIndex(tenant: tenant, wanted: Set(digests))
        var byPack: [String: [(digest: String, offset: Int, length: Int)]] = [:]
        for (digest, place) in index { byPack[place.pack, default: []].append((digest, place.offset, place.length)) }
        var found: [String: String] = [:]
        found.reserveCapacity(index.count)
        let packs = byPack.keys.sorted()
        for start in stride(from: 0, to: packs.count, by: 20) {
            let chunk = packs[start..<min(start + 20, packs.count)]
            for row in try await rows("SELECT pack, body FROM backup_packs WHERE tenant = ? AND pack IN (\(Array(repeating: "?", count: chunk.count).joined(separator: ",")))",
                                      [.text(tenant)] + chunk.map { .text($0) }) {
                guard let pack = row[0].text, var body = row[1].text else { continue }
                body.withUTF8 { bytes in
                    for wanted in byPack[pack] ?? [] where wanted.offset >= 0 && wanted.offset + wanted.length <= bytes.count {
                        found[wanted.digest] = String(decoding: UnsafeBufferPointer(rebasing: bytes[wanted.offset..<(wanted.offset + wanted.length)]), as: UTF8.self)
                    }
                }
            }
        }
        return found
    }

    // MARK: Manifests

    func insertSnapshot(_ snapshot: SnapshotRecord, entries: [SnapshotEntry], links: [SnapshotLink]) async throws {
        // Lines of tab-separated fields, written as bytes (interpolating a String per line was most of this).
        func lines<Row>(_ rows: [Row], perLine: Int, _ fields: (Row) -> [String]) -> String {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(rows.count * perLine)
            for row in rows {
                for (index, field) in fields(row).enumerated() {
                    if index > 0 { bytes.append(9) }
                    bytes.append(contentsOf: field.utf8)
                }
                bytes.append(10)
            }
            return String(decoding: bytes, as: UTF8.self)
        }
        try await insertSnapshot(snapshot,
                                 entryLines: lines(entries, perLine: 120) { [$0.object, $0.kind.rawValue, $0.digest ?? "-", $0.deletedAt ?? ""] },
                                 linkLines: lines(links, perLine: 90) { [$0.link.source, $0.link.relation, $0.link.target, $0.present ? "1" : "0"] })
    }

    func insertSnapshot(_ snapshot: SnapshotRecord, entryLines: String, linkLines: String) async throws {
        _ = try await rows("""
            INSERT INTO backup_snapshots (tenant, id, created_at, seq, parent, digest, object_count, link_count, changed_objects)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [.text(snapshot.tenant), .text(snapshot.id), .text(snapshot.createdAt), .int(snapshot.sequence),
                  snapshot.parent.map { .text($0) } ?? .null, .text(snapshot.digest), .int(Int64(snapshot.objectCount)),
                  .int(Int64(snapshot.linkCount)), .int(Int64(snapshot.changedObjects))])
        _ = try await rows("INSERT INTO backup_manifests (tenant, snapshot, entries, links) VALUES (?, ?, ?, ?)",
                           [.text(snapshot.tenant), .text(snapshot.id), .text(entryLines), .text(linkLines)])
    }

    func snapshots(tenant: String) async throws -> [SnapshotRecord] {
        try await rows("""
            SELECT id, created_at, seq, parent, digest, object_count, link_count, changed_objects FROM backup_snapshots
            WHERE tenant = ? ORDER BY created_at, id
            """, [.text(tenant)]).map { row in
            SnapshotRecord(tenant: tenant, id: row[0].text ?? "", createdAt: row[1].text ?? "", sequence: row[2].int ?? 0, parent: row[3].text,
                           digest: row[4].text ?? "", objectCount: Int(row[5].int ?? 0), linkCount: Int(row[6].int ?? 0),
                           changedObjects: Int(row[7].int ?? 0))
        }
    }

    /// Lines of tab-separated fields.
    static func fields(_ text: String) -> [[String]] {
        var lines: [[String]] = []
        var text = text
        text.withUTF8 { bytes in
            var fields: [String] = []
            var start = 0
            for i in 0..<bytes.count {
                let byte = bytes[i]
                guard byte == 9 || byte == 10 else { continue }
                fields.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self))
                start = i + 1
                if byte == 10 {
                    lines.append(fields)
                    fields = []
                    fields.reserveCapacity(4)
                }
            }
        }
        return lines
    }

    /// A manifest column's lines of four tab-separated fields, each made into a record as it is read (no array of
    /// fields per line); other lines are skipped.
    func manifestRecords<T>(tenant: String, snapshot: String, column: String, _ make: (String, String, String, String) -> T) async throws -> [T] {
        guard var text = try await rows("SELECT \(column) FROM backup_manifests WHERE tenant = ? AND snapshot = ?",
                                        [.text(tenant), .text(snapshot)]).first?.first?.text
        else { return [] }
        var records: [T] = []
        text.withUTF8 { bytes in
            var fields: (String, String, String) = ("", "", "")
            var count = 0, start = 0
            // A line's first field repeats the line before's often (a link's source, for each of its links): then the
            // same String is kept rather than another made.
            var first: Range<Int>?  // where `fields.0`'s text was read
            for i in 0..<bytes.count where bytes[i] == 9 || bytes[i] == 10 {
                let range = start..<i
                start = i + 1
                if count == 0, bytes[i] == 9, let previous = first, previous.count == range.count,
                   bytes[previous].elementsEqual(bytes[range]) {
                    count = 1
                    continue
                }
                let field = String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
                if count == 0, bytes[i] == 9 { first = range }
                if bytes[i] == 10 {
                    if count == 3 { records.append(make(fields.0, fields.1, fields.2, field)) }
                    count = 0
                    continue
                }
                switch count {
                case 0: fields.0 = field
                case 1: fields.1 = field
                case 2: fields.2 = field
                default: break
                }
                count += 1
            }
        }
        return records
    }

    func snapshotManifest(tenant: String, snapshot: String) async throws -> (entries: String, links: String)? {
        guard let row = try await rows("SELECT entries, links FROM backup_manifests WHERE tenant = ? AND snapshot = ?",
                                       [.text(tenant), .text(snapshot)]).first
        else { return nil }
        return (row[0].text ?? "", row[1].text ?? "")
    }

    func snapshotEntries(tenant: String, snapshot: String) async throws -> [SnapshotEntry] {
        try await manifestRecords(tenant: tenant, snapshot: snapshot, column: "entries") { object, kind, digest, deletedAt in
            SnapshotEntry(object: object, kind: ObjectKind(rawValue: kind), digest: digest == "-" ? nil : digest, deletedAt: deletedAt.isEmpty ? nil : deletedAt)
        }
    }

    func snapshotLinks(tenant: String, snapshot: String) async throws -> [SnapshotLink] {
        try await manifestRecords(tenant: tenant, snapshot: snapshot, column: "links") { source, relation, target, present in
            SnapshotLink(link: LinkRow(source: source, relation: relation, target: target), present: present == "1")
        }
    }

    func deleteSnapshot(tenant: String, id: String) async throws -> Int {
        _ = try await rows("DELETE FROM backup_manifests WHERE tenant = ? AND snapshot = ?", [.text(tenant), .text(id)])
        _ = try await rows("DELETE FROM backup_snapshots WHERE tenant = ? AND id = ?", [.text(tenant), .text(id)])
        // A pack goes when no remaining snapshot references any of its blobs.
        var referenced: Set<String> = []
        for row in try await rows("SELECT entries FROM backup_manifests WHERE tenant = ?", [.text(tenant)]) {
            guard let text = row[0].text else { continue }
            for fields in Self.fields(text) where fields.count == 4 && fields[2] != "-" { referenced.insert(fields[2]) }
        }
        var dropped = 0
        for row in try await rows("SELECT pack, digests FROM backup_packs WHERE tenant = ?", [.text(tenant)]) {
            guard let pack = row[0].text, let lines = row[1].text else { continue }
            let digests = Self.packedDigests(lines)
            if !digests.contains(where: referenced.contains) {
                _ = try await rows("DELETE FROM backup_packs WHERE tenant = ? AND pack = ?", [.text(tenant), .text(pack)])
                dropped += digests.count
            }
        }
        return dropped
    }

    func replaceSnapshot(_ snapshot: SnapshotRecord, entries: [SnapshotEntry], links: [SnapshotLink]) async throws {
        _ = try await rows("DELETE FROM backup_manifests WHERE tenant = ? AND snapshot = ?", [.text(snapshot.tenant), .text(snapshot.id)])
        _ = try await rows("DELETE FROM backup_snapshots WHERE tenant = ? AND id = ?", [.text(snapshot.tenant), .text(snapshot.id)])
        try await insertSnapshot(snapshot, entries: entries, links: links)
    }
}
