import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

/// What a sign-in carries beyond allow or block: authentication contexts asked for through the `claims` parameter
/// (as MSAL passes on a claims challenge) and satisfied into the token's `acrs`, and the persistent browser session
/// control on the session cookie.
@Suite("Conditional Access: authentication contexts and session controls")
struct ConditionalAccessSessionTests {
    static let c1: String = #"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#

    static func redeem(_ h: Harness, _ s: InteractiveAccessTests.Setup, _ authorize: APIResponse, admin: String) async throws -> APIResponse {
        let secret = try await InteractiveAccessTests.secret(h, s, admin: admin)
        let form = [("grant_type", "authorization_code"), ("client_id", s.appID), ("client_secret", secret),
                    ("redirect_uri", InteractiveAccessTests.web), ("code", try InteractiveAccessTests.code(authorize))]
        return await InteractiveAccessTests.token(h, form, from: "203.0.113.60")
    }

    @Test("an authentication context asked for in claims brings its policies in: refused outside the office, satisfied inside, in the token's acrs")
    func authenticationContext() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let s = try await InteractiveAccessTests.setup(h, admin)
            let created = await h.graph("POST", ConditionalAccessTests.policies, token: admin, json: [
                "displayName": "Sensitive actions (c1) only from the office", "state": "enabled",
                "conditions": ["users": ["includeUsers": ["All"]],
                               "applications": ["includeAuthenticationContextClassReferences": ["c1"]],
                               "locations": ["includeLocations": ["All"], "excludeLocations": [.string(s.office)]]],
                "grantControls": ["operator": "OR", "builtInControls": ["block"]]])
            #expect(created.status == 201, "\(created.text)")
            // Without the context the policy is not about this sign-in.
            let plain = await InteractiveAccessTests.authorize(h, s, from: "198.51.100.60")
            #expect(InteractiveAccessTests.location(plain)?.hasPrefix(InteractiveAccessTests.web + "?code=") == true)
            let outside = await InteractiveAccessTests.authorize(h, s, from: "198.51.100.60", extra: [("claims", Self.c1)])
            #expect(outside.status == 403 && outside.text.contains("AADSTS53003"))
            let inside = await InteractiveAccessTests.authorize(h, s, from: "203.0.113.60", extra: [("claims", Self.c1)])
            let token = try await Self.redeem(h, s, inside, admin: admin)
            let accessToken = try #require(token.json["access_token"]?.stringValue)
            #expect(JWT.decode(accessToken)?.claims["acrs"] == ["c1"])
            let withoutContext = try await Self.redeem(h, s, plain, admin: admin)
            let plainToken = try #require(withoutContext.json["access_token"]?.stringValue)
            #expect(JWT.decode(plainToken)?.claims["acrs"] == nil)
            // A claims parameter that is not JSON, or a context outside c1…c99, is the client's error, sent back to it.
            for bad in ["not json", #"{"access_token":{"acrs":{"value":"c100"}}}"#] {
                let refused = await InteractiveAccessTests.authorize(h, s, from: "203.0.113.60", extra: [("claims", bad)])
                #expect(InteractiveAccessTests.location(refused)?.hasPrefix(InteractiveAccessTests.web + "?error=invalid_request") == true)
            }
        }
    }

    @Test("persistent browser session 'never' makes the session cookie end with the browser; without the control it is left alone")
    func persistentBrowser() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let s = try await InteractiveAccessTests.setup(h, admin)
            let before = await InteractiveAccessTests.authorize(h, s, from: "203.0.113.61")
            #expect(before.headers.allSatisfy { $0.name != "Set-Cookie" })
            let created = await h.graph("POST", ConditionalAccessTests.policies, token: admin, json: [
                "displayName": "No persistent sessions", "state": "enabled",
                "conditions": ["users": ["includeUsers": ["All"]], "applications": ["includeApplications": ["All"]]],
                "sessionControls": ["persistentBrowser": ["mode": "never", "isEnabled": true]]])
            #expect(created.status == 201, "\(created.text)")
            let after = await InteractiveAccessTests.authorize(h, s, from: "203.0.113.61")
            #expect(InteractiveAccessTests.location(after)?.hasPrefix(InteractiveAccessTests.web + "?code=") == true)
            let cookie = try #require(after.headers.first { $0.name == "Set-Cookie" }?.value)
            #expect(cookie.hasPrefix(s.cookie + ";") && cookie.contains("HttpOnly") && !cookie.contains("Max-Age"), "\(cookie)")
            let id = try #require(created.json["id"]?.stringValue)
            _ = await h.graph("PATCH", "\(ConditionalAccessTests.policies)/\(id)", token: admin,
                              json: ["sessionControls": ["persistentBrowser": ["mode": "always", "isEnabled": true]]])
            let always = await InteractiveAccessTests.authorize(h, s, from: "203.0.113.61")
            #expect(always.headers.first { $0.name == "Set-Cookie" }?.value.contains("Max-Age=\(Int(SignInSessions.lifetime))") == true)
        }
    }

    @Test("the user's groups are read once per change of the tenant: joining or leaving a group reaches the next decision")
    func membershipChanges() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let s = try await InteractiveAccessTests.setup(h, admin)  // the administrator is in Finance
            let other = await h.graph("POST", "groups", token: admin, json: [
                "displayName": "Contractors", "mailEnabled": false, "mailNickname": "contractors", "securityEnabled": true])
            let contractors = try #require(other.json["id"]?.stringValue)
            let created = await h.graph("POST", ConditionalAccessTests.policies, token: admin, json: [
                "displayName": "No Payroll for contractors", "state": "enabled",
                "conditions": ["users": ["includeGroups": [.string(contractors)]], "applications": ["includeApplications": [.string(s.appID)]]],
                "grantControls": ["operator": "OR", "builtInControls": ["block"]]])
            #expect(created.status == 201, "\(created.text)")
            func signIn() async -> Int { await InteractiveAccessTests.authorize(h, s, from: "203.0.113.62").status }
            #expect(await signIn() == 302)
            #expect(await signIn() == 302)  // from the cache
            let member = "\(Harness.base)/v1.0/directoryObjects/\(s.groupID)"
            // Finance (which the administrator is in) joins Contractors: the administrator is a contractor transitively.
            #expect(await h.graph("POST", "groups/\(contractors)/members/$ref", token: admin, json: ["@odata.id": .string(member)]).status == 204)
            #expect(await signIn() == 403)
            #expect(await h.graph("DELETE", "groups/\(contractors)/members/\(s.groupID)/$ref", token: admin).status == 204)
            #expect(await signIn() == 302)
        }
    }
}
