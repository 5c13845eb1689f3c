import Foundation
import Testing
import TesseraCore
import TesseraTesting

@testable import Server

/// `/devices/{id}/registeredOwners` and `/devices/{id}/registeredUsers` (Graph v1.0 device-list-registeredowners,
/// device-post-registeredowners, device-delete-registeredowners and their registeredUsers pages): users only, changed
/// by a signed-in user and never by an app; and from the user, `ownedDevices` and `registeredDevices`.
@Suite struct DeviceIdentityOwnersTests {
    @Test func aSignedInAdministratorAddsAndRemovesAUserAsTheDevicesRegisteredOwner() async throws {
        try await Harness.run { harness in
            let token = try await harness.accessToken()
            let created = await harness.graph("POST", "devices", token: token, json: [
                "accountEnabled": true, "deviceId": .string(UUID().uuidString.lowercased()), "displayName": "WS01",
                "operatingSystem": "Windows", "operatingSystemVersion": "10.0.26100", "alternativeSecurityIds": []])
            let device = try #require(created.json["id"]?.stringValue, "\(created.text)")
            let owner = try await AdminCenterTests.createUser(harness, token, "Megan")
            let reference: JSONValue = ["@odata.id": .string("https://graph.microsoft.com/v1.0/directoryObjects/\(owner)")]

            // An application may read the owners, not change them (Entra: delegated only).
            let byApp = await harness.graph("POST", "devices/\(device)/registeredOwners/$ref", token: token, json: reference)
            #expect(byApp.status == 403 && byApp.errorCode == "Authorization_RequestDenied", "\(byApp.text)")
            let unprivileged = try await harness.caller(named: "Adele", role: nil)
            let refused = await #expect(throws: DirectoryError.self) {
                try await harness.graph("POST", "devices/\(device)/registeredOwners/$ref", reference, as: unprivileged)
            }
            #expect(refused?.code == .accessDenied)

            let admin = try await harness.caller(named: "Nestor", role: BuiltInRoles.globalAdministrator)
            let added = try await harness.graph("POST", "devices/\(device)/registeredOwners/$ref", reference, as: admin)
            #expect(added.status == 204, "\(added.text)")
            let listed = await harness.graph("GET", "devices/\(device)/registeredOwners", token: token)
            #expect(listed.status == 200, "\(listed.text)")
            let first = try #require(listed.json["value"]?.arrayValue?.first)
            #expect(listed.json["value"]?.arrayValue?.count == 1)
            #expect(first["id"]?.stringValue == owner && first["@odata.type"]?.stringValue == "#microsoft.graph.user")
            // The same link seen from the user.
            let owned = await harness.graph("GET", "users/\(owner)/ownedObjects", token: token)
            #expect(owned.json["value"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [device], "\(owned.text)")

            // Only a user can be a registered owner.
            let sp = await harness.graph("GET", "servicePrincipals", token: token, query: [("$filter", "appId eq '\(harness.tenant.clientId)'")])
            let spID = try #require(sp.json["value"]?.arrayValue?.first?["id"]?.stringValue)
            let notAUser = await #expect(throws: DirectoryError.self) {
                try await harness.graph("POST", "devices/\(device)/registeredOwners/$ref",
                                        ["@odata.id": .string("https://graph.microsoft.com/v1.0/directoryObjects/\(spID)")], as: admin)
            }
            #expect(notAUser?.code == .badRequest && notAUser?.message == "Only a user can be a registered owner of a device.")

