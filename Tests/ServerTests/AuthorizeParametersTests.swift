import Crypto
import CryptoExtras
import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

/// The OpenID Connect authorization request parameters, one test per OpenID Foundation OP test module it mirrors (the
/// display name starts with the module's name), plus what those modules do not cover.
@Suite("Authorization request parameters (OpenID Foundation Basic and Config OP modules)")
struct AuthorizeParametersTests {
    static let spa = "https://spa.contoso.test/"
    static let web = "https://app.contoso.test/callback"
    static let verifier = String(repeating: "v", count: 43)
    static var challenge: String { Base64URL.encode(Array(SHA256.hash(data: Array(verifier.utf8)))) }

    /// The response mode the relying party asks for (nil: the default, query): the Form Post Basic plan runs these
    /// modules again with `form_post`, and then every answer to the client, errors too, must come as a posted page.
    @TaskLocal static var responseMode: String?

    /// A Tessera with a SPA + web app (and, with `key`, that key's certificate on it), driven through `/authorize`.
    struct Flow {
        let h: Harness
        let appID: String
        var tenant: String { h.tenant.tenantId }

        init(_ h: Harness, certificate: [UInt8]? = nil) async throws {
            self.h = h
            let token = try await h.accessToken()
            let created = await h.graph("POST", "applications", token: token, json: [
                "displayName": "Relying party", "spa": ["redirectUris": [.string(AuthorizeParametersTests.spa)]],
                "web": ["redirectUris": [.string(AuthorizeParametersTests.web)]]])
            appID = try #require(created.json["appId"]?.stringValue)
            _ = await h.graph("POST", "servicePrincipals", token: token, json: ["appId": .string(appID)])
            if let certificate {
                let objectID = try #require(created.json["id"]?.stringValue)
                let uploaded = await h.graph("PATCH", "applications/\(objectID)", token: token, json: ["keyCredentials": [[
                    "type": "AsymmetricX509Cert", "usage": "Verify", "key": .string(Data(certificate).base64EncodedString())]]])
                #expect(uploaded.status == 204)
            }
        }

        /// The OpenID Foundation's basic request: code flow with PKCE to the SPA redirect URI, a state and a nonce.
        func basic(_ extra: [(String, String)] = []) -> [(String, String)] {
            var params = [("client_id", appID), ("redirect_uri", AuthorizeParametersTests.spa), ("response_type", "code"), ("scope", "openid"),
                          ("state", "st"), ("nonce", "n1"), ("code_challenge", AuthorizeParametersTests.challenge), ("code_challenge_method", "S256")]
            if let mode = AuthorizeParametersTests.responseMode, !extra.contains(where: { $0.0 == "response_mode" }) {
                params.append(("response_mode", mode))
            }
            return params + extra
        }

        /// A session for `user` (the administrator by default) starting now; the cookie to send.
        func signIn(_ user: String? = nil) async throws -> String {
            let (_, setCookie) = try await SignInSessions(app: h.app).start(tenant: tenant, userID: user ?? h.tenant.adminUserId, amr: ["fido", "mfa"],
                                                                             baseURL: Harness.base)
            return String(setCookie.split(separator: ";")[0])
        }

        func authorize(_ params: [(String, String)], cookie: String? = nil) async -> APIResponse {
            await h.send("GET", "/\(tenant)/oauth2/v2.0/authorize", query: params.map { (name: $0.0, value: $0.1) },
                         headers: cookie.map { ["cookie": $0] } ?? [:])
        }

        /// Follows a same-server Location (`/tenant/…?…`) with `cookie`.
        func follow(_ location: String, cookie: String? = nil) async -> APIResponse {
            let components = URLComponents(string: "https://x" + location)
            let query = (components?.queryItems ?? []).map { (name: $0.name, value: $0.value ?? "") }
            return await h.send("GET", components?.path ?? "", query: query, headers: cookie.map { ["cookie": $0] } ?? [:])
        }

        /// The ID token the code in a redirect to the SPA redeems for (PKCE, public client).
        func idToken(_ response: APIResponse) async throws -> JWT {
            let token = try #require(try await tokens(response)["id_token"]?.stringValue)
            return try #require(JWT.decode(token))
        }

        /// The token response the code in a redirect to the SPA redeems for.
        func tokens(_ response: APIResponse) async throws -> JSONValue {
            let code = try #require(AuthorizeParametersTests.parameter(response, "code"), "no code in \(AuthorizeParametersTests.location(response) ?? response.text)")
            let redeemed = await h.send("POST", "/\(tenant)/oauth2/v2.0/token", headers: ["content-type": "application/x-www-form-urlencoded"],
                                        body: Array(AuthorizeEndpoint.encode([
                                            ("grant_type", "authorization_code"), ("client_id", appID), ("redirect_uri", AuthorizeParametersTests.spa),
                                            ("code", code), ("code_verifier", AuthorizeParametersTests.verifier)]).utf8))
            #expect(redeemed.status == 200, "\(redeemed.text)")
            return redeemed.json
        }
    }

    static func location(_ response: APIResponse) -> String? { response.headers.first { $0.name == "Location" }?.value }

