import Crypto
import CryptoExtras
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

/// OpenID Connect RP-Initiated, Front-Channel and Back-Channel Logout, one test per module of the OpenID Foundation's
/// logout OP test plans (named after it), plus the queue, CSRF and revocation around them. Sign-ins go through
/// `/authorize` and the token endpoint in process; back-channel logout tokens arrive on a real HTTP listener.
@Suite("OpenID Connect logout: RP-initiated, front-channel and back-channel")
struct LogoutTests {
    static let spa = "https://spa.contoso.test/callback"
    static let signedOut = "https://app.contoso.test/signed-out"
    static let withQuery = "https://app.contoso.test/signed-out?tenant=contoso&x=1"
    static let frontChannel = "https://rp.contoso.test/frontchannel?app=1"

    /// An app registered as a relying party registers it; returns its appId.
    static func application(_ h: Harness, backChannel: String? = nil, frontChannel: String? = nil) async throws -> String {
        let token = try await h.accessToken()
        var web: [String: JSONValue] = ["redirectUris": [.string(signedOut), .string(withQuery)]]
        if let frontChannel { web["logoutUrl"] = .string(frontChannel) }
        if let backChannel { web["backchannelLogoutUrl"] = .string(backChannel) }
        let created = await h.graph("POST", "applications", token: token, json: [
            "displayName": "Relying party", "web": .object(web), "spa": ["redirectUris": [.string(spa)]]])
        let appID = try #require(created.json["appId"]?.stringValue, "\(created.text)")
        _ = await h.graph("POST", "servicePrincipals", token: token, json: ["appId": .string(appID)])
        return appID
    }

    /// A signed-in browser: its session cookie, and the ID token the relying party got through `/authorize` and the
    /// token endpoint (which also records that the session signed into the app).
    struct Browser {
        let cookie: String
        let idToken: String
        var claims: [String: JSONValue] { JWT.decode(idToken)?.claims ?? [:] }
    }

    static func signIn(_ h: Harness, appID: String, cookie existing: String? = nil) async throws -> Browser {
        var cookie = existing ?? ""
        if existing == nil {
            let (_, setCookie) = try await SignInSessions(app: h.app).start(tenant: h.tenant.tenantId, userID: h.tenant.adminUserId,
                                                                             amr: ["fido", "mfa"], baseURL: Harness.base)
            cookie = String(setCookie.split(separator: ";")[0])
        }
        let verifier = String(repeating: "v", count: 43)
        let challenge = Base64URL.encode(Data(SHA256.hash(data: Data(verifier.utf8))))
        let authorized = await h.send("GET", "/\(h.tenant.tenantId)/oauth2/v2.0/authorize", query: [
            ("client_id", appID), ("redirect_uri", spa), ("response_type", "code"), ("scope", "openid profile"), ("state", "s"),
            ("nonce", "n"), ("code_challenge", challenge), ("code_challenge_method", "S256")].map { (name: $0.0, value: $0.1) },
            headers: ["cookie": cookie])
        let location = try #require(Self.location(authorized), "\(authorized.status) \(authorized.text)")
        let items = URLComponents(string: location)?.queryItems ?? []
        let code = try #require(items.first(where: { $0.name == "code" })?.value, "\(location)")
        let form = AuthorizeEndpoint.encode([("grant_type", "authorization_code"), ("client_id", appID), ("redirect_uri", spa), ("code", code),
                                             ("code_verifier", verifier)])
        let tokens = await h.send("POST", "/\(h.tenant.tenantId)/oauth2/v2.0/token",
                                  headers: ["content-type": "application/x-www-form-urlencoded", "origin": "https://spa.contoso.test"],
                                  body: Array(form.utf8))
        let idToken = try #require(tokens.json["id_token"]?.stringValue, "\(tokens.text)")
        return Browser(cookie: cookie, idToken: idToken)
    }

    static func logout(_ h: Harness, _ params: [(String, String)], cookie: String?, post: Bool = false) async -> APIResponse {
        let path = "/\(h.tenant.tenantId)/oauth2/v2.0/logout"
        var headers = cookie.map { ["cookie": $0] } ?? [:]
        if post {
            headers["content-type"] = "application/x-www-form-urlencoded"
            return await h.send("POST", path, headers: headers, body: Array(AuthorizeEndpoint.encode(params.map { (name: $0.0, value: $0.1) }).utf8))
        }
        return await h.send("GET", path, query: params.map { (name: $0.0, value: $0.1) }, headers: headers)
    }

    static func signedIn(_ h: Harness, _ cookie: String) async throws -> Bool {
        let request = APIRequest(method: "GET", path: "/", query: [], headers: ["cookie": cookie], body: [], baseURL: Harness.base)
        return try await SignInSessions(app: h.app).current(request, tenant: h.tenant.tenantId) != nil
    }

    static func location(_ response: APIResponse) -> String? { response.headers.first { $0.name == "Location" }?.value }
    static func header(_ response: APIResponse, _ name: String) -> String? { response.headers.first { $0.name == name }?.value }

