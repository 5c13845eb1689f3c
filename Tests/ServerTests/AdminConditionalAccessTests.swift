import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

/// The admin center's Conditional Access pages: the policies with their state, targets and controls, each policy's
/// sign-ins (the report-only impact), and the What If form over Graph's `evaluate`.
@Suite("Admin center: Conditional Access and What If")
struct AdminConditionalAccessTests {
    typealias Browser = AdminCenterTests.Browser

    /// A report-only policy with a name that needs escaping, over a group and outside the office, requiring MFA.
    static func reportOnlyPolicy(_ h: Harness, _ token: String) async throws -> (policy: String, group: String, office: String) {
        let group = await h.graph("POST", "groups", token: token, json: [
            "displayName": "Finance <team>", "mailEnabled": false, "mailNickname": "finance", "securityEnabled": true])
        let groupID = try #require(group.json["id"]?.stringValue)
        let office = try await ConditionalAccessTests.office(h, token)
        let policy = try await WhatIfTests.create(h, token, [
            "displayName": "<script>alert(1)</script> & \"MFA\"", "state": "enabledForReportingButNotEnforced",
            "conditions": ["users": ["includeGroups": [.string(groupID)], "excludeRoles": [.string(BuiltInRoles.globalAdministrator)]],
                           "applications": ["includeApplications": ["All"]],
                           "platforms": ["includePlatforms": ["windows", "macOS"]],
                           "locations": ["includeLocations": ["All"], "excludeLocations": [.string(office)]]],
            "grantControls": ["operator": "OR", "builtInControls": ["mfa"]],
            "sessionControls": ["signInFrequency": ["value": 8, "type": "hours", "isEnabled": true]]])
        return (policy, groupID, office)
    }

