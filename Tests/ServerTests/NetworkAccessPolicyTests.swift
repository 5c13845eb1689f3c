import Foundation
import InternetAccess
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

@Suite("Graph beta networkAccess: filtering policies, security profiles and the proxy's decisions")
struct NetworkAccessPolicyTests {
    static func beta(_ h: Harness, _ method: String, _ path: String, token: String, json: JSONValue? = nil,
                     query: [(name: String, value: String)] = []) async -> APIResponse {
        var headers = ["authorization": "Bearer \(token)"]
        if json != nil { headers["content-type"] = "application/json" }
        return await h.send(method, "/beta/networkAccess/" + path, query: query, headers: headers, body: json?.serializedBytes ?? [])
    }

    /// A request as the admin center sends it for a signed-in user; refusals as the HTTP edge renders them.
    static func betaAs(_ h: Harness, _ caller: Caller, _ method: String, _ path: String, json: JSONValue? = nil) async throws -> APIResponse {
        let request = APIRequest(method: method, path: "/beta/networkAccess/" + path, query: [], headers: ["content-type": "application/json"],
                                 body: json?.serializedBytes ?? [], baseURL: Harness.base)
        do {
            return try await GraphAPI(app: h.app).handle(request, as: caller)
        } catch let error as DirectoryError {
            return .error(error, request: request, now: h.clock.now)
        }
    }

    /// The tutorial's filtering policy ("Configure Microsoft Entra Internet Access using Microsoft Graph APIs").
    static let tutorialPolicy: JSONValue = [
        "name": "AI and Bing",
        "policyRules": [
            ["@odata.type": "#microsoft.graph.networkaccess.webCategoryFilteringRule", "name": "AI", "ruleType": "webCategory",
             "destinations": [["@odata.type": "#microsoft.graph.networkaccess.webCategory", "name": "ArtificialIntelligence"]]],
            ["@odata.type": "#microsoft.graph.networkaccess.fqdnFilteringRule", "name": "bing FQDNs", "ruleType": "fqdn",
             "destinations": [["@odata.type": "#microsoft.graph.networkaccess.fqdn", "value": "bing.com"],
                              ["@odata.type": "#microsoft.graph.networkaccess.fqdn", "value": "*.bing.com"]]],
        ],
        "action": "block",
    ]

