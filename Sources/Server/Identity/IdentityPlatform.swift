import Crypto
import CryptoExtras
import Foundation
import TesseraCore
import WebAuthn
import X509

/// The Microsoft identity platform endpoints of a tenant: discovery, keys and the token endpoint.
struct IdentityPlatform {
    let app: TesseraApp

    /// Access tokens live an hour, as Entra's do by default.
    static let accessTokenLifetime: TimeInterval = 3599

    func handle(_ request: APIRequest) async throws -> APIResponse {
        let s = request.segments
        guard s.count >= 2 else { throw DirectoryError.notFound("/" + s.joined(separator: "/")) }
        let tenantSegment = s[0]
        let rest = Array(s.dropFirst())
        let isDiscovery = rest == ["v2.0", ".well-known", "openid-configuration"] || rest == [".well-known", "openid-configuration"]
        let isKeys = rest == ["discovery", "v2.0", "keys"] || rest == ["discovery", "keys"]
        let isToken = rest == ["oauth2", "v2.0", "token"]
        let isPasskey = rest.first == "login" && [["login", "passkey", "options"], ["login", "passkey"], ["login", "tap"],
                                                 ["login", "enroll", "options"], ["login", "enroll"]].contains(rest)
        let isPage = rest == ["login"]
        let isAuthorize = rest == ["oauth2", "v2.0", "authorize"]
        let isLogout = rest == ["oauth2", "v2.0", "logout"]
        let isConsent = rest == ["oauth2", "v2.0", "consent"]
        let isDevice = rest == ["oauth2", "v2.0", "devicecode"] || rest == ["devicelogin"]
        let isExternal = rest.first == "b2b"
        guard isDiscovery || isKeys || isToken || isPasskey || isPage || isAuthorize || isLogout || isDevice || isConsent || isExternal else { throw DirectoryError.notFound("/" + s.joined(separator: "/")) }
        guard let tenant = try await app.tenantRecord(tenantSegment) else {
            throw OAuthError(error: "invalid_tenant", code: 90002,
                             description: "Tenant '\(tenantSegment)' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.")
        }
        if isDiscovery {
            guard request.method == "GET" else { throw DirectoryError(.methodNotAllowed, "Use GET.") }
            return .json(discovery(tenant: tenant, base: request.baseURL))
        }
        if isDevice { return try await device(request, tenant: tenant, login: rest == ["devicelogin"]) }
        if isExternal { return try await ExternalSignIn(app: app, tenant: tenant, request: request).respond(Array(rest.dropFirst())) }
        if isLogout {
            guard request.method == "GET" || request.method == "POST" else { throw DirectoryError(.methodNotAllowed, "Use GET or POST.") }
            return try await Logout(app: app, tenant: tenant, request: request).respond()
        }
        if isConsent {
            guard request.method == "POST" else { throw DirectoryError(.methodNotAllowed, "Use POST.") }
            return try await consent(request, tenant: tenant)
        }
        if isAuthorize {
            // GET and POST (form-encoded), as OpenID Connect Core §3.1.2.1 requires.
            guard request.method == "GET" || request.method == "POST" else { throw DirectoryError(.methodNotAllowed, "Use GET or POST.") }
            return try await AuthorizeEndpoint(app: app, tenant: tenant, request: AuthorizeParameters.formEncoded(request)).respond()
        }
        if isPage {
            guard request.method == "GET" else { throw DirectoryError(.methodNotAllowed, "Use GET.") }
            return SignInPage.render(tenant: tenant)
        }
        if isPasskey {
            guard request.method == "POST" else { throw DirectoryError(.methodNotAllowed, "Use POST.") }
            try Self.requireSameOriginJSON(request)
            if rest[1] == "tap" || rest[1] == "enroll" { return try await onboarding(request, tenant: tenant.id, step: Array(rest.dropFirst())) }
            return try await passkeySignIn(request, tenant: tenant.id, finish: rest.count == 2)
        }
        if isKeys {
            guard request.method == "GET" else { throw DirectoryError(.methodNotAllowed, "Use GET.") }
            let keyIssuer = issuer(tenant: tenant.id, base: request.baseURL)
            // Every published key: the signing one, the next (known before it signs) and the previous (its tokens still live).
            return .json(["keys": .array(try app.signingKeys.ring.published.map { try $0.jwk(issuer: keyIssuer) })])
        }
        guard request.method == "POST" else {
            throw OAuthError.invalidRequest(900561, "The endpoint only accepts POST requests.")
        }
        return try await TokenEndpoint(app: app, tenant: tenant, request: request).respond()
    }

