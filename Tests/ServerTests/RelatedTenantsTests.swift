import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

/// The switcher's world (`AdminTenantSwitcherTests.world`): Fabrikam governs Contoso, Alice and Bob of Fabrikam are
/// Contoso's guests, Alice is Northwind's and Tailspin's too; Contoso also lets Woodgrove synchronize users in.
@Suite("Related tenants (beta /directory/tenantGovernance/relatedTenants): the tenants a tenant has links with")
struct RelatedTenantsTests {
    static func related(_ h: Harness, as caller: Caller) async throws -> [String: JSONValue] {
        let list = try await TenantGovernanceRelationshipTests.call(h, "GET", "relatedTenants", as: caller)
        #expect(list.status == 200, "\(list.text)")
        return Dictionary(uniqueKeysWithValues: (list.json["value"]?.arrayValue ?? []).compactMap { item in item["id"]?.stringValue.map { ($0, item) } })
    }

    @Test("each side sees the other with the kinds of link and B2B counts; a tenant linked to neither is absent; other roles refused")
    func listsLinks() async throws {
        try await Harness.run { h in
            let w = try await AdminTenantSwitcherTests.world(h)
            let token = try await h.accessToken()
            #expect(await h.graph("POST", "policies/crossTenantAccessPolicy/partners", token: token,
                                  json: ["tenantId": .string(w.woodgrove.tenantId)]).status == 201)
            let sync = await h.graph("PUT", "policies/crossTenantAccessPolicy/partners/\(w.woodgrove.tenantId)/identitySynchronization", token: token,
                                     json: ["userSyncInbound": ["isSyncAllowed": true]])
            #expect(sync.status == 204 || sync.status == 200, "\(sync.text)")
            let contosoAdmin = try await h.caller(named: "contosoga2", role: BuiltInRoles.globalAdministrator)

            let contoso = try await Self.related(h, as: contosoAdmin)
            #expect(Set(contoso.keys) == [w.fabrikam, w.woodgrove.tenantId], "\(contoso)")
            let fabrikam = try #require(contoso[w.fabrikam])
            #expect(fabrikam["@odata.type"] == "#microsoft.graph.tenantGovernanceServices.relatedTenant" && fabrikam["displayName"] == "Fabrikam")
            #expect(fabrikam["relationships"] == ["b2bCollaboration", "tenantGovernance"])
            #expect(fabrikam["b2BRegistrationMetrics"]?["recent"]?["inboundTotalUsers"] == 2
                && fabrikam["b2BRegistrationMetrics"]?["recent"]?["outboundTotalUsers"] == 0)
            #expect(fabrikam["createdDateTime"]?.stringValue != nil)
            #expect(contoso[w.woodgrove.tenantId]?["relationships"] == ["crossTenantSync"]
                && contoso[w.woodgrove.tenantId]?["b2BRegistrationMetrics"] == .null)

            let fromFabrikam = try await Self.related(h, as: w.governance.fabrikam.globalAdmin)
            #expect(Set(fromFabrikam.keys) == [h.tenant.tenantId, w.northwind.tenantId, w.tailspin.tenantId], "\(fromFabrikam)")
            #expect(fromFabrikam[h.tenant.tenantId]?["b2BRegistrationMetrics"]?["recent"]?["outboundTotalUsers"] == 2)
            #expect(fromFabrikam[w.northwind.tenantId]?["relationships"] == ["b2bCollaboration"])

            let one = try await TenantGovernanceRelationshipTests.call(h, "GET", "relatedTenants/\(w.fabrikam)", as: contosoAdmin)
            #expect(one.status == 200 && one.json["id"]?.stringValue == w.fabrikam)
            #expect(try await TenantGovernanceRelationshipTests.call(h, "GET", "relatedTenants/\(w.northwind.tenantId)", as: contosoAdmin).status == 404)
            let userAdmin = try await h.caller(named: "useradmin2", role: BuiltInRoles.userAdministrator)
            #expect(try await TenantGovernanceRelationshipTests.call(h, "GET", "relatedTenants", as: userAdmin).status == 403)

            // The governance relationship terminated: Fabrikam stays related through B2B only.
            #expect(try await TenantGovernanceRelationshipTests.call(h, "PATCH", "governanceRelationships/\(w.governance.relationship)",
                                                                     ["status": "terminated"], as: w.governance.fabrikam.globalAdmin).status == 204)
            #expect(try await Self.related(h, as: contosoAdmin)[w.fabrikam]?["relationships"] == ["b2bCollaboration"])
        }
    }

    @Test("the partners page lists the related tenants to a Global Administrator, with names escaped, and says who may see them otherwise")
    func partnersPage() async throws {
        try await Harness.run { h in
            let w = try await AdminTenantSwitcherTests.world(h)
            let admin = try await h.caller(named: "contosoga3", role: BuiltInRoles.globalAdministrator)
            let page = await (try await AdminGovernancePagesTests.Browser.signIn(h, admin)).get("/partners")
            #expect(page.status == 200 && page.text.contains("id=\"related-tenants\""), "\(page.text)")
            #expect(page.text.contains(w.fabrikam) && page.text.contains("Tenant governance") && page.text.contains("2 in, 0 out"))
            let reader = try await h.caller(named: "secreader", role: BuiltInRoles.securityReader)
            let limited = await (try await AdminGovernancePagesTests.Browser.signIn(h, reader)).get("/partners")
            #expect(limited.status == 200 && !limited.text.contains(w.fabrikam) && limited.text.contains("Global Reader sees"))
        }
    }
}
