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
    static let batchObjects = 400
    static let membersPerChunk = 3_000

    @discardableResult
    public func run(_ request: Request) async throws -> CrossTenantSyncReport {
        let tenant = request.tenant
        let settings = try await SynchronizationSettings.load(tenant: tenant.id, store: app.store)
        guard let configuration = settings.servicePrincipals[request.servicePrincipalID],
              let job = configuration.jobs.first(where: { $0.id == request.jobID }) else { throw DirectoryError.notFound(request.jobID) }
        let began = app.clock.now
        let runID = Identifier.makeTimeOrdered(at: began)
        var report = CrossTenantSyncReport()
        var objects = CrossTenantSyncScope.Objects()
        if let target = configuration.targetTenantID {
            objects = try await CrossTenantSyncScope(store: app.store).read(tenant: tenant.id, job: job, syncAll: configuration.syncAll,
                                                                            subjects: request.subjects)
            let access = try await app.directory.crossTenantAccess(tenant: tenant.id, partner: target)
            let outbound = access.partner?.settings.automaticUserConsentSettings?.outboundAllowed
                ?? access.defaults.automaticUserConsentSettings?.outboundAllowed ?? false
            let template = CrossTenantSyncBatch(runID: runID, jobID: job.id, sourceTenantID: tenant.id,
                                                sourceIssuer: IdentityPlatform(app: app).issuer(tenant: tenant.id, base: baseURL),
                                                automaticConsentOutbound: outbound, isFull: request.subjects == nil,
                                                forceDeletes: request.forceDeletes, deleteThreshold: configuration.deleteThreshold)
            let transport = try await CrossTenantSyncTransport(app: app, target: target, secrets: configuration.secrets)
            for batch in Self.batches(objects, template: template) {
                let answer = try await transport.send(batch)
                report.merge(answer)
                if answer.status == "refused" { break }
            }
            if report.status == "refused" { report.skipped = objects.users.count + objects.groups.count }
        } else {
            report.status = "refused"
            report.refusal = .init(code: "CredentialsMissing", message: "The job has no target tenant: save the secret CompanyId first.")
        }
        try await record(report, objects: objects, request: request, job: job, runID: runID, began: began)
        return report
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
