import Crypto
import Foundation
import Logging
import TesseraCore
import WebAuthn

/// B2B collaboration with users of another deployment: this tenant (the resource tenant) sends the browser to the
/// OpenID Connect provider that signs in the user's domain (`/identity/identityProviders`), and takes the user back at
/// `GET /{tenant}/b2b/oidc/callback` with an authorization code, which it redeems itself for the provider's ID token.
/// An accepted token (`FederatedIDToken.check`) either redeems the invitation it was started for, linking the guest to
/// (`iss`, `oid`/`sub`), or signs that guest in here: a session of this tenant for its own user, whose tokens this
/// tenant issues with `idp` = the provider's issuer. The home sign-in's `amr` travels with the session; whether it
/// counts is Conditional Access's question (`inboundTrust`, for the ID token's `tid`).
///
/// The round trip is bound to the browser that started it: `state` is MACed with the deployment key and names a
/// random value whose digest is in a cookie (`SameSite=Lax`, this tenant's `/b2b/` only), and carries the `nonce`; the
/// PKCE verifier is derived from the state with the deployment key, so it never leaves this server.
struct FederatedSignIn {
    let app: TesseraApp
    let tenant: TenantRecord
    let request: APIRequest

    /// What the round trip is for.
    enum Purpose: Sendable, Hashable {
        case redeem(invitationID: String)
        case signIn(continuation: String)
    }

    /// The `state` parameter's content.
    struct State: Sendable, Hashable {
        var providerID: String
        var purpose: Purpose
        var nonce: String
        var binding: String
        var expires: Int64

        var json: JSONValue {
            var object: [String: JSONValue] = ["p": .string(providerID), "n": .string(nonce), "b": .string(binding), "x": .int(expires)]
            switch purpose {
            case .redeem(let invitation): object["i"] = .string(invitation)
            case .signIn(let continuation): object["c"] = .string(continuation)
            }
            return .object(object)
        }

        init(providerID: String, purpose: Purpose, nonce: String, binding: String, expires: Int64) {
            (self.providerID, self.purpose, self.nonce, self.binding, self.expires) = (providerID, purpose, nonce, binding, expires)
        }

        init?(json: JSONValue) {
            guard let provider = json["p"]?.stringValue, let nonce = json["n"]?.stringValue, let binding = json["b"]?.stringValue,
                  let expires = json["x"]?.intValue else { return nil }
            if let invitation = json["i"]?.stringValue {
                purpose = .redeem(invitationID: invitation)
            } else if let continuation = json["c"]?.stringValue {
                purpose = .signIn(continuation: continuation)
            } else {
                return nil
            }
            (providerID, self.nonce, self.binding, self.expires) = (provider, nonce, binding, expires)
        }
    }

    /// Ten minutes to sign in at home.
    static let lifetime: Int64 = 600

    var redirectURI: String { "\(request.baseURL)/\(tenant.id)/b2b/oidc/callback" }
    var cookieName: String { "tessera_b2b_\(tenant.id.replacingOccurrences(of: "-", with: ""))" }
    var macPurpose: String { "b2b-oidc-state:\(tenant.id)" }

    /// Sends the browser to `provider`'s authorization endpoint.
    func start(_ provider: OpenIDIdentityProvider, purpose: Purpose, loginHint: String?) async throws -> APIResponse {
        let metadata: OpenIDProviderClient.Metadata
        do {
            metadata = try await OpenIDProviderClient(provider: provider, http: app.outbound).metadata()
        } catch let failure as FederationFailure {
            return refusal(failure)
        }
        let binding = Secrets.randomToken(bytes: 16)
        let state = State(providerID: provider.id, purpose: purpose, nonce: Secrets.randomToken(bytes: 16),
                          binding: Self.digest(binding), expires: Int64(app.clock.now.timeIntervalSince1970) + Self.lifetime)
        let encoded = seal(state)
        var params = [("client_id", provider.clientID), ("response_type", "code"), ("redirect_uri", redirectURI),
                      ("scope", provider.scope), ("response_mode", "query"), ("state", encoded), ("nonce", state.nonce),
                      ("code_challenge", Self.challenge(verifier(encoded))), ("code_challenge_method", "S256")]
        if let loginHint { params.append(("login_hint", loginHint)) }
        var location = metadata.authorizationEndpoint.absoluteString
        location += (location.contains("?") ? "&" : "?") + AuthorizeEndpoint.encode(params)
        let secure = request.baseURL.hasPrefix("https:") ? "; Secure" : ""
        let cookie = "\(cookieName)=\(binding); Path=/\(tenant.id)/b2b/; HttpOnly; SameSite=Lax; Max-Age=\(Self.lifetime)\(secure)"
        return APIResponse(status: 302, headers: [("Location", location), ("Set-Cookie", cookie), ("Cache-Control", "no-store")])
    }

