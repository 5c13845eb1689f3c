import Logging
import TesseraCore

/// The schema, created in order; each step runs once and is recorded in `schema_migrations`.
enum Migrations {
    static var indexedProperties: [String] { ObjectQuery.indexedProperties }

    static func steps(_ d: SQLDialect) -> [(Int, [String])] {
        let first = [
            """
            CREATE TABLE IF NOT EXISTS tenants (
              id TEXT PRIMARY KEY, domain TEXT NOT NULL UNIQUE, name TEXT NOT NULL, created_at TEXT NOT NULL,
              change_seq BIGINT NOT NULL DEFAULT 0)
            """,
            """
            CREATE TABLE IF NOT EXISTS objects (
              tenant TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL, body \(d.jsonColumnType) NOT NULL,
              version BIGINT NOT NULL, deleted_at TEXT, PRIMARY KEY (tenant, id))
            """,
            "CREATE INDEX IF NOT EXISTS objects_by_kind ON objects (tenant, kind, id)",
            """
            CREATE TABLE IF NOT EXISTS links (
              tenant TEXT NOT NULL, source TEXT NOT NULL, relation TEXT NOT NULL, target TEXT NOT NULL,
              PRIMARY KEY (tenant, source, relation, target))
            """,
            "CREATE INDEX IF NOT EXISTS links_by_target ON links (tenant, target, relation)",
            """
            CREATE TABLE IF NOT EXISTS unique_keys (
              tenant TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, object TEXT NOT NULL,
              PRIMARY KEY (tenant, name, value))
            """,
            "CREATE INDEX IF NOT EXISTS unique_keys_by_object ON unique_keys (tenant, object)",
            """
            CREATE TABLE IF NOT EXISTS changes (
              tenant TEXT NOT NULL, seq BIGINT NOT NULL, object TEXT NOT NULL, kind TEXT NOT NULL, operation TEXT NOT NULL,
              activity TEXT NOT NULL, actor TEXT NOT NULL, at TEXT NOT NULL, details TEXT NOT NULL, PRIMARY KEY (tenant, seq))
            """,
            "CREATE INDEX IF NOT EXISTS changes_by_object ON changes (tenant, object, seq)",
            """
            CREATE TABLE IF NOT EXISTS settings (
              tenant TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (tenant, key))
            """,
            """
            CREATE TABLE IF NOT EXISTS single_use (
              tenant TEXT NOT NULL, key TEXT NOT NULL, expires_at TEXT NOT NULL, PRIMARY KEY (tenant, key))
            """,
        ]
        // Step 2: the property indexes end with id, so `ORDER BY property, id LIMIT n` reads n entries of
        // the index and stops, instead of fetching every match and sorting.
        var second: [String] = []
        for property in indexedProperties {
            second.append("DROP INDEX IF EXISTS objects_\(property)")
            second.append("CREATE INDEX IF NOT EXISTS objects_by_\(property) ON objects (tenant, kind, (\(d.folded([property]))), id)")
        }
        // Step 3: single-use keys are swept by expiry on every consume; without this index each sweep read every
        // key the tenant ever had (found by `tessera bench signin`, whose write rate fell as the table grew).
        let third = ["CREATE INDEX IF NOT EXISTS single_use_by_expiry ON single_use (tenant, expires_at)"]
        // Step 4: reverse link lookups (a user's groups) list sources in order; with the source in the index the
        // database reads just those entries, where before it preferred walking every link of the tenant in
        // primary-key order to skip the sort (found by `tessera bench admin` at 100,000 users).
        let fourth = ["DROP INDEX IF EXISTS links_by_target",
                      "CREATE INDEX IF NOT EXISTS links_by_target_source ON links (tenant, target, relation, source)"]
        // Step 5: backups (the `Backup` target): content-addressed blobs, snapshots, and each snapshot's object and
        // link entries (all of them in a full snapshot, the changes since its parent in an incremental one).
        let fifth = [
            "CREATE TABLE IF NOT EXISTS backup_blobs (tenant TEXT NOT NULL, digest TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (tenant, digest))",
            """
            CREATE TABLE IF NOT EXISTS backup_snapshots (
              tenant TEXT NOT NULL, id TEXT NOT NULL, created_at TEXT NOT NULL, seq BIGINT NOT NULL, parent TEXT, digest TEXT NOT NULL,
              object_count BIGINT NOT NULL, link_count BIGINT NOT NULL, changed_objects BIGINT NOT NULL, PRIMARY KEY (tenant, id))
            """,
            """
            CREATE TABLE IF NOT EXISTS backup_entries (
              tenant TEXT NOT NULL, snapshot TEXT NOT NULL, object TEXT NOT NULL, kind TEXT NOT NULL, digest TEXT, deleted_at TEXT,
              PRIMARY KEY (tenant, snapshot, object))
            """,
            """
            CREATE TABLE IF NOT EXISTS backup_links (
              tenant TEXT NOT NULL, snapshot TEXT NOT NULL, source TEXT NOT NULL, relation TEXT NOT NULL, target TEXT NOT NULL,
              present BIGINT NOT NULL, PRIMARY KEY (tenant, snapshot, source, relation, target))
            """,
        ]
        // Step 6: blobs in packs and each snapshot's entries and links in one manifest row (see
        // SQLTransaction+Backup.swift); what step 5's tables held moves over, one pack per blob.
        let tab = d.isPostgres ? "chr(9)" : "char(9)", newline = d.isPostgres ? "chr(10)" : "char(10)"
        func lines(_ expression: String) -> String {
            d.isPostgres ? "string_agg(\(expression) || \(newline), '')" : "group_concat(\(expression) || \(newline), '')"
        }
        let bytes = d.isPostgres ? "octet_length(body)" : "length(CAST(body AS BLOB))"
        let sixth = [
            "CREATE TABLE IF NOT EXISTS backup_packs (tenant TEXT NOT NULL, pack TEXT NOT NULL, digests TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (tenant, pack))",
            "CREATE TABLE IF NOT EXISTS backup_manifests (tenant TEXT NOT NULL, snapshot TEXT NOT NULL, entries TEXT NOT NULL, links TEXT NOT NULL, PRIMARY KEY (tenant, snapshot))",
            """
            INSERT INTO backup_packs (tenant, pack, digests, body)
            SELECT tenant, digest, digest || ' 0 ' || \(bytes) || \(newline), body FROM backup_blobs
            """,
            """
            INSERT INTO backup_manifests (tenant, snapshot, entries, links)
            SELECT s.tenant, s.id,
              COALESCE((SELECT \(lines("e.object || \(tab) || e.kind || \(tab) || COALESCE(e.digest, '-') || \(tab) || COALESCE(e.deleted_at, '')"))
                        FROM backup_entries e WHERE e.tenant = s.tenant AND e.snapshot = s.id), ''),
              COALESCE((SELECT \(lines("l.source || \(tab) || l.relation || \(tab) || l.target || \(tab) || CAST(l.present AS TEXT)"))
                        FROM backup_links l WHERE l.tenant = s.tenant AND l.snapshot = s.id), '')
            FROM backup_snapshots s
            """,
            "DROP TABLE backup_blobs", "DROP TABLE backup_entries", "DROP TABLE backup_links",
        ]
        // Step 7: each object's digest (SHA-256, hex, of its stored JSON as `bodyText` reads it) beside it, written by
        // every insert and update, so a snapshot reads digests instead of hashing every body. PostgreSQL fills it for
        // existing rows here; SQLite has no SHA-256 function, so `backfillDigests` does it after this step.
        var seventh = ["ALTER TABLE objects ADD COLUMN digest TEXT"]
        if d.isPostgres { seventh.append("UPDATE objects SET digest = encode(sha256(convert_to(body::text, 'UTF8')), 'hex')") }
        // Step 8: PostgreSQL compresses packs with LZ4 where it has it (pglz took a quarter of a first snapshot's
        // time; LZ4 is several times faster for 10% more bytes); packs already written keep their compression.
        let eighth = d.isPostgres ? ["""
            DO $$ BEGIN ALTER TABLE backup_packs ALTER COLUMN body SET COMPRESSION lz4; EXCEPTION WHEN OTHERS THEN NULL; END $$
            """] : []
        // Step 9: `onPremisesImmutableId` keys are compared as written (base64: case matters); those stored lowercased
        // take their holder's value again. Two anchors that differed only in case could not both be stored before, so
        // the values stay unique.
        let anchor = d.text(["onPremisesImmutableId"], column: "o.body")
        let ninth = ["""
            UPDATE unique_keys SET value = (SELECT \(anchor) FROM objects o WHERE o.tenant = unique_keys.tenant AND o.id = unique_keys.object)
            WHERE name = 'onPremisesImmutableId' AND EXISTS (
              SELECT 1 FROM objects o WHERE o.tenant = unique_keys.tenant AND o.id = unique_keys.object AND lower(\(anchor)) = unique_keys.value)
            """]
        return [(1, first), (2, second), (3, third), (4, fourth), (5, fifth), (6, sixth), (digestStep, seventh), (8, eighth), (9, ninth),
                // Step 10: directory sync's staging area in a table of its own (SQLTransaction+Staging.swift).
                (stagingStep, stagingTable),
                // Step 11: sign-in sessions, refresh tokens and device codes out of the objects table (Migrations+Credentials.swift).
                (credentialStep, credentialTable),
                // Step 12: Temporary Access Passes' digests out of their Graph objects (Migrations+Credentials.swift).
                (temporaryAccessPassStep, []),
                // Step 13: client secrets' digests out of applications and service principals (Migrations+Credentials.swift).
                (clientSecretStep, []),
                // Step 14: each step recorded with its summary and the oldest build that may run on it (`catalog`), so a
                // build that does not know a step a newer one applied can tell whether it may go on (a rolling upgrade)
                // or must stop. Nullable columns: a build before this step still reads and writes `version` alone.
                (compatibilityStep, ["ALTER TABLE schema_migrations ADD COLUMN summary TEXT",
                                     "ALTER TABLE schema_migrations ADD COLUMN minimum_reader BIGINT"]),
                // Step 15: Backup and Recovery's jobs out of the objects table (SQLTransaction+RecoveryJobs.swift).
                (recoveryJobStep, recoveryJobTable),
                // Step 16: identity providers' client secrets out of their Graph objects (Migrations+IdentityProviders.swift).
                (identityProviderSecretStep, []),
                // Step 17: deleted objects (a tenant's deleted items, sync's deleted synced users at every run) found
                // without walking every object of the kind: 60–400 ms at 100,000 users before each sync run and delta.
                (deletedObjectsStep, ["CREATE INDEX IF NOT EXISTS objects_deleted ON objects (tenant, kind, id) WHERE deleted_at IS NOT NULL"]),
                // Step 18: step 2's property indexes, each limited to the kinds queried by its property.
                (propertyIndexStep, propertyIndexes(d)),
                // Step 19: the filter-only property indexes hold no entry for an object without the property.
                (valuedPropertyIndexStep, valuedPropertyIndexes(d))]
    }

