import Foundation
import TesseraCore

/// Sign-in sessions, refresh tokens and device codes leave the Graph objects table for `credential_records`, where
/// the secrets' digests sit beside nothing a Graph query can reach. A deployment upgraded from a release that kept them
/// as objects keeps every session and token: each moves over as its typed record, and its object, its links from the
/// user and its unique key (a device code's user code) go.
extension Migrations {
    static let credentialTable = [
        """
        CREATE TABLE IF NOT EXISTS credential_records (
          tenant TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL, user_id TEXT, family TEXT, handle TEXT, state TEXT NOT NULL,
          expires_at TEXT NOT NULL, payload TEXT NOT NULL, PRIMARY KEY (tenant, id))
        """,
        "CREATE INDEX IF NOT EXISTS credential_records_by_user ON credential_records (tenant, user_id, kind) WHERE user_id IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS credential_records_by_family ON credential_records (tenant, family) WHERE family IS NOT NULL",
        "CREATE UNIQUE INDEX IF NOT EXISTS credential_records_by_handle ON credential_records (tenant, kind, handle) WHERE handle IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS credential_records_by_expiry ON credential_records (tenant, expires_at)",
    ]

    /// The kinds of object that were credential records.
    static let legacyCredentialKinds = ["refreshToken", "signInSession", "deviceCode"]

    /// Moves every legacy credential object of every tenant, a page at a time.
    static func moveCredentialRecords(_ session: any SQLSession, _ d: SQLDialect) async throws {
        let tenants = try await session.execute("SELECT id FROM tenants", []).compactMap { $0.first?.text }
        for tenant in tenants {
            for kind in legacyCredentialKinds {
                while true {
                    let page = try await session.execute(
                        "SELECT id, kind, \(d.bodyText), version, deleted_at FROM objects WHERE tenant = ? AND kind = ? ORDER BY id LIMIT 500",
                        [.text(tenant), .text(kind)])
                    for row in page {
                        let object = try SQLTransaction.decode(row, tenant: tenant)
                        if let record = try legacyCredential(object) { try await insertMoved(record, session) }
                        // The object goes with its links (the user's `signInSessions`/`refreshTokens`) and keys.
                        _ = try await session.execute("DELETE FROM links WHERE tenant = ? AND (target = ? OR source = ?)",
                                                      [.text(tenant), .text(object.id), .text(object.id)])
                        _ = try await session.execute("DELETE FROM unique_keys WHERE tenant = ? AND object = ?", [.text(tenant), .text(object.id)])
                        _ = try await session.execute("DELETE FROM objects WHERE tenant = ? AND id = ?", [.text(tenant), .text(object.id)])
                    }
                    if page.count < 500 { break }
                }
            }
        }
    }

    /// Inserts a moved record (kept as it is if a record with its id or handle is there already).
    static func insertMoved(_ record: CredentialRow, _ session: any SQLSession) async throws {
        _ = try await session.execute(
            """
            INSERT INTO credential_records (tenant, id, kind, user_id, family, handle, state, expires_at, payload)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
            """,
            [.text(record.tenant), .text(record.id), .text(record.kind.rawValue), SQLTransaction.optional(record.userID),
             SQLTransaction.optional(record.family), SQLTransaction.optional(record.handle), .text(record.state),
             .text(record.expiresAt), .text(record.payload)])
    }

    /// The record a legacy object held, as the row that now stores it; nil for an object that held none usable (it
    /// could not have been used either, and is dropped).
    static func legacyCredential(_ object: StoredObject) throws -> CredentialRow? {
        let body = object.body
        func text(_ key: String) -> String? { body[key]?.stringValue }
        func strings(_ key: String) -> [String] { body[key]?.arrayValue?.compactMap(\.stringValue) ?? [] }
        guard let expires = text("_expires").flatMap(Timestamp.parse) else { return nil }
        switch object.kind.rawValue {
        case "refreshToken":
            guard let digest = text("_digest"), let user = text("_userId"), let client = text("_clientId") else { return nil }
            let grant = SignInGrant(userID: user, clientID: client, redirectURI: text("_redirectUri") ?? "", scope: text("_scope") ?? "",
                                    sessionID: text("_sessionId") ?? "", authTime: body["_authTime"]?.intValue ?? 0, amr: strings("_amr"),
                                    aaguid: text("_aaguid"), acrs: strings("_acrs"))
            return try RefreshTokenRecord(
                id: object.id, digest: digest, grant: grant, confidential: body["_confidential"]?.boolValue ?? false,
                familyID: text("family") ?? object.id, issuedForCode: text("issuedForCode"), expires: expires,
                state: body["_used"]?.boolValue == true ? .used : .unused).row(tenant: object.tenant)
        case "signInSession":
            guard let user = text("_userId") else { return nil }
            return try SignInSessionRecord(id: object.id, userID: user, authTime: body["_authTime"]?.intValue ?? 0, amr: strings("_amr"),
                                           aaguid: text("_aaguid"), expires: expires).row(tenant: object.tenant)
        case "deviceCode":
            guard let digest = text("_digest"), let userCode = text("_userCode"), let client = text("_clientId"),
                  let state = text("_status").flatMap(DeviceCodeRecord.State.init(rawValue:))
            else { return nil }
            let approval = text("_userId").map {
                DeviceCodeRecord.Approval(userID: $0, sessionID: text("_sessionId") ?? "", authTime: body["_authTime"]?.intValue ?? 0,
                                          amr: strings("_amr"), aaguid: text("_aaguid"))
            }
            guard state == .pending || approval != nil else { return nil }
            return try DeviceCodeRecord(id: object.id, digest: digest, userCode: userCode, clientID: client, scope: text("_scope") ?? "",
                                        approval: approval, expires: expires, state: state).row(tenant: object.tenant)
        default:
            return nil
        }
    }
}

