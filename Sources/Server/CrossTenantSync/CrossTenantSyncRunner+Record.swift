import Foundation
import Sync
import TesseraCore

extension ObjectKind {
    /// A provisioning log entry (`provisioningObjectSummary`) of a synchronization job, kept in the source tenant.
    static let provisioningObjectSummary = ObjectKind(rawValue: "provisioningObjectSummary")
}

extension CrossTenantSyncRunner {
    /// How long provisioning log entries are kept (Entra keeps them 30 days).
    static let provisioningLogRetentionDays = 30

    /// Deletes the tenant's provisioning log entries older than ``provisioningLogRetentionDays``; returns how many.
    static func purgeExpiredLogs(tenant: String, store: any DirectoryStore, now: Date) async throws -> Int {
        try await store.purgeRecords(tenant: tenant, kinds: [.provisioningObjectSummary],
                                     olderThan: now.addingTimeInterval(-Double(provisioningLogRetentionDays) * 86_400),
                                     property: "activityDateTime")
    }

    /// Writes the run's outcome into the job (`status`, `lastExecution`, quarantine) and its provisioning log entries.
    /// `resumed`: when this node resumed a run another node handed back or left (the job keeps when it was handed back).
    func record(_ report: CrossTenantSyncReport, objects: CrossTenantSyncScope.Objects, request: Request, job: CrossTenantSyncJob,
                runID: String, began: Date, resumed: String? = nil) async throws {
        let tenant = request.tenant.id
        let ended = app.clock.now
        let (imported, users, groups) = (objects.users.count + objects.groups.count, objects.users.count, objects.groups.count)
        // One transaction, the setting locked from the read to the commit: a Graph change of the job (a pause, a
        // scoping filter, saved secrets) made at once on another node is kept, and this outcome is not undone by it.
        let secrets = try await SynchronizationSettings.update(tenant: tenant, store: app.store) { settings in
            let secrets = settings.servicePrincipals[request.servicePrincipalID]?.secrets ?? [:]
            if var configuration = settings.servicePrincipals[request.servicePrincipalID],
               let index = configuration.jobs.firstIndex(where: { $0.id == job.id }) {
                var updated = configuration.jobs[index]
                let failed = report.status == "refused"
                updated.lastExecution = .init(timeBegan: Timestamp.format(began), timeEnded: Timestamp.format(ended),
                                              state: failed ? "Failed" : report.failed > 0 || report.status != "success" ? "Warning" : "Succeeded",
                                              countImported: imported,
                                              countExported: report.added + report.updated + report.deleted, error: report.refusal)
                if failed {
                    updated.countSuccessiveCompleteFailures += 1
                    updated.statusCode = "Quarantine"
                    updated.quarantine = report.refusal
                } else {
                    updated.countSuccessiveCompleteFailures = 0
                    updated.quarantine = nil
                    updated.lastSuccessfulExecution = updated.lastExecution
                    if updated.scheduleState == "Active" { updated.statusCode = "Active" }
                    updated.pendingDeletions = report.status == "stopped-deletion-threshold-exceeded" ? report.pendingDeletions : 0
                    if updated.pendingDeletions > 0 {
                        // Entra quarantines a job that would delete more than its threshold (TooManyDeletes) until deletions are forced.
                        updated.statusCode = "Quarantine"
                        updated.quarantine = .init(code: "TooManyDeletes",
                                                   message: "\(updated.pendingDeletions) deletions exceed the job's threshold and were not made; restart the job with ForceDeletes to make them.")
                    }
                    if request.subjects == nil {
                        updated.synchronizedUsers = users
                        updated.synchronizedGroups = groups
                    }
                }
                if request.subjects == nil {
                    updated.lastRunAt = Timestamp.format(ended)
                    updated.resumedAt = resumed
                    if resumed == nil { updated.handedBackAt = nil }
                }
                configuration.jobs[index] = updated
                settings.servicePrincipals[request.servicePrincipalID] = configuration
            }
            return secrets
        }
        try await writeLogs(report, objects: objects, request: request, job: job, runID: runID, target: secrets["CompanyId"] ?? "",
                            duration: Int(ended.timeIntervalSince(began) * 1000))
    }