    /// A filtering policy, a profile linking it at `priority`, and their ids.
    static func profile(_ h: Harness, _ token: String, policy: JSONValue = tutorialPolicy, name: String = "Security Profile") async throws -> (policy: String, profile: String, link: String) {
        let created = await beta(h, "POST", "filteringPolicies", token: token, json: policy)
        #expect(created.status == 201, "\(created.text)")
        let policyID = try #require(created.json["id"]?.stringValue)
        let profile = await beta(h, "POST", "filteringProfiles", token: token, json: ["name": .string(name), "state": "enabled", "priority": 100, "policies": []])
        #expect(profile.status == 201, "\(profile.text)")
        let profileID = try #require(profile.json["id"]?.stringValue)
        let link = await beta(h, "POST", "filteringProfiles/\(profileID)/policies", token: token, json: [
            "priority": 100, "state": "enabled", "@odata.type": "#microsoft.graph.networkaccess.filteringPolicyLink", "loggingState": "enabled",
            "policy": ["id": .string(policyID), "@odata.type": "#microsoft.graph.networkaccess.filteringPolicy"]])
        #expect(link.status == 201, "\(link.text)")
        return (policyID, profileID, try #require(link.json["id"]?.stringValue))
    }

    @Test("the tutorial's requests: a filtering policy, a security profile, the link, and a Conditional Access policy naming it")
    func tutorial() async throws {
        try await Harness.run { h in
            let token = try await NetworkAccessTrafficTests.readerToken(h)
            let (policyID, profileID, linkID) = try await Self.profile(h, token)
            let policy = await Self.beta(h, "GET", "filteringPolicies/\(policyID)", token: token)
            #expect(policy.json["name"] == "AI and Bing" && policy.json["action"] == "block" && policy.json["version"] == "1.0.0")
            #expect(policy.json["policyRules"] == nil)
            let rules = await Self.beta(h, "GET", "filteringPolicies/\(policyID)/policyRules", token: token)
            #expect(rules.json["value"]?.arrayValue?.map { $0["ruleType"] } == ["webCategory", "fqdn"])
            let expanded = await Self.beta(h, "GET", "filteringProfiles/\(profileID)", token: token, query: [("$expand", "policies")])
            #expect(expanded.json["policies"]?.arrayValue?.map { $0["policy"]?["id"] } == [.string(policyID)])
            #expect(expanded.json["policies"]?.arrayValue?.first?["id"] == .string(linkID))
            let ca = await h.graph("POST", "identity/conditionalAccess/policies", token: try await h.accessToken(), json: [
                "displayName": "UserA Access to AI and Bing", "state": "enabled",
                "conditions": ["applications": ["includeApplications": [.string(ConditionalAccessEngine.internetAccessAppID)]],
                               "users": ["includeUsers": [.string(h.tenant.adminUserId)]]],
                "sessionControls": ["globalSecureAccessFilteringProfile": ["profileId": .string(profileID), "isEnabled": true]]])
            #expect(ca.status == 201, "\(ca.text)")
            #expect(ca.json["sessionControls"]?["globalSecureAccessFilteringProfile"]?["profileId"] == .string(profileID))
            // Updates, and what may not be removed while in use.
            #expect(await Self.beta(h, "PATCH", "filteringPolicies/\(policyID)", token: token, json: ["name": "AI only"]).status == 204)
            #expect(await Self.beta(h, "GET", "filteringPolicies", token: token).json["value"]?.arrayValue?.map { $0["name"] } == ["AI only"])
            let inUse = await Self.beta(h, "DELETE", "filteringPolicies/\(policyID)", token: token)
            #expect(inUse.status == 409)
            #expect(await Self.beta(h, "DELETE", "filteringProfiles/\(profileID)/policies/\(linkID)", token: token).status == 204)
            #expect(await Self.beta(h, "DELETE", "filteringPolicies/\(policyID)", token: token).status == 204)
            #expect(await Self.beta(h, "GET", "filteringPolicies/\(policyID)", token: token).status == 404)
            // Each write is in the audit log.
            let audits = await h.graph("GET", "auditLogs/directoryAudits", token: try await h.accessToken(),
                                       query: [("$filter", "activityDisplayName eq 'Add filtering policy'")])
            #expect(audits.json["value"]?.arrayValue?.count == 1)
        }
    }

    @Test("bad bodies get Graph's errors and write nothing")
    func badBodies() async throws {
        try await Harness.run { h in
            let token = try await NetworkAccessTrafficTests.readerToken(h)
            let bad = await Self.beta(h, "POST", "filteringPolicies", token: token, json: ["name": "x", "action": "deny", "policyRules": []])
            #expect(bad.status == 400 && bad.errorCode == "Request_BadRequest")
            #expect(bad.json["error"]?["message"] == "action must be block, allow or alert.")
            let notJSON = await h.send("POST", "/beta/networkAccess/filteringPolicies", headers: ["authorization": "Bearer \(token)",
                                                                                                "content-type": "application/json"], body: Array("{".utf8))
            #expect(notJSON.status == 400)
            let missing = await Self.beta(h, "POST", "filteringProfiles", token: token, json: [
                "name": "p", "priority": 1, "policies": [["priority": 1, "policy": ["id": "00000000-0000-0000-0000-000000000000"]]]])
            #expect(missing.status == 400)
            #expect(missing.json["error"]?["message"] == "The filtering policy '00000000-0000-0000-0000-000000000000' does not exist.")
            #expect(await Self.beta(h, "GET", "filteringPolicies", token: token).json["value"] == [])
            #expect(await Self.beta(h, "GET", "filteringProfiles", token: token).json["value"] == [])
            #expect(await Self.beta(h, "GET", "filteringProfiles/nope", token: token).status == 404)
        }
    }

    @Test("who may write: a Global Secure Access, Security or Global Administrator, or an app with the permission")
    func roles() async throws {
        try await Harness.run { h in
            let nobody = try await h.caller(named: "nobody", role: nil)
            let denied = try await Self.betaAs(h, nobody, "POST", "filteringPolicies", json: Self.tutorialPolicy)
            #expect(denied.status == 403 && denied.errorCode == "Authorization_RequestDenied")
            let reader = try await h.caller(named: "reader", role: BuiltInRoles.globalSecureAccessLogReader)
            #expect(try await Self.betaAs(h, reader, "GET", "filteringPolicies").status == 200)
            #expect(try await Self.betaAs(h, reader, "POST", "filteringPolicies", json: Self.tutorialPolicy).status == 403)
            let admin = try await h.caller(named: "gsa", role: BuiltInRoles.globalSecureAccessAdministrator)
            #expect(try await Self.betaAs(h, admin, "POST", "filteringPolicies", json: Self.tutorialPolicy).status == 201)
            // Signed in to the admin center (no token), a Global Administrator reads the traffic log too.
            let global = try await h.caller(named: "global", role: BuiltInRoles.globalAdministrator)
            #expect(try await Self.betaAs(h, global, "GET", "logs/traffic").status == 200)
            #expect(try await Self.betaAs(h, nobody, "GET", "logs/traffic").status == 403)
            // The automation app holds Directory and Policy permissions but no NetworkAccess one.
            let app = await Self.beta(h, "GET", "filteringPolicies", token: try await h.accessToken())
            #expect(app.status == 403)
        }
    }

    // MARK: The proxy's gatekeeper

    /// A user's access token as the token endpoint issues it after an authorization code (a passkey sign-in unless `amr`
    /// says otherwise).
    static func userToken(_ h: Harness, userID: String, client: (appID: String, secret: String), amr: [String] = ["fido", "mfa"]) async throws -> String {
        let now = Int64(h.clock.now.timeIntervalSince1970)
        // The session the code comes from: the token endpoint redeems a code only while it lives.
        let (session, _) = try await SignInSessions(app: h.app).start(tenant: h.tenant.tenantId, userID: userID, amr: amr, baseURL: Harness.base)
        let code = AuthorizationCode(tenant: h.tenant.tenantId, clientID: client.appID, redirectURI: TokenGrantHardeningTests.web, userID: userID,
                                     scope: "openid offline_access User.Read", nonce: nil, codeChallenge: nil, authTime: now,
                                     sessionID: session.id, amr: amr, expires: now + 600).encode(app: h.app)
        let response = await TokenGrantHardeningTests.post(h, "token", [
            ("grant_type", "authorization_code"), ("client_id", client.appID), ("client_secret", client.secret),
            ("redirect_uri", TokenGrantHardeningTests.web), ("code", code)])
        #expect(response.status == 200, "\(response.text)")
        return try #require(response.json["access_token"]?.stringValue)
    }

    static func admit(_ gate: NetworkAccessGatekeeper, token: String?, host: String = "api.openai.com") async throws -> ProxyAdmission {
        try await gate.admit(ProxyAdmissionRequest(proxyAuthorization: token.map { "Bearer \($0)" }, host: host, port: 443, path: nil,
                                                   clientAddress: "10.0.0.5", userAgent: "python-httpx/0.28"))
    }

    @Test("the proxy: unsanctioned AI apps blocked for one group and allowed for another; report-only reported, not enforced; a policy change applies at the next connection; a disabled user is refused")
    func gatekeeper() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let token = try await NetworkAccessTrafficTests.readerToken(h)
            let alice = try await AdminCenterTests.createUser(h, admin, "alice"), bob = try await AdminCenterTests.createUser(h, admin, "bob")
            let carol = try await AdminCenterTests.createUser(h, admin, "carol")
            var groups: [String] = []
            for (name, member) in [("Engineering", alice), ("Research", bob)] {
                let group = await h.graph("POST", "groups", token: admin, json: [
                    "displayName": .string(name), "mailEnabled": false, "mailNickname": .string(name), "securityEnabled": true,
                    "members@odata.bind": [.string("\(Harness.base)/v1.0/users/\(member)")]])
                groups.append(try #require(group.json["id"]?.stringValue))
            }
            let unsanctioned: JSONValue = ["name": "Unsanctioned AI", "action": "block", "policyRules": [
                ["name": "unsanctioned", "ruleType": "webCategory", "destinations": [["name": "UnsanctionedGenerativeAI"]]]]]
            let (_, profileID, linkID) = try await Self.profile(h, token, policy: unsanctioned)
            #expect(await Self.beta(h, "PATCH", "reports/generativeAIApps/openai-api", token: token, json: ["sanctionState": "unsanctioned"]).status == 204)
            for (name, group, state) in [("Engineering", groups[0], "enabled"), ("Research", groups[1], "enabledForReportingButNotEnforced")] {
                let ca = await h.graph("POST", "identity/conditionalAccess/policies", token: admin, json: [
                    "displayName": .string("Internet Access for \(name)"), "state": .string(state),
                    "conditions": ["applications": ["includeApplications": [.string(ConditionalAccessEngine.internetAccessAppID)]],
                                   "users": ["includeGroups": [.string(group)]]],
                    "sessionControls": ["globalSecureAccessFilteringProfile": ["profileId": .string(profileID), "isEnabled": true]]])
                #expect(ca.status == 201, "\(ca.text)")
            }
            let client = try await TokenGrantHardeningTests.webApp(h, admin)
            let gate = NetworkAccessGatekeeper(app: h.app, catalog: try AICatalog.bundled(year: 2026), issuerBase: Harness.base)

            guard case .decided(let user, let verdict, let application) = try await Self.admit(gate, token: try await Self.userToken(h, userID: alice, client: client))
            else { Issue.record("alice was not authenticated"); return }
            #expect(user.userID == alice && user.userPrincipalName == "alice@contoso.test")
            #expect(verdict.blocks && verdict.enforced?.profileID == profileID && verdict.enforced?.ruleName == "unsanctioned")
            #expect(application?.catalogId == "openai-api")
            // Another host of no unsanctioned app passes.
            guard case .decided(_, let elsewhere, _) = try await Self.admit(gate, token: try await Self.userToken(h, userID: alice, client: client), host: "example.com")
            else { Issue.record("alice was not authenticated"); return }
            #expect(!elsewhere.blocks)

            guard case .decided(_, let research, _) = try await Self.admit(gate, token: try await Self.userToken(h, userID: bob, client: client))
            else { Issue.record("bob was not authenticated"); return }
            #expect(!research.blocks && research.reportOnly?.action == .block)

            guard case .decided(_, let outside, _) = try await Self.admit(gate, token: try await Self.userToken(h, userID: carol, client: client))
            else { Issue.record("carol was not authenticated"); return }
            #expect(outside == .init())

            // The link turned off: the next connection is allowed.
            let aliceToken = try await Self.userToken(h, userID: alice, client: client)
            #expect(await Self.beta(h, "PATCH", "filteringProfiles/\(profileID)/policies/\(linkID)", token: token, json: ["state": "disabled"]).status == 204)
            guard case .decided(_, let after, _) = try await Self.admit(gate, token: aliceToken) else { Issue.record("alice was not authenticated"); return }
            #expect(!after.blocks)

            // Disabled: the token no longer opens anything.
            #expect(await h.graph("PATCH", "users/\(alice)", token: admin, json: ["accountEnabled": false]).status == 204)
            #expect(try await Self.admit(gate, token: aliceToken) == .unauthenticated("The user's account is disabled or deleted: the token is revoked."))
            // No token, a malformed one, an application's.
            #expect(try await Self.admit(gate, token: nil) == .unauthenticated("Access token is empty."))
            #expect(try await Self.admit(gate, token: "abc") == .unauthenticated("IDX14100: JWT is not well formed or its signature is invalid."))
            #expect(try await Self.admit(gate, token: admin) == .unauthenticated("The proxy takes a signed-in user's access token, not an application's."))
        }
    }
}
