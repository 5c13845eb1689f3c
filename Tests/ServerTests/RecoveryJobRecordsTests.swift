import Backup
import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

/// Recovery jobs as typed records (issue 15): a job started through Graph is a row of `recovery_jobs`, never an object
/// of the Graph table; Graph answers about it byte for byte as it did when it was one (the shapes below are those the
/// object-backed jobs rendered), a recovery run to completion puts the objects back, and a cancel from one node beside
/// the runner's write from another keeps both. On SQLite and on PostgreSQL.
@Suite("Recovery jobs as typed records, Graph unchanged")
struct RecoveryJobRecordsTests {
    static let users: JSONValue = ["@odata.type": "#microsoft.graph.entraRecoveryServices.recoveryJobEntityNamesFilter", "entityTypes": ["user"]]

    /// A recovery job as Graph showed it when jobs were objects (`RecoveryJobs.start`'s members, then the run's).
    static func oldShape(id: String, status: String, at time: String, completed: String?, snapshot: SnapshotRecord, objects: Int64,
                         modified: Int64) -> [String: JSONValue] {
        ["@odata.type": "#microsoft.graph.entraRecoveryServices.recoveryJob", "id": .string(id), "status": .string(status),
         "jobStartDateTime": .string(time), "jobCompletionDateTime": .optional(completed), "targetStateDateTime": .string(snapshot.createdAt),
         "filteringCriteria": users, "totalChangedObjectsCalculated": .int(objects), "totalChangedLinksCalculated": 0,
         "snapshotId": .string(snapshot.id), "comparisonSnapshotId": nil, "totalFailedChanges": 0, "totalObjectsModified": .int(modified),
         "totalLinksModified": 0]
    }

    @Test("a recovery started through Graph is a record and no object; create, get, list, getChanges and cancel answer as before; run to completion it puts the user back",
          arguments: RecoveryLeaseTests.databases)
    func graphUnchanged(_ database: String) async throws {
        try await RecoveryLeaseTests.provisionedCluster(database, nodes: 1) { nodes, clock, tenant in
            let h = Harness(app: nodes[0], clock: clock, tenant: tenant)
            let token = try await h.accessToken()
            let user = await h.graph("POST", "users", token: token, json: [
                "accountEnabled": true, "displayName": "Rec", "mailNickname": "rec", "userPrincipalName": "rec@contoso.test", "jobTitle": "Analyst",
                "passwordProfile": ["password": "Kx9!long-enough-Passw0rd"]])
            let userID = try #require(user.json["id"]?.stringValue)
            let snapshot = try await h.app.backup.snapshot(tenant: tenant.tenantId)
            #expect(await h.graph("PATCH", "users/\(userID)", token: token, json: ["jobTitle": "Director"]).status == 204)
            let now = Timestamp.format(clock.now)
            let context = "\(Harness.base)/v1.0/$metadata#directory/recovery/jobs"

            let created = await h.graph("POST", "directory/recovery/jobs", token: token, json: [
                "@odata.type": "#microsoft.graph.entraRecoveryServices.recoveryJob", "snapshotId": .string(snapshot.id), "filteringCriteria": Self.users])
            #expect(created.status == 201, "\(created.text)")
            let id = try #require(created.json["id"]?.stringValue)
            var expected = Self.oldShape(id: id, status: "calculating", at: now, completed: nil, snapshot: snapshot, objects: 0, modified: 0)
            expected["@odata.context"] = .string(context + "/$entity")
            #expect(created.text == JSONValue.object(expected).serialized)
            await h.app.jobs.idle()

            // Stored as a record, not as an object.
            try await h.app.store.read { tx in
                #expect(try await tx.rawObjects(tenant: tenant.tenantId, ids: [id]).isEmpty, "no row of the objects table")
                #expect(try await tx.query(ObjectQuery(tenant: tenant.tenantId, kinds: [ObjectKind(rawValue: "recoveryJob")])).isEmpty)
                let record = try #require(try await tx.recoveryJob(tenant: tenant.tenantId, id: id))
                #expect(record.status == .successful && record.type == .recovery && record.totalObjectsModified == 1)
            }

            let finished = Self.oldShape(id: id, status: "successful", at: now, completed: now, snapshot: snapshot, objects: 1, modified: 1)
            var read = finished
            read["@odata.context"] = .string(context + "/$entity")
            let got = await h.graph("GET", "directory/recovery/jobs/\(id)", token: token)
            #expect(got.status == 200 && got.text == JSONValue.object(read).serialized, "\(got.text)")
            var underSnapshot = finished
            underSnapshot["@odata.context"] = .string("\(Harness.base)/v1.0/$metadata#directory/recovery/snapshots('\(snapshot.id)')/recoveryJobs/$entity")
            let bySnapshot = await h.graph("GET", "directory/recovery/snapshots/\(snapshot.id)/recoveryJobs/\(id)", token: token)
            #expect(bySnapshot.text == JSONValue.object(underSnapshot).serialized, "\(bySnapshot.text)")
            let listed = await h.graph("GET", "directory/recovery/jobs", token: token)
            #expect(listed.text == JSONValue.object(["@odata.context": .string(context), "value": [.object(finished)]]).serialized, "\(listed.text)")

            let changes = await h.graph("GET", "directory/recovery/jobs/\(id)/getChanges()", token: token)
            let change = try #require(changes.json["value"]?.arrayValue?.first)
            #expect(changes.json["value"]?.arrayValue?.count == 1 && change["id"] == .string(userID), "\(changes.text)")
            #expect(change["tesseraApplied"] == true && change["failureMessage"] == .null)
            #expect(await h.graph("GET", "directory/recovery/jobs/\(id)/getFailedChanges()", token: token).json["value"] == [])
            #expect(await h.graph("GET", "users/\(userID)", token: token, query: [("$select", "jobTitle")]).json["jobTitle"] == "Analyst")

            let late = await h.graph("POST", "directory/recovery/jobs/\(id)/microsoft.graph.entraRecoveryServices.cancel", token: token)
            #expect(late.status == 400 && late.json["error"]?["message"] == "The job has finished (successful); there is nothing to cancel.", "\(late.text)")
        }
    }