    /// The properties whose index holds only objects that have a value (step 19): those Graph filters by but does not
    /// order by (`$orderby` on users and groups takes `displayName` and `userPrincipalName`), and that many objects of
    /// their kinds leave out. A user created with a name and a UPN wrote seven entries for its missing `mail`, names,
    /// anchor, employee id, job title and department, about half of its writes. A query can use such an index only when
    /// its condition implies the value is there: `eq`, `in`, `startswith` and `ge`/`gt`/`le`/`lt` on a value do, both
    /// databases proving it from the comparison; `eq null`, `ne`, `not`, and an order by the property without such a
    /// filter read the objects of their kind, as a property with no index does.
    static let valuedPropertyIndexProperties: Set<String> = [
        "mail", "givenName", "surname", "onPremisesImmutableId", "employeeId", "jobTitle", "department",
    ]

    /// Step 19: `valuedPropertyIndexProperties`' indexes again, over step 18's kinds and only where the folded value (the
    /// index's own key, so that a query's comparison of it proves the condition on SQLite) is not NULL.
    static func valuedPropertyIndexes(_ d: SQLDialect) -> [String] {
        var statements: [String] = []
        for property in indexedProperties where valuedPropertyIndexProperties.contains(property) {
            statements.append("DROP INDEX IF EXISTS objects_by_\(property)")
            statements.append(propertyIndex(property, d))
        }
        return statements
    }

