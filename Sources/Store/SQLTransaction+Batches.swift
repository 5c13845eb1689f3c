import TesseraCore

/// The sign-in records' batches (`SignInWriter`) in one statement a kind instead of one a record: on PostgreSQL each
/// statement is a round trip and its own PostgresNIO exchange, and two sign-in records and a session-client record a
/// sign-in made three of them.
extension SQLTransaction {
    /// The most rows one statement inserts (PostgreSQL takes 65,535 binds a statement, SQLite 32,766).
    static let rowsPerStatement = 200

    func insertAll(_ objects: [StoredObject]) async throws {
        for start in stride(from: 0, to: objects.count, by: Self.rowsPerStatement) {
            let chunk = objects[start..<min(start + Self.rowsPerStatement, objects.count)]
            var values: [String] = []
            var binds: [SQLValue] = []
            values.reserveCapacity(chunk.count)
            binds.reserveCapacity(chunk.count * 7)
            for object in chunk {
                let text = JSONValue.object(object.body).serialized
                let digest = bodyDigest(text)
                values.append("(?, ?, ?, \(dialect.jsonBind), \(digest.sql), ?, ?)")
                binds += [.text(object.tenant), .text(object.id), .text(object.kind.rawValue), .text(text), digest.bind,
                          .int(object.version), object.deletedAt.map { .text($0) } ?? .null]
            }
            let inserted = try await rows(
                "INSERT INTO objects (tenant, id, kind, body, digest, version, deleted_at) VALUES \(values.joined(separator: ", ")) ON CONFLICT (tenant, id) DO NOTHING RETURNING tenant, id",
                binds)
            guard inserted.count < chunk.count else { continue }
            // As `insert` refuses it: the first object whose id was there already (or came twice).
            let made = Set(inserted.map { "\($0[0].text ?? "")|\($0[1].text ?? "")" })
            let taken = chunk.first { !made.contains("\($0.tenant)|\($0.id)") }
            throw DirectoryError.badRequest("An object with the id '\(taken?.id ?? "")' already exists.")
        }
    }

    func insertCredentialsIfAbsent(_ records: [CredentialRow]) async throws {
        for start in stride(from: 0, to: records.count, by: Self.rowsPerStatement) {
            let chunk = records[start..<min(start + Self.rowsPerStatement, records.count)]
            var binds: [SQLValue] = []
            binds.reserveCapacity(chunk.count * 9)
            for row in chunk {
                binds += [.text(row.tenant), .text(row.id), .text(row.kind.rawValue), Self.optional(row.userID), Self.optional(row.family),
                          Self.optional(row.handle), .text(row.state), .text(row.expiresAt), .text(row.payload)]
            }
            // DO NOTHING without a target: a row whose id or handle is stored already (or came twice) is left out.
            _ = try await rows(
                """
                INSERT INTO credential_records (tenant, id, kind, user_id, family, handle, state, expires_at, payload)
                VALUES \(Array(repeating: "(?, ?, ?, ?, ?, ?, ?, ?, ?)", count: chunk.count).joined(separator: ", ")) ON CONFLICT DO NOTHING
                """, binds)
        }
    }
}
