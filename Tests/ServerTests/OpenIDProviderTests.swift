import Crypto
import CryptoExtras
import Foundation
import InternetAccess
import Testing
import X509
@testable import Server
import TesseraCore
import TesseraTesting

/// Tessera as an OpenID Provider, one test per module of the OpenID Foundation's Basic, Implicit, Hybrid, Config and
/// Form Post OP test plans that this covers (each test's name starts with the module's), plus the token endpoint's
/// client authentication as relying-party libraries send it. The suite itself cannot run here; these mirror its checks
/// in-process, with a session started as a passkey sign-in would.
@Suite("OpenID Provider: the OpenID Foundation OP test modules")
struct OpenIDProviderTests {
    static let redirect = "https://rp.contoso.test/callback"

    /// The response mode the relying party asks for (nil: the response type's default): the Form Post plans run the
    /// Basic modules again with `form_post`.
    @TaskLocal static var responseMode: String?

    /// A registered relying party (a web app with a secret) and a signed-in browser.
    struct RP {
        let h: Harness
        let clientID: String
        let objectID: String
        let secret: String
        let cookie: String
        let admin: String

        var tenant: String { h.tenant.tenantId }

        func authorize(_ params: [(String, String)], cookie: String? = nil) async -> APIResponse {
            await h.send("GET", "/\(tenant)/oauth2/v2.0/authorize", query: params.map { (name: $0.0, value: $0.1) },
                         headers: ["cookie": cookie ?? self.cookie])
        }

        /// The usual request: this client, its redirect URI, a state and nonce, and `extra` (response_type among them).
        func request(_ responseType: String, scope: String = "openid profile email offline_access", nonce: String? = "n-0S6_WzA2Mj",
                     _ extra: [(String, String)] = []) -> [(String, String)] {
            var params = [("client_id", clientID), ("redirect_uri", OpenIDProviderTests.redirect), ("response_type", responseType),
                          ("scope", scope), ("state", "af0ifjsldkj")]
            if let nonce { params.append(("nonce", nonce)) }
            if let mode = OpenIDProviderTests.responseMode, !extra.contains(where: { $0.0 == "response_mode" }) {
                params.append(("response_mode", mode))
            }
            return params + extra
        }

        /// The parameters the client receives (query, fragment or form_post page).
        func answer(_ params: [(String, String)]) async throws -> [String: String] {
            let received = try OpenIDProviderTests.received(await authorize(params))
            if let mode = OpenIDProviderTests.responseMode { #expect(received["_mode"] == mode) }
            return received
        }

        func token(_ form: [(String, String)], headers: [String: String] = [:]) async -> APIResponse {
            var all = headers
            all["content-type"] = "application/x-www-form-urlencoded"
            return await h.send("POST", "/\(tenant)/oauth2/v2.0/token", headers: all, body: Array(AuthorizeEndpoint.encode(form).utf8))
        }

        /// The code grant with client_secret_post (or `auth` instead of the secret).
        func redeem(_ code: String, auth: [(String, String)]? = nil, extra: [(String, String)] = []) async -> APIResponse {
            await token([("grant_type", "authorization_code"), ("code", code), ("redirect_uri", OpenIDProviderTests.redirect)]
                        + (auth ?? [("client_id", clientID), ("client_secret", secret)]) + extra)
        }

        /// A code flow through to the token response.
        func codeFlow(scope: String = "openid profile email offline_access", nonce: String? = "n-0S6_WzA2Mj") async throws -> JSONValue {
            let received = try await answer(request("code", scope: scope, nonce: nonce))
            let tokens = await redeem(try #require(received["code"]))
            #expect(tokens.status == 200, "\(tokens.text)")
            return tokens.json
        }

        func userinfo(_ method: String, token: String, inBody: Bool = false) async -> APIResponse {
            if inBody {
                return await h.send(method, "/oidc/userinfo", headers: ["content-type": "application/x-www-form-urlencoded"],
                                    body: Array("access_token=\(token)".utf8))
            }
            return await h.send(method, "/oidc/userinfo", headers: ["authorization": "Bearer \(token)"])
        }

        func discovery() async -> JSONValue { await h.send("GET", "/\(tenant)/v2.0/.well-known/openid-configuration").json }
    }

    /// A web app registered as a relying party (ID tokens from /authorize enabled unless `idTokens` is false), with a
    /// client secret, and a browser session of the tenant's administrator, whose profile and mail are filled in.
    static func rp(_ h: Harness, idTokens: Bool = true) async throws -> RP {
        let admin = try await h.accessToken()
        let created = await h.graph("POST", "applications", token: admin, json: [
            "displayName": "Certified RP",
            "web": ["redirectUris": [.string(redirect)], "implicitGrantSettings": ["enableIdTokenIssuance": .bool(idTokens)]]])
        let clientID = try #require(created.json["appId"]?.stringValue), objectID = try #require(created.json["id"]?.stringValue)
        _ = await h.graph("POST", "servicePrincipals", token: admin, json: ["appId": .string(clientID)])
        let password = await h.graph("POST", "applications/\(objectID)/addPassword", token: admin, json: ["passwordCredential": [:]])
        let secret = try #require(password.json["secretText"]?.stringValue)
        let patched = await h.graph("PATCH", "users/\(h.tenant.adminUserId)", token: admin, json: [
            "givenName": "Adele", "surname": "Vance", "mail": "adele@contoso.test"])
        #expect(patched.status == 204, "\(patched.text)")
        let (_, setCookie) = try await SignInSessions(app: h.app).start(tenant: h.tenant.tenantId, userID: h.tenant.adminUserId,
                                                                         amr: ["fido", "mfa"], baseURL: Harness.base)
        return RP(h: h, clientID: clientID, objectID: objectID, secret: secret, cookie: String(setCookie.split(separator: ";")[0]), admin: admin)
    }

    /// The parameters a response hands the client: a redirect's query or fragment, or a form_post page's fields.
    static func received(_ response: APIResponse) throws -> [String: String] {
        if response.status == 200 {
            let html = String(decoding: response.body, as: UTF8.self)
            let field = try Regex(#"<input type="hidden" name="([^"]*)" value="([^"]*)">"#)
            var fields: [String: String] = [:]
            for match in html.matches(of: field) {
                let name = String(match.output[1].substring ?? ""), value = String(match.output[2].substring ?? "")
                fields[name] = value.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
                    .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
                    .replacingOccurrences(of: "&amp;", with: "&")
            }
            fields["_mode"] = "form_post"
            return fields
        }
        let location = try #require(AuthorizeTests.location(response), "no redirect: \(response.status) \(response.text)")
        let mode: String, encoded: Substring
        if let hash = location.firstIndex(of: "#") {
            (mode, encoded) = ("fragment", location[location.index(after: hash)...])
        } else if let question = location.firstIndex(of: "?") {
            (mode, encoded) = ("query", location[location.index(after: question)...])
        } else {
            (mode, encoded) = ("none", "")
        }
        var params = Dictionary(APIRequest.parseForm(String(encoded)).map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
        params["_mode"] = mode
        params["_target"] = String(location.prefix { $0 != "?" && $0 != "#" })
        return params
    }

    /// The signing keys as a relying party reads them: discovery, then jwks_uri, each key rebuilt from `n` and `e`.
    static func jwks(_ rp: RP) async throws -> [String: _RSA.Signing.PublicKey] {
        let uri = try #require(await rp.discovery()["jwks_uri"]?.stringValue)
        let keys = await rp.h.send("GET", try #require(URL(string: uri)).path).json["keys"]?.arrayValue ?? []
        var out: [String: _RSA.Signing.PublicKey] = [:]
        for key in keys {
            guard let kid = key["kid"]?.stringValue, let n = key["n"]?.stringValue.flatMap(Base64URL.decode),
                  let e = key["e"]?.stringValue.flatMap(Base64URL.decode) else { continue }
            out[kid] = try _RSA.Signing.PublicKey(n: n, e: e)
        }
        return out
    }

    /// Checks an ID token as OIDC Core §3.1.3.7 tells a relying party to, with keys from jwks_uri; returns its claims.
    static func validIDToken(_ token: String?, _ rp: RP, nonce: String? = "n-0S6_WzA2Mj") async throws -> [String: JSONValue] {
        let text = try #require(token)
        let jwt = try #require(JWT.decode(text))
        let keys = try await jwks(rp)
        #expect(jwt.header["alg"] == "RS256")
        let kid = try #require(jwt.header["kid"]?.stringValue)
        let key = try #require(keys[kid])
        #expect(jwt.verify(with: key))
        let issuer = try #require(await rp.discovery()["issuer"]?.stringValue)
        let now = Int64(rp.h.clock.now.timeIntervalSince1970)
        #expect(jwt.claims["iss"]?.stringValue == issuer)
        #expect(jwt.claims["aud"]?.stringValue == rp.clientID)
        #expect((jwt.claims["exp"]?.intValue ?? 0) > now && (jwt.claims["iat"]?.intValue ?? .max) <= now)
        #expect(jwt.claims["sub"]?.stringValue?.isEmpty == false)
        #expect(jwt.claims["auth_time"]?.intValue != nil)
        #expect(jwt.claims["nonce"]?.stringValue == nonce)
        return jwt.claims
    }

    /// `c_hash` / `at_hash` as a relying party computes them (Core §3.3.2.11): the left 128 bits of SHA-256, base64url.
    static func halfHash(_ value: String) -> String {
        let digest = Array(SHA256.hash(data: Data(value.utf8)))
        return Data(digest[0..<16]).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// An `error_description` as RFC 6749 §5.2 allows it (what the suite's ValidateErrorDescriptionFromTokenEndpointResponseError
    /// checks): present, printable ASCII without `"` and `\`.
    static func isRFC6749Description(_ value: JSONValue?) -> Bool {
        guard let text = value?.stringValue, !text.isEmpty else { return false }
        return text.unicodeScalars.allSatisfy { (0x20...0x7E).contains($0.value) && $0 != "\"" && $0 != "\\" }
    }

    // MARK: Basic OP

    @Test("oidcc-server: the code flow gives a valid ID token and an access token that userinfo takes")
    func server() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            let received = try await rp.answer(rp.request("code"))
            #expect(received["_mode"] == (Self.responseMode ?? "query") && received["state"] == "af0ifjsldkj" && received["id_token"] == nil)
            let tokens = await rp.redeem(try #require(received["code"]))
            #expect(tokens.status == 200 && tokens.json["token_type"] == "Bearer")
            #expect(tokens.headers.contains { $0.name == "Cache-Control" && $0.value == "no-store" })
            let claims = try await Self.validIDToken(tokens.json["id_token"]?.stringValue, rp)
            let access = try #require(tokens.json["access_token"]?.stringValue)
            let info = await rp.userinfo("GET", token: access)
            #expect(info.status == 200 && info.json["sub"] == claims["sub"])
        }
    }

    @Test("oidcc-idtoken-signature: the ID token verifies with the jwks_uri key its kid names, and not once altered")
    func idTokenSignature() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            let idToken = try #require(try await rp.codeFlow()["id_token"]?.stringValue)
            let jwt = try #require(JWT.decode(idToken))
            let kid = try #require(jwt.header["kid"]?.stringValue)
            let key = try #require(try await Self.jwks(rp)[kid])
            #expect(jwt.verify(with: key))
            // The same signature over other claims does not verify: the check above means something.
            var parts = idToken.split(separator: ".").map(String.init)
            var claims = jwt.claims
            claims["sub"] = "someone-else"
            parts[1] = Base64URL.encode(JSONValue.object(claims).serializedBytes)
            #expect(JWT.decode(parts.joined(separator: "."))?.verify(with: key) == false)
        }
    }

    @Test("oidcc-idtoken-rs256: ID tokens from the token endpoint and /authorize are RS256, as discovery says")
    func idTokenRS256() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            #expect(await rp.discovery()["id_token_signing_alg_values_supported"] == ["RS256"])
            let fromToken = try #require(try await rp.codeFlow()["id_token"]?.stringValue)
            let fromAuthorize = try #require(try await rp.answer(rp.request("id_token"))["id_token"])
            for token in [fromToken, fromAuthorize] {
                #expect(JWT.decode(token)?.header["alg"] == "RS256")
            }
        }
    }

