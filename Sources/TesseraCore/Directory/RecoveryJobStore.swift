/// Backup and Recovery's jobs (difference reports and recoveries) are the service's own bookkeeping, not directory
/// objects: each is a typed record in a table of its own (`recovery_jobs`), with what is looked up (tenant, id, status,
/// snapshot, start) as columns, the record's `Codable` JSON, and the job's changes in a column of their own (read only
/// by `getChanges`). No Graph query, delta, `$batch` or snapshot reads it; Graph's view of a job is rendered from it.

/// One difference report (`recoveryPreviewJob`) or recovery (`recoveryJob`).
public struct RecoveryJobRecord: Codable, Sendable, Equatable {
    /// Graph's type of the job.
    public enum JobType: String, Codable, Sendable {
        case preview = "#microsoft.graph.entraRecoveryServices.recoveryPreviewJob"
        case recovery = "#microsoft.graph.entraRecoveryServices.recoveryJob"
    }

    /// Where the job is in its life; an active job (``isActive``) holds its tenant's one place for a running job.
    public enum Status: String, Codable, Sendable, CaseIterable {
        case initialized, calculating, running, successful, failed, abandoned

        public var isActive: Bool { self == .initialized || self == .calculating || self == .running }
        /// The statuses of a job in progress.
        public static let active: [Status] = allCases.filter(\.isActive)
    }

    public var tenant: String
    public var id: String
    public var type: JobType
    public var status: Status
    /// The snapshot the job goes back to (or compares from), and for a difference report the later one it compares with.
    public var snapshotId: String
    public var comparisonSnapshotId: String?
    /// The snapshot's time, as Graph shows it.
    public var targetStateDateTime: String
    public var jobStartDateTime: String
    public var jobCompletionDateTime: String?
    public var totalChangedObjectsCalculated: Int64
    public var totalChangedLinksCalculated: Int64
    /// A recovery's outcome (not shown for a difference report).
    public var totalObjectsModified: Int64
    public var totalLinksModified: Int64
    public var totalFailedChanges: Int64
    /// A cancel was asked for: the runner stops before its next batch.
    public var cancelRequested: Bool
    /// When a node took the job up after its node stopped (`tesseraResumedDateTime`), when its node handed it back
    /// while stopping (`tesseraHandedBackDateTime`), and why it failed (`tesseraFailureMessage`).
    public var resumedDateTime: String?
    public var handedBackDateTime: String?
    public var failureMessage: String?
    /// Counts the record's writes: a replace names the version it read (compare-and-set).
    public var version: Int64
    /// `filteringCriteria` as its JSON text ("null" when none), so the record stays plain `Codable`.
    private var criteria: String

    /// The `filteringCriteria` the job was started with (`.null` when none).
    public var filteringCriteria: JSONValue {
        get { (try? JSONParser.parse(criteria)) ?? .null }
        set { criteria = newValue.serialized }
    }

    public init(tenant: String, id: String, type: JobType, status: Status, snapshotId: String, comparisonSnapshotId: String? = nil,
                targetStateDateTime: String, filteringCriteria: JSONValue, jobStartDateTime: String) {
        self.tenant = tenant
        self.id = id
        self.type = type
        self.status = status
        self.snapshotId = snapshotId
        self.comparisonSnapshotId = comparisonSnapshotId
        self.targetStateDateTime = targetStateDateTime
        self.jobStartDateTime = jobStartDateTime
        self.jobCompletionDateTime = nil
        self.totalChangedObjectsCalculated = 0
        self.totalChangedLinksCalculated = 0
        self.totalObjectsModified = 0
        self.totalLinksModified = 0
        self.totalFailedChanges = 0
        self.cancelRequested = false
        self.version = 1
        self.criteria = filteringCriteria.serialized
    }

    /// The job as Graph shows it (without `@odata.context`).
    public var graphView: JSONValue {
        var fields: [String: JSONValue] = [
            "@odata.type": .string(type.rawValue), "id": .string(id), "status": .string(status.rawValue),
            "jobStartDateTime": .string(jobStartDateTime), "jobCompletionDateTime": .optional(jobCompletionDateTime),
            "targetStateDateTime": .string(targetStateDateTime), "filteringCriteria": filteringCriteria,
            "totalChangedObjectsCalculated": .int(totalChangedObjectsCalculated), "totalChangedLinksCalculated": .int(totalChangedLinksCalculated),
            "snapshotId": .string(snapshotId), "comparisonSnapshotId": .optional(comparisonSnapshotId),
        ]
        if type == .recovery {
            fields["totalFailedChanges"] = .int(totalFailedChanges)
            fields["totalObjectsModified"] = .int(totalObjectsModified)
            fields["totalLinksModified"] = .int(totalLinksModified)
        }
        if let resumedDateTime { fields["tesseraResumedDateTime"] = .string(resumedDateTime) }
        if let handedBackDateTime { fields["tesseraHandedBackDateTime"] = .string(handedBackDateTime) }
        if let failureMessage { fields["tesseraFailureMessage"] = .string(failureMessage) }
        return .object(fields)
    }
}

/// The recovery jobs a read may see.
public protocol RecoveryJobReader: Sendable {
    /// The tenant's jobs, newest first; only those in `statuses` when given.
    func recoveryJobs(tenant: String, statuses: [RecoveryJobRecord.Status]?) async throws -> [RecoveryJobRecord]
    func recoveryJob(tenant: String, id: String) async throws -> RecoveryJobRecord?
    /// A job's changes (each as `getChanges` shows it); nil when there is no such job.
    func recoveryJobChanges(tenant: String, id: String) async throws -> [JSONValue]?
}

/// The recovery jobs' writes, each in the caller's transaction (a job is recorded with its lease, finished with the
/// lease's end).
public protocol RecoveryJobWriter: RecoveryJobReader {
    /// Adds a job with no changes; throws `DirectoryError` `conflict` when the tenant has an active job already (the
    /// database holds one active job per tenant), `duplicate("id")` when its id is taken.
    func insertRecoveryJob(_ job: RecoveryJobRecord) async throws
    /// The job, read with its row locked until the transaction ends (PostgreSQL `FOR UPDATE`; SQLite's one writer), so of
    /// two nodes changing it at once (a cancel beside the runner's progress) the second reads what the first wrote.
    func lockedRecoveryJob(tenant: String, id: String) async throws -> RecoveryJobRecord?
    /// Replaces the job (its changes too, when given) if its stored version is still `expectedVersion`; false when it
    /// is gone or another writer changed it first.
    func replaceRecoveryJob(_ job: RecoveryJobRecord, changes: [JSONValue]?, expectedVersion: Int64) async throws -> Bool
}
