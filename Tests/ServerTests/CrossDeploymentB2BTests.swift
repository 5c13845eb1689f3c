import Crypto
import CryptoExtras
import Foundation
import Testing
@testable import Server
import Store
import TesseraCore
import TesseraTesting
import WebAuthn

/// Another Tessera in the network's place: requests to `base` are handled by `app`, anything else cannot be reached.
struct LoopbackHTTP: OutboundHTTP {
    let app: TesseraApp
    let base: String

    func send(_ request: OutboundRequest) async throws -> OutboundResponse {
        guard request.url.absoluteString.hasPrefix(base + "/") else { throw FederationFailure(50107, "\(request.url.host ?? "?") is unreachable") }
        let query = URLComponents(url: request.url, resolvingAgainstBaseURL: false)?.queryItems?.map { (name: $0.name, value: $0.value ?? "") } ?? []
        let headers = Dictionary(request.headers.map { ($0.0.lowercased(), $0.1) }, uniquingKeysWith: { first, _ in first })
        let answer = await app.handle(APIRequest(method: request.method, path: request.url.path, query: query, headers: headers,
                                                 body: request.body, baseURL: base))
        return OutboundResponse(status: answer.status, body: answer.body)
    }
}

@Suite("B2B between two deployments: a user of Contoso (deployment A, an OpenID provider) in Fabrikam (deployment B, which trusts it by configuration)")
struct CrossDeploymentB2BTests {
    /// Deployment A is the harness (Contoso, reached at `home`); deployment B is a second Tessera with its own database
    /// (Fabrikam), whose outbound requests reach A.
    struct World {
        let a: Harness
        let b: Harness
        let alice: String
        let aliceAt: String = "alice@contoso.test"
        let bAdmin: Caller
        let bToken: String
        /// Fabrikam's application registered at Contoso (its client id and secret there).
        let clientID: String
        let clientSecret: String
        let spaID: String
        static let home = "https://idp.contoso.test"
        var issuer: String { "\(Self.home)/\(a.tenant.tenantId)/v2.0" }
        var fabrikam: String { b.tenant.tenantId }

        func provider(_ overrides: [String: JSONValue] = [:]) -> JSONValue {
            var body: [String: JSONValue] = [
                "@odata.type": "#microsoft.graph.oidcIdentityProvider", "displayName": "Contoso (deployment A)", "clientId": .string(clientID),
                "issuer": .string(issuer), "wellKnownEndpoint": .string("\(issuer)/.well-known/openid-configuration"), "responseType": "code",
                "scope": "openid profile email", "domains": ["contoso.test"],
                "clientAuthentication": ["@odata.type": "#microsoft.graph.oidcClientSecretAuthentication", "clientSecret": .string(clientSecret)],
            ]
            body.merge(overrides.mapValues { $0 }) { $1 }
            return .object(body)
        }

        func createProvider(_ overrides: [String: JSONValue] = [:]) async throws -> APIResponse {
            await beta("POST", "identity/identityProviders", provider(overrides))
        }

        /// A Graph call to Fabrikam as `caller` (its Global Administrator by default), its error answered as Graph's.
        func beta(_ method: String, _ path: String, _ json: JSONValue? = nil, as caller: Caller? = nil) async -> APIResponse {
            do {
                return try await b.graph(method, path, json, as: caller ?? bAdmin)
            } catch let error as DirectoryError {
                return .error(error)
            } catch {
                Issue.record("\(error)")
                return APIResponse(status: 500, headers: [], body: [])
            }
        }

        /// Alice's browser at Contoso: a session there (signed in with a passkey).
        func homeCookie() async throws -> String {
            let (_, set) = try await SignInSessions(app: a.app).start(tenant: a.tenant.tenantId, userID: alice, amr: ["fido", "mfa"], baseURL: Self.home)
            return String(set.split(separator: ";")[0])
        }