    /// One `provisioningObjectSummary` per entry of the report (for a refused run, one per object in scope, failed with
    /// the refusal), in the source tenant.
    func writeLogs(_ report: CrossTenantSyncReport, objects: CrossTenantSyncScope.Objects, request: Request, job: CrossTenantSyncJob,
                   runID: String, target: String, duration: Int) async throws {
        var entries = report.entries
        if let refusal = report.refusal {
            let named = objects.users.map { ($0.id, $0.displayName, "User") } + objects.groups.map { ($0.id, $0.displayName, "Group") }
            entries = named.map { id, name, type in
                CrossTenantSyncReport.Entry(sourceID: id, sourceDisplayName: name, identityType: type, action: "other", status: "failure",
                                            targetID: nil, reason: refusal.message, error: refusal)
            }
        }
        let tenant = request.tenant.id, sp = request.servicePrincipalID
        let spName = try await app.store.read { tx in try await tx.object(tenant: tenant, id: sp) }?.body["displayName"]?.stringValue ?? ""
        let now = app.clock.now
        let bodies: [(String, [String: JSONValue])] = entries.map { entry in
            let id = Identifier.makeTimeOrdered(at: now)
            return (id, Self.summary(entry, id: id, at: Timestamp.format(now), target: target, jobID: job.id, runID: runID, servicePrincipal: sp,
                                     servicePrincipalName: spName, duration: duration))
        }
        for start in stride(from: 0, to: bodies.count, by: 500) {
            let slice = Array(bodies[start..<min(start + 500, bodies.count)])
            try await app.store.write { tx in
                for (id, body) in slice {
                    try await tx.insert(StoredObject(tenant: tenant, id: id, kind: .provisioningObjectSummary, body: body))
                }
            }
        }
    }

    /// Graph's `provisioningObjectSummary` for one entry.
    static func summary(_ entry: CrossTenantSyncReport.Entry, id: String, at: String, target: String, jobID: String, runID: String,
                        servicePrincipal: String, servicePrincipalName: String, duration: Int) -> [String: JSONValue] {
        let error: JSONValue = entry.error.map {
            ["errorCode": .string($0.code), "reason": .string($0.message), "errorCategory": "NonServiceFailure", "additionalDetails": nil,
             "recommendedAction": nil]
        } ?? .null
        return [
            "id": .string(id), "activityDateTime": .string(at), "tenantId": .string(target), "jobId": .string(jobID), "cycleId": .string(runID),
            "changeId": .string(Identifier.make()), "provisioningAction": .string(entry.action), "durationInMilliseconds": .int(Int64(duration)),
            "servicePrincipal": ["id": .string(servicePrincipal), "displayName": .string(servicePrincipalName)],
            "sourceSystem": ["id": nil, "displayName": "Azure Active Directory", "details": [:]],
            "targetSystem": ["id": nil, "displayName": "Azure Active Directory (target tenant)",
                             "details": ["ServicePrincipalId": .string(servicePrincipal), "ServicePrincipalDisplayName": .string(servicePrincipalName)]],
            "initiatedBy": ["id": "", "displayName": "Azure AD Provisioning Service", "initiatorType": "system"],
            "sourceIdentity": ["id": .string(entry.sourceID), "displayName": .string(entry.sourceDisplayName), "identityType": .string(entry.identityType),
                               "details": [:]],
            "targetIdentity": ["id": .optional(entry.targetID), "displayName": .string(entry.sourceDisplayName), "identityType": .string(entry.identityType),
                               "details": [:]],
            "provisioningStatusInfo": ["status": .string(entry.status), "errorInformation": error],
            "provisioningSteps": [["name": "EntryExportAdd", "provisioningStepType": "export", "status": .string(entry.status),
                                   "description": .string(entry.reason), "details": [:]]],
            "modifiedProperties": [],
        ]
    }
}
