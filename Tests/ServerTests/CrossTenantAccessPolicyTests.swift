import Foundation
import Testing
@testable import Server
import TesseraCore

@Suite("Cross-tenant access settings over Graph (/policies/crossTenantAccessPolicy)")
struct CrossTenantAccessPolicyTests {
    static let root = "policies/crossTenantAccessPolicy"
    static let fabrikam = "3d0f5dec-5d3d-455c-8016-e2af1ae4d31a"

    /// Microsoft's "Create crossTenantAccessPolicyConfigurationPartner" request.
    static let documentedPartner: JSONValue = [
        "tenantId": .string(fabrikam),
        "b2bDirectConnectOutbound": ["usersAndGroups": ["accessType": "blocked", "targets": [
            ["target": "6f546279-4da5-4b53-a095-09ea0cef9971", "targetType": "group"]]]],
        "b2bDirectConnectInbound": ["applications": ["accessType": "allowed", "targets": [["target": "Office365", "targetType": "application"]]]],
    ]

    @Test("a new tenant has Entra's system default, as Microsoft's GET example shows it")
    func systemDefault() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let policy = await h.graph("GET", Self.root, token: token)
            #expect(policy.status == 200 && policy.json["displayName"] == "CrossTenantAccessPolicy" && policy.json["allowedCloudEndpoints"] == [])
            let defaults = await h.graph("GET", "\(Self.root)/default", token: token).json
            #expect(defaults["isServiceDefault"] == true)
            #expect(defaults["inboundTrust"] == ["isMfaAccepted": false, "isCompliantDeviceAccepted": false, "isHybridAzureADJoinedDeviceAccepted": false])
            #expect(defaults["b2bCollaborationInbound"]?["usersAndGroups"] == ["accessType": "allowed", "targets": [["target": "AllUsers", "targetType": "user"]]])
            #expect(defaults["b2bCollaborationOutbound"]?["applications"] == ["accessType": "allowed", "targets": [["target": "AllApplications", "targetType": "application"]]])
            #expect(defaults["b2bDirectConnectInbound"]?["usersAndGroups"]?["accessType"] == "blocked")
            #expect(defaults["b2bDirectConnectOutbound"]?["applications"]?["accessType"] == "blocked")
            #expect(defaults["automaticUserConsentSettings"] == ["inboundAllowed": false, "outboundAllowed": false])
            #expect(defaults["invitationRedemptionIdentityProviderConfiguration"]?["fallbackIdentityProvider"] == "defaultConfiguredIdp")
        }
    }

    @Test("the default is changed by PATCH (no longer the service default, audited) and put back by resetToSystemDefault")
    func patchAndResetDefault() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let patched = await h.graph("PATCH", "\(Self.root)/default", token: token, json: [
                "inboundTrust": ["isMfaAccepted": true, "isCompliantDeviceAccepted": false, "isHybridAzureADJoinedDeviceAccepted": false],
                "b2bCollaborationInbound": ["usersAndGroups": ["accessType": "blocked", "targets": [["target": "AllUsers", "targetType": "user"]]],
                                            "applications": ["accessType": "blocked", "targets": [["target": "AllApplications", "targetType": "application"]]]],
            ])
            #expect(patched.status == 204, "\(patched.text)")
            let defaults = await h.graph("GET", "\(Self.root)/default", token: token).json
            #expect(defaults["isServiceDefault"] == false && defaults["inboundTrust"]?["isMfaAccepted"] == true)
            #expect(defaults["b2bCollaborationInbound"]?["usersAndGroups"]?["accessType"] == "blocked")
            #expect(defaults["b2bCollaborationOutbound"]?["usersAndGroups"]?["accessType"] == "allowed")
            let reset = await h.graph("POST", "\(Self.root)/default/resetToSystemDefault", token: token)
            #expect(reset.status == 204)
            let after = await h.graph("GET", "\(Self.root)/default", token: token).json
            #expect(after["isServiceDefault"] == true && after["inboundTrust"]?["isMfaAccepted"] == false)
            let audit = await h.graph("GET", "auditLogs/directoryAudits", token: token).json["value"]?.arrayValue ?? []
            let activities = audit.compactMap { $0["activityDisplayName"]?.stringValue }
            #expect(activities.contains("Update the company default cross-tenant access setting"))
            #expect(activities.contains("Reset the cross-tenant access default setting"))
        }
    }

    @Test("a PATCH of the default that breaks a rule gets 400 and changes nothing", arguments: [
        "automatic consent", "external users named", "half a setting", "bad access type", "unknown member", "bad target",
    ])
    func defaultRefusals(_ scenario: String) async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let everyone: JSONValue = ["accessType": "allowed", "targets": [["target": "AllApplications", "targetType": "application"]]]
            let patch: JSONValue = switch scenario {
            case "automatic consent": ["automaticUserConsentSettings": ["inboundAllowed": true, "outboundAllowed": false]]
            case "external users named": ["b2bCollaborationInbound": ["applications": everyone, "usersAndGroups": [
                "accessType": "allowed", "targets": [["target": "6f546279-4da5-4b53-a095-09ea0cef9971", "targetType": "group"]]]]]
            case "half a setting": ["b2bCollaborationInbound": ["applications": everyone]]
            case "bad access type": ["b2bCollaborationOutbound": ["applications": ["accessType": "maybe", "targets": []]]]
            case "unknown member": ["inboundTrust": ["isMfaAccepted": true, "isPasskeyAccepted": true]]
            default: ["b2bCollaborationOutbound": ["applications": ["accessType": "allowed", "targets": [["target": "Teams", "targetType": "application"]]],
                                                   "usersAndGroups": everyone]]
            }
            let response = await h.graph("PATCH", "\(Self.root)/default", token: token, json: patch)
            #expect(response.status == 400 && response.errorCode == "Request_BadRequest", "\(response.text)")
            #expect(await h.graph("GET", "\(Self.root)/default", token: token).json["isServiceDefault"] == true)
        }
    }

    @Test("Microsoft's partner example is created (201, unset settings null), read, listed, updated, deleted")
    func partnerLifecycle() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let created = await h.graph("POST", "\(Self.root)/partners", token: token, json: Self.documentedPartner)
            #expect(created.status == 201, "\(created.text)")
            #expect(created.json["tenantId"]?.stringValue == Self.fabrikam && created.json["inboundTrust"] == .null)
            #expect(created.json["b2bCollaborationInbound"] == .null && created.json["isInMultiTenantOrganization"] == false)
            #expect(created.json["b2bDirectConnectOutbound"] == ["usersAndGroups": ["accessType": "blocked", "targets": [
                ["target": "6f546279-4da5-4b53-a095-09ea0cef9971", "targetType": "group"]]]])
            #expect(created.json["b2bDirectConnectInbound"]?["applications"]?["targets"]?.arrayValue?.first?["target"] == "Office365")
            let again = await h.graph("POST", "\(Self.root)/partners", token: token, json: Self.documentedPartner)
            #expect(again.status == 409)
            let list = await h.graph("GET", "\(Self.root)/partners", token: token).json["value"]?.arrayValue ?? []
            #expect(list.count == 1 && list.first?["tenantId"]?.stringValue == Self.fabrikam)
            let patched = await h.graph("PATCH", "\(Self.root)/partners/\(Self.fabrikam)", token: token, json: [
                "inboundTrust": ["isMfaAccepted": true, "isCompliantDeviceAccepted": true, "isHybridAzureADJoinedDeviceAccepted": true],
                "b2bDirectConnectInbound": nil])
            #expect(patched.status == 204, "\(patched.text)")
            let read = await h.graph("GET", "\(Self.root)/partners/\(Self.fabrikam)", token: token).json
            #expect(read["inboundTrust"]?["isMfaAccepted"] == true && read["b2bDirectConnectInbound"] == .null)
            #expect(read["b2bDirectConnectOutbound"]?["usersAndGroups"]?["accessType"] == "blocked")
            let access = try await h.app.directory.crossTenantAccess(tenant: h.tenant.tenantId, partner: Self.fabrikam)
            #expect(access.acceptsPartnerMFA)
            #expect(await h.graph("DELETE", "\(Self.root)/partners/\(Self.fabrikam)", token: token).status == 204)
            #expect(await h.graph("GET", "\(Self.root)/partners/\(Self.fabrikam)", token: token).status == 404)
            let audit = await h.graph("GET", "auditLogs/directoryAudits", token: token).json["value"]?.arrayValue ?? []
            let activities = Set(audit.compactMap { $0["activityDisplayName"]?.stringValue })
            #expect(activities.isSuperset(of: ["Add a partner to cross-tenant access setting", "Update a partner cross-tenant access setting",
                                               "Delete partner specific cross-tenant access setting"]))
        }
    }

    @Test("a partner that breaks a rule is refused with 400 and nothing is stored", arguments: [
        "no tenant id", "own tenant", "not a guid", "read-only membership", "tenant restrictions without targets", "wrong type",
    ])
    func partnerRefusals(_ scenario: String) async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let body: JSONValue = switch scenario {
            case "no tenant id": ["inboundTrust": ["isMfaAccepted": true]]
            case "own tenant": ["tenantId": .string(h.tenant.tenantId)]
            case "not a guid": ["tenantId": "fabrikam.test"]
            case "read-only membership": ["tenantId": .string(Self.fabrikam), "isInMultiTenantOrganization": true]
            case "tenant restrictions without targets": ["tenantId": .string(Self.fabrikam), "tenantRestrictions": ["usersAndGroups": ["accessType": "blocked"]]]
            default: ["tenantId": .string(Self.fabrikam), "inboundTrust": ["isMfaAccepted": "yes"]]
            }
            let response = await h.graph("POST", "\(Self.root)/partners", token: token, json: body)
            #expect(response.status == 400 && response.errorCode == "Request_BadRequest", "\(response.text)")
            #expect(await h.graph("GET", "\(Self.root)/partners", token: token).json["value"] == [])
        }
    }

    @Test("a partner's identity synchronization policy is put, read, patched and deleted as Microsoft documents")
    func identitySynchronization() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let path = "\(Self.root)/partners/\(Self.fabrikam)/identitySynchronization"
            #expect(await h.graph("PUT", path, token: token, json: ["displayName": "Fabrikam", "userSyncInbound": ["isSyncAllowed": true]]).status == 404)
            #expect(await h.graph("POST", "\(Self.root)/partners", token: token, json: ["tenantId": .string(Self.fabrikam)]).status == 201)
            #expect(await h.graph("GET", path, token: token).status == 404)
            let put = await h.graph("PUT", path, token: token, json: ["displayName": "Fabrikam", "userSyncInbound": ["isSyncAllowed": true]])
            #expect(put.status == 204, "\(put.text)")
            let read = await h.graph("GET", path, token: token).json
            #expect(read["tenantId"]?.stringValue == Self.fabrikam && read["displayName"] == "Fabrikam" && read["userSyncInbound"] == ["isSyncAllowed": true])
            #expect(await h.graph("PATCH", path, token: token, json: ["userSyncInbound": ["isSyncAllowed": false]]).status == 204)
            let patched = await h.graph("GET", path, token: token).json
            #expect(patched["displayName"] == "Fabrikam" && patched["userSyncInbound"] == ["isSyncAllowed": false])
            #expect(await h.graph("PATCH", path, token: token, json: ["userSyncInbound": ["isSyncAllowed": false, "isAllowed": true]]).status == 400)
            #expect(await h.graph("DELETE", path, token: token).status == 204)
            #expect(await h.graph("GET", path, token: token).status == 404)
        }
    }

    @Test("reading needs Policy.Read.All or the role; writing needs Policy.ReadWrite.CrossTenantAccess or Security Administrator")
    func permissions() async throws {
        try await Harness.run { h in
            let nobody = try await h.caller(named: "nobody", role: nil)
            #expect(await h.status("GET", "\(Self.root)/default", as: nobody) == 403)
            #expect(await h.status("POST", "\(Self.root)/partners", ["tenantId": .string(Self.fabrikam)], as: nobody) == 403)
            let reader = try await h.caller(named: "reader", role: BuiltInRoles.securityReader)
            #expect(await h.status("GET", "\(Self.root)/default", as: reader) == 200)
            #expect(await h.status("PATCH", "\(Self.root)/default", ["inboundTrust": ["isMfaAccepted": true]], as: reader) == 403)
            let security = try await h.caller(named: "security", role: BuiltInRoles.securityAdministrator)
            let created = try await h.graph("POST", "\(Self.root)/partners", ["tenantId": .string(Self.fabrikam)], as: security)
            #expect(created.status == 201, "\(created.text)")
        }
    }
}

extension Harness {
    /// The status Graph answers `caller` with: a refusal thrown inside is mapped as the HTTP edge maps it.
    func status(_ method: String, _ path: String, _ json: JSONValue? = nil, as caller: Caller) async -> Int {
        do {
            return try await graph(method, path, json, as: caller).status
        } catch let error as DirectoryError {
            return error.code.status
        } catch {
            return 500
        }
    }
}
