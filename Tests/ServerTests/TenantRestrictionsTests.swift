import Crypto
import Foundation
import Testing
@testable import Server
import TesseraCore
import WebAuthn

/// Tenant restrictions v2: the `tenantRestrictions` setting over Graph, and its enforcement at `/authorize` and `/token`
/// for requests carrying `sec-Restrict-Tenant-Access-Policy`. Contoso (the harness's tenant) restricts; Bob is a user of
/// Fabrikam signing in to Fabrikam's application from Contoso's network.
@Suite("Tenant restrictions v2: settings over Graph and enforcement at the identity platform")
struct TenantRestrictionsTests {
    static let root = "policies/crossTenantAccessPolicy"

    static func everyone(_ access: String) -> JSONValue {
        ["usersAndGroups": ["accessType": .string(access), "targets": [["target": "AllUsers", "targetType": "user"]]],
         "applications": ["accessType": .string(access), "targets": [["target": "AllApplications", "targetType": "application"]]]]
    }

    struct World {
        let h: Harness
        let fabrikam: ProvisionedTenant
        let fabrikamToken: String
        let contosoToken: String
        let bob: String
        let appID: String
        var contoso: String { h.tenant.tenantId }
        var header: String { TenantRestrictionHeader(restrictingTenantID: contoso).value }

        /// `/authorize` at Fabrikam as Bob (signed in there), with `restriction` as the header when given.
        func authorize(_ restriction: String?, tenant: String? = nil, user: String? = nil, client: String? = nil,
                       scope: String = "openid") async throws -> APIResponse {
            let tenant = tenant ?? fabrikam.tenantId
            let (_, setCookie) = try await SignInSessions(app: h.app).start(tenant: tenant, userID: user ?? bob, amr: ["fido", "mfa"], baseURL: Harness.base)
            var headers = ["cookie": String(setCookie.split(separator: ";")[0])]
            if let restriction { headers[TenantRestrictionHeader.name.lowercased()] = restriction }
            let params = [("client_id", client ?? appID), ("redirect_uri", AuthorizeTests.spa), ("response_type", "code"), ("scope", scope),
                          ("code_challenge", CrossTenantB2BTests.World.challenge), ("code_challenge_method", "S256")]
            return await h.send("GET", "/\(tenant)/oauth2/v2.0/authorize", query: params.map { (name: $0.0, value: $0.1) }, headers: headers)
        }

        /// The token endpoint with `form`, and the header when given.
        func token(_ form: [(String, String)], restriction: String?) async -> APIResponse {
            var headers = ["content-type": "application/x-www-form-urlencoded", "origin": "https://spa.contoso.test"]
            if let restriction { headers[TenantRestrictionHeader.name.lowercased()] = restriction }
            return await h.send("POST", "/\(fabrikam.tenantId)/oauth2/v2.0/token", headers: headers, body: Array(AuthorizeEndpoint.encode(form).utf8))
        }

        func redeemForm(_ response: APIResponse) throws -> [(String, String)] {
            let location = try #require(AuthorizeTests.location(response))
            let code = try #require(URLComponents(string: location)?.queryItems?.first { $0.name == "code" }?.value, "\(location)")
            return [("grant_type", "authorization_code"), ("client_id", appID), ("redirect_uri", AuthorizeTests.spa), ("code", code),
                    ("code_verifier", CrossTenantB2BTests.World.verifier)]
        }

        func restrict(partner: String, _ body: JSONValue) async -> Int {
            let created = await h.graph("POST", "\(TenantRestrictionsTests.root)/partners", token: contosoToken,
                                        json: ["tenantId": .string(partner), "tenantRestrictions": body])
            return created.status
        }

        /// Fabrikam's sign-ins of Bob that failed with `code`.
        func failures(_ code: Int) async -> [JSONValue] {
            await h.graph("GET", "auditLogs/signIns", token: fabrikamToken, query: [("$filter", "status/errorCode eq \(code)")]).json["value"]?.arrayValue ?? []
        }
    }

