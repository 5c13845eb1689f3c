import Foundation
import InternetAccess
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

/// The proxy refuses what Graph's `revokeSignInSessions` revoked, as it refuses deleted and disabled users.
@Suite("The proxy's gatekeeper and revoked sign-in sessions")
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
}
