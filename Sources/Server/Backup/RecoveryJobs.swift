import Backup
import Foundation
import Logging
import TesseraCore

/// Difference reports (`recoveryPreviewJob`) and recoveries (`recoveryJob`) as Graph's long-running jobs: a typed
/// record per job (``RecoveryJobRecord`` in `recovery_jobs`: status, totals, its changes beside it), run in the background,
/// one at a time per tenant. The node running a job holds
/// its lease (``RecoveryLease``, renewed every 10 s); a job whose lease ran out (its node was killed) or was handed back
/// (its node stopped) is taken up by another node within a second (``Handbacks``), or at start: a recovery works from
/// the difference against the directory as it is, so running it again finishes what is left.
struct RecoveryJobs: Sendable {
    let app: TesseraApp
    static let previewType = RecoveryJobRecord.JobType.preview.rawValue
    static let recoveryType = RecoveryJobRecord.JobType.recovery.rawValue
    /// The statuses of a job in progress, as Graph shows them.
    static let active = Set(RecoveryJobRecord.Status.active.map(\.rawValue))
    let logger = Logger(label: "tessera.recovery")

    /// The identity a job's changes are audited under.
    static func actor(_ jobID: String) -> Actor {
        Actor(kind: .application, id: jobID, displayName: "Backup and Recovery job \(jobID)")
    }

    // MARK: Reading

    /// The tenant's jobs, newest first.
    func jobs(tenant: String) async throws -> [RecoveryJobRecord] {
        try await app.store.read { tx in try await tx.recoveryJobs(tenant: tenant, statuses: nil) }
    }

    func job(tenant: String, id: String) async throws -> RecoveryJobRecord {
        guard let found = try await app.store.read({ tx in try await tx.recoveryJob(tenant: tenant, id: id) }) else {
            throw DirectoryError.notFound(id)
        }
        return found
    }

    /// A job's changes, as `getChanges` shows them.
    func changes(tenant: String, id: String) async throws -> [JSONValue] {
        guard let found = try await app.store.read({ tx in try await tx.recoveryJobChanges(tenant: tenant, id: id) }) else {
            throw DirectoryError.notFound(id)
        }
        return found
    }

    static func render(_ job: RecoveryJobRecord) -> JSONValue { job.graphView }

    // MARK: Starting

    /// Validates a `POST /directory/recovery/jobs` body, records the job and starts it.
    func start(tenant: String, body: [String: JSONValue]) async throws -> RecoveryJobRecord {
        guard try await app.backup.isEnabled(tenant: tenant) else {
            throw DirectoryError(.accessDenied, "Backup and Recovery is not part of this tenant's plan; an operator turns it on with `tessera backup enable`.")
        }
        let typeName = body["@odata.type"]?.stringValue ?? ""
        guard let type = RecoveryJobRecord.JobType(rawValue: typeName) else {
            throw DirectoryError.badRequest("'@odata.type' must be \(Self.previewType) (a difference report) or \(Self.recoveryType).")
        }
        for key in body.keys where !["@odata.type", "filteringCriteria", "targetStateDateTime", "snapshotId", "comparisonSnapshotId"].contains(key) {
            throw DirectoryError.badRequest("Property '\(key)' does not exist on type '\(typeName.dropFirst())'.")
        }
        let snapshots = try await app.backup.snapshots(tenant: tenant)
        guard !snapshots.isEmpty else { throw DirectoryError.badRequest("The tenant has no snapshot yet.") }
        // The snapshot: named, or the newest taken at or before targetStateDateTime.
        let snapshot: SnapshotRecord
        if let id = body["snapshotId"]?.stringValue {
            guard let found = snapshots.first(where: { $0.id == id.lowercased() }) else { throw DirectoryError.badRequest("No snapshot '\(id)'.") }
            snapshot = found
        } else if let text = body["targetStateDateTime"]?.stringValue {
            guard let when = Timestamp.parse(text) else { throw DirectoryError.badRequest("'targetStateDateTime' must be an ISO 8601 date and time.") }
            guard let found = snapshots.last(where: { (Timestamp.parse($0.createdAt) ?? .distantFuture) <= when }) else {
                throw DirectoryError.badRequest("No snapshot was taken at or before \(text); the oldest is from \(snapshots[0].createdAt).")
            }
            snapshot = found
        } else {
            throw DirectoryError.badRequest("Say which state to go back to: 'targetStateDateTime' (or Tessera's 'snapshotId').")
        }
        var comparison: String?
        if let other = body["comparisonSnapshotId"]?.stringValue {
            guard type == .preview else { throw DirectoryError.badRequest("'comparisonSnapshotId' is for difference reports.") }
            guard let found = snapshots.first(where: { $0.id == other.lowercased() }) else { throw DirectoryError.badRequest("No snapshot '\(other)'.") }
            comparison = found.id
        }
        _ = try Self.filter(body["filteringCriteria"])
        let job = RecoveryJobRecord(
            tenant: tenant, id: Identifier.makeTimeOrdered(at: app.clock.now), type: type, status: .calculating, snapshotId: snapshot.id,
            comparisonSnapshotId: comparison, targetStateDateTime: snapshot.createdAt, filteringCriteria: body["filteringCriteria"] ?? .null,
            jobStartDateTime: Timestamp.format(app.clock.now))
        // One job per tenant at a time: checked and recorded in one write transaction, with the job's lease (and held by
        // the database's one-active-job index should two nodes start one at once).
        let leaseStart = app.clock.now
        let lease = try await app.store.write { tx in
            if let running = try await tx.recoveryJobs(tenant: tenant, statuses: RecoveryJobRecord.Status.active).first {
                throw DirectoryError(.conflict, "A difference report or recovery job (\(running.id)) is already in progress for this tenant; wait for it or cancel it.")
            }
            try await tx.insertRecoveryJob(job)
            guard let lease = try await RecoveryLease.take(tx, tenant: tenant, work: job.id, now: leaseStart) else {
                throw DirectoryError(.conflict, "Recovery job \(job.id) is already held by another node.")
            }
            return lease
        }
        launch(lease)
        return job
    }