    /// The current definition of `property`'s index: over the kinds `ObjectQuery.propertyIndexKinds` names (step 18),
    /// and for `valuedPropertyIndexProperties` only where the value is there (step 19).
    static func propertyIndex(_ property: String, _ d: SQLDialect) -> String {
        let kinds = ObjectQuery.propertyIndexKinds[property] ?? []
        var condition = kinds.isEmpty ? "FALSE" : kinds.map { "kind = '\($0.rawValue)'" }.joined(separator: " OR ")
        if valuedPropertyIndexProperties.contains(property) { condition = "(\(condition)) AND \(d.folded([property])) IS NOT NULL" }
        return "CREATE INDEX IF NOT EXISTS objects_by_\(property) ON objects (tenant, kind, (\(d.folded([property]))), id) WHERE \(condition)"
    }

    /// Step 18: each property index made partial, over the kinds `ObjectQuery.propertyIndexKinds` names, replacing
    /// step 2's, which held an entry for every object of every kind (twelve index entries, each a `json_extract` of the
    /// body, for every sign-in record, policy or app role assignment written; a user wrote `appId` and `deviceId`
    /// entries). Same names and columns: the release before's queries (the kind bound, not written) still answer the
    /// same, reading the objects of the kind where they cannot prove the index covers it. The condition is an `OR` of
    /// `kind = '…'` terms: SQLite takes a partial index when a term of the query's `WHERE` is one of them (a query's
    /// `kind = 'user'`, written into its text by `QueryTranslator`), PostgreSQL when the query's condition implies it.
    static func propertyIndexes(_ d: SQLDialect) -> [String] {
        var statements: [String] = []
        for property in indexedProperties {
            let kinds = ObjectQuery.propertyIndexKinds[property] ?? []
            let covered = kinds.isEmpty ? "FALSE" : kinds.map { "kind = '\($0.rawValue)'" }.joined(separator: " OR ")
            statements.append("DROP INDEX IF EXISTS objects_by_\(property)")
            statements.append("CREATE INDEX IF NOT EXISTS objects_by_\(property) ON objects (tenant, kind, (\(d.folded([property]))), id) WHERE \(covered)")
        }
        return statements
    }