    @Test("oidcc-idtoken-unsigned: alg none is neither offered nor issued, and an unsigned JWT is refused where Tessera takes one")
    func idTokenUnsigned() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            let meta = await rp.discovery()
            for list in ["id_token_signing_alg_values_supported", "token_endpoint_auth_signing_alg_values_supported"] {
                #expect(meta[list]?.arrayValue?.contains("none") == false, "\(list)")
            }
            let fromToken = try #require(try await rp.codeFlow()["id_token"]?.stringValue)
            #expect(JWT.decode(fromToken)?.header["alg"] != "none")
            // An unsigned client assertion (alg none, empty signature) never authenticates a client.
            let now = Int64(h.clock.now.timeIntervalSince1970)
            let header = Base64URL.encode(JSONValue.object(["alg": "none", "typ": "JWT", "x5t": "AAAA"]).serializedBytes)
            let body = Base64URL.encode(JSONValue.object([
                "iss": .string(rp.clientID), "sub": .string(rp.clientID), "aud": .string("\(Harness.base)/\(rp.tenant)/oauth2/v2.0/token"),
                "iat": .int(now), "exp": .int(now + 300), "jti": .string(Identifier.make())]).serializedBytes)
            let refused = await rp.token([("grant_type", "client_credentials"), ("client_id", rp.clientID),
                                          ("scope", "https://graph.microsoft.com/.default"),
                                          ("client_assertion_type", TokenEndpoint.assertionType), ("client_assertion", "\(header).\(body).")])
            #expect(refused.status == 401 && refused.json["error"] == "invalid_client")
            // An unsigned id_token_hint does not name a client at logout either.
            let hint = Base64URL.encode(JSONValue.object(["aud": .string(rp.clientID), "tid": .string(rp.tenant),
                                                         "iss": .string("\(Harness.base)/\(rp.tenant)/v2.0")]).serializedBytes)
            let logout = await h.send("GET", "/\(rp.tenant)/oauth2/v2.0/logout", query: [
                ("id_token_hint", "\(header).\(hint)."), ("post_logout_redirect_uri", Self.redirect)])
            #expect(AuthorizeTests.location(logout)?.hasPrefix(Self.redirect) != true)
        }
    }

    @Test("oidcc-codereuse: a code presented twice fails, and the refresh and access tokens it gave are revoked (RFC 6749 §4.1.2)")
    func codeReuse() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            let code = try #require(try await rp.answer(rp.request("code"))["code"])
            let first = await rp.redeem(code)
            let refresh = try #require(first.json["refresh_token"]?.stringValue)
            let access = try #require(first.json["access_token"]?.stringValue)
            #expect(await rp.userinfo("GET", token: access).status == 200)
            let second = await rp.redeem(code)
            #expect(second.status == 400 && second.json["error"] == "invalid_grant" && Self.isRFC6749Description(second.json["error_description"]))
            let refreshed = await rp.token([("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", rp.clientID),
                                            ("client_secret", rp.secret)])
            #expect(refreshed.json["error"] == "invalid_grant")
            // The module only warns about an access token still accepted; here it is refused.
            let info = await rp.userinfo("GET", token: access)
            #expect(info.status == 401 && info.headers.contains { $0.name == "WWW-Authenticate" && $0.value.contains("error=\"invalid_token\"") })
        }
    }

    /// Lets the relying party read the signed-in user at Graph (`User.Read` for everyone, as an administrator's consent).
    static func grantUserRead(_ rp: RP) async throws {
        let client = await rp.h.graph("GET", "servicePrincipals", token: rp.admin, query: [("$filter", "appId eq '\(rp.clientID)'")])
        let graph = await rp.h.graph("GET", "servicePrincipals", token: rp.admin, query: [("$filter", "appId eq '\(GraphPermissions.graphAppId)'")])
        let grant = await rp.h.graph("POST", "oauth2PermissionGrants", token: rp.admin, json: [
            "clientId": .string(try #require(client.json["value"]?.arrayValue?.first?["id"]?.stringValue)), "consentType": "AllPrincipals",
            "resourceId": .string(try #require(graph.json["value"]?.arrayValue?.first?["id"]?.stringValue)), "scope": "User.Read"])
        #expect(grant.status == 201, "\(grant.text)")
    }

    @Test("codereuse: the access tokens of a replayed code's grant — from the code and from its refresh token — are refused at userinfo and Graph; another code's grant in the same browser session goes on")
    func codeReuseRevokesTheGrantOnly() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            try await Self.grantUserRead(rp)
            let scope = "openid profile offline_access User.Read"
            let code = try #require(try await rp.answer(rp.request("code", scope: scope))["code"])
            let first = await rp.redeem(code)
            let fromCode = try #require(first.json["access_token"]?.stringValue)
            let refreshed = await rp.token([("grant_type", "refresh_token"), ("refresh_token", try #require(first.json["refresh_token"]?.stringValue)),
                                            ("client_id", rp.clientID), ("client_secret", rp.secret)])
            let fromRefresh = try #require(refreshed.json["access_token"]?.stringValue)
            // The same app and browser session signs in again: a grant of its own.
            let other = try #require(try await rp.answer(rp.request("code", scope: scope))["code"])
            let otherTokens = await rp.redeem(other)
            let fromOther = try #require(otherTokens.json["access_token"]?.stringValue)
            for token in [fromCode, fromRefresh, fromOther] {
                #expect(await rp.userinfo("GET", token: token).status == 200)
                let me = await h.graph("GET", "me", token: token)
                #expect(me.status == 200 && me.json["id"]?.stringValue == h.tenant.adminUserId, "\(me.text)")
            }
            h.clock.advance(30)
            #expect(await rp.redeem(code).json["error"] == "invalid_grant")
            for token in [fromCode, fromRefresh] {
                #expect(await rp.userinfo("GET", token: token).status == 401)
                let me = await h.graph("GET", "me", token: token)
                #expect(me.status == 401 && me.json["error"]?["code"] == "InvalidAuthenticationToken", "\(me.text)")
            }
            // A third presentation changes nothing; the other grant, its refresh token and the session are untouched.
            #expect(await rp.redeem(code).json["error"] == "invalid_grant")
            #expect(await rp.userinfo("GET", token: fromOther).status == 200)
            #expect(await h.graph("GET", "me", token: fromOther).status == 200)
            let otherRefreshed = await rp.token([("grant_type", "refresh_token"), ("refresh_token", try #require(otherTokens.json["refresh_token"]?.stringValue)),
                                                 ("client_id", rp.clientID), ("client_secret", rp.secret)])
            #expect(otherRefreshed.status == 200, "\(otherRefreshed.text)")
            #expect(try await rp.answer(rp.request("code", scope: scope))["code"] != nil)
        }
    }

    @Test("oidcc-codereuse-30seconds: a code presented again 30 s later fails, and the refresh token it gave is revoked")
    func codeReuseAfterThirtySeconds() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            let code = try #require(try await rp.answer(rp.request("code"))["code"])
            let first = await rp.redeem(code)
            let refresh = try #require(first.json["refresh_token"]?.stringValue)
            h.clock.advance(30)
            let second = await rp.redeem(code)
            #expect(second.status == 400 && second.json["error"] == "invalid_grant")
            let refreshed = await rp.token([("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", rp.clientID),
                                            ("client_secret", rp.secret)])
            #expect(refreshed.json["error"] == "invalid_grant")
        }
    }

    @Test("oidcc-scope-profile: scope profile releases name, given_name, family_name and preferred_username at userinfo")
    func scopeProfile() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            let tokens = try await rp.codeFlow(scope: "openid profile")
            let info = await rp.userinfo("GET", token: try #require(tokens["access_token"]?.stringValue)).json
            #expect(info["given_name"] == "Adele" && info["family_name"] == "Vance" && info["name"]?.stringValue != nil
                    && info["preferred_username"]?.stringValue == h.tenant.adminUserPrincipalName)
            // Entra's oid and tid, as its ID tokens carry them.
            #expect(info["oid"]?.stringValue == h.tenant.adminUserId && info["tid"]?.stringValue == rp.tenant)
            #expect(info["email"] == nil)
        }
    }

    @Test("oidcc-scope-email: scope email releases email at userinfo and in the ID token")
    func scopeEmail() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            let tokens = try await rp.codeFlow(scope: "openid email")
            let info = await rp.userinfo("GET", token: try #require(tokens["access_token"]?.stringValue)).json
            #expect(info["email"] == "adele@contoso.test" && info["given_name"] == nil)
            #expect(try await Self.validIDToken(tokens["id_token"]?.stringValue, rp)["email"] == "adele@contoso.test")
        }
    }

    @Test("oidcc-scope-address: scope address, which Tessera does not support, is ignored and the sign-in succeeds")
    func scopeAddress() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            #expect(await rp.discovery()["scopes_supported"]?.arrayValue?.contains("address") == false)
            let tokens = try await rp.codeFlow(scope: "openid address")
            #expect(tokens["scope"]?.stringValue?.contains("address") == false)
            let info = await rp.userinfo("GET", token: try #require(tokens["access_token"]?.stringValue))
            #expect(info.status == 200 && info.json["address"] == nil)
        }
    }

    @Test("oidcc-scope-phone: scope phone, which Tessera does not support, is ignored and the sign-in succeeds")
    func scopePhone() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            #expect(await rp.discovery()["scopes_supported"]?.arrayValue?.contains("phone") == false)
            let tokens = try await rp.codeFlow(scope: "openid phone")
            #expect(tokens["scope"]?.stringValue?.contains("phone") == false)
            let info = await rp.userinfo("GET", token: try #require(tokens["access_token"]?.stringValue))
            #expect(info.status == 200 && info.json["phone_number"] == nil)
        }
    }

    @Test("oidcc-scope-all: openid profile email address phone succeeds with the supported scopes' claims")
    func scopeAll() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            let tokens = try await rp.codeFlow(scope: "openid profile email address phone")
            let info = await rp.userinfo("GET", token: try #require(tokens["access_token"]?.stringValue)).json
            #expect(info["email"] == "adele@contoso.test" && info["given_name"] == "Adele")
        }
    }

    @Test("oidcc-userinfo-get: userinfo answers a GET with the bearer token, sub equal to the ID token's")
    func userinfoGet() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            let tokens = try await rp.codeFlow()
            let sub = try await Self.validIDToken(tokens["id_token"]?.stringValue, rp)["sub"]
            let info = await rp.userinfo("GET", token: try #require(tokens["access_token"]?.stringValue))
            #expect(info.status == 200 && info.json["sub"] == sub)
            #expect(await rp.userinfo("GET", token: "not-a-token").status == 401)
        }
    }

    @Test("oidcc-userinfo-post-header: userinfo answers a POST with the token in the Authorization header")
    func userinfoPostHeader() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            let tokens = try await rp.codeFlow()
            let sub = try await Self.validIDToken(tokens["id_token"]?.stringValue, rp)["sub"]
            let info = await rp.userinfo("POST", token: try #require(tokens["access_token"]?.stringValue))
            #expect(info.status == 200 && info.json["sub"] == sub)
        }
    }

    @Test("oidcc-userinfo-post-body: userinfo answers a POST with the token as access_token in the form body")
    func userinfoPostBody() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            let tokens = try await rp.codeFlow()
            let sub = try await Self.validIDToken(tokens["id_token"]?.stringValue, rp)["sub"]
            let info = await rp.userinfo("POST", token: try #require(tokens["access_token"]?.stringValue), inBody: true)
            #expect(info.status == 200 && info.json["sub"] == sub)
        }
    }

    @Test("userinfo errors (RFC 6750 §3): no token is a challenge without an error; an expired token, an ID token (another audience) and an app's token are refused by name")
    func userinfoErrors() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            // The address discovery gives is the one that answers these.
            let address = try #require(await rp.discovery()["userinfo_endpoint"]?.stringValue)
            let path = try #require(URL(string: address)?.path)
            #expect(path == "/oidc/userinfo")
            func challenge(_ response: APIResponse) -> String? { response.headers.first { $0.name == "WWW-Authenticate" }?.value }
            let missing = await h.send("GET", path)
            #expect(missing.status == 401 && challenge(missing) == "Bearer realm=\"tessera\"")
            let tokens = try await rp.codeFlow()
            let access = try #require(tokens["access_token"]?.stringValue), idToken = try #require(tokens["id_token"]?.stringValue)
            // An ID token is signed by the same key, for the client: not a token for userinfo.
            let wrongAudience = await rp.userinfo("GET", token: idToken)
            #expect(wrongAudience.status == 401 && challenge(wrongAudience)?.contains("error=\"invalid_token\"") == true
                    && challenge(wrongAudience)?.contains("audience") == true)
            // An application's own token has no user: insufficient_scope (403).
            let appToken = await rp.userinfo("POST", token: try await h.accessToken())
            #expect(appToken.status == 403 && challenge(appToken)?.contains("error=\"insufficient_scope\"") == true)
            #expect(await rp.userinfo("GET", token: access).status == 200)
            // Past its lifetime (and the five minutes of clock skew allowed), the user's token is refused.
            h.clock.advance(IdentityPlatform.accessTokenLifetime + 301)
            for (method, inBody) in [("GET", false), ("POST", true)] {
                let expired = await rp.userinfo(method, token: access, inBody: inBody)
                #expect(expired.status == 401 && challenge(expired)?.contains("error=\"invalid_token\"") == true
                        && challenge(expired)?.contains("expired") == true, "\(method)")
            }
        }
    }

    @Test("oidcc-alternate-happy-flow: reversed scope order and reordered parameters make no difference")
    func alternateHappyFlow() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            let params = Array(rp.request("code", scope: "email profile openid").reversed())
            let received = try await rp.answer(params)
            let tokens = await rp.redeem(try #require(received["code"]))
            #expect(tokens.status == 200)
            let claims = try await Self.validIDToken(tokens.json["id_token"]?.stringValue, rp)
            #expect(claims["email"] == "adele@contoso.test")
            let info = await rp.userinfo("GET", token: try #require(tokens.json["access_token"]?.stringValue)).json
            #expect(info["email"] == "adele@contoso.test" && info["given_name"] == "Adele")
        }
    }

    @Test("oidcc-ensure-request-without-nonce-succeeds-for-code-flow: no nonce, a code and an ID token without one")
    func withoutNonceCodeFlow() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            let tokens = try await rp.codeFlow(nonce: nil)
            let claims = try await Self.validIDToken(tokens["id_token"]?.stringValue, rp, nonce: nil)
            #expect(claims["nonce"] == nil)
        }
    }

    @Test("oidcc-ensure-request-without-nonce-fails: id_token and code id_token without a nonce get invalid_request in the fragment")
    func withoutNonceFails() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            for type in ["id_token", "code id_token"] {
                let received = try await rp.answer(rp.request(type, nonce: nil))
                #expect(received["_mode"] == "fragment" && received["error"] == "invalid_request", "\(type)")
                #expect(received["error_description"]?.contains("nonce") == true && received["state"] == "af0ifjsldkj")
                #expect(received["code"] == nil && received["id_token"] == nil)
            }
        }
    }

    @Test("oidcc-refresh-token: a refresh gives a new access token, a rotated refresh token and an ID token for the same sub")
    func refreshToken() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            let tokens = try await rp.codeFlow()
            let first = try await Self.validIDToken(tokens["id_token"]?.stringValue, rp)
            let refresh = try #require(tokens["refresh_token"]?.stringValue)
            // A confidential client's refresh token is useless without the client's credentials.
            let bare = await rp.token([("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", rp.clientID)])
            #expect(bare.status == 401 && bare.json["error"] == "invalid_client")
            let refreshed = await rp.token([("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", rp.clientID),
                                            ("client_secret", rp.secret)])
            #expect(refreshed.status == 200, "\(refreshed.text)")
            let next = try #require(refreshed.json["refresh_token"]?.stringValue)
            #expect(next != refresh && refreshed.json["access_token"]?.stringValue != tokens["access_token"]?.stringValue)
            let again = try await Self.validIDToken(refreshed.json["id_token"]?.stringValue, rp, nonce: nil)
            #expect(again["sub"] == first["sub"] && again["sid"] == first["sid"])
            let info = await rp.userinfo("GET", token: try #require(refreshed.json["access_token"]?.stringValue))
            #expect(info.json["sub"] == first["sub"])
            // RFC 6749 A.17: a refresh token is printable ASCII.
            #expect(!refresh.isEmpty && refresh.unicodeScalars.allSatisfy { (0x20...0x7E).contains($0.value) })
            // Bound to its client: another client's refresh token, presented with this client's own valid secret, is refused.
            let other = try await Self.rp(h)
            let otherRefresh = try #require(try await other.codeFlow()["refresh_token"]?.stringValue)
            let stolen = await rp.token([("grant_type", "refresh_token"), ("refresh_token", otherRefresh), ("client_id", rp.clientID),
                                         ("client_secret", rp.secret)])
            #expect(stolen.status == 400 && stolen.json["error"] == "invalid_grant" && Self.isRFC6749Description(stolen.json["error_description"]), "\(stolen.status) \(stolen.text)")
            // The same with client_secret_basic, as the module sends it.
            let basic = ["authorization": "Basic " + Data("\(rp.clientID):\(rp.secret)".utf8).base64EncodedString()]
            let stolenBasic = await rp.token([("grant_type", "refresh_token"), ("refresh_token", otherRefresh)], headers: basic)
            #expect(stolenBasic.status == 400 && stolenBasic.json["error"] == "invalid_grant", "\(stolenBasic.status) \(stolenBasic.text)")
            // Nothing was spent: the token still works for its own client.
            let own = await other.token([("grant_type", "refresh_token"), ("refresh_token", otherRefresh), ("client_id", other.clientID),
                                         ("client_secret", other.secret)])
            #expect(own.status == 200, "\(own.text)")
        }
    }

    @Test("codereuse on two nodes: a code replayed at one node makes another node of the same database refuse the grant's access tokens at userinfo and Graph")
    func codeReuseSeenByAnotherNode() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            try await Self.grantUserRead(rp)
            let code = try #require(try await rp.answer(rp.request("code", scope: "openid profile User.Read"))["code"])
            let access = try #require(await rp.redeem(code).json["access_token"]?.stringValue)
            // A second node: its own caches, the same store and keys.
            let node = Harness(app: try await TesseraApp.make(store: h.app.store, clock: h.clock, maxBodyBytes: 64 * 1024), clock: h.clock,
                               tenant: h.tenant)
            #expect(await rp.redeem(code).json["error"] == "invalid_grant")
            let info = await node.send("GET", "/oidc/userinfo", headers: ["authorization": "Bearer \(access)"])
            #expect(info.status == 401, "\(info.text)")
            let me = await node.graph("GET", "me", token: access)
            #expect(me.status == 401 && me.json["error"]?["code"] == "InvalidAuthenticationToken", "\(me.text)")
            // What the node refuses is that grant, not the user: a new sign-in's token is taken there.
            let fresh = try #require(try await rp.codeFlow(scope: "openid profile User.Read")["access_token"]?.stringValue)
            #expect(await node.graph("GET", "me", token: fresh).status == 200)
            await node.app.jobs.idle()
        }
    }

    @Test("codereuse at the proxy: the Internet Access proxy refuses a replayed code's access token, as Graph and userinfo do")
    func codeReuseAtTheProxy() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            let code = try #require(try await rp.answer(rp.request("code"))["code"])
            let access = try #require(await rp.redeem(code).json["access_token"]?.stringValue)
            let gate = NetworkAccessGatekeeper(app: h.app, catalog: try AICatalog.bundled(year: 2026), issuerBase: Harness.base)
            guard case .decided = try await NetworkAccessPolicyTests.admit(gate, token: access) else {
                Issue.record("the token was not taken before the replay")
                return
            }
            #expect(await rp.redeem(code).json["error"] == "invalid_grant")
            guard case .unauthenticated(let reason) = try await NetworkAccessPolicyTests.admit(gate, token: access) else {
                Issue.record("the token was taken after the replay")
                return
            }
            #expect(reason.contains("presented again"))
        }
    }

    @Test("oidcc-refresh-token: an ID token from a refresh carries the original sign-in's acr, amr and auth_time (OpenID Connect Core §12.2)")
    func refreshKeepsTheAuthentication() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            let claims = #"{"id_token":{"acr":{"essential":true,"values":["c2","1"]}}}"#
            let received = try await rp.answer(rp.request("code", [("claims", claims)]))
            let tokens = await rp.redeem(try #require(received["code"]))
            let original = try await Self.validIDToken(tokens.json["id_token"]?.stringValue, rp)
            #expect(original["acr"] == "c2" && original["amr"] == JSONValue.strings(["fido", "mfa"]))
            h.clock.advance(600)
            let refreshed = await rp.token([("grant_type", "refresh_token"), ("refresh_token", try #require(tokens.json["refresh_token"]?.stringValue)),
                                            ("client_id", rp.clientID), ("client_secret", rp.secret)])
            #expect(refreshed.status == 200, "\(refreshed.text)")
            let again = try await Self.validIDToken(refreshed.json["id_token"]?.stringValue, rp, nonce: nil)
            #expect(again["acr"] == "c2" && again["amr"] == original["amr"] && again["auth_time"] == original["auth_time"])
            #expect(again["iat"]?.intValue == (original["iat"]?.intValue ?? 0) + 600)
            // And again from the rotated token: the grant keeps it.
            let twice = await rp.token([("grant_type", "refresh_token"), ("refresh_token", try #require(refreshed.json["refresh_token"]?.stringValue)),
                                        ("client_id", rp.clientID), ("client_secret", rp.secret)])
            let third = try await Self.validIDToken(twice.json["id_token"]?.stringValue, rp, nonce: nil)
            #expect(third["acr"] == "c2" && third["auth_time"] == original["auth_time"])
        }
    }

    @Test("claims parameter: its userinfo member (email, essential name) is answered at userinfo with scope openid alone, after a refresh too; nothing else is")
    func claimsUserinfo() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            let plain = try await rp.codeFlow(scope: "openid offline_access")
            let bare = await rp.userinfo("GET", token: try #require(plain["access_token"]?.stringValue)).json
            #expect(bare["sub"] != nil && bare["email"] == nil && bare["name"] == nil)
            let claims = #"{"userinfo":{"email":null,"name":{"essential":true},"phone_number":null},"id_token":{"auth_time":null}}"#
            let received = try await rp.answer(rp.request("code", scope: "openid offline_access", [("claims", claims)]))
            let tokens = await rp.redeem(try #require(received["code"]))
            let idToken = try await Self.validIDToken(tokens.json["id_token"]?.stringValue, rp)
            #expect(idToken["email"] == nil)
            let info = await rp.userinfo("GET", token: try #require(tokens.json["access_token"]?.stringValue))
            #expect(info.status == 200 && info.json["sub"] == idToken["sub"])
            #expect(info.json["email"] == "adele@contoso.test" && info.json["name"]?.stringValue?.isEmpty == false)
            #expect(info.json["given_name"] == nil && info.json["preferred_username"] == nil && info.json["phone_number"] == nil)
            let refreshed = await rp.token([("grant_type", "refresh_token"), ("refresh_token", try #require(tokens.json["refresh_token"]?.stringValue)),
                                            ("client_id", rp.clientID), ("client_secret", rp.secret)])
            let again = await rp.userinfo("POST", token: try #require(refreshed.json["access_token"]?.stringValue), inBody: true).json
            #expect(again["email"] == "adele@contoso.test" && again["name"] == info.json["name"] && again["family_name"] == nil)
        }
    }

    @Test("oidcc-server-client-secret-post: the code is redeemed with the secret in the form body; a wrong one is invalid_client")
    func clientSecretPost() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            #expect(await rp.discovery()["token_endpoint_auth_methods_supported"]?.arrayValue?.contains("client_secret_post") == true)
            let code = try #require(try await rp.answer(rp.request("code"))["code"])
            let wrong = await rp.redeem(code, auth: [("client_id", rp.clientID), ("client_secret", rp.secret + "x")])
            #expect(wrong.status == 401 && wrong.json["error"] == "invalid_client" && wrong.json["error_description"] != nil)
            let tokens = await rp.redeem(code)
            #expect(tokens.status == 200)
            _ = try await Self.validIDToken(tokens.json["id_token"]?.stringValue, rp)
        }
    }

    @Test("oidcc-ensure-request-with-valid-pkce-succeeds: S256 with the right verifier succeeds, a wrong verifier does not")
    func validPKCE() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            let verifier = Secrets.randomToken(bytes: 32)
            let challenge = Base64URL.encode(Array(SHA256.hash(data: Data(verifier.utf8))))
            let pkce = [("code_challenge", challenge), ("code_challenge_method", "S256")]
            let wrongCode = try #require(try await rp.answer(rp.request("code", pkce))["code"])
            let wrong = await rp.redeem(wrongCode, extra: [("code_verifier", Secrets.randomToken(bytes: 32))])
            #expect(wrong.json["error"] == "invalid_grant")
            let code = try #require(try await rp.answer(rp.request("code", pkce))["code"])
            let tokens = await rp.redeem(code, extra: [("code_verifier", verifier)])
            #expect(tokens.status == 200)
            _ = try await Self.validIDToken(tokens.json["id_token"]?.stringValue, rp)
        }
    }

    // MARK: Config OP

    @Test("oidcc-discovery-endpoint-verification: discovery is true — every endpoint answers, lists hold no duplicates, every response type works")
    func discoveryEndpointVerification() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            let meta = await rp.discovery()
            let issuer = try #require(meta["issuer"]?.stringValue)
            #expect(issuer == "\(Harness.base)/\(rp.tenant)/v2.0")
            #expect(issuer.hasPrefix("https://") && URL(string: issuer)?.query == nil && URL(string: issuer)?.fragment == nil)
            // Every endpoint listed answers (not 404), whatever it says to a bare request.
            let object = try #require(meta.objectValue)
            let endpoints = object.filter { $0.key.hasSuffix("_endpoint") || $0.key.hasSuffix("_uri") }
            #expect(["authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "end_session_endpoint",
                     "device_authorization_endpoint"].allSatisfy { endpoints[$0] != nil })
            for (name, value) in endpoints {
                let text = try #require(value.stringValue, "\(name)")
                let url = try #require(URL(string: text), "\(name)")
                #expect(url.scheme == "https", "\(name)")
                for method in ["GET", "POST"] {
                    let answered = await h.send(method, url.path)
                    #expect(answered.status != 404, "\(name) \(method) \(url.path): \(answered.status)")
                }
            }
            // No list names a value twice.
            for (name, value) in object {
                if let list = value.arrayValue { #expect(Set(list.compactMap { $0.stringValue }).count == list.count, "\(name) has duplicates") }
            }
            #expect(meta["scopes_supported"]?.arrayValue?.contains("openid") == true)
            #expect(meta["subject_types_supported"]?.arrayValue?.isEmpty == false)
            #expect(meta["id_token_signing_alg_values_supported"]?.arrayValue?.contains("RS256") == true)
            #expect(meta["response_modes_supported"] == ["query", "fragment", "form_post"])
            #expect(meta["code_challenge_methods_supported"] == ["S256"])
            #expect(meta["claims_parameter_supported"] == true && meta["claim_types_supported"] == ["normal"])
            #expect(meta["grant_types_supported"]?.arrayValue?.contains("implicit") == true)
            #expect(meta["token_endpoint_auth_methods_supported"]?.arrayValue?.contains("client_secret_jwt") == false)
            // jwks_uri's keys are usable as published: kid, use and alg on each.
            let jwksURI = try #require(meta["jwks_uri"]?.stringValue)
            let keys = await h.send("GET", try #require(URL(string: jwksURI)).path).json["keys"]?.arrayValue ?? []
            #expect(!keys.isEmpty)
            for key in keys { #expect(key["kid"]?.stringValue != nil && key["use"] == "sig" && key["alg"] == "RS256" && key["kty"] == "RSA") }
            // CheckDistinctKeyIdValueInServerJWKs: no two keys share a kid (a rotation publishes two keys).
            #expect(Set(keys.compactMap { $0["kid"]?.stringValue }).count == keys.count)
            // Every response type listed works, and the issuer is the tokens' iss.
            let types = meta["response_types_supported"]?.arrayValue?.compactMap { $0.stringValue } ?? []
            #expect(types == ["code", "id_token", "code id_token"])
            for type in types {
                let received = try await rp.answer(rp.request(type))
                #expect(received["error"] == nil, "\(type): \(received)")
                for part in type.split(separator: " ") { #expect(received[String(part)] != nil, "\(type) gave no \(part)") }
                if let idToken = received["id_token"] { #expect(JWT.decode(idToken)?.claims["iss"]?.stringValue == issuer) }
            }
            #expect(JWT.decode(try #require(try await rp.codeFlow()["id_token"]?.stringValue))?.claims["iss"]?.stringValue == issuer)
        }
    }

    // MARK: Implicit and hybrid (Entra's enableIdTokenIssuance)

    @Test("implicit and hybrid: id_token and code id_token answer in the fragment; the hybrid code gives an ID token for the same sub and sid")
    func implicitAndHybrid() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            let implicit = try await rp.answer(rp.request("id_token"))
            #expect(implicit["_mode"] == "fragment" && implicit["_target"] == Self.redirect && implicit["state"] == "af0ifjsldkj")
            #expect(implicit["code"] == nil && implicit["access_token"] == nil)
            let implicitClaims = try await Self.validIDToken(implicit["id_token"], rp)
            #expect(implicitClaims["c_hash"] == nil && implicitClaims["at_hash"] == nil)

            let hybrid = try await rp.answer(rp.request("code id_token"))
            #expect(hybrid["_mode"] == "fragment")
            let code = try #require(hybrid["code"])
            let front = try await Self.validIDToken(hybrid["id_token"], rp)
            let tokens = await rp.redeem(code)
            #expect(tokens.status == 200)
            let back = try await Self.validIDToken(tokens.json["id_token"]?.stringValue, rp)
            #expect(back["sub"] == front["sub"] && back["sid"] == front["sid"] && front["sub"] == implicitClaims["sub"])
            // A code alone may go in the fragment too, when asked (as Entra allows).
            let fragmentCode = try await rp.answer(rp.request("code", [("response_mode", "fragment")]))
            #expect(fragmentCode["_mode"] == "fragment" && fragmentCode["code"] != nil)
            // Order of the words does not matter; query is not a mode for an ID token in the answer.
            #expect(try await rp.answer(rp.request("id_token code"))["code"] != nil)
            let query = try await rp.answer(rp.request("code id_token", [("response_mode", "query")]))
            #expect(query["_mode"] == "fragment" && query["error"] == "invalid_request" && query["code"] == nil)
            // No response type at all is a missing parameter, as in Entra.
            let missing = try await rp.answer(rp.request("code").filter { $0.0 != "response_type" })
            #expect(missing["error"] == "invalid_request" && missing["error_description"]?.contains("'response_type'") == true)
            // Access tokens come only from the token endpoint.
            for type in ["token", "id_token token", "code id_token token", "code token"] {
                let refused = try await rp.answer(rp.request(type))
                #expect(refused["error"] == "unsupported_response_type" && refused["access_token"] == nil, "\(type)")
            }
        }
    }

    @Test("hybrid: c_hash and at_hash are the left half of SHA-256 of the code and the access token, computed here independently")
    func hashes() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            let hybrid = try await rp.answer(rp.request("code id_token"))
            let code = try #require(hybrid["code"])
            let front = try await Self.validIDToken(hybrid["id_token"], rp)
            #expect(front["c_hash"]?.stringValue == Self.halfHash(code))
            #expect(front["c_hash"]?.stringValue?.count == 22)
            let tokens = await rp.redeem(code)
            let access = try #require(tokens.json["access_token"]?.stringValue)
            let back = try await Self.validIDToken(tokens.json["id_token"]?.stringValue, rp)
            #expect(back["at_hash"]?.stringValue == Self.halfHash(access))
            #expect(back["at_hash"] != front["c_hash"])
        }
    }

    @Test("implicit: without enableIdTokenIssuance, id_token and code id_token get AADSTS700054 and code still works")
    func idTokenIssuanceDisabled() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h, idTokens: false)
            for type in ["id_token", "code id_token"] {
                let refused = try await rp.answer(rp.request(type))
                #expect(refused["error"] == "unsupported_response_type" && refused["id_token"] == nil && refused["code"] == nil, "\(type)")
                #expect(refused["error_description"]?.hasPrefix("AADSTS700054: response_type 'id_token' is not enabled for the application") == true)
            }
            #expect(try await rp.answer(rp.request("code"))["code"] != nil)
            // Turned on through Graph, as in the portal's "ID tokens" box.
            let patched = await h.graph("PATCH", "applications/\(rp.objectID)", token: rp.admin, json: [
                "web": ["redirectUris": [.string(Self.redirect)], "implicitGrantSettings": ["enableIdTokenIssuance": true]]])
            #expect(patched.status == 204)
            #expect(try await rp.answer(rp.request("id_token"))["id_token"] != nil)
        }
    }

    // MARK: Form Post OP

    @Test("formpost: oidcc-server — the code and the hybrid flows with response_mode=form_post post their answer to the redirect URI")
    func formPostServer() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            let code = try await rp.answer(rp.request("code", [("response_mode", "form_post")]))
            #expect(code["_mode"] == "form_post" && code["state"] == "af0ifjsldkj" && code["id_token"] == nil)
            let codeTokens = await rp.redeem(try #require(code["code"]))
            _ = try await Self.validIDToken(codeTokens.json["id_token"]?.stringValue, rp)

            let response = await rp.authorize(rp.request("code id_token", [("response_mode", "form_post")]))
            #expect(String(decoding: response.body, as: UTF8.self).contains("action=\"\(Self.redirect)\""))
            let hybrid = try Self.received(response)
            #expect(hybrid["_mode"] == "form_post" && hybrid["state"] == "af0ifjsldkj")
            let front = try await Self.validIDToken(hybrid["id_token"], rp)
            #expect(front["c_hash"]?.stringValue == Self.halfHash(try #require(hybrid["code"])))
            let tokens = await rp.redeem(try #require(hybrid["code"]))
            #expect(try await Self.validIDToken(tokens.json["id_token"]?.stringValue, rp)["sub"] == front["sub"])

            let implicit = try await rp.answer(rp.request("id_token", [("response_mode", "form_post")]))
            #expect(implicit["_mode"] == "form_post")
            _ = try await Self.validIDToken(implicit["id_token"], rp)
        }
    }

    // MARK: Client authentication at the token endpoint

    /// Gives the app a secret of our choosing (Graph generates them; a client may hold one from elsewhere, e.g. a
    /// migration): its record and its listing, as addPassword writes them.
    static func addSecret(_ rp: RP, _ secret: String) async throws {
        let tenant = rp.tenant, objectID = rp.objectID, keyID = Identifier.make()
        let expires = rp.h.clock.now.addingTimeInterval(86_400 * 30)
        try await rp.h.app.store.write { tx in
            var object = try #require(try await tx.object(tenant: tenant, id: objectID))
            let version = object.version
            object.body["passwordCredentials"] = .array((object.body["passwordCredentials"]?.arrayValue ?? []) + [[
                "keyId": .string(keyID), "displayName": "special", "hint": .string(String(secret.prefix(3))),
                "startDateTime": "2026-01-01T00:00:00Z", "endDateTime": .string(Timestamp.format(expires)),
                "customKeyIdentifier": nil, "secretText": nil]])
            object.version += 1
            try await tx.update(object, expectedVersion: version)
            try await tx.insertCredential(ClientSecretRecord(id: keyID, objectID: objectID, digest: Secrets.digest(secret), expires: expires),
                                          tenant: tenant)
        }
        rp.h.app.directory.generations.bump(tenant)
    }

    /// The modules of the Basic plan that the Form Post Basic plan runs again with `response_mode=form_post`, each by
    /// the same test as above (the authorization request's modules are `AuthorizeParametersTests.FormPostModule`).
    enum FormPostModule: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case server = "oidcc-server", idTokenSignature = "oidcc-idtoken-signature", idTokenUnsigned = "oidcc-idtoken-unsigned"
        case codeReuse = "oidcc-codereuse"
        case codeReuse30 = "oidcc-codereuse-30seconds", scopeProfile = "oidcc-scope-profile", scopeEmail = "oidcc-scope-email"
        case scopeAddress = "oidcc-scope-address", scopePhone = "oidcc-scope-phone", scopeAll = "oidcc-scope-all"
        case userinfoGet = "oidcc-userinfo-get", userinfoPostHeader = "oidcc-userinfo-post-header"
        case userinfoPostBody = "oidcc-userinfo-post-body", alternateHappyFlow = "oidcc-alternate-happy-flow"
        case withoutNonce = "oidcc-ensure-request-without-nonce-succeeds-for-code-flow", refreshToken = "oidcc-refresh-token"
        case clientSecretPost = "oidcc-server-client-secret-post", validPKCE = "oidcc-ensure-request-with-valid-pkce-succeeds"

        var testDescription: String { rawValue }

        func run(_ t: OpenIDProviderTests) async throws {
            switch self {
            case .server: try await t.server()
            case .idTokenSignature: try await t.idTokenSignature()
            case .idTokenUnsigned: try await t.idTokenUnsigned()
            case .codeReuse: try await t.codeReuse()
            case .codeReuse30: try await t.codeReuseAfterThirtySeconds()
            case .scopeProfile: try await t.scopeProfile()
            case .scopeEmail: try await t.scopeEmail()
            case .scopeAddress: try await t.scopeAddress()
            case .scopePhone: try await t.scopePhone()
            case .scopeAll: try await t.scopeAll()
            case .userinfoGet: try await t.userinfoGet()
            case .userinfoPostHeader: try await t.userinfoPostHeader()
            case .userinfoPostBody: try await t.userinfoPostBody()
            case .alternateHappyFlow: try await t.alternateHappyFlow()
            case .withoutNonce: try await t.withoutNonceCodeFlow()
            case .refreshToken: try await t.refreshToken()
            case .clientSecretPost: try await t.clientSecretPost()
            case .validPKCE: try await t.validPKCE()
            }
        }
    }

    @Test("formpost: the Form Post Basic plan — each Basic module again with response_mode=form_post, the answer posted by a page",
          arguments: FormPostModule.allCases)
    func formPostBasic(_ module: FormPostModule) async throws {
        try await Self.$responseMode.withValue("form_post") { try await module.run(self) }
    }

    @Test("client_secret_basic: id and secret form-urlencoded before base64 (RFC 6749 §2.3.1) or sent as they are, plain or with : + % and space")
    func clientSecretBasic() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            let special = "a:b+c%2Fd e~f&g=h"
            try await Self.addSecret(rp, special)
            func formEncoded(_ value: String) -> String {
                var allowed = CharacterSet.alphanumerics
                allowed.insert(charactersIn: "*-._")
                return (value.addingPercentEncoding(withAllowedCharacters: allowed.union(.init(charactersIn: " "))) ?? value)
                    .replacingOccurrences(of: " ", with: "+")
            }
            func basic(_ id: String, _ secret: String) -> [String: String] {
                ["authorization": "Basic " + Data("\(id):\(secret)".utf8).base64EncodedString()]
            }
            func redeem(_ headers: [String: String]) async throws -> APIResponse {
                let code = try #require(try await rp.answer(rp.request("code"))["code"])
                return await rp.token([("grant_type", "authorization_code"), ("code", code), ("redirect_uri", Self.redirect)], headers: headers)
            }
            // pyoidc and Go's oauth2 encode (quote_plus: space is +, + is %2B); Authlib and requests' HTTPBasicAuth do not.
            for (secret, encode) in [(rp.secret, true), (rp.secret, false), (special, true), (special, false)] {
                let headers = encode ? basic(formEncoded(rp.clientID), formEncoded(secret)) : basic(rp.clientID, secret)
                let answered = try await redeem(headers)
                #expect(answered.status == 200, "\(secret == special ? "special" : "plain"), encoded: \(encode): \(answered.text)")
            }
            #expect(formEncoded(special) == "a%3Ab%2Bc%252Fd+e%7Ef%26g%3Dh")
            // Another client's code, presented with this client's valid credentials, is that client's grant: invalid_grant.
            let other = try await Self.rp(h)
            let othersCode = try #require(try await other.answer(other.request("code"))["code"])
            let crossed = await rp.token([("grant_type", "authorization_code"), ("code", othersCode), ("redirect_uri", Self.redirect)],
                                         headers: basic(rp.clientID, rp.secret))
            #expect(crossed.status == 400 && crossed.json["error"] == "invalid_grant", "\(crossed.text)")
            #expect(await other.redeem(othersCode).status == 200)
            // Close is not enough: the special secret with its + read as a space, and a wrong secret, are refused.
            for wrong in [basic(rp.clientID, "a:b c%2Fd e~f&g=h"), basic(rp.clientID, rp.secret + "x")] {
                let refused = try await redeem(wrong)
                #expect(refused.status == 401 && refused.json["error"] == "invalid_client"
                        && refused.json["error_description"]?.stringValue?.hasPrefix("AADSTS7000215") == true)
            }
        }
    }

    @Test("private_key_jwt: a certificate's signed assertion authenticates the code grant and the refresh grant, not only client credentials")
    func privateKeyJWT() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            #expect(await rp.discovery()["token_endpoint_auth_methods_supported"]?.arrayValue?.contains("private_key_jwt") == true)
            let (key, der) = try SessionAndAssertionTests.certificate(at: h.clock.now)
            let uploaded = await h.graph("PATCH", "applications/\(rp.objectID)", token: rp.admin, json: ["keyCredentials": [[
                "type": "AsymmetricX509Cert", "usage": "Verify", "key": .string(Data(der).base64EncodedString())]]])
            #expect(uploaded.status == 204)
            let x5t = Base64URL.encode(Array(Insecure.SHA1.hash(data: der)))
            func assertion(signer: _RSA.Signing.PrivateKey? = nil) throws -> [(String, String)] {
                let now = Int64(h.clock.now.timeIntervalSince1970)
                let jwt = try JWT.sign(claims: [
                    "aud": .string("\(Harness.base)/\(rp.tenant)/oauth2/v2.0/token"), "iss": .string(rp.clientID), "sub": .string(rp.clientID),
                    "iat": .int(now), "exp": .int(now + 300), "jti": .string(Identifier.make())], header: ["x5t": .string(x5t)], key: signer ?? key)
                return [("client_assertion_type", TokenEndpoint.assertionType), ("client_assertion", jwt)]
            }
            let code = try #require(try await rp.answer(rp.request("code"))["code"])
            let forged = await rp.redeem(code, auth: try assertion(signer: try _RSA.Signing.PrivateKey(keySize: .bits2048)))
            #expect(forged.status == 401 && forged.json["error"] == "invalid_client")
            let tokens = await rp.redeem(code, auth: try assertion())
            #expect(tokens.status == 200, "\(tokens.text)")
            let first = try await Self.validIDToken(tokens.json["id_token"]?.stringValue, rp)
            let refresh = try #require(tokens.json["refresh_token"]?.stringValue)
            let refreshed = await rp.token([("grant_type", "refresh_token"), ("refresh_token", refresh)] + (try assertion()))
            #expect(refreshed.status == 200, "\(refreshed.text)")
            #expect(try await Self.validIDToken(refreshed.json["id_token"]?.stringValue, rp, nonce: nil)["sub"] == first["sub"])
            // PS256, which discovery lists beside RS256, authenticates as well.
            #expect(await rp.discovery()["token_endpoint_auth_signing_alg_values_supported"] == ["RS256", "PS256"])
            let now = Int64(h.clock.now.timeIntervalSince1970)
            let pss = try AuthorizeParametersTests.signPS256([
                "aud": .string("\(Harness.base)/\(rp.tenant)/oauth2/v2.0/token"), "iss": .string(rp.clientID), "sub": .string(rp.clientID),
                "iat": .int(now), "exp": .int(now + 300), "jti": .string(Identifier.make())], header: ["x5t": .string(x5t)], key: key)
            let viaPSS = await rp.token([("grant_type", "refresh_token"), ("refresh_token", try #require(refreshed.json["refresh_token"]?.stringValue)),
                                         ("client_assertion_type", TokenEndpoint.assertionType), ("client_assertion", pss)])
            #expect(viaPSS.status == 200, "\(viaPSS.text)")
            // Without any credential, the refresh token alone does nothing.
            let next = try #require(viaPSS.json["refresh_token"]?.stringValue)
            #expect(await rp.token([("grant_type", "refresh_token"), ("refresh_token", next)]).json["error"] == "invalid_client")
        }
    }

    @Test("token endpoint errors: each carries error_description with Entra's error_codes, timestamp, trace_id and correlation_id")
    func tokenErrors() async throws {
        try await Harness.run { h in
            let rp = try await Self.rp(h)
            let cases: [([(String, String)], String)] = [
                ([("grant_type", "password"), ("username", "a"), ("password", "b")], "unsupported_grant_type"),
                ([("grant_type", "urn:ietf:params:oauth:grant-type:saml2-bearer")], "unsupported_grant_type"),
                ([("client_id", rp.clientID)], "invalid_request"),
                ([("grant_type", "authorization_code"), ("client_id", rp.clientID)], "invalid_request"),
                ([("grant_type", "authorization_code"), ("code", "forged"), ("redirect_uri", Self.redirect)], "invalid_grant"),
                ([("grant_type", "refresh_token"), ("refresh_token", "\(Identifier.make()).x")], "invalid_grant"),
                ([("grant_type", "client_credentials"), ("client_id", rp.clientID), ("client_secret", "wrong"),
                  ("scope", "https://graph.microsoft.com/.default")], "invalid_client"),
            ]
            for (form, error) in cases {
                let answered = await rp.token(form)
                #expect(answered.json["error"]?.stringValue == error, "\(form): \(answered.text)")
                #expect(answered.json["error_description"]?.stringValue?.hasPrefix("AADSTS") == true)
                #expect(Self.isRFC6749Description(answered.json["error_description"]), "\(form)")
                for field in ["error_codes", "timestamp", "trace_id", "correlation_id"] { #expect(answered.json[field] != nil, "\(field)") }
            }
        }
    }
}
