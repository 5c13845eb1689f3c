import Foundation
import Testing
import TesseraCore
import TesseraTesting

@testable import Server

/// `/devices/{id}/registeredOwners` (Graph v1.0 device-list-registeredowners, device-post-registeredowners,
/// device-delete-registeredowners): the device's owners, users only, changed by a signed-in user and never by an app.
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
}