    /// The hidden fields of the confirmation page's form.
    static func confirmationFields(_ page: APIResponse) -> [(String, String)] {
        let html = page.text
        var fields: [(String, String)] = []
        for input in html.components(separatedBy: "<input type=\"hidden\" ").dropFirst() {
            func attribute(_ name: String) -> String? {
                guard let start = input.range(of: "\(name)=\"") else { return nil }
                let rest = input[start.upperBound...]
                return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }?
                    .replacingOccurrences(of: "&amp;", with: "&").replacingOccurrences(of: "&quot;", with: "\"")
                    .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&#39;", with: "'")
            }
            if let name = attribute("name"), let value = attribute("value") { fields.append((name, value)) }
        }
        return fields
    }

    static func isConfirmation(_ page: APIResponse) -> Bool {
        page.status == 200 && location(page) == nil && page.text.contains("id=\"signout\"") && !confirmationFields(page).isEmpty
    }

    /// A refusal: the error page, 400 or 403, no redirect.
    static func isRefusal(_ page: APIResponse) -> Bool {
        (page.status == 400 || page.status == 403) && location(page) == nil && page.text.contains("id=\"error\"")
    }

    static func discovery(_ h: Harness) async -> JSONValue {
        await h.send("GET", "/\(h.tenant.tenantId)/v2.0/.well-known/openid-configuration").json
    }

    // MARK: RP-Initiated Logout OP

    @Test("oidcc-rp-initiated-logout-discovery-endpoint-verification: end_session_endpoint is advertised, https on this server, and answers")
    func rpInitiatedDiscovery() async throws {
        try await Harness.run { h in
            let endpoint = try #require(await Self.discovery(h)["end_session_endpoint"]?.stringValue)
            #expect(endpoint == "\(Harness.base)/\(h.tenant.tenantId)/oauth2/v2.0/logout" && endpoint.hasPrefix("https://"))
            let answer = await h.send("GET", String(endpoint.dropFirst(Harness.base.count)))
            #expect(answer.status == 200 && answer.text.contains("You have signed out"))
        }
    }

    @Test("oidcc-rp-initiated-logout: id_token_hint, post_logout_redirect_uri and state end the session and return with the state")
    func rpInitiatedLogout() async throws {
        try await Harness.run { h in
            let appID = try await Self.application(h)
            let browser = try await Self.signIn(h, appID: appID)
            #expect(try await Self.signedIn(h, browser.cookie))
            let answer = await Self.logout(h, [("id_token_hint", browser.idToken), ("post_logout_redirect_uri", Self.signedOut), ("state", "st 1")],
                                           cookie: browser.cookie)
            #expect(answer.status == 302 && Self.location(answer) == Self.signedOut + "?state=st%201")
            #expect(Self.header(answer, "Set-Cookie")?.contains("Max-Age=0") == true)
            #expect(try await !Self.signedIn(h, browser.cookie))
            // As the module checks next: a prompt=none request, even with the old cookie replayed, needs the user.
            let challenge = Base64URL.encode(Data(SHA256.hash(data: Data(String(repeating: "v", count: 43).utf8))))
            let silent = await h.send("GET", "/\(h.tenant.tenantId)/oauth2/v2.0/authorize", query: [
                ("client_id", appID), ("redirect_uri", Self.spa), ("response_type", "code"), ("scope", "openid"), ("prompt", "none"),
                ("state", "after"), ("code_challenge", challenge), ("code_challenge_method", "S256")].map { (name: $0.0, value: $0.1) },
                headers: ["cookie": browser.cookie])
            #expect(Self.location(silent)?.hasPrefix(Self.spa + "?error=login_required&") == true, "\(Self.location(silent) ?? silent.text)")
            // POST with a form body works the same.
            let second = try await Self.signIn(h, appID: appID)
            let posted = await Self.logout(h, [("id_token_hint", second.idToken), ("post_logout_redirect_uri", Self.signedOut), ("state", "p")],
                                           cookie: second.cookie, post: true)
            #expect(posted.status == 302 && Self.location(posted) == Self.signedOut + "?state=p")
            #expect(try await !Self.signedIn(h, second.cookie))
        }
    }

    @Test("oidcc-rp-initiated-logout-bad-post-logout-redirect-uri: an unregistered post_logout_redirect_uri is refused on a page, never followed")
    func badPostLogoutRedirectURI() async throws {
        try await Harness.run { h in
            let appID = try await Self.application(h)
            let browser = try await Self.signIn(h, appID: appID)
            for target in ["https://evil.example/signed-out", Self.signedOut + "/", Self.signedOut.uppercased()] {
                let answer = await Self.logout(h, [("id_token_hint", browser.idToken), ("post_logout_redirect_uri", target), ("state", "s")],
                                               cookie: browser.cookie)
                #expect(Self.isRefusal(answer) && answer.text.contains("AADSTS50011"))
            }
            // Nothing was done: the session stands.
            #expect(try await Self.signedIn(h, browser.cookie))
            // Without an app to check it against, a target is refused too.
            let anonymous = await Self.logout(h, [("post_logout_redirect_uri", Self.signedOut)], cookie: browser.cookie)
            #expect(Self.isRefusal(anonymous))
        }
    }

    @Test("oidcc-rp-initiated-logout-modified-id-token-hint: a hint whose payload was changed is refused, no redirect, the session kept")
    func modifiedIDTokenHint() async throws {
        try await Harness.run { h in
            let appID = try await Self.application(h)
            let browser = try await Self.signIn(h, appID: appID)
            let parts = browser.idToken.split(separator: ".").map(String.init)
            var claims = browser.claims
            claims["sub"] = "someone-else"
            let modified = [parts[0], Base64URL.encode(Data(JSONValue.object(claims).serialized.utf8)), parts[2]].joined(separator: ".")
            let answer = await Self.logout(h, [("id_token_hint", modified), ("post_logout_redirect_uri", Self.signedOut), ("state", "s")],
                                           cookie: browser.cookie)
            #expect(Self.isRefusal(answer) && answer.text.contains("AADSTS50132"))
            #expect(try await Self.signedIn(h, browser.cookie))
        }
    }

    @Test("oidcc-rp-initiated-logout-no-id-token-hint: without a hint the user confirms first, then returns with the state")
    func noIDTokenHint() async throws {
        try await Harness.run { h in
            let appID = try await Self.application(h)
            let browser = try await Self.signIn(h, appID: appID)
            let page = await Self.logout(h, [("client_id", appID), ("post_logout_redirect_uri", Self.signedOut), ("state", "nh")], cookie: browser.cookie)
            #expect(Self.isConfirmation(page))
            #expect(page.text.contains(h.tenant.adminUserPrincipalName))
            #expect(Self.header(page, "Content-Security-Policy")?.contains("form-action 'self' https://app.contoso.test") == true)
            #expect(try await Self.signedIn(h, browser.cookie))
            let confirmed = await Self.logout(h, Self.confirmationFields(page), cookie: browser.cookie, post: true)
            #expect(confirmed.status == 302 && Self.location(confirmed) == Self.signedOut + "?state=nh")
            #expect(try await !Self.signedIn(h, browser.cookie))
        }
    }

    @Test("oidcc-rp-initiated-logout-no-params: no parameters at all asks the user, and confirming shows that they signed out")
    func noParams() async throws {
        try await Harness.run { h in
            let appID = try await Self.application(h)
            let browser = try await Self.signIn(h, appID: appID)
            let page = await Self.logout(h, [], cookie: browser.cookie)
            #expect(Self.isConfirmation(page))
            #expect(try await Self.signedIn(h, browser.cookie))
            let confirmed = await Self.logout(h, Self.confirmationFields(page), cookie: browser.cookie, post: true)
            #expect(confirmed.status == 200 && Self.location(confirmed) == nil && confirmed.text.contains("You have signed out"))
            #expect(try await !Self.signedIn(h, browser.cookie))
        }
    }

    @Test("oidcc-rp-initiated-logout-no-post-logout-redirect-uri: a hint alone ends the session and shows the signed-out page")
    func noPostLogoutRedirectURI() async throws {
        try await Harness.run { h in
            let appID = try await Self.application(h)
            let browser = try await Self.signIn(h, appID: appID)
            let answer = await Self.logout(h, [("id_token_hint", browser.idToken)], cookie: browser.cookie)
            #expect(answer.status == 200 && Self.location(answer) == nil && answer.text.contains("You have signed out"))
            #expect(try await !Self.signedIn(h, browser.cookie))
        }
    }

    @Test("oidcc-rp-initiated-logout-no-state: without state the redirect carries none")
    func noState() async throws {
        try await Harness.run { h in
            let appID = try await Self.application(h)
            let browser = try await Self.signIn(h, appID: appID)
            let answer = await Self.logout(h, [("id_token_hint", browser.idToken), ("post_logout_redirect_uri", Self.signedOut)], cookie: browser.cookie)
            #expect(answer.status == 302 && Self.location(answer) == Self.signedOut)
            #expect(try await !Self.signedIn(h, browser.cookie))
        }
    }

    @Test("oidcc-rp-initiated-logout-only-state: state alone is no proof of the app: the user confirms, and nothing is redirected")
    func onlyState() async throws {
        try await Harness.run { h in
            let appID = try await Self.application(h)
            let browser = try await Self.signIn(h, appID: appID)
            let page = await Self.logout(h, [("state", "only")], cookie: browser.cookie)
            #expect(Self.isConfirmation(page))
            #expect(try await Self.signedIn(h, browser.cookie))
            let confirmed = await Self.logout(h, Self.confirmationFields(page), cookie: browser.cookie, post: true)
            #expect(confirmed.status == 200 && Self.location(confirmed) == nil && confirmed.text.contains("You have signed out"))
            #expect(try await !Self.signedIn(h, browser.cookie))
        }
    }

    @Test("oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri: a URI registered with a query keeps it, state appended")
    func queryAddedToPostLogoutRedirectURI() async throws {
        try await Harness.run { h in
            let appID = try await Self.application(h)
            let browser = try await Self.signIn(h, appID: appID)
            // Another query than the registered one is another URI.
            let other = await Self.logout(h, [("id_token_hint", browser.idToken), ("post_logout_redirect_uri", Self.signedOut + "?tenant=other")],
                                          cookie: browser.cookie)
            #expect(Self.isRefusal(other))
            let answer = await Self.logout(h, [("id_token_hint", browser.idToken), ("post_logout_redirect_uri", Self.withQuery), ("state", "q")],
                                           cookie: browser.cookie)
            #expect(answer.status == 302 && Self.location(answer) == Self.withQuery + "&state=q")
            #expect(try await !Self.signedIn(h, browser.cookie))
        }
    }

    @Test("oidcc-rp-initiated-logout-bad-id-token-hint: a malformed, foreign-signed or other tenant's hint is refused without a redirect")
    func badIDTokenHint() async throws {
        try await Harness.run { h in
            let appID = try await Self.application(h)
            let browser = try await Self.signIn(h, appID: appID)
            let now = Int64(h.clock.now.timeIntervalSince1970)
            let tenant = h.tenant.tenantId
            var claims: [String: JSONValue] = ["aud": .string(appID), "iss": .string("\(Harness.base)/\(tenant)/v2.0"), "tid": .string(tenant),
                                               "sub": "x", "oid": .string(h.tenant.adminUserId), "exp": .int(now + 600), "iat": .int(now)]
            let foreign = try JWT.sign(claims: claims, header: ["kid": .string(h.app.signingKey.kid)], key: try _RSA.Signing.PrivateKey(keySize: .bits2048))
            let other = try await TenantProvisioner(directory: h.app.directory).create(name: "Fabrikam", domain: "fabrikam.test")
            claims["tid"] = .string(other.tenantId)
            claims["iss"] = .string("\(Harness.base)/\(other.tenantId)/v2.0")
            let otherTenant = try JWT.sign(claims: claims, header: ["kid": .string(h.app.signingKey.kid)], key: h.app.signingKey.privateKey)
            // An access token of ours is no ID token.
            let access = try await h.accessToken()
            for hint in ["not-a-token", "a.b.c", String(browser.idToken.dropLast(4)), foreign, otherTenant, access] {
                let answer = await Self.logout(h, [("id_token_hint", hint), ("post_logout_redirect_uri", Self.signedOut), ("state", "s")],
                                               cookie: browser.cookie)
                #expect(Self.isRefusal(answer), "\(hint.prefix(20))")
            }
            // A hint for another app than client_id names is refused too.
            let mismatched = await Self.logout(h, [("client_id", Identifier.make()), ("id_token_hint", browser.idToken)], cookie: browser.cookie)
            #expect(Self.isRefusal(mismatched))
            #expect(try await Self.signedIn(h, browser.cookie))
            // An expired hint of ours still names the app and the user.
            h.clock.advance(2 * 3600)
            let expired = await Self.logout(h, [("id_token_hint", browser.idToken), ("post_logout_redirect_uri", Self.signedOut)], cookie: browser.cookie)
            #expect(expired.status == 302 && Self.location(expired) == Self.signedOut)
        }
    }

    // MARK: Front-Channel Logout OP

    @Test("oidcc-frontchannel-logout-discovery-endpoint-verification: front-channel logout with sid is advertised")
    func frontChannelDiscovery() async throws {
        try await Harness.run { h in
            let document = await Self.discovery(h)
            #expect(document["frontchannel_logout_supported"] == true && document["frontchannel_logout_session_supported"] == true)
        }
    }

    @Test("oidcc-frontchannel-rp-initiated-logout: the signed-out page frames each app's logoutUrl with iss and sid, then returns with the state")
    func frontChannelRPInitiatedLogout() async throws {
        try await Harness.run { h in
            let appID = try await Self.application(h, frontChannel: Self.frontChannel)
            let browser = try await Self.signIn(h, appID: appID)
            let sid = try #require(browser.claims["sid"]?.stringValue)
            let answer = await Self.logout(h, [("id_token_hint", browser.idToken), ("post_logout_redirect_uri", Self.signedOut), ("state", "fc")],
                                           cookie: browser.cookie)
            #expect(answer.status == 200 && Self.location(answer) == nil)
            let issuer = try #require(await Self.discovery(h)["issuer"]?.stringValue)
            let frame = Self.frontChannel + "&" + AuthorizeEndpoint.encode([("iss", issuer), ("sid", sid)])
            #expect(answer.text.contains("<iframe class=\"logout\" hidden title=\"Signing out of an app\" src=\"\(Page.escape(frame))\">"))
            #expect(answer.text.contains("id=\"continue\" class=\"continue\" href=\"\(Page.escape(Self.signedOut + "?state=fc"))\""))
            #expect(answer.text.contains("location.replace(next.href)"))
            let csp = try #require(Self.header(answer, "Content-Security-Policy"))
            #expect(csp.hasSuffix("; frame-src https://rp.contoso.test") && csp.contains("default-src 'none'"))
            #expect(Self.header(answer, "Set-Cookie")?.contains("Max-Age=0") == true)
            #expect(try await !Self.signedIn(h, browser.cookie))
            // A session that never signed into the app frames nothing.
            let (_, other) = try await SignInSessions(app: h.app).start(tenant: h.tenant.tenantId, userID: h.tenant.adminUserId, amr: ["fido"],
                                                                         baseURL: Harness.base)
            let plain = await Self.logout(h, [("id_token_hint", browser.idToken), ("post_logout_redirect_uri", Self.signedOut)],
                                          cookie: String(other.split(separator: ";")[0]))
            #expect(plain.status == 302 && !plain.text.contains("iframe"))
        }
    }

    // MARK: Back-Channel Logout OP

    @Test("oidcc-backchannel-logout-discovery-endpoint-verification: back-channel logout with sid is advertised")
    func backChannelDiscovery() async throws {
        try await Harness.run { h in
            let document = await Self.discovery(h)
            #expect(document["backchannel_logout_supported"] == true && document["backchannel_logout_session_supported"] == true)
        }
    }

    @Test("oidcc-backchannel-rp-initiated-logout: a signed logout token reaches the app's back-channel URL and verifies against the JWKS")
    func backChannelRPInitiatedLogout() async throws {
        try await Harness.run { h in
            let receiver = try await LogoutReceiver.start()
            defer { receiver.close() }
            let appID = try await Self.application(h, backChannel: "http://127.0.0.1:\(receiver.port)/backchannel?rp=1")
            let browser = try await Self.signIn(h, appID: appID)
            let answer = await Self.logout(h, [("id_token_hint", browser.idToken), ("post_logout_redirect_uri", Self.signedOut), ("state", "bc")],
                                           cookie: browser.cookie)
            // The redirect does not wait for the delivery.
            #expect(answer.status == 302 && Self.location(answer) == Self.signedOut + "?state=bc")
            let received = try await receiver.wait(for: 1)
            #expect(received[0].path == "/backchannel?rp=1" && received[0].contentType == "application/x-www-form-urlencoded")
            let form = APIRequest.parseForm(received[0].body)
            #expect(form.count == 1)
            let token = try #require(form.first(where: { $0.name == "logout_token" })?.value)
            let jwt = try #require(JWT.decode(token))
            try await Self.verify(jwt, h: h)
            #expect(jwt.header["typ"] == "logout+jwt" && jwt.header["alg"] == "RS256")
            let document = await Self.discovery(h)
            let now = Int64(h.clock.now.timeIntervalSince1970)
            #expect(jwt.claims["iss"] == document["issuer"] && jwt.claims["aud"]?.stringValue == appID)
            #expect(jwt.claims["sub"] == browser.claims["sub"] && jwt.claims["sid"] == browser.claims["sid"] && jwt.claims["sid"] != nil)
            #expect(jwt.claims["iat"]?.intValue == now && jwt.claims["exp"]?.intValue == now + 120)
            #expect(jwt.claims["jti"]?.stringValue?.isEmpty == false && jwt.claims["nonce"] == nil)
            #expect(jwt.claims["events"] == ["http://schemas.openid.net/event/backchannel-logout": [:]])
            await h.app.backChannelLogout.idle()
            #expect(h.app.backChannelLogout.counts.delivered == 1)
        }
    }

    /// Checks a token's signature with the key of the JWKS its `kid` names, as a relying party does.
    static func verify(_ jwt: JWT, h: Harness) async throws {
        let keys = await h.send("GET", "/\(h.tenant.tenantId)/discovery/v2.0/keys").json["keys"]?.arrayValue ?? []
        let jwk = try #require(keys.first(where: { $0["kid"] == jwt.header["kid"] }))
        let n = try #require(Base64URL.decode(jwk["n"]?.stringValue ?? "")), e = try #require(Base64URL.decode(jwk["e"]?.stringValue ?? ""))
        #expect(jwt.verify(with: try _RSA.Signing.PublicKey(n: n, e: e)))
    }

    // MARK: Around the modules

    @Test("logout CSRF: the confirmation needs this session's unexpired token for these parameters, from this origin")
    func confirmationCSRF() async throws {
        try await Harness.run { h in
            let appID = try await Self.application(h)
            let browser = try await Self.signIn(h, appID: appID)
            let page = await Self.logout(h, [("client_id", appID), ("post_logout_redirect_uri", Self.signedOut)], cookie: browser.cookie)
            let fields = Self.confirmationFields(page)
            let field = Logout.confirmationField
            // A cross-site GET or POST with a guessed token ends nothing.
            let forged = await Self.logout(h, [(field, "9999999999.AAAAAAAAAAAAAAAAAAAAAA")], cookie: browser.cookie, post: true)
            #expect(Self.isRefusal(forged) && forged.status == 403)
            let byGet = await Self.logout(h, fields, cookie: browser.cookie)
            #expect(Self.isRefusal(byGet))
            // Another session's token, the token with another target, or from another origin.
            let other = try await Self.signIn(h, appID: appID)
            #expect(Self.isRefusal(await Self.logout(h, fields, cookie: other.cookie, post: true)))
            let retargeted = fields.map { $0.0 == "post_logout_redirect_uri" ? ($0.0, Self.withQuery) : $0 }
            #expect(Self.isRefusal(await Self.logout(h, retargeted, cookie: browser.cookie, post: true)))
            let crossOrigin = await h.send("POST", "/\(h.tenant.tenantId)/oauth2/v2.0/logout", headers: [
                "cookie": browser.cookie, "content-type": "application/x-www-form-urlencoded", "origin": "https://evil.example"],
                body: Array(AuthorizeEndpoint.encode(fields.map { (name: $0.0, value: $0.1) }).utf8))
            #expect(Self.isRefusal(crossOrigin))
            #expect(try await Self.signedIn(h, browser.cookie))
            #expect(try await Self.signedIn(h, other.cookie))
            // Expired.
            h.clock.advance(Double(Logout.confirmationLifetime) + 1)
            #expect(Self.isRefusal(await Self.logout(h, fields, cookie: browser.cookie, post: true)))
            #expect(try await Self.signedIn(h, browser.cookie))
            // A fresh page's token works.
            let fresh = await Self.logout(h, [("client_id", appID), ("post_logout_redirect_uri", Self.signedOut)], cookie: browser.cookie)
            #expect(await Self.logout(h, Self.confirmationFields(fresh), cookie: browser.cookie, post: true).status == 302)
            #expect(try await !Self.signedIn(h, browser.cookie))
        }
    }

    @Test("every app the session signed into is told, not only the one logging out: a frame and a logout token each, with its own aud and pairwise sub")
    func everyAppOfTheSessionIsTold() async throws {
        try await Harness.run { h in
            let receiver = try await LogoutReceiver.start()
            defer { receiver.close() }
            let first = try await Self.application(h, backChannel: "http://127.0.0.1:\(receiver.port)/bc?app=1", frontChannel: Self.frontChannel)
            let second = try await Self.application(h, backChannel: "http://127.0.0.1:\(receiver.port)/bc?app=2",
                                                    frontChannel: "https://other.contoso.test/fc")
            let quiet = try await Self.application(h)  // signed into, with no logout URL: nothing to tell
            let browser = try await Self.signIn(h, appID: first)
            let secondSignIn = try await Self.signIn(h, appID: second, cookie: browser.cookie)
            _ = try await Self.signIn(h, appID: quiet, cookie: browser.cookie)
            let sid = try #require(browser.claims["sid"]?.stringValue)
            #expect(secondSignIn.claims["sid"]?.stringValue == sid && secondSignIn.claims["sub"] != browser.claims["sub"])
            // Another session of the same user, signed into the second app, is not this logout's to end.
            let otherSession = try await Self.signIn(h, appID: second)
            let answer = await Self.logout(h, [("id_token_hint", browser.idToken), ("post_logout_redirect_uri", Self.signedOut)], cookie: browser.cookie)
            let issuer = try #require(await Self.discovery(h)["issuer"]?.stringValue)
            let query = AuthorizeEndpoint.encode([("iss", issuer), ("sid", sid)])
            #expect(answer.text.components(separatedBy: "<iframe class=\"logout\"").count == 3)
            #expect(answer.text.contains(Page.escape(Self.frontChannel + "&" + query)) && answer.text.contains(Page.escape("https://other.contoso.test/fc?" + query)))
            #expect(Self.header(answer, "Content-Security-Policy")?.hasSuffix("; frame-src https://other.contoso.test https://rp.contoso.test") == true)
            let received = try await receiver.wait(for: 2)
            await h.app.backChannelLogout.idle()
            #expect(receiver.received().count == 2)
            var told: [String: [String: JSONValue]] = [:]
            for request in received {
                let token = try #require(APIRequest.parseForm(request.body).first { $0.name == "logout_token" }?.value)
                let jwt = try #require(JWT.decode(token))
                try await Self.verify(jwt, h: h)
                told[request.path] = jwt.claims
            }
            #expect(told["/bc?app=1"]?["aud"]?.stringValue == first && told["/bc?app=1"]?["sub"] == browser.claims["sub"])
            #expect(told["/bc?app=2"]?["aud"]?.stringValue == second && told["/bc?app=2"]?["sub"] == secondSignIn.claims["sub"])
            #expect(told.values.allSatisfy { $0["sid"]?.stringValue == sid })
            #expect(try await !Self.signedIn(h, browser.cookie))
            #expect(try await Self.signedIn(h, otherSession.cookie))
        }
    }

    @Test("logout_hint naming another user than the session's: the user is asked, the session not ended silently")
    func logoutHintOtherUser() async throws {
        try await Harness.run { h in
            let appID = try await Self.application(h)
            let browser = try await Self.signIn(h, appID: appID)
            let page = await Self.logout(h, [("id_token_hint", browser.idToken), ("logout_hint", "someone.else@contoso.test")], cookie: browser.cookie)
            #expect(Self.isConfirmation(page) && page.text.contains("id=\"other-user\""))
            #expect(try await Self.signedIn(h, browser.cookie))
            // Naming the session's own user, the hint is enough.
            let own = await Self.logout(h, [("id_token_hint", browser.idToken), ("logout_hint", h.tenant.adminUserPrincipalName.uppercased()),
                                            ("post_logout_redirect_uri", Self.signedOut)], cookie: browser.cookie)
            #expect(own.status == 302)
            #expect(try await !Self.signedIn(h, browser.cookie))
        }
    }

    @Test("revokeSignInSessions tells every app every session of the user signed into by back-channel logout")
    func revokeSendsBackChannelLogout() async throws {
        try await Harness.run { h in
            let receiver = try await LogoutReceiver.start()
            defer { receiver.close() }
            let appID = try await Self.application(h, backChannel: "http://127.0.0.1:\(receiver.port)/bc")
            let first = try await Self.signIn(h, appID: appID)
            let again = try await Self.signIn(h, appID: appID, cookie: first.cookie)  // the same session twice: told once
            let second = try await Self.signIn(h, appID: appID)
            #expect(again.claims["sid"] == first.claims["sid"] && second.claims["sid"] != first.claims["sid"])
            let revoked = await h.graph("POST", "users/\(h.tenant.adminUserId)/revokeSignInSessions", token: try await h.accessToken())
            #expect(revoked.status == 200 && revoked.json["value"] == true)
            let received = try await receiver.wait(for: 2)
            let sids = Set(received.compactMap { APIRequest.parseForm($0.body).first?.value }.compactMap { JWT.decode($0)?.claims["sid"]?.stringValue })
            #expect(sids == Set([first.claims["sid"]?.stringValue, second.claims["sid"]?.stringValue].compactMap { $0 }))
            await h.app.backChannelLogout.idle()
            #expect(receiver.received().count == 2)
            #expect(try await !Self.signedIn(h, first.cookie))
            #expect(try await !Self.signedIn(h, second.cookie))
        }
    }

    @Test("a logout token carries the issuer of the app's own sign-in, whatever host the logout or the revocation came by")
    func logoutTokenIssuerIsTheSignIns() async throws {
        try await Harness.run { h in
            let receiver = try await LogoutReceiver.start()
            defer { receiver.close() }
            let appID = try await Self.application(h, backChannel: "http://127.0.0.1:\(receiver.port)/bc")
            let signIn = try await Self.signIn(h, appID: appID)
            let signedInto = try await BackChannelLogout(app: h.app).sessions(tenant: h.tenant.tenantId, userID: h.tenant.adminUserId)
            // As when an administrator revokes the sessions through Graph at another of the deployment's names.
            #expect(await BackChannelLogout(app: h.app).notify(signedInto, tenant: h.tenant.tenantId, baseURL: "https://elsewhere.test") == 1)
            let received = try await receiver.wait(for: 1)
            let token = try #require(APIRequest.parseForm(received[0].body).first?.value)
            let issuer = try #require(signIn.claims["iss"]?.stringValue)
            #expect(issuer.hasPrefix(Harness.base))
            #expect(JWT.decode(token)?.claims["iss"]?.stringValue == issuer)
        }
    }

    @Test("the back-channel queue retries a failing app with backoff (two 500s, then delivered) and gives up on a refusal")
    func queueRetries() async throws {
        let receiver = try await LogoutReceiver.start(statuses: [500, 503, 200])
        defer { receiver.close() }
        let queue = BackChannelLogoutQueue(capacity: 10, concurrency: 2, maxAttempts: 4, backoff: .milliseconds(20))
        let http = try NIOOutboundHTTP()
        let url = try #require(URL(string: "http://127.0.0.1:\(receiver.port)/bc"))
        queue.enqueue([.init(url: url, clientID: "c1", token: "t1")], http: http)
        await queue.idle()
        #expect(queue.counts == .init(delivered: 1, failed: 0, dropped: 0, retried: 2))
        #expect(receiver.received().map(\.body) == Array(repeating: "logout_token=t1", count: 3))
        // A 400 is the app refusing the token: not retried.
        let refusing = try await LogoutReceiver.start(statuses: [400])
        defer { refusing.close() }
        let refused = try #require(URL(string: "http://127.0.0.1:\(refusing.port)/bc"))
        queue.enqueue([.init(url: refused, clientID: "c2", token: "t2")], http: http)
        await queue.idle()
        #expect(queue.counts.failed == 1 && refusing.received().count == 1)
    }

    @Test("the back-channel queue is bounded: past its capacity the oldest waiting delivery is dropped, the others sent")
    func queueBound() async throws {
        let receiver = try await LogoutReceiver.start(hold: true)
        defer { receiver.close() }
        let queue = BackChannelLogoutQueue(capacity: 2, concurrency: 1, maxAttempts: 1, backoff: .milliseconds(10))
        let http = try NIOOutboundHTTP()
        let url = try #require(URL(string: "http://127.0.0.1:\(receiver.port)/bc"))
        queue.enqueue([.init(url: url, clientID: "a", token: "A")], http: http)
        _ = try await receiver.wait(for: 1)  // A is in flight, held by the app
        queue.enqueue(["B", "C", "D"].map { .init(url: url, clientID: $0, token: $0) }, http: http)
        #expect(queue.counts.dropped == 1)
        receiver.release()
        await queue.idle()
        #expect(receiver.received().map(\.body) == ["logout_token=A", "logout_token=C", "logout_token=D"])
        #expect(queue.counts == .init(delivered: 3, failed: 0, dropped: 1, retried: 0))
    }

    @Test("web.backchannelLogoutUrl is set through Graph, read back, and must be https (http only to a loopback address)")
    func backChannelURLProperty() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let created = await h.graph("POST", "applications", token: token, json: [
                "displayName": "RP", "web": ["backchannelLogoutUrl": "https://rp.contoso.test/bc"]])
            #expect(created.status == 201 && created.json["web"]?["backchannelLogoutUrl"] == "https://rp.contoso.test/bc")
            let id = try #require(created.json["id"]?.stringValue)
            for bad in ["http://rp.contoso.test/bc", "https://rp.contoso.test/bc#frag", "/relative", "javascript:alert(1)"] {
                let refused = await h.graph("PATCH", "applications/\(id)", token: token, json: ["web": ["backchannelLogoutUrl": .string(bad)]])
                #expect(refused.status == 400, "\(bad)")
            }
            for good in ["http://127.0.0.1:8080/bc", "http://localhost/bc", "https://rp.contoso.test/bc?x=1"] {
                let accepted = await h.graph("PATCH", "applications/\(id)", token: token, json: ["web": ["backchannelLogoutUrl": .string(good)]])
                #expect(accepted.status == 204, "\(good) \(accepted.text)")
            }
            let read = await h.graph("GET", "applications/\(id)", token: token)
            #expect(read.json["web"]?["backchannelLogoutUrl"] == "https://rp.contoso.test/bc?x=1")
            let refusedCreate = await h.graph("POST", "applications", token: token, json: [
                "displayName": "RP", "web": ["backchannelLogoutUrl": "ftp://rp.contoso.test/bc"]])
            #expect(refusedCreate.status == 400)
        }
    }
}

