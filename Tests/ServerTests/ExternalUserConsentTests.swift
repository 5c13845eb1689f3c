import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

@Suite("The consent prompt of external users pending acceptance: at redemption and at first sign-in, unless both tenants suppress it")
struct ExternalUserConsentTests {
    typealias World = CrossTenantB2BTests.World

    static func state(_ w: World, _ guestID: String) async -> JSONValue {
        await w.h.graph("GET", "users/\(guestID)", token: w.contosoToken, query: [("$select", "externalUserState,externalUserStateChangeDateTime")]).json
    }

    /// Both tenants' automatic redemption for each other, or one side only.
    static func automaticRedemption(_ w: World, contoso: Bool, fabrikam: Bool) async {
        if contoso {
            let made = await w.h.graph("POST", "policies/crossTenantAccessPolicy/partners", token: w.contosoToken, json: [
                "tenantId": .string(w.fabrikam.tenantId), "automaticUserConsentSettings": ["inboundAllowed": true]])
            #expect(made.status == 201, "\(made.text)")
        }
        if fabrikam {
            let made = await w.h.graph("POST", "policies/crossTenantAccessPolicy/partners", token: w.fabrikamToken, json: [
                "tenantId": .string(w.contoso), "automaticUserConsentSettings": ["outboundAllowed": true]])
            #expect(made.status == 201, "\(made.text)")
        }
    }