    /// Every step in a line, and which builds can still run on a database once it is applied (see `MigrationStep`).
    /// A step that only adds (a table, a column, an index older builds never read) leaves `minimumReader` nil. One
    /// that changes or removes what an older build reads ships in a release after the one whose code stopped reading
    /// it, and names that release's last step (expand in one release, contract in the next), so the two releases run
    /// side by side during a rolling upgrade and an older build stops instead of misreading.
    static let catalog: [MigrationStep] = [
        MigrationStep(number: 1, summary: "tenants, objects, links, unique keys, change log, settings and single-use keys"),
        MigrationStep(number: 2, summary: "property indexes end with the object id (ordered reads stop early)"),
        MigrationStep(number: 3, summary: "single-use keys indexed by expiry"),
        MigrationStep(number: 4, summary: "reverse link lookups indexed with their source"),
        MigrationStep(number: 5, summary: "backup tables: blobs, snapshots, entries and links"),
        MigrationStep(number: 6, summary: "backups in packs and one manifest per snapshot (step 5's tables moved over)"),
        MigrationStep(number: digestStep, summary: "each object's SHA-256 digest stored beside it (filled in for existing objects)"),
        MigrationStep(number: 8, summary: "PostgreSQL: backup packs compressed with LZ4 where the server has it"),
        MigrationStep(number: 9, summary: "onPremisesImmutableId unique keys compared as written (case kept)"),
        MigrationStep(number: stagingStep, summary: "directory sync's staging area in a table of its own"),
        MigrationStep(number: credentialStep, summary: "sign-in sessions, refresh tokens and device codes in the credential table"),
        MigrationStep(number: temporaryAccessPassStep, summary: "Temporary Access Passes' digests in credential records"),
        MigrationStep(number: clientSecretStep, summary: "client secrets' digests in credential records"),
        MigrationStep(number: compatibilityStep, summary: "each migration step recorded with its summary and the oldest build that can run on it"),
        // Steps 15 and 16 leave the release before running beside this one (a rolling upgrade runs N and N+1 side by
        // side): until its nodes are upgraded, a node of the release before lists no Backup and Recovery job and could
        // start one in the objects table, where this release does not look; and it finds no secret in an identity
        // provider's object, so its sign-ins through the provider fail, while a secret it writes there is read by this
        // release before the setting's (`DirectoryService.identityProviderClientSecret`). README, Upgrading.
        MigrationStep(number: recoveryJobStep, summary: "Backup and Recovery's jobs in a table of their own"),
        MigrationStep(number: identityProviderSecretStep, summary: "identity providers' client secrets out of their objects, in a tenant setting"),
        MigrationStep(number: deletedObjectsStep, summary: "an index of deleted objects"),
        MigrationStep(number: propertyIndexStep, summary: "property indexes limited to the kinds queried by each property"),
        MigrationStep(number: valuedPropertyIndexStep, summary: "filter-only property indexes hold no entry for a missing value"),
    ]

