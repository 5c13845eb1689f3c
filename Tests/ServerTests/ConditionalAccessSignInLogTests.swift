import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

/// Every sign-in and token writes its Conditional Access outcome to the sign-in log, in Graph's `signIn` shape:
/// `appliedConditionalAccessPolicies` (each policy's result, controls and conditions) and `conditionalAccessStatus`,
/// with how the sign-in was authenticated; the log filters on them.
@Suite("Conditional Access in the sign-in log")
struct ConditionalAccessSignInLogTests {
    static func signIns(_ h: Harness, _ token: String, _ filter: String) async -> [JSONValue] {
        await h.graph("GET", "auditLogs/signIns", token: token, query: [("$filter", filter)]).json["value"]?.arrayValue ?? []
    }

    static func policy(_ record: JSONValue, _ id: String) -> JSONValue? {
        record["appliedConditionalAccessPolicies"]?.arrayValue?.first { $0["id"]?.stringValue == id }
    }

    @Test("client credentials: each token is a service principal sign-in; report-only, failure and success are recorded and filterable")
    func workloadIdentity() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let office = try await ConditionalAccessTests.office(h, admin)
            let sp = await h.graph("GET", "servicePrincipals", token: admin, query: [("$filter", "appId eq '\(h.tenant.clientId)'")])
            let spID = try #require(sp.json["value"]?.arrayValue?.first?["id"]?.stringValue)
            // Before any policy: notApplied, no policies.
            let first = try #require(await Self.signIns(h, admin, "servicePrincipalId eq '\(spID)'").first)
            #expect(first["conditionalAccessStatus"] == "notApplied" && first["appliedConditionalAccessPolicies"] == [])
            #expect(first["signInEventTypes"] == ["servicePrincipal"] && first["appId"] == .string(h.tenant.clientId))
            #expect(first["resourceId"] == .string(GraphPermissions.graphAppId) && first["status"]?["errorCode"] == 0)
            #expect(first["userId"] == "" && first["isInteractive"] == false && first["authenticationRequirement"] == nil)

            let created = await h.graph("POST", ConditionalAccessTests.policies, token: admin, json: [
                "displayName": "Automation only from the office", "state": "enabledForReportingButNotEnforced",
                "conditions": [
                    "users": ["includeUsers": ["None"]], "clientApplications": ["includeServicePrincipals": [.string(spID)]],
                    "applications": ["includeApplications": ["All"]],
                    "locations": ["includeLocations": ["All"], "excludeLocations": [.string(office)]],
                ],
                "grantControls": ["operator": "OR", "builtInControls": ["block"]]])
            let policyID = try #require(created.json["id"]?.stringValue)
            #expect(await h.clientCredentials(from: "198.51.100.7").status == 200)
            let reported = try #require(await Self.signIns(h, admin, "ipAddress eq '198.51.100.7'").first)
            #expect(Self.policy(reported, policyID)?["result"] == "reportOnlyFailure")
            #expect(reported["conditionalAccessStatus"] == "notApplied" && reported["status"]?["errorCode"] == 0)