/// Temporary Access Passes stay Graph objects, but their passcode's digest and one-time use leave them: each pass's
/// `_digest` and `_used` become its ``TemporaryAccessPassRecord`` (under the pass's id), and its object is written again
/// without them (its stored digest and version follow, as for any update).
extension Migrations {
    static let temporaryAccessPassKind = "temporaryAccessPassAuthenticationMethod"

    static func moveTemporaryAccessPassDigests(_ session: any SQLSession, _ d: SQLDialect) async throws {
        let tx = SQLTransaction(session: session, dialect: d)
        let tenants = try await session.execute("SELECT id FROM tenants", []).compactMap { $0.first?.text }
        for tenant in tenants {
            var after = ""
            while true {
                let page = try await session.execute(
                    "SELECT id, kind, \(d.bodyText), version, deleted_at FROM objects WHERE tenant = ? AND kind = ? AND id > ? ORDER BY id LIMIT 500",
                    [.text(tenant), .text(temporaryAccessPassKind), .text(after)])
                for row in page {
                    let object = try SQLTransaction.decode(row, tenant: tenant)
                    after = object.id
                    guard object.body["_digest"] != nil || object.body["_used"] != nil else { continue }
                    if let record = try legacyTemporaryAccessPass(object) { try await insertMoved(record, session) }
                    var stripped = object
                    stripped.body.removeValue(forKey: "_digest")
                    stripped.body.removeValue(forKey: "_used")
                    stripped.version = object.version + 1
                    try await tx.update(stripped, expectedVersion: object.version)
                }
                if page.count < 500 { break }
            }
        }
    }

    /// A legacy pass's record; nil when it has no digest or no user (it could not be redeemed either).
    static func legacyTemporaryAccessPass(_ object: StoredObject) throws -> CredentialRow? {
        let body = object.body
        guard let digest = body["_digest"]?.stringValue, let user = body["_userId"]?.stringValue else { return nil }
        let start = (body["startDateTime"]?.stringValue ?? body["createdDateTime"]?.stringValue).flatMap(Timestamp.parse)
            ?? Date(timeIntervalSince1970: 0)
        let ends = start.addingTimeInterval(TimeInterval(body["lifetimeInMinutes"]?.intValue ?? 0) * 60)
        return try TemporaryAccessPassRecord(id: object.id, userID: user, digest: digest, expires: ends,
                                             state: body["_used"]?.boolValue == true ? .used : .unused).row(tenant: object.tenant)
    }
}

/// Client secrets' digests leave the applications and service principals that listed them: each `passwordCredentials`
/// entry's `_hash` becomes a ``ClientSecretRecord`` under its `keyId`, in the object's family, and the object is written
/// again without it (soft-deleted objects too, so a restored app's secrets still work).
extension Migrations {
    static func moveClientSecretDigests(_ session: any SQLSession, _ d: SQLDialect) async throws {
        let tx = SQLTransaction(session: session, dialect: d)
        let tenants = try await session.execute("SELECT id FROM tenants", []).compactMap { $0.first?.text }
        for tenant in tenants {
            for kind in [ObjectKind.application, .servicePrincipal] {
                var after = ""
                while true {
                    let page = try await session.execute(
                        "SELECT id, kind, \(d.bodyText), version, deleted_at FROM objects WHERE tenant = ? AND kind = ? AND id > ? ORDER BY id LIMIT 500",
                        [.text(tenant), .text(kind.rawValue), .text(after)])
                    for row in page {
                        let object = try SQLTransaction.decode(row, tenant: tenant)
                        after = object.id
                        guard let (stripped, records) = try legacyClientSecrets(object) else { continue }
                        for record in records { try await insertMoved(record, session) }
                        try await tx.update(stripped, expectedVersion: object.version)
                    }
                    if page.count < 500 { break }
                }
            }
        }
    }

    /// The object without its secrets' digests (its version one up) and the records that now hold them; nil when no
    /// entry of its `passwordCredentials` has a `_` member. An entry without a key id or an end keeps no record (it
    /// could not be removed, or counted as ended, either).
    static func legacyClientSecrets(_ object: StoredObject) throws -> (StoredObject, [CredentialRow])? {
        guard let credentials = object.body["passwordCredentials"]?.arrayValue,
              credentials.contains(where: { $0.objectValue?.keys.contains { $0.hasPrefix("_") } ?? false })
        else { return nil }
        var records: [CredentialRow] = []
        var kept: [JSONValue] = []
        for credential in credentials {
            guard case .object(let members) = credential else { kept.append(credential); continue }
            if let digest = members["_hash"]?.stringValue, let keyId = members["keyId"]?.stringValue,
               let end = members["endDateTime"]?.stringValue.flatMap(Timestamp.parse) {
                records.append(try ClientSecretRecord(id: keyId, objectID: object.id, digest: digest, expires: end).row(tenant: object.tenant))
            }
            kept.append(.object(members.filter { !$0.key.hasPrefix("_") }))
        }
        var stripped = object
        stripped.body["passwordCredentials"] = .array(kept)
        stripped.version = object.version + 1
        return (stripped, records)
    }
}