    static let digestStep = 7, stagingStep = 10
    static let credentialStep = 11, temporaryAccessPassStep = 12, clientSecretStep = 13, compatibilityStep = 14
    static let recoveryJobStep = 15
    static let identityProviderSecretStep = 16
    static let deletedObjectsStep = 17
    static let propertyIndexStep = 18
    static let valuedPropertyIndexStep = 19

    /// The newest step this build knows.
    static var latest: Int { catalog.map(\.number).max() ?? 0 }

    /// The schema against this build's steps, read in `session` (changing nothing).
    static func status(_ session: any SQLSession, dialect: SQLDialect) async throws -> SchemaStatus {
        let table = dialect.isPostgres
            ? "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = 'schema_migrations'"
            : "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        guard try await !session.execute(table, []).isEmpty else { return SchemaStatus(pending: catalog, newer: [], latestKnown: latest) }
        return try await status(recordedIn: session)
    }

    /// The schema against this build's steps, `schema_migrations` being there.
    static func status(recordedIn session: any SQLSession) async throws -> SchemaStatus {
        let applied = Set(try await session.execute("SELECT version FROM schema_migrations", []).compactMap { $0.first?.int })
        var newer: [MigrationStep] = []
        if applied.contains(where: { $0 > Int64(latest) }) {
            // A newer build applied these; it applied the compatibility step first, so their rows say what they are.
            let rows = try await session.execute("SELECT version, summary, minimum_reader FROM schema_migrations WHERE version > ? ORDER BY version",
                                                 [.int(Int64(latest))])
            newer = rows.compactMap { row in
                row[0].int.map { MigrationStep(number: Int($0), summary: row[1].text ?? "(no summary recorded)", minimumReader: row[2].int.map { Int($0) }) }
            }
        }
        return SchemaStatus(pending: catalog.filter { !applied.contains(Int64($0.number)) }, newer: newer, latestKnown: latest)
    }

