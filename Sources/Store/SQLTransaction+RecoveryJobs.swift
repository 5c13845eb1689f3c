import Foundation
import TesseraCore

/// Backup and Recovery's jobs (`RecoveryJobReader`, `RecoveryJobWriter`): the table `recovery_jobs`, one row per job
/// with its status, snapshot, start and version as columns, the record's JSON, and its changes (`getChanges`) as a
/// column of their own, so a list of jobs never reads them. A partial unique index holds one active job per tenant.
extension SQLTransaction {
    static let recoveryJobColumns = "record, version"

    func recoveryJobs(tenant: String, statuses: [RecoveryJobRecord.Status]?) async throws -> [RecoveryJobRecord] {
        var sql = "SELECT \(Self.recoveryJobColumns) FROM recovery_jobs WHERE tenant = ?"
        var binds: [SQLValue] = [.text(tenant)]
        if let statuses {
            guard !statuses.isEmpty else { return [] }
            sql += " AND status IN (\(Self.marks(statuses.count)))"
            binds += statuses.map { .text($0.rawValue) }
        }
        return try await rows(sql + " ORDER BY id DESC", binds).map(Self.recoveryJob)
    }

    func recoveryJob(tenant: String, id: String) async throws -> RecoveryJobRecord? {
        try await rows("SELECT \(Self.recoveryJobColumns) FROM recovery_jobs WHERE tenant = ? AND id = ?", [.text(tenant), .text(id.lowercased())])
            .first.map(Self.recoveryJob)
    }

    func recoveryJobChanges(tenant: String, id: String) async throws -> [JSONValue]? {
        guard let text = try await rows("SELECT changes FROM recovery_jobs WHERE tenant = ? AND id = ?", [.text(tenant), .text(id.lowercased())])
            .first?.first?.text
        else { return nil }
        guard case .array(let changes) = try JSONParser.parse(text) else { throw StoreError(message: "A recovery job's changes could not be decoded.") }
        return changes
    }

    func lockedRecoveryJob(tenant: String, id: String) async throws -> RecoveryJobRecord? {
        // SQLite: the transaction holds the one write lock already (BEGIN IMMEDIATE).
        guard dialect.isPostgres else { return try await recoveryJob(tenant: tenant, id: id) }
        return try await rows("SELECT \(Self.recoveryJobColumns) FROM recovery_jobs WHERE tenant = ? AND id = ? FOR UPDATE",
                              [.text(tenant), .text(id.lowercased())]).first.map(Self.recoveryJob)
    }

    func insertRecoveryJob(_ job: RecoveryJobRecord) async throws {
        // DO NOTHING without a target covers the primary key and the one-active-job index on both databases.
        guard try await insertRecoveryJob(job, changes: "[]").isEmpty else { return }
        let taken = try await rows("SELECT 1 FROM recovery_jobs WHERE tenant = ? AND id = ?", [.text(job.tenant), .text(job.id)])
        if !taken.isEmpty { throw DirectoryError.duplicate("id") }
        throw DirectoryError(.conflict, "A difference report or recovery job is already in progress for this tenant; wait for it or cancel it.")
    }

    /// Inserts a job's row unless it conflicts; returns the inserted id (none on a conflict).
    func insertRecoveryJob(_ job: RecoveryJobRecord, changes: String) async throws -> [[SQLValue]] {
        try await rows(
            """
            INSERT INTO recovery_jobs (tenant, id, type, status, snapshot, started_at, version, record, changes)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id
            """,
            [.text(job.tenant), .text(job.id), .text(job.type.rawValue), .text(job.status.rawValue), .text(job.snapshotId),
             .text(job.jobStartDateTime), .int(job.version), .text(try Self.encode(job)), .text(changes)])
    }

    func replaceRecoveryJob(_ job: RecoveryJobRecord, changes: [JSONValue]?, expectedVersion: Int64) async throws -> Bool {
        // The version in the WHERE clause is the compare-and-set (on PostgreSQL a second writer waits for the first's
        // row lock and then finds the version changed; SQLite has one writer).
        var sql = "UPDATE recovery_jobs SET status = ?, version = ?, record = ?"
        var binds: [SQLValue] = [.text(job.status.rawValue), .int(job.version), .text(try Self.encode(job))]
        if let changes {
            sql += ", changes = ?"
            binds.append(.text(JSONValue.array(changes).serialized))
        }
        binds += [.text(job.tenant), .text(job.id), .int(expectedVersion)]
        return !(try await rows(sql + " WHERE tenant = ? AND id = ? AND version = ? RETURNING id", binds)).isEmpty
    }

    static let recoveryJobEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    static func encode(_ job: RecoveryJobRecord) throws -> String {
        String(decoding: try recoveryJobEncoder.encode(job), as: UTF8.self)
    }

    static func recoveryJob(_ row: [SQLValue]) throws -> RecoveryJobRecord {
        guard case .text(let record) = row[0], let version = row[1].int else {
            throw StoreError(message: "A stored recovery job could not be decoded.")
        }
        var job = try JSONDecoder().decode(RecoveryJobRecord.self, from: Data(record.utf8))
        job.version = version
        return job
    }
}

