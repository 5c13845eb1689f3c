import Foundation
import Testing
@testable import Server
import Sync
import TesseraCore
import TesseraTesting

@Suite("/directory/onPremisesSynchronization over Graph")
struct OnPremisesSyncTests {
    @Test("the switches and the deletion threshold read and change as in Entra; the matcher sees them")
    func switches() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let list = await h.graph("GET", "directory/onPremisesSynchronization", token: token)
            #expect(list.status == 200, "\(list.text)")
            let item = try #require(list.json["value"]?.arrayValue?.first)
            #expect(item["id"] == .string(h.tenant.tenantId))
            #expect(item["features"]?["blockSoftMatchEnabled"] == false && item["features"]?["softMatchOnUpnEnabled"] == true)
            #expect(item["features"]?["passwordSyncEnabled"] == false)
            #expect(item["configuration"]?["accidentalDeletionPrevention"]?["alertThreshold"] == 500)
            #expect(item["configuration"]?["accidentalDeletionPrevention"]?["synchronizationPreventionType"] == "enabledForCount")

            let path = "directory/onPremisesSynchronization/\(h.tenant.tenantId)"
            let patched = await h.graph("PATCH", path, token: token, json: [
                "features": ["blockSoftMatchEnabled": true, "blockCloudObjectTakeoverThroughHardMatchEnabled": true, "passwordSyncEnabled": true],
                "configuration": ["accidentalDeletionPrevention": ["synchronizationPreventionType": "enabledForPercentage", "alertThreshold": 10]]])
            #expect(patched.status == 204, "\(patched.text)")
            let after = await h.graph("GET", path, token: token).json
            #expect(after["features"]?["blockSoftMatchEnabled"] == true && after["features"]?["passwordSyncEnabled"] == true)
            #expect(after["configuration"]?["accidentalDeletionPrevention"]?["alertThreshold"] == 10)
            let settings = try await SyncSettings.load(tenant: h.tenant.tenantId, store: h.app.store)
            #expect(settings.features.blockSoftMatchEnabled && settings.features.blockCloudObjectTakeoverThroughHardMatchEnabled)
            #expect(settings.deletionPreventionType == "enabledForPercentage" && settings.deletionThreshold == 10)

            // Bad input is a Graph error and changes nothing.
            #expect(await h.graph("PATCH", path, token: token, json: ["features": ["noSuchFeature": true]]).status == 400)
            #expect(await h.graph("PATCH", path, token: token, json: ["configuration": ["accidentalDeletionPrevention": ["alertThreshold": 500]]]).status == 400)
            #expect(await h.graph("PATCH", path, token: token, json: ["id": "x"]).status == 400)
            #expect(await h.graph("PATCH", "directory/onPremisesSynchronization/\(Identifier.make())", token: token, json: [:]).status == 404)
            #expect(try await SyncSettings.load(tenant: h.tenant.tenantId, store: h.app.store).deletionThreshold == 10)
        }
    }

    @Test("a signed-in user needs the Global Administrator role to change them; a Hybrid Identity Administrator reads")
    func roles() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let id = try await AdminCenterTests.createUser(h, token, "hybrid")
            _ = await h.graph("POST", "roleManagement/directory/roleAssignments", token: token, json: [
                "principalId": .string(id), "roleDefinitionId": .string(BuiltInRoles.hybridIdentityAdministrator), "directoryScopeId": "/"])
            let user = try #require(try await h.app.store.read { tx in try await tx.object(tenant: h.tenant.tenantId, id: id) })
            let caller = try await Caller.user(tenant: h.tenant.tenantId, user: user, scopes: nil, app: h.app)
            func call(_ method: String, _ path: String, _ json: JSONValue? = nil) async throws -> APIResponse {
                try await GraphAPI(app: h.app).handle(APIRequest(method: method, path: "/v1.0/" + path, query: [],
                                                                 headers: ["content-type": "application/json"],
                                                                 body: json?.serializedBytes ?? [], baseURL: Harness.base), as: caller)
            }
            #expect(try await call("GET", "directory/onPremisesSynchronization").status == 200)
            await #expect(throws: DirectoryError.self) {
                try await call("PATCH", "directory/onPremisesSynchronization/\(h.tenant.tenantId)", ["features": ["blockSoftMatchEnabled": true]])
            }
        }
    }
}

