import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

@Suite("Authorization code flow: what /authorize and the code grant refuse")
struct AuthorizeTests {
    static let web = "https://app.contoso.test/callback"
    static let spa = "https://spa.contoso.test/"

    /// An app with a web and a SPA redirect URI; returns its appId.
    static func application(_ h: Harness, _ token: String) async throws -> String {
        let app = await h.graph("POST", "applications", token: token, json: [
            "displayName": "Flow app", "web": ["redirectUris": [.string(web)]], "spa": ["redirectUris": [.string(spa)]]])
        let appID = try #require(app.json["appId"]?.stringValue)
        _ = await h.graph("POST", "servicePrincipals", token: token, json: ["appId": .string(appID)])
        return appID
    }

    static func authorize(_ h: Harness, _ params: [(String, String)], cookie: String? = nil) async -> APIResponse {
        await h.send("GET", "/\(h.tenant.tenantId)/oauth2/v2.0/authorize", query: params.map { (name: $0.0, value: $0.1) },
                     headers: cookie.map { ["cookie": $0] } ?? [:])
    }

    static func location(_ response: APIResponse) -> String? { response.headers.first { $0.name == "Location" }?.value }

    @Test("an unknown client or an unregistered redirect URI is answered here, never redirected")
    func unknownClientAndRedirect() async throws {
        try await Harness.run { h in
            let appID = try await Self.application(h, try await h.accessToken())
            let unknown = await Self.authorize(h, [("client_id", Identifier.make()), ("redirect_uri", Self.web), ("response_type", "code"), ("scope", "openid")])
            #expect(unknown.status == 400 && unknown.json["error"] == "unauthorized_client" && Self.location(unknown) == nil)
            let elsewhere = await Self.authorize(h, [("client_id", appID), ("redirect_uri", "https://evil.example/cb"), ("response_type", "code"), ("scope", "openid")])
            #expect(elsewhere.status == 400 && Self.location(elsewhere) == nil)
            #expect(elsewhere.json["error_codes"]?.arrayValue?.first?.intValue == 50011)
        }
    }

    @Test("errors after the redirect URI is known go back to the client with the state", arguments: [
        ([("response_type", "token")], "unsupported_response_type"),
        ([("response_type", "code"), ("code_challenge", String(repeating: "a", count: 43)), ("code_challenge_method", "plain")], "invalid_request"),
        ([("response_type", "code"), ("prompt", "none")], "login_required"),
    ])
    func redirectedErrors(_ extra: [(String, String)], _ error: String) async throws {
        try await Harness.run { h in
            let appID = try await Self.application(h, try await h.accessToken())
            let response = await Self.authorize(h, [("client_id", appID), ("redirect_uri", Self.web), ("scope", "openid"), ("state", "s1")] + extra)
            #expect(response.status == 302)
            let location = try #require(Self.location(response))
            #expect(location.hasPrefix(Self.web + "?error=\(error)") && location.contains("state=s1"))
        }
    }

    @Test("a single-page app must use PKCE; without a session the browser goes to the sign-in page and back")
    func pkceAndSignInPage() async throws {
        try await Harness.run { h in
            let appID = try await Self.application(h, try await h.accessToken())
            let noPKCE = await Self.authorize(h, [("client_id", appID), ("redirect_uri", Self.spa), ("response_type", "code"), ("scope", "openid")])
            #expect(Self.location(noPKCE)?.contains("AADSTS9002325") == true)
            let params = [("client_id", appID), ("redirect_uri", Self.spa), ("response_type", "code"), ("scope", "openid"),
                          ("code_challenge", String(repeating: "b", count: 43)), ("code_challenge_method", "S256")]
            let toLogin = await Self.authorize(h, params)
            let location = try #require(Self.location(toLogin))
            #expect(toLogin.status == 302 && location.hasPrefix("/\(h.tenant.tenantId)/login?continue=%2F"))
            // A forged session cookie is no session.
            let forged = await Self.authorize(h, params, cookie: "\(SignInSessions.cookieName(tenant: h.tenant.tenantId))=\(Identifier.make()).AAAA")
            #expect(Self.location(forged)?.hasPrefix("/\(h.tenant.tenantId)/login?") == true)
        }
    }

