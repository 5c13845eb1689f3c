import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

/// Conditional Access at /authorize: after the passkey step and before the code.
@Suite("Conditional Access at interactive sign-in")
struct InteractiveAccessTests {
    static let web = "https://app.contoso.test/callback"

    struct Setup {
        let appID: String
        let groupID: String
        let office: String
        let cookie: String
    }

    static func setup(_ h: Harness, _ admin: String) async throws -> Setup {
        let app = await h.graph("POST", "applications", token: admin, json: ["displayName": "Payroll", "web": ["redirectUris": [.string(web)]]])
        let appID = try #require(app.json["appId"]?.stringValue)
        _ = await h.graph("POST", "servicePrincipals", token: admin, json: ["appId": .string(appID)])
        let group = await h.graph("POST", "groups", token: admin, json: [
            "displayName": "Finance", "mailEnabled": false, "mailNickname": "finance", "securityEnabled": true])
        let groupID = try #require(group.json["id"]?.stringValue)
        _ = await h.graph("POST", "groups/\(groupID)/members/$ref", token: admin,
                          json: ["@odata.id": .string("\(Harness.base)/v1.0/directoryObjects/\(h.tenant.adminUserId)")])
        let office = try await ConditionalAccessTests.office(h, admin)
        let (_, setCookie) = try await SignInSessions(app: h.app).start(tenant: h.tenant.tenantId, userID: h.tenant.adminUserId,
                                                                        amr: ["fido", "mfa"], baseURL: Harness.base)
        return Setup(appID: appID, groupID: groupID, office: office, cookie: String(setCookie.split(separator: ";")[0]))
    }

    static func authorize(_ h: Harness, _ s: Setup, from address: String, scope: String = "openid", extra: [(String, String)] = []) async -> APIResponse {
        var request = APIRequest(method: "GET", path: "/\(h.tenant.tenantId)/oauth2/v2.0/authorize",
                                 query: ([("client_id", s.appID), ("redirect_uri", web), ("response_type", "code"), ("scope", scope),
                                          ("state", "s1")] + extra).map { (name: $0.0, value: $0.1) },
                                 headers: ["cookie": s.cookie, "user-agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/140.0"],
                                 body: [], baseURL: Harness.base)
        request.clientAddress = address
        return await h.app.handle(request)
    }

    static func location(_ r: APIResponse) -> String? { r.headers.first { $0.name == "Location" }?.value }

    /// The code in an authorize response's redirect.
    static func code(_ r: APIResponse) throws -> String {
        try #require(location(r)?.split(separator: "code=").last?.split(separator: "&").first.map(String.init))
    }

    /// A new client secret for the web app (a confidential client redeems its codes with it).
    static func secret(_ h: Harness, _ s: Setup, admin: String) async throws -> String {
        let apps = await h.graph("GET", "applications", token: admin, query: [("$filter", "appId eq '\(s.appID)'")])
        let objectID = try #require(apps.json["value"]?.arrayValue?.first?["id"]?.stringValue)
        return try #require(await h.graph("POST", "applications/\(objectID)/addPassword", token: admin, json: [:]).json["secretText"]?.stringValue)
    }

    /// A token request with `form`, from `address`.
    static func token(_ h: Harness, _ form: [(String, String)], from address: String) async -> APIResponse {
        var request = APIRequest(method: "POST", path: "/\(h.tenant.tenantId)/oauth2/v2.0/token", query: [],
                                 headers: ["content-type": "application/x-www-form-urlencoded"],
                                 body: Array(AuthorizeEndpoint.encode(form).utf8), baseURL: Harness.base)
        request.clientAddress = address
        return await h.app.handle(request)
    }