    /// The provider sends the browser back here with a code (or an error) and the state.
    func callback() async throws -> APIResponse {
        guard let encoded = query("state"), let state = open(encoded) else {
            return refusal(FederationFailure(50000, "This sign-in is not valid any more. Start it again from the application."))
        }
        guard state.expires >= Int64(app.clock.now.timeIntervalSince1970) else {
            return refusal(FederationFailure(50000, "This sign-in took too long. Start it again from the application."))
        }
        // The browser that started it, and no other (a code injected into another browser's sign-in is refused).
        guard let binding = cookie(cookieName), constantTimeEquals(Array(Self.digest(binding).utf8), Array(state.binding.utf8)) else {
            return refusal(FederationFailure(50000, "This sign-in was started in another browser. Start it again from the application."))
        }
        if let error = query("error") {
            return refusal(FederationFailure(50107, "The identity provider did not sign you in (\(error)): \(query("error_description") ?? "")"))
        }
        guard let code = query("code") else { return refusal(FederationFailure(50000, "The identity provider sent no authorization code.")) }
        do {
            let provider = try await app.directory.identityProvider(tenant: tenant.id, id: state.providerID)
            let client = OpenIDProviderClient(provider: provider, http: app.outbound)
            guard let secret = try await app.directory.identityProviderClientSecret(tenant: tenant.id, id: provider.id, sealing: app.keySealing) else {
                throw FederationFailure(50107, "The identity provider has no client secret: an administrator must give it again.")
            }
            let metadata = try await client.metadata()
            let token = try await client.idToken(code: code, redirectURI: redirectURI, verifier: verifier(encoded), clientSecret: secret, metadata)
            let keys = try await client.keys(metadata)
            switch FederatedIDToken.check(token, keys: keys, issuer: provider.issuer, clientID: provider.clientID, nonce: state.nonce,
                                          now: app.clock.now) {
            case .refused(let reason): return refusal(FederationFailure(50107, reason))
            case .accepted(let identity):
                var done: APIResponse
                switch state.purpose {
                case .redeem(let invitation): done = try await redeem(invitation, identity: identity, state: state)
                case .signIn(let continuation): done = try await signIn(identity, continuation: continuation)
                }
                // A consent prompt keeps the browser's binding: its answer comes from the same browser.
                if done.status != 200 { done.headers.append(clearBinding) }
                return done
            }
        } catch let failure as FederationFailure {
            app.logger.notice("B2B sign-in through an identity provider refused: \(failure.description)")
            return refusal(failure)
        } catch let error as DirectoryError where error.code == .notFound {
            return refusal(FederationFailure(50000, "The identity provider this sign-in started with is no longer configured."))
        }
    }

    /// The invitation redeemed by the provider's user, when it is the invited address, after the consent prompt.
    func redeem(_ invitationID: String, identity: FederatedIDToken, state: State) async throws -> APIResponse {
        guard let invitation = try await app.directory.invitation(tenant: tenant.id, id: invitationID),
              invitation.identityProviderID != nil else {
            return refusal(FederationFailure(90072, "This invitation is not valid for \(tenant.name)."))
        }
        guard identity.addresses.contains(invitation.email.lowercased()) else {
            return refusal(FederationFailure(90072, "This invitation was sent to \(invitation.email); the identity provider signed you in as someone else."))
        }
        if let refused = try await collaborationRefusal(invitation, identity: identity) { return refused }
        guard invitation.status != Invitation.completed else { return try await complete(invitation, identity: identity) }
        let binding = state.binding
        // The consent prompt: the other deployment's automatic redemption settings are not known here, so it is always shown.
        let redemption = PendingRedemption(invitationID: invitation.id, issuer: identity.issuer, subject: identity.subject,
                                           tenantID: identity.tenantID, binding: binding,
                                           expires: Int64(app.clock.now.timeIntervalSince1970) + Self.lifetime)
        return ExternalConsentPage.render(tenant: tenant, home: identity.issuer, account: invitation.email, action: "/\(tenant.id)/b2b/oidc/consent",
                                          fields: [("redemption", seal(redemption))],
                                          token: ExternalUserConsent(app: app, tenant: tenant).token(session: binding, subject: invitation.id),
                                          formAction: "'self' \(ConsentPage.origin(of: invitation.redirectURL))")
    }

    /// The refusal when this tenant's inbound B2B collaboration settings do not let the provider's user in.
    func collaborationRefusal(_ invitation: Invitation, identity: FederatedIDToken) async throws -> APIResponse? {
        let link = ExternalUserLink(guestID: invitation.userID, homeTenantID: identity.tenantID ?? "", homeUserID: identity.subject,
                                    invitationID: invitation.id, redeemedDateTime: "", issuer: identity.issuer)
        guard case .blocked(let reason) = try await CrossTenantSignIn(app: app).b2bCollaboration(resource: tenant.id, link: link, clientID: nil)
        else { return nil }
        return refusal(FederationFailure(500213, reason))
    }