    @Test("a code that is forged, expired or for another client gets invalid_grant")
    func badCodes() async throws {
        try await Harness.run { h in
            let appID = try await Self.application(h, try await h.accessToken())
            func redeem(_ code: String, client: String? = nil, verifier: Bool = false) async -> APIResponse {
                var form = "grant_type=authorization_code&client_id=\(client ?? appID)&redirect_uri=\(Self.spa.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)&code=\(code)"
                if verifier { form += "&code_verifier=\(String(repeating: "v", count: 43))" }
                return await h.send("POST", "/\(h.tenant.tenantId)/oauth2/v2.0/token", headers: ["content-type": "application/x-www-form-urlencoded"],
                                    body: Array(form.utf8))
            }
            let now = Int64(h.clock.now.timeIntervalSince1970)
            let (session, _) = try await SignInSessions(app: h.app).start(tenant: h.tenant.tenantId, userID: h.tenant.adminUserId,
                                                                           amr: ["fido", "mfa"], baseURL: Harness.base)
            let genuine = AuthorizationCode(tenant: h.tenant.tenantId, clientID: appID, redirectURI: Self.spa, userID: h.tenant.adminUserId,
                                            scope: "openid", nonce: nil, codeChallenge: nil, authTime: now, sessionID: session.id,
                                            amr: ["fido", "mfa"], expires: now + 600).encode(app: h.app)
            // A verifier for a code issued without a challenge is a PKCE downgrade (RFC 9700 §2.1.1): refused, code unspent.
            let downgrade = await redeem(genuine, verifier: true)
            #expect(downgrade.json["error"] == "invalid_grant" && downgrade.json["error_codes"]?.arrayValue?.first?.intValue == 501481)
            #expect(await redeem(genuine).status == 200)
            #expect(await redeem(genuine).json["error"] == "invalid_grant") // spent
            var tampered = genuine
            tampered.removeLast()
            tampered.append("A")
            #expect(await redeem(tampered).json["error"] == "invalid_grant")
            let other = AuthorizationCode(tenant: h.tenant.tenantId, clientID: appID, redirectURI: Self.spa, userID: h.tenant.adminUserId,
                                          scope: "openid", nonce: nil, codeChallenge: nil, authTime: now, sessionID: Identifier.make(),
                                          amr: [], expires: now + 600).encode(app: h.app)
            #expect(await redeem(other, client: Identifier.make()).json["error"] == "invalid_grant")
            h.clock.advance(601)
            #expect(await redeem(other).json["error"] == "invalid_grant") // expired
        }
    }

    @Test("response_mode=form_post posts the code from a page whose CSP allows only that target; other modes are refused")
    func formPost() async throws {
        try await Harness.run { h in
            let appID = try await Self.application(h, try await h.accessToken())
            let (_, setCookie) = try await SignInSessions(app: h.app).start(tenant: h.tenant.tenantId, userID: h.tenant.adminUserId,
                                                                             amr: ["fido", "mfa"], baseURL: Harness.base)
            let cookie = String(setCookie.split(separator: ";")[0])
            let params = [("client_id", appID), ("redirect_uri", Self.web), ("response_type", "code"), ("scope", "openid"), ("state", "s<1>")]
            let posted = await Self.authorize(h, params + [("response_mode", "form_post")], cookie: cookie)
            #expect(posted.status == 200 && Self.location(posted) == nil)
            let html = String(decoding: posted.body, as: UTF8.self)
            #expect(html.contains("<form method=\"post\" action=\"\(Self.web)\">") && html.contains("name=\"code\" value=\""))
            #expect(html.contains("name=\"state\" value=\"s&lt;1&gt;\""))
            let csp = posted.headers.first { $0.name == "Content-Security-Policy" }?.value ?? ""
            #expect(csp.contains("form-action https://app.contoso.test;") && csp.contains("script-src 'nonce-"))
            let unknown = await Self.authorize(h, params + [("response_mode", "web_message")], cookie: cookie)
            #expect(Self.location(unknown)?.hasPrefix(Self.web + "?error=invalid_request") == true)
        }
    }
}

@Suite("The sign-in path's cache of applications and consent")
struct SignInCacheTests {
    @Test("a redirect URI removed through Graph is refused at the very next authorize, though the application was just read")
    func applicationChangeSeenAtOnce() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let appID = try await AuthorizeTests.application(h, token)
            let params = [("client_id", appID), ("redirect_uri", AuthorizeTests.web), ("response_type", "code"), ("scope", "openid"), ("state", "s")]
            #expect(await AuthorizeTests.authorize(h, params).status == 302)
            let objectID = try #require(await h.graph("GET", "applications(appId='\(appID)')", token: token).json["id"]?.stringValue)
            let patched = await h.graph("PATCH", "applications/\(objectID)", token: token, json: ["web": ["redirectUris": []]])
            #expect(patched.status == 204)
            let refused = await AuthorizeTests.authorize(h, params)
            #expect(refused.status == 400 && refused.json["error_codes"]?.arrayValue?.first?.intValue == 50011)
        }
    }

    @Test("an entry holds while the tenant's generation stands and for at most TenantCache.maxAge")
    func entryRule() {
        let cache = SignInCache<Set<String>>()
        let generations = TenantGenerations()
        let readAt = ContinuousClock.now
        cache.store(["User.Read"], key: "t|c|u", generation: generations.current("t"), readAt: readAt)
        #expect(cache.value("t|c|u", tenant: "t", generations: generations, now: readAt) == ["User.Read"])
        #expect(cache.value("t|c|u", tenant: "t", generations: generations, now: readAt + TenantCache.maxAge) == nil)
        generations.bump("other")
        #expect(cache.value("t|c|u", tenant: "t", generations: generations, now: readAt) == ["User.Read"])
        generations.bump("t")
        #expect(cache.value("t|c|u", tenant: "t", generations: generations, now: readAt) == nil)
        #expect(cache.value("t|c|v", tenant: "t", generations: generations, now: readAt) == nil)
    }
}