    @Test("the policy list shows state, targets by name, resources, conditions and controls, escaped; each policy has its page")
    func listAndDetail() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let (policy, _, _) = try await Self.reportOnlyPolicy(h, token)
            let payroll = await h.graph("POST", "applications", token: token, json: ["displayName": "Payroll & <Pensions>"])
            let payrollID = try #require(payroll.json["appId"]?.stringValue)
            #expect(await h.graph("POST", "servicePrincipals", token: token, json: ["appId": .string(payrollID)]).status == 201)
            _ = try await WhatIfTests.create(h, token, [
                "displayName": "Payroll from the office", "state": "enabled",
                "conditions": ["users": ["includeUsers": ["All"], "excludeUsers": [.string(h.tenant.adminUserId)]],
                               "applications": ["includeApplications": [.string(payrollID)]]],
                "grantControls": ["operator": "AND", "builtInControls": ["mfa", "compliantDevice"]]])
            _ = try await WhatIfTests.create(h, token, [
                "displayName": "Block legacy clients", "state": "disabled",
                "conditions": ["users": ["includeUsers": ["All"], "excludeUsers": [.string(h.tenant.adminUserId)]],
                               "applications": ["includeApplications": ["Office365"]], "clientAppTypes": ["exchangeActiveSync", "other"]],
                "grantControls": ["operator": "OR", "builtInControls": ["block"]]])
            let admin = try await Browser.signIn(h, userID: h.tenant.adminUserId)
            let list = await admin.get("/conditional-access")
            #expect(list.status == 200)
            let html = list.text
            #expect(html.contains("aria-current=\"page\">Conditional Access</a>"))
            #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;MFA&quot;") && !html.contains("<script>alert(1)"))
            #expect(html.contains("Report-only") && html.contains("<span class=\"pill off\">Off</span>"))
            #expect(html.contains("group Finance &lt;team&gt;") && html.contains("role Global Administrator"))
            #expect(html.contains("Platforms: windows, macOS") && html.contains("except</span> Office"))
            #expect(html.contains("Require multifactor authentication") && html.contains("sign-in frequency: 8 hours"))
            #expect(html.contains("<strong>Block access</strong>") && html.contains("Client apps: exchangeActiveSync, other"))
            #expect(html.contains("Office 365") && html.contains("Payroll &amp; &lt;Pensions&gt;"))
            #expect(html.contains("Require multifactor authentication and a compliant device"))
            #expect(html.contains("/conditional-access/\(policy)\""))
            let detail = await admin.get("/conditional-access/\(policy)")
            #expect(detail.status == 200)
            #expect(detail.text.contains("<h1>&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;MFA&quot;</h1>"))
            #expect(detail.text.contains("as report-only it enforced none of it") && detail.text.contains("No sign-ins."))
            #expect(await admin.get("/conditional-access/not-a-policy").status == 404)
            #expect(await admin.get("/conditional-access/\(Identifier.make())").status == 404)
        }
    }

    @Test("a policy's page lists the sign-ins it applied to with its result for each, not those it did not apply to")
    func signInsPerPolicy() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let (policy, _, _) = try await Self.reportOnlyPolicy(h, token)
            let other = Identifier.make()
            func record(_ user: String, _ results: [(String, String)], status: String) async throws {
                try await h.app.directory.recordSignIn(tenant: h.tenant.tenantId, entry: [
                    "userPrincipalName": .string(user), "appDisplayName": "Payroll", "ipAddress": "198.51.100.4",
                    "conditionalAccessStatus": .string(status), "status": ["errorCode": 0],
                    "appliedConditionalAccessPolicies": .array(results.map { id, result in
                        ["id": .string(id), "displayName": "p", "result": .string(result),
                         "enforcedGrantControls": result.hasSuffix("NotApplied") ? [] : ["Mfa"], "enforcedSessionControls": []]
                    })])
            }
            try await record("impacted@contoso.test", [(policy, "reportOnlyFailure"), (other, "success")], status: "success")
            try await record("passed@contoso.test", [(policy, "reportOnlySuccess")], status: "notApplied")
            try await record("untouched@contoso.test", [(policy, "reportOnlyNotApplied"), (other, "success")], status: "success")
            try await record("elsewhere@contoso.test", [(other, "failure")], status: "failure")
            // Graph's filter over an array of objects, as the page asks it.
            let mentioned = await h.graph("GET", "auditLogs/signIns", token: token, query: [
                ("$filter", "appliedConditionalAccessPolicies/any(p:p/id eq '\(policy)')")])
            #expect(Set(mentioned.json["value"]?.arrayValue?.compactMap { $0["userPrincipalName"]?.stringValue } ?? [])
                    == ["impacted@contoso.test", "passed@contoso.test", "untouched@contoso.test"], "\(mentioned.text)")
            let failed = await h.graph("GET", "auditLogs/signIns", token: token, query: [
                ("$filter", "appliedConditionalAccessPolicies/any(p:p/id eq '\(policy)' and p/result eq 'reportOnlyFailure')")])
            #expect(failed.json["value"]?.arrayValue?.map { $0["userPrincipalName"] } == ["impacted@contoso.test"])

            let admin = try await Browser.signIn(h, userID: h.tenant.adminUserId)
            let page = await admin.get("/conditional-access/\(policy)").text
            #expect(page.contains("impacted@contoso.test") && page.contains("passed@contoso.test"))
            #expect(!page.contains("untouched@contoso.test") && !page.contains("elsewhere@contoso.test"))
            #expect(page.contains("Report-only: failure") && page.contains("Report-only: success"))
            #expect(page.contains("<td class=\"mono\">Mfa</td>"))
        }
    }

    @Test("the What If form asks Graph's evaluate and shows every policy, applying or not and why; it needs the form's token")
    func whatIf() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let (policy, group, _) = try await Self.reportOnlyPolicy(h, token)
            let user = try await AdminCenterTests.createUser(h, token, "ana")
            let added = await h.graph("POST", "groups/\(group)/members/$ref", token: token,
                                      json: ["@odata.id": .string("\(Harness.base)/v1.0/directoryObjects/\(user)")])
            #expect(added.status == 204)
            let admin = try await Browser.signIn(h, userID: h.tenant.adminUserId)
            let form = await admin.get("/conditional-access/what-if")
            #expect(form.status == 200 && form.text.contains("name=\"principal\""))
            func ask(_ fields: [(String, String)]) async throws -> APIResponse {
                try await admin.post("/conditional-access/what-if", fields, from: "/conditional-access/what-if")
            }
            let outside = try await ask([("identity", "user"), ("principal", "ana@contoso.test"), ("application", WhatIfTests.sharePoint),
                                         ("ipAddress", "198.51.100.8"), ("devicePlatform", "windows"), ("clientAppType", "browser")])
            #expect(outside.status == 200, "\(outside.text)")
            #expect(outside.text.contains("<strong>Applies</strong>") && outside.text.contains("/conditional-access/\(policy)\""))
            #expect(outside.text.contains("&lt;script&gt;") && !outside.text.contains("<script>alert"))
            #expect(outside.text.contains("value=\"198.51.100.8\""))  // the question stays in the form
            let inside = try await ask([("identity", "user"), ("principal", user), ("application", WhatIfTests.sharePoint),
                                        ("ipAddress", "203.0.113.8"), ("devicePlatform", "linux")])
            #expect(inside.status == 200 && inside.text.contains("Does not apply"))
            #expect(inside.text.contains("device platform; location"), "\(inside.text)")
            // Graph's bad-input answer is the page's error.
            let bad = try await ask([("identity", "user"), ("principal", user), ("application", WhatIfTests.sharePoint), ("ipAddress", "300.1.1.1")])
            #expect(bad.status == 400 && bad.text.contains("signInConditions.ipAddress"))
            let nobody = try await ask([("identity", "user"), ("principal", "nobody@contoso.test"), ("application", WhatIfTests.sharePoint)])
            #expect(nobody.status == 400 && nobody.text.contains("No user") && nobody.text.contains("nobody@contoso.test"))
            // A service principal by its application id.
            let sp = try await ask([("identity", "servicePrincipal"), ("principal", h.tenant.clientId), ("application", WhatIfTests.sharePoint)])
            #expect(sp.status == 200 && sp.text.contains("Does not apply") && sp.text.contains("service principal not targeted"))
            // Without this session's token, or from another origin, nothing is asked.
            let forged = try await admin.post("/conditional-access/what-if", [("principal", user)], csrf: "forged")
            #expect(forged.status == 403)
            let crossOrigin = try await admin.post("/conditional-access/what-if", [("principal", user)], from: "/conditional-access/what-if",
                                                   origin: "https://evil.test")
            #expect(crossOrigin.status == 403)
        }
    }

    @Test("what an administrator sees follows their role: a Conditional Access Administrator asks What If, a Helpdesk Administrator is told why not")
    func roles() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let (policy, _, _) = try await Self.reportOnlyPolicy(h, token)
            func administrator(_ name: String, role: String) async throws -> Browser {
                let id = try await AdminCenterTests.createUser(h, token, name)
                let assigned = await h.graph("POST", "roleManagement/directory/roleAssignments", token: token, json: [
                    "principalId": .string(id), "roleDefinitionId": .string(role), "directoryScopeId": "/"])
                #expect(assigned.status == 201, "\(assigned.text)")
                return try await Browser.signIn(h, userID: id)
            }
            let caAdmin = try await administrator("caadmin", role: BuiltInRoles.conditionalAccessAdministrator)
            #expect(await caAdmin.get("/conditional-access").text.contains("/conditional-access/\(policy)\""))
            let whatIf = try await caAdmin.post("/conditional-access/what-if", [("identity", "user"), ("principal", "caadmin@contoso.test"),
                                                                               ("application", WhatIfTests.sharePoint)],
                                                from: "/conditional-access/what-if")
            #expect(whatIf.status == 200 && whatIf.text.contains("Does not apply"), "\(whatIf.text)")
            let helpdesk = try await administrator("helpdesk", role: BuiltInRoles.helpdeskAdministrator)
            let refused = await helpdesk.get("/conditional-access")
            #expect(refused.text.contains("banner error") && !refused.text.contains(policy))
            let refusedWhatIf = try await helpdesk.post("/conditional-access/what-if", [("identity", "user"), ("principal", "helpdesk@contoso.test"),
                                                                                       ("application", WhatIfTests.sharePoint)],
                                                        from: "/conditional-access/what-if")
            #expect(refusedWhatIf.status == 400 && refusedWhatIf.text.contains("banner error"))
        }
    }

    @Test("report-only impact end to end: real token requests are logged with the policy's result and listed on its page")
    func reportOnlyImpactOfRealSignIns() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let office = try await ConditionalAccessTests.office(h, token)
            let sp = await h.graph("GET", "servicePrincipals", token: token, query: [("$filter", "appId eq '\(h.tenant.clientId)'")])
            let spID = try #require(sp.json["value"]?.arrayValue?.first?["id"]?.stringValue)
            let policy = try await WhatIfTests.create(h, token, [
                "displayName": "Automation only from the office", "state": "enabledForReportingButNotEnforced",
                "conditions": ["users": ["includeUsers": ["None"]], "clientApplications": ["includeServicePrincipals": [.string(spID)]],
                               "applications": ["includeApplications": ["All"]],
                               "locations": ["includeLocations": ["All"], "excludeLocations": [.string(office)]]],
                "grantControls": ["operator": "OR", "builtInControls": ["block"]]])
            // Report-only: both get tokens; the one from outside is what switching the policy on would refuse.
            #expect(await h.clientCredentials(from: "198.51.100.23").status == 200)
            #expect(await h.clientCredentials(from: "203.0.113.23").status == 200)
            let admin = try await Browser.signIn(h, userID: h.tenant.adminUserId)
            let page = await admin.get("/conditional-access/\(policy)").text
            #expect(page.contains("198.51.100.23") && page.contains("Report-only: failure"), "\(page)")
            #expect(!page.contains("203.0.113.23"))
        }
    }
}