    func issuer(tenant: String, base: String) -> String { "\(base)/\(tenant)/v2.0" }

    /// The sign-in page's calls change who is signed in, so they must come from the page itself: a JSON body (which
    /// a cross-site form or no-cors fetch cannot send without a CORS preflight, which Tessera does not grant) and,
    /// when the browser says where the request comes from, this origin.
    static func requireSameOriginJSON(_ request: APIRequest) throws {
        guard request.header("content-type")?.lowercased().hasPrefix("application/json") == true else {
            throw DirectoryError(.badRequest, "The sign-in endpoints accept only application/json.")
        }
        if let origin = request.header("origin") {
            guard origin == PasskeyRegistration.site(baseURL: request.baseURL).origin else { throw DirectoryError(.accessDenied, "Cross-origin sign-in requests are refused.") }
        }
    }

    /// The device code flow: `oauth2/v2.0/devicecode` for the device, `devicelogin` (GET the page, POST the approval)
    /// for the signed-in user.
    func device(_ request: APIRequest, tenant: TenantRecord, login: Bool) async throws -> APIResponse {
        let codes = DeviceCodes(app: app)
        guard login else {
            guard request.method == "POST" else { throw OAuthError.invalidRequest(900561, "The endpoint only accepts POST requests.") }
            let form = Dictionary(APIRequest.parseForm(String(decoding: request.body, as: UTF8.self)).map { ($0.name, $0.value) },
                                  uniquingKeysWith: { first, _ in first })
            return try await codes.start(tenant: tenant, form: form, baseURL: request.baseURL)
        }
        let session = try await SignInSessions(app: app).current(request, tenant: tenant.id)
        let userCode = request.query.first { $0.name == "user_code" }?.value
        switch request.method {
        case "GET":
            guard let session else {
                var back = "/\(request.segments[0])/devicelogin"
                if let userCode { back += "?" + AuthorizeEndpoint.encode([("user_code", userCode)]) }
                return APIResponse(status: 302, headers: [("Location", "/\(request.segments[0])/login?" + AuthorizeEndpoint.encode([("continue", back)])),
                                                          ("Cache-Control", "no-store")])
            }
            let tenantID = tenant.id
            let upn = try await app.store.read { tx in try await tx.object(tenant: tenantID, id: session.userID) }?.body["userPrincipalName"]?.stringValue
            return DeviceLoginPage.render(tenant: tenant, userPrincipalName: upn ?? "", userCode: userCode)
        case "POST":
            // JSON only (a cross-site form cannot send it without a preflight), and the SameSite session cookie.
            try Self.requireSameOriginJSON(request)
            guard let session else { throw DirectoryError(.accessDenied, "Sign in first.") }
            // Conditional Access decides the device's sign-in here, where the user is: the device gets nothing it refuses.
            if let userCode = try request.jsonObject()["userCode"]?.stringValue,
               let clientID = try await codes.pendingClient(tenant: tenant.id, userCode: userCode) {
                try await TenantRestrictionsGate(app: app, tenant: tenant, request: request).deviceLogin(userID: session.userID, clientID: clientID)
                let decision = try await app.conditionalAccess.decide(app: app, tenant: tenant, session: session, clientID: clientID,
                                                                      request: request)
                let refused = decision.outcome != .allow
                let refusal = ConditionalAccessGate.refusal(decision)
                if let user = try await app.activeUser(tenant: tenant.id, id: session.userID) {
                    let application = try await app.application(tenant: tenant.id, appID: clientID)
                    await SignInLog(app: app, tenant: tenant.id).record(
                        SignInEvent(kind: .interactiveUser, principal: user, appID: clientID,
                                    appDisplayName: application?.body["displayName"]?.stringValue, amr: session.amr,
                                    authTime: session.authTime, decision: decision,
                                    failure: refused ? refusal : nil,
                                    clientAppUsed: "Mobile Apps and Desktop clients"),
                        request: request)
                }
                if refused {
                    throw DirectoryError(.accessDenied, "AADSTS\(refusal.code): \(refusal.reason) (correlation id \(request.requestID)).")
                }
            }
            guard let code = try request.jsonObject()["userCode"]?.stringValue,
                  try await codes.approve(tenant: tenant.id, userCode: code, session: session) else {
                throw DirectoryError.badRequest("The code is not valid or has expired.")
            }
            return .json(["approved": true])
        default:
            throw DirectoryError(.methodNotAllowed, "Use GET or POST.")
        }
    }