/// Recovery jobs leave the Graph objects table (where they were `recoveryJob` objects, their changes and a cancel in
/// `_changes` and `_cancel` members) for `recovery_jobs`. A job moves over as its typed record with its changes, and its
/// object goes. The step runs in the migration's transaction (one node at a time); a job already moved stays as it is.
extension Migrations {
    static let recoveryJobTable = [
        """
        CREATE TABLE IF NOT EXISTS recovery_jobs (
          tenant TEXT NOT NULL, id TEXT NOT NULL, type TEXT NOT NULL, status TEXT NOT NULL, snapshot TEXT NOT NULL, started_at TEXT NOT NULL,
          version BIGINT NOT NULL, record TEXT NOT NULL, changes TEXT NOT NULL, PRIMARY KEY (tenant, id))
        """,
        "CREATE INDEX IF NOT EXISTS recovery_jobs_by_snapshot ON recovery_jobs (tenant, snapshot, id)",
        "CREATE INDEX IF NOT EXISTS recovery_jobs_by_status ON recovery_jobs (tenant, status, id)",
        // One job in progress per tenant, held by the database (two nodes starting one at once: the second is refused).
        "CREATE UNIQUE INDEX IF NOT EXISTS recovery_jobs_one_active ON recovery_jobs (tenant) WHERE status IN ('initialized', 'calculating', 'running')",
    ]

    static let legacyRecoveryJobKind = "recoveryJob"

    /// Moves every `recoveryJob` object, a page at a time in key order, then removes them from the objects table.
    static func moveRecoveryJobs(_ session: any SQLSession, _ d: SQLDialect) async throws {
        let tx = SQLTransaction(session: session, dialect: d)
        var after: (tenant: String, id: String)?
        while true {
            var sql = "SELECT tenant, id, \(d.bodyText) FROM objects WHERE kind = '\(legacyRecoveryJobKind)'"
            var binds: [SQLValue] = []
            if let after {
                sql += " AND (tenant > ? OR (tenant = ? AND id > ?))"
                binds = [.text(after.tenant), .text(after.tenant), .text(after.id)]
            }
            let page = try await session.execute(sql + " ORDER BY tenant, id LIMIT 500", binds)
            for row in page {
                guard case .text(let tenant) = row[0], case .text(let id) = row[1], case .text(let text) = row[2],
                      case .object(let body) = try JSONParser.parse(text)
                else { throw StoreError(message: "A recovery job could not be decoded.") }
                after = (tenant, id)
                guard var job = legacyRecoveryJob(tenant: tenant, id: id, body) else { continue }
                let changes = JSONValue.array(body["_changes"]?.arrayValue ?? []).serialized
                if try await tx.insertRecoveryJob(job, changes: changes).isEmpty, job.status.isActive,
                   try await tx.recoveryJob(tenant: tenant, id: id) == nil {
                    // A second job in progress in one tenant (which the old rows could not rule out): it stops here.
                    job.status = .abandoned
                    _ = try await tx.insertRecoveryJob(job, changes: changes)
                }
            }
            if page.count < 500 { break }
        }
        _ = try await session.execute("DELETE FROM objects WHERE kind = '\(legacyRecoveryJobKind)'", [])
    }

    /// The record a legacy job object held; nil for one without a type or snapshot it could have run with.
    static func legacyRecoveryJob(tenant: String, id: String, _ body: [String: JSONValue]) -> RecoveryJobRecord? {
        func text(_ key: String) -> String? { body[key]?.stringValue }
        func count(_ key: String) -> Int64 { body[key]?.intValue ?? 0 }
        guard let type = text("@odata.type").flatMap(RecoveryJobRecord.JobType.init(rawValue:)), let snapshot = text("snapshotId") else { return nil }
        var job = RecoveryJobRecord(
            tenant: tenant, id: id, type: type, status: text("status").flatMap(RecoveryJobRecord.Status.init(rawValue:)) ?? .failed,
            snapshotId: snapshot, comparisonSnapshotId: text("comparisonSnapshotId"), targetStateDateTime: text("targetStateDateTime") ?? "",
            filteringCriteria: body["filteringCriteria"] ?? .null, jobStartDateTime: text("jobStartDateTime") ?? "")
        job.jobCompletionDateTime = text("jobCompletionDateTime")
        job.totalChangedObjectsCalculated = count("totalChangedObjectsCalculated")
        job.totalChangedLinksCalculated = count("totalChangedLinksCalculated")
        job.totalObjectsModified = count("totalObjectsModified")
        job.totalLinksModified = count("totalLinksModified")
        job.totalFailedChanges = count("totalFailedChanges")
        job.cancelRequested = body["_cancel"]?.boolValue ?? false
        job.resumedDateTime = text("tesseraResumedDateTime")
        job.handedBackDateTime = text("tesseraHandedBackDateTime")
        job.failureMessage = text("tesseraFailureMessage")
        return job
    }
}