    /// What a response hands the client at its redirect URI, in the response mode asked for: a redirect's query, or the
    /// fields of a page that posts them there (`form_post`). Nil when the client is answered nothing, or answered in
    /// another mode than the one asked for.
    static func answered(_ response: APIResponse) -> [String: String]? {
        if responseMode == "form_post" {
            let html = response.text
            guard response.status == 200, html.contains("<form method=\"post\" action=\"\(Page.escape(spa))\">") else { return nil }
            var fields: [String: String] = [:]
            for input in html.components(separatedBy: "<input type=\"hidden\" name=\"").dropFirst() {
                let parts = input.components(separatedBy: "\" value=\"")
                guard parts.count > 1, let end = parts[1].firstIndex(of: "\"") else { continue }
                fields[parts[0]] = String(parts[1][..<end]).replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
                    .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
            }
            return fields
        }
        guard response.status == 302, let location = location(response), location.hasPrefix(spa + "?") else { return nil }
        return Dictionary((URLComponents(string: location)?.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { first, _ in first })
    }

    /// A parameter of the client's answer, or of a redirect within Tessera (the sign-in page, home realm discovery).
    static func parameter(_ response: APIResponse, _ name: String) -> String? {
        if let answer = answered(response) { return answer[name] }
        guard let location = location(response), location.hasPrefix("/") else { return nil }
        return URLComponents(string: "https://x" + location)?.queryItems?.first { $0.name == name }?.value
    }

    /// Whether the response sends the browser to this tenant's sign-in page.
    static func toSignIn(_ response: APIResponse, _ flow: Flow) -> Bool {
        response.status == 302 && location(response)?.hasPrefix("/\(flow.tenant)/login?") == true
    }

    /// Whether the response is an error of `error` sent back to the SPA with the state.
    /// Nothing else, as the suite's CheckForUnexpectedParametersInErrorResponseFromAuthorizationEndpoint checks.
    static func isError(_ response: APIResponse, _ error: String) -> Bool {
        guard let answer = answered(response) else { return false }
        let expected: Set<String> = ["error", "error_description", "error_uri", "state", "session_state", "iss"]
        return answer["error"] == error && answer["state"] == "st" && Set(answer.keys).isSubset(of: expected)
            && OpenIDProviderTests.isRFC6749Description(answer["error_description"].map(JSONValue.string))
    }

    @Test("oidcc-max-age-1: a session older than max_age signs in again, only a new sign-in counts, and the ID token carries auth_time")
    func maxAge1() async throws {
        try await Harness.run { h in
            let flow = try await Flow(h)
            let old = try await flow.signIn()
            let oldAuthTime = Int64(h.clock.now.timeIntervalSince1970)
            h.clock.advance(2)
            let asked = await flow.authorize(flow.basic([("max_age", "1")]), cookie: old)
            #expect(Self.toSignIn(asked, flow))
            let continuation = try #require(Self.parameter(asked, "continue"))
            #expect(continuation.contains(AuthorizeEndpoint.signedInAfter))
            // The old session coming back does not satisfy it; a sign-in after the request does.
            #expect(Self.toSignIn(await flow.follow(continuation, cookie: old), flow))
            h.clock.advance(5)
            let fresh = try await flow.signIn()
            let token = try await flow.idToken(await flow.follow(continuation, cookie: fresh))
            #expect(token.claims["auth_time"]?.intValue == Int64(h.clock.now.timeIntervalSince1970))
            #expect(token.claims["auth_time"]?.intValue != oldAuthTime)
        }
    }

    @Test("oidcc-max-age-10000: a session younger than max_age is used as it is, with its auth_time; max_age=0 is prompt=login")
    func maxAge10000() async throws {
        try await Harness.run { h in
            let flow = try await Flow(h)
            let cookie = try await flow.signIn()
            let authTime = Int64(h.clock.now.timeIntervalSince1970)
            h.clock.advance(60)
            let token = try await flow.idToken(await flow.authorize(flow.basic([("max_age", "10000")]), cookie: cookie))
            #expect(token.claims["auth_time"]?.intValue == authTime)
            #expect(Self.toSignIn(await flow.authorize(flow.basic([("max_age", "0")]), cookie: cookie), flow))
        }
    }

    @Test("max_age that is not a non-negative whole number is invalid_request, sent back to the client")
    func invalidMaxAge() async throws {
        try await Harness.run { h in
            let flow = try await Flow(h)
            let cookie = try await flow.signIn()
            for bad in ["-1", "abc", "1.5", "", "99999999999999999999"] {
                #expect(Self.isError(await flow.authorize(flow.basic([("max_age", bad)]), cookie: cookie), "invalid_request"), "max_age=\(bad)")
            }
        }
    }

    @Test("oidcc-prompt-login: a signed-in user signs in again, and only that new sign-in gives a code")
    func promptLogin() async throws {
        try await Harness.run { h in
            let flow = try await Flow(h)
            let old = try await flow.signIn()
            h.clock.advance(1)
            let asked = await flow.authorize(flow.basic([("prompt", "login")]), cookie: old)
            #expect(Self.toSignIn(asked, flow))
            let continuation = try #require(Self.parameter(asked, "continue"))
            #expect(!continuation.contains("prompt=login"))
            #expect(Self.toSignIn(await flow.follow(continuation, cookie: old), flow))
            h.clock.advance(3)
            let fresh = try await flow.signIn()
            let token = try await flow.idToken(await flow.follow(continuation, cookie: fresh))
            #expect(token.claims["auth_time"]?.intValue == Int64(h.clock.now.timeIntervalSince1970))
        }
    }

    @Test("oidcc-prompt-none-logged-in: prompt=none with a session answers with a code at once, for the same sub and auth_time as the first sign-in")
    func promptNoneLoggedIn() async throws {
        try await Harness.run { h in
            let flow = try await Flow(h)
            let cookie = try await flow.signIn()
            let first = try await flow.idToken(await flow.authorize(flow.basic(), cookie: cookie))
            h.clock.advance(5)
            let response = await flow.authorize(flow.basic([("prompt", "none")]), cookie: cookie)
            #expect(Self.parameter(response, "state") == "st")
            let token = try await flow.idToken(response)
            #expect(token.claims["nonce"] == "n1")
            // The module's same-authentication check: one sign-in, so one sub and one auth_time.
            #expect(token.claims["sub"] == first.claims["sub"] && token.claims["auth_time"] == first.claims["auth_time"] && first.claims["auth_time"] != nil)
        }
    }

    @Test("oidcc-prompt-none-not-logged-in: prompt=none without a session is login_required at the redirect URI")
    func promptNoneNotLoggedIn() async throws {
        try await Harness.run { h in
            let flow = try await Flow(h)
            #expect(Self.isError(await flow.authorize(flow.basic([("prompt", "none")])), "login_required"))
        }
    }

    @Test("prompt: select_account shows a choice of accounts; create, unknown values and none with others are invalid_request")
    func promptValues() async throws {
        try await Harness.run { h in
            let flow = try await Flow(h)
            let cookie = try await flow.signIn()
            h.clock.advance(1)
            let picker = await flow.authorize(flow.basic([("prompt", "select_account")]), cookie: cookie)
            #expect(picker.status == 200 && Self.location(picker) == nil)
            let html = picker.text
            #expect(html.contains(h.tenant.adminUserPrincipalName) && html.contains("Use another account"))
            func link(_ id: String) throws -> String {
                let start = try #require(html.range(of: "id=\"\(id)\" class=\"account\" href=\""))
                let rest = html[start.upperBound...]
                return String(rest[..<rest.firstIndex(of: "\"")!]).replacingOccurrences(of: "&amp;", with: "&")
            }
            // Continuing as the signed-in user gives the code; another account goes through the sign-in page.
            let continued = await flow.follow(try link("continue-as"), cookie: cookie)
            #expect(Self.parameter(continued, "code") != nil)
            let another = try link("use-another")
            #expect(another.hasPrefix("/\(flow.tenant)/login?"))
            let back = try #require(URLComponents(string: "https://x" + another)?.queryItems?.first { $0.name == "continue" }?.value)
            #expect(Self.toSignIn(await flow.follow(back, cookie: cookie), flow))
            // Without a session the sign-in page is where an account is chosen.
            #expect(Self.toSignIn(await flow.authorize(flow.basic([("prompt", "select_account")])), flow))
            // A value quoted back in error_description stays within RFC 6749's characters (no quote, backslash or non-ASCII).
            for bad in ["create", "none login", "none consent", "bogus", "login bogus", "bo\"g\\us é\u{7}"] {
                let refused = await flow.authorize(flow.basic([("prompt", bad)]), cookie: cookie)
                #expect(Self.isError(refused, "invalid_request"), "prompt=\(bad)")
            }
            #expect(Self.parameter(await flow.authorize(flow.basic([("prompt", "create")])), "error_description")?.contains("sign-up") == true)
        }
    }

    @Test("oidcc-id-token-hint: prompt=none with a hint (expired too) for the signed-in user succeeds; for another user it is login_required")
    func idTokenHint() async throws {
        try await Harness.run { h in
            let flow = try await Flow(h)
            let other = try await AdminCenterTests.createUser(h, try await h.accessToken(), "other")
            let cookie = try await flow.signIn()
            let first = try await flow.idToken(await flow.authorize(flow.basic(), cookie: cookie))
            let hint = first.signingInput + "." + Base64URL.encode(first.signature)
            h.clock.advance(5)
            let second = try await flow.idToken(await flow.authorize(flow.basic([("prompt", "none"), ("id_token_hint", hint)]), cookie: cookie))
            // The module's same-authentication check: the hinted sign-in's sub and auth_time.
            #expect(second.claims["sub"] == first.claims["sub"] && second.claims["auth_time"] == first.claims["auth_time"] && first.claims["auth_time"] != nil)
            h.clock.advance(7200) // the hint has expired; the session has not
            let again = await flow.authorize(flow.basic([("prompt", "none"), ("id_token_hint", hint)]), cookie: cookie)
            #expect(Self.parameter(again, "code") != nil)
            let otherCookie = try await flow.signIn(other)
            #expect(Self.isError(await flow.authorize(flow.basic([("prompt", "none"), ("id_token_hint", hint)]), cookie: otherCookie), "login_required"))
            // Interactive: that user's session is not used; the hinted user signs in.
            let interactive = await flow.authorize(flow.basic([("id_token_hint", hint)]), cookie: otherCookie)
            #expect(Self.toSignIn(interactive, flow) && Self.parameter(interactive, "login_hint") == h.tenant.adminUserPrincipalName)
        }
    }

    @Test("a forged id_token_hint (another key, another tenant's claims) is invalid_request")
    func forgedIDTokenHint() async throws {
        try await Harness.run { h in
            let flow = try await Flow(h)
            let cookie = try await flow.signIn()
            let now = Int64(h.clock.now.timeIntervalSince1970)
            let claims: [String: JSONValue] = ["aud": .string(flow.appID), "iss": .string("\(Harness.base)/\(flow.tenant)/v2.0"), "tid": .string(flow.tenant),
                                               "oid": .string(h.tenant.adminUserId), "sub": "x", "exp": .int(now + 600), "iat": .int(now)]
            let forged = try JWT.sign(claims: claims, header: ["kid": .string(h.app.signingKey.kid)], key: try _RSA.Signing.PrivateKey(keySize: .bits2048))
            #expect(Self.isError(await flow.authorize(flow.basic([("prompt", "none"), ("id_token_hint", forged)]), cookie: cookie), "invalid_request"))
            var elsewhere = claims
            elsewhere["tid"] = .string(Identifier.make())
            let foreign = try JWT.sign(claims: elsewhere, header: ["kid": .string(h.app.signingKey.kid)], key: h.app.signingKey.privateKey)
            #expect(Self.isError(await flow.authorize(flow.basic([("id_token_hint", foreign)]), cookie: cookie), "invalid_request"))
            #expect(Self.isError(await flow.authorize(flow.basic([("id_token_hint", "not-a-jwt")]), cookie: cookie), "invalid_request"))
        }
    }

    @Test("oidcc-login-hint: the hint fills the sign-in page; a session of the hinted user is used")
    func loginHint() async throws {
        try await Harness.run { h in
            let flow = try await Flow(h)
            let upn = h.tenant.adminUserPrincipalName
            let asked = await flow.authorize(flow.basic([("login_hint", upn)]))
            #expect(Self.toSignIn(asked, flow) && Self.parameter(asked, "login_hint") == upn)
            #expect(Self.parameter(await flow.authorize(flow.basic([("login_hint", upn.uppercased())]), cookie: try await flow.signIn()), "code") != nil)
        }
    }

    @Test("domain_hint: this tenant's domain signs in here; another tenant's of this deployment is home realm discovery")
    func domainHint() async throws {
        try await Harness.run { h in
            let flow = try await Flow(h)
            let other = try await TenantProvisioner(directory: h.app.directory).create(name: "Fabrikam", domain: "fabrikam.test")
            #expect(Self.toSignIn(await flow.authorize(flow.basic([("domain_hint", "contoso.test")])), flow))
            #expect(Self.parameter(await flow.authorize(flow.basic([("domain_hint", "contoso.test")]), cookie: try await flow.signIn()), "code") != nil)
            let away = await flow.authorize(flow.basic([("domain_hint", "Fabrikam.test")]))
            let location = try #require(Self.location(away))
            #expect(location.hasPrefix("/\(flow.tenant)/b2b/signin?") && Self.parameter(away, "home") == other.tenantId)
            #expect(Self.parameter(away, "login_hint") == nil)
            // A domain nobody here holds changes nothing.
            #expect(Self.toSignIn(await flow.authorize(flow.basic([("domain_hint", "unknown.example")])), flow))
        }
    }

    @Test("oidcc-ui-locales: ui_locales is accepted, with or without a session, and the sign-in page stays English")
    func uiLocales() async throws {
        try await Harness.run { h in
            let flow = try await Flow(h)
            let params = flow.basic([("ui_locales", "fr-CA fr en")])
            let asked = await flow.authorize(params)
            #expect(Self.toSignIn(asked, flow))
            let page = await flow.follow(try #require(Self.location(asked)))
            #expect(page.status == 200 && page.text.contains("<html lang=\"en\">"))
            #expect(Self.parameter(await flow.authorize(params, cookie: try await flow.signIn()), "code") != nil)
        }
    }

    @Test("oidcc-claims-locales: claims_locales is accepted")
    func claimsLocales() async throws {
        try await Harness.run { h in
            let flow = try await Flow(h)
            let token = try await flow.idToken(await flow.authorize(flow.basic([("claims_locales", "fr-CA fr en")]), cookie: try await flow.signIn()))
            #expect(token.claims["preferred_username"]?.stringValue == h.tenant.adminUserPrincipalName)
        }
    }

    @Test("oidcc-display-page: display=page is accepted")
    func displayPage() async throws {
        try await Harness.run { h in
            let flow = try await Flow(h)
            #expect(Self.toSignIn(await flow.authorize(flow.basic([("display", "page")])), flow))
            #expect(Self.parameter(await flow.authorize(flow.basic([("display", "page")]), cookie: try await flow.signIn()), "code") != nil)
        }
    }

    @Test("oidcc-display-popup: display=popup is accepted")
    func displayPopup() async throws {
        try await Harness.run { h in
            let flow = try await Flow(h)
            #expect(Self.toSignIn(await flow.authorize(flow.basic([("display", "popup")])), flow))
            #expect(Self.parameter(await flow.authorize(flow.basic([("display", "popup")]), cookie: try await flow.signIn()), "code") != nil)
        }
    }

    @Test("oidcc-claims-essential: essential claims (auth_time, userinfo's name) are accepted and auth_time is in the ID token; malformed claims are invalid_request")
    func claimsEssential() async throws {
        try await Harness.run { h in
            let flow = try await Flow(h)
            let cookie = try await flow.signIn()
            let claims = #"{"userinfo":{"name":{"essential":true}},"id_token":{"auth_time":{"essential":true},"name":null}}"#
            let tokens = try await flow.tokens(await flow.authorize(flow.basic([("claims", claims)]), cookie: cookie))
            let idToken = try #require(tokens["id_token"]?.stringValue)
            let token = try #require(JWT.decode(idToken))
            #expect(token.claims["auth_time"]?.intValue == Int64(h.clock.now.timeIntervalSince1970) && token.claims["name"] != nil)
            // The module's check: the essential userinfo name is at userinfo (scope openid alone).
            let access = try #require(tokens["access_token"]?.stringValue)
            let info = await h.send("GET", "/oidc/userinfo", headers: ["authorization": "Bearer \(access)"])
            #expect(info.status == 200 && info.json["name"]?.stringValue?.isEmpty == false && info.json["sub"] == token.claims["sub"], "\(info.text)")
            #expect(token.claims["acr"] == nil)
            for bad in ["{not json", "[1]", #"{"id_token":5}"#, #"{"id_token":{"acr":"x"}}"#, #"{"id_token":{"acr":{"essential":"yes"}}}"#] {
                #expect(Self.isError(await flow.authorize(flow.basic([("claims", bad)]), cookie: cookie), "invalid_request"), "\(bad)")
            }
        }
    }

    @Test("oidcc-ensure-request-with-acr-values-succeeds: acr_values (unknown ones too) succeed, the ID token's acr is one the sign-in can claim")
    func acrValues() async throws {
        try await Harness.run { h in
            let flow = try await Flow(h)
            let cookie = try await flow.signIn()
            let token = try await flow.idToken(await flow.authorize(flow.basic([("acr_values", "urn:unknown:silver 1 2")]), cookie: cookie))
            #expect(token.claims["acr"] == "1")
            let unknown = try await flow.idToken(await flow.authorize(flow.basic([("acr_values", "urn:unknown:gold")]), cookie: cookie))
            #expect(unknown.claims["acr"] == "1")
            // An authentication context among them is asked of Conditional Access and, met, claimed (access token's acrs too).
            let response = await flow.authorize(flow.basic([("acr_values", "c2 1")]), cookie: cookie)
            #expect(try await flow.idToken(response).claims["acr"] == "c2")
        }
    }

    @Test("an essential acr is met with an authentication context the sign-in satisfied, or refused as unmet_authentication_requirements")
    func essentialACR() async throws {
        try await Harness.run { h in
            let flow = try await Flow(h)
            let cookie = try await flow.signIn()
            let context = #"{"id_token":{"acr":{"essential":true,"values":["urn:unknown:gold","c3"]}}}"#
            let token = try await flow.idToken(await flow.authorize(flow.basic([("claims", context)]), cookie: cookie))
            #expect(token.claims["acr"] == "c3")
            let unmet = #"{"id_token":{"acr":{"essential":true,"values":["urn:unknown:gold"]}}}"#
            #expect(Self.isError(await flow.authorize(flow.basic([("claims", unmet)]), cookie: cookie), "unmet_authentication_requirements"))
            // Asked for without essential, an unknown value is no error.
            let voluntary = #"{"id_token":{"acr":{"values":["urn:unknown:gold"]}}}"#
            #expect(try await flow.idToken(await flow.authorize(flow.basic([("claims", voluntary)]), cookie: cookie)).claims["acr"] == "1")
        }
    }

    @Test("oidcc-ensure-request-with-unknown-parameter-succeeds: an unknown parameter is ignored")
    func unknownParameter() async throws {
        try await Harness.run { h in
            let flow = try await Flow(h)
            let response = await flow.authorize(flow.basic([("extra", "foobar"), ("x_unknown", "1")]), cookie: try await flow.signIn())
            #expect(try await flow.idToken(response).claims["nonce"] == "n1")
        }
    }

    @Test("oidcc-ensure-post-request-succeeds: a form POST to /authorize is answered as the GET; without the session cookie it becomes that GET")
    func postRequest() async throws {
        try await Harness.run { h in
            let flow = try await Flow(h)
            let form = Array(AuthorizeEndpoint.encode(flow.basic().map { (name: $0.0, value: $0.1) }).utf8)
            let path = "/\(flow.tenant)/oauth2/v2.0/authorize"
            let posted = await h.send("POST", path, headers: ["content-type": "application/x-www-form-urlencoded", "cookie": try await flow.signIn()], body: form)
            #expect(try await flow.idToken(posted).claims["nonce"] == "n1")
            // A cross-site POST carries no SameSite=Lax cookie: 303 to the same request by GET, which does.
            let cookieless = await h.send("POST", path, headers: ["content-type": "application/x-www-form-urlencoded"], body: form)
            #expect(cookieless.status == 303 && Self.location(cookieless)?.hasPrefix(path + "?client_id=") == true)
            let again = try #require(Self.location(cookieless))
            #expect(Self.toSignIn(await flow.follow(again), flow))
            #expect(await h.send("PUT", path, body: form).status == 405)
        }
    }

    /// A request object signed with `key`, with `claims` over the basic request's.
    static func requestObject(_ flow: Flow, key: _RSA.Signing.PrivateKey, _ claims: [String: JSONValue] = [:]) throws -> String {
        var all: [String: JSONValue] = [
            "iss": .string(flow.appID), "aud": .string("\(Harness.base)/\(flow.tenant)/v2.0"), "client_id": .string(flow.appID),
            "response_type": "code", "scope": "openid", "redirect_uri": .string(spa), "state": "st", "nonce": "from-object",
            "code_challenge": .string(challenge), "code_challenge_method": "S256", "max_age": 10000,
            "exp": .int(Int64(flow.h.clock.now.timeIntervalSince1970) + 300)]
        if let mode = responseMode { all["response_mode"] = .string(mode) }
        all.merge(claims) { $1 }
        return try JWT.sign(claims: all.filter { $0.value != .null }, header: [:], key: key)
    }

    /// `claims` signed PS256 (RSASSA-PSS with SHA-256), which discovery lists beside RS256 for request objects and client
    /// assertions; Tessera's own JWT.sign signs RS256 only.
    static func signPS256(_ claims: [String: JSONValue], header extra: [String: JSONValue] = [:], key: _RSA.Signing.PrivateKey) throws -> String {
        var header = extra
        header["alg"] = "PS256"
        header["typ"] = "JWT"
        let input = Base64URL.encode(Data(JSONValue.object(header).serialized.utf8)) + "." + Base64URL.encode(Data(JSONValue.object(claims).serialized.utf8))
        let signature = try key.signature(for: SHA256.hash(data: Data(input.utf8)), padding: .PSS)
        return input + "." + Base64URL.encode(signature.rawRepresentation)
    }

    @Test("request objects signed PS256, as discovery lists, are taken; a PS256 signature by another key is invalid_request_object")
    func requestObjectPS256() async throws {
        try await Harness.run { h in
            let (key, der) = try SessionAndAssertionTests.certificate(at: h.clock.now)
            let flow = try await Flow(h, certificate: der)
            let discovery = await h.send("GET", "/\(flow.tenant)/v2.0/.well-known/openid-configuration")
            #expect(discovery.json["request_object_signing_alg_values_supported"] == ["RS256", "PS256"])
            let rs256 = try #require(JWT.decode(try Self.requestObject(flow, key: key)))
            let cookie = try await flow.signIn()
            let object = try Self.signPS256(rs256.claims, key: key)
            let response = await flow.authorize([("client_id", flow.appID), ("response_type", "code"), ("scope", "openid"), ("request", object)],
                                                cookie: cookie)
            #expect(try await flow.idToken(response).claims["nonce"] == "from-object")
            let stranger = try Self.signPS256(rs256.claims, key: try _RSA.Signing.PrivateKey(keySize: .bits2048))
            #expect(Self.isError(await flow.authorize(flow.basic([("request", stranger)]), cookie: cookie), "invalid_request_object"))
        }
    }

    @Test("oidcc-ensure-request-object-with-redirect-uri: a signed request object carries the redirect URI and its parameters win")
    func requestObjectWithRedirectURI() async throws {
        try await Harness.run { h in
            let (key, der) = try SessionAndAssertionTests.certificate(at: h.clock.now)
            let flow = try await Flow(h, certificate: der)
            let object = try Self.requestObject(flow, key: key)
            // As the module sends it: the query's redirect_uri is one the app never registered; the object's is used.
            let response = await flow.authorize([("client_id", flow.appID), ("response_type", "code"), ("scope", "openid"), ("nonce", "from-query"),
                                                 ("redirect_uri", "https://attacker.example/cb"), ("request", object)], cookie: try await flow.signIn())
            #expect(Self.parameter(response, "code") != nil && Self.parameter(response, "state") == "st")
            #expect(try await flow.idToken(response).claims["nonce"] == "from-object")
            let discovery = await h.send("GET", "/\(flow.tenant)/v2.0/.well-known/openid-configuration")
            #expect(discovery.json["request_parameter_supported"] == .bool(true))
            #expect(discovery.json["request_object_signing_alg_values_supported"]?.arrayValue?.contains("RS256") == true)
        }
    }

    @Test("a request object signed by another key, for another client, another audience or expired is invalid_request_object")
    func requestObjectRefused() async throws {
        try await Harness.run { h in
            let (key, der) = try SessionAndAssertionTests.certificate(at: h.clock.now)
            let flow = try await Flow(h, certificate: der)
            let cookie = try await flow.signIn()
            let stranger = try _RSA.Signing.PrivateKey(keySize: .bits2048)
            let now = Int64(h.clock.now.timeIntervalSince1970)
            for (object, why) in [
                (try Self.requestObject(flow, key: stranger), "another key"),
                (try Self.requestObject(flow, key: key, ["client_id": .string(Identifier.make())]), "another client_id"),
                (try Self.requestObject(flow, key: key, ["iss": .string(Identifier.make())]), "another issuer"),
                (try Self.requestObject(flow, key: key, ["aud": "https://elsewhere.example/v2.0"]), "another audience"),
                (try Self.requestObject(flow, key: key, ["exp": .int(now - 600)]), "expired"),
            ] {
                let refused = await flow.authorize(flow.basic([("request", object)]), cookie: cookie)
                #expect(Self.isError(refused, "invalid_request_object"), "\(why)")
            }
            // An app with no certificate cannot sign one.
            let bare = try await Flow(h)
            let unsigned = await bare.authorize(bare.basic([("request", try Self.requestObject(bare, key: key))]), cookie: cookie)
            #expect(Self.isError(unsigned, "invalid_request_object"))
        }
    }

    @Test("oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported: alg=none is rejected with invalid_request_object")
    func unsignedRequestObject() async throws {
        try await Harness.run { h in
            let flow = try await Flow(h)
            let payload = JSONValue.object(["client_id": .string(flow.appID), "response_type": "code", "scope": "openid",
                                            "redirect_uri": .string(Self.spa), "state": "st"]).serialized
            let unsigned = Base64URL.encode(Data(#"{"alg":"none"}"#.utf8)) + "." + Base64URL.encode(Data(payload.utf8)) + "."
            let refused = await flow.authorize(flow.basic([("request", unsigned)]), cookie: try await flow.signIn())
            #expect(Self.isError(refused, "invalid_request_object"))
            let discovery = await h.send("GET", "/\(flow.tenant)/v2.0/.well-known/openid-configuration")
            #expect(discovery.json["request_object_signing_alg_values_supported"]?.arrayValue?.contains("none") == false)
        }
    }

    @Test("oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported: request_uri is request_uri_not_supported")
    func requestURI() async throws {
        try await Harness.run { h in
            let flow = try await Flow(h)
            let refused = await flow.authorize(flow.basic([("request_uri", "https://rp.example/request.jwt")]), cookie: try await flow.signIn())
            #expect(Self.isError(refused, "request_uri_not_supported"))
            let discovery = await h.send("GET", "/\(flow.tenant)/v2.0/.well-known/openid-configuration")
            #expect(discovery.json["request_uri_parameter_supported"] == .bool(false))
        }
    }

    @Test("oidcc-ensure-registered-redirect-uri: an unregistered redirect URI is refused on the page, never redirected to")
    func registeredRedirectURI() async throws {
        try await Harness.run { h in
            let flow = try await Flow(h)
            let params = flow.basic().map { $0.0 == "redirect_uri" ? ($0.0, "https://attacker.example/cb") : $0 }
            let refused = await flow.authorize(params, cookie: try await flow.signIn())
            #expect(refused.status == 400 && Self.location(refused) == nil && refused.json["error"] == "invalid_request")
            // Nor through a request object.
            let (key, der) = try SessionAndAssertionTests.certificate(at: h.clock.now)
            let signed = try await Flow(h, certificate: der)
            let object = try Self.requestObject(signed, key: key, ["redirect_uri": "https://attacker.example/cb"])
            let viaObject = await signed.authorize([("client_id", signed.appID), ("response_type", "code"), ("scope", "openid"), ("request", object)])
            #expect(viaObject.status == 400 && Self.location(viaObject) == nil)
        }
    }

    @Test("oidcc-response-type-missing: a request without response_type is an error at the redirect URI")
    func responseTypeMissing() async throws {
        try await Harness.run { h in
            let flow = try await Flow(h)
            let refused = await flow.authorize(flow.basic().filter { $0.0 != "response_type" }, cookie: try await flow.signIn())
            #expect(Self.isError(refused, "unsupported_response_type") || Self.isError(refused, "invalid_request"))
            #expect(Self.parameter(refused, "code") == nil)
        }
    }

    @Test("prompt=consent: the consent page is shown though the permissions were granted, and accepting it gives the code; without the prompt it is not shown again")
    func promptConsent() async throws {
        try await Harness.run { h in
            let flow = try await Flow(h)
            let cookie = try await flow.signIn()
            let request = flow.basic().map { $0.0 == "scope" ? ($0.0, "openid User.Read") : $0 }
            func isConsentPage(_ page: APIResponse) -> Bool {
                page.status == 200 && page.text.contains("id=\"accept\"") && page.text.contains("<code>User.Read</code>")
            }
            /// The user accepts: the page's form posted to the consent endpoint, then back to /authorize.
            func accept(_ page: APIResponse) async throws -> APIResponse {
                let form = LogoutTests.confirmationFields(page) + [("decision", "accept")]
                let accepted = await h.send("POST", "/\(flow.tenant)/oauth2/v2.0/consent", headers: [
                    "cookie": cookie, "content-type": "application/x-www-form-urlencoded"],
                    body: Array(AuthorizeEndpoint.encode(form.map { (name: $0.0, value: $0.1) }).utf8))
                #expect(accepted.status == 303, "\(accepted.text)")
                return await flow.follow(try #require(Self.location(accepted)), cookie: cookie)
            }
            // Not granted yet: asked, as without the prompt.
            let first = await flow.authorize(request, cookie: cookie)
            #expect(isConsentPage(first))
            #expect(Self.parameter(try await accept(first), "code") != nil)
            // Granted: a request without the prompt goes straight through; with prompt=consent the user is asked again.
            #expect(Self.parameter(await flow.authorize(request, cookie: cookie), "code") != nil)
            let asked = await flow.authorize(request + [("prompt", "consent")], cookie: cookie)
            #expect(isConsentPage(asked) && Self.parameter(asked, "code") == nil)
            let token = try await flow.idToken(try await accept(asked))
            #expect(token.claims["nonce"] == "n1")
            // With the OpenID Connect scopes only (as oidcc-refresh-token asks, with offline_access), the prompt is still a
            // question to the user, and accepting it gives the code.
            let openIDOnly = flow.basic([("prompt", "consent")]).map { $0.0 == "scope" ? ($0.0, "openid offline_access") : $0 }
            let page = await flow.authorize(openIDOnly, cookie: cookie)
            #expect(page.text.contains("id=\"accept\"") && page.text.contains("<li id=\"sign-in-only\">Sign you in"))
            #expect(try await flow.tokens(try await accept(page))["refresh_token"]?.stringValue != nil)
        }
    }

    // MARK: Form Post OP

    /// The modules above that the Form Post Basic plan runs again with `response_mode=form_post` (the plan is the
    /// Basic plan with that response mode; its other modules are `OpenIDProviderTests.FormPostModule`).
    enum FormPostModule: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case responseTypeMissing = "oidcc-response-type-missing", displayPage = "oidcc-display-page", displayPopup = "oidcc-display-popup"
        case promptLogin = "oidcc-prompt-login", promptNoneNotLoggedIn = "oidcc-prompt-none-not-logged-in"
        case promptNoneLoggedIn = "oidcc-prompt-none-logged-in", maxAge1 = "oidcc-max-age-1", maxAge10000 = "oidcc-max-age-10000"
        case unknownParameter = "oidcc-ensure-request-with-unknown-parameter-succeeds", idTokenHint = "oidcc-id-token-hint"
        case loginHint = "oidcc-login-hint", uiLocales = "oidcc-ui-locales", claimsLocales = "oidcc-claims-locales"
        case acrValues = "oidcc-ensure-request-with-acr-values-succeeds", registeredRedirectURI = "oidcc-ensure-registered-redirect-uri"
        case postRequest = "oidcc-ensure-post-request-succeeds"
        case requestURI = "oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported"
        case unsignedRequestObject = "oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported"
        case claimsEssential = "oidcc-claims-essential", requestObjectWithRedirectURI = "oidcc-ensure-request-object-with-redirect-uri"

        var testDescription: String { rawValue }

        func run(_ t: AuthorizeParametersTests) async throws {
            switch self {
            case .responseTypeMissing: try await t.responseTypeMissing()
            case .displayPage: try await t.displayPage()
            case .displayPopup: try await t.displayPopup()
            case .promptLogin: try await t.promptLogin()
            case .promptNoneNotLoggedIn: try await t.promptNoneNotLoggedIn()
            case .promptNoneLoggedIn: try await t.promptNoneLoggedIn()
            case .maxAge1: try await t.maxAge1()
            case .maxAge10000: try await t.maxAge10000()
            case .unknownParameter: try await t.unknownParameter()
            case .idTokenHint: try await t.idTokenHint()
            case .loginHint: try await t.loginHint()
            case .uiLocales: try await t.uiLocales()
            case .claimsLocales: try await t.claimsLocales()
            case .acrValues: try await t.acrValues()
            case .registeredRedirectURI: try await t.registeredRedirectURI()
            case .postRequest: try await t.postRequest()
            case .requestURI: try await t.requestURI()
            case .unsignedRequestObject: try await t.unsignedRequestObject()
            case .claimsEssential: try await t.claimsEssential()
            case .requestObjectWithRedirectURI: try await t.requestObjectWithRedirectURI()
            }
        }
    }

    @Test("formpost: the Form Post Basic plan's authorization request modules with response_mode=form_post, every answer to the client (errors too) a posted page",
          arguments: FormPostModule.allCases)
    func formPostBasic(_ module: FormPostModule) async throws {
        try await Self.$responseMode.withValue("form_post") { try await module.run(self) }
    }
}