    /// The consent page's answer (`oauth2/v2.0/consent`): the signed-in user grants what the page showed, for
    /// themselves or, as an administrator, for the organisation, and the browser goes back to /authorize; or declines,
    /// and the client hears `access_denied`.
    func consent(_ request: APIRequest, tenant: TenantRecord) async throws -> APIResponse {
        let consentForm = try ConsentForm(request)
        let form = consentForm.fields
        guard let session = try await SignInSessions(app: app).current(request, tenant: tenant.id) else {
            throw DirectoryError(.accessDenied, "Sign in first.")
        }
        let flow = Consent(app: app, tenant: tenant)
        guard let clientID = form["client_id"], let scope = form["scope"], let (continuation, back) = consentForm.continuation(request),
              let presented = form["consent_token"]
        else { throw DirectoryError.badRequest("The consent form is incomplete.") }
        let scopes = Set(scope.split(separator: " ").map(String.init))
        let expected = flow.formToken(sessionID: session.id, clientID: clientID, scopes: scopes)
        guard WebAuthn.constantTimeEquals(Array(presented.utf8), Array(expected.utf8)),
              let application = try await app.application(tenant: tenant.id, appID: clientID)
        else { throw DirectoryError(.accessDenied, "The consent form is not valid for this session; start the sign-in again.") }
        guard back["client_id"] == clientID, let redirectURI = back["redirect_uri"],
              AuthorizeEndpoint.redirectKind(redirectURI, application: application) != nil
        else { throw DirectoryError.badRequest("The consent form does not match its authorization request.") }
        guard form["decision"] == "accept" else {
            return ConsentForm.declined(back, redirectURI: redirectURI, description: "AADSTS65004: User declined to consent to access the app.")
        }
        let (forSelf, forOrganisation) = try await flow.authority(userID: session.userID, scopes: scopes)
        let organisation = form["for_organization"] == "true"
        guard forSelf, !organisation || forOrganisation else {
            throw DirectoryError(.accessDenied, "Only an administrator can grant these permissions.")
        }
        let user = try await app.store.read { [tenantID = tenant.id] tx in try await tx.object(tenant: tenantID, id: session.userID) }
        let actor = Actor(kind: .user, id: session.userID, displayName: user?.body["displayName"]?.stringValue ?? "",
                          userPrincipalName: user?.body["userPrincipalName"]?.stringValue)
        try await flow.grant(clientID: clientID, userID: session.userID, scopes: scopes, forOrganisation: organisation, actor: actor)
        return APIResponse(status: 303, headers: [("Location", continuation), ("Cache-Control", "no-store")])
    }

