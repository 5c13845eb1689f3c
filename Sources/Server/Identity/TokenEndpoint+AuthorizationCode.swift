import Crypto
import Foundation
import TesseraCore
import WebAuthn

/// The `authorization_code` grant: the code checked (MAC, expiry, client, redirect URI, PKCE), spent once while the
/// sign-in session it was issued from still lives, then an access token for the user (delegated: `scp`) and, with
/// `openid`, an ID token with how they signed in.
extension TokenEndpoint {
    func redeemAuthorizationCode(_ form: [String: String]) async throws -> APIResponse {
        func invalidGrant(_ code: Int, _ description: String) -> OAuthError { OAuthError(error: "invalid_grant", code: code, description: description) }
        guard let text = form["code"], !text.isEmpty else {
            throw OAuthError.invalidRequest(900144, "The request body must contain the following parameter: 'code'.")
        }
        guard var decoded = AuthorizationCode.decode(text, app: app), decoded.tenant == tenant.id else {
            throw invalidGrant(70008, "The provided authorization code is invalid or has expired.")
        }
        let digest = Secrets.fingerprint(text)
        // The grant this code begins, named in every access token issued from it (and from its refresh tokens).
        decoded.grantID = RevokedGrants.grantID(codeDigest: digest, app: app)
        let code = decoded
        if let clientID = form["client_id"], clientID != code.clientID {
            throw invalidGrant(70002, "The authorization code was issued to another client.")
        }
        guard form["redirect_uri"] == code.redirectURI else {
            throw invalidGrant(70009, "The redirect_uri does not match the one the authorization code was issued for.")
        }
        let tenantID = tenant.id
        guard let application = try await app.application(tenant: tenantID, appID: code.clientID),
              let kind = AuthorizeEndpoint.redirectKind(code.redirectURI, application: application) else {
            throw invalidGrant(70002, "The client is no longer registered for this redirect URI.")
        }
        if kind == "web" {
            // Confidential clients prove themselves as in the client credentials grant.
            try await authenticateHolder(form, holder: code.clientID, code: 70002, grant: "authorization code")
        } else if form["client_secret"] != nil || form["client_assertion"] != nil {
            throw OAuthError.invalidRequest(700025, "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.")
        }
        if let challenge = code.codeChallenge {
            guard let verifier = form["code_verifier"], (43...128).contains(verifier.count) else {
                throw invalidGrant(501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.")
            }
            let computed = WebAuthn.Base64URL.encode(Array(SHA256.hash(data: Array(verifier.utf8))))
            guard WebAuthn.constantTimeEquals(Array(computed.utf8), Array(challenge.utf8)) else {
                throw invalidGrant(501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.")
            }
        } else if form["code_verifier"] != nil {
            // A verifier for a code issued without a challenge is a downgrade attempt (RFC 9700 §2.1.1).
            throw invalidGrant(501481, "A code_verifier was sent for an authorization code that was issued without a code_challenge.")
        }
        let now = app.clock.now
        // A B2B direct connect user is its home tenant's user, while both tenants still allow it.
        let found = if let home = code.homeTenant { try await DirectConnect(app: app, tenant: tenant).homeUser(for: code, home: home) }
                    else { try await app.activeSignInUser(tenant: tenantID, id: code.userID) }
        guard let user = found else {
            throw invalidGrant(50057, "The user account is disabled or no longer exists.")
        }
        // Revocation stops what was issued before it (RFC 9700 §4.14.2, logout at the authorization server): a code of a
        // sign-in older than the user's `revokeSignInSessions` is refused here (the user as the sign-in path keeps it: at
        // once on this node, within `TenantCache.maxAge` on another), and its session's record, which a sign-out or the
        // revocation deleted, is asked for by the spend itself (below), from the database, on every node at once.
        if SignInSessions.revoked(authTime: code.authTime, user: user) {
            throw Self.revokedGrant
        }
        try await TenantRestrictionsGate(app: app, tenant: tenant, request: request)
            .token(userID: code.userID, clientID: code.clientID, homeTenant: code.homeTenant)
        // One commit, one statement: the code spent and, with offline_access, its refresh token issued, only while the
        // session the code came from (the home tenant's, for a B2B direct connect user) is still there and unexpired.
        let tokens = RefreshTokens(app: app), confidential = kind == "web"
        let wantsRefresh = code.scope.split(separator: " ").contains("offline_access") && code.homeTenant == nil
        let issued = wantsRefresh ? try tokens.make(tenant: tenantID, code: code, confidential: confidential, codeDigest: digest) : nil
        let rows = issued.map { [$0.row] } ?? []
        let outcome = try await app.store.write { tx in
            try await tx.spend(tenant: tenantID, key: "code:" + digest,
                               expiresAt: Timestamp.format(Date(timeIntervalSince1970: TimeInterval(code.expires))),
                               now: Timestamp.format(now), inserting: rows,
                               if: .live(tenant: code.homeTenant ?? tenantID, kind: SignInSessionRecord.kind, id: code.sessionID))
        }
        let refresh = issued?.token
        if outcome == .objectChanged {
            // Nothing was written, not even the code spent.
            throw invalidGrant(50133, "The sign-in session the authorization code was issued from has ended (signed out, revoked or expired). Sign in again.")
        }
        guard outcome == .spent else {
            // A code presented twice was stolen or leaked: what it was exchanged for is revoked too (RFC 6749 §4.1.2), in
            // one commit: its refresh tokens deleted, and its access tokens refused from now on at Graph and userinfo.
            // Only this grant: the user's other apps and sign-ins, even of the same browser session, are untouched.
            let grantID = code.grantID ?? ""
            try await app.store.write { tx in
                try await tokens.revokeIssued(tenant: tenantID, codeDigest: digest, tx: tx)
                try await RevokedGrants.revoke(tenant: tenantID, grantID: grantID, now: now, tx: tx)
            }
            app.revokedGrants.revoked(tenant: tenantID)
            throw invalidGrant(54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code.")
        }
        return try await userTokens(code: code, user: user, application: application, clientInfo: form["client_info"] == "1", refreshToken: refresh, grant: "authorization_code")
    }

    /// The `refresh_token` grant: the token spent and replaced (rotation), the user re-checked.
    func redeemRefreshToken(_ form: [String: String]) async throws -> APIResponse {
        guard let token = form["refresh_token"], !token.isEmpty else {
            throw OAuthError.invalidRequest(900144, "The request body must contain the following parameter: 'refresh_token'.")
        }
        let tokens = RefreshTokens(app: app)
        var decision: ConditionalAccessDecision?
        var contexts: Set<String> = []
        // A confidential client proves itself before its token is spent: someone who only holds the token must not be
        // able to end the session by presenting it without the client's credentials, nor another client with its own.
        if let holder = try await tokens.peek(tenant: tenant.id, token: token) {
            if holder.confidential {
                try await authenticateHolder(form, holder: holder.code.clientID, code: 70000, grant: "refresh token")
            }
            // Conditional Access decides before the token is spent: a refusal leaves it usable once the user complies.
            // A claims challenge passed back (MSAL's claims_challenge) asks for authentication contexts on top of those the
            // session already satisfied.
            contexts = Set(holder.code.acrs).union(try ConditionalAccessGate.authenticationContexts(claims: form["claims"]))
            try await TenantRestrictionsGate(app: app, tenant: tenant, request: request).token(userID: holder.code.userID, clientID: holder.code.clientID)
            // An external user's refresh is B2B collaboration again: settings changed since the sign-in apply now.
            if let reason = try await CrossTenantSignIn(app: app).refusal(tenant: tenant.id, userID: holder.code.userID, clientID: holder.code.clientID) {
                throw OAuthError(error: "invalid_grant", code: 500213, description: reason)
            }
            decision = try await requireConditionalAccess(refreshing: holder.code, authenticationContexts: contexts)
        }
        let (code, next) = try await tokens.rotate(tenant: tenant.id, token: token, clientID: form["client_id"], acrs: contexts.sorted())
        let (user, application) = try await stillSignedIn(code)
        let response = try await userTokens(code: code, user: user, application: application, clientInfo: form["client_info"] == "1",
                                            refreshToken: next, grant: "refresh_token")
        await SignInLog(app: app, tenant: tenant.id).record(
            SignInEvent(kind: .nonInteractiveUser, principal: user, appID: code.clientID,
                        appDisplayName: application.body["displayName"]?.stringValue, resourceID: GraphPermissions.graphAppId,
                        resourceDisplayName: "Microsoft Graph", amr: code.amr, authTime: code.authTime, decision: decision,
                        clientAppUsed: "Mobile Apps and Desktop clients"),
            request: request)
        return response
    }

    /// The device code grant: pending until the user approves on the device login page, then tokens, once.
    func redeemDeviceCode(_ form: [String: String]) async throws -> APIResponse {
        guard let deviceCode = form["device_code"] ?? form["code"], !deviceCode.isEmpty else {
            throw OAuthError.invalidRequest(900144, "The request body must contain the following parameter: 'device_code'.")
        }
        // The device code flow is a public-client flow: an app that does not allow those (Entra's "Allow public client
        // flows", isFallbackPublicClient) is a confidential client and authenticates as one (RFC 6749 §3.2.1).
        let confidential: Bool
        if let clientID = form["client_id"], let application = try await app.application(tenant: tenant.id, appID: clientID) {
            confidential = application.body["isFallbackPublicClient"]?.boolValue != true
        } else {
            confidential = true
        }
        if confidential { _ = try await authenticateClient(form) }
        let code = try await DeviceCodes(app: app).redeem(tenant: tenant.id, deviceCode: deviceCode, clientID: form["client_id"])
        let (user, application) = try await stillSignedIn(code)
        let refresh = code.scope.split(separator: " ").contains("offline_access")
            ? try await RefreshTokens(app: app).issue(tenant: tenant.id, code: code, confidential: confidential) : nil
        return try await userTokens(code: code, user: user, application: application, clientInfo: form["client_info"] == "1", refreshToken: refresh, grant: "device_code")
    }

    /// The user and application a grant was for, if both still exist, the user may still sign in and has not had their
    /// sign-in sessions revoked since the grant's sign-in.
    func stillSignedIn(_ code: AuthorizationCode) async throws -> (user: StoredObject, application: StoredObject) {
        guard let user = try await app.activeUser(tenant: tenant.id, id: code.userID),
              let application = try await app.application(tenant: tenant.id, appID: code.clientID)
        else { throw OAuthError(error: "invalid_grant", code: 50057, description: "The user or application no longer exists or is disabled.") }
        // `revokeSignInSessions` deletes the user's refresh tokens and approved device codes; one written by a grant that
        // raced it (spent before the deletion, committed after it) is refused here, from the user read above (no cache).
        if SignInSessions.revoked(authTime: code.authTime, user: user) { throw Self.revokedGrant }
        return (user, application)
    }

    /// A grant whose sign-in is older than the user's `signInSessionsValidFromDateTime` (as Entra's AADSTS50173).
    static let revokedGrant = OAuthError(
        error: "invalid_grant", code: 50173,
        description: "The provided grant has been revoked: the user's sign-in sessions were revoked after this sign-in. Sign in again.")

    /// Access and ID tokens for a signed-in user. The access token's `scp` is what was asked for and is granted to the
    /// client now (consent can be withdrawn between refreshes), never more.
    func userTokens(code: AuthorizationCode, user: StoredObject, application: StoredObject, clientInfo: Bool,
                    refreshToken: String?, grant: String) async throws -> APIResponse {
        let consented = try await Consent(app: app, tenant: tenant).effective(scope: code.scope, clientID: code.clientID, userID: user.id)
        app.telemetry.token(grant: grant)
        let now = Int64(app.clock.now.timeIntervalSince1970)
        let lifetime = Int64(IdentityPlatform.accessTokenLifetime)
        let issuer = IdentityPlatform(app: app).issuer(tenant: tenant.id, base: request.baseURL)
        let scopes = code.scope.split(separator: " ").map(String.init)
        let oidc: Set<String> = ["openid", "profile", "email", "offline_access"]
        // As Entra's Graph tokens: the OpenID Connect scopes asked for (what userinfo may answer) and the consented ones.
        let graphScopes = scopes.filter { oidc.contains($0) && $0 != "offline_access" } + consented
        let upn = user.body["userPrincipalName"]?.stringValue
        let name = user.body["displayName"]?.stringValue
        let header: [String: JSONValue] = ["kid": .string(app.signingKey.kid), "x5t": .string(app.signingKey.kid)]
        // An external user's tokens name its home tenant's issuer (`idp`) and that it is a guest here (`acct`).
        let external = if let home = code.homeTenant { DirectConnect(app: app, tenant: tenant).claims(home: home, base: request.baseURL) }
                       else { try await CrossTenantSignIn(app: app).claims(tenant: tenant.id, user: user, base: request.baseURL) }
        // A governing tenant's administrator: the access token's `wids` are the roles its governance relationship gives
        // here (informative: Graph asks the relationship again at every request).
        var wids: [String: JSONValue] = [:]
        if !external.isEmpty, code.homeTenant == nil, let governed = try await GovernedAccess(app: app).grant(tenant: tenant.id, user: user.id) {
            let own = try await app.directory.directoryRoles(tenant: tenant.id, principal: user.id)
            wids["wids"] = .strings(own.union(governed.roles).sorted())
        }
        // Tessera's own claims: the grant (refused once revoked) and the claims the `claims` parameter asked userinfo for.
        var own: [String: JSONValue] = [:]
        if let grantID = code.grantID { own[RevokedGrants.claim] = .string(grantID) }
        if !code.userinfoClaims.isEmpty { own[UserInfo.requestedClaims] = .strings(code.userinfoClaims) }
        let access = try JWT.sign(claims: [
            "aud": "https://graph.microsoft.com", "iss": .string(issuer), "iat": .int(now), "nbf": .int(now), "exp": .int(now + lifetime),
            "tid": .string(tenant.id), "oid": .string(user.id), "sub": .string(user.id), "idtyp": "user", "ver": "2.0",
            "appid": .string(code.clientID), "azp": .string(code.clientID), "scp": .string(graphScopes.joined(separator: " ")),
            "upn": .optional(upn), "unique_name": .optional(upn), "name": .optional(name), "amr": .strings(code.amr),
            "sid": .string(code.sessionID), "uti": .string(Secrets.randomToken(bytes: 16)),
            "acrs": code.acrs.isEmpty ? nil : .strings(code.acrs),
        ].compactMapValues { $0 }.merging(external) { $1 }.merging(wids) { $1 }.merging(own) { $1 }, header: header, key: app.signingKey.privateKey)
        var body: [String: JSONValue] = [
            "token_type": "Bearer", "scope": .string((consented + scopes.filter { oidc.contains($0) }).joined(separator: " ")), "expires_in": .int(lifetime),
            "ext_expires_in": .int(lifetime), "access_token": .string(access),
        ]
        if scopes.contains("openid") {
            body["id_token"] = .string(try IDToken(app: app, tenant: tenant.id, base: request.baseURL)
                .sign(grant: code, user: user, external: external, accessToken: access))
        }
        if let refreshToken { body["refresh_token"] = .string(refreshToken) }
        if clientInfo {
            // A direct connect user's account is its home tenant's (MSAL's home account id).
            let info = JSONValue.object(["uid": .string(user.id), "utid": .string(code.homeTenant ?? tenant.id)]).serializedBytes
            body["client_info"] = .string(WebAuthn.Base64URL.encode(info))
        }
        return .json(.object(body), headers: [("Cache-Control", "no-store"), ("Pragma", "no-cache")])
    }
}