    /// Redeems `invitation` for the provider's user (accepted, or redeemed already), while B2B collaboration allows it.
    func complete(_ invitation: Invitation, identity: FederatedIDToken) async throws -> APIResponse {
        if let refused = try await collaborationRefusal(invitation, identity: identity) { return refused }
        do {
            let actor = Actor(kind: .user, id: invitation.userID, displayName: invitation.displayName, userPrincipalName: invitation.email)
            try await app.directory.redeem(tenant: tenant.id, invitation: invitation.id, issuer: identity.issuer, subject: identity.subject,
                                           homeTenantID: identity.tenantID, actor: actor)
        } catch let error as DirectoryError where error.code == .conflict {
            return refusal(FederationFailure(90072, error.message))
        }
        return APIResponse(status: 302, headers: [("Location", invitation.redirectURL), ("Cache-Control", "no-store")])
    }

    /// Signs the provider's user in to this tenant as the guest it redeemed an invitation as, then back to `/authorize`.
    func signIn(_ identity: FederatedIDToken, continuation: String) async throws -> APIResponse {
        guard let guestID = try await app.directory.externalUser(tenant: tenant.id, issuer: identity.issuer, subject: identity.subject),
              try await app.activeUser(tenant: tenant.id, id: guestID) != nil,
              let link = try await app.directory.externalUserLink(tenant: tenant.id, userID: guestID) else {
            return refusal(FederationFailure(50020, "Your account from \(identity.issuer) does not exist in \(tenant.name) and cannot access its applications. Ask for an invitation, and redeem it, first."))
        }
        if case .blocked(let reason) = try await CrossTenantSignIn(app: app).b2bCollaboration(resource: tenant.id, link: link, clientID: nil) {
            return refusal(FederationFailure(500213, reason))
        }
        let (_, cookie) = try await SignInSessions(app: app).start(tenant: tenant.id, userID: guestID, amr: identity.amr, baseURL: request.baseURL)
        return APIResponse(status: 302, headers: [("Location", continuation), ("Set-Cookie", cookie), ("Cache-Control", "no-store")])
    }

    // MARK: The state, its MAC and what is derived from it

    func seal(_ state: State) -> String { seal(state.json, purpose: macPurpose) }

    func open(_ encoded: String) -> State? { open(encoded, purpose: macPurpose).flatMap(State.init(json:)) }

    /// `json` and its MAC for `purpose` under this deployment's key, as one URL-safe string.
    func seal(_ json: JSONValue, purpose: String) -> String {
        let body = Array(json.serialized.utf8)
        return WebAuthn.Base64URL.encode(body) + "." + WebAuthn.Base64URL.encode(app.passkeyChallenges.mac(purpose, body))
    }

    /// What ``seal(_:purpose:)`` sealed for `purpose`, or nil when the string is too long, malformed or its MAC does not
    /// match (compared in constant time).
    func open(_ encoded: String, purpose: String) -> JSONValue? {
        let parts = encoded.split(separator: ".")
        guard encoded.utf8.count <= 4096, parts.count == 2, let body = WebAuthn.Base64URL.decode(parts[0]),
              let tag = WebAuthn.Base64URL.decode(parts[1]), constantTimeEquals(tag, app.passkeyChallenges.mac(purpose, body)) else { return nil }
        return try? JSONParser.parse(body)
    }

    /// The PKCE verifier for a state: 43 characters only this deployment can compute.
    func verifier(_ encoded: String) -> String {
        let bytes = Array(encoded.utf8)
        return WebAuthn.Base64URL.encode(app.passkeyChallenges.mac("b2b-oidc-pkce-1:\(tenant.id)", bytes)
            + app.passkeyChallenges.mac("b2b-oidc-pkce-2:\(tenant.id)", bytes))
    }

    static func challenge(_ verifier: String) -> String { WebAuthn.Base64URL.encode(Array(SHA256.hash(data: Array(verifier.utf8)))) }
    static func digest(_ binding: String) -> String { WebAuthn.Base64URL.encode(Array(SHA256.hash(data: Array(binding.utf8)))) }

    func query(_ name: String) -> String? { request.query.first { $0.name == name }?.value }

    func cookie(_ name: String) -> String? {
        for part in (request.header("cookie") ?? "").split(separator: ";") {
            let pair = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if pair.count == 2, pair[0] == name { return String(pair[1]) }
        }
        return nil
    }

    func refusal(_ failure: FederationFailure) -> APIResponse {
        ExternalSignIn(app: app, tenant: tenant, request: request).refusal(failure.code, failure.description, status: 403)
    }
}