    /// Onboarding with a Temporary Access Pass: `login/tap` ({username, temporaryAccessPass}) answers with an
    /// enrollment token; `login/enroll/options` and `login/enroll` ({userId, enrollmentToken[, credential]})
    /// register one passkey with it.
    func onboarding(_ request: APIRequest, tenant: String, step: [String]) async throws -> APIResponse {
        let flow = TemporaryAccessPassSignIn(app: app, tenant: tenant)
        let body = try request.jsonObject()
        func field(_ name: String) throws -> String {
            guard let value = body[name]?.stringValue, !value.isEmpty else { throw DirectoryError.badRequest("'\(name)' is required.") }
            return value
        }
        switch step {
        case ["tap"]:
            let username = try field("username"), passcode = try field("temporaryAccessPass")
            let account = "tap:\(tenant):\(username.lowercased())", now = app.clock.now
            if let refusal = app.throttle.check(account: account, source: request.clientAddress, now: now) {
                app.telemetry.throttled(kind: "temporaryAccessPass")
                return Self.refused(refusal, now: now)
            }
            do {
                let (user, token) = try await flow.signIn(username: username, passcode: passcode, ipAddress: request.clientAddress)
                app.throttle.succeeded(account: account, source: request.clientAddress)
                return .json(["userId": .string(user.id), "userPrincipalName": .optional(user.body["userPrincipalName"]?.stringValue),
                              "enrollmentToken": .string(token), "amr": ["tap"]])
            } catch let failure as PasskeySignIn.Failure {
                if let until = app.throttle.failed(account: account, source: request.clientAddress, now: now) {
                    app.telemetry.lockout(kind: "temporaryAccessPass")
                    try await flow.recordLockout(username: username, until: until, ipAddress: request.clientAddress)
                }
                return .json(["error": "access_denied", "error_codes": [.string(failure.reason)], "error_description": .string(failure.message)],
                             status: 400)
            }
        case ["enroll", "options"]:
            let user = try await flow.enrolling(userID: try field("userId"), token: try field("enrollmentToken"))
            // Registering a passkey is the "register security information" user action, decided with the pass it rests on.
            if let refusal = try await app.conditionalAccess.registration(app: app, tenantID: tenant, user: user, amr: ["tap"], request: request) {
                throw refusal
            }
            return .json(try await PasskeyRegistration(app: app, tenant: tenant).creationOptions(user: user, baseURL: request.baseURL))
        default:
            guard let credential = body["credential"], credential.objectValue != nil else { throw DirectoryError.badRequest("'credential' is required.") }
            let user = try await flow.enrolling(userID: try field("userId"), token: try field("enrollmentToken"))
            if let refusal = try await app.conditionalAccess.registration(app: app, tenantID: tenant, user: user, amr: ["tap"], request: request) {
                throw refusal
            }
            let method = try await flow.enroll(userID: try field("userId"), token: try field("enrollmentToken"), credential: credential,
                                               baseURL: request.baseURL)
            return .json(PasskeyRegistration.render(method), status: 201)
        }
    }

    /// The sign-in page's passkey ceremony: `login/passkey/options` then `login/passkey`. Until sessions exist
    /// (issue 4), a verified sign-in answers with who signed in.
    func passkeySignIn(_ request: APIRequest, tenant: String, finish: Bool) async throws -> APIResponse {
        let ceremony = PasskeySignIn(app: app, tenant: tenant)
        guard finish else {
            let body = request.body.isEmpty ? [:] : try request.jsonObject()
            return .json(try await ceremony.options(loginHint: body["loginHint"]?.stringValue, baseURL: request.baseURL))
        }
        let now = app.clock.now
        if let refusal = app.throttle.check(account: nil, source: request.clientAddress, now: now) {
            app.telemetry.throttled(kind: "passkey")
            return Self.refused(refusal, now: now)
        }
        do {
            let result = try await ceremony.finish(credential: request.body, baseURL: request.baseURL, ipAddress: request.clientAddress)
            let cookie = result.cookie
            var answer: [String: JSONValue] = [
                "userId": .string(result.user.id), "userPrincipalName": .optional(result.user.body["userPrincipalName"]?.stringValue),
                "amr": ["fido", "mfa"], "passkeyProfile": .optional(result.profileID)]
            // Back to the page that sent the browser here: only ever this tenant's authorize or device login path, or
            // its admin center.
            if let next = request.query.first(where: { $0.name == "continue" })?.value,
               next.hasPrefix("/\(request.segments[0])/oauth2/v2.0/authorize?") || next.hasPrefix("/\(request.segments[0])/devicelogin")
                || next.hasPrefix("/admin/\(tenant)/") || ExternalSignIn.isContinuation(next),
               !next.contains("//"), !next.contains("\\") {
                answer["redirect"] = .string(next)
            }
            return .json(.object(answer), headers: [("Set-Cookie", cookie), ("Cache-Control", "no-store")])
        } catch let failure as PasskeySignIn.Failure {
            app.throttle.failed(account: nil, source: request.clientAddress, now: now)
            return .json(["error": "access_denied", "error_codes": [.string(failure.reason)], "error_description": .string(failure.message)],
                         status: 400)
        }
    }

