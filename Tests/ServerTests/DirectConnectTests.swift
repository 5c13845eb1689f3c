import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

@Suite("B2B direct connect: a partner's user signs in at home and gets this tenant's tokens with no object here, when both tenants allow it")
struct DirectConnectTests {
    typealias World = CrossTenantB2BTests.World

    static let everyone: JSONValue = [
        "usersAndGroups": ["accessType": "allowed", "targets": [["target": "AllUsers", "targetType": "user"]]],
        "applications": ["accessType": "allowed", "targets": [["target": "AllApplications", "targetType": "application"]]],
    ]

    /// Writes `tenant`'s partner configuration for `partner` through Graph.
    static func partner(_ w: World, in tenant: String, for partner: String, _ settings: [String: JSONValue]) async {
        let token = tenant == w.contoso ? w.contosoToken : w.fabrikamToken
        var body = settings
        body["tenantId"] = .string(partner)
        let created = await w.h.graph("POST", "policies/crossTenantAccessPolicy/partners", token: token, json: .object(body))
        #expect(created.status == 201, "\(created.text)")
    }

    /// Contoso lets Fabrikam's users in (`inbound`, everyone by default) and Fabrikam lets its users out to Contoso
    /// (`outbound`), both by B2B direct connect.
    static func connect(_ w: World, inbound: JSONValue = everyone, outbound: JSONValue = everyone) async {
        await partner(w, in: w.contoso, for: w.fabrikam.tenantId, ["b2bDirectConnectInbound": inbound])
        await partner(w, in: w.fabrikam.tenantId, for: w.contoso, ["b2bDirectConnectOutbound": outbound])
    }

    /// Contoso's sign-in log, or Fabrikam's, for Alice.
    static func signIns(_ w: World, in tenant: String) async -> [JSONValue] {
        let token = tenant == w.contoso ? w.contosoToken : w.fabrikamToken
        return (await w.h.graph("GET", "auditLogs/signIns", token: token).json["value"]?.arrayValue ?? [])
            .filter { $0["userId"]?.stringValue == w.alice && $0["crossTenantAccessType"] == "b2bDirectConnect" }
    }

