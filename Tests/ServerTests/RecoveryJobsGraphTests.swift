import Backup
import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

/// Jobs created where Microsoft documents them: `POST /directory/recovery/snapshots/{id}/recoveryPreviewJobs` and
/// `…/recoveryJobs`, the resource-based long-running operation pattern (202 Accepted, a Location naming the job).
@Suite("Recovery jobs created under their snapshot, as Microsoft documents")
struct RecoveryJobsGraphTests {
    static let users = "#microsoft.graph.entraRecoveryServices.recoveryJobEntityNamesFilter"

    @Test("a preview job: 202 with a Location that reads the job, under the snapshot and under /jobs; then a recovery job puts the user back")
    func createdUnderTheSnapshot() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let user = await h.graph("POST", "users", token: token, json: [
                "accountEnabled": true, "displayName": "Rec", "mailNickname": "rec", "userPrincipalName": "rec@contoso.test", "jobTitle": "Analyst",
                "passwordProfile": ["password": "Kx9!long-enough-Passw0rd"]])
            let userID = try #require(user.json["id"]?.stringValue)
            let snapshot = try await h.app.backup.snapshot(tenant: h.tenant.tenantId)
            #expect(await h.graph("PATCH", "users/\(userID)", token: token, json: ["jobTitle": "Director"]).status == 204)

            // Example 1 of the documentation: no body at all.
            let preview = await h.graph("POST", "directory/recovery/snapshots/\(snapshot.id)/recoveryPreviewJobs", token: token)
            #expect(preview.status == 202 && preview.body.isEmpty, "\(preview.text)")
            let location = try #require(preview.headers.first { $0.name.lowercased() == "location" }?.value)
            let prefix = "\(Harness.base)/v1.0/directory/recovery/snapshots/\(snapshot.id)/recoveryPreviewJobs/"
            #expect(location.hasPrefix(prefix), "\(location)")
            let jobID = String(location.dropFirst(prefix.count))
            await h.app.jobs.idle()
            let read = await h.graph("GET", String(location.dropFirst("\(Harness.base)/v1.0/".count)), token: token)
            #expect(read.status == 200 && read.json["status"] == "successful" && read.json["id"] == .string(jobID), "\(read.text)")
            #expect(read.json["@odata.type"] == "#microsoft.graph.entraRecoveryServices.recoveryPreviewJob")
            #expect(await h.graph("GET", "directory/recovery/jobs/\(jobID)", token: token).json["status"] == "successful")
            let changes = await h.graph("GET", "directory/recovery/snapshots/\(snapshot.id)/recoveryPreviewJobs/\(jobID)/getChanges()", token: token)
            #expect(changes.json["value"]?.arrayValue?.contains { $0["id"] == .string(userID) } == true, "\(changes.text)")
            // Listed under its snapshot, and not under the other collection.
            let listed = await h.graph("GET", "directory/recovery/snapshots/\(snapshot.id)/recoveryPreviewJobs", token: token)
            #expect(listed.json["value"]?.arrayValue?.map { $0["id"] } == [.string(jobID)])
            #expect(await h.graph("GET", "directory/recovery/snapshots/\(snapshot.id)/recoveryJobs/\(jobID)", token: token).status == 404)

            // Example 2: a recovery job scoped to users.
            let recovery = await h.graph("POST", "directory/recovery/snapshots/\(snapshot.id)/recoveryJobs", token: token,
                                         json: ["filteringCriteria": ["@odata.type": .string(Self.users), "entityTypes": ["user"]]])
            #expect(recovery.status == 202, "\(recovery.text)")
            let recoveryLocation = try #require(recovery.headers.first { $0.name.lowercased() == "location" }?.value)
            #expect(recoveryLocation.contains("/directory/recovery/snapshots/\(snapshot.id)/recoveryJobs/"))
            await h.app.jobs.idle()
            let done = await h.graph("GET", String(recoveryLocation.dropFirst("\(Harness.base)/v1.0/".count)), token: token)
            #expect(done.json["status"] == "successful" && done.json["totalObjectsModified"] == 1, "\(done.text)")
            #expect(await h.graph("GET", "users/\(userID)", token: token, query: [("$select", "jobTitle")]).json["jobTitle"] == "Analyst")
        }
    }

    @Test("bad input is Graph's error and starts nothing: an unknown property, another job type, a snapshot that does not exist")
    func badInput() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let snapshot = try await h.app.backup.snapshot(tenant: h.tenant.tenantId)
            let path = "directory/recovery/snapshots/\(snapshot.id)/recoveryPreviewJobs"
            let unknown = await h.graph("POST", path, token: token, json: ["targetStateDateTime": "2026-01-01T00:00:00Z"])
            #expect(unknown.status == 400 && unknown.errorCode == "Request_BadRequest", "\(unknown.text)")
            let wrongType = await h.graph("POST", path, token: token, json: ["@odata.type": "#microsoft.graph.entraRecoveryServices.recoveryJob"])
            #expect(wrongType.status == 400, "\(wrongType.text)")
            let badFilter = await h.graph("POST", path, token: token, json: ["filteringCriteria": ["@odata.type": .string(Self.users), "entityTypes": []]])
            #expect(badFilter.status == 400, "\(badFilter.text)")
            let missing = await h.graph("POST", "directory/recovery/snapshots/MjAyNC0wOC0yNlQwMjozMDowMFo=/recoveryPreviewJobs", token: token)
            #expect(missing.status == 404, "\(missing.text)")
            #expect(await h.graph("GET", "directory/recovery/jobs", token: token).json["value"]?.arrayValue?.isEmpty == true)
        }
    }
}
