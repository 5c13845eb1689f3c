import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

/// A governing tenant's administrators in a governed tenant: Fabrikam governs Contoso (the harness's tenant) under a
/// template giving Fabrikam's "tenant admins" group User Administrator. Fabrikam's users sign in to Contoso's
/// application as B2B guests (home realm discovery, Fabrikam's session) and call Graph with Contoso's tokens.
@Suite("Tenant governance: a governing tenant's administrators act in the governed tenant with the template's roles")
struct TenantGovernanceAccessTests {
    static let scope = "openid User.ReadWrite.All RoleManagement.ReadWrite.Directory"

    struct World {
        let h: Harness
        let fabrikam: TenantGovernanceRelationshipTests.Other
        let fabrikamToken: String
        let contosoToken: String
        let appID: String
        /// Alice is in Fabrikam's tenant admins group; Bob is not.
        let alice: String
        let bob: String
        let relationship: String
        var contoso: String { h.tenant.tenantId }

        /// Contoso's Graph access token for `hint`, a user of `home`: invited to Contoso, redeemed at home, signed in to
        /// Contoso's application through home realm discovery, the code redeemed.
        func token(home: String, user: String, hint: String) async throws -> String {
            let invitation = await h.graph("POST", "invitations", token: contosoToken, json: [
                "invitedUserEmailAddress": .string(hint), "inviteRedirectUrl": "https://myapps.contoso.test/", "sendInvitationMessage": false])
            #expect(invitation.status == 201, "\(invitation.text)")
            let (_, setCookie) = try await SignInSessions(app: h.app).start(tenant: home, userID: user, amr: ["fido", "mfa"], baseURL: Harness.base)
            let homeCookie = String(setCookie.split(separator: ";")[0])
            let b2b = CrossTenantB2BTests.World(h: h, fabrikam: fabrikam.tenant, fabrikamToken: fabrikamToken, contosoToken: contosoToken,
                                                alice: alice, appID: appID)
            let redeemed = try await b2b.redeem(invitation, cookie: homeCookie)
            #expect(redeemed.status == 302, "\(redeemed.text)")
            let params = [("client_id", appID), ("redirect_uri", AuthorizeTests.spa), ("response_type", "code"),
                          ("scope", TenantGovernanceAccessTests.scope), ("code_challenge", CrossTenantB2BTests.World.challenge),
                          ("code_challenge_method", "S256"), ("login_hint", hint)]
            var response = await AuthorizeTests.authorize(h, params)
            var cookies = [homeCookie]
            for _ in 0..<5 {
                guard response.status == 302, let location = AuthorizeTests.location(response), location.hasPrefix("/") else { break }
                if let set = response.headers.first(where: { $0.name == "Set-Cookie" })?.value {
                    cookies.append(String(set.split(separator: ";")[0]))
                }
                response = await b2b.follow(location, cookie: cookies.joined(separator: "; "))
            }
            let tokens = try await b2b.tokens(response)
            return try #require(tokens["access_token"]?.stringValue, "\(tokens)")
        }

        func createUser(_ nick: String, token: String) async -> APIResponse {
            await h.graph("POST", "users", token: token, json: [
                "accountEnabled": true, "displayName": .string(nick), "mailNickname": .string(nick),
                "userPrincipalName": .string("\(nick)@contoso.test"),
                "passwordProfile": ["password": "Xy!9aaaaaaaa"]])
        }

        /// A directory role assignment in Contoso: Privileged Role Administrator's business, not User Administrator's.
        func assignRole(token: String) async throws -> APIResponse {
            let target = try await AdminCenterTests.createUser(h, contosoToken, "target\(Int.random(in: 1000...9999))")
            return await h.graph("POST", "roleManagement/directory/roleAssignments", token: token, json: [
                "principalId": .string(target), "roleDefinitionId": .string(BuiltInRoles.helpdeskAdministrator), "directoryScopeId": "/"])
        }
    }

