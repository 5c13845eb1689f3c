import Crypto
import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting
import WebAuthn

@Suite("B2B collaboration between tenants of one deployment: invitations, redemption at home, the guest's sign-in and tokens")
struct CrossTenantB2BTests {
    /// Contoso (the harness's tenant) invites Alice of Fabrikam; Contoso has an application Alice signs in to.
    struct World {
        let h: Harness
        let fabrikam: ProvisionedTenant
        let fabrikamToken: String
        let contosoToken: String
        let alice: String
        let appID: String
        var contoso: String { h.tenant.tenantId }

        /// A browser signed in at Fabrikam as `user` (Alice by default): its cookie header.
        func homeCookie(_ user: String? = nil) async throws -> String {
            let (_, setCookie) = try await SignInSessions(app: h.app).start(tenant: fabrikam.tenantId, userID: user ?? alice, amr: ["fido", "mfa"],
                                                                             baseURL: Harness.base)
            return String(setCookie.split(separator: ";")[0])
        }

        func invite(_ email: String = "alice@fabrikam.test", type: String = "Guest") async -> APIResponse {
            await h.graph("POST", "invitations", token: contosoToken, json: [
                "invitedUserEmailAddress": .string(email), "inviteRedirectUrl": "https://myapps.contoso.test/", "sendInvitationMessage": false,
                "invitedUserType": .string(type)])
        }

        /// Follows a redirect inside the deployment with `cookie`.
        func follow(_ location: String, cookie: String?) async -> APIResponse {
            let url = URL(string: location.hasPrefix("/") ? Harness.base + location : location)!
            let query = URLComponents(url: url, resolvingAgainstBaseURL: false)?.queryItems?.map { (name: $0.name, value: $0.value ?? "") } ?? []
            return await h.send("GET", url.path, query: query, headers: cookie.map { ["cookie": $0] } ?? [:])
        }

        /// Redeems `invitation`'s URL as Alice (signed in at Fabrikam), accepting the consent prompt when it is shown.
        func redeem(_ invitation: APIResponse, cookie: String? = nil) async throws -> APIResponse {
            let url = try #require(invitation.json["inviteRedeemUrl"]?.stringValue)
            let home = if let cookie { cookie } else { try await homeCookie() }
            let shown = await follow(url, cookie: home)
            guard shown.status == 200, shown.text.contains("id=\"accept\"") else { return shown }
            return try await answer(shown, at: url, cookie: home, decision: "accept")
        }

