import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

/// Governance requests and relationships between two tenants of one deployment.
@Suite("Tenant governance: requests, acceptance by the governed tenant's Global Administrator, relationships and termination")
struct TenantGovernanceRelationshipTests {
    static let root = "directory/tenantGovernance"

    /// A second tenant with a Global Administrator and a User Administrator, as Graph callers.
    struct Other {
        let tenant: ProvisionedTenant
        let globalAdmin: Caller
        let userAdmin: Caller
    }

    static func other(_ h: Harness, name: String, domain: String) async throws -> Other {
        let tenant = try await TenantProvisioner(directory: h.app.directory).create(name: name, domain: domain)
        let token = try await h.accessToken(clientId: tenant.clientId, secret: tenant.clientSecret, tenant: tenant.tenantId)
        func user(_ nick: String, role: String) async throws -> Caller {
            let created = await h.graph("POST", "users", token: token, json: [
                "accountEnabled": true, "displayName": .string(nick), "mailNickname": .string(nick), "userPrincipalName": .string("\(nick)@\(domain)"),
                "passwordProfile": ["password": "Xy!9aaaaaaaa"]])
            let id = try #require(created.json["id"]?.stringValue, "\(created.text)")
            #expect(await h.graph("POST", "roleManagement/directory/roleAssignments", token: token, json: [
                "principalId": .string(id), "roleDefinitionId": .string(role), "directoryScopeId": "/"]).status == 201)
            let tenantID = tenant.tenantId
            let stored = try #require(try await h.app.store.read { tx in try await tx.object(tenant: tenantID, id: id) })
            return try await Caller.user(tenant: tenantID, user: stored, scopes: nil, app: h.app)
        }
        return Other(tenant: tenant, globalAdmin: try await user("ga", role: BuiltInRoles.globalAdministrator),
                     userAdmin: try await user("ua", role: BuiltInRoles.userAdministrator))
    }

    /// Contoso's Global Administrator with a template granting User Administrator to a role-assignable group.
    static func governing(_ h: Harness) async throws -> (admin: Caller, template: String) {
        let admin = try await h.caller(named: "contosoga", role: BuiltInRoles.globalAdministrator)
        let group = try await TenantGovernancePolicyTemplateTests.adminsGroup(h)
        let created = try await TenantGovernancePolicyTemplateTests.call(h, "POST", "\(root)/governancePolicyTemplates",
                                                                          TenantGovernancePolicyTemplateTests.template(group: group), as: admin)
        return (admin, try #require(created.json["id"]?.stringValue, "\(created.text)"))
    }

    static func call(_ h: Harness, _ method: String, _ path: String, _ json: JSONValue? = nil, as caller: Caller) async throws -> APIResponse {
        try await TenantGovernancePolicyTemplateTests.call(h, method, "\(root)/\(path)", json, as: caller, version: "beta")
    }

    static func request(_ h: Harness, governed: String, template: String, as admin: Caller) async throws -> APIResponse {
        try await call(h, "POST", "governanceRequests", [
            "governedTenantId": .string(governed),
            "governancePolicyTemplate@odata.bind": .string("https://graph.microsoft.com/beta/directory/tenantGovernance/governancePolicyTemplates/\(template)")],
            as: admin)
    }

    @Test("a request seen by both tenants is accepted by the governed Global Administrator only; the relationship is active in both, audited in both, and ends when the governing tenant terminates it")
    func requestAcceptTerminate() async throws {
        try await Harness.run { h in
            let (contoso, template) = try await Self.governing(h)
            let fabrikam = try await Self.other(h, name: "Fabrikam", domain: "fabrikam.test")
            let fab = fabrikam.tenant.tenantId
            let sent = try await Self.request(h, governed: fab, template: template, as: contoso)
            #expect(sent.status == 201, "\(sent.text)")
            #expect(sent.json["@odata.type"] == "#microsoft.graph.tenantGovernanceServices.governanceRequest" && sent.json["status"] == "pending")
            #expect(sent.json["governingTenantName"] == "Contoso" && sent.json["governedTenantName"] == "Fabrikam")
            #expect(sent.json["policySnapshot"]?["policyId"] == .string(template))
            let id = try #require(sent.json["id"]?.stringValue)
            #expect(try await Self.call(h, "GET", "governanceRequests", as: fabrikam.globalAdmin).json["value"]?.arrayValue?.map { $0["id"] } == [.string(id)])

            // Not the governing tenant, and not a governed administrator who is not a Global Administrator.
            let byGoverning = try await Self.call(h, "PATCH", "governanceRequests/\(id)", ["status": "accepted"], as: contoso)
            #expect(byGoverning.status == 403, "\(byGoverning.text)")
            let byUserAdmin = try await Self.call(h, "PATCH", "governanceRequests/\(id)", ["status": "accepted"], as: fabrikam.userAdmin)
            #expect(byUserAdmin.status == 403, "\(byUserAdmin.text)")

            #expect(try await Self.call(h, "PATCH", "governanceRequests/\(id)", ["status": "accepted"], as: fabrikam.globalAdmin).status == 204)
            #expect(try await Self.call(h, "GET", "governanceRequests/\(id)", as: contoso).json["status"] == "accepted")
            let mine = try await Self.call(h, "GET", "governanceRelationships", as: contoso).json["value"]?.arrayValue ?? []
            let theirs = try await Self.call(h, "GET", "governanceRelationships", as: fabrikam.globalAdmin).json["value"]?.arrayValue ?? []
            #expect(mine.count == 1 && mine == theirs, "\(mine) \(theirs)")
            let relationship = try #require(mine.first)
            #expect(relationship["status"] == "active" && relationship["createdType"] == "approvedByAdmin" && relationship["governedTenantId"] == .string(fab))
            #expect(relationship["policySnapshot"]?["delegatedAdministrationRoleAssignments"]?.arrayValue?.count == 1)
            let relationshipID = try #require(relationship["id"]?.stringValue)

            // Audited in both tenants, saying who acted for which tenant.
            for tenant in [h.tenant.tenantId, fab] {
                let changes = try await h.app.store.read { tx in
                    try await tx.changes(tenant: tenant, kinds: [GovernanceRelationships.requestKind, GovernanceRelationships.relationshipKind],
                                         after: 0, limit: 100)
                }
                #expect(changes.map(\.activity) == ["Create governance request", "Accept governance request", "Create governance relationship"])
                #expect(changes[1].details["actorTenantId"] == .string(fab) && changes[1].actor["user"]?["displayName"] == "ga")
            }

            let audits = await h.graph("GET", "auditLogs/directoryAudits", token: try await h.accessToken())
            #expect(audits.status == 200 && audits.text.contains("Accept governance request"), "\(audits.text)")

            // A second request while the relationship is active is refused.
            #expect(try await Self.request(h, governed: fab, template: template, as: contoso).status == 409)
            // The policy does not let the governed tenant end it; the governing tenant can.
            let governedEnds = try await Self.call(h, "PATCH", "governanceRelationships/\(relationshipID)", ["status": "terminated"], as: fabrikam.globalAdmin)
            #expect(governedEnds.status == 403, "\(governedEnds.text)")
            #expect(try await Self.call(h, "PATCH", "governanceRelationships/\(relationshipID)", ["status": "terminated"], as: contoso).status == 204)
            #expect(try await Self.call(h, "GET", "governanceRelationships/\(relationshipID)", as: fabrikam.globalAdmin).json["status"] == "terminated")
        }
    }

    @Test("a tenant outside the relationship sees and changes none of it")
    func outsidersSeeNothing() async throws {
        try await Harness.run { h in
            let (contoso, template) = try await Self.governing(h)
            let fabrikam = try await Self.other(h, name: "Fabrikam", domain: "fabrikam.test")
            let northwind = try await Self.other(h, name: "Northwind", domain: "northwind.test")
            let id = try #require(try await Self.request(h, governed: fabrikam.tenant.tenantId, template: template, as: contoso).json["id"]?.stringValue)
            #expect(try await Self.call(h, "GET", "governanceRequests", as: northwind.globalAdmin).json["value"] == [])
            #expect(try await Self.call(h, "GET", "governanceRequests/\(id)", as: northwind.globalAdmin).status == 404)
            #expect(try await Self.call(h, "PATCH", "governanceRequests/\(id)", ["status": "accepted"], as: northwind.globalAdmin).status == 404)
            #expect(try await Self.call(h, "GET", "governanceRequests/\(id)", as: fabrikam.globalAdmin).json["status"] == "pending")
        }
    }

    @Test("a rejected request makes no relationship; an expired one cannot be accepted; a request to no tenant or to itself is refused")
    func rejectedExpiredAndBad() async throws {
        try await Harness.run { h in
            let (contoso, template) = try await Self.governing(h)
            let fabrikam = try await Self.other(h, name: "Fabrikam", domain: "fabrikam.test")
            let first = try #require(try await Self.request(h, governed: fabrikam.tenant.tenantId, template: template, as: contoso).json["id"]?.stringValue)
            #expect(try await Self.call(h, "PATCH", "governanceRequests/\(first)", ["status": "rejected"], as: fabrikam.globalAdmin).status == 204)
            #expect(try await Self.call(h, "GET", "governanceRelationships", as: contoso).json["value"] == [])

            let second = try #require(try await Self.request(h, governed: fabrikam.tenant.tenantId, template: template, as: contoso).json["id"]?.stringValue)
            h.clock.advance(days: 15)
            let late = try await Self.call(h, "PATCH", "governanceRequests/\(second)", ["status": "accepted"], as: fabrikam.globalAdmin)
            #expect(late.status == 400 && late.text.contains("expired"), "\(late.text)")
            // An expired request does not stand in the way of a new one.
            #expect(try await Self.request(h, governed: fabrikam.tenant.tenantId, template: template, as: contoso).status == 201)

            let nowhere = try await Self.request(h, governed: "00000000-0000-0000-0000-00000000abcd", template: template, as: contoso)
            #expect(nowhere.status == 400, "\(nowhere.text)")
            #expect(try await Self.request(h, governed: h.tenant.tenantId, template: template, as: contoso).status == 400)
            #expect(try await Self.request(h, governed: fabrikam.tenant.tenantId, template: "no-such-template", as: contoso).status == 404)
        }
    }
}