    /// Applies the steps the database has not recorded, in one transaction, and returns them; refuses, changing
    /// nothing, when a newer build applied a step this one must not run on.
    @discardableResult
    static func run(on backend: any SQLBackend) async throws -> [MigrationStep] {
        let ran = try await backend.withWriteSession { session -> (steps: [MigrationStep], newer: [MigrationStep], fresh: Bool) in
            if backend.dialect.isPostgres {
                // Nodes that start together migrate one at a time (SQLite's BEGIN IMMEDIATE does this there).
                _ = try await session.execute("SELECT pg_advisory_xact_lock(7254916401)", [])
            }
            _ = try await session.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)", [])
            let status = try await status(recordedIn: session)
            if !status.blocking.isEmpty { throw SchemaNewerThanBuild(status: status) }
            let applied = Set(catalog.map(\.number)).subtracting(status.pending.map(\.number))
            var ran: [MigrationStep] = []
            for (version, statements) in steps(backend.dialect) where !applied.contains(version) {
                for statement in statements { _ = try await session.execute(statement, []) }
                if version == digestStep, !backend.dialect.isPostgres { try await backfillDigests(session) }
                if version == stagingStep { try await moveStagedObjects(session, dialect: backend.dialect) }
                if version == credentialStep { try await moveCredentialRecords(session, backend.dialect) }
                if version == temporaryAccessPassStep { try await moveTemporaryAccessPassDigests(session, backend.dialect) }
                if version == clientSecretStep { try await moveClientSecretDigests(session, backend.dialect) }
                if version == recoveryJobStep { try await moveRecoveryJobs(session, backend.dialect) }
                if version == identityProviderSecretStep { try await moveIdentityProviderSecrets(session, backend.dialect) }
                let step = catalog.first { $0.number == version } ?? MigrationStep(number: version, summary: "")
                if version >= compatibilityStep {
                    _ = try await session.execute("INSERT INTO schema_migrations (version, summary, minimum_reader) VALUES (?, ?, ?)",
                                                  [.int(Int64(version)), .text(step.summary), step.minimumReader.map { .int(Int64($0)) } ?? .null])
                } else {
                    _ = try await session.execute("INSERT INTO schema_migrations (version) VALUES (?)", [.int(Int64(version))])
                }
                ran.append(step)
            }
            return (ran, status.newer, applied.isEmpty)
        }
        // Said at start (serve's log): what changed, and a schema a newer build moved on that this one still runs on.
        let logger = Logger(label: "tessera")
        if ran.fresh {
            logger.debug("Created the database schema (migration steps 1 to \(latest))")
        } else {
            for step in ran.steps { logger.notice("Applied migration step \(step.number): \(step.summary)") }
        }
        if !ran.newer.isEmpty {
            logger.warning("The database has migration steps this build does not know, applied by a newer Tessera and recorded as safe for this one to run on (\(ran.newer.map { "\($0.number): \($0.summary)" }.joined(separator: "; "))): upgrade this node to finish the rolling upgrade")
        }
        return ran.steps
    }
}

/// One migration step: its number, what it does in a line, and the newest step a build must know to run on a database
/// where it is applied (nil: any build that ran on the schema before it, the step only adds).
public struct MigrationStep: Sendable, Equatable {
    public let number: Int
    public let summary: String
    public let minimumReader: Int?

    public init(number: Int, summary: String, minimumReader: Int? = nil) {
        self.number = number
        self.summary = summary
        self.minimumReader = minimumReader
    }
}

/// A database's schema against the steps this build knows.
public struct SchemaStatus: Sendable, Equatable {
    /// The steps this build knows that the database has not recorded, in order.
    public let pending: [MigrationStep]
    /// The steps the database has recorded that this build does not know (a newer build applied them), as recorded.
    public let newer: [MigrationStep]
    /// The newest step this build knows.
    public let latestKnown: Int

    /// Of `newer`, those that need a build knowing a later step than this one: it must not run on the database.
    public var blocking: [MigrationStep] { newer.filter { ($0.minimumReader ?? 0) > latestKnown } }
}

/// The database's schema was moved on by a newer build past what this one can run on: it stops (serve refuses to start,
/// `/readyz` answers 503, `tessera migrate` exits 4) rather than misread or overwrite what the newer build wrote.
public struct SchemaNewerThanBuild: Error, CustomStringConvertible, Sendable {
    public let status: SchemaStatus

    public var description: String {
        let steps = status.blocking.map { "step \($0.number) (\($0.summary)) needs a Tessera that knows step \($0.minimumReader ?? $0.number)" }
        return "the database's schema is newer than this Tessera, which knows migration steps up to \(status.latestKnown): "
            + steps.joined(separator: "; ") + ". Run a newer Tessera on it (nothing was changed)"
    }
}

extension Migrations {
    /// SQLite: every object's digest, computed here (the database has no SHA-256), a page of rows at a time in rowid order.
    static func backfillDigests(_ session: any SQLSession) async throws {
        var after: Int64 = 0
        while true {
            let page = try await session.execute("SELECT rowid, body FROM objects WHERE rowid > ? ORDER BY rowid LIMIT 2000", [.int(after)])
            for row in page {
                guard let rowid = row[0].int, let body = row[1].text else { continue }
                _ = try await session.execute("UPDATE objects SET digest = ? WHERE rowid = ?", [.text(Secrets.fingerprint(body)), .int(rowid)])
            }
            guard page.count == 2000, let last = page.last?[0].int else { return }
            after = last
        }
    }
}
