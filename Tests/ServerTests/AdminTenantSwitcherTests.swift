import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

/// Fabrikam governs Contoso (the harness's tenant, `TenantGovernanceAccessTests.world`); Alice of Fabrikam is in the
/// template's group, Bob is not. Both are guests of Contoso; Alice is also a guest of Northwind holding User
/// Administrator there, and a guest of Tailspin with no role; Woodgrove knows neither.
@Suite("Admin center tenant switcher: only the tenants the signed-in administrator has access to")
struct AdminTenantSwitcherTests {
    struct World {
        let governance: TenantGovernanceAccessTests.World
        let northwind: ProvisionedTenant
        let tailspin: ProvisionedTenant
        let woodgrove: ProvisionedTenant
        var h: Harness { governance.h }
        var fabrikam: String { governance.fabrikam.tenant.tenantId }

        /// A browser signed in at Fabrikam as `user`: its cookies (more are added as it switches).
        func browser(_ user: String) async throws -> [String] {
            let (_, set) = try await SignInSessions(app: h.app).start(tenant: fabrikam, userID: user, amr: ["fido", "mfa"], baseURL: Harness.base)
            return [String(set.split(separator: ";")[0])]
        }

        func get(_ path: String, _ cookies: [String]) async -> APIResponse {
            await h.send("GET", path, headers: ["cookie": cookies.joined(separator: "; ")])
        }

        /// Posts the switch form of `tenant`'s admin center to `destination`, with the session's CSRF token.
        func switchTo(_ destination: String, from tenant: String, _ cookies: [String]) async throws -> APIResponse {
            let csrf = try AdminCenterTests.Browser.csrf(in: await get("/admin/\(tenant)/users", cookies))
            let body = "csrf=\(csrf.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? csrf)&tenant=\(destination)"
            return await h.send("POST", "/admin/\(tenant)/switch", headers: [
                "cookie": cookies.joined(separator: "; "), "origin": Harness.base, "content-type": "application/x-www-form-urlencoded",
            ], body: Array(body.utf8))
        }
    }

    /// Invites `user` of Fabrikam to `tenant` and redeems it; returns the guest's id there.
    static func guest(_ h: Harness, of fabrikam: String, user: String, email: String, in tenant: String) async throws -> String {
        let resource = try #require(try await h.app.tenantRecord(tenant))
        let home = try #require(try await h.app.tenantRecord(fabrikam))
        let request = try InvitationRequest(body: ["invitedUserEmailAddress": .string(email), "inviteRedirectUrl": "https://myapps.test/"])
        let actor = Actor(kind: .user, id: Identifier.make(), displayName: "Inviter")
        let invitation = try await h.app.directory.invite(tenant: resource, request: request, home: home, homeIssuer: "\(Harness.base)/\(fabrikam)/v2.0",
                                                          actor: actor)
        try await h.app.directory.redeem(tenant: tenant, invitation: invitation.id, homeUserID: user, actor: actor)
        return invitation.userID
    }

    static func world(_ h: Harness) async throws -> World {
        let governance = try await TenantGovernanceAccessTests.world(h)
        let fabrikam = governance.fabrikam.tenant.tenantId
        let provisioner = TenantProvisioner(directory: h.app.directory)
        let northwind = try await provisioner.create(name: "Northwind", domain: "northwind.test")
        let tailspin = try await provisioner.create(name: "Tailspin", domain: "tailspin.test")
        let woodgrove = try await provisioner.create(name: "Woodgrove", domain: "woodgrove.test")
        // Both hold a role at home (Global Reader), so Fabrikam's admin center lets them in.
        for user in [governance.alice, governance.bob] {
            let assigned = await h.graph("POST", "roleManagement/directory/roleAssignments", token: governance.fabrikamToken, json: [
                "principalId": .string(user), "roleDefinitionId": .string(BuiltInRoles.globalReader), "directoryScopeId": "/"])
            #expect(assigned.status == 201, "\(assigned.text)")
        }
        _ = try await guest(h, of: fabrikam, user: governance.alice, email: "alice@fabrikam.test", in: h.tenant.tenantId)
        _ = try await guest(h, of: fabrikam, user: governance.bob, email: "bob@fabrikam.test", in: h.tenant.tenantId)
        let inNorthwind = try await guest(h, of: fabrikam, user: governance.alice, email: "alice@fabrikam.test", in: northwind.tenantId)
        let northwindToken = try await h.accessToken(clientId: northwind.clientId, secret: northwind.clientSecret, tenant: northwind.tenantId)
        let assigned = await h.graph("POST", "roleManagement/directory/roleAssignments", token: northwindToken, json: [
            "principalId": .string(inNorthwind), "roleDefinitionId": .string(BuiltInRoles.userAdministrator), "directoryScopeId": "/"])
        #expect(assigned.status == 201, "\(assigned.text)")
        _ = try await guest(h, of: fabrikam, user: governance.alice, email: "alice@fabrikam.test", in: tailspin.tenantId)
        return World(governance: governance, northwind: northwind, tailspin: tailspin, woodgrove: woodgrove)
    }