        /// Follows redirects as a browser holding cookies for both deployments, up to the first answer that is not a
        /// redirect to either (or `stop` says so).
        func browse(_ first: APIResponse, cookies start: [String], stop: (String) -> Bool = { _ in false }) async -> (APIResponse, [String]) {
            var response = first, cookies = start
            for _ in 0..<10 {
                for (name, value) in response.headers where name == "Set-Cookie" {
                    let pair = String(value.split(separator: ";")[0])
                    let cookieName = pair.split(separator: "=")[0]
                    cookies.removeAll { $0.hasPrefix(cookieName + "=") }
                    if !value.contains("Max-Age=0") { cookies.append(pair) }
                }
                guard response.status == 302, let location = AuthorizeTests.location(response), !stop(location) else { return (response, cookies) }
                let absolute = location.hasPrefix("/") ? Harness.base + location : location
                let (app, base): (TesseraApp, String) = absolute.hasPrefix(Self.home + "/") ? (a.app, Self.home)
                    : absolute.hasPrefix(Harness.base + "/") ? (b.app, Harness.base) : (b.app, "")
                guard !base.isEmpty, let url = URL(string: absolute) else { return (response, cookies) }
                let query = URLComponents(url: url, resolvingAgainstBaseURL: false)?.queryItems?.map { (name: $0.name, value: $0.value ?? "") } ?? []
                response = await app.handle(APIRequest(method: "GET", path: url.path, query: query, headers: ["cookie": cookies.joined(separator: "; ")],
                                                       body: [], baseURL: base))
            }
            return (response, cookies)
        }

        func invite() async -> APIResponse {
            await b.graph("POST", "invitations", token: bToken, json: [
                "invitedUserEmailAddress": .string(aliceAt), "inviteRedirectUrl": "https://myapps.fabrikam.test/", "sendInvitationMessage": false])
        }

        static func redeemURL(_ invitation: APIResponse) throws -> URL {
            let text = try #require(invitation.json["inviteRedeemUrl"]?.stringValue)
            return try #require(URL(string: text))
        }

        /// Follows `invitation`'s redeem URL in Alice's browser (signed in at Contoso), answering Fabrikam's consent prompt
        /// with `decision` when it is shown.
        func redeem(_ invitation: APIResponse, decision: String = "accept") async throws -> APIResponse {
            let url = try World.redeemURL(invitation)
            let query = URLComponents(url: url, resolvingAgainstBaseURL: false)?.queryItems?.map { (name: $0.name, value: $0.value ?? "") } ?? []
            let (shown, cookies) = await browse(await b.send("GET", url.path, query: query), cookies: [try await homeCookie()])
            guard shown.status == 200, shown.text.contains("id=\"accept\"") else { return shown }
            let sealed = try #require(shown.text.firstMatch(of: /name="redemption" value="([^"]+)"/)?.1)
            let token = try #require(shown.text.firstMatch(of: /name="consent_token" value="([^"]+)"/)?.1)
            let form = AuthorizeEndpoint.encode([("redemption", String(sealed)), ("consent_token", String(token)), ("decision", decision)])
            return await b.send("POST", "/\(fabrikam)/b2b/oidc/consent", headers: [
                "cookie": cookies.joined(separator: "; "), "content-type": "application/x-www-form-urlencoded", "origin": Harness.base],
                body: Array(form.utf8))
        }

        /// Fabrikam's SPA asks `/authorize` with Alice's address as the hint; the browser goes to Contoso and back.
        func signIn(cookies: [String]? = nil) async throws -> APIResponse {
            let params = [("client_id", spaID), ("redirect_uri", AuthorizeTests.spa), ("response_type", "code"), ("scope", "openid profile"),
                          ("code_challenge", CrossTenantB2BTests.World.challenge), ("code_challenge_method", "S256"), ("login_hint", aliceAt)]
            let first = await AuthorizeTests.authorize(b, params)
            let start = if let cookies { cookies } else { [try await homeCookie()] }
            return await browse(first, cookies: start) { $0.hasPrefix(AuthorizeTests.spa) }.0
        }

        func tokens(_ response: APIResponse) async throws -> JSONValue {
            let location = try #require(AuthorizeTests.location(response))
            let code = try #require(URLComponents(string: location)?.queryItems?.first { $0.name == "code" }?.value)
            let form = AuthorizeEndpoint.encode([("grant_type", "authorization_code"), ("client_id", spaID), ("redirect_uri", AuthorizeTests.spa),
                                                 ("code", code), ("code_verifier", CrossTenantB2BTests.World.verifier)])
            let token = await b.send("POST", "/\(fabrikam)/oauth2/v2.0/token", headers: ["content-type": "application/x-www-form-urlencoded",
                                                                                        "origin": "https://spa.contoso.test"], body: Array(form.utf8))
            #expect(token.status == 200, "\(token.text)")
            return token.json
        }
    }

