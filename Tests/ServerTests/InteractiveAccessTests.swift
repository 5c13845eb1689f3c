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

    static func authorize(_ h: Harness, _ s: Setup, from address: String, extra: [(String, String)] = []) async -> APIResponse {
        var request = APIRequest(method: "GET", path: "/\(h.tenant.tenantId)/oauth2/v2.0/authorize",
                                 query: ([("client_id", s.appID), ("redirect_uri", web), ("response_type", "code"), ("scope", "openid"),
                                          ("state", "s1")] + extra).map { (name: $0.0, value: $0.1) },
                                 headers: ["cookie": s.cookie, "user-agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/140.0"],
                                 body: [], baseURL: Harness.base)
        request.clientAddress = address
        return await h.app.handle(request)
    }

    static func location(_ r: APIResponse) -> String? { r.headers.first { $0.name == "Location" }?.value }

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
}
