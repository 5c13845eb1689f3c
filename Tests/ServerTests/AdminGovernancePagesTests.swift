import Foundation
import Testing
import TesseraCore
import TesseraTesting

@testable import Server

/// The admin center's multi-tenant governance pages: cross-tenant access (partners), the multitenant organization,
/// tenant governance (with the governed tenant's answer to a request) and configuration drift. Each is read through
/// Graph as the signed-in administrator, so the roles that may read it see it, the others get 403, and every value is
/// escaped.
@Suite("Admin center: partners, organization, governance and drift pages")
struct AdminGovernancePagesTests {
    static let hostile = "<script>alert('x')</script>"
    static let escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"

    /// A signed-in browser in any tenant of the harness's deployment.
    struct Browser {
        let h: Harness
        let tenant: String
        let cookie: String
        var base: String { "/admin/\(tenant)" }

        static func signIn(_ h: Harness, tenant: String? = nil, userID: String) async throws -> Browser {
            let tenant = tenant ?? h.tenant.tenantId
            let (_, setCookie) = try await SignInSessions(app: h.app).start(tenant: tenant, userID: userID, amr: ["fido", "mfa"],
                                                                             baseURL: Harness.base)
            return Browser(h: h, tenant: tenant, cookie: String(setCookie.split(separator: ";")[0]))
        }

        static func signIn(_ h: Harness, _ caller: Caller) async throws -> Browser {
            try await signIn(h, tenant: caller.tenant, userID: try #require(caller.userID))
        }

        func get(_ path: String, _ query: [(name: String, value: String)] = []) async -> APIResponse {
            await h.send("GET", base + path, query: query, headers: ["cookie": cookie])
        }

        /// Posts a form as the page does, with the CSRF token read from `page` unless one is given.
        func post(_ path: String, from page: String, csrf: String? = nil) async throws -> APIResponse {
            let token: String
            if let csrf { token = csrf } else { token = try AdminCenterTests.Browser.csrf(in: await get(page)) }
            let headers = ["cookie": cookie, "origin": Harness.base, "content-type": "application/x-www-form-urlencoded"]
            return await h.send("POST", base + path, headers: headers,
                                body: Array("csrf=\(token.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? token)".utf8))
        }
    }

    static func expectEscaped(_ page: APIResponse, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(page.text.contains(escaped), "the hostile value is shown, escaped", sourceLocation: sourceLocation)
        #expect(!page.text.contains(hostile), "and never as markup", sourceLocation: sourceLocation)
    }