            let removed = try await harness.graph("DELETE", "devices/\(device)/registeredOwners/\(owner)/$ref", as: admin)
            #expect(removed.status == 204, "\(removed.text)")
            #expect(await harness.graph("GET", "devices/\(device)/registeredOwners", token: token).json["value"]?.arrayValue?.isEmpty == true)
        }
    }

    @Test func aDevicesRegisteredUsersAreItsOwnRelationSeenFromTheUserAsRegisteredDevices() async throws {
        try await Harness.run { harness in
            let token = try await harness.accessToken()
            let device = try await Self.createDevice(harness, token, "WS02")
            let other = try await Self.createDevice(harness, token, "WS03")
            let user = try await AdminCenterTests.createUser(harness, token, "Lidia")
            let reference: JSONValue = ["@odata.id": .string("https://graph.microsoft.com/v1.0/directoryObjects/\(user)")]

            let byApp = await harness.graph("POST", "devices/\(device)/registeredUsers/$ref", token: token, json: reference)
            #expect(byApp.status == 403 && byApp.errorCode == "Authorization_RequestDenied", "\(byApp.text)")
            #expect(byApp.json["error"]?["message"]?.stringValue?.contains("registered users are changed by a signed-in user") == true)

            let admin = try await harness.caller(named: "Nestor", role: BuiltInRoles.globalAdministrator)
            #expect(try await harness.graph("POST", "devices/\(device)/registeredUsers/$ref", reference, as: admin).status == 204)
            #expect(try await harness.graph("POST", "devices/\(other)/registeredOwners/$ref", reference, as: admin).status == 204)
            let twice = await #expect(throws: DirectoryError.self) {
                try await harness.graph("POST", "devices/\(device)/registeredUsers/$ref", reference, as: admin)
            }
            #expect(twice?.code == .badRequest)

            // Registered users and registered owners are two relations: each lists only its own.
            let users = await harness.graph("GET", "devices/\(device)/registeredUsers", token: token)
            #expect(users.status == 200, "\(users.text)")
            #expect(users.json["value"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [user])
            #expect(users.json["value"]?.arrayValue?.first?["@odata.type"]?.stringValue == "#microsoft.graph.user")
            #expect(await harness.graph("GET", "devices/\(device)/registeredOwners", token: token).json["value"]?.arrayValue?.isEmpty == true)
            #expect(await harness.graph("GET", "devices/\(other)/registeredUsers", token: token).json["value"]?.arrayValue?.isEmpty == true)
            let count = await harness.graph("GET", "devices/\(device)/registeredUsers/$count", token: token,
                                            headers: ["consistencylevel": "eventual"])
            #expect(count.text == "1", "\(count.text)")

            // From the user: registeredDevices and ownedDevices, devices as directoryObjects.
            let registered = await harness.graph("GET", "users/\(user)/registeredDevices", token: token)
            #expect(registered.status == 200, "\(registered.text)")
            #expect(registered.json["value"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [device])
            #expect(registered.json["value"]?.arrayValue?.first?["@odata.type"]?.stringValue == "#microsoft.graph.device")
            let owned = await harness.graph("GET", "users/\(user)/ownedDevices", token: token)
            #expect(owned.json["value"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [other], "\(owned.text)")

            // Only a user can be a registered user.
            let notAUser = await #expect(throws: DirectoryError.self) {
                try await harness.graph("POST", "devices/\(device)/registeredUsers/$ref",
                                        ["@odata.id": .string("https://graph.microsoft.com/v1.0/directoryObjects/\(other)")], as: admin)
            }
            #expect(notAUser?.code == .badRequest && notAUser?.message == "Only a user can be a registered user of a device.")

            // The change is audited with Entra's activity name.
            let audits = await harness.graph("GET", "auditLogs/directoryAudits", token: token,
                                             query: [("$filter", "activityDisplayName eq 'Add registered users to device'")])
            #expect(audits.json["value"]?.arrayValue?.count == 1, "\(audits.text)")

            let removed = try await harness.graph("DELETE", "devices/\(device)/registeredUsers/\(user)/$ref", as: admin)
            #expect(removed.status == 204)
            #expect(await harness.graph("GET", "users/\(user)/registeredDevices", token: token).json["value"]?.arrayValue?.isEmpty == true)
            #expect(await harness.graph("GET", "users/\(user)/ownedDevices", token: token).json["value"]?.arrayValue?.count == 1)
        }
    }

    @Test func aUserWithUserReadListsTheirOwnDevicesAndNoOneElses() async throws {
        try await Harness.run { harness in
            let token = try await harness.accessToken()
            let device = try await Self.createDevice(harness, token, "WS04")
            let admin = try await harness.caller(named: "Nestor", role: BuiltInRoles.globalAdministrator)
            let user = try await AdminCenterTests.createUser(harness, token, "Grady")
            let colleague = try await AdminCenterTests.createUser(harness, token, "Isaiah")
            #expect(try await harness.graph("POST", "devices/\(device)/registeredOwners/$ref",
                                            ["@odata.id": .string("https://graph.microsoft.com/v1.0/users/\(user)")], as: admin).status == 204)
            let tenantID = harness.tenant.tenantId
            let stored = try #require(try await harness.app.store.read { tx in try await tx.object(tenant: tenantID, id: user) })
            let signedIn = try await Caller.user(tenant: tenantID, user: stored, scopes: ["User.Read"], app: harness.app)

            let mine = try await harness.graph("GET", "me/ownedDevices", as: signedIn)
            #expect(mine.status == 200)
            #expect(mine.json["value"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [device])
            #expect(try await harness.graph("GET", "users/\(user)/registeredDevices", as: signedIn).json["value"]?.arrayValue?.isEmpty == true)
            let theirs = await #expect(throws: DirectoryError.self) {
                try await harness.graph("GET", "users/\(colleague)/ownedDevices", as: signedIn)
            }
            #expect(theirs?.code == .accessDenied)
        }
    }

    static func createDevice(_ harness: Harness, _ token: String, _ name: String) async throws -> String {
        let created = await harness.graph("POST", "devices", token: token, json: [
            "accountEnabled": true, "deviceId": .string(UUID().uuidString.lowercased()), "displayName": .string(name),
            "operatingSystem": "Windows", "operatingSystemVersion": "10.0.26100", "alternativeSecurityIds": []])
        return try #require(created.json["id"]?.stringValue, "\(created.text)")
    }
}