/// A relying party's back-channel logout endpoint on a real loopback listener: records each request and answers with
/// the next of `statuses` (200 once they run out); with `hold`, the first request waits for ``release()``.
final class LogoutReceiver: Sendable {
    struct Received: Sendable {
        let path: String
        let contentType: String?
        let body: String
    }

    private struct State {
        var received: [Received] = []
        var statuses: [Int]
        var hold: Bool
        var held: [@Sendable () -> Void] = []
    }

    private let state: Mutex<State>
    private let server: Mutex<(channel: (any Channel)?, port: Int)> = Mutex((nil, 0))
    var port: Int { server.withLock { $0.port } }

    private init(statuses: [Int], hold: Bool) {
        state = Mutex(State(statuses: statuses, hold: hold))
    }

    static func start(statuses: [Int] = [], hold: Bool = false) async throws -> LogoutReceiver {
        let receiver = LogoutReceiver(statuses: statuses, hold: hold)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(receiver: receiver))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        receiver.server.withLock { $0 = (channel, channel.localAddress?.port ?? 0) }
        return receiver
    }

    func received() -> [Received] { state.withLock { $0.received } }

    /// Waits (polling, at most 10 s) until `count` requests arrived.
    func wait(for count: Int) async throws -> [Received] {
        for _ in 0..<1000 {
            let now = received()
            if now.count >= count { return now }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("only \(received().count) of \(count) requests arrived")
        return received()
    }

    /// Answers the held request and holds no more.
    func release() {
        let held = state.withLock { state -> [@Sendable () -> Void] in
            state.hold = false
            defer { state.held = [] }
            return state.held
        }
        for answer in held { answer() }
    }

    func close() { server.withLock { $0.channel }?.close(promise: nil) }

    /// Records a request; the status to answer, or nil when `answer` was kept for ``release()``.
    fileprivate func arrived(_ request: Received, answer: @escaping @Sendable (Int) -> Void) -> Int? {
        state.withLock { state -> Int? in
            state.received.append(request)
            let status = state.statuses.isEmpty ? 200 : state.statuses.removeFirst()
            if state.hold {
                state.held.append { answer(status) }
                return nil
            }
            return status
        }
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let receiver: LogoutReceiver
        var head: HTTPRequestHead?
        var body = ByteBuffer()

        init(receiver: LogoutReceiver) { self.receiver = receiver }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body.clear()
            case .body(var chunk):
                body.writeBuffer(&chunk)
            case .end:
                guard let head else { return }
                let request = Received(path: head.uri, contentType: head.headers.first(name: "content-type"),
                                       body: body.readString(length: body.readableBytes) ?? "")
                let loop = context.eventLoop
                let bound = NIOLoopBound(context, eventLoop: loop)
                let respond: @Sendable (Int) -> Void = { status in
                    loop.execute {
                        let context = bound.value
                        var headers = HTTPHeaders()
                        headers.add(name: "Content-Length", value: "0")
                        headers.add(name: "Connection", value: "close")
                        context.write(NIOAny(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .init(statusCode: status),
                                                                                          headers: headers))), promise: nil)
                        let channel = context.channel
                        context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil))).whenComplete { _ in channel.close(promise: nil) }
                    }
                }
                if let status = receiver.arrived(request, answer: respond) { respond(status) }
            }
        }
    }
}
