import Foundation
import Testing
@testable import Server
import TesseraCore

@Suite("Authentication methods policy and passkey profiles over Graph")
struct PolicyTests {
    static let fido2 = "policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2"

    @Test("a new tenant has passkeys on for all users under the default profile")
    func tenantDefault() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let policy = await h.graph("GET", "policies/authenticationMethodsPolicy", token: token)
            #expect(policy.status == 200)
            let fido2 = try #require(policy.json["authenticationMethodConfigurations"]?.arrayValue?.first)
            #expect(fido2["id"] == "Fido2" && fido2["state"] == "enabled")
            #expect(fido2["defaultPasskeyProfile"]?.stringValue == Fido2Configuration.defaultProfileID)
            let profile = try #require(fido2["passkeyProfiles"]?.arrayValue?.first)
            #expect(profile["passkeyTypes"] == "deviceBound,synced" && profile["attestationEnforcement"] == "disabled")
            #expect(fido2["includeTargets"]?.arrayValue?.first?["id"] == "all_users")
            let direct = await h.graph("GET", Self.fido2, token: token)
            #expect(direct.status == 200 && direct.json["passkeyProfiles"] == fido2["passkeyProfiles"])
        }
    }

    @Test("Microsoft's PATCH example is accepted, stored and audited; a second profile can be targeted at a group")
    func patchProfiles() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let group = await h.graph("POST", "groups", token: token, json: [
                "displayName": "Admins", "mailEnabled": false, "mailNickname": "admins", "securityEnabled": true])
            let groupID = try #require(group.json["id"]?.stringValue)
            let patch: JSONValue = [
                "@odata.type": "#microsoft.graph.fido2AuthenticationMethodConfiguration",
                "includeTargets": [
                    ["targetType": "group", "id": "all_users", "isRegistrationRequired": false,
                     "allowedPasskeyProfiles": [.string(Fido2Configuration.defaultProfileID)]],
                    ["targetType": "group", "id": .string(groupID), "isRegistrationRequired": false,
                     "allowedPasskeyProfiles": ["00000000-0000-0000-0000-000000000002"]],
                ],
                "passkeyProfiles": [
                    ["id": .string(Fido2Configuration.defaultProfileID), "name": "Default passkey profile", "passkeyTypes": "deviceBound,synced",
                     "attestationEnforcement": "disabled", "keyRestrictions": ["isEnforced": false, "enforcementType": "allow", "aaGuids": []]],
                    ["id": "00000000-0000-0000-0000-000000000002", "name": "Administrators", "passkeyTypes": "deviceBound",
                     "attestationEnforcement": "registrationOnly",
                     "keyRestrictions": ["isEnforced": true, "enforcementType": "allow", "aaGuids": ["CB69481E-8FF7-4039-93EC-0A2729A154A8"]]],
                ],
            ]
            let response = await h.graph("PATCH", Self.fido2, token: token, json: patch)
            #expect(response.status == 204, "\(String(decoding: response.body, as: UTF8.self))")
            let stored = await h.graph("GET", Self.fido2, token: token).json
            #expect(stored["passkeyProfiles"]?.arrayValue?.count == 2)
            #expect(stored["passkeyProfiles"]?.arrayValue?.last?["keyRestrictions"]?["aaGuids"] == ["cb69481e-8ff7-4039-93ec-0a2729a154a8"])
            let configuration = try await h.app.directory.fido2Configuration(tenant: h.tenant.tenantId).configuration
            let admin = configuration.evaluate(.init(type: .synced, aaguid: "cb69481e-8ff7-4039-93ec-0a2729a154a8", attested: false),
                                               for: .init(userID: "u", groupIDs: [groupID]), phase: .registration)
            #expect(admin.allowed && admin.profileID == Fido2Configuration.defaultProfileID) // all_users' profile still applies
            let audit = await h.graph("GET", "auditLogs/directoryAudits", token: token)
            #expect(audit.json["value"]?.arrayValue?.contains { $0["activityDisplayName"] == "Update authentication methods policy" } == true)
        }
    }

    @Test("a PATCH that breaks a rule gets 400 and changes nothing", arguments: [
        "four profiles", "synced with attestation", "default deleted", "unknown profile", "bad enum", "unknown property",
    ])
    func refusals(_ scenario: String) async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let before = await h.graph("GET", Self.fido2, token: token).json
            func profile(_ n: Int, _ types: String = "deviceBound", _ attestation: String = "disabled") -> JSONValue {
                ["id": .string("00000000-0000-0000-0000-00000000000\(n)"), "name": .string("P\(n)"), "passkeyTypes": .string(types),
                 "attestationEnforcement": .string(attestation)]
            }
            let patch: JSONValue = switch scenario {
            case "four profiles": ["passkeyProfiles": [profile(1), profile(2), profile(3), profile(4)]]
            case "synced with attestation": ["passkeyProfiles": [profile(1, "deviceBound,synced", "registrationOnly")]]
            case "default deleted": ["passkeyProfiles": [profile(2)], "defaultPasskeyProfile": "00000000-0000-0000-0000-000000000002",
                                     "includeTargets": [["id": "all_users", "targetType": "group"]]]
            case "unknown profile": ["includeTargets": [["id": "all_users", "allowedPasskeyProfiles": ["00000000-0000-0000-0000-00000000000f"]]]]
            case "bad enum": ["state": "on"]
            default: ["passkeyPolicy": true]
            }
            let response = await h.graph("PATCH", Self.fido2, token: token, json: patch)
            #expect(response.status == 400 && response.errorCode == "Request_BadRequest")
            #expect(response.json["error"]?["message"]?.stringValue?.isEmpty == false)
            #expect(await h.graph("GET", Self.fido2, token: token).json == before)
        }
    }

    @Test("DELETE reverts to the defaults; reading needs a policy permission and writing the write one")
    func resetAndPermissions() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            _ = await h.graph("PATCH", Self.fido2, token: token, json: ["state": "disabled"])
            #expect(await h.graph("GET", Self.fido2, token: token).json["state"] == "disabled")
            #expect(await h.graph("DELETE", Self.fido2, token: token).status == 204)
            #expect(await h.graph("GET", Self.fido2, token: token).json["state"] == "enabled")
            // An app with only User.Read.All may not read or change the policy.
            let app = await h.graph("POST", "applications", token: token, json: ["displayName": "Reader"])
            let appID = try #require(app.json["appId"]?.stringValue)
            let secret = await h.graph("POST", "applications/\(try #require(app.json["id"]?.stringValue))/addPassword", token: token, json: [:])
            let sp = await h.graph("POST", "servicePrincipals", token: token, json: ["appId": .string(appID)])
            let graphSP = await h.graph("GET", "servicePrincipals(appId='\(GraphPermissions.graphAppId)')", token: token)
            let userRead = try #require(GraphPermissions.byValue("User.Read.All"))
            _ = await h.graph("POST", "servicePrincipals/\(try #require(sp.json["id"]?.stringValue))/appRoleAssignments", token: token, json: [
                "principalId": sp.json["id"]!, "resourceId": graphSP.json["id"]!, "appRoleId": .string(userRead.id)])
            let readerToken = try await h.accessToken(clientId: appID, secret: try #require(secret.json["secretText"]?.stringValue))
            #expect(await h.graph("GET", Self.fido2, token: readerToken).status == 403)
            #expect(await h.graph("PATCH", Self.fido2, token: readerToken, json: ["state": "disabled"]).status == 403)
        }
    }
}