    /// Runs the job whose lease this node holds in the background (one of the app's jobs that graceful shutdown waits
    /// for), renewing the lease while it runs.
    func launch(_ lease: RecoveryLease) {
        let runner = self
        app.jobs.start {
            let keeper = LeaseKeeper(lease)
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await keeper.keep(app: runner.app, logger: runner.logger) }
                await runner.run(tenant: lease.tenant, id: lease.work, keeper: keeper)
                group.cancelAll()
            }
        }
    }

    /// Takes up `job` if its lease allows (none, run out or handed back), in one transaction that also checks the job is
    /// still active and stamps `tesseraResumedDateTime`; returns the lease taken (the caller launches it), or nil.
    func takeUp(tenant: String, job id: String) async throws -> RecoveryLease? {
        let now = app.clock.now
        return try await app.store.write { tx in
            guard let lease = try await RecoveryLease.take(tx, tenant: tenant, work: id, now: now) else { return nil }
            guard var job = try await tx.lockedRecoveryJob(tenant: tenant, id: id), job.status.isActive else {
                _ = try await lease.end(tx)  // the job ended (or is gone): its lease goes too
                return nil
            }
            let version = job.version
            job.resumedDateTime = Timestamp.format(now)
            job.version = version + 1
            guard try await tx.replaceRecoveryJob(job, changes: nil, expectedVersion: version) else { throw Self.changedMeanwhile(id) }
            return lease
        }
    }

    /// Jobs left active by a server that stopped (at start): each is taken up unless another node holds its lease.
    func resumeInterrupted() async {
        do {
            for tenant in try await app.store.read({ tx in try await tx.tenants() }) {
                let active = try await app.store.read { tx in try await tx.recoveryJobs(tenant: tenant.id, statuses: RecoveryJobRecord.Status.active) }
                for job in active {
                    guard let lease = try await takeUp(tenant: tenant.id, job: job.id) else { continue }
                    logger.info("Resuming recovery job \(job.id) of tenant \(tenant.id) after a restart")
                    launch(lease)
                }
            }
        } catch {
            logger.error("Could not resume recovery jobs: \(String(describing: error))")
        }
    }

    static func filter(_ value: JSONValue?) throws(DirectoryError) -> RecoveryFilter {
        guard let value, value != .null else { return .all }
        let type = value["@odata.type"]?.stringValue ?? ""
        if type.hasSuffix("recoveryJobEntityNamesFilter") {
            guard let types = value["entityTypes"]?.arrayValue?.compactMap(\.stringValue), !types.isEmpty else {
                throw DirectoryError.badRequest("'entityTypes' must name at least one entity type.")
            }
            try RecoveryFilter.checkTypes(types)
            return .entityTypes(Set(types.map { $0.lowercased() }))
        }
        if type.hasSuffix("recoveryJobEntityNameAndIdsFilter") {
            var byType: [String: Set<String>] = [:]
            for item in value["filterValues"]?.arrayValue ?? [] {
                guard let entity = item["entityType"]?.stringValue, let ids = item["entityIds"]?.arrayValue?.compactMap(\.stringValue) else {
                    throw DirectoryError.badRequest("Each filter value needs 'entityType' and 'entityIds'.")
                }
                try RecoveryFilter.checkTypes([entity])
                byType[entity.lowercased(), default: []].formUnion(ids.map { $0.lowercased() })
            }
            guard !byType.isEmpty else { throw DirectoryError.badRequest("'filterValues' must name at least one object.") }
            return .ids(byType)
        }
        throw DirectoryError.badRequest("'filteringCriteria' must be a recoveryJobEntityNamesFilter or a recoveryJobEntityNameAndIdsFilter.")
    }

    // MARK: Running

    /// Changes the job, read with its row locked (a cancel and the runner's writes, from two nodes at once, each see the
    /// other's); with `changes`, its changes are replaced too. With `keeper`, only while this node holds its lease (else
    /// throws ``RecoveryLeaseLost``), and with `finish` the lease ends in the same transaction.
    func update(tenant: String, id: String, keeper: LeaseKeeper<RecoveryWork>? = nil, finish: Bool = false, changes: [JSONValue]? = nil,
                _ change: @escaping @Sendable (inout RecoveryJobRecord) throws -> Void) async throws {
        let lease = keeper?.initial
        try await app.store.write { tx in
            if let lease {
                let held = finish ? try await lease.end(tx) : try await lease.holds(tx)
                guard held else { throw RecoveryLeaseLost(job: id) }
            }
            guard var job = try await tx.lockedRecoveryJob(tenant: tenant, id: id) else { return }
            let version = job.version
            try change(&job)
            job.version = version + 1
            guard try await tx.replaceRecoveryJob(job, changes: changes, expectedVersion: version) else { throw Self.changedMeanwhile(id) }
        }
    }

    /// Asks an active job to stop before its next batch; a job that has finished (checked under the same row lock)
    /// refuses.
    func cancel(tenant: String, id: String) async throws {
        try await update(tenant: tenant, id: id) { job in
            guard job.status.isActive else {
                throw DirectoryError.badRequest("The job has finished (\(job.status.rawValue)); there is nothing to cancel.")
            }
            job.cancelRequested = true
        }
    }

    /// The job's row changed between its locked read and its write (which the lock rules out): the write is refused.
    static func changedMeanwhile(_ id: String) -> DirectoryError {
        DirectoryError(.conflict, "Recovery job \(id) was changed by another request; try again.")
    }

    /// Leaves a recovery this node, now shutting down, began for another node to finish: the job stays active and says
    /// when it was handed back, and its lease ends now (one transaction), so another node, which looks once a second
    /// (``Handbacks``), or a node that starts later (``resumeInterrupted()``), takes it up. The changes applied so far
    /// stay applied: the next run works from the difference against the directory as it is then.
    func handBack(tenant: String, id: String, done: Int, keeper: LeaseKeeper<RecoveryWork>) async throws {
        let lease = keeper.initial
        let now = app.clock.now
        try await app.store.write { tx in
            guard try await lease.handBack(tx, now: now) else { throw RecoveryLeaseLost(job: id) }
            guard var job = try await tx.lockedRecoveryJob(tenant: tenant, id: id) else { return }
            let version = job.version
            job.handedBackDateTime = Timestamp.format(now)
            job.version = version + 1
            guard try await tx.replaceRecoveryJob(job, changes: nil, expectedVersion: version) else { throw Self.changedMeanwhile(id) }
        }
        logger.info("Recovery job \(id) of tenant \(tenant) handed back at shutdown after \(done) changes; another node takes it up")
    }

    func run(tenant: String, id: String, keeper: LeaseKeeper<RecoveryWork>) async {
        let start = ContinuousClock.now
        var kind = "recovery"
        do {
            let job = try await job(tenant: tenant, id: id)
            if job.type == .preview { kind = "recoveryPreview" }
            let filter = try Self.filter(job.filteringCriteria)
            if job.type == .preview {
                let changes = try await app.backup.difference(tenant: tenant, from: job.snapshotId, to: job.comparisonSnapshotId)
                    .changes.filter(filter.includes)
                let links = changes.reduce(0) { $0 + $1.links.count }
                let finished = Timestamp.format(app.clock.now)
                try await update(tenant: tenant, id: id, keeper: keeper, finish: true, changes: changes.map(DifferenceReport.render)) { job in
                    job.totalChangedObjectsCalculated = Int64(changes.count)
                    job.totalChangedLinksCalculated = Int64(links)
                    job.status = .successful
                    job.jobCompletionDateTime = finished
                }
                app.telemetry.job(kind: kind, succeeded: true, duration: ContinuousClock.now - start)
                return
            }
            let jobs = self
            let result = try await app.backup.recover(
                tenant: tenant, snapshot: job.snapshotId, filter: filter, directory: app.directory, actor: Self.actor(id),
                shouldStop: {
                    // A node shutting down hands the job back between batches (below) rather than hold its shutdown;
                    // one whose lease was lost or ran out stops, as another node may be running the job now.
                    if jobs.app.lifecycle.isDraining || keeper.mustStop(now: jobs.app.clock.now) { return true }
                    return (try? await jobs.job(tenant: tenant, id: id).cancelRequested) == true
                },
                progress: { done, total in
                    if done == 0 {
                        try? await jobs.update(tenant: tenant, id: id, keeper: keeper) { job in
                            job.status = .running
                            job.totalChangedObjectsCalculated = Int64(total)
                        }
                    }
                })
            if result.stopped, keeper.mustStop(now: app.clock.now) {
                logger.warning("Recovery job \(id) of tenant \(tenant) stopped after \(result.outcomes.count) changes: its lease was lost or ran out; the node that takes it up finishes it")
                return
            }
            if result.stopped, app.lifecycle.isDraining, try await !self.job(tenant: tenant, id: id).cancelRequested {
                try await handBack(tenant: tenant, id: id, done: result.outcomes.count, keeper: keeper)
                app.telemetry.job(kind: kind, succeeded: true, duration: ContinuousClock.now - start)
                return
            }
            let applied = result.outcomes.filter { $0.failure == nil }
            let failed = result.outcomes.filter { $0.failure != nil }
            let outcomes: [JSONValue] = result.outcomes.map { outcome in
                guard case .object(var change) = DifferenceReport.render(outcome.change) else { return .null }
                change["failureMessage"] = .optional(outcome.failure)
                change["tesseraApplied"] = .bool(outcome.failure == nil)
                return .object(change)
            }
            let links = result.planned.reduce(0) { $0 + $1.links.count }
            let linksApplied = applied.reduce(0) { $0 + $1.change.links.count }
            let finished = Timestamp.format(app.clock.now)
            try await update(tenant: tenant, id: id, keeper: keeper, finish: true, changes: outcomes) { job in
                job.totalChangedObjectsCalculated = Int64(result.planned.count)
                job.totalChangedLinksCalculated = Int64(links)
                job.totalObjectsModified = Int64(applied.count)
                job.totalLinksModified = Int64(linksApplied)
                job.totalFailedChanges = Int64(failed.count)
                job.status = result.stopped ? .abandoned : .successful
                job.jobCompletionDateTime = finished
            }
            app.telemetry.job(kind: kind, succeeded: true, duration: ContinuousClock.now - start)
        } catch let lost as RecoveryLeaseLost {
            logger.warning("Recovery job \(id) of tenant \(tenant) stopped: \(lost)")
        } catch {
            app.telemetry.job(kind: kind, succeeded: false, duration: ContinuousClock.now - start)
            logger.error("Recovery job \(id) failed: \(String(describing: error))")
            let message = (error as? DirectoryError)?.message ?? (error as? BackupError)?.description ?? "An unexpected error occurred."
            let finished = Timestamp.format(app.clock.now)
            try? await update(tenant: tenant, id: id, keeper: keeper, finish: true) { job in
                job.status = .failed
                job.failureMessage = message
                job.jobCompletionDateTime = finished
            }
        }
    }
}