            _ = await h.graph("PATCH", "\(ConditionalAccessTests.policies)/\(policyID)", token: admin, json: ["state": "enabled"])
            #expect(await h.clientCredentials(from: "198.51.100.8").status == 400)
            #expect(await h.clientCredentials(from: "203.0.113.9").status == 200)
            let failures = await Self.signIns(h, admin, "conditionalAccessStatus eq 'failure'")
            #expect(failures.count == 1)
            let refused = try #require(failures.first)
            #expect(refused["ipAddress"] == "198.51.100.8" && refused["status"]?["errorCode"] == 53003)
            let applied = try #require(Self.policy(refused, policyID))
            #expect(applied["result"] == "failure" && applied["enforcedGrantControls"] == ["block"])
            #expect(applied["displayName"] == "Automation only from the office")
            #expect(applied["conditionsSatisfied"]?.stringValue?.contains("location") == true)
            #expect(refused["correlationId"]?.stringValue?.isEmpty == false)
            // Inside the office the location excludes it: notApplied, and the condition that kept it out is named.
            let inside = try #require(await Self.signIns(h, admin, "ipAddress eq '203.0.113.9'").first)
            #expect(inside["conditionalAccessStatus"] == "notApplied")
            #expect(Self.policy(inside, policyID)?["result"] == "notApplied")
            #expect(Self.policy(inside, policyID)?["conditionsNotSatisfied"]?.stringValue?.contains("location") == true)
            // A disabled policy is listed as notEnabled.
            _ = await h.graph("PATCH", "\(ConditionalAccessTests.policies)/\(policyID)", token: admin, json: ["state": "disabled"])
            #expect(await h.clientCredentials(from: "198.51.100.9").status == 200)
            let disabled = try #require(await Self.signIns(h, admin, "ipAddress eq '198.51.100.9'").first)
            #expect(Self.policy(disabled, policyID)?["result"] == "notEnabled")
        }
    }

    @Test("interactive sign-ins: a block and a success with a strength are recorded with the user, the methods and the requirement")
    func interactive() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let s = try await InteractiveAccessTests.setup(h, admin)
            let strength = await h.graph("POST", ConditionalAccessTests.policies, token: admin, json: [
                "displayName": "Payroll needs phishing-resistant MFA", "state": "enabled",
                "conditions": ["users": ["includeUsers": ["All"]], "applications": ["includeApplications": [.string(s.appID)]]],
                "grantControls": ["operator": "OR", "builtInControls": [],
                                  "authenticationStrength": ["id": "00000000-0000-0000-0000-000000000004"]]])
            let strengthID = try #require(strength.json["id"]?.stringValue)
            let block = await h.graph("POST", ConditionalAccessTests.policies, token: admin, json: [
                "displayName": "Finance only from the office", "state": "enabled",
                "conditions": ["users": ["includeGroups": [.string(s.groupID)]], "applications": ["includeApplications": [.string(s.appID)]],
                               "locations": ["includeLocations": ["All"], "excludeLocations": [.string(s.office)]]],
                "grantControls": ["operator": "OR", "builtInControls": ["block"]]])
            let blockID = try #require(block.json["id"]?.stringValue)
            #expect(await InteractiveAccessTests.authorize(h, s, from: "198.51.100.4").status == 403)
            #expect(InteractiveAccessTests.location(await InteractiveAccessTests.authorize(h, s, from: "203.0.113.4"))?
                .hasPrefix(InteractiveAccessTests.web + "?code=") == true)
            let records = await Self.signIns(h, admin, "appId eq '\(s.appID)'")
            #expect(records.count == 2)
            let refused = try #require(records.first { $0["ipAddress"] == "198.51.100.4" })
            #expect(refused["conditionalAccessStatus"] == "failure" && refused["status"]?["errorCode"] == 53003)
            #expect(refused["userId"] == .string(h.tenant.adminUserId) && refused["isInteractive"] == true)
            #expect(refused["signInEventTypes"] == ["interactiveUser"] && refused["appDisplayName"] == "Payroll")
            #expect(Self.policy(refused, blockID)?["result"] == "failure")
            // The passkey met the strength even though the block refused.
            #expect(Self.policy(refused, strengthID)?["result"] == "success")
            let allowed = try #require(records.first { $0["ipAddress"] == "203.0.113.4" })
            #expect(allowed["conditionalAccessStatus"] == "success" && allowed["status"]?["errorCode"] == 0)
            #expect(Self.policy(allowed, blockID)?["result"] == "notApplied")
            #expect(Self.policy(allowed, strengthID)?["enforcedGrantControls"] == ["authenticationStrength"])
            #expect(allowed["authenticationRequirement"] == "multiFactorAuthentication")
            #expect(allowed["authenticationMethodsUsed"] == ["Passkey"] && allowed["clientAppUsed"] == "Browser")
            #expect(allowed["userAgent"]?.stringValue?.contains("Chrome") == true && allowed["deviceDetail"]?["operatingSystem"] == "windows")
            #expect(await Self.signIns(h, admin, "conditionalAccessStatus eq 'success'").count == 1)
        }
    }

    @Test("a refresh is a non-interactive sign-in in the log, refused or not")
    func refresh() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let s = try await InteractiveAccessTests.setup(h, admin)
            let secret = try await InteractiveAccessTests.secret(h, s, admin: admin)
            func post(_ form: [(String, String)], from address: String) async -> APIResponse {
                await InteractiveAccessTests.token(h, form, from: address)
            }
            let code = try InteractiveAccessTests.code(await InteractiveAccessTests.authorize(h, s, from: "203.0.113.5", scope: "openid offline_access"))
            let first = await post([("grant_type", "authorization_code"), ("client_id", s.appID), ("client_secret", secret),
                                    ("redirect_uri", InteractiveAccessTests.web), ("code", code)], from: "203.0.113.5")
            let refresh = try #require(first.json["refresh_token"]?.stringValue)
            let renewed = await post([("grant_type", "refresh_token"), ("client_id", s.appID), ("client_secret", secret),
                                      ("refresh_token", refresh)], from: "203.0.113.6")
            let next = try #require(renewed.json["refresh_token"]?.stringValue)
            let quiet = try #require(await Self.signIns(h, admin, "ipAddress eq '203.0.113.6'").first)
            #expect(quiet["signInEventTypes"] == ["nonInteractiveUser"] && quiet["isInteractive"] == false)
            #expect(quiet["authenticationDetails"]?.arrayValue?.first?["authenticationMethod"] == "Previously satisfied")
            #expect(quiet["userId"] == .string(h.tenant.adminUserId) && quiet["conditionalAccessStatus"] == "notApplied")
            _ = await h.graph("POST", ConditionalAccessTests.policies, token: admin, json: [
                "displayName": "Payroll only from the office", "state": "enabled",
                "conditions": ["users": ["includeUsers": ["All"]], "applications": ["includeApplications": [.string(s.appID)]],
                               "locations": ["includeLocations": ["All"], "excludeLocations": [.string(s.office)]]],
                "grantControls": ["operator": "OR", "builtInControls": ["block"]]])
            #expect(await post([("grant_type", "refresh_token"), ("client_id", s.appID), ("client_secret", secret),
                                ("refresh_token", next)], from: "198.51.100.6").status == 400)
            let refused = try #require(await Self.signIns(h, admin, "ipAddress eq '198.51.100.6'").first)
            #expect(refused["signInEventTypes"] == ["nonInteractiveUser"] && refused["conditionalAccessStatus"] == "failure")
            #expect(refused["status"]?["errorCode"] == 53003)
        }
    }

    @Test("the admin center is an admin portal: a policy over MicrosoftAdminPortals blocks it from outside the office, and says so in the log")
    func adminCenter() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let office = try await ConditionalAccessTests.office(h, admin)
            let browser = try await AdminCenterTests.Browser.signIn(h, userID: h.tenant.adminUserId)
            // An emergency access account, left out of the policy as Microsoft recommends (and the safeguard requires).
            let breakGlass = try await AdminCenterTests.createUser(h, admin, "breakglass")
            try await h.assign(role: BuiltInRoles.globalAdministrator, to: breakGlass)
            let created = await h.graph("POST", ConditionalAccessTests.policies, token: admin, json: [
                "displayName": "Admin portals only from the office", "state": "enabled",
                "conditions": ["users": ["includeUsers": ["All"], "excludeUsers": [.string(breakGlass)]],
                               "applications": ["includeApplications": ["MicrosoftAdminPortals"]],
                               "locations": ["includeLocations": ["All"], "excludeLocations": [.string(office)]]],
                "grantControls": ["operator": "OR", "builtInControls": ["block"]]])
            #expect(created.status == 201, "\(created.text)")
            func page(from address: String) async -> APIResponse {
                var request = APIRequest(method: "GET", path: browser.base + "/users", query: [], headers: ["cookie": browser.cookie],
                                         body: [], baseURL: Harness.base)
                request.clientAddress = address
                return await h.app.handle(request)
            }
            let blocked = await page(from: "198.51.100.20")
            #expect(blocked.status == 403 && blocked.text.contains("AADSTS53003") && !blocked.text.contains("Admin portals only"))
            #expect(await page(from: "203.0.113.20").status == 200)
            let record = try #require(await Self.signIns(h, admin, "appId eq '\(AdminCenter.appID)'").first)
            #expect(record["conditionalAccessStatus"] == "failure" && record["ipAddress"] == "198.51.100.20")
            #expect(record["appDisplayName"] == "Tessera admin center")
        }
    }

    @Test("registering a passkey with a Temporary Access Pass is the registerSecurityInformation user action, decided by its policies")
    func registration() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let office = try await ConditionalAccessTests.office(h, admin)
            let user = try await TemporaryAccessPassTests.user(h, admin)
            let upn = try #require(await h.graph("GET", "users/\(user)", token: admin).json["userPrincipalName"]?.stringValue)
            let pass = await h.graph("POST", "users/\(user)/authentication/temporaryAccessPassMethods", token: admin,
                                     json: ["isUsableOnce": false, "lifetimeInMinutes": 60])
            let passcode = try #require(pass.json["temporaryAccessPass"]?.stringValue)
            // Security information is registered only from the office; a pass (MFA, not phishing-resistant) suffices there.
            let created = await h.graph("POST", ConditionalAccessTests.policies, token: admin, json: [
                "displayName": "Register security info from the office", "state": "enabled",
                "conditions": ["users": ["includeUsers": ["All"]],
                               "applications": ["includeUserActions": ["urn:user:registersecurityinfo"]],
                               "locations": ["includeLocations": ["All"], "excludeLocations": [.string(office)]]],
                "grantControls": ["operator": "OR", "builtInControls": ["block"]]])
            #expect(created.status == 201, "\(created.text)")
            let mfa = await h.graph("POST", ConditionalAccessTests.policies, token: admin, json: [
                "displayName": "Registering needs MFA", "state": "enabled",
                "conditions": ["users": ["includeUsers": ["All"]], "applications": ["includeUserActions": ["urn:user:registersecurityinfo"]]],
                "grantControls": ["operator": "OR", "builtInControls": ["mfa"]]])
            #expect(mfa.status == 201, "\(mfa.text)")
            func post(_ path: String, _ body: JSONValue, from address: String) async -> APIResponse {
                var request = APIRequest(method: "POST", path: "/\(h.tenant.tenantId)/\(path)", query: [],
                                         headers: ["content-type": "application/json", "origin": Harness.base],
                                         body: body.serializedBytes, baseURL: Harness.base)
                request.clientAddress = address
                return await h.app.handle(request)
            }
            let signedIn = await post("login/tap", ["username": .string(upn), "temporaryAccessPass": .string(passcode)], from: "198.51.100.30")
            let token = try #require(signedIn.json["enrollmentToken"]?.stringValue)
            let enrolment: JSONValue = ["userId": .string(user), "enrollmentToken": .string(token)]
            let outside = await post("login/enroll/options", enrolment, from: "198.51.100.30")
            #expect(outside.status == 403 && outside.text.contains("AADSTS53003"), "\(outside.text)")
            let inside = await post("login/enroll/options", enrolment, from: "203.0.113.30")
            #expect(inside.status == 200 && inside.json["publicKey"]?["challenge"] != nil, "\(inside.text)")
            let record = try #require(await Self.signIns(h, admin, "conditionalAccessStatus eq 'failure'").first)
            #expect(record["userId"] == .string(user) && record["authenticationMethodsUsed"] == ["Temporary Access Pass"])
        }
    }

    @Test("records wait for a batch but a reader on this node sees every one, and a full batch is written at once")
    func batching() async throws {
        try await Harness.run { h in
            let directory = h.app.directory, tenant = h.tenant.tenantId
            for n in 0..<(DirectoryService.signInBatchSize + 10) {
                try await directory.recordSignIn(tenant: tenant, entry: ["userId": "batch", "n": .int(Int64(n))])
            }
            // A full batch went to the store without anyone reading.
            let stored = try await h.app.store.read { tx in
                try await tx.query(ObjectQuery(tenant: tenant, kinds: [.signIn], limit: 1000))
            }
            #expect(stored.count >= DirectoryService.signInBatchSize)
            let all = try await directory.signIns(tenant: tenant, filter: nil, limit: 1000, offset: 0)
            #expect(all.count == DirectoryService.signInBatchSize + 10)
            #expect(Set(all.compactMap { $0.body["n"]?.intValue }) == Set((0..<(DirectoryService.signInBatchSize + 10)).map(Int64.init)))
        }
    }
}