    static func world(_ h: Harness) async throws -> World {
        let fabrikam = try await TenantProvisioner(directory: h.app.directory).create(name: "Fabrikam", domain: "fabrikam.test")
        let fabrikamToken = try await h.accessToken(clientId: fabrikam.clientId, secret: fabrikam.clientSecret, tenant: fabrikam.tenantId)
        let bob = await h.graph("POST", "users", token: fabrikamToken, json: [
            "accountEnabled": true, "displayName": "Bob", "mailNickname": "bob", "userPrincipalName": "bob@fabrikam.test",
            "passwordProfile": ["password": "Xy!9aaaaaaaa"]])
        return World(h: h, fabrikam: fabrikam, fabrikamToken: fabrikamToken, contosoToken: try await h.accessToken(),
                     bob: try #require(bob.json["id"]?.stringValue), appID: try await AuthorizeTests.application(h, fabrikamToken))
    }

    static func isCode(_ response: APIResponse) -> Bool {
        response.status == 302 && AuthorizeTests.location(response)?.hasPrefix(AuthorizeTests.spa + "?code=") == true
    }

    // MARK: Settings

    @Test("the default carries its policy id and Entra's tenant restrictions (every external account blocked); Microsoft's partner example round-trips")
    func settingsOverGraph() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let defaults = await h.graph("GET", "\(Self.root)/default", token: token).json
            #expect(defaults["id"]?.stringValue == TenantRestrictionHeader.policyID(tenant: h.tenant.tenantId))
            #expect(defaults["id"]?.stringValue.map(Identifier.isGUID) == true)
            var expected = Self.everyone("blocked").objectValue ?? [:]
            expected["devices"] = .null
            #expect(defaults["tenantRestrictions"] == .object(expected), "\(defaults)")
            // Microsoft's "Configure tenant restrictions settings" PATCH of a partner.
            let partner = "90e29127-71ad-49c7-9ce8-db3f41ea06f1"
            #expect(await h.graph("POST", "\(Self.root)/partners", token: token, json: ["tenantId": .string(partner)]).status == 201)
            let documented: JSONValue = [
                "usersAndGroups": ["accessType": "allowed", "targets": [["target": "AllUsers", "targetType": "user"]]],
                "applications": ["accessType": "allowed", "targets": [["target": "Office365", "targetType": "application"]]]]
            let patched = await h.graph("PATCH", "\(Self.root)/partners/\(partner)", token: token, json: ["tenantRestrictions": documented])
            #expect(patched.status == 204, "\(patched.text)")
            let read = await h.graph("GET", "\(Self.root)/partners/\(partner)", token: token).json
            #expect(read["tenantRestrictions"]?["applications"] == documented["applications"] && read["tenantRestrictions"]?["devices"] == .null)
            // A device filter is kept as written.
            let devices: JSONValue = ["mode": "allowed", "rule": "device.trustType -eq \"ServerAD\""]
            #expect(await h.graph("PATCH", "\(Self.root)/partners/\(partner)", token: token,
                                  json: ["tenantRestrictions": ["usersAndGroups": documented["usersAndGroups"] ?? .null, "devices": devices]]).status == 204)
            #expect(await h.graph("GET", "\(Self.root)/partners/\(partner)", token: token).json["tenantRestrictions"]?["devices"] == devices)
            // The default: everyone allowed, then back to the system default with null.
            #expect(await h.graph("PATCH", "\(Self.root)/default", token: token, json: ["tenantRestrictions": Self.everyone("allowed")]).status == 204)
            #expect(await h.graph("GET", "\(Self.root)/default", token: token).json["tenantRestrictions"]?["usersAndGroups"]?["accessType"] == "allowed")
            #expect(await h.graph("PATCH", "\(Self.root)/default", token: token, json: ["tenantRestrictions": .null]).status == 204)
            #expect(await h.graph("GET", "\(Self.root)/default", token: token).json["tenantRestrictions"]?["usersAndGroups"]?["accessType"] == "blocked")
            let audit = await h.graph("GET", "auditLogs/directoryAudits", token: token).json["value"]?.arrayValue ?? []
            #expect(audit.contains { $0["activityDisplayName"] == "Update a partner cross-tenant access setting" })
        }
    }

    @Test("bad tenant restrictions are refused with a 400 naming the property, and nothing changes", arguments: [
        "default names a user", "default without applications", "users blocked, applications allowed", "applications blocked, users allowed",
        "devices mode", "devices rule", "unknown member",
    ])
    func refusals(_ scenario: String) async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let user: JSONValue = ["accessType": "allowed", "targets": [["target": "0b1a7d3e-1a2b-4c5d-8e9f-001122334455", "targetType": "user"]]]
            let blockedUsers: JSONValue = ["accessType": "blocked", "targets": [["target": "AllUsers", "targetType": "user"]]]
            let allowedApps: JSONValue = ["accessType": "allowed", "targets": [["target": "AllApplications", "targetType": "application"]]]
            let blockedApps: JSONValue = ["accessType": "blocked", "targets": [["target": "AllApplications", "targetType": "application"]]]
            let allowedUsers: JSONValue = ["accessType": "allowed", "targets": [["target": "AllUsers", "targetType": "user"]]]
            let (path, body, names): (String, JSONValue, String) = switch scenario {
            case "default names a user": ("default", ["usersAndGroups": user, "applications": allowedApps], "usersAndGroups")
            case "default without applications": ("default", ["usersAndGroups": allowedUsers], "applications")
            case "users blocked, applications allowed": ("partner", ["usersAndGroups": blockedUsers, "applications": allowedApps], "tenantRestrictions")
            case "applications blocked, users allowed": ("partner", ["usersAndGroups": allowedUsers, "applications": blockedApps], "tenantRestrictions")
            case "devices mode": ("partner", ["devices": ["mode": "sometimes", "rule": "device.trustType -eq \"ServerAD\""]], "devices.mode")
            case "devices rule": ("partner", ["devices": ["mode": "blocked", "rule": "device.trustType -eq"]], "devices.rule")
            default: ("partner", ["usersAndGroups": allowedUsers, "mode": "allowed"], "mode")
            }
            let partner = "90e29127-71ad-49c7-9ce8-db3f41ea06f1"
            let response = if path == "default" {
                await h.graph("PATCH", "\(Self.root)/default", token: token, json: ["tenantRestrictions": body])
            } else {
                await h.graph("POST", "\(Self.root)/partners", token: token, json: ["tenantId": .string(partner), "tenantRestrictions": body])
            }
            #expect(response.status == 400 && response.errorCode == "Request_BadRequest", "\(response.text)")
            #expect(response.json["error"]?["message"]?.stringValue?.contains(names) == true, "\(response.text)")
            #expect(await h.graph("GET", "\(Self.root)/default", token: token).json["isServiceDefault"] == true)
            #expect(await h.graph("GET", "\(Self.root)/partners", token: token).json["value"] == [])
        }
    }

    @Test func theHeaderReadsAndWritesMicrosoftsFormatAndRefusesAnythingElse() throws {
        let tenant = "aaaabbbb-0000-cccc-1111-dddd2222eeee"
        let header = TenantRestrictionHeader(restrictingTenantID: tenant.uppercased())
        #expect(header.value == "\(tenant):\(TenantRestrictionHeader.policyID(tenant: tenant))" && header.namesItsTenantsPolicy)
        #expect(try TenantRestrictionHeader(parsing: " \(header.value.uppercased()) ") == header)
        #expect(TenantRestrictionHeader.policyID(tenant: tenant) != TenantRestrictionHeader.policyID(tenant: "aaaabbbb-0000-cccc-1111-dddd2222eeef"))
        let policy = TenantRestrictionHeader.policyID(tenant: tenant)
        #expect(Identifier.isGUID(policy) && policy.dropFirst(14).first == "5", "a version 5 layout")
        for bad in ["", tenant, "\(tenant):", ":\(policy)", "contoso.com:\(policy)", "\(tenant):\(policy):x", "restrict-msa"] {
            #expect(throws: TenantRestrictionHeader.Malformed.self) { try TenantRestrictionHeader(parsing: bad) }
        }
        #expect(try !TenantRestrictionHeader(parsing: "\(tenant):\(UUID().uuidString)").namesItsTenantsPolicy)
    }

    // MARK: Enforcement

    @Test("Contoso's default blocks Bob's Fabrikam account at /authorize with AADSTS5000211, in Fabrikam's sign-in log; without the header he signs in")
    func defaultBlocks() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            #expect(Self.isCode(try await w.authorize(nil)))
            let blocked = try await w.authorize(w.header)
            #expect(blocked.status == 403 && blocked.text.contains("AADSTS5000211") && AuthorizeTests.location(blocked) == nil, "\(blocked.text)")
            let logged = await w.failures(5000211)
            #expect(logged.count == 1 && logged.first?["userId"]?.stringValue == w.bob && logged.first?["appId"]?.stringValue == w.appID, "\(logged)")
            #expect(logged.first?["status"]?["failureReason"]?.stringValue?.contains("tenant restrictions policy") == true)
        }
    }

    @Test("a partner configuration for Fabrikam lets through exactly the users, groups and applications it allows", arguments: [
        "everyone, every app", "Bob's group", "another group", "Bob's app blocked", "another app blocked",
    ])
    func partnerAllows(_ scenario: String) async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            let group = await h.graph("POST", "groups", token: w.fabrikamToken, json: [
                "displayName": "Travellers", "mailEnabled": false, "mailNickname": "travellers", "securityEnabled": true])
            let groupID = try #require(group.json["id"]?.stringValue)
            #expect(await h.graph("POST", "groups/\(groupID)/members/$ref", token: w.fabrikamToken,
                                  json: ["@odata.id": .string("https://graph.microsoft.com/v1.0/directoryObjects/\(w.bob)")]).status == 204)
            let allApps: JSONValue = ["accessType": "allowed", "targets": [["target": "AllApplications", "targetType": "application"]]]
            let allUsers: JSONValue = ["accessType": "allowed", "targets": [["target": "AllUsers", "targetType": "user"]]]
            func groupTarget(_ id: String) -> JSONValue { ["accessType": "allowed", "targets": [["target": .string(id), "targetType": "group"]]] }
            func blockedApp(_ id: String) -> JSONValue { ["accessType": "blocked", "targets": [["target": .string(id), "targetType": "application"]]] }
            let (body, allowed): (JSONValue, Bool) = switch scenario {
            case "everyone, every app": (["usersAndGroups": allUsers, "applications": allApps], true)
            case "Bob's group": (["usersAndGroups": groupTarget(groupID), "applications": allApps], true)
            case "another group": (["usersAndGroups": groupTarget(Identifier.make()), "applications": allApps], false)
            case "Bob's app blocked": (["usersAndGroups": allUsers, "applications": blockedApp(w.appID)], false)
            default: (["usersAndGroups": allUsers, "applications": blockedApp(Identifier.make())], true)
            }
            #expect(await w.restrict(partner: w.fabrikam.tenantId, body) == 201)
            let response = try await w.authorize(w.header)
            #expect(Self.isCode(response) == allowed, "\(response.status) \(response.text)")
            #expect(response.text.contains("AADSTS5000211") == !allowed)
        }
    }

    @Test("the restricting tenant's own accounts, and sign-ins to its own applications, are not restricted")
    func ownAccountsAndApps() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            // Contoso's own user, to Contoso's own application.
            let contosoApp = try await AuthorizeTests.application(h, w.contosoToken)
            let alice = await h.graph("POST", "users", token: w.contosoToken, json: [
                "accountEnabled": true, "displayName": "Alice", "mailNickname": "alice", "userPrincipalName": "alice@contoso.test",
                "passwordProfile": ["password": "Xy!9aaaaaaaa"]])
            let aliceID = try #require(alice.json["id"]?.stringValue)
            #expect(Self.isCode(try await w.authorize(w.header, tenant: w.contoso, user: aliceID, client: contosoApp)))
            // Fabrikam's own header at Fabrikam: Bob is Fabrikam's account.
            let fabrikamHeader = TenantRestrictionHeader(restrictingTenantID: w.fabrikam.tenantId).value
            #expect(Self.isCode(try await w.authorize(fabrikamHeader)))
        }
    }

    @Test("a header naming no tenant of this deployment is ignored; a malformed one, or one with another policy id, is refused clearly")
    func headerChecks() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            let elsewhere = TenantRestrictionHeader(restrictingTenantID: Identifier.make()).value
            #expect(Self.isCode(try await w.authorize(elsewhere)))
            for bad in ["contoso.test", "\(w.contoso):\(Identifier.make())"] {
                let refused = try await w.authorize(bad)
                #expect(refused.status == 400 && refused.text.contains("AADSTS90023") && refused.text.contains("sec-Restrict-Tenant-Access-Policy"),
                        "\(refused.text)")
            }
            let token = await w.token([("grant_type", "refresh_token"), ("refresh_token", "x"), ("client_id", w.appID)], restriction: "not-a-header")
            #expect(token.status == 400 && token.json["error"] == "invalid_request" && token.json["error_codes"] == [90023], "\(token.text)")
        }
    }

    @Test("at /token, a code or a refresh token presented with the header is refused with AADSTS5000211 in Entra's JSON")
    func tokenEndpoint() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            // A code got without the header (another network), redeemed through Contoso's.
            let form = try w.redeemForm(try await w.authorize(nil, scope: "openid offline_access"))
            let blocked = await w.token(form, restriction: w.header)
            #expect(blocked.status == 400 && blocked.json["error"] == "invalid_grant" && blocked.json["error_codes"] == [5000211], "\(blocked.text)")
            // The refusal did not spend the code.
            let tokens = await w.token(form, restriction: nil)
            let refresh = try #require(tokens.json["refresh_token"]?.stringValue, "\(tokens.text)")
            let refused = await w.token([("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", w.appID)], restriction: w.header)
            #expect(refused.status == 400 && refused.json["error_codes"] == [5000211], "\(refused.text)")
            // The refusal left the refresh token usable off that network.
            let renewed = await w.token([("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", w.appID)], restriction: nil)
            #expect(renewed.status == 200, "\(renewed.text)")
            #expect(await w.failures(5000211).count == 2)
        }
    }

    @Test("a B2B direct connect user (no object in the resource tenant) is checked as its home tenant's account at /authorize and /token")
    func directConnect() async throws {
        try await Harness.run { h in
            let w = try await CrossTenantB2BTests.world(h)
            await DirectConnectTests.connect(w)
            let woodgrove = try await TenantProvisioner(directory: h.app.directory).create(name: "Woodgrove", domain: "woodgrove.test")
            let woodgroveToken = try await h.accessToken(clientId: woodgrove.clientId, secret: woodgrove.clientSecret, tenant: woodgrove.tenantId)
            func redeem(_ restriction: String) async throws -> APIResponse {
                let location = try #require(AuthorizeTests.location(try await w.signIn()))
                let code = try #require(URLComponents(string: location)?.queryItems?.first { $0.name == "code" }?.value, "\(location)")
                let form = AuthorizeEndpoint.encode([("grant_type", "authorization_code"), ("client_id", w.appID), ("redirect_uri", AuthorizeTests.spa),
                                                     ("code", code), ("code_verifier", CrossTenantB2BTests.World.verifier)])
                return await h.send("POST", "/\(w.contoso)/oauth2/v2.0/token", headers: [
                    "content-type": "application/x-www-form-urlencoded", "origin": "https://spa.contoso.test",
                    TenantRestrictionHeader.name.lowercased(): restriction], body: Array(form.utf8))
            }
            // Woodgrove's network: its default blocks Alice's Fabrikam account; its partner configuration for Fabrikam lets her.
            let woodgroveHeader = TenantRestrictionHeader(restrictingTenantID: woodgrove.tenantId).value
            func signIn(_ restriction: String) async throws -> APIResponse {
                try await CrossTenantDeviceTrustTests.guestSignIn(w, credential: nil, headers: [TenantRestrictionHeader.name.lowercased(): restriction])
            }
            // Through Woodgrove's network the browser gets Entra's page, not a code, and both tenants log the refusal.
            let page = try await signIn(woodgroveHeader)
            #expect(page.status == 403 && page.text.contains("AADSTS5000211"), "\(page.status) \(page.text)")
            for tenant in [w.contoso, w.fabrikam.tenantId] {
                let logged = await DirectConnectTests.signIns(w, in: tenant).filter { $0["status"]?["errorCode"] == 5000211 }
                #expect(logged.count == 1 && logged.first?["appId"]?.stringValue == w.appID, "\(tenant): \(logged)")
            }
            // A code got elsewhere is refused when redeemed through Woodgrove's network, and logged in both tenants too.
            let refused = try await redeem(woodgroveHeader)
            #expect(refused.status == 400 && refused.json["error_codes"] == [5000211], "\(refused.text)")
            for tenant in [w.contoso, w.fabrikam.tenantId] {
                let logged = await DirectConnectTests.signIns(w, in: tenant).filter { $0["status"]?["errorCode"] == 5000211 }
                #expect(logged.count == 2, "\(tenant): \(logged)")
            }
            let allowed = await h.graph("POST", "\(Self.root)/partners", token: woodgroveToken, json: [
                "tenantId": .string(w.fabrikam.tenantId), "tenantRestrictions": Self.everyone("allowed")])
            #expect(allowed.status == 201, "\(allowed.text)")
            #expect(try await redeem(woodgroveHeader).status == 200)
            #expect(Self.isCode(try await signIn(woodgroveHeader)))
            // Fabrikam's own network: Alice's account is Fabrikam's.
            #expect(try await redeem(TenantRestrictionHeader(restrictingTenantID: w.fabrikam.tenantId).value).status == 200)
        }
    }

    @Test("the device login page's approval is checked too: the device gets nothing while the policy blocks the account")
    func deviceCodeApproval() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            let cli = await h.graph("POST", "applications", token: w.fabrikamToken, json: ["displayName": "CLI", "isFallbackPublicClient": true])
            let cliID = try #require(cli.json["appId"]?.stringValue)
            let (_, setCookie) = try await SignInSessions(app: h.app).start(tenant: w.fabrikam.tenantId, userID: w.bob, amr: ["fido", "mfa"],
                                                                             baseURL: Harness.base)
            func approve(_ restriction: String?) async throws -> APIResponse {
                let started = await h.send("POST", "/\(w.fabrikam.tenantId)/oauth2/v2.0/devicecode", headers: ["content-type": "application/x-www-form-urlencoded"],
                                           body: Array("client_id=\(cliID)&scope=openid".utf8))
                let userCode = try #require(started.json["user_code"]?.stringValue, "\(started.text)")
                var headers = ["content-type": "application/json", "origin": Harness.base, "cookie": String(setCookie.split(separator: ";")[0])]
                if let restriction { headers[TenantRestrictionHeader.name.lowercased()] = restriction }
                return await h.send("POST", "/\(w.fabrikam.tenantId)/devicelogin", headers: headers,
                                    body: JSONValue.object(["userCode": .string(userCode)]).serializedBytes)
            }
            let refused = try await approve(w.header)
            #expect(refused.status == 403 && refused.text.contains("AADSTS5000211"), "\(refused.text)")
            #expect(await w.failures(5000211).count == 1)
            #expect(try await approve("\(w.contoso)").status == 400)
            let approved = try await approve(nil)
            #expect(approved.status == 200 && approved.json["approved"] == true, "\(approved.text)")
        }
    }
}