@Suite("serve's sync schedule")
struct SyncServiceTests {
    @Test("each interval's run is claimed once per tenant, so a cluster syncs once; a tenant without a connector is left alone")
    func claimedOnce() async throws {
        try await Harness.run { h in
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-\(UUID().uuidString).ldif")
            defer { try? FileManager.default.removeItem(at: file) }
            try """
            dn: CN=ada,OU=Staff,DC=corp,DC=test
            objectClass: user
            objectGUID:: AAECAwQFBgcICQoLDA0ODw==
            sAMAccountName: ada
            userPrincipalName: ada@contoso.test
            userAccountControl: 512

            """.write(to: file, atomically: true, encoding: .utf8)
            var settings = SyncSettings()
            var connector = SyncConnector(name: "file", ldapURL: "", bindDN: "", bindPasswordFile: "", baseDN: "OU=Staff,DC=corp,DC=test")
            connector.ldifFile = file.path
            settings.connectors = [connector]
            try await settings.save(tenant: h.tenant.tenantId, store: h.app.store)
            // Two nodes in the same interval.
            await SyncService(app: h.app, interval: .seconds(1800)).cycle()
            await SyncService(app: h.app, interval: .seconds(1800)).cycle()
            let runs = try await SyncSettings.load(tenant: h.tenant.tenantId, store: h.app.store).runs
            #expect(runs.count == 1 && runs.first?["added"] == 1)
            #expect(try await h.app.store.read { tx in try await tx.holder(tenant: h.tenant.tenantId, key: UniqueKey("userPrincipalName", "ada@contoso.test")) } != nil)
            // The next interval runs again.
            h.clock.advance(1800)
            await SyncService(app: h.app, interval: .seconds(1800)).cycle()
            #expect(try await SyncSettings.load(tenant: h.tenant.tenantId, store: h.app.store).runs.count == 2)
        }
    }

    @Test("resolved attribute conflicts are released hourly, between daily runs")
    func hourlyRelease() async throws {
        try await Harness.run { h in
            let tenant = h.tenant.tenantId
            let squatter = try await h.app.directory.create(tenant: tenant, kind: .user, body: [
                "accountEnabled": true, "displayName": "Ada (cloud)", "userPrincipalName": "ada@contoso.test", "mailNickname": "ada",
                "passwordProfile": ["password": "Kx9!long-enough-Passw0rd"]], actor: .system)
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-\(UUID().uuidString).ldif")
            defer { try? FileManager.default.removeItem(at: file) }
            try "dn: CN=ada,OU=Staff,DC=corp,DC=test\nobjectClass: user\nobjectGUID:: AAECAwQFBgcICQoLDA0ODw==\nsAMAccountName: ada\nuserPrincipalName: ada@contoso.test\n"
                .write(to: file, atomically: true, encoding: .utf8)
            var settings = SyncSettings()
            var connector = SyncConnector(name: "file", ldapURL: "", bindDN: "", bindPasswordFile: "", baseDN: "OU=Staff,DC=corp,DC=test")
            connector.ldifFile = file.path
            settings.connectors = [connector]
            settings.features.blockSoftMatchEnabled = true
            try await settings.save(tenant: tenant, store: h.app.store)
            // Daily slots start at midnight UTC: the first run at a quarter past one, so an hour later is the same day
            // whatever the instant the clock started at (TESSERA_TEST_CLOCK_START).
            h.clock.advance(toNext: 86_400, plus: 4500)
            let daily = SyncService(app: h.app, interval: .seconds(86_400))
            await daily.cycle()
            func synced() async throws -> StoredObject? {
                try await h.app.store.read { tx in
                    guard let id = try await tx.holder(tenant: tenant, key: UniqueKey("onPremisesImmutableId", "AAECAwQFBgcICQoLDA0ODw==")) else { return nil }
                    return try await tx.object(tenant: tenant, id: id)
                }
            }
            #expect(try await synced()?.body["userPrincipalName"]?.stringValue?.hasPrefix("ada+") == true)
            // Graph finds the users with a conflict, as Entra's documentation filters them.
            let token = try await h.accessToken()
            let conflicted = await h.graph("GET", "users", token: token, query: [
                ("$filter", "onPremisesProvisioningErrors/any(o:o/category eq 'PropertyConflict')"), ("$select", "id,onPremisesProvisioningErrors")])
            #expect(conflicted.status == 200, "\(conflicted.text)")
            let listed = conflicted.json["value"]?.arrayValue ?? []
            #expect(listed.count == 1 && listed.first?["onPremisesProvisioningErrors"]?.arrayValue?.first?["propertyCausingError"] == "UserPrincipalName", "\(conflicted.text)")
            try await h.app.directory.delete(tenant: tenant, id: squatter.id, kind: .user, actor: .system)
            h.clock.advance(3600)
            await daily.cycle()
            await daily.cycle()  // another node in the same hour
            #expect(try await SyncSettings.load(tenant: tenant, store: h.app.store).runs.count == 1)
            #expect(try await synced()?.body["userPrincipalName"] == "ada@contoso.test")
            #expect(try await synced()?.body["onPremisesProvisioningErrors"] == [])
        }
    }
}