    /// Runs `body` with deployment A (the harness) and a second deployment B whose network reaches A only.
    static func run(_ body: (World) async throws -> Void) async throws {
        try await Harness.run { a in
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-test-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let store = try await SQLDirectoryStore.open(folder.appendingPathComponent("tessera.sqlite").path)
            do {
                let app = try await TesseraApp.make(store: store, clock: a.clock, maxBodyBytes: 64 * 1024,
                                                    outbound: LoopbackHTTP(app: a.app, base: World.home))
                let tenant = try await TenantProvisioner(directory: app.directory).create(name: "Fabrikam", domain: "fabrikam.test")
                let b = Harness(app: app, clock: a.clock, tenant: tenant)
                try await body(try await world(a, b))
                await app.jobs.idle()
                try await store.shutdown()
            } catch {
                try? await store.shutdown()
                throw error
            }
        }
    }

    /// A user of Fabrikam holding `role` (none when nil), as the Graph caller the admin center makes of it.
    static func caller(_ b: Harness, _ token: String, _ name: String, role: String?) async throws -> Caller {
        let created = await b.graph("POST", "users", token: token, json: [
            "accountEnabled": true, "displayName": .string(name), "mailNickname": .string(name),
            "userPrincipalName": .string("\(name)@fabrikam.test"), "passwordProfile": ["password": "Xy!9aaaaaaaa"]])
        let id = try #require(created.json["id"]?.stringValue, "\(created.text)")
        if let role { try await b.assign(role: role, to: id) }
        let tenant = b.tenant.tenantId
        let user = try #require(try await b.app.store.read { tx in try await tx.object(tenant: tenant, id: id) })
        return try await Caller.user(tenant: tenant, user: user, scopes: nil, app: b.app)
    }

    static func world(_ a: Harness, _ b: Harness) async throws -> World {
        let aToken = try await a.accessToken()
        let alice = await a.graph("POST", "users", token: aToken, json: [
            "accountEnabled": true, "displayName": "Alice", "mailNickname": "alice", "userPrincipalName": "alice@contoso.test",
            "mail": "alice@contoso.test", "passwordProfile": ["password": "Xy!9aaaaaaaa"]])
        // Fabrikam registered at Contoso as a web application, its redirect URI Fabrikam's callback.
        let registration = await a.graph("POST", "applications", token: aToken, json: [
            "displayName": "Fabrikam B2B", "web": ["redirectUris": [.string("\(Harness.base)/\(b.tenant.tenantId)/b2b/oidc/callback")]]])
        let clientID = try #require(registration.json["appId"]?.stringValue)
        _ = await a.graph("POST", "servicePrincipals", token: aToken, json: ["appId": .string(clientID)])
        let objectID = try #require(registration.json["id"]?.stringValue)
        let password = await a.graph("POST", "applications/\(objectID)/addPassword", token: aToken, json: ["passwordCredential": ["displayName": "b2b"]])
        let bToken = try await b.accessToken()
        return World(a: a, b: b, alice: try #require(alice.json["id"]?.stringValue),
                     bAdmin: try await caller(b, bToken, "fabrikam-admin", role: BuiltInRoles.globalAdministrator), bToken: bToken,
                     clientID: clientID, clientSecret: try #require(password.json["secretText"]?.stringValue),
                     spaID: try await AuthorizeTests.application(b, bToken))
    }

