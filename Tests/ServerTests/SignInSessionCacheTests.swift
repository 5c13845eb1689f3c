import Crypto
import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting
import WebAuthn

/// The sessions the passkey step starts are kept by its process (`SignInSessionCache`), so the `/authorize` after it
/// reads no session from the store. A kept session ended on this node (sign-out, `revokeSignInSessions`, its user
/// disabled) is refused at once; one ended on another node, which this process does not hear of, once
/// `TenantCache.maxAge` has passed, as every cluster cache of the sign-in path; and none past its expiry. Two nodes on
/// one database (SQLite, and PostgreSQL when the test command provides one).
@Suite("Sign-in sessions kept by the passkey step")
struct SignInSessionCacheTests {
    /// A passkey sign-in on `node`: the session cookie it sets.
    static func signIn(_ node: Harness, _ authenticator: SoftAuthenticator) async throws -> String {
        let response = try await PasskeyCacheTests.signIn(node, authenticator)
        #expect(response.status == 200, "\(response.text)")
        let name = SignInSessions.cookieName(tenant: node.tenant.tenantId) + "="
        let setCookie = try #require(response.headers.first { $0.name == "Set-Cookie" && $0.value.hasPrefix(name) }?.value)
        return String(setCookie.split(separator: ";")[0])
    }

    /// `/authorize` with the cookie on `node`: a code for the app, or nil when it sends the browser to sign in.
    static func authorize(_ node: Harness, appID: String, cookie: String) async throws -> String? {
        let verifier = String(repeating: "v", count: 43)
        let challenge = WebAuthn.Base64URL.encode(Array(SHA256.hash(data: Data(verifier.utf8))))
        let response = await node.send("GET", "/\(node.tenant.tenantId)/oauth2/v2.0/authorize", query: [
            ("client_id", appID), ("redirect_uri", LogoutTests.spa), ("response_type", "code"), ("scope", "openid profile"),
            ("state", "s"), ("code_challenge", challenge), ("code_challenge_method", "S256")].map { (name: $0.0, value: $0.1) },
            headers: ["cookie": cookie])
        let location = try #require(LogoutTests.location(response), "\(response.status) \(response.text)")
        if location.hasPrefix(LogoutTests.spa) {
            return try #require(URLComponents(string: location)?.queryItems?.first { $0.name == "code" }?.value, "\(location)")
        }
        #expect(location.hasPrefix("/\(node.tenant.tenantId)/login?"), "\(location)")
        return nil
    }

    /// Whether `node` keeps the session the cookie names (no store read would be made for it).
    static func kept(_ node: Harness, _ cookie: String) -> Bool {
        let id = String(cookie.split(separator: "=")[1].split(separator: ".")[0])
        return node.app.signInSessionCache.session(tenant: node.tenant.tenantId, id: id, generations: node.app.directory.generations,
                                                  now: node.app.clock.now) != nil
    }

    /// The user signed in on node 1 (which keeps the session) with an app registered, once `/authorize` has issued a code.
    static func signedIn(_ nodes: [Harness], _ name: String) async throws
        -> (userID: String, appID: String, cookie: String, authenticator: SoftAuthenticator) {
        let (userID, authenticator) = try await PasskeySignInCommitTests.enrolled(nodes[0], name)
        let appID = try await LogoutTests.application(nodes[0])
        let cookie = try await signIn(nodes[1], authenticator)
        #expect(kept(nodes[1], cookie))
        #expect(try await authorize(nodes[1], appID: appID, cookie: cookie) != nil)
        return (userID, appID, cookie, authenticator)
    }

    @Test("a kept session signed out on its node is refused at /authorize at once", arguments: ReplayOnEveryDatabaseTests.databases)
    func signedOutHere(_ database: String) async throws {
        try await ReplayOnEveryDatabaseTests.nodes(database) { nodes in
            let (userID, appID, cookie, _) = try await Self.signedIn(nodes, "ivan")
            // Sign-out (RP-initiated logout ends the session this way).
            let request = APIRequest(method: "GET", path: "/", query: [], headers: ["cookie": cookie], body: [], baseURL: Harness.base)
            _ = try await SignInSessions(app: nodes[1].app).end(request, tenant: nodes[1].tenant.tenantId)
            #expect(try await PasskeySignInCommitTests.sessions(nodes[1], of: userID) == 0)
            #expect(!Self.kept(nodes[1], cookie))
            #expect(try await Self.authorize(nodes[1], appID: appID, cookie: cookie) == nil)
        }
    }

    @Test("a kept session whose user's sessions are revoked, or whose user is disabled, on its node is refused at /authorize at once",
          arguments: ReplayOnEveryDatabaseTests.databases)
    func revokedHere(_ database: String) async throws {
        try await ReplayOnEveryDatabaseTests.nodes(database) { nodes in
            let admin = try await nodes[1].accessToken()
            let (userID, appID, cookie, authenticator) = try await Self.signedIn(nodes, "kim")
            // Its sessions deleted the way revokeSignInSessions deletes them, and nothing else changed in the directory.
            try await RefreshTokens(app: nodes[1].app).revokeAll(tenant: nodes[1].tenant.tenantId, userID: userID)
            #expect(try await Self.authorize(nodes[1], appID: appID, cookie: cookie) == nil)
            // Through Graph, on a new session kept again.
            let second = try await Self.signIn(nodes[1], authenticator)
            #expect(try await Self.authorize(nodes[1], appID: appID, cookie: second) != nil)
            let revoked = await nodes[1].graph("POST", "users/\(userID)/revokeSignInSessions", token: admin, json: [:])
            #expect(revoked.status == 200, "\(revoked.text)")
            #expect(try await Self.authorize(nodes[1], appID: appID, cookie: second) == nil)
            // Disabled: a third session, kept, is refused once the user is.
            let third = try await Self.signIn(nodes[1], authenticator)
            #expect(try await Self.authorize(nodes[1], appID: appID, cookie: third) != nil)
            let disabled = await nodes[1].graph("PATCH", "users/\(userID)", token: admin, json: ["accountEnabled": false])
            #expect(disabled.status == 204, "\(disabled.text)")
            #expect(try await Self.authorize(nodes[1], appID: appID, cookie: third) == nil)
        }
    }

    @Test("a kept session revoked on another node is refused at /authorize once TenantCache.maxAge has passed, and none is served past its expiry",
          arguments: ReplayOnEveryDatabaseTests.databases)
    func revokedElsewhere(_ database: String) async throws {
        try await ReplayOnEveryDatabaseTests.nodes(database) { nodes in
            let (userID, appID, cookie, authenticator) = try await Self.signedIn(nodes, "omar")
            // Node 0 revokes; node 1, which does not hear of it, still keeps the session within the cluster bound.
            try await RefreshTokens(app: nodes[0].app).revokeAll(tenant: nodes[0].tenant.tenantId, userID: userID)
            #expect(try await PasskeySignInCommitTests.sessions(nodes[1], of: userID) == 0)
            #expect(Self.kept(nodes[1], cookie))
            nodes[1].clock.advance(SignInSessionCache.maxAge)
            #expect(!Self.kept(nodes[1], cookie))
            #expect(try await Self.authorize(nodes[1], appID: appID, cookie: cookie) == nil)
            // A session kept and still stored is not served once it has expired (nor read: the store's is expired too).
            let second = try await Self.signIn(nodes[1], authenticator)
            #expect(Self.kept(nodes[1], second))
            nodes[1].clock.advance(SignInSessions.lifetime)
            #expect(try await Self.authorize(nodes[1], appID: appID, cookie: second) == nil)
        }
    }
}
