import Foundation
public import Sync
public import TesseraCore

/// Runs a source tenant's cross-tenant synchronization job: reads what is in scope (`CrossTenantSyncScope`), pushes it
/// to the target in batches — in process when the target is a tenant of this deployment, over HTTPS to the target's
/// deployment when the job's secrets name one (`BaseAddress`, `SecretToken`) — and records what the target did:
/// the job's status and a provisioning log entry (`/auditLogs/provisioning`) per object created, updated, deleted,
/// skipped or failed.
public struct CrossTenantSyncRunner: Sendable {
    let app: TesseraApp
    /// This deployment's URL (the source's issuer is built from it).
    let baseURL: String

    public init(app: TesseraApp, baseURL: String) {
        self.app = app
        self.baseURL = baseURL
    }

    /// What a run is asked to do.
    public struct Request: Sendable {
        public var tenant: TenantRecord
        public var servicePrincipalID: String
        public var jobID: String
        /// Provision on demand: only these source objects (no deletions of others).
        public var subjects: Set<String>?
        public var forceDeletes = false

        public init(tenant: TenantRecord, servicePrincipalID: String, jobID: String, subjects: Set<String>? = nil, forceDeletes: Bool = false) {
            self.tenant = tenant
            self.servicePrincipalID = servicePrincipalID
            self.jobID = jobID
            self.subjects = subjects
            self.forceDeletes = forceDeletes
        }
    }

    /// Objects a batch holds (each group's members count as objects too, so a batch stays under the target's body limit).
    /// (Task-local so that tests make runs of several batches from a few objects.)
    @TaskLocal static var batchObjects = 400
    static let membersPerChunk = 3_000

    /// Runs the job once. A scheduled (whole) run holds the job's lease (``SyncRunLease``; ``SyncRunInProgress`` when
    /// another node holds it), writes each batch's provisioning log entries and its checkpoint once the target answered
    /// it, and, on a node that is draining, stops there and hands the run back; the node that takes it up (or a node
    /// whose lease ran out) resumes it with the same run id from the objects not yet sent.
    @discardableResult
    public func run(_ request: Request) async throws -> CrossTenantSyncReport {
        let tenant = request.tenant
        let settings = try await SynchronizationSettings.load(tenant: tenant.id, store: app.store)
        guard let configuration = settings.servicePrincipals[request.servicePrincipalID],
              let job = configuration.jobs.first(where: { $0.id == request.jobID }) else { throw DirectoryError.notFound(request.jobID) }
        var began = app.clock.now
        var runID = Identifier.makeTimeOrdered(at: began)
        var report = CrossTenantSyncReport()
        var objects = CrossTenantSyncScope.Objects()
        var keeper: SyncRunKeeper?, resumed: String?
        var progress = CrossTenantSyncProgress(runID: runID, began: began)
        if let target = configuration.targetTenantID {
            if request.subjects == nil {
                let work = Self.work(job: job.id)
                guard let (lease, saved) = try await SyncRunLeases.take(store: app.store, tenant: tenant.id, work: work, now: app.clock.now) else {
                    throw SyncRunInProgress(tenant: tenant.id, work: work)
                }
                keeper = SyncRunKeeper(lease)
                if let saved, let before = CrossTenantSyncProgress(text: saved) {
                    progress = before
                    (runID, began, report) = (before.runID, before.began, before.report)
                    resumed = Timestamp.format(app.clock.now)
                }
            }
            let renewal = Task { [keeper, app] in await keeper?.keep(store: app.store, clock: app.clock) }
            defer { renewal.cancel() }
            do {
                objects = CrossTenantSyncProgress.ordered(try await CrossTenantSyncScope(store: app.store).read(
                    tenant: tenant.id, job: job, syncAll: configuration.syncAll, subjects: request.subjects))
                if try await push(objects, to: target, request: request, job: job, progress: progress, keeper: keeper, report: &report) {
                    return report
                }
            } catch {
                if let keeper, Task.isCancelled || error is CancellationError || app.lifecycle.isDraining {
                    // Cancelled at the end of a shutdown's timeout, or failed while the node drained: handed back at the last
                    // batch answered, from a task of its own (this one's queries may not run any more).
                    await Task { try? await self.handBack(keeper, request: request) }.value
                }
                // Otherwise the lease runs out by itself and a node resumes the run from its last batch.
                throw error
            }
        } else {
            report.status = "refused"
            report.refusal = .init(code: "CredentialsMissing", message: "The job has no target tenant: save the secret CompanyId first.")
        }
        try await record(report, objects: objects, request: request, job: job, runID: runID, began: began, resumed: resumed)
        if let keeper { try await SyncRunLeases.end(store: app.store, keeper.initial) }
        return report
    }

