import Foundation
import TesseraCore
import WebAuthn

/// The consent prompt of an invitation redeemed through another deployment's OpenID Connect provider: the callback
/// shows it instead of redeeming, with the checked identity sealed in the form (MACed with the deployment key, ten
/// minutes) and bound to the browser that started the round trip (its binding cookie stays until the answer).
/// `POST /{tenant}/b2b/oidc/consent` redeems on Accept and refuses on Cancel.
extension FederatedSignIn {
    /// What the prompt's answer redeems: the invitation, the provider's user, and the browser's binding.
    struct PendingRedemption: Sendable, Hashable {
        var invitationID: String
        var issuer: String
        var subject: String
        var tenantID: String?
        var binding: String
        var expires: Int64

        var json: JSONValue {
            ["i": .string(invitationID), "iss": .string(issuer), "sub": .string(subject), "tid": .optional(tenantID), "b": .string(binding),
             "x": .int(expires)]
        }

        init(invitationID: String, issuer: String, subject: String, tenantID: String?, binding: String, expires: Int64) {
            (self.invitationID, self.issuer, self.subject, self.tenantID, self.binding, self.expires) = (invitationID, issuer, subject, tenantID, binding, expires)
        }

        init?(json: JSONValue) {
            guard let invitation = json["i"]?.stringValue, let issuer = json["iss"]?.stringValue, let subject = json["sub"]?.stringValue,
                  let binding = json["b"]?.stringValue, let expires = json["x"]?.intValue else { return nil }
            self.init(invitationID: invitation, issuer: issuer, subject: subject, tenantID: json["tid"]?.stringValue, binding: binding, expires: expires)
        }
    }

    var redemptionPurpose: String { "b2b-oidc-redemption:\(tenant.id)" }

    func seal(_ redemption: PendingRedemption) -> String { seal(redemption.json, purpose: redemptionPurpose) }

    func openRedemption(_ encoded: String) -> PendingRedemption? {
        open(encoded, purpose: redemptionPurpose).flatMap(PendingRedemption.init(json:))
    }

    /// The `Set-Cookie` value that ends the browser's binding.
    var clearBinding: (String, String) { ("Set-Cookie", "\(cookieName)=; Path=/\(tenant.id)/b2b/; HttpOnly; SameSite=Lax; Max-Age=0") }

    /// `POST /{tenant}/b2b/oidc/consent`: the answer to the prompt, from the browser the round trip started in.
    func consent() async throws -> APIResponse {
        let form = try ConsentForm(request).fields
        guard let sealed = form["redemption"], let redemption = openRedemption(sealed),
              redemption.expires >= Int64(app.clock.now.timeIntervalSince1970) else {
            return refusal(FederationFailure(50000, "This sign-in is not valid any more. Start it again from the invitation."))
        }
        guard let binding = cookie(cookieName), constantTimeEquals(Array(Self.digest(binding).utf8), Array(redemption.binding.utf8)) else {
            return refusal(FederationFailure(50000, "This sign-in was started in another browser. Start it again from the invitation."))
        }
        let accepted = try ExternalUserConsent(app: app, tenant: tenant).answer(request, session: redemption.binding, subject: redemption.invitationID).accepted
        guard let invitation = try await app.directory.invitation(tenant: tenant.id, id: redemption.invitationID) else {
            return refusal(FederationFailure(90072, "This invitation is not valid for \(tenant.name)."))
        }
        var done = accepted
            ? try await complete(invitation, identity: FederatedIDToken(issuer: redemption.issuer, subject: redemption.subject, tenantID: redemption.tenantID,
                                                                        addresses: [], name: nil, amr: []))
            : refusal(FederationFailure(65004, "You declined the permissions \(tenant.name) asked for; the invitation was not redeemed."))
        done.headers.append(clearBinding)
        return done
    }
}