    @Test("Fabrikam invites Alice of Contoso's deployment; she redeems by signing in at Contoso; Fabrikam's app gets Fabrikam's token naming Contoso's issuer as idp")
    func inviteRedeemAndSignIn() async throws {
        try await Self.run { w in
            let created = try await w.createProvider()
            #expect(created.status == 201, "\(created.text)")
            #expect(created.json["@odata.type"] == "#microsoft.graph.oidcIdentityProvider" && created.json["issuer"]?.stringValue == w.issuer)
            #expect(created.json["clientAuthentication"]?["clientSecret"] == "*****" && !created.text.contains(w.clientSecret))
            let invitation = await w.invite()
            #expect(invitation.status == 201, "\(invitation.text)")
            let guestID = try #require(invitation.json["invitedUser"]?["id"]?.stringValue)
            let guest = await w.b.graph("GET", "users/\(guestID)", token: w.bToken, query: [("$select", "userType,externalUserState,identities")]).json
            #expect(guest["userType"] == "Guest" && guest["externalUserState"] == "PendingAcceptance")
            #expect(guest["identities"]?.arrayValue?.first?["issuer"]?.stringValue == w.issuer)

            // The redeem link sends the browser to Contoso's authorization endpoint, with PKCE, a nonce and a bound state.
            let url = try World.redeemURL(invitation)
            let query = URLComponents(url: url, resolvingAgainstBaseURL: false)?.queryItems?.map { (name: $0.name, value: $0.value ?? "") } ?? []
            let first = await w.b.send("GET", url.path, query: query)
            let authorize = try #require(AuthorizeTests.location(first).flatMap(URLComponents.init(string:)))
            #expect(first.status == 302 && authorize.path == "/\(w.a.tenant.tenantId)/oauth2/v2.0/authorize", "\(first.text)")
            let items = Dictionary((authorize.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { x, _ in x })
            #expect(items["client_id"] == w.clientID && items["code_challenge_method"] == "S256" && items["nonce"]?.isEmpty == false)
            #expect(items["login_hint"] == w.aliceAt && items["redirect_uri"] == "\(Harness.base)/\(w.fabrikam)/b2b/oidc/callback")

            // Fabrikam's consent prompt (automatic redemption is never known for another deployment): Cancel redeems nothing.
            let declined = try await w.redeem(invitation, decision: "cancel")
            #expect(declined.status == 403 && declined.text.contains("AADSTS65004"), "\(declined.text)")
            #expect(await w.b.graph("GET", "users/\(guestID)", token: w.bToken, query: [("$select", "externalUserState")]).json["externalUserState"]
                    == "PendingAcceptance")
            let redeemed = try await w.redeem(invitation)
            #expect(redeemed.status == 302 && AuthorizeTests.location(redeemed) == "https://myapps.fabrikam.test/", "\(redeemed.text)")
            let accepted = await w.b.graph("GET", "users/\(guestID)", token: w.bToken, query: [("$select", "externalUserState,identities")]).json
            #expect(accepted["externalUserState"] == "Accepted" && accepted["identities"]?.arrayValue?.first?["issuerAssignedId"]?.stringValue == w.alice)

            let done = try await w.signIn()
            #expect(done.status == 302 && AuthorizeTests.location(done)?.hasPrefix(AuthorizeTests.spa + "?code=") == true,
                    "\(AuthorizeTests.location(done) ?? done.text)")
            let tokens = try await w.tokens(done)
            for claims in [try CrossTenantB2BTests.claims(tokens["id_token"]), try CrossTenantB2BTests.claims(tokens["access_token"])] {
                #expect(claims["tid"]?.stringValue == w.fabrikam && claims["oid"]?.stringValue == guestID)
                #expect(claims["idp"]?.stringValue == w.issuer && claims["acct"] == 1)
                #expect(claims["iss"]?.stringValue == "\(Harness.base)/\(w.fabrikam)/v2.0")
            }
            let signIns = await w.b.graph("GET", "auditLogs/signIns", token: w.bToken, query: [("$filter", "userId eq '\(guestID)'")])
                .json["value"]?.arrayValue ?? []
            #expect(!signIns.isEmpty && signIns.allSatisfy { $0["homeTenantId"]?.stringValue == w.a.tenant.tenantId }, "\(signIns)")
        }
    }

    @Test("without an identity provider for the domain Fabrikam cannot invite Contoso's users, and a login_hint there stays in Fabrikam")
    func refusedWithoutTrust() async throws {
        try await Self.run { w in
            let invitation = await w.invite()
            #expect(invitation.status == 400 && invitation.errorCode == "Request_BadRequest", "\(invitation.text)")
            let guests = await w.b.graph("GET", "users", token: w.bToken, query: [("$filter", "creationType eq 'Invitation'")])
            #expect(guests.json["value"]?.arrayValue?.isEmpty == true)
            let done = try await w.signIn()
            #expect(AuthorizeTests.location(done)?.hasPrefix(Harness.base) != false && !(AuthorizeTests.location(done) ?? "").contains("b2b/signin"))
            #expect(AuthorizeTests.location(done)?.hasPrefix(World.home) != true)
        }
    }

    @Test("a trust removed after redemption refuses the next sign-in; Alice without an invitation is refused with AADSTS50020")
    func removedTrustAndNoInvitation() async throws {
        try await Self.run { w in
            let created = try await w.createProvider()
            let id = try #require(created.json["id"]?.stringValue)
            // Not invited: Contoso signs her in, Fabrikam has no guest for her.
            let refused = try await w.signIn()
            #expect(refused.status == 403 && refused.text.contains("AADSTS50020"), "\(refused.text)")
            _ = try await w.redeem(await w.invite())
            #expect(try await w.signIn().status == 302)
            let deleted = await w.beta("DELETE", "identity/identityProviders/\(id)")
            #expect(deleted.status == 204)
            let after = try await w.signIn()
            #expect(AuthorizeTests.location(after)?.hasPrefix(World.home) != true && AuthorizeTests.location(after)?.hasPrefix(AuthorizeTests.spa) != true,
                    "\(AuthorizeTests.location(after) ?? after.text)")
        }
    }

    @Test("the callback refuses a state from another browser, a forged state, and an ID token Contoso did not issue to Fabrikam; the consent answer only from the same browser")
    func callbackRefusals() async throws {
        try await Self.run { w in
            _ = try await w.createProvider()
            let invitation = await w.invite()
            let url = try World.redeemURL(invitation)
            let query = URLComponents(url: url, resolvingAgainstBaseURL: false)?.queryItems?.map { (name: $0.name, value: $0.value ?? "") } ?? []
            let start = await w.b.send("GET", url.path, query: query)
            // Alice's browser goes to Contoso and comes back with a code, stopping before the callback.
            let (atCallback, cookies) = await w.browse(start, cookies: [try await w.homeCookie()]) { $0.contains("/b2b/oidc/callback") }
            let callback = try #require(AuthorizeTests.location(atCallback).flatMap(URLComponents.init(string:)))
            let params = (callback.queryItems ?? []).map { (name: $0.name, value: $0.value ?? "") }
            // Another browser (no binding cookie) presenting Alice's code and state.
            let elsewhere = await w.b.send("GET", callback.path, query: params)
            #expect(elsewhere.status == 403 && elsewhere.text.contains("another browser"), "\(elsewhere.text)")
            let forged = await w.b.send("GET", callback.path, query: params.map { $0.name == "state" ? (name: "state", value: $0.value + "x") : $0 },
                                        headers: ["cookie": cookies.joined(separator: "; ")])
            #expect(forged.status == 403 && forged.text.contains("not valid"))
            let pending = await w.b.graph("GET", "users/\(try #require(invitation.json["invitedUser"]?["id"]?.stringValue))", token: w.bToken,
                                          query: [("$select", "externalUserState")])
            #expect(pending.json["externalUserState"] == "PendingAcceptance")
            // The right browser gets Fabrikam's consent prompt; its answer counts only from that browser, with the sealed redemption.
            let done = await w.b.send("GET", callback.path, query: params, headers: ["cookie": cookies.joined(separator: "; ")])
            #expect(done.status == 200 && done.text.contains("Review permissions"), "\(done.text)")
            let sealed = String(try #require(done.text.firstMatch(of: /name="redemption" value="([^"]+)"/)?.1))
            let token = String(try #require(done.text.firstMatch(of: /name="consent_token" value="([^"]+)"/)?.1))
            func answer(_ redemption: String, cookie: String?) async -> APIResponse {
                var headers = ["content-type": "application/x-www-form-urlencoded", "origin": Harness.base]
                if let cookie { headers["cookie"] = cookie }
                let form = AuthorizeEndpoint.encode([("redemption", redemption), ("consent_token", token), ("decision", "accept")])
                return await w.b.send("POST", "/\(w.fabrikam)/b2b/oidc/consent", headers: headers, body: Array(form.utf8))
            }
            let otherBrowser = await answer(sealed, cookie: nil)
            #expect(otherBrowser.status == 403 && otherBrowser.text.contains("another browser"), "\(otherBrowser.text)")
            let altered = await answer(sealed.replacingOccurrences(of: ".", with: "x."), cookie: cookies.joined(separator: "; "))
            #expect(altered.status == 403 && altered.text.contains("not valid"), "\(altered.text)")
            let accepted = await answer(sealed, cookie: cookies.joined(separator: "; "))
            #expect(accepted.status == 302 && AuthorizeTests.location(accepted) == "https://myapps.fabrikam.test/", "\(accepted.text)")
        }
    }

    @Test("Conditional Access requiring MFA of guests refuses Alice until Fabrikam trusts Contoso's MFA (inboundTrust for the ID token's tid)")
    func inboundTrust() async throws {
        try await Self.run { w in
            _ = try await w.createProvider()
            _ = try await w.redeem(await w.invite())
            let policy = await w.b.graph("POST", "identity/conditionalAccess/policies", token: w.bToken, json: [
                "displayName": "Guests need MFA", "state": "enabled",
                "conditions": ["applications": ["includeApplications": ["All"]], "clientAppTypes": ["all"],
                               "users": ["includeGuestsOrExternalUsers": [
                                   "guestOrExternalUserTypes": "b2bCollaborationGuest",
                                   "externalTenants": ["@odata.type": "#microsoft.graph.conditionalAccessAllExternalTenants", "membershipKind": "all"]]]],
                "grantControls": ["operator": "OR", "builtInControls": ["mfa"]]])
            #expect(policy.status == 201, "\(policy.text)")
            let refused = try await w.signIn()
            #expect(refused.status == 403 && refused.text.contains("AADSTS53003"), "\(refused.text)")
            let partner = await w.b.graph("POST", "policies/crossTenantAccessPolicy/partners", token: w.bToken, json: [
                "tenantId": .string(w.a.tenant.tenantId),
                "inboundTrust": ["isMfaAccepted": true, "isCompliantDeviceAccepted": false, "isHybridAzureADJoinedDeviceAccepted": false]])
            #expect(partner.status == 201, "\(partner.text)")
            let allowed = try await w.signIn()
            #expect(allowed.status == 302 && AuthorizeTests.location(allowed)?.hasPrefix(AuthorizeTests.spa + "?code=") == true, "\(allowed.text)")
        }
    }

    @Test("identity providers are written by those allowed, strictly, and each issuer and domain is one provider's")
    func identityProviderResource() async throws {
        try await Self.run { w in
            let created = try await w.createProvider()
            let id = try #require(created.json["id"]?.stringValue)
            #expect(try await w.createProvider(["displayName": "again"]).status == 409)
            for bad: [String: JSONValue] in [["issuer": "http://idp.contoso.test/x"], ["responseType": "id_token"], ["scope": "profile"],
                                             ["wellKnownEndpoint": "https://idp.contoso.test/metadata"], ["domains": []], ["domains": ["fabrikam.test"]],
                                             ["unknown": 1], ["@odata.type": "#microsoft.graph.socialIdentityProvider"]] {
                var body = w.provider(bad).objectValue ?? [:]
                body["issuer"] = bad["issuer"] ?? "https://other.example/v2.0"
                body["domains"] = bad["domains"] ?? ["other.example"]
                let refused = await w.beta("POST", "identity/identityProviders", .object(body))
                #expect(refused.status == 400 && refused.errorCode == "Request_BadRequest", "\(bad): \(refused.text)")
            }
            let patched = await w.beta("PATCH", "identity/identityProviders/\(id)", ["displayName": "Contoso A"])
            #expect(patched.status == 204)
            let read = await w.beta("GET", "identity/identityProviders/\(id)")
            #expect(read.json["displayName"] == "Contoso A" && read.json["clientAuthentication"]?["clientSecret"] == "*****")
            let plain = try await Self.caller(w.b, w.bToken, "plain", role: nil)
            #expect(await w.beta("GET", "identity/identityProviders", as: plain).status == 403)
            #expect(await w.beta("POST", "identity/identityProviders", w.provider(["issuer": "https://x.example/v2.0", "domains": ["x.example"]]),
                                 as: plain).status == 403)
            let audit = await w.b.graph("GET", "auditLogs/directoryAudits", token: w.bToken).json["value"]?.arrayValue ?? []
            #expect(audit.contains { $0["activityDisplayName"] == "Add identity provider" } && !"\(audit)".contains(w.clientSecret))
        }
    }
}

