import TesseraCore

/// The credential records (`CredentialReader`, `CredentialWriter`): the table `credential_records`, one row per
/// sign-in session, refresh token, device code, Temporary Access Pass or client secret, with what is looked up, revoked
/// or swept by as columns (user, family, handle, state, expiry) and the record's own JSON. Never the Graph objects
/// table: no query, delta or backup reads it.
extension SQLTransaction {
    static let credentialColumns = "id, kind, user_id, family, handle, state, expires_at, payload"

    func credentialRow(tenant: String, kind: CredentialKind, id: String) async throws -> CredentialRow? {
        try await rows("SELECT \(Self.credentialColumns) FROM credential_records WHERE tenant = ? AND id = ? AND kind = ?",
                       [.text(tenant), .text(id.lowercased()), .text(kind.rawValue)]).first.map { try Self.credential($0, tenant: tenant) }
    }

    func credentialRow(tenant: String, kind: CredentialKind, handle: String) async throws -> CredentialRow? {
        try await rows("SELECT \(Self.credentialColumns) FROM credential_records WHERE tenant = ? AND kind = ? AND handle = ?",
                       [.text(tenant), .text(kind.rawValue), .text(handle)]).first.map { try Self.credential($0, tenant: tenant) }
    }

    func credentialRows(tenant: String, kind: CredentialKind, userID: String) async throws -> [CredentialRow] {
        try await rows("SELECT \(Self.credentialColumns) FROM credential_records WHERE tenant = ? AND user_id = ? AND kind = ? ORDER BY id",
                       [.text(tenant), .text(userID), .text(kind.rawValue)]).map { try Self.credential($0, tenant: tenant) }
    }

    func credentialRows(tenant: String, kind: CredentialKind, family: String) async throws -> [CredentialRow] {
        try await rows("SELECT \(Self.credentialColumns) FROM credential_records WHERE tenant = ? AND family = ? AND kind = ? ORDER BY id",
                       [.text(tenant), .text(family), .text(kind.rawValue)]).map { try Self.credential($0, tenant: tenant) }
    }

    func insertCredential(_ row: CredentialRow) async throws {
        // DO NOTHING without a target covers both the primary key and the handle's unique index on both databases.
        let inserted = try await rows(
            """
            INSERT INTO credential_records (tenant, id, kind, user_id, family, handle, state, expires_at, payload)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id
            """,
            [.text(row.tenant), .text(row.id), .text(row.kind.rawValue), Self.optional(row.userID), Self.optional(row.family),
             Self.optional(row.handle), .text(row.state), .text(row.expiresAt), .text(row.payload)])
        guard inserted.isEmpty else { return }
        let taken = try await rows("SELECT 1 FROM credential_records WHERE tenant = ? AND id = ?", [.text(row.tenant), .text(row.id)])
        throw DirectoryError.duplicate(taken.isEmpty ? "handle" : "id")
    }

    func replaceCredential(_ row: CredentialRow, expectedState: String) async throws -> Bool {
        // The state in the WHERE clause is the compare-and-set: on PostgreSQL a second writer waits for the first's row
        // lock and then finds the state changed; SQLite has one writer.
        !(try await rows(
            """
            UPDATE credential_records SET user_id = ?, family = ?, handle = ?, state = ?, expires_at = ?, payload = ?
            WHERE tenant = ? AND id = ? AND kind = ? AND state = ? RETURNING id
            """,
            [Self.optional(row.userID), Self.optional(row.family), Self.optional(row.handle), .text(row.state), .text(row.expiresAt),
             .text(row.payload), .text(row.tenant), .text(row.id), .text(row.kind.rawValue), .text(expectedState)])).isEmpty
    }

    func deleteCredential(tenant: String, kind: CredentialKind, id: String) async throws -> Bool {
        !(try await rows("DELETE FROM credential_records WHERE tenant = ? AND id = ? AND kind = ? RETURNING id",
                         [.text(tenant), .text(id.lowercased()), .text(kind.rawValue)])).isEmpty
    }

    func deleteCredentials(tenant: String, userID: String, kinds: [CredentialKind]?) async throws -> Int {
        var sql = "DELETE FROM credential_records WHERE tenant = ? AND user_id = ?"
        var binds: [SQLValue] = [.text(tenant), .text(userID)]
        if let kinds {
            guard !kinds.isEmpty else { return 0 }
            sql += " AND kind IN (\(Array(repeating: "?", count: kinds.count).joined(separator: ", ")))"
            binds += kinds.map { .text($0.rawValue) }
        }
        return try await rows(sql + " RETURNING id", binds).count
    }

    func deleteCredentials(tenant: String, kind: CredentialKind, family: String) async throws -> Int {
        try await rows("DELETE FROM credential_records WHERE tenant = ? AND family = ? AND kind = ? RETURNING id",
                       [.text(tenant), .text(family), .text(kind.rawValue)]).count
    }

    func deleteExpiredCredentials(tenant: String, before cutoff: String, limit: Int) async throws -> Int {
        // Through the expiry index, oldest first, at most `limit` (neither database has DELETE … LIMIT everywhere).
        try await rows(
            """
            DELETE FROM credential_records WHERE tenant = ? AND id IN (
              SELECT id FROM credential_records WHERE tenant = ? AND expires_at < ? ORDER BY expires_at LIMIT ?) RETURNING id
            """, [.text(tenant), .text(tenant), .text(cutoff), .int(Int64(limit))]).count
    }

    static func optional(_ value: String?) -> SQLValue { value.map { .text($0) } ?? .null }

    static func credential(_ row: [SQLValue], tenant: String) throws -> CredentialRow {
        guard case .text(let id) = row[0], case .text(let kind) = row[1], case .text(let state) = row[5],
              case .text(let expires) = row[6], case .text(let payload) = row[7]
        else { throw StoreError(message: "A stored credential record could not be decoded.") }
        return CredentialRow(tenant: tenant, id: id, kind: CredentialKind(rawValue: kind), userID: row[2].text, family: row[3].text,
                             handle: row[4].text, state: state, expiresAt: expires, payload: payload)
    }
}