    /// Sends what is left of `objects` to the target in batches, merging the answers into `report` (their entries go
    /// to the provisioning log at once). Returns true when the run stopped before its end: handed back (the node is
    /// draining) or its lease lost; the caller then records nothing.
    func push(_ objects: CrossTenantSyncScope.Objects, to target: String, request: Request, job: CrossTenantSyncJob, progress: CrossTenantSyncProgress,
              keeper: SyncRunKeeper?, report: inout CrossTenantSyncReport) async throws -> Bool {
        let tenant = request.tenant
        let configuration = try await SynchronizationSettings.load(tenant: tenant.id, store: app.store).servicePrincipals[request.servicePrincipalID]
        let secrets = configuration?.secrets ?? [:]
        var progress = progress
        let (runID, began) = (progress.runID, progress.began)
        let access = try await app.directory.crossTenantAccess(tenant: tenant.id, partner: target)
        let outbound = access.partner?.settings.automaticUserConsentSettings?.outboundAllowed
            ?? access.defaults.automaticUserConsentSettings?.outboundAllowed ?? false
        let template = CrossTenantSyncBatch(runID: runID, jobID: job.id, sourceTenantID: tenant.id,
                                            sourceIssuer: IdentityPlatform(app: app).issuer(tenant: tenant.id, base: baseURL),
                                            automaticConsentOutbound: outbound, isFull: request.subjects == nil,
                                            forceDeletes: request.forceDeletes, deleteThreshold: configuration?.deleteThreshold)
        let transport = try await CrossTenantSyncTransport(app: app, target: target, secrets: secrets)
        var sent = 0
        for batch in Self.batches(progress.remaining(objects), template: template) {
            let answer = try await transport.send(batch)
            if answer.status == "refused" {
                report.merge(answer)
                break
            }
            var counts = answer
            counts.entries = []
            try await writeLogs(answer, objects: objects, request: request, job: job, runID: runID, target: secrets["CompanyId"] ?? "",
                                duration: Int(app.clock.now.timeIntervalSince(began) * 1000))
            report.merge(counts)
            guard let keeper, !batch.isLast else { continue }
            progress.advance(past: batch)
            progress.report = report
            sent += 1
            guard try await keeper.checkpoint(store: app.store, progress: progress.text, now: app.clock.now) else { return true }
            if let seam = Self.batchCommitted { try await seam(sent) }
            if keeper.mustStop(now: app.clock.now) { return true }
            if app.lifecycle.isDraining {
                try await handBack(keeper, request: request)
                return true
            }
        }
        if report.status == "refused" { report.skipped = objects.users.count + objects.groups.count }
        return false
    }

    /// The run's batches: users, then groups (a group with many members split over several), the last marked.
    static func batches(_ objects: CrossTenantSyncScope.Objects, template: CrossTenantSyncBatch) -> [CrossTenantSyncBatch] {
        var out: [CrossTenantSyncBatch] = []
        var current = template, size = 0
        func flush() {
            out.append(current)
            current = template
            size = 0
        }
        for user in objects.users {
            if size + 1 > batchObjects { flush() }
            current.users.append(user)
            size += 1
        }
        for group in objects.groups {
            let chunks = stride(from: 0, to: max(group.memberIDs.count, 1), by: membersPerChunk).map {
                Array(group.memberIDs[$0..<min($0 + membersPerChunk, group.memberIDs.count)])
            }
            for chunk in chunks {
                let cost = 1 + chunk.count / 10
                if size > 0, size + cost > batchObjects { flush() }
                var part = group
                part.memberIDs = chunk
                current.groups.append(part)
                size += cost
            }
        }
        current.isLast = true
        out.append(current)
        return out
    }
}