@Suite("An OpenID provider's ID token: what B2B with another deployment accepts")
struct FederatedIDTokenTests {
    static let key = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
    static let issuer = "https://idp.example/0b1c2d3e-1111-4222-8333-944455556666/v2.0"
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static var jwks: [JSONValue] {
        let primitives = try! key.publicKey.getKeyPrimitives()
        return [["kty": "RSA", "use": "sig", "kid": "k1", "n": .string(WebAuthn.Base64URL.encode(Array(primitives.modulus))),
                 "e": .string(WebAuthn.Base64URL.encode(Array(primitives.publicExponent)))]]
    }

    static func token(_ overrides: [String: JSONValue] = [:], kid: String = "k1", key signer: _RSA.Signing.PrivateKey = key) throws -> String {
        var claims: [String: JSONValue] = ["iss": .string(issuer), "aud": "client", "exp": .int(1_800_000_600), "iat": .int(1_800_000_000),
                                           "nonce": "n-1", "sub": "pairwise", "oid": "3f2c0a8e-1111-4222-8333-944455556666",
                                           "tid": "0b1c2d3e-1111-4222-8333-944455556666", "email": "Alice@Contoso.test", "amr": ["fido", "mfa"]]
        for (name, value) in overrides { claims[name] = value == .null ? nil : value }
        return try JWT.sign(claims: claims, header: ["kid": .string(kid)], key: signer)
    }