    @Test("with both tenants' direct connect, Alice gets Contoso's tokens naming her home object and tenant; nothing is written in Contoso")
    func signsInWithoutAGuest() async throws {
        try await Harness.run { h in
            let w = try await CrossTenantB2BTests.world(h)
            await Self.connect(w)
            let users = await h.graph("GET", "users", token: w.contosoToken).json["value"]?.arrayValue?.count
            let done = try await w.signIn(scope: "openid profile offline_access")
            let location = try #require(AuthorizeTests.location(done), "\(done.status) \(done.text)")
            #expect(location.hasPrefix(AuthorizeTests.spa + "?code="), "\(location)")
            let tokens = try await w.tokens(done)
            let id = try CrossTenantB2BTests.claims(tokens["id_token"]), access = try CrossTenantB2BTests.claims(tokens["access_token"])
            for claims in [id, access] {
                #expect(claims["tid"]?.stringValue == w.contoso && claims["oid"]?.stringValue == w.alice)
                #expect(claims["iss"]?.stringValue == "\(Harness.base)/\(w.contoso)/v2.0")
                #expect(claims["idp"]?.stringValue == "\(Harness.base)/\(w.fabrikam.tenantId)/v2.0" && claims["acct"] == 1)
                #expect(claims["amr"] == ["fido", "mfa"])
            }
            #expect(id["preferred_username"] == "alice@fabrikam.test" && access["upn"] == "alice@fabrikam.test")
            #expect(tokens["refresh_token"] == nil, "a direct connect sign-in is decided again at the next /authorize")
            // No user, guest or link in Contoso.
            #expect(await h.graph("GET", "users", token: w.contosoToken).json["value"]?.arrayValue?.count == users)
            #expect(try await h.app.directory.externalUser(tenant: w.contoso, homeTenant: w.fabrikam.tenantId, homeUser: w.alice) == nil)
            #expect(await h.graph("GET", "users/\(w.alice)", token: w.contosoToken).status == 404)
            // Both tenants' logs name the access type and both tenants.
            for tenant in [w.contoso, w.fabrikam.tenantId] {
                let entries = await Self.signIns(w, in: tenant)
                #expect(entries.count == 1 && entries.allSatisfy {
                    $0["homeTenantId"]?.stringValue == w.fabrikam.tenantId && $0["resourceTenantId"]?.stringValue == w.contoso
                        && $0["userPrincipalName"] == "alice@fabrikam.test" && $0["appId"]?.stringValue == w.appID
                        && $0["status"]?["errorCode"] == 0
                }, "\(tenant): \(entries)")
            }
        }
    }

    @Test("a refusal for every side: Fabrikam's outbound (AADSTS500212), Contoso's inbound for the user, its groups or the application (AADSTS500213), no inbound at all (AADSTS50020)",
          arguments: ["home outbound", "resource inbound user", "not in the group", "application", "not established"])
    func refusals(_ side: String) async throws {
        try await Harness.run { h in
            let w = try await CrossTenantB2BTests.world(h)
            let group = await h.graph("POST", "groups", token: w.fabrikamToken, json: [
                "displayName": "Partners", "mailEnabled": false, "mailNickname": "partners", "securityEnabled": true])
            let groupID = try #require(group.json["id"]?.stringValue)
            let allApplications: JSONValue = ["accessType": "allowed", "targets": [["target": "AllApplications", "targetType": "application"]]]
            let notAlice: JSONValue = [
                "usersAndGroups": ["accessType": "blocked", "targets": [["target": .string(w.alice), "targetType": "user"]]],
                "applications": allApplications,
            ]
            let expected: String
            switch side {
            case "home outbound":
                await Self.connect(w, outbound: notAlice)
                expected = "AADSTS500212"
            case "resource inbound user":
                await Self.connect(w, inbound: notAlice)
                expected = "AADSTS500213"
            case "not in the group":
                await Self.connect(w, inbound: [
                    "usersAndGroups": ["accessType": "allowed", "targets": [["target": .string(groupID), "targetType": "group"]]],
                    "applications": allApplications,
                ])
                expected = "AADSTS500213"
            case "application":
                await Self.connect(w, inbound: [
                    "usersAndGroups": ["accessType": "allowed", "targets": [["target": "AllUsers", "targetType": "user"]]],
                    "applications": ["accessType": "allowed", "targets": [["target": "00000000-0000-0000-0000-00000000beef", "targetType": "application"]]],
                ])
                expected = "AADSTS500213"
            default:
                await Self.partner(w, in: w.fabrikam.tenantId, for: w.contoso, ["b2bDirectConnectOutbound": Self.everyone])
                expected = "AADSTS50020"
            }
            let refused = try await w.signIn()
            #expect(refused.status == 403 && refused.text.contains(expected), "\(refused.status) \(refused.text)")
            #expect(try await h.app.directory.externalUser(tenant: w.contoso, homeTenant: w.fabrikam.tenantId, homeUser: w.alice) == nil)
            if side == "not in the group" {
                // In the group, Alice is let in.
                let added = await h.graph("POST", "groups/\(groupID)/members/$ref", token: w.fabrikamToken,
                                          json: ["@odata.id": .string("https://graph.microsoft.com/v1.0/directoryObjects/\(w.alice)")])
                #expect(added.status == 204)
                #expect(AuthorizeTests.location(try await w.signIn())?.hasPrefix(AuthorizeTests.spa + "?code=") == true)
            }
        }
    }

    @Test("settings changed between the code and its redemption refuse the tokens (invalid_grant, AADSTS500212)")
    func redemptionDecidesAgain() async throws {
        try await Harness.run { h in
            let w = try await CrossTenantB2BTests.world(h)
            await Self.connect(w)
            let done = try await w.signIn()
            #expect(AuthorizeTests.location(done)?.hasPrefix(AuthorizeTests.spa + "?code=") == true)
            let patched = await h.graph("PATCH", "policies/crossTenantAccessPolicy/partners/\(w.contoso)", token: w.fabrikamToken, json: [
                "b2bDirectConnectOutbound": ["usersAndGroups": ["accessType": "blocked", "targets": [["target": "AllUsers", "targetType": "user"]]]]])
            #expect(patched.status == 204, "\(patched.text)")
            let location = try #require(AuthorizeTests.location(done))
            let code = try #require(URLComponents(string: location)?.queryItems?.first { $0.name == "code" }?.value)
            let form = AuthorizeEndpoint.encode([("grant_type", "authorization_code"), ("client_id", w.appID), ("redirect_uri", AuthorizeTests.spa),
                                                 ("code", code), ("code_verifier", World.verifier)])
            let refused = await h.send("POST", "/\(w.contoso)/oauth2/v2.0/token", headers: [
                "content-type": "application/x-www-form-urlencoded", "origin": "https://spa.contoso.test"], body: Array(form.utf8))
            #expect(refused.status == 400 && refused.json["error"] == "invalid_grant" && refused.json["error_codes"] == [500212], "\(refused.text)")
        }
    }

    @Test("a user who has a guest in Contoso takes the B2B collaboration path: the token names the guest")
    func guestTakesCollaboration() async throws {
        try await Harness.run { h in
            let w = try await CrossTenantB2BTests.world(h)
            await Self.connect(w)
            let invitation = await w.invite()
            #expect(try await w.redeem(invitation).status == 302)
            let guestID = try #require(invitation.json["invitedUser"]?["id"]?.stringValue)
            let tokens = try await w.tokens(try await w.signIn())
            #expect(try CrossTenantB2BTests.claims(tokens["id_token"])["oid"]?.stringValue == guestID)
            #expect(await Self.signIns(w, in: w.contoso).isEmpty)
        }
    }

    @Test("Contoso's policy requiring MFA of direct connect users refuses Alice (AADSTS53003) until Contoso trusts Fabrikam's MFA; a policy for guests does not apply")
    func conditionalAccess() async throws {
        try await Harness.run { h in
            let w = try await CrossTenantB2BTests.world(h)
            await Self.connect(w)
            func policy(_ name: String, _ types: String) async {
                let created = await h.graph("POST", "identity/conditionalAccess/policies", token: w.contosoToken, json: [
                    "displayName": .string(name), "state": "enabled",
                    "conditions": ["users": ["includeGuestsOrExternalUsers": [
                        "guestOrExternalUserTypes": .string(types),
                        "externalTenants": ["@odata.type": "#microsoft.graph.conditionalAccessAllExternalTenants", "membershipKind": "all"]]],
                                   "applications": ["includeApplications": ["All"]]],
                    "grantControls": ["operator": "OR", "builtInControls": [.string(name == "Block guests" ? "block" : "mfa")]]])
                #expect(created.status == 201, "\(created.text)")
            }
            await policy("Block guests", "b2bCollaborationGuest")
            #expect(AuthorizeTests.location(try await w.signIn())?.hasPrefix(AuthorizeTests.spa + "?code=") == true)
            await policy("Direct connect needs MFA", "b2bDirectConnectUser")
            let refused = try await w.signIn()
            #expect(refused.status == 403 && refused.text.contains("AADSTS53003"), "\(refused.status) \(refused.text)")
            let failed = await Self.signIns(w, in: w.contoso).filter { $0["status"]?["errorCode"] == 53003 }
            #expect(failed.count == 1 && failed.first?["appliedConditionalAccessPolicies"]?.arrayValue?.contains {
                $0["displayName"] == "Direct connect needs MFA" && $0["result"] == "failure"
            } == true, "\(failed)")
            let trusted = await h.graph("PATCH", "policies/crossTenantAccessPolicy/partners/\(w.fabrikam.tenantId)", token: w.contosoToken, json: [
                "inboundTrust": ["isMfaAccepted": true, "isCompliantDeviceAccepted": false, "isHybridAzureADJoinedDeviceAccepted": false]])
            #expect(trusted.status == 204, "\(trusted.text)")
            #expect(AuthorizeTests.location(try await w.signIn())?.hasPrefix(AuthorizeTests.spa + "?code=") == true)
        }
    }

    @Test("prompt=none: login_required without a home session, a code with one; a marker naming no partner tenant is refused; scopes Contoso did not grant for everyone are consent_required")
    func silentAndConsent() async throws {
        try await Harness.run { h in
            let w = try await CrossTenantB2BTests.world(h)
            await Self.connect(w)
            let params = [("client_id", w.appID), ("redirect_uri", AuthorizeTests.spa), ("response_type", "code"), ("scope", "openid"),
                          ("code_challenge", World.challenge), ("code_challenge_method", "S256"), ("login_hint", "alice@fabrikam.test"),
                          ("prompt", "none"), (DirectConnect.marker, w.fabrikam.tenantId)]
            let silent = AuthorizeTests.location(await AuthorizeTests.authorize(h, params))
            #expect(silent?.hasPrefix(AuthorizeTests.spa + "?error=login_required") == true, "\(silent ?? "")")
            // With Alice's home session, the silent request gets a code: the home session is the sign-in.
            let signedIn = AuthorizeTests.location(await AuthorizeTests.authorize(h, params, cookie: try await w.homeCookie()))
            #expect(signedIn?.hasPrefix(AuthorizeTests.spa + "?code=") == true, "\(signedIn ?? "")")
            // A marker naming no other tenant of this deployment is refused.
            for home in [w.contoso, "00000000-0000-0000-0000-000000000bad"] {
                let marked = params.filter { $0.0 != DirectConnect.marker } + [(DirectConnect.marker, home)]
                let refused = AuthorizeTests.location(await AuthorizeTests.authorize(h, marked, cookie: try await w.homeCookie()))
                #expect(refused?.hasPrefix(AuthorizeTests.spa + "?error=invalid_request") == true, "\(refused ?? "")")
            }
            let ungranted = try await w.signIn(scope: "openid User.Read")
            let location = try #require(AuthorizeTests.location(ungranted))
            #expect(location.hasPrefix(AuthorizeTests.spa + "?error=consent_required") && location.contains("AADSTS65001"), "\(location)")
        }
    }

    @Test("logging out of the home session, or revoking Alice's sessions at home, tells Contoso's app (back-channel and front-channel logout) with the claims of Contoso's ID token")
    func homeLogoutTellsTheApp() async throws {
        try await Harness.run { h in
            let receiver = try await LogoutReceiver.start()
            defer { receiver.close() }
            let w = try await CrossTenantB2BTests.world(h)
            await Self.connect(w)
            let applications = await h.graph("GET", "applications", token: w.contosoToken).json["value"]?.arrayValue ?? []
            let object = try #require(applications.first { $0["appId"]?.stringValue == w.appID }?["id"]?.stringValue)
            let patched = await h.graph("PATCH", "applications/\(object)", token: w.contosoToken, json: [
                "web": ["redirectUris": [.string(AuthorizeTests.web)], "backchannelLogoutUrl": .string("http://127.0.0.1:\(receiver.port)/bc"),
                        "logoutUrl": .string(LogoutTests.frontChannel)]])
            #expect(patched.status == 204, "\(patched.text)")
            let home = try await w.homeCookie()
            let id = try CrossTenantB2BTests.claims(try await w.tokens(try await w.signIn(cookie: home))["id_token"])
            // Alice signs out at Fabrikam, where her session is (no hint for it: she confirms).
            let logout = "/\(w.fabrikam.tenantId)/oauth2/v2.0/logout"
            let page = await h.send("GET", logout, headers: ["cookie": home])
            #expect(LogoutTests.isConfirmation(page), "\(page.status) \(page.text)")
            let confirmed = await h.send("POST", logout, headers: ["cookie": home, "content-type": "application/x-www-form-urlencoded"],
                                         body: Array(AuthorizeEndpoint.encode(LogoutTests.confirmationFields(page).map { (name: $0.0, value: $0.1) }).utf8))
            #expect(confirmed.status == 200 && LogoutTests.header(confirmed, "Set-Cookie") != nil, "\(confirmed.status) \(confirmed.text)")
            // Front-channel too: the signed-out page frames Contoso's app with Contoso's issuer.
            let frame = LogoutTests.frontChannel + "&" + AuthorizeEndpoint.encode([("iss", id["iss"]?.stringValue ?? ""), ("sid", id["sid"]?.stringValue ?? "")])
            #expect(confirmed.text.contains("src=\"\(Page.escape(frame))\""), "\(confirmed.text)")
            let received = try await receiver.wait(for: 1)
            #expect(received[0].path == "/bc")
            let logoutToken = try #require(APIRequest.parseForm(received[0].body).first { $0.name == "logout_token" }?.value)
            let token = try #require(JWT.decode(logoutToken))
            #expect(token.header["typ"] == "logout+jwt")
            #expect(token.claims["aud"]?.stringValue == w.appID && token.claims["tid"]?.stringValue == w.contoso)
            #expect(token.claims["iss"] == id["iss"] && token.claims["sub"] == id["sub"] && token.claims["sid"] == id["sid"] && id["sid"] != nil)
            #expect(try await SessionClients(app: h.app).of(user: w.alice, tenant: w.fabrikam.tenantId).isEmpty)
            // A second sign-in, ended by Fabrikam's administrator revoking Alice's sessions.
            let again = try CrossTenantB2BTests.claims(try await w.tokens(try await w.signIn())["id_token"])
            let revoked = await h.graph("POST", "users/\(w.alice)/revokeSignInSessions", token: w.fabrikamToken)
            #expect(revoked.status == 200, "\(revoked.text)")
            let both = try await receiver.wait(for: 2)
            let revocationToken = try #require(APIRequest.parseForm(both[1].body).first?.value)
            let revocation = try #require(JWT.decode(revocationToken))
            #expect(revocation.claims["sid"] == again["sid"] && again["sid"] != id["sid"] && revocation.claims["aud"]?.stringValue == w.appID)
        }
    }
}
