import Foundation
import TesseraCore

/// B2B direct connect between tenants of this deployment: a user of tenant A reaches an application of tenant B with
/// A's sign-in alone, and B issues the tokens, without any object for the user in B (Entra: "no presence in your
/// directory"; single sign-on with home credentials, when both organizations enabled it).
///
/// How it runs: `/authorize` of B with a `login_hint` of A goes through `/{B}/b2b/signin` (home realm discovery and the
/// home session, as for a guest). A user with no guest in B comes back to `/authorize` marked `x_direct_connect=A`, and
/// there A's own session (its cookie, checked as A checks it) is the sign-in: no session, user or link is written in B.
/// A user who has a guest in B is a B2B collaboration user instead, signed in as that guest.
///
/// What decides, each time (at `/authorize`, and again when the code is redeemed): tenant restrictions v2 for A's
/// account, when the request carries a restricting tenant's header; B's `b2bDirectConnectInbound` for A and A's
/// `b2bDirectConnectOutbound` for B, for the user, its groups in A and the application; then B's Conditional
/// Access, which sees a `b2bDirectConnectUser` of A with no groups or roles in B, whose home methods count only when B
/// trusts A's MFA (`inboundTrust.isMfaAccepted`), whose device of A counts only for the claims B's `inboundTrust`
/// accepts (compliant, hybrid joined), and whose session controls (sign-in frequency, persistent browser)
/// do not apply, as Entra documents for direct connect users. The scopes are those B granted for everyone: a user
/// without an object in B has no consent of its own there. No refresh token is issued: the sign-in is decided again
/// with the home session at the next `/authorize` (Entra's direct connect tokens last an hour).
struct DirectConnect {
    let app: TesseraApp
    /// The resource tenant.
    let tenant: TenantRecord

    /// The `/authorize` parameter that names the home tenant whose session signs the user in by direct connect.
    static let marker = "x_direct_connect"

    /// Why a direct connect sign-in is refused: Entra's AADSTS number and the reason, which names no policy.
    struct Refusal: Error, Equatable {
        let code: Int
        let reason: String
    }

    /// Both tenants' settings for `homeUserID` of `home` reaching `clientID` here: the resource tenant's inbound
    /// settings first (AADSTS500213, or AADSTS50020 when it lets none of the home tenant's users in, since then the
    /// user is simply not known here), then the home tenant's outbound ones (AADSTS500212). Nil when both allow.
    func refusal(home: String, homeUserID: String, clientID: String?) async throws -> Refusal? {
        let directory = app.directory, resource = tenant.id
        let groups = Set(try await app.store.read { tx in try await directory.transitiveGroups(tenant: home, of: homeUserID, tx: tx) })
        let inbound = try await directory.crossTenantAccess(tenant: resource, partner: home)
        switch inbound.b2bDirectConnect(inbound: true, userID: homeUserID, groupIDs: groups, applicationID: clientID) {
        case .notEstablished?:
            return Refusal(code: 50020, reason: "Your account does not exist in \(tenant.name) and cannot access its applications. Ask for an invitation, and redeem it, first.")
        case .user(let reason)?, .application(let reason)?:
            return Refusal(code: 500213, reason: reason)
        case nil:
            break
        }
        let outbound = try await directory.crossTenantAccess(tenant: home, partner: resource)
        switch outbound.b2bDirectConnect(inbound: false, userID: homeUserID, groupIDs: groups, applicationID: clientID) {
        case .user(let reason)?, .application(let reason)?: return Refusal(code: 500212, reason: reason)
        case .notEstablished?, nil: return nil
        }
    }

    /// The authorization request `continuation` (this tenant's `/authorize`), marked as a direct connect sign-in with
    /// `home`'s session.
    static func marked(_ continuation: String, home: String) -> String {
        let parts = continuation.split(separator: "?", maxSplits: 1)
        let query = parts.count == 2 ? APIRequest.parseForm(String(parts[1])).filter { $0.name != marker } : []
        return String(parts[0]) + "?" + AuthorizeEndpoint.encode(query + [(marker, home)])
    }

    /// The application an authorization request (`continuation`) is for, to decide direct connect for it.
    static func clientID(of continuation: String) -> String? {
        guard let query = continuation.split(separator: "?", maxSplits: 1).dropFirst().first else { return nil }
        return APIRequest.parseForm(String(query)).first { $0.name == "client_id" }?.value
    }

    /// The claims a direct connect user's tokens add to B's: `idp`, the home tenant's issuer, and `acct` 1 (the user is
    /// not a member of this tenant). `oid` is the home object id and `tid` this tenant, as the caller sets them.
    func claims(home: String, base: String) -> [String: JSONValue] {
        ["idp": .string(IdentityPlatform(app: app).issuer(tenant: home, base: base)), "acct": 1]
    }

    /// The home user of a direct connect authorization code being redeemed, while it may still sign in at home and
    /// both tenants still allow it; nil when the user is gone or disabled.
    func homeUser(for code: AuthorizationCode, home: String) async throws -> StoredObject? {
        guard let user = try await app.activeUser(tenant: home, id: code.userID) else { return nil }
        if let refused = try await refusal(home: home, homeUserID: user.id, clientID: code.clientID) {
            throw OAuthError(error: "invalid_grant", code: refused.code, description: refused.reason)
        }
        return user
    }
}