    static func check(_ token: String) -> FederatedIDToken.Verdict {
        FederatedIDToken.check(token, keys: jwks, issuer: issuer, clientID: "client", nonce: "n-1", now: now)
    }

    @Test("a token signed by the provider's key, for this client, with the nonce sent, names the user by oid and its tid")
    func accepted() throws {
        guard case .accepted(let identity) = Self.check(try Self.token()) else { Issue.record("refused"); return }
        #expect(identity.subject == "3f2c0a8e-1111-4222-8333-944455556666" && identity.tenantID == "0b1c2d3e-1111-4222-8333-944455556666")
        #expect(identity.addresses == ["alice@contoso.test"] && identity.amr == ["fido", "mfa"])
        guard case .accepted(let bySub) = Self.check(try Self.token(["oid": .null, "tid": .null])) else { Issue.record("refused"); return }
        #expect(bySub.subject == "pairwise" && bySub.tenantID == nil)
        // A tid the issuer does not name is not believed (no other tenant's inbound trust by claiming its id).
        guard case .accepted(let other) = Self.check(try Self.token(["tid": "9f8e7d6c-1111-4222-8333-944455556666"])) else {
            Issue.record("refused"); return
        }
        #expect(other.tenantID == nil)
    }

    @Test("refused: another issuer, another audience, another nonce, expired, issued in the future, no subject, an unknown key, another signer",
          arguments: ["iss", "aud", "azp", "nonce", "exp", "iat", "subject", "kid", "signer"])
    func refused(_ what: String) throws {
        let other = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let token = switch what {
        case "iss": try Self.token(["iss": "https://idp.example/other/v2.0"])
        case "aud": try Self.token(["aud": "someone-else"])
        case "azp": try Self.token(["aud": ["client", "someone-else"], "azp": "someone-else"])
        case "nonce": try Self.token(["nonce": "n-2"])
        case "exp": try Self.token(["exp": .int(1_800_000_000 - 301)])
        case "iat": try Self.token(["iat": .int(1_800_000_000 + 301)])
        case "subject": try Self.token(["oid": .null, "sub": .null])
        case "kid": try Self.token(kid: "k2")
        default: try Self.token(key: other)
        }
        guard case .refused = Self.check(token) else { Issue.record("\(what) was accepted"); return }
    }
}
