import Foundation
import Testing
import Backup
@testable import Server
import TesseraCore
import TesseraTesting

@Suite("Conditional Access policies, named locations, the authorization policy and delegated permission grants over Graph")
struct ConditionalAccessTests {
    static let policies = "identity/conditionalAccess/policies"
    static let locations = "identity/conditionalAccess/namedLocations"

    static func office(_ h: Harness, _ token: String) async throws -> String {
        let created = await h.graph("POST", locations, token: token, json: [
            "@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Office",
            "ipRanges": [["cidrAddress": "203.0.113.0/24"], ["@odata.type": "#microsoft.graph.iPv6CidrRange", "cidrAddress": "2001:db8::/48"]],
            "isTrusted": true])
        #expect(created.status == 201, "\(created.text)")
        return try #require(created.json["id"]?.stringValue)
    }

    static func policy(group: String, location: String) -> JSONValue {
        ["displayName": "Admins need a passkey outside the office", "state": "enabledForReportingButNotEnforced",
         "conditions": [
            "users": ["includeGroups": [.string(group)], "includeRoles": [.string(BuiltInRoles.globalAdministrator)], "excludeUsers": []],
            "applications": ["includeApplications": ["All"]],
            "locations": ["includeLocations": ["All"], "excludeLocations": [.string(location)]],
            "clientAppTypes": ["all"],
         ],
         "grantControls": ["operator": "OR", "builtInControls": [], "authenticationStrength": ["id": "00000000-0000-0000-0000-000000000004"]]]
    }

    @Test("a policy over a group, a role and a named location is created, read, changed, deleted and restored, each audited")
    func policyLifecycle() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let group = await h.graph("POST", "groups", token: token, json: [
                "displayName": "Admins", "mailEnabled": false, "mailNickname": "admins", "securityEnabled": true])
            let groupID = try #require(group.json["id"]?.stringValue)
            let office = try await Self.office(h, token)
            let read = await h.graph("GET", "\(Self.locations)/\(office)", token: token)
            #expect(read.json["@odata.type"] == "#microsoft.graph.ipNamedLocation" && read.json["isTrusted"] == true)
            #expect(read.json["ipRanges"]?.arrayValue?.first?["@odata.type"] == "#microsoft.graph.iPv4CidrRange")
            #expect(read.json["createdDateTime"]?.stringValue != nil)

            let created = await h.graph("POST", Self.policies, token: token, json: Self.policy(group: groupID, location: office))
            #expect(created.status == 201, "\(created.text)")
            let id = try #require(created.json["id"]?.stringValue)
            #expect(created.json["grantControls"]?["authenticationStrength"]?["displayName"] == "Phishing-resistant MFA")
            let list = await h.graph("GET", Self.policies, token: token)
            #expect(list.json["value"]?.arrayValue?.map { $0["id"] } == [.string(id)])

            #expect(await h.graph("PATCH", "\(Self.policies)/\(id)", token: token, json: ["state": "enabled"]).status == 204)
            let patched = await h.graph("GET", "\(Self.policies)/\(id)", token: token).json
            #expect(patched["state"] == "enabled" && patched["modifiedDateTime"]?.stringValue != nil)

            // The location is in use: it cannot go while the policy names it.
            let inUse = await h.graph("DELETE", "\(Self.locations)/\(office)", token: token)
            #expect(inUse.status == 400 && inUse.text.contains("is used by the Conditional Access policy"))

            #expect(await h.graph("DELETE", "\(Self.policies)/\(id)", token: token).status == 204)
            #expect(await h.graph("GET", "\(Self.policies)/\(id)", token: token).status == 404)
            let deleted = await h.graph("GET", "identity/conditionalAccess/deletedItems/policies", token: token)
            #expect(deleted.json["value"]?.arrayValue?.first?["deletedDateTime"]?.stringValue != nil)
            // Not a directory object: /directory/deletedItems does not show it.
            #expect(await h.graph("GET", "directory/deletedItems/\(id)", token: token).status == 404)
            let restored = await h.graph("POST", "identity/conditionalAccess/deletedItems/policies/\(id)/restore", token: token)
            #expect(restored.status == 200 && restored.json["state"] == "enabled")
            #expect(await h.graph("GET", "\(Self.policies)/\(id)", token: token).status == 200)