    /// Fabrikam (with Alice in its role-assignable tenant admins group, Bob outside it) governs Contoso, accepted by
    /// Contoso's Global Administrator; Contoso's SPA holds admin consent for the scopes the tests use.
    static func world(_ h: Harness) async throws -> World {
        let fabrikam = try await TenantGovernanceRelationshipTests.other(h, name: "Fabrikam", domain: "fabrikam.test")
        let fab = fabrikam.tenant.tenantId
        let fabrikamToken = try await h.accessToken(clientId: fabrikam.tenant.clientId, secret: fabrikam.tenant.clientSecret, tenant: fab)
        func user(_ nick: String) async throws -> String {
            let created = await h.graph("POST", "users", token: fabrikamToken, json: [
                "accountEnabled": true, "displayName": .string(nick.capitalized), "mailNickname": .string(nick),
                "userPrincipalName": .string("\(nick)@fabrikam.test"), "mail": .string("\(nick)@fabrikam.test"),
                "passwordProfile": ["password": "Xy!9aaaaaaaa"]])
            return try #require(created.json["id"]?.stringValue, "\(created.text)")
        }
        let alice = try await user("alice"), bob = try await user("bob")
        let group = await h.graph("POST", "groups", token: fabrikamToken, json: [
            "displayName": "Fabrikam tenant admins", "mailEnabled": false, "mailNickname": "tenantadmins", "securityEnabled": true,
            "isAssignableToRole": true])
        let groupID = try #require(group.json["id"]?.stringValue, "\(group.text)")
        #expect(await h.graph("POST", "groups/\(groupID)/members/$ref", token: fabrikamToken,
                              json: ["@odata.id": .string("https://graph.microsoft.com/v1.0/directoryObjects/\(alice)")]).status == 204)
        let template = try await TenantGovernancePolicyTemplateTests.call(
            h, "POST", "\(TenantGovernanceRelationshipTests.root)/governancePolicyTemplates",
            TenantGovernancePolicyTemplateTests.template(group: groupID), as: fabrikam.globalAdmin, version: "beta")
        let templateID = try #require(template.json["id"]?.stringValue, "\(template.text)")
        let request = try await TenantGovernanceRelationshipTests.request(h, governed: h.tenant.tenantId, template: templateID,
                                                                          as: fabrikam.globalAdmin)
        let requestID = try #require(request.json["id"]?.stringValue, "\(request.text)")
        let contosoAdmin = try await h.caller(named: "contosoga", role: BuiltInRoles.globalAdministrator)
        #expect(try await TenantGovernanceRelationshipTests.call(h, "PATCH", "governanceRequests/\(requestID)", ["status": "accepted"],
                                                                 as: contosoAdmin).status == 204)
        let relationships = try await TenantGovernanceRelationshipTests.call(h, "GET", "governanceRelationships", as: fabrikam.globalAdmin)
        let relationship = try #require(relationships.json["value"]?.arrayValue?.first?["id"]?.stringValue, "\(relationships.text)")

        let contosoToken = try await h.accessToken()
        let appID = try await AuthorizeTests.application(h, contosoToken)
        let principals = await h.graph("GET", "servicePrincipals", token: contosoToken).json["value"]?.arrayValue ?? []
        let graphSP = try #require(principals.first { $0["appId"] == .string(GraphPermissions.graphAppId) }?["id"]?.stringValue)
        let client = try #require(principals.first { $0["appId"] == .string(appID) }?["id"]?.stringValue)
        let consent = await h.graph("POST", "oauth2PermissionGrants", token: contosoToken, json: [
            "clientId": .string(client), "consentType": "AllPrincipals", "resourceId": .string(graphSP),
            "scope": "User.ReadWrite.All RoleManagement.ReadWrite.Directory"])
        #expect(consent.status == 201, "\(consent.text)")
        return World(h: h, fabrikam: fabrikam, fabrikamToken: fabrikamToken, contosoToken: contosoToken, appID: appID, alice: alice, bob: bob,
                     relationship: relationship)
    }

    @Test("a governing administrator in the group creates a user in the governed tenant, audited as Fabrikam's user; other roles refused")
    func delegatedRole() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            let token = try await w.token(home: w.fabrikam.tenant.tenantId, user: w.alice, hint: "alice@fabrikam.test")
            let claims = try #require(JWT.decode(token)).claims
            #expect(claims["tid"]?.stringValue == w.contoso && claims["idp"]?.stringValue == "\(Harness.base)/\(w.fabrikam.tenant.tenantId)/v2.0")
            #expect(claims["wids"] == .strings([BuiltInRoles.userAdministrator]))

            let created = await w.createUser("delegated", token: token)
            #expect(created.status == 201, "\(created.text)")
            let id = try #require(created.json["id"]?.stringValue)
            let audits = await h.graph("GET", "auditLogs/directoryAudits", token: w.contosoToken).json["value"]?.arrayValue ?? []
            let audit = try #require(audits.first { $0["targetResources"]?.arrayValue?.first?["id"]?.stringValue == id
                && $0["activityDisplayName"] == "Add user" }, "\(audits)")
            let by = audit["initiatedBy"]?["user"]
            #expect(by?["id"]?.stringValue == w.alice && by?["userPrincipalName"] == "alice@fabrikam.test", "\(audit)")
            #expect(by?["homeTenantId"]?.stringValue == w.fabrikam.tenant.tenantId && by?["homeTenantName"] == "Fabrikam", "\(audit)")

            // User Administrator does not assign directory roles, though the token's scopes would allow it: the refusal is the role's.
            #expect(claims["scp"]?.stringValue?.split(separator: " ").contains("RoleManagement.ReadWrite.Directory") == true, "\(claims)")
            let refused = try await w.assignRole(token: token)
            #expect(refused.status == 403 && refused.json["error"]?["code"] == "Authorization_RequestDenied", "\(refused.text)")
        }
    }

    @Test("a member of the governing tenant outside the template's group gets no role: its token has no wids and it cannot create a user")
    func notInGroup() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            let token = try await w.token(home: w.fabrikam.tenant.tenantId, user: w.bob, hint: "bob@fabrikam.test")
            #expect(try #require(JWT.decode(token)).claims["wids"] == nil)
            let refused = await w.createUser("bobs", token: token)
            #expect(refused.status == 403 && refused.json["error"]?["code"] == "Authorization_RequestDenied", "\(refused.text)")
        }
    }

    @Test("terminating the relationship refuses the governing administrator's token already issued, at its next request")
    func terminated() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            let token = try await w.token(home: w.fabrikam.tenant.tenantId, user: w.alice, hint: "alice@fabrikam.test")
            #expect(await w.createUser("before", token: token).status == 201)
            let ended = try await TenantGovernanceRelationshipTests.call(h, "PATCH", "governanceRelationships/\(w.relationship)",
                                                                         ["status": "terminated"], as: w.fabrikam.globalAdmin)
            #expect(ended.status == 204, "\(ended.text)")
            let refused = await w.createUser("after", token: token)
            #expect(refused.status == 403 && refused.json["error"]?["code"] == "Authorization_RequestDenied", "\(refused.text)")
        }
    }

    @Test("a signed-in session (the admin center's Caller) of the governing administrator holds the template's role until termination")
    func sessionCaller() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            let token = try await w.token(home: w.fabrikam.tenant.tenantId, user: w.alice, hint: "alice@fabrikam.test")
            let guestID = try #require(JWT.decode(token)?.claims["oid"]?.stringValue)
            let contoso = w.contoso
            func caller() async throws -> Caller {
                guard let guest = try await h.app.store.read({ tx in try await tx.object(tenant: contoso, id: guestID) }) else {
                    throw DirectoryError.notFound(guestID)
                }
                return try await Caller.user(tenant: contoso, user: guest, scopes: nil, app: h.app)
            }
            let governing = try await caller()
            #expect(governing.directoryRoles == [BuiltInRoles.userAdministrator] && governing.roles.contains("User.ReadWrite.All"))
            #expect(governing.actor.id == w.alice && governing.actor.homeTenantId == w.fabrikam.tenant.tenantId)
            #expect(try await TenantGovernanceRelationshipTests.call(h, "PATCH", "governanceRelationships/\(w.relationship)",
                                                                     ["status": "terminated"], as: w.fabrikam.globalAdmin).status == 204)
            let ended = try await caller()
            #expect(ended.directoryRoles.isEmpty && !ended.roles.contains("User.ReadWrite.All") && ended.actor.id == guestID)
        }
    }

    @Test("a Global Administrator of a third tenant, in a group of the same name, gets nothing in the governed tenant")
    func thirdTenant() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            let northwind = try await TenantGovernanceRelationshipTests.other(h, name: "Northwind", domain: "northwind.test")
            let ga = try #require(northwind.globalAdmin.userID)
            // Its own template names its own group, holding its administrator; it governs no one.
            let nwToken = try await h.accessToken(clientId: northwind.tenant.clientId, secret: northwind.tenant.clientSecret,
                                                  tenant: northwind.tenant.tenantId)
            let group = await h.graph("POST", "groups", token: nwToken, json: [
                "displayName": "Fabrikam tenant admins", "mailEnabled": false, "mailNickname": "tenantadmins", "securityEnabled": true,
                "isAssignableToRole": true])
            let groupID = try #require(group.json["id"]?.stringValue, "\(group.text)")
            #expect(await h.graph("POST", "groups/\(groupID)/members/$ref", token: nwToken,
                                  json: ["@odata.id": .string("https://graph.microsoft.com/v1.0/directoryObjects/\(ga)")]).status == 204)
            let token = try await w.token(home: northwind.tenant.tenantId, user: ga, hint: "ga@northwind.test")
            #expect(try #require(JWT.decode(token)).claims["wids"] == nil)
            let refused = await w.createUser("northwinds", token: token)
            #expect(refused.status == 403 && refused.json["error"]?["code"] == "Authorization_RequestDenied", "\(refused.text)")
        }
    }

    @Test("the roles a policy snapshot gives: only the assignments whose group the user is in, their role templates")
    func rolesFromPolicy() {
        let policy: JSONValue = ["delegatedAdministrationRoleAssignments": [
            ["group": ["id": "g1"], "roleTemplates": [["id": .string(BuiltInRoles.userAdministrator)]]],
            ["group": ["id": "g2"], "roleTemplates": [["id": .string(BuiltInRoles.globalAdministrator)]]],
        ]]
        #expect(GovernedAccess.roles(policy: policy, groups: ["g1", "g3"]) == [BuiltInRoles.userAdministrator])
        #expect(GovernedAccess.roles(policy: policy, groups: []).isEmpty)
        #expect(GovernedAccess.roles(policy: nil, groups: ["g1"]).isEmpty)
    }

    @Test("what the governing administrator does in the governed tenant is audited in its home tenant too, naming the governed tenant; a refused request and a read leave nothing there")
    func auditedAtHome() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            let token = try await w.token(home: w.fabrikam.tenant.tenantId, user: w.alice, hint: "alice@fabrikam.test")
            let home = w.fabrikam.tenant.tenantId
            func homeAudits() async throws -> [JSONValue] {
                await h.graph("GET", "auditLogs/directoryAudits", token: w.fabrikamToken,
                              query: [("$filter", "initiatedBy/user/id eq '\(w.alice)'")]).json["value"]?.arrayValue ?? []
            }
            let before = try await homeAudits().count
            let created = await w.createUser("audited", token: token)
            let id = try #require(created.json["id"]?.stringValue, "\(created.text)")
            let audits = try await homeAudits()
            let added = try #require(audits.first { $0["activityDisplayName"] == "Add user" }, "\(audits)")
            let target = added["targetResources"]?.arrayValue?.first
            #expect(target?["id"] == .string(id) && target?["type"] == "User", "\(added)")
            let details = Dictionary(uniqueKeysWithValues: (added["additionalDetails"]?.arrayValue ?? []).map { ($0["key"]?.stringValue ?? "", $0["value"]) })
            #expect(details["GovernedTenantId"] == .string(w.contoso) && details["GovernedTenantName"] == "Contoso", "\(added)")
            #expect(added["initiatedBy"]?["user"]?["homeTenantId"] == .string(home))
            // Fabrikam's own delta knows nothing of Contoso's user.
            let delta = await h.graph("GET", "users/delta", token: w.fabrikamToken)
            #expect(!delta.text.contains(id), "\(delta.text)")

            // Two requests at once: each one's record is copied home once, although each copies what it finds after
            // its own start.
            let beforeBoth = try await homeAudits().count
            let sequence = try await h.app.store.read { tx in try await tx.latestSequence(tenant: w.contoso) }
            async let first = w.createUser("audited-a", token: token)
            async let second = w.createUser("audited-b", token: token)
            #expect(await [first.status, second.status] == [201, 201])
            #expect(try await homeAudits().count == beforeBoth + 2)
            // The overlap made certain: copying again what both requests wrote adds nothing.
            try await GovernedAudit(app: h.app).copy(tenant: w.contoso, after: sequence, actor: w.alice, home: home)
            #expect(try await homeAudits().count == beforeBoth + 2)

            let count = try await homeAudits().count
            #expect(count > before)
            #expect(await h.graph("GET", "users", token: token).status == 200)
            #expect(try await w.assignRole(token: token).status == 403)
            #expect(try await homeAudits().count == count)
        }
    }
}