    @Test("Cross-tenant access: the default and each partner for Global Administrator, Security Administrator and Security Reader (read only); 403 for a User Administrator")
    func partners() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let root = PartnersPage.root, partner = "9c5d131d-b1c3-4fc4-9e3f-c6557947d551"
            #expect(await h.graph("POST", "\(root)/partners", token: token, json: [
                "tenantId": .string(partner),
                "inboundTrust": ["isMfaAccepted": true, "isCompliantDeviceAccepted": false, "isHybridAzureADJoinedDeviceAccepted": false],
                "b2bCollaborationInbound": ["usersAndGroups": ["accessType": "blocked", "targets": [["target": "AllUsers", "targetType": "user"]]],
                                            "applications": ["accessType": "blocked", "targets": [["target": "AllApplications", "targetType": "application"]]]],
                "b2bDirectConnectInbound": ["usersAndGroups": ["accessType": "allowed", "targets": [["target": "AllUsers", "targetType": "user"]]],
                                            "applications": ["accessType": "allowed", "targets": [["target": "AllApplications", "targetType": "application"]]]],
                "automaticUserConsentSettings": ["inboundAllowed": true],
            ]).status == 201)
            #expect(await h.graph("PUT", "\(root)/partners/\(partner)/identitySynchronization", token: token, json: [
                "displayName": .string(Self.hostile), "userSyncInbound": ["isSyncAllowed": true]]).status == 204)

            let admin = try await Browser.signIn(h, userID: h.tenant.adminUserId)
            let page = await admin.get("/partners")
            #expect(page.status == 200, "\(page.text)")
            #expect(page.text.contains(partner) && page.text.contains("Trusts MFA") && page.text.contains("Users may be synchronized in"))
            #expect(page.text.contains("service default") && page.text.contains("Trusts nothing from the home tenant"))
            #expect(page.text.contains("<span class=\"pill off\">blocked</span> AllUsers"))
            #expect(page.text.contains("<th>B2B direct connect inbound</th>") && page.text.contains("<span class=\"pill\">allowed</span> AllUsers"))
            #expect(page.text.contains("Automatic inbound"))
            #expect(!page.text.contains("Read only") && page.text.contains("aria-current=\"page\">Cross-tenant access"))
            Self.expectEscaped(page)

            let securityAdmin = try await Browser.signIn(h, try await h.caller(named: "secadmin", role: BuiltInRoles.securityAdministrator))
            let writable = await securityAdmin.get("/partners")
            #expect(writable.status == 200 && writable.text.contains(partner) && !writable.text.contains("Read only"))
            let reader = try await Browser.signIn(h, try await h.caller(named: "secreader", role: BuiltInRoles.securityReader))
            let readOnly = await reader.get("/partners")
            #expect(readOnly.status == 200 && readOnly.text.contains(partner) && readOnly.text.contains("Read only"))
            let userAdmin = try await Browser.signIn(h, try await h.caller(named: "useradmin", role: BuiltInRoles.userAdministrator))
            let refused = await userAdmin.get("/partners")
            #expect(refused.status == 403 && refused.text.contains("Insufficient privileges") && !refused.text.contains(partner))
        }
    }

    @Test("Multitenant organization: the owner sees the organization, its tenants with role and state; a joined member its join request; 403 for a User Administrator")
    func organization() async throws {
        try await Harness.run { h in
            let contoso = try await h.accessToken()
            let root = OrganizationPage.root
            let admin = try await Browser.signIn(h, userID: h.tenant.adminUserId)
            #expect((await admin.get("/organization")).text.contains("is in no multitenant organization"))

            let (fabrikam, fabrikamToken) = try await CrossTenantOrganizationTests.fabrikam(h)
            #expect(await h.graph("PUT", root, token: contoso, json: [
                "displayName": .string(Self.hostile), "description": "Contoso and its subsidiaries"]).status == 201)
            #expect(await h.graph("POST", "\(root)/tenants", token: contoso, json: [
                "tenantId": .string(fabrikam.tenantId), "displayName": "Fabrikam"]).status == 201)
            let pending = await admin.get("/organization")
            #expect(pending.status == 200, "\(pending.text)")
            Self.expectEscaped(pending)
            #expect(pending.text.contains("Contoso and its subsidiaries") && pending.text.contains(fabrikam.tenantId))
            #expect(pending.text.contains("<td>owner</td><td><span class=\"pill\">active</span>"))
            #expect(pending.text.contains("<td>member</td><td><span class=\"pill off\">pending</span>"))

            #expect(await h.graph("PATCH", "\(root)/joinRequest", token: fabrikamToken, json: [
                "addedByTenantId": .string(h.tenant.tenantId)]).status == 204)
            #expect((await admin.get("/organization")).text.contains("<td>member</td><td><span class=\"pill\">active</span>"))
            let fabrikamAdmin = try await Browser.signIn(h, tenant: fabrikam.tenantId, userID: fabrikam.adminUserId)
            let member = await fabrikamAdmin.get("/organization")
            #expect(member.status == 200 && member.text.contains("Asked to join as <strong>member</strong>"))
            #expect(member.text.contains(h.tenant.tenantId))
            Self.expectEscaped(member)

            let userAdmin = try await Browser.signIn(h, try await h.caller(named: "useradmin", role: BuiltInRoles.userAdministrator))
            let refused = await userAdmin.get("/organization")
            #expect(refused.status == 403 && !refused.text.contains(fabrikam.tenantId))
        }
    }

    @Test("Tenant governance: the governed Global Administrator accepts a request with the page's form (CSRF checked) and the relationship is active in both tenants; the governing tenant and a User Administrator cannot answer")
    func governance() async throws {
        try await Harness.run { h in
            let contoso = try await h.caller(named: "contosoga", role: BuiltInRoles.globalAdministrator)
            let group = try await TenantGovernancePolicyTemplateTests.adminsGroup(h)
            let created = try await h.graph("POST", "\(GovernancePage.root)/governancePolicyTemplates", [
                "displayName": "Helpdesk", "description": .string(Self.hostile), "multiTenantApplicationsToProvision": [],
                "delegatedAdministrationRoleAssignments": [
                    ["roleTemplates": [["id": .string(BuiltInRoles.userAdministrator)]], "group": ["id": .string(group)]]],
            ], as: contoso)
            #expect(created.status == 201, "\(created.text)")
            let template = try #require(created.json["id"]?.stringValue)
            let fabrikam = try await TenantGovernanceRelationshipTests.other(h, name: "Fabrikam", domain: "fabrikam.test")
            let sent = try await TenantGovernanceRelationshipTests.request(h, governed: fabrikam.tenant.tenantId, template: template, as: contoso)
            #expect(sent.status == 201, "\(sent.text)")
            let id = try #require(sent.json["id"]?.stringValue)

            // The governing tenant sees what it sent and its templates, and has nothing to answer.
            let governing = try await Browser.signIn(h, contoso)
            let sentPage = await governing.get("/governance")
            #expect(sentPage.status == 200, "\(sentPage.text)")
            #expect(sentPage.text.contains("Sent to Fabrikam") && sentPage.text.contains("Contoso tenant admins: User Administrator"))
            #expect(!sentPage.text.contains("/governance/requests/\(id)/accept"))
            Self.expectEscaped(sentPage)
            // (The governance page has no form for it; the session's token is taken from the users page.)
            let byGoverning = try await governing.post("/governance/requests/\(id)/accept", from: "/users")
            #expect(byGoverning.status == 400 && byGoverning.text.contains("Only the governed tenant"), "\(byGoverning.text)")

            // A User Administrator of the governed tenant reads nothing, and its post is refused by Graph.
            let userAdmin = try await Browser.signIn(h, fabrikam.userAdmin)
            #expect(await userAdmin.get("/governance").status == 403)
            let csrf = try AdminCenterTests.Browser.csrf(in: await userAdmin.get("/users"))
            #expect(try await userAdmin.post("/governance/requests/\(id)/accept", from: "/users", csrf: csrf).status == 400)

            let governed = try await Browser.signIn(h, fabrikam.globalAdmin)
            let received = await governed.get("/governance")
            #expect(received.status == 200 && received.text.contains("Received from Contoso"), "\(received.text)")
            #expect(received.text.contains("action=\"/admin/\(fabrikam.tenant.tenantId)/governance/requests/\(id)/accept\""))
            #expect(try await governed.post("/governance/requests/\(id)/accept", from: "/governance", csrf: "forged").status == 403)
            #expect(try await h.graph("GET", "\(GovernancePage.root)/governanceRequests/\(id)", as: contoso).json["status"] == "pending")

            let accepted = try await governed.post("/governance/requests/\(id)/accept", from: "/governance")
            #expect(accepted.status == 303 && AdminCenterTests.location(accepted) == "/admin/\(fabrikam.tenant.tenantId)/governance?done=accepted")
            #expect(try await h.graph("GET", "\(GovernancePage.root)/governanceRequests/\(id)", as: contoso).json["status"] == "accepted")
            let after = await governed.get("/governance", [("done", "accepted")])
            #expect(after.text.contains("Request accepted.") && !after.text.contains("/governance/requests/\(id)/accept"))
            let relationships = try await h.graph("GET", "\(GovernancePage.root)/governanceRelationships", as: contoso).json["value"]
            #expect(relationships?.arrayValue?.map { $0["status"] } == ["active"])
            let relationshipPage = await governing.get("/governance")
            #expect(relationshipPage.text.contains("<span class=\"pill\">active</span>") && relationshipPage.text.contains(fabrikam.tenant.tenantId))
            // Answered once: a second answer is Graph's refusal, shown on the page.
            let again = try await governed.post("/governance/requests/\(id)/reject", from: "/users")
            #expect(again.status == 400 && again.text.contains("only a pending request can be answered"))

            // The template does not let the governed tenant terminate: no button, and Graph refuses the post. The
            // governing tenant terminates, in both tenants at once.
            let relationshipID = try #require(relationships?.arrayValue?.first?["id"]?.stringValue)
            let terminatePath = "/governance/relationships/\(relationshipID)/terminate"
            #expect(!after.text.contains(terminatePath) && relationshipPage.text.contains(terminatePath))
            let byGoverned = try await governed.post(terminatePath, from: "/users")
            #expect(byGoverned.status == 400 && byGoverned.text.contains("does not let the governed tenant end it"), "\(byGoverned.text)")
            let terminated = try await governing.post(terminatePath, from: "/governance")
            #expect(terminated.status == 303 && AdminCenterTests.location(terminated) == "/admin/\(h.tenant.tenantId)/governance?done=terminated")
            #expect(try await h.graph("GET", "\(GovernancePage.root)/governanceRelationships/\(relationshipID)", as: fabrikam.globalAdmin)
                .json["status"] == "terminated")
            let ended = await governing.get("/governance", [("done", "terminated")])
            #expect(ended.text.contains("Relationship terminated.") && !ended.text.contains(terminatePath))
        }
    }

    @Test("Tenant governance settings: a Global Administrator lets other tenants invite the tenant with the page's form, a Global Reader sees the setting without the form")
    func governanceSettings() async throws {
        try await Harness.run { h in
            let admin = try await h.caller(named: "govga", role: BuiltInRoles.globalAdministrator)
            let browser = try await Browser.signIn(h, admin)
            let before = await browser.get("/governance")
            let on = "/governance/settings/invitations/on"
            #expect(before.status == 200 && before.text.contains("invite this tenant to govern them: <span class=\"pill off\">no</span>"), "\(before.text)")
            #expect(before.text.contains("action=\"/admin/\(h.tenant.tenantId)\(on)\""))
            #expect(try await browser.post(on, from: "/governance", csrf: "forged").status == 403)
            let saved = try await browser.post(on, from: "/governance")
            #expect(saved.status == 303 && AdminCenterTests.location(saved) == "/admin/\(h.tenant.tenantId)/governance?done=saved", "\(saved.text)")
            let settings = try await TenantGovernanceRelationshipTests.call(h, "GET", "settings", as: admin)
            #expect(settings.json["canReceiveInvitations"] == true)
            let after = await browser.get("/governance")
            #expect(after.text.contains("<span class=\"pill\">yes</span>") && after.text.contains("/governance/settings/invitations/off"))

            let reader = try await Browser.signIn(h, try await h.caller(named: "reader", role: BuiltInRoles.globalReader))
            let read = await reader.get("/governance")
            #expect(read.status == 200 && read.text.contains("<span class=\"pill\">yes</span>") && !read.text.contains("/governance/settings/invitations/"))
        }
    }

    @Test("Configuration drift: monitors with their last run and each active drift's property, current and desired value; 403 for a User Administrator")
    func drift() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let policies = ConfigurationManagementTests.policies
            let policyID = try #require(await h.graph("POST", policies, token: token, json: ConfigurationManagementTests.policy).json["id"]?.stringValue)
            let admin = try await ConfigurationManagementTests.admin(h)
            var monitor = ConfigurationManagementTests.monitor
            monitor["displayName"] = .string(Self.hostile)
            let created = try await h.graph("POST", "\(DriftPage.root)/configurationMonitors", monitor, as: admin)
            let monitorID = try #require(created.json["id"]?.stringValue, "\(created.text)")

            let browser = try await Browser.signIn(h, admin)
            let before = await browser.get("/drift")
            #expect(before.status == 200 && before.text.contains("Not run yet") && before.text.contains("No active drifts."), "\(before.text)")
            Self.expectEscaped(before)

            #expect(await h.graph("PATCH", "\(policies)/\(policyID)", token: token, json: ["state": "disabled"]).status == 204)
            try await ConfigurationMonitors(app: h.app).run(tenant: h.tenant.tenantId, monitorID: monitorID)
            let page = await browser.get("/drift")
            #expect(page.status == 200)
            #expect(page.text.contains("<span class=\"pill\">successful</span> 1 drifts"))
            #expect(page.text.contains("<td>Admin MFA policy<br><span class=\"muted mono\">microsoft.entra.conditionalaccesspolicy</span></td>"))
            #expect(page.text.contains("<tr><td>State</td><td><span class=\"mono\">disabled</span></td><td><span class=\"mono\">enabledForReportingButNotEnforced</span></td></tr>"))

            // Put back: the drift is fixed and leaves the page.
            #expect(await h.graph("PATCH", "\(policies)/\(policyID)", token: token, json: ["state": "enabledForReportingButNotEnforced"]).status == 204)
            h.clock.advance(60)
            try await ConfigurationMonitors(app: h.app).run(tenant: h.tenant.tenantId, monitorID: monitorID)
            let fixed = await browser.get("/drift")
            #expect(fixed.text.contains("No active drifts.") && fixed.text.contains("0 drifts"))

            let reader = try await Browser.signIn(h, try await h.caller(named: "secreader", role: BuiltInRoles.securityReader))
            #expect(await reader.get("/drift").status == 200)
            let userAdmin = try await Browser.signIn(h, try await h.caller(named: "useradmin", role: BuiltInRoles.userAdministrator))
            let refused = await userAdmin.get("/drift")
            #expect(refused.status == 403 && !refused.text.contains(Self.escaped))
        }
    }
}
