import Foundation
import Testing
@testable import Server
import Sync
import TesseraCore

@Suite("Admin center: directory sync errors, quarantine, held-back deletions and the switches")
struct SyncAdminTests {
    typealias Browser = AdminCenterTests.Browser

    /// A staging area as a sync run leaves it: one object quarantined by the June 2026 rule, and one synced user
    /// whose deletion a run held back at the threshold.
    static func seed(_ h: Harness, token: String) async throws -> (quarantined: String, heldUser: String, run: String) {
        let tenant = h.tenant.tenantId
        let userID = try await AdminCenterTests.createUser(h, token, "leaver")
        let quarantined = "sync:corp:00112233445566778899aabbccddeeff"
        let held = "sync:corp:ffeeddccbbaa99887766554433221100"
        try await h.app.store.write { tx in
            try await tx.putStaged([
                StagedObject(tenant: tenant, id: quarantined, connector: "corp", dn: "CN=mallory,OU=Staff,DC=corp,DC=example,DC=test", state: "quarantined",
                             details: ["attributes": ["objectguid": ["ABEiM0RVZneImaq7zN3u/w=="], "objectclass": ["top", "user"]],
                                       "error": ["code": "InvalidHardMatch", "message": "Hard match into the cloud-managed user 'admin@contoso.test' is blocked because the user holds a directory role.",
                                                 "occurredDateTime": "2026-11-29T00:00:00Z"]]),
                StagedObject(tenant: tenant, id: held, connector: "corp", dn: "CN=leaver,OU=Staff,DC=corp,DC=example,DC=test", cloudID: userID, state: "joined",
                             details: ["attributes": ["objectguid": ["/+7dzLuqmYh3ZlVEMyIRAA=="], "objectclass": ["top", "user"], "isdeleted": ["TRUE"]]]),
            ])
        }
        var settings = SyncSettings()
        let runID = Identifier.make()
        settings.runs = [["id": .string(runID), "connector": "corp", "at": "2026-11-29T00:00:00Z", "status": "stopped-deletion-threshold-exceeded",
                          "added": 0, "updated": 0, "deleted": 0, "quarantined": 1, "pendingDeletions": [.string(held)]]]
        try await settings.save(tenant: tenant, store: h.app.store)
        return (quarantined, userID, runID)
    }

    @Test("a Global Administrator sees the quarantine and the held-back deletions, deletes from quarantine, approves once, and changes the switches")
    func globalAdministrator() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let seeded = try await Self.seed(h, token: token)
            let admin = try await Browser.signIn(h, userID: h.tenant.adminUserId)
            let page = await admin.get("/sync")
            #expect(page.status == 200 && page.text.contains("InvalidHardMatch") && page.text.contains("CN=mallory,OU=Staff"))
            #expect(page.text.contains("Approve 1 deletions") && page.text.contains("Delete from quarantine"))

            let removed = try await admin.post("/sync/quarantine/\(seeded.quarantined)/delete", [], from: "/sync")
            #expect(removed.status == 303, "\(removed.text)")
            #expect(try await SyncCycle(directory: h.app.directory).quarantined(tenant: h.tenant.tenantId).isEmpty)

            let approved = try await admin.post("/sync/runs/\(seeded.run)/approve", [], from: "/sync")
            #expect(approved.status == 303)
            #expect(await h.graph("GET", "users/\(seeded.heldUser)", token: token).status == 404)
            let again = try await admin.post("/sync/runs/\(seeded.run)/approve", [], from: "/sync")
            #expect(again.status == 400 && again.text.contains("no deletions waiting"))

            let saved = try await admin.post("/sync/settings", [("blockSoftMatchEnabled", "true"), ("softMatchOnUpnEnabled", "true"),
                                                                ("alertThreshold", "50"), ("synchronizationPreventionType", "enabledForCount")], from: "/sync")
            #expect(saved.status == 303, "\(saved.text)")
            let settings = try await SyncSettings.load(tenant: h.tenant.tenantId, store: h.app.store)
            #expect(settings.features.blockSoftMatchEnabled && settings.deletionThreshold == 50)
            #expect(!settings.features.blockCloudObjectTakeoverThroughHardMatchEnabled)
        }
    }

    @Test("a User Administrator sees no sync page; a Hybrid Identity Administrator reads it but cannot approve")
    func otherRoles() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let seeded = try await Self.seed(h, token: token)
            func browser(_ name: String, _ role: String) async throws -> Browser {
                let id = try await AdminCenterTests.createUser(h, token, name)
                _ = await h.graph("POST", "roleManagement/directory/roleAssignments", token: token, json: [
                    "principalId": .string(id), "roleDefinitionId": .string(role), "directoryScopeId": "/"])
                return try await Browser.signIn(h, userID: id)
            }
            let userAdmin = try await browser("ua", BuiltInRoles.userAdministrator)
            #expect(await userAdmin.get("/sync").status == 403)
            let hybrid = try await browser("hia", BuiltInRoles.hybridIdentityAdministrator)
            let page = await hybrid.get("/sync")
            #expect(page.status == 200 && page.text.contains("InvalidHardMatch"))
            let refused = try await hybrid.post("/sync/runs/\(seeded.run)/approve", [], from: "/sync")
            #expect(refused.status == 400 && (refused.text.contains("Only a Global Administrator") || refused.text.contains("Insufficient privileges")))
            #expect(await h.graph("GET", "users/\(seeded.heldUser)", token: token).status == 200)
        }
    }
}
