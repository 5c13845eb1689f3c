import Foundation
import Testing
@testable import Server
import TesseraCore

@Suite("Multitenant organization over Graph (/tenantRelationships/multiTenantOrganization)")
struct CrossTenantOrganizationTests {
    static let root = "tenantRelationships/multiTenantOrganization"

    /// A second tenant in the harness's deployment, with a token of its automation app.
    static func fabrikam(_ h: Harness) async throws -> (tenant: ProvisionedTenant, token: String) {
        let tenant = try await TenantProvisioner(directory: h.app.directory).create(name: "Fabrikam", domain: "fabrikam.test")
        return (tenant, try await h.accessToken(clientId: tenant.clientId, secret: tenant.clientSecret, tenant: tenant.tenantId))
    }

    static func partnerFlag(_ h: Harness, token: String, partner: String) async -> JSONValue? {
        await h.graph("GET", "policies/crossTenantAccessPolicy/partners/\(partner)", token: token).json["isInMultiTenantOrganization"]
    }

    @Test("Microsoft's create example makes an active organization with this tenant its owner; a second PUT is refused")
    func create() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let before = await h.graph("GET", Self.root, token: token).json
            #expect(before["state"] == "inactive")
            let created = await h.graph("PUT", Self.root, token: token, json: [
                "displayName": "Contoso organization", "description": "Multitenant organization between Contoso, Fabrikam, and Woodgrove Bank"])
            #expect(created.status == 201, "\(created.text)")
            #expect(created.json["state"] == "active" && created.json["displayName"] == "Contoso organization")
            #expect(created.json["id"]?.stringValue.map(Identifier.isGUID) == true && created.json["createdDateTime"]?.stringValue != nil)
            let tenants = await h.graph("GET", "\(Self.root)/tenants", token: token).json["value"]?.arrayValue ?? []
            #expect(tenants.count == 1 && tenants.first?["role"] == "owner" && tenants.first?["state"] == "active")
            #expect(tenants.first?["tenantId"]?.stringValue == h.tenant.tenantId)
            let join = await h.graph("GET", "\(Self.root)/joinRequest", token: token).json
            #expect(join["memberState"] == "active" && join["role"] == "owner")
            #expect(await h.graph("PUT", Self.root, token: token, json: ["displayName": "Again"]).status == 400)
            #expect(await h.graph("PATCH", Self.root, token: token, json: ["description": "Contoso and Fabrikam"]).status == 204)
            #expect(await h.graph("GET", Self.root, token: token).json["description"] == "Contoso and Fabrikam")
        }
    }

    @Test("a tenant joins only after an owner added it; joining sets isInMultiTenantOrganization both ways; removal undoes it")
    func joinAndRemove() async throws {
        try await Harness.run { h in
            let contoso = try await h.accessToken()
            let (fabrikam, fabrikamToken) = try await Self.fabrikam(h)
            #expect(await h.graph("PUT", Self.root, token: contoso, json: ["displayName": "Contoso organization"]).status == 201)
            // Not added yet: the join request is refused and nothing is written.
            let early = await h.graph("PATCH", "\(Self.root)/joinRequest", token: fabrikamToken, json: ["addedByTenantId": .string(h.tenant.tenantId)])
            #expect(early.status == 400 && early.errorCode == "Request_BadRequest", "\(early.text)")
            #expect(await h.graph("GET", "\(Self.root)/joinRequest", token: fabrikamToken).json["addedByTenantId"] == "00000000-0000-0000-0000-000000000000")
            // Microsoft's add example.
            let added = await h.graph("POST", "\(Self.root)/tenants", token: contoso, json: ["tenantId": .string(fabrikam.tenantId), "displayName": "Fabrikam"])
            #expect(added.status == 201, "\(added.text)")
            #expect(added.json["state"] == "pending" && added.json["role"] == "member" && added.json["joinedDateTime"] == .null)
            #expect(added.json["addedByTenantId"]?.stringValue == h.tenant.tenantId)
            let twice = await h.graph("POST", "\(Self.root)/tenants", token: contoso, json: ["tenantId": .string(fabrikam.tenantId), "displayName": "Fabrikam"])
            #expect(twice.status == 400 && twice.json["error"]?["message"] == "Tenant is already being added in Multi-Tenant Organization.")
            // A join naming a tenant that did not add it is refused.
            let wrong = await h.graph("PATCH", "\(Self.root)/joinRequest", token: fabrikamToken, json: ["addedByTenantId": .string(Identifier.make())])
            #expect(wrong.status == 400)
            let joined = await h.graph("PATCH", "\(Self.root)/joinRequest", token: fabrikamToken, json: ["addedByTenantId": .string(h.tenant.tenantId)])
            #expect(joined.status == 204, "\(joined.text)")
            let request = await h.graph("GET", "\(Self.root)/joinRequest", token: fabrikamToken).json
            #expect(request["memberState"] == "active" && request["role"] == "member" && request["addedByTenantId"]?.stringValue == h.tenant.tenantId)
            let member = await h.graph("GET", "\(Self.root)/tenants/\(fabrikam.tenantId)", token: contoso).json
            #expect(member["state"] == "active" && member["joinedDateTime"]?.stringValue != nil)
            let seen = await h.graph("GET", Self.root, token: fabrikamToken).json
            #expect(seen["displayName"] == "Contoso organization" && seen["state"] == "active")
            #expect((await h.graph("GET", "\(Self.root)/tenants", token: fabrikamToken).json["value"]?.arrayValue ?? []).count == 2)
            #expect(await Self.partnerFlag(h, token: contoso, partner: fabrikam.tenantId) == true)
            #expect(await Self.partnerFlag(h, token: fabrikamToken, partner: h.tenant.tenantId) == true)
            // A member is not an owner: it cannot manage the organization.
            let byMember = await h.graph("POST", "\(Self.root)/tenants", token: fabrikamToken, json: ["tenantId": .string(Identifier.make()), "displayName": "W"])
            #expect(byMember.status == 403)
            #expect(await h.graph("DELETE", "\(Self.root)/tenants/\(h.tenant.tenantId)", token: fabrikamToken).status == 403)
            // While in the organization the partner configuration cannot be deleted.
            #expect(await h.graph("DELETE", "policies/crossTenantAccessPolicy/partners/\(fabrikam.tenantId)", token: contoso).status == 400)
            // Removal: both sides consistent at once.
            #expect(await h.graph("DELETE", "\(Self.root)/tenants/\(fabrikam.tenantId)", token: contoso).status == 204)
            #expect(await h.graph("GET", Self.root, token: fabrikamToken).json["state"] == "inactive")
            #expect(await h.graph("GET", "\(Self.root)/tenants", token: fabrikamToken).status == 404)
            #expect(await Self.partnerFlag(h, token: contoso, partner: fabrikam.tenantId) == false)
            #expect(await Self.partnerFlag(h, token: fabrikamToken, partner: h.tenant.tenantId) == false)
            let audit = await h.graph("GET", "auditLogs/directoryAudits", token: fabrikamToken).json["value"]?.arrayValue ?? []
            #expect(audit.contains { $0["activityDisplayName"] == "Join a multitenant organization" })
            #expect(audit.contains { $0["activityDisplayName"] == "Remove a tenant from a multitenant organization" })
        }
    }

    @Test("a removal that fails halfway (the member's partner configuration cannot be read) leaves both tenants as they were")
    func removalIsOneTransaction() async throws {
        try await Harness.run { h in
            let contoso = try await h.accessToken()
            let (fabrikam, fabrikamToken) = try await Self.fabrikam(h)
            #expect(await h.graph("PUT", Self.root, token: contoso, json: ["displayName": "Contoso organization"]).status == 201)
            #expect(await h.graph("POST", "\(Self.root)/tenants", token: contoso, json: ["tenantId": .string(fabrikam.tenantId), "displayName": "Fabrikam"]).status == 201)
            #expect(await h.graph("PATCH", "\(Self.root)/joinRequest", token: fabrikamToken, json: ["addedByTenantId": .string(h.tenant.tenantId)]).status == 204)
            // Damage Fabrikam's configuration for Contoso, which the removal rewrites after it has changed Contoso's side.
            let damaged = DirectoryService.crossTenantPartnerObjectID(h.tenant.tenantId), fabrikamID = fabrikam.tenantId
            try await h.app.store.write { tx in
                let current = try #require(try await tx.object(tenant: fabrikamID, id: damaged))
                var broken = current
                broken.body["tenantId"] = nil
                broken.version += 1
                try await tx.update(broken, expectedVersion: current.version)
            }
            let removal = await h.graph("DELETE", "\(Self.root)/tenants/\(fabrikam.tenantId)", token: contoso)
            #expect(removal.status >= 400)
            let member = await h.graph("GET", "\(Self.root)/tenants/\(fabrikam.tenantId)", token: contoso).json
            #expect(member["state"] == "active")
            #expect(await Self.partnerFlag(h, token: contoso, partner: fabrikam.tenantId) == true)
            #expect(await h.graph("GET", Self.root, token: fabrikamToken).json["state"] == "active")
        }
    }

    @Test("writing needs MultiTenantOrganization.ReadWrite.All or Security Administrator; a plain user is refused")
    func permissions() async throws {
        try await Harness.run { h in
            let nobody = try await h.caller(named: "nobody", role: nil)
            #expect(await h.status("PUT", Self.root, ["displayName": "Contoso"], as: nobody) == 403)
            #expect(await h.status("GET", Self.root, as: nobody) == 403)
            let security = try await h.caller(named: "security", role: BuiltInRoles.securityAdministrator)
            let created = try await h.graph("PUT", Self.root, ["displayName": "Contoso"], as: security)
            #expect(created.status == 201, "\(created.text)")
            let reader = try await h.caller(named: "reader", role: BuiltInRoles.globalReader)
            #expect(await h.status("GET", "\(Self.root)/tenants", as: reader) == 200)
            #expect(await h.status("PATCH", Self.root, ["displayName": "Renamed"], as: reader) == 403)
        }
    }

    @Test("bad bodies get 400 with the property named", arguments: [
        "no display name", "unknown member", "bad role", "not a tenant id",
    ])
    func refusals(_ scenario: String) async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            if scenario == "no display name" || scenario == "unknown member" {
                let body: JSONValue = scenario == "no display name" ? ["description": "x"] : ["displayName": "x", "color": "blue"]
                let response = await h.graph("PUT", Self.root, token: token, json: body)
                #expect(response.status == 400 && response.errorCode == "Request_BadRequest")
                #expect(await h.graph("GET", Self.root, token: token).json["state"] == "inactive")
                return
            }
            #expect(await h.graph("PUT", Self.root, token: token, json: ["displayName": "Contoso"]).status == 201)
            let body: JSONValue = scenario == "bad role" ? ["tenantId": .string(Identifier.make()), "displayName": "F", "role": "admin"]
                : ["tenantId": "fabrikam.test", "displayName": "F"]
            let response = await h.graph("POST", "\(Self.root)/tenants", token: token, json: body)
            #expect(response.status == 400 && response.errorCode == "Request_BadRequest", "\(response.text)")
            #expect((await h.graph("GET", "\(Self.root)/tenants", token: token).json["value"]?.arrayValue ?? []).count == 1)
        }
    }
}