        /// Posts `decision` to the consent prompt `page` shown at `url` (a path or an absolute URL of the deployment).
        func answer(_ page: APIResponse, at url: String, cookie: String, decision: String, token: String? = nil) async throws -> APIResponse {
            let shown = try #require(page.text.firstMatch(of: /name="consent_token" value="([^"]+)"/)?.1)
            let target = try #require(URL(string: url.hasPrefix("/") ? Harness.base + url : url))
            let query = URLComponents(url: target, resolvingAgainstBaseURL: false)?.queryItems?.map { (name: $0.name, value: $0.value ?? "") } ?? []
            var fields = [("consent_token", token ?? String(shown)), ("decision", decision)]
            if let continuation = page.text.firstMatch(of: /name="continue" value="([^"]+)"/)?.1 {
                fields.append(("continue", String(continuation).replacingOccurrences(of: "&amp;", with: "&")))
            }
            return await h.send("POST", target.path, query: query, headers: ["cookie": cookie, "content-type": "application/x-www-form-urlencoded",
                                                                            "origin": Harness.base], body: Array(AuthorizeEndpoint.encode(fields).utf8))
        }

        static let verifier = String(repeating: "v", count: 43)
        static var challenge: String { WebAuthn.Base64URL.encode(Array(SHA256.hash(data: Array(verifier.utf8)))) }

        /// `/authorize` at Contoso for the SPA with Alice's home address as the hint; returns the final response after
        /// following Tessera's own redirects with Alice's Fabrikam session (and the Contoso session it starts).
        func signIn(cookie: String? = nil, scope: String = "openid profile") async throws -> APIResponse {
            let params = [("client_id", appID), ("redirect_uri", AuthorizeTests.spa), ("response_type", "code"), ("scope", scope),
                          ("code_challenge", Self.challenge), ("code_challenge_method", "S256"), ("login_hint", "alice@fabrikam.test")]
            var response = await AuthorizeTests.authorize(h, params)
            let home = if let cookie { cookie } else { try await homeCookie() }
            var cookies = [home]
            for _ in 0..<5 {
                guard response.status == 302, let location = AuthorizeTests.location(response), location.hasPrefix("/") else { return response }
                if let set = response.headers.first(where: { $0.name == "Set-Cookie" })?.value { cookies.append(String(set.split(separator: ";")[0])) }
                response = await follow(location, cookie: cookies.joined(separator: "; "))
            }
            return response
        }

        /// The tokens for a code the SPA got.
        func tokens(_ response: APIResponse) async throws -> JSONValue {
            let location = try #require(AuthorizeTests.location(response))
            let code = try #require(URLComponents(string: location)?.queryItems?.first { $0.name == "code" }?.value)
            let form = AuthorizeEndpoint.encode([("grant_type", "authorization_code"), ("client_id", appID), ("redirect_uri", AuthorizeTests.spa),
                                                 ("code", code), ("code_verifier", Self.verifier)])
            let token = await h.send("POST", "/\(contoso)/oauth2/v2.0/token", headers: ["content-type": "application/x-www-form-urlencoded",
                                                                                        "origin": "https://spa.contoso.test"], body: Array(form.utf8))
            #expect(token.status == 200, "\(token.text)")
            return token.json
        }
    }

    static func world(_ h: Harness) async throws -> World {
        let fabrikam = try await TenantProvisioner(directory: h.app.directory).create(name: "Fabrikam", domain: "fabrikam.test")
        let fabrikamToken = try await h.accessToken(clientId: fabrikam.clientId, secret: fabrikam.clientSecret, tenant: fabrikam.tenantId)
        let alice = await h.graph("POST", "users", token: fabrikamToken, json: [
            "accountEnabled": true, "displayName": "Alice", "mailNickname": "alice", "userPrincipalName": "alice@fabrikam.test",
            "mail": "alice@fabrikam.test", "passwordProfile": ["password": "Xy!9aaaaaaaa"]])
        let contosoToken = try await h.accessToken()
        return World(h: h, fabrikam: fabrikam, fabrikamToken: fabrikamToken, contosoToken: contosoToken,
                     alice: try #require(alice.json["id"]?.stringValue), appID: try await AuthorizeTests.application(h, contosoToken))
    }

    static func claims(_ jwt: JSONValue?) throws -> JSONValue {
        let token = try #require(jwt?.stringValue)
        return .object(try #require(JWT.decode(token)).claims)
    }

    @Test("an invitation makes a pending guest; Alice redeems it at home; Contoso's app then gets Contoso's token naming Fabrikam as idp")
    func inviteRedeemAndSignIn() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            let invitation = await w.invite()
            #expect(invitation.status == 201, "\(invitation.text)")
            #expect(invitation.json["status"] == "PendingAcceptance" && invitation.json["invitedUserType"] == "Guest")
            #expect(invitation.json["inviteRedeemUrl"]?.stringValue?.hasPrefix("\(Harness.base)/\(w.contoso)/b2b/redeem?") == true)
            let guestID = try #require(invitation.json["invitedUser"]?["id"]?.stringValue)
            let guest = await h.graph("GET", "users/\(guestID)", token: w.contosoToken,
                                      query: [("$select", "userType,externalUserState,creationType,identities,userPrincipalName,mail")]).json
            #expect(guest["userType"] == "Guest" && guest["externalUserState"] == "PendingAcceptance" && guest["creationType"] == "Invitation")
            #expect(guest["userPrincipalName"] == "alice_fabrikam.test#EXT#@contoso.test" && guest["mail"] == "alice@fabrikam.test")
            #expect(guest["identities"]?.arrayValue?.first?["issuer"]?.stringValue == "\(Harness.base)/\(w.fabrikam.tenantId)/v2.0")
            // Not signed in at home: off to Fabrikam's sign-in page, which comes back here.
            let url = try #require(invitation.json["inviteRedeemUrl"]?.stringValue)
            let first = await w.follow(url, cookie: nil)
            let login = try #require(AuthorizeTests.location(first))
            #expect(first.status == 302 && login.hasPrefix("/\(w.fabrikam.tenantId)/login?continue=%2F\(w.contoso)%2Fb2b%2Fredeem"))
            #expect(ExternalSignIn.isContinuation(String(url.dropFirst(Harness.base.count))))
            let redeemed = try await w.redeem(invitation)
            #expect(redeemed.status == 302 && AuthorizeTests.location(redeemed) == "https://myapps.contoso.test/", "\(redeemed.text)")
            let accepted = await h.graph("GET", "users/\(guestID)", token: w.contosoToken, query: [("$select", "externalUserState,identities")]).json
            #expect(accepted["externalUserState"] == "Accepted" && accepted["identities"]?.arrayValue?.first?["issuerAssignedId"]?.stringValue == w.alice)
            // Sign-in to Contoso's app with Alice's home address: home realm discovery, Fabrikam's session, Contoso's code.
            let done = try await w.signIn()
            #expect(done.status == 302 && AuthorizeTests.location(done)?.hasPrefix(AuthorizeTests.spa + "?code=") == true,
                    "\(AuthorizeTests.location(done) ?? done.text)")
            let tokens = try await w.tokens(done)
            let id = try Self.claims(tokens["id_token"]), access = try Self.claims(tokens["access_token"])
            for claims in [id, access] {
                #expect(claims["tid"]?.stringValue == w.contoso && claims["oid"]?.stringValue == guestID)
                #expect(claims["idp"]?.stringValue == "\(Harness.base)/\(w.fabrikam.tenantId)/v2.0" && claims["acct"] == 1)
                #expect(claims["iss"]?.stringValue == "\(Harness.base)/\(w.contoso)/v2.0")
            }
            // Contoso's sign-in log says where the guest came from.
            let signIns = await h.graph("GET", "auditLogs/signIns", token: w.contosoToken,
                                        query: [("$filter", "userId eq '\(guestID)'")]).json["value"]?.arrayValue ?? []
            #expect(!signIns.isEmpty && signIns.allSatisfy {
                $0["homeTenantId"]?.stringValue == w.fabrikam.tenantId && $0["resourceTenantId"]?.stringValue == w.contoso
            }, "\(signIns)")
            let audit = await h.graph("GET", "auditLogs/directoryAudits", token: w.contosoToken).json["value"]?.arrayValue ?? []
            #expect(audit.contains { $0["activityDisplayName"] == "Invite external user" })
            #expect(audit.contains { $0["activityDisplayName"] == "Redeem external user invite" })
        }
    }

    @Test("without an invitation (or before redeeming it) a user of another tenant is refused with AADSTS50020")
    func noInvitation() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            let refused = try await w.signIn()
            #expect(refused.status == 403 && refused.text.contains("AADSTS50020"), "\(refused.status)")
            _ = await w.invite()
            let pending = try await w.signIn()
            #expect(pending.status == 403 && pending.text.contains("AADSTS50020"))
        }
    }

    @Test("a login_hint in another tenant's domain goes home, unless this tenant holds that domain itself")
    func homeRealmDiscovery() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            let params = [("client_id", w.appID), ("redirect_uri", AuthorizeTests.spa), ("response_type", "code"), ("scope", "openid"),
                          ("code_challenge", World.challenge), ("code_challenge_method", "S256"), ("login_hint", "alice@fabrikam.test")]
            let away = AuthorizeTests.location(await AuthorizeTests.authorize(h, params))
            #expect(away?.hasPrefix("/\(w.contoso)/b2b/signin?home=\(w.fabrikam.tenantId)&continue=") == true, "\(away ?? "")")
            #expect(await h.graph("POST", "domains", token: w.contosoToken, json: ["id": "fabrikam.test"]).status == 201)
            #expect(await h.graph("POST", "domains/fabrikam.test/verify", token: w.contosoToken).status == 200)
            let here = AuthorizeTests.location(await AuthorizeTests.authorize(h, params))
            #expect(here?.hasPrefix("/\(w.contoso)/login?") == true, "\(here ?? "")")
        }
    }

    @Test("only the invited account redeems; a forged or altered redeem link is refused")
    func redemptionChecks() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            let bob = await h.graph("POST", "users", token: w.fabrikamToken, json: [
                "accountEnabled": true, "displayName": "Bob", "mailNickname": "bob", "userPrincipalName": "bob@fabrikam.test",
                "passwordProfile": ["password": "Xy!9aaaaaaaa"]])
            let invitation = await w.invite()
            let asBob = try await w.redeem(invitation, cookie: try await w.homeCookie(try #require(bob.json["id"]?.stringValue)))
            #expect(asBob.status == 403 && asBob.text.contains("AADSTS90072"))
            let url = try #require(invitation.json["inviteRedeemUrl"]?.stringValue)
            let forged = url.replacingOccurrences(of: "t=", with: "t=A")
            #expect(await w.follow(forged, cookie: try await w.homeCookie()).status == 404)
            let guestID = try #require(invitation.json["invitedUser"]?["id"]?.stringValue)
            #expect(await h.graph("GET", "users/\(guestID)", token: w.contosoToken, query: [("$select", "externalUserState")]).json["externalUserState"]
                    == "PendingAcceptance")
        }
    }

    @Test("B2B collaboration blocked by Contoso's inbound or Fabrikam's outbound settings refuses redemption and sign-in (AADSTS500213)",
          arguments: ["inbound", "outbound", "application"])
    func crossTenantAccessBlocks(_ side: String) async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            let invitation = await w.invite()
            let blockAll: JSONValue = ["usersAndGroups": ["accessType": "blocked", "targets": [["target": "AllUsers", "targetType": "user"]]]]
            func block() async {
                // Who writes the setting, about whom, and what it says.
                let (partner, token, body): (String, String, JSONValue) = switch side {
                case "inbound": (w.fabrikam.tenantId, w.contosoToken, ["b2bCollaborationInbound": blockAll])
                case "outbound": (w.contoso, w.fabrikamToken, ["b2bCollaborationOutbound": blockAll])
                default: (w.fabrikam.tenantId, w.contosoToken, ["b2bCollaborationInbound": [
                    "applications": ["accessType": "blocked", "targets": [["target": .string(w.appID), "targetType": "application"]]]]])
                }
                var json = body.objectValue ?? [:]
                json["tenantId"] = .string(partner)
                let created = await h.graph("POST", "policies/crossTenantAccessPolicy/partners", token: token, json: .object(json))
                #expect(created.status == 201, "\(created.text)")
            }
            if side != "application" {
                await block()
                let refused = try await w.redeem(invitation)
                #expect(refused.status == 403 && refused.text.contains("AADSTS500213"), "\(refused.text)")
                return
            }
            #expect(try await w.redeem(invitation).status == 302)
            await block()
            let refused = try await w.signIn()
            let location = try #require(AuthorizeTests.location(refused))
            #expect(location.hasPrefix(AuthorizeTests.spa + "?error=access_denied") && location.contains("AADSTS500213"), "\(location)")
        }
    }

    @Test("a deleted guest can be invited and redeemed again: the home account is linked to the new user")
    func inviteAgainAfterDeletion() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            let first = await w.invite()
            #expect(try await w.redeem(first).status == 302)
            let guestID = try #require(first.json["invitedUser"]?["id"]?.stringValue)
            #expect(await h.graph("DELETE", "users/\(guestID)", token: w.contosoToken).status == 204)
            let second = await w.invite()
            #expect(second.status == 201, "\(second.text)")
            let newID = try #require(second.json["invitedUser"]?["id"]?.stringValue)
            #expect(newID != guestID)
            #expect(try await w.redeem(second).status == 302)
            let tokens = try await w.tokens(try await w.signIn())
            #expect(try Self.claims(tokens["id_token"])["oid"]?.stringValue == newID)
            #expect(try await h.app.directory.externalUser(tenant: w.contoso, homeTenant: w.fabrikam.tenantId, homeUser: w.alice) == newID)
        }
    }

    @Test("a guest's refresh token stops working once the settings block B2B collaboration (AADSTS500213 at the next refresh)")
    func refreshAfterBlock() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            #expect(try await w.redeem(await w.invite()).status == 302)
            let tokens = try await w.tokens(try await w.signIn(scope: "openid offline_access"))
            let refresh = try #require(tokens["refresh_token"]?.stringValue)
            func redeem(_ token: String) async -> APIResponse {
                let form = AuthorizeEndpoint.encode([("grant_type", "refresh_token"), ("client_id", w.appID), ("refresh_token", token)])
                return await h.send("POST", "/\(w.contoso)/oauth2/v2.0/token", headers: ["content-type": "application/x-www-form-urlencoded",
                                                                                         "origin": "https://spa.contoso.test"], body: Array(form.utf8))
            }
            let renewed = await redeem(refresh)
            #expect(renewed.status == 200, "\(renewed.text)")
            let next = try #require(renewed.json["refresh_token"]?.stringValue)
            let blocked = await h.graph("POST", "policies/crossTenantAccessPolicy/partners", token: w.fabrikamToken, json: [
                "tenantId": .string(w.contoso),
                "b2bCollaborationOutbound": ["usersAndGroups": ["accessType": "blocked", "targets": [["target": .string(w.alice), "targetType": "user"]]]]])
            #expect(blocked.status == 201)
            let refused = await redeem(next)
            #expect(refused.status == 400 && refused.json["error"] == "invalid_grant" && refused.json["error_codes"] == [500213], "\(refused.text)")
        }
    }

    @Test("Conditional Access requiring MFA of guests refuses Alice until Contoso trusts Fabrikam's MFA (inboundTrust.isMfaAccepted)")
    func inboundTrust() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            #expect(try await w.redeem(await w.invite()).status == 302)
            let policy = await h.graph("POST", "identity/conditionalAccess/policies", token: w.contosoToken, json: [
                "displayName": "Guests need MFA", "state": "enabled",
                "conditions": ["users": ["includeGuestsOrExternalUsers": [
                    "guestOrExternalUserTypes": "b2bCollaborationGuest",
                    "externalTenants": ["@odata.type": "#microsoft.graph.conditionalAccessAllExternalTenants", "membershipKind": "all"]]],
                               "applications": ["includeApplications": ["All"]]],
                "grantControls": ["operator": "OR", "builtInControls": ["mfa"]]])
            #expect(policy.status == 201, "\(policy.text)")
            let refused = try await w.signIn()
            #expect(refused.status == 403 && refused.text.contains("AADSTS53003"), "\(refused.status) \(refused.text)")
            let trust = await h.graph("POST", "policies/crossTenantAccessPolicy/partners", token: w.contosoToken, json: [
                "tenantId": .string(w.fabrikam.tenantId),
                "inboundTrust": ["isMfaAccepted": true, "isCompliantDeviceAccepted": false, "isHybridAzureADJoinedDeviceAccepted": false]])
            #expect(trust.status == 201)
            let allowed = try await w.signIn()
            #expect(AuthorizeTests.location(allowed)?.hasPrefix(AuthorizeTests.spa + "?code=") == true, "\(allowed.status) \(allowed.text)")
        }
    }

    @Test("an invitation that cannot be honoured gets 400 and creates no user", arguments: [
        "unknown domain", "own tenant", "not an address", "no redirect", "reset redemption", "bad type",
    ])
    func invitationRefusals(_ scenario: String) async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            let body: JSONValue = switch scenario {
            case "unknown domain": ["invitedUserEmailAddress": "carol@elsewhere.example", "inviteRedirectUrl": "https://myapps.contoso.test/"]
            case "own tenant": ["invitedUserEmailAddress": "dave@contoso.test", "inviteRedirectUrl": "https://myapps.contoso.test/"]
            case "not an address": ["invitedUserEmailAddress": "alice", "inviteRedirectUrl": "https://myapps.contoso.test/"]
            case "no redirect": ["invitedUserEmailAddress": "alice@fabrikam.test"]
            case "reset redemption": ["invitedUserEmailAddress": "alice@fabrikam.test", "inviteRedirectUrl": "https://x.test/", "resetRedemption": true]
            default: ["invitedUserEmailAddress": "alice@fabrikam.test", "inviteRedirectUrl": "https://x.test/", "invitedUserType": "Admin"]
            }
            let response = await h.graph("POST", "invitations", token: w.contosoToken, json: body)
            #expect(response.status == 400 && response.errorCode == "Request_BadRequest", "\(response.text)")
            let users = await h.graph("GET", "users", token: w.contosoToken, query: [("$filter", "userType eq 'Guest'")]).json["value"]?.arrayValue
            #expect(users?.isEmpty == true)
        }
    }

    @Test("inviting needs User.Invite.All or a role that allows it (Guest Inviter); a plain user is refused")
    func invitePermission() async throws {
        try await Harness.run { h in
            _ = try await Self.world(h)
            let body: JSONValue = ["invitedUserEmailAddress": "alice@fabrikam.test", "inviteRedirectUrl": "https://myapps.contoso.test/"]
            let nobody = try await h.caller(named: "nobody", role: nil)
            #expect(await h.status("POST", "invitations", body, as: nobody) == 403)
            let inviter = try await h.caller(named: "inviter", role: BuiltInRoles.guestInviter)
            #expect(await h.status("POST", "invitations", body, as: inviter) == 201)
        }
    }
}