    @Test("a group blocked outside its trusted location gets Entra's error page there, a code inside; report-only never blocks")
    func blockOutsideTheOffice() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let s = try await Self.setup(h, admin)
            let created = await h.graph("POST", ConditionalAccessTests.policies, token: admin, json: [
                "displayName": "Finance only from the office", "state": "enabledForReportingButNotEnforced",
                "conditions": ["users": ["includeGroups": [.string(s.groupID)]], "applications": ["includeApplications": [.string(s.appID)]],
                               "locations": ["includeLocations": ["All"], "excludeLocations": [.string(s.office)]]],
                "grantControls": ["operator": "OR", "builtInControls": ["block"]]])
            let policyID = try #require(created.json["id"]?.stringValue)
            #expect(Self.location(await Self.authorize(h, s, from: "198.51.100.4"))?.hasPrefix(Self.web + "?code=") == true)
            _ = await h.graph("PATCH", "\(ConditionalAccessTests.policies)/\(policyID)", token: admin, json: ["state": "enabled"])
            let blocked = await Self.authorize(h, s, from: "198.51.100.4")
            #expect(blocked.status == 403 && Self.location(blocked) == nil)
            #expect(blocked.text.contains("AADSTS53003") && !blocked.text.contains("Finance only from the office"))
            #expect(Self.location(await Self.authorize(h, s, from: "203.0.113.77"))?.hasPrefix(Self.web + "?code=") == true)
            // Another application is not this policy's business.
            let other = await h.graph("POST", "applications", token: admin, json: ["displayName": "Wiki", "web": ["redirectUris": [.string(Self.web)]]])
            let wiki = Setup(appID: try #require(other.json["appId"]?.stringValue), groupID: s.groupID, office: s.office, cookie: s.cookie)
            #expect(Self.location(await Self.authorize(h, wiki, from: "198.51.100.4"))?.hasPrefix(Self.web + "?code=") == true)
        }
    }

    @Test("sign-in frequency sends an old session back to sign in (interaction_required when silent); a passkey meets phishing resistance")
    func signInFrequencyAndStrength() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let s = try await Self.setup(h, admin)
            let created = await h.graph("POST", ConditionalAccessTests.policies, token: admin, json: [
                "displayName": "Payroll: a passkey, every hour", "state": "enabled",
                "conditions": ["users": ["includeUsers": ["All"]], "applications": ["includeApplications": [.string(s.appID)]]],
                "grantControls": ["operator": "OR", "builtInControls": [],
                                  "authenticationStrength": ["id": "00000000-0000-0000-0000-000000000004"]],
                "sessionControls": ["signInFrequency": ["value": 1, "type": "hours", "isEnabled": true, "frequencyInterval": "timeBased",
                                                        "authenticationType": "primaryAndSecondaryAuthentication"]]])
            #expect(created.status == 201, "\(created.text)")
            #expect(Self.location(await Self.authorize(h, s, from: "203.0.113.5"))?.hasPrefix(Self.web + "?code=") == true)
            h.clock.advance(2 * 3600)
            let again = await Self.authorize(h, s, from: "203.0.113.5")
            #expect(again.status == 302 && Self.location(again)?.hasPrefix("/\(h.tenant.tenantId)/login?continue=") == true)
            let silent = await Self.authorize(h, s, from: "203.0.113.5", extra: [("prompt", "none")])
            #expect(Self.location(silent)?.hasPrefix(Self.web + "?error=interaction_required") == true)
        }
    }

    @Test("a refresh is decided again: a new policy's requirement is interaction_required with a claims challenge; a block is 53003 and spends nothing")
    func refresh() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let s = try await Self.setup(h, admin)
            // A public client with the SPA redirect would need PKCE; this web app proves itself with a secret.
            let secret = try await Self.secret(h, s, admin: admin)
            func post(_ form: [(String, String)], from address: String) async -> APIResponse { await Self.token(h, form, from: address) }
            let code = try Self.code(await Self.authorize(h, s, from: "203.0.113.5", scope: "openid offline_access"))
            let first = await post([("grant_type", "authorization_code"), ("client_id", s.appID), ("client_secret", secret),
                                    ("redirect_uri", Self.web), ("code", code)], from: "203.0.113.5")
            let refresh = try #require(first.json["refresh_token"]?.stringValue)
            func refreshing(from address: String) async -> APIResponse {
                await post([("grant_type", "refresh_token"), ("client_id", s.appID), ("client_secret", secret), ("refresh_token", refresh)],
                           from: address)
            }
            // A block from outside the office: refused, the token not spent.
            let blocking = await h.graph("POST", ConditionalAccessTests.policies, token: admin, json: [
                "displayName": "Payroll only from the office", "state": "enabled",
                "conditions": ["users": ["includeUsers": ["All"]], "applications": ["includeApplications": [.string(s.appID)]],
                               "locations": ["includeLocations": ["All"], "excludeLocations": [.string(s.office)]]],
                "grantControls": ["operator": "OR", "builtInControls": ["block"]]])
            let blockingID = try #require(blocking.json["id"]?.stringValue)
            let outside = await refreshing(from: "198.51.100.4")
            #expect(outside.json["error"] == "invalid_grant" && outside.json["error_codes"]?.arrayValue?.first?.intValue == 53003)
            _ = await h.graph("DELETE", "\(ConditionalAccessTests.policies)/\(blockingID)", token: admin)
            // A sign-in frequency the session no longer meets: sign in again, with the policy named in the claims challenge.
            let frequency = await h.graph("POST", ConditionalAccessTests.policies, token: admin, json: [
                "displayName": "Payroll every hour", "state": "enabled",
                "conditions": ["users": ["includeUsers": ["All"]], "applications": ["includeApplications": [.string(s.appID)]]],
                "sessionControls": ["signInFrequency": ["value": 1, "type": "hours", "isEnabled": true, "frequencyInterval": "timeBased",
                                                        "authenticationType": "primaryAndSecondaryAuthentication"]]])
            let frequencyID = try #require(frequency.json["id"]?.stringValue)
            h.clock.advance(2 * 3600)
            let challenged = await refreshing(from: "203.0.113.5")
            #expect(challenged.json["error"] == "interaction_required")
            let claims = try JSONParser.parse(Array(try #require(challenged.json["claims"]?.stringValue).utf8))
            #expect(claims["access_token"]?["capolids"]?["values"] == [.string(frequencyID)])
            // Once the policy is gone, the same token still refreshes: nothing was spent by the refusals.
            let removed = await h.graph("DELETE", "\(ConditionalAccessTests.policies)/\(frequencyID)", token: try await h.accessToken())
            #expect(removed.status == 204, "\(removed.text)")
            let after = await refreshing(from: "203.0.113.5")
            #expect(after.status == 200, "\(after.text)")
        }
    }

    @Test("the device login page refuses to approve a device's sign-in that Conditional Access blocks where the user is")
    func deviceApproval() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let s = try await Self.setup(h, admin)
            let cli = await h.graph("POST", "applications", token: admin, json: ["displayName": "CLI", "isFallbackPublicClient": true])
            let cliID = try #require(cli.json["appId"]?.stringValue)
            _ = await h.graph("POST", ConditionalAccessTests.policies, token: admin, json: [
                "displayName": "CLI only from the office", "state": "enabled",
                "conditions": ["users": ["includeUsers": ["All"]], "applications": ["includeApplications": [.string(cliID)]],
                               "locations": ["includeLocations": ["All"], "excludeLocations": [.string(s.office)]]],
                "grantControls": ["operator": "OR", "builtInControls": ["block"]]])
            func start() async throws -> String {
                let started = await h.send("POST", "/\(h.tenant.tenantId)/oauth2/v2.0/devicecode",
                                           headers: ["content-type": "application/x-www-form-urlencoded"],
                                           body: Array("client_id=\(cliID)&scope=openid".utf8))
                return try #require(started.json["user_code"]?.stringValue)
            }
            func approve(_ userCode: String, from address: String) async -> APIResponse {
                var request = APIRequest(method: "POST", path: "/\(h.tenant.tenantId)/devicelogin", query: [],
                                         headers: ["content-type": "application/json", "origin": Harness.base, "cookie": s.cookie],
                                         body: JSONValue.object(["userCode": .string(userCode)]).serializedBytes, baseURL: Harness.base)
                request.clientAddress = address
                return await h.app.handle(request)
            }
            let away = await approve(try await start(), from: "198.51.100.4")
            #expect(away.status == 403 && away.text.contains("AADSTS53003"))
            let office = await approve(try await start(), from: "203.0.113.20")
            #expect(office.status == 200 && office.json["approved"] == true)
        }
    }
}