            let audit = await h.graph("GET", "auditLogs/directoryAudits", token: token).json["value"]?.arrayValue ?? []
            let activities = Set(audit.compactMap { $0["activityDisplayName"]?.stringValue })
            for activity in ["Add conditional access policy", "Update conditional access policy", "Delete conditional access policy",
                             "Restore conditional access policy", "Add named location"] {
                #expect(activities.contains(activity), "\(activity)")
            }
        }
    }

    @Test("bad policies and locations are refused with Graph errors and nothing is written")
    func validation() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let office = try await Self.office(h, token)
            let group = await h.graph("POST", "groups", token: token, json: [
                "displayName": "G", "mailEnabled": false, "mailNickname": "g", "securityEnabled": true])
            let groupID = try #require(group.json["id"]?.stringValue)
            func refused(_ path: String, _ body: JSONValue, _ message: String) async {
                let response = await h.graph("POST", path, token: token, json: body)
                #expect(response.status == 400 && response.errorCode == "Request_BadRequest", "\(response.text)")
                #expect(response.text.contains(message), "\(response.text)")
            }
            guard case .object(let good) = Self.policy(group: groupID, location: office) else { return }
            func with(_ key: String, _ value: JSONValue?) -> JSONValue { var b = good; b[key] = value; return .object(b) }
            await refused(Self.policies, with("conditions", ["applications": ["includeApplications": ["All"]]]), "conditions.users")
            await refused(Self.policies, with("conditions", ["users": ["includeUsers": []], "applications": ["includeApplications": ["All"]]]),
                          "must include users, groups, roles or guests")
            await refused(Self.policies, with("conditions", ["users": ["includeGroups": [.string(Identifier.make())]],
                                                            "applications": ["includeApplications": ["All"]]]), "no group has that id")
            await refused(Self.policies, with("conditions", ["users": ["includeUsers": ["All"]], "applications": ["includeApplications": ["All"]],
                                                            "locations": ["includeLocations": [.string(Identifier.make())]]]), "no named location has that id")
            await refused(Self.policies, with("grantControls", ["operator": "OR", "builtInControls": ["block", "mfa"]]), "'block' control cannot be combined")
            await refused(Self.policies, with("grantControls", ["operator": "OR", "authenticationStrength": ["id": "00000000-0000-0000-0000-000000000009"]]),
                          "built-in authentication strength")
            await refused(Self.policies, with("grantControls", nil), "grant controls, session controls or both")
            // What the decision engine reads must parse: a device filter in Entra's grammar, known user actions.
            let everyone: JSONValue = ["includeUsers": ["All"]]
            await refused(Self.policies, with("conditions", ["users": everyone, "applications": ["includeApplications": ["All"]],
                                                            "devices": ["deviceFilter": ["mode": "include", "rule": "device.trustType -like \"x\""]]]),
                          "deviceFilter.rule")
            await refused(Self.policies, with("conditions", ["users": everyone, "applications": ["includeApplications": ["All"]],
                                                            "devices": ["deviceFilter": ["rule": "device.isCompliant -eq True"]]]),
                          "deviceFilter.mode")
            await refused(Self.policies, with("conditions", ["users": everyone, "applications": ["includeUserActions": ["urn:user:doanything"]]]),
                          "includeUserActions")
            await refused(Self.policies, with("state", "on"), "Invalid value 'on'")
            await refused(Self.locations, ["displayName": "No type", "ipRanges": [["cidrAddress": "10.0.0.0/8"]]], "@odata.type")
            await refused(Self.locations, ["@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Bad",
                                           "ipRanges": [["cidrAddress": "10.0.0.300/8"]]], "CIDR notation")
            await refused(Self.locations, ["@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Mismatch",
                                           "ipRanges": [["@odata.type": "#microsoft.graph.iPv6CidrRange", "cidrAddress": "10.0.0.0/8"]]], "IPv4 range")
            await refused(Self.locations, ["@odata.type": "#microsoft.graph.countryNamedLocation", "displayName": "Bad",
                                           "countriesAndRegions": ["nz"]], "two-letter ISO 3166")
            let country = await h.graph("POST", Self.locations, token: token, json: [
                "@odata.type": "#microsoft.graph.countryNamedLocation", "displayName": "NZ", "countriesAndRegions": ["NZ"]])
            #expect(country.status == 201 && country.json["countryLookupMethod"] == "clientIpAddress")
            let countryID = try #require(country.json["id"]?.stringValue)
            let retype = await h.graph("PATCH", "\(Self.locations)/\(countryID)", token: token, json: [
                "@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "x"])
            #expect(retype.status == 400 && retype.text.contains("cannot be changed"))
            #expect(await h.graph("GET", Self.policies, token: token).json["value"]?.arrayValue?.isEmpty == true)
        }
    }

    @Test("the authorization policy has Entra's defaults, takes valid changes and refuses the rest")
    func authorizationPolicy() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let initial = await h.graph("GET", "policies/authorizationPolicy", token: token)
            #expect(initial.status == 200 && initial.json["id"] == "authorizationPolicy")
            #expect(initial.json["guestUserRoleId"] == "10dae51f-b6af-4016-8d66-8c2a99b929b3" && initial.json["blockMsolPowerShell"] == false)
            #expect(initial.json["defaultUserRolePermissions"]?["allowedToCreateApps"] == true)
            let bad = await h.graph("PATCH", "policies/authorizationPolicy", token: token, json: ["guestUserRoleId": .string(Identifier.make())])
            #expect(bad.status == 400 && bad.text.contains("guestUserRoleId"))
            #expect(await h.graph("PATCH", "policies/authorizationPolicy", token: token, json: ["displayName": "x"]).status == 400)
            #expect(await h.graph("PATCH", "policies/authorizationPolicy", token: token, json: ["allowInvitesFrom": "someone"]).status == 400)
            let good = await h.graph("PATCH", "policies/authorizationPolicy", token: token, json: [
                "blockMsolPowerShell": true, "guestUserRoleId": "2af84b1e-32c8-42b7-82bc-daa82404023b",
                "defaultUserRolePermissions": ["allowedToCreateApps": false]])
            #expect(good.status == 204, "\(good.text)")
            let after = await h.graph("GET", "policies/authorizationPolicy", token: token).json
            #expect(after["blockMsolPowerShell"] == true && after["guestUserRoleId"] == "2af84b1e-32c8-42b7-82bc-daa82404023b")
            #expect(after["defaultUserRolePermissions"]?["allowedToCreateApps"] == false)
            #expect(after["defaultUserRolePermissions"]?["allowedToReadOtherUsers"] == true)
        }
    }

    @Test("delegated permission grants: created between service principals, unique, only the scope changes")
    func grants() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let sps = await h.graph("GET", "servicePrincipals", token: token).json["value"]?.arrayValue ?? []
            let graphSP = try #require(sps.first { $0["appId"] == .string(GraphPermissions.graphAppId) }?["id"]?.stringValue)
            let client = try #require(sps.first { $0["appId"] == .string(h.tenant.clientId) }?["id"]?.stringValue)
            let body: JSONValue = ["clientId": .string(client), "consentType": "AllPrincipals", "resourceId": .string(graphSP), "scope": "User.Read Group.Read.All"]
            let created = await h.graph("POST", "oauth2PermissionGrants", token: token, json: body)
            #expect(created.status == 201, "\(created.text)")
            let id = try #require(created.json["id"]?.stringValue)
            #expect(created.json["principalId"] == .null)
            let again = await h.graph("POST", "oauth2PermissionGrants", token: token, json: body)
            #expect(again.status == 409)
            let noPrincipal = await h.graph("POST", "oauth2PermissionGrants", token: token, json: [
                "clientId": .string(client), "consentType": "Principal", "resourceId": .string(graphSP), "scope": "User.Read"])
            #expect(noPrincipal.status == 400 && noPrincipal.text.contains("principalId"))
            let notSP = await h.graph("POST", "oauth2PermissionGrants", token: token, json: [
                "clientId": .string(Identifier.make()), "consentType": "AllPrincipals", "resourceId": .string(graphSP)])
            #expect(notSP.status == 400 && notSP.text.contains("clientId"))
            #expect(await h.graph("PATCH", "oauth2PermissionGrants/\(id)", token: token, json: ["scope": "User.Read"]).status == 204)
            #expect(await h.graph("GET", "oauth2PermissionGrants/\(id)", token: token).json["scope"] == "User.Read")
            #expect(await h.graph("PATCH", "oauth2PermissionGrants/\(id)", token: token, json: ["clientId": .string(graphSP)]).status == 400)
            #expect(await h.graph("DELETE", "oauth2PermissionGrants/\(id)", token: token).status == 204)
            #expect(await h.graph("GET", "oauth2PermissionGrants/\(id)", token: token).status == 404)
        }
    }

    @Test("Backup Reader reads backups only; Backup Administrator also runs reports and recoveries; others neither")
    func backupRoles() async throws {
        try await Harness.run { h in
            _ = try await h.app.backup.snapshot(tenant: h.tenant.tenantId)
            let preview: JSONValue = ["@odata.type": "#microsoft.graph.entraRecoveryServices.recoveryPreviewJob",
                                      "targetStateDateTime": .string(Timestamp.format(h.clock.now))]
            let reader = try await h.caller(named: "reader", role: BuiltInRoles.backupReader)
            #expect(try await h.graph("GET", "directory/recovery/snapshots", as: reader).json["value"]?.arrayValue?.count == 1)
            await #expect(throws: DirectoryError.self) { try await h.graph("POST", "directory/recovery/jobs", preview, as: reader) }
            let userAdmin = try await h.caller(named: "useradmin", role: BuiltInRoles.userAdministrator)
            await #expect(throws: DirectoryError.self) { try await h.graph("GET", "directory/recovery/snapshots", as: userAdmin) }
            let backupAdmin = try await h.caller(named: "backupadmin", role: BuiltInRoles.backupAdministrator)
            let job = try await h.graph("POST", "directory/recovery/jobs", preview, as: backupAdmin)
            #expect(job.status == 201, "\(job.text)")
            let jobID = try #require(job.json["id"]?.stringValue)
            await h.app.jobs.idle()
            #expect(try await h.graph("GET", "directory/recovery/jobs/\(jobID)", as: reader).json["status"] == "successful")
            // A Conditional Access Administrator manages policies and nothing of users.
            let caAdmin = try await h.caller(named: "caadmin", role: BuiltInRoles.conditionalAccessAdministrator)
            let office = try await h.graph("POST", Self.locations, ["@odata.type": "#microsoft.graph.countryNamedLocation", "displayName": "NZ",
                                                                 "countriesAndRegions": ["NZ"]], as: caAdmin)
            #expect(office.status == 201)
            await #expect(throws: DirectoryError.self) {
                try await h.graph("POST", "users", ["accountEnabled": true, "displayName": "x", "mailNickname": "x",
                                                 "userPrincipalName": "x@contoso.test", "passwordProfile": ["password": "Xy!9aaaaaaaa"]], as: caAdmin)
            }
            #expect(BuiltInRoles.byTemplateId(BuiltInRoles.backupAdministrator)?.displayName == "Entra Backup Administrator")
            #expect(GraphPermissions.byValue("EntraBackup.ReadWrite.Recovery") != nil)
        }
    }
}