    /// The sign-in page's answer to an attempt refused by smart lockout (AADSTS50053) or per-source throttling (429),
    /// with `Retry-After`.
    static func refused(_ refusal: SignInThrottle.Refusal, now: Date) -> APIResponse {
        let retry = refusal.retryAfter(now: now)
        switch refusal {
        case .lockedOut:
            return .json(["error": "access_denied", "error_codes": ["account.locked", "AADSTS50053"],
                          "error_description": .string("Your account is temporarily locked to prevent unauthorized use. Try again in \(retry) seconds.")],
                         status: 400, headers: [("Retry-After", String(retry))])
        case .throttled:
            return .json(["error": "temporarily_unavailable", "error_codes": ["throttled"],
                          "error_description": .string("Too many failed attempts from this address. Try again in \(retry) seconds.")],
                         status: 429, headers: [("Retry-After", String(retry))])
        }
    }

    func discovery(tenant: TenantRecord, base: String) -> JSONValue {
        let root = "\(base)/\(tenant.id)"
        return [
            "issuer": .string(issuer(tenant: tenant.id, base: base)),
            "token_endpoint": .string("\(root)/oauth2/v2.0/token"),
            "authorization_endpoint": .string("\(root)/oauth2/v2.0/authorize"),
            "device_authorization_endpoint": .string("\(root)/oauth2/v2.0/devicecode"),
            "end_session_endpoint": .string("\(root)/oauth2/v2.0/logout"),
            "jwks_uri": .string("\(root)/discovery/v2.0/keys"),
            "userinfo_endpoint": .string("\(base)/oidc/userinfo"),
            // What works, no more: public clients (SPA and mobile redirect URIs, the device code flow) authenticate with
            // nothing; client_secret_jwt is not implemented. The jwt-bearer grant is only a joined device's sign-in.
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "private_key_jwt", "none"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256", "PS256"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "response_types_supported": ["code", "id_token", "code id_token"],
            "grant_types_supported": ["authorization_code", "implicit", "refresh_token", "client_credentials",
                                      "urn:ietf:params:oauth:grant-type:device_code"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claim_types_supported": ["normal"],
            "claims_parameter_supported": true,
            // What ID tokens and userinfo carry (access tokens' claims are the resource's business).
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "auth_time", "nonce", "acr", "amr", "sid", "c_hash", "at_hash", "ver",
                                 "name", "given_name", "family_name", "preferred_username", "oid", "tid", "email", "idp"],
            "request_uri_parameter_supported": false,
            "request_parameter_supported": true,
            "request_object_signing_alg_values_supported": ["RS256", "PS256"],
            "prompt_values_supported": .strings(AuthorizeParameters.supportedPrompts),
            "display_values_supported": ["page", "popup"],
            "ui_locales_supported": ["en"],
            "tenant_region_scope": nil,
            "cloud_instance_name": .string(URL(string: base)?.host ?? "localhost"),
            "http_logout_supported": true,
            // Front-channel: iframes to `web.logoutUrl` with `iss` and `sid`; back-channel: logout tokens to
            // `web.backchannelLogoutUrl` (Logout.swift, BackChannelLogout.swift).
            "frontchannel_logout_supported": true,
            "frontchannel_logout_session_supported": true,
            "backchannel_logout_supported": true,
            "backchannel_logout_session_supported": true,
        ]
    }
}
