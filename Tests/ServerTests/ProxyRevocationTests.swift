import Foundation
import InternetAccess
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

/// The proxy refuses what Graph's `revokeSignInSessions` revoked, as it refuses deleted and disabled users, and a user
/// whose token does not meet the grant controls of Conditional Access on the Internet Access traffic.
@Suite("The proxy's gatekeeper: revoked sign-in sessions and grant controls")
struct ProxyRevocationTests {
    typealias P = NetworkAccessPolicyTests

    @Test("revokeSignInSessions refuses the user's older access tokens at the proxy; a token issued after it passes")
    func revokedSessions() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let alice = try await AdminCenterTests.createUser(h, admin, "alice")
            let client = try await TokenGrantHardeningTests.webApp(h, admin)
            let gate = NetworkAccessGatekeeper(app: h.app, catalog: try AICatalog.bundled(year: 2026), issuerBase: Harness.base)
            let old = try await P.userToken(h, userID: alice, client: client)
            guard case .decided = try await P.admit(gate, token: old) else { Issue.record("alice was not authenticated"); return }
            h.clock.advance(5)
            let revoke = await h.graph("POST", "users/\(alice)/revokeSignInSessions", token: admin)
            #expect(revoke.status == 200 && revoke.json["value"] == true)
            #expect(await h.graph("GET", "users/\(alice)", token: admin, query: [("$select", "signInSessionsValidFromDateTime")])
                .json["signInSessionsValidFromDateTime"] == .string(Timestamp.format(h.clock.now)))
            #expect(try await P.admit(gate, token: old)
                == .unauthenticated("The user's sign-in sessions were revoked after this token was issued: sign in again."))
            h.clock.advance(1)
            guard case .decided = try await P.admit(gate, token: try await P.userToken(h, userID: alice, client: client)) else {
                Issue.record("a token issued after the revocation was refused"); return
            }
        }
    }

    @Test("a Conditional Access policy on Internet Access asking for MFA refuses a password sign-in's token, naming the policy; its report-only twin lets another user through")
    func grantControls() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let alice = try await AdminCenterTests.createUser(h, admin, "alice"), bob = try await AdminCenterTests.createUser(h, admin, "bob")
            var ids: [String] = []
            for (name, user, state) in [("MFA for the internet", alice, "enabled"), ("MFA for the internet, report-only", bob, "enabledForReportingButNotEnforced")] {
                let ca = await h.graph("POST", "identity/conditionalAccess/policies", token: admin, json: [
                    "displayName": .string(name), "state": .string(state),
                    "conditions": ["applications": ["includeApplications": [.string(ConditionalAccessEngine.internetAccessAppID)]],
                                   "users": ["includeUsers": [.string(user)]]],
                    "grantControls": ["operator": "OR", "builtInControls": ["mfa"]]])
                #expect(ca.status == 201, "\(ca.text)")
                ids.append(try #require(ca.json["id"]?.stringValue))
            }
            let client = try await TokenGrantHardeningTests.webApp(h, admin)
            let gate = NetworkAccessGatekeeper(app: h.app, catalog: try AICatalog.bundled(year: 2026), issuerBase: Harness.base)
            let password = try await P.userToken(h, userID: alice, client: client, amr: ["pwd"])
            guard case .refused(let user, let refusal, let application) = try await P.admit(gate, token: password)
            else { Issue.record("alice's password-only token was let through"); return }
            #expect(user.userID == alice && application?.catalogId == "openai-api")
            #expect(refusal == ProxyRefusal(conditionalAccessPolicyID: ids[0], message: "Your organization's Conditional Access policy 'MFA for the internet' "
                + "requires a sign-in with multifactor authentication for internet access, which your access token does not show. Sign in again to get a token that does."))
            // A passkey sign-in meets it.
            guard case .decided = try await P.admit(gate, token: try await P.userToken(h, userID: alice, client: client)) else {
                Issue.record("alice's passkey token was refused"); return
            }
            guard case .decided = try await P.admit(gate, token: try await P.userToken(h, userID: bob, client: client, amr: ["pwd"])) else {
                Issue.record("a report-only policy refused bob"); return
            }
        }
    }
}