    @Test("redeeming shows Review permissions; Cancel refuses and writes nothing; Accept redeems and records the date")
    func redemptionPrompt() async throws {
        try await Harness.run { h in
            let w = try await CrossTenantB2BTests.world(h)
            let invitation = await w.invite()
            let guestID = try #require(invitation.json["invitedUser"]?["id"]?.stringValue)
            let url = try #require(invitation.json["inviteRedeemUrl"]?.stringValue)
            let before = await Self.state(w, guestID)["externalUserStateChangeDateTime"]
            let cookie = try await w.homeCookie()
            let page = await w.follow(url, cookie: cookie)
            #expect(page.status == 200 && page.text.contains("Review permissions") && page.text.contains("id=\"organization\">Contoso"),
                    "\(page.status) \(page.text)")
            let csp = page.headers.first { $0.name == "Content-Security-Policy" }?.value ?? ""
            #expect(csp.contains("form-action 'self' https://myapps.contoso.test"), "\(csp)")
            let declined = try await w.answer(page, at: url, cookie: cookie, decision: "cancel")
            #expect(declined.status == 403 && declined.text.contains("AADSTS65004"), "\(declined.text)")
            #expect(await Self.state(w, guestID)["externalUserState"] == "PendingAcceptance")
            #expect(try await h.app.directory.externalUserLink(tenant: w.contoso, userID: guestID) == nil)
            h.clock.advance(60)
            let accepted = try await w.answer(await w.follow(url, cookie: cookie), at: url, cookie: cookie, decision: "accept")
            #expect(accepted.status == 302 && AuthorizeTests.location(accepted) == "https://myapps.contoso.test/", "\(accepted.text)")
            let state = await Self.state(w, guestID)
            #expect(state["externalUserState"] == "Accepted" && state["externalUserStateChangeDateTime"] != before, "\(state)")
            // Redeemed: the link goes straight to the redirect, without asking again.
            #expect(await w.follow(url, cookie: cookie).status == 302)
        }
    }

    @Test("a forged token or another origin is refused and redeems nothing", arguments: ["token", "origin", "another session"])
    func forgedAnswers(_ forgery: String) async throws {
        try await Harness.run { h in
            let w = try await CrossTenantB2BTests.world(h)
            let invitation = await w.invite()
            let guestID = try #require(invitation.json["invitedUser"]?["id"]?.stringValue)
            let url = try #require(invitation.json["inviteRedeemUrl"]?.stringValue)
            let cookie = try await w.homeCookie()
            let page = await w.follow(url, cookie: cookie)
            let response: APIResponse
            switch forgery {
            case "token":
                response = try await w.answer(page, at: url, cookie: cookie, decision: "accept", token: "AAAA")
            case "origin":
                let target = try #require(URLComponents(string: url))
                let token = try #require(page.text.firstMatch(of: /name="consent_token" value="([^"]+)"/)?.1)
                response = await h.send("POST", target.path, query: target.queryItems?.map { (name: $0.name, value: $0.value ?? "") } ?? [],
                                        headers: ["cookie": cookie, "content-type": "application/x-www-form-urlencoded", "origin": "https://evil.example"],
                                        body: Array(AuthorizeEndpoint.encode([("consent_token", String(token)), ("decision", "accept")]).utf8))
            default:
                // The page shown to one session, answered from another session of the same user.
                response = try await w.answer(page, at: url, cookie: try await w.homeCookie(), decision: "accept")
            }
            #expect(response.status == 403, "\(response.status) \(response.text)")
            #expect(await Self.state(w, guestID)["externalUserState"] == "PendingAcceptance")
        }
    }

    @Test("automatic redemption on both sides suppresses the prompt; on one side only it does not", arguments: [(true, true), (true, false), (false, true)])
    func automaticRedemption(_ contoso: Bool, _ fabrikam: Bool) async throws {
        try await Harness.run { h in
            let w = try await CrossTenantB2BTests.world(h)
            await Self.automaticRedemption(w, contoso: contoso, fabrikam: fabrikam)
            let invitation = await w.invite()
            let url = try #require(invitation.json["inviteRedeemUrl"]?.stringValue)
            let shown = await w.follow(url, cookie: try await w.homeCookie())
            if contoso && fabrikam {
                #expect(shown.status == 302 && AuthorizeTests.location(shown) == "https://myapps.contoso.test/", "\(shown.text)")
                let guestID = try #require(invitation.json["invitedUser"]?["id"]?.stringValue)
                #expect(await Self.state(w, guestID)["externalUserState"] == "Accepted")
            } else {
                #expect(shown.status == 200 && shown.text.contains("Review permissions"))
            }
        }
    }

    /// A user of Fabrikam provisioned into Contoso linked to its home user but pending acceptance, as cross-tenant
    /// synchronization leaves one without automatic redemption.
    static func pendingLinkedUser(_ w: World) async throws -> String {
        let invitation = await w.invite()
        let guestID = try #require(invitation.json["invitedUser"]?["id"]?.stringValue)
        try await w.h.app.directory.linkSyncedExternalUser(tenant: w.contoso, guestID: guestID, homeTenantID: w.fabrikam.tenantId,
                                                           homeUserID: w.alice, origin: "synchronizationJob:test")
        return guestID
    }

    @Test("a linked user pending acceptance gets the prompt at /authorize: prompt=none is interaction_required, Cancel access_denied, Accept the code")
    func authorizePrompt() async throws {
        try await Harness.run { h in
            let w = try await CrossTenantB2BTests.world(h)
            let guestID = try await Self.pendingLinkedUser(w)
            let home = try await w.homeCookie()
            let page = try await w.signIn(cookie: home)
            #expect(page.status == 200 && page.text.contains("Review permissions"), "\(page.status) \(page.text)")
            // The Contoso session the external sign-in started is the one the form is bound to.
            let (_, contosoCookie) = try await SignInSessions(app: h.app).start(tenant: w.contoso, userID: guestID, amr: ["fido", "mfa"],
                                                                                 baseURL: Harness.base)
            let cookies = home + "; " + String(contosoCookie.split(separator: ";")[0])
            let params = [("client_id", w.appID), ("redirect_uri", AuthorizeTests.spa), ("response_type", "code"), ("scope", "openid profile"),
                          ("code_challenge", World.challenge), ("code_challenge_method", "S256"), ("state", "s1")]
            let silent = AuthorizeTests.location(await AuthorizeTests.authorize(h, params + [("prompt", "none")], cookie: cookies))
            #expect(silent?.hasPrefix(AuthorizeTests.spa + "?error=interaction_required") == true, "\(silent ?? "")")
            let shown = await AuthorizeTests.authorize(h, params, cookie: cookies)
            #expect(shown.status == 200 && shown.text.contains("action=\"/\(w.contoso)/b2b/consent\""), "\(shown.text)")
            let declined = try await w.answer(shown, at: "/\(w.contoso)/b2b/consent", cookie: cookies, decision: "cancel")
            let refusal = try #require(AuthorizeTests.location(declined))
            #expect(refusal.hasPrefix(AuthorizeTests.spa + "?error=access_denied") && refusal.contains("state=s1"), "\(refusal)")
            #expect(await Self.state(w, guestID)["externalUserState"] == "PendingAcceptance")
            let accepted = try await w.answer(shown, at: "/\(w.contoso)/b2b/consent", cookie: cookies, decision: "accept")
            let back = try #require(AuthorizeTests.location(accepted))
            #expect(accepted.status == 303 && back.hasPrefix("/\(w.contoso)/oauth2/v2.0/authorize?"), "\(accepted.text)")
            #expect(await Self.state(w, guestID)["externalUserState"] == "Accepted")
            let code = AuthorizeTests.location(await w.follow(back, cookie: cookies))
            #expect(code?.hasPrefix(AuthorizeTests.spa + "?code=") == true, "\(code ?? "")")
            let audit = await h.graph("GET", "auditLogs/directoryAudits", token: w.contosoToken).json["value"]?.arrayValue ?? []
            #expect(audit.contains { $0["activityDisplayName"] == "Redeem external user invite" && $0["targetResources"]?.arrayValue?.first?["id"]?.stringValue == guestID })
        }
    }

    @Test("with automatic redemption on both sides a pending linked user is accepted at sign-in without the prompt")
    func authorizeSuppressed() async throws {
        try await Harness.run { h in
            let w = try await CrossTenantB2BTests.world(h)
            await Self.automaticRedemption(w, contoso: true, fabrikam: true)
            let guestID = try await Self.pendingLinkedUser(w)
            let done = try await w.signIn()
            #expect(AuthorizeTests.location(done)?.hasPrefix(AuthorizeTests.spa + "?code=") == true, "\(done.status) \(done.text)")
            #expect(await Self.state(w, guestID)["externalUserState"] == "Accepted")
        }
    }
}