    @Test("every page has the switch control; Alice is offered her home, the tenant Fabrikam governs and the one where her guest has a role, and switches into each and back")
    func switchesOnlyWhereAllowed() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            var cookies = try await w.browser(w.governance.alice)
            for page in ["users", "groups", "partners", "governance"] {
                let shown = await w.get("/admin/\(w.fabrikam)/\(page)", cookies)
                #expect(shown.text.contains("id=\"switch-tenant\" href=\"/admin/\(w.fabrikam)/switch\""), "\(page)")
            }
            let list = await w.get("/admin/\(w.fabrikam)/switch", cookies)
            #expect(list.status == 200, "\(list.text)")
            for (tenant, access) in [(w.fabrikam, "Home tenant"), (h.tenant.tenantId, "Governed tenant"), (w.northwind.tenantId, "Guest with a role")] {
                #expect(list.text.contains(tenant) && list.text.contains(access), "\(tenant) \(access)")
            }
            #expect(!list.text.contains(w.tailspin.tenantId) && !list.text.contains(w.woodgrove.tenantId))

            // Into Contoso, as the guest with the governance relationship's roles.
            let switched = try await w.switchTo(h.tenant.tenantId, from: w.fabrikam, cookies)
            #expect(switched.status == 303 && AdminCenterTests.location(switched) == "/admin/\(h.tenant.tenantId)/users", "\(switched.text)")
            let set = try #require(switched.headers.first { $0.name == "Set-Cookie" }?.value)
            cookies.append(String(set.split(separator: ";")[0]))
            let contoso = await w.get("/admin/\(h.tenant.tenantId)/users", cookies)
            #expect(contoso.status == 200 && contoso.text.contains("alice_fabrikam.test#EXT#@contoso.test"), "\(contoso.text)")
            // From Contoso to Northwind, and home again (its own session, still there).
            let fromContoso = await w.get("/admin/\(h.tenant.tenantId)/switch", cookies)
            #expect(fromContoso.text.contains(w.northwind.tenantId) && fromContoso.text.contains(w.fabrikam))
            let toNorthwind = try await w.switchTo(w.northwind.tenantId, from: h.tenant.tenantId, cookies)
            #expect(toNorthwind.status == 303 && AdminCenterTests.location(toNorthwind) == "/admin/\(w.northwind.tenantId)/users")
            let home = try await w.switchTo(w.fabrikam, from: h.tenant.tenantId, cookies)
            #expect(home.status == 303 && AdminCenterTests.location(home) == "/admin/\(w.fabrikam)/users"
                && !home.headers.contains { $0.name == "Set-Cookie" })
        }
    }

    @Test("a tenant without access is refused with no session: a guest without a role, an unrelated tenant, Bob outside the governance group, a terminated relationship")
    func refusesWithoutAccess() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            let alice = try await w.browser(w.governance.alice)
            for tenant in [w.tailspin.tenantId, w.woodgrove.tenantId, "not-a-tenant"] {
                let refused = try await w.switchTo(tenant, from: w.fabrikam, alice)
                #expect(refused.status == 403 && refused.text.contains("id=\"refused\"") && !refused.headers.contains { $0.name == "Set-Cookie" },
                        "\(tenant)")
            }
            let bob = try await w.browser(w.governance.bob)
            #expect(!(await w.get("/admin/\(w.fabrikam)/switch", bob)).text.contains(h.tenant.tenantId))
            #expect(try await w.switchTo(h.tenant.tenantId, from: w.fabrikam, bob).status == 403)
            let forged = await h.send("POST", "/admin/\(w.fabrikam)/switch", headers: [
                "cookie": alice.joined(separator: "; "), "content-type": "application/x-www-form-urlencoded"],
                                      body: Array("csrf=forged&tenant=\(h.tenant.tenantId)".utf8))
            #expect(forged.status == 403 && !forged.headers.contains { $0.name == "Set-Cookie" })
            // The relationship terminated: Contoso is no longer offered, nor entered.
            let terminated = try await TenantGovernanceRelationshipTests.call(
                h, "PATCH", "governanceRelationships/\(w.governance.relationship)", ["status": "terminated"], as: w.governance.fabrikam.globalAdmin)
            #expect(terminated.status == 204, "\(terminated.text)")
            #expect(!(await w.get("/admin/\(w.fabrikam)/switch", alice)).text.contains(h.tenant.tenantId))
            #expect(try await w.switchTo(h.tenant.tenantId, from: w.fabrikam, alice).status == 403)
        }
    }
}
