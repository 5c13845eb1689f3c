/// Recovery jobs are not directory objects: no write of a batch reads or writes one, so a batch's pending write refuses
/// them rather than letting one bypass the held writes.
extension PendingWrites {
    private static func recoveryJobsOutsideBatch() -> DirectoryError {
        DirectoryError(.internalError, "Backup and Recovery's jobs are not directory writes and cannot be part of a batch.")
    }

    func recoveryJobs(tenant: String, statuses: [RecoveryJobRecord.Status]?) async throws -> [RecoveryJobRecord] {
        throw Self.recoveryJobsOutsideBatch()
    }
    func recoveryJob(tenant: String, id: String) async throws -> RecoveryJobRecord? { throw Self.recoveryJobsOutsideBatch() }
    func recoveryJobChanges(tenant: String, id: String) async throws -> [JSONValue]? { throw Self.recoveryJobsOutsideBatch() }
    func insertRecoveryJob(_ job: RecoveryJobRecord) async throws { throw Self.recoveryJobsOutsideBatch() }
    func lockedRecoveryJob(tenant: String, id: String) async throws -> RecoveryJobRecord? { throw Self.recoveryJobsOutsideBatch() }
    func replaceRecoveryJob(_ job: RecoveryJobRecord, changes: [JSONValue]?, expectedVersion: Int64) async throws -> Bool {
        throw Self.recoveryJobsOutsideBatch()
    }
}