    @Test("a cancel through Graph marks the job in progress and changes nothing Graph shows; a second job waits; a cancel on one node beside the runner's write on another keeps both",
          arguments: RecoveryLeaseTests.databases)
    func cancelBesideTheRunner(_ database: String) async throws {
        try await RecoveryLeaseTests.provisionedCluster(database, nodes: 2) { nodes, clock, tenant in
            let h = Harness(app: nodes[0], clock: clock, tenant: tenant)
            let token = try await h.accessToken()
            let snapshot = try await h.app.backup.snapshot(tenant: tenant.tenantId)
            let job = try await RecoveryLeaseTests.activeJob(nodes[0], tenant: tenant.tenantId)
            let before = await h.graph("GET", "directory/recovery/jobs/\(job)", token: token)
            #expect(before.status == 200 && before.json["status"] == "running", "\(before.text)")

            let second = await h.graph("POST", "directory/recovery/jobs", token: token, json: [
                "@odata.type": "#microsoft.graph.entraRecoveryServices.recoveryJob", "snapshotId": .string(snapshot.id)])
            #expect(second.status == 409 && second.json["error"]?["message"]?.stringValue?.contains(job) == true, "\(second.text)")

            // The runner on the second node writes its progress while the first node's API cancels.
            async let cancelled = h.graph("POST", "directory/recovery/jobs/\(job)/microsoft.graph.entraRecoveryServices.cancel", token: token)
            async let progressed: Void = RecoveryJobs(app: nodes[1]).update(tenant: tenant.tenantId, id: job) { $0.totalChangedObjectsCalculated = 7 }
            let (answer, _) = try await (cancelled, progressed)
            #expect(answer.status == 204, "\(answer.text)")
            let record = try await RecoveryJobs(app: nodes[1]).job(tenant: tenant.tenantId, id: job)
            #expect(record.cancelRequested && record.totalChangedObjectsCalculated == 7, "both writes kept")
            #expect(record.version == 3)

            // Graph shows what it showed, the new total aside: no cancel member.
            let after = await h.graph("GET", "directory/recovery/jobs/\(job)", token: token)
            guard case .object(var shown) = before.json else { Issue.record("not an object"); return }
            shown["totalChangedObjectsCalculated"] = 7
            #expect(after.json == .object(shown), "\(after.text)")
        }
    }
}
