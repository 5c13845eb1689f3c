import Foundation
import Testing
import Backup
@testable import Server
import TesseraCore

@Suite("Admin center: signed-in pages that act through Graph with the user's roles")
struct AdminCenterTests {
    /// A browser signed in as `userID`: its cookie, and the admin center under that tenant.
    struct Browser {
        let h: Harness
        let cookie: String
        var base: String { "/admin/\(h.tenant.tenantId)" }

        static func signIn(_ h: Harness, userID: String) async throws -> Browser {
            let (_, setCookie) = try await SignInSessions(app: h.app).start(tenant: h.tenant.tenantId, userID: userID, amr: ["fido", "mfa"],
                                                                             baseURL: Harness.base)
            return Browser(h: h, cookie: String(setCookie.split(separator: ";")[0]))
        }

        func get(_ path: String, _ query: [(name: String, value: String)] = []) async -> APIResponse {
            await h.send("GET", base + path, query: query, headers: ["cookie": cookie])
        }

        /// Posts a form the way the page does: this session's CSRF token (read from `page`) and this origin.
        func post(_ path: String, _ fields: [(String, String)], from page: String = "/users", csrf: String? = nil,
                  origin: String = Harness.base) async throws -> APIResponse {
            let token: String
            if let csrf { token = csrf } else { token = try Self.csrf(in: await get(page)) }
            let body = ([("csrf", token)] + fields).map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0.1)" }
                .joined(separator: "&")
            return await h.send("POST", base + path, headers: ["cookie": cookie, "origin": origin,
                                                             "content-type": "application/x-www-form-urlencoded"], body: Array(body.utf8))
        }

        static func csrf(in response: APIResponse) throws -> String {
            let html = response.text
            let marker = "name=\"csrf\" value=\""
            let start = try #require(html.range(of: marker)).upperBound
            return String(html[start...].prefix { $0 != "\"" })
        }
    }

    static func location(_ response: APIResponse) -> String? { response.headers.first { $0.name == "Location" }?.value }

    static func createUser(_ h: Harness, _ token: String, _ name: String) async throws -> String {
        let created = await h.graph("POST", "users", token: token, json: [
            "accountEnabled": true, "displayName": .string(name), "mailNickname": .string(name),
            "userPrincipalName": .string("\(name)@contoso.test"), "passwordProfile": ["password": "Xy!9aaaaaaaa"]])
        return try #require(created.json["id"]?.stringValue)
    }

    @Test("without a session the pages send the browser to the sign-in page and back; a post is refused")
    func requiresSignIn() async throws {
        try await Harness.run { h in
            let page = await h.send("GET", "/admin/\(h.tenant.tenantId)/users")
            #expect(page.status == 303)
            #expect(Self.location(page) == "/\(h.tenant.tenantId)/login?continue=%2Fadmin%2F\(h.tenant.tenantId)%2Fusers")
            let post = await h.send("POST", "/admin/\(h.tenant.tenantId)/users", headers: ["content-type": "application/x-www-form-urlencoded"],
                                    body: Array("displayName=x".utf8))
            #expect(post.status == 403)
            // The only tenant is chosen for /admin; a domain in the path becomes the tenant id.
            #expect(Self.location(await h.send("GET", "/admin")) == "/admin/\(h.tenant.tenantId)/users")
            #expect(Self.location(await h.send("GET", "/admin/contoso.test/roles")) == "/admin/\(h.tenant.tenantId)/roles")
        }
    }

    @Test("a Global Administrator creates a user, disables them and issues a Temporary Access Pass that signs them in")
    func usersLifecycle() async throws {
        try await Harness.run { h in
            let admin = try await Browser.signIn(h, userID: h.tenant.adminUserId)
            let list = await admin.get("/users")
            #expect(list.status == 200 && list.text.contains(h.tenant.adminUserPrincipalName))
            #expect(list.headers.contains { $0.name == "Content-Security-Policy" && $0.value.contains("frame-ancestors 'none'") })

            let created = try await admin.post("/users", [("displayName", "Ada Lovelace"), ("userPrincipalName", "ada@contoso.test"), ("jobTitle", "Analyst")])
            #expect(created.status == 303)
            let userPage = try #require(Self.location(created))
            #expect(userPage.hasPrefix("/admin/\(h.tenant.tenantId)/users/") && userPage.hasSuffix("?done=created"))
            let token = try await h.accessToken()
            let ada = await h.graph("GET", "users/ada@contoso.test", token: token)
            let adaID = try #require(ada.json["id"]?.stringValue)
            #expect(ada.json["jobTitle"] == "Analyst")
            // The audit log names the administrator, not an app.
            let audits = await h.graph("GET", "auditLogs/directoryAudits", token: token, query: [("$filter", "activityDisplayName eq 'Add user'")])
            #expect(audits.json["value"]?.arrayValue?.last?["initiatedBy"]?["user"]?["id"]?.stringValue == h.tenant.adminUserId)

            let duplicate = try await admin.post("/users", [("displayName", "Ada again"), ("userPrincipalName", "ada@contoso.test")])
            #expect(duplicate.status == 400 && duplicate.text.contains("role=\"alert\""))

            #expect(try await admin.post("/users/\(adaID)/disable", []).status == 303)
            #expect(await h.graph("GET", "users/\(adaID)", token: token, query: [("$select", "accountEnabled")]).json["accountEnabled"] == false)
            #expect(try await admin.post("/users/\(adaID)/enable", []).status == 303)

            let issued = try await admin.post("/users/\(adaID)/tap", [("lifetimeInMinutes", "60"), ("isUsableOnce", "true")])
            #expect(issued.status == 200)
            let html = issued.text
            let start = try #require(html.range(of: "id=\"temporary-access-pass\">")).upperBound
            let pass = String(html[start...].prefix { $0 != "<" })
            #expect(pass.count >= 8)
            let signIn = await h.send("POST", "/\(h.tenant.tenantId)/login/tap", headers: ["content-type": "application/json"],
                                      body: Array(#"{"username":"ada@contoso.test","temporaryAccessPass":"\#(pass)"}"#.utf8))
            #expect(signIn.status == 200 && signIn.json["userId"]?.stringValue == adaID)
            // The user's page shows the pass as spent (its heading alone is always there, so it proves nothing).
            let spent = await admin.get("/users/\(adaID)").text
            #expect(spent.contains("state <strong>OneTimeUsed</strong>"), "\(spent)")
        }
    }

    @Test("forms need this session's token and this origin")
    func csrf() async throws {
        try await Harness.run { h in
            let admin = try await Browser.signIn(h, userID: h.tenant.adminUserId)
            let fields = [("displayName", "Mallory"), ("userPrincipalName", "mallory@contoso.test")]
            #expect(try await admin.post("/users", fields, csrf: "forged").status == 403)
            #expect(try await admin.post("/users", fields, origin: "https://evil.example").status == 403)
            // Another session's token is not this one's.
            let other = try await Browser.signIn(h, userID: h.tenant.adminUserId)
            let othersToken = try Browser.csrf(in: await other.get("/users"))
            #expect(try await admin.post("/users", fields, csrf: othersToken).status == 403)
            let token = try await h.accessToken()
            #expect(await h.graph("GET", "users/mallory@contoso.test", token: token).status == 404)
        }
    }

    @Test("what a user may do follows their directory roles")
    func roles() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let bobID = try await Self.createUser(h, token, "bob")
            let bob = try await Browser.signIn(h, userID: bobID)
            let refused = await bob.get("/users")
            #expect(refused.status == 403 && refused.text.contains("No administrator role"))

            // The Global Administrator makes Bob a User Administrator through the roles page.
            let admin = try await Browser.signIn(h, userID: h.tenant.adminUserId)
            let assigned = try await admin.post("/roles/assign", [("role", BuiltInRoles.userAdministrator), ("principal", "bob@contoso.test")], from: "/roles")
            #expect(assigned.status == 303)
            #expect((await admin.get("/roles")).text.contains("User Administrator"))

            #expect((await bob.get("/users")).status == 200)
            #expect(try await bob.post("/users", [("displayName", "Carol"), ("userPrincipalName", "carol@contoso.test")]).status == 303)
            // A User Administrator does not manage the passkey policy, or roles.
            let policy = await bob.get("/passkeys")
            #expect(policy.status == 403)
            let change = try await bob.post("/passkeys/settings", [("state", "disabled")])
            #expect(change.status == 400)
            #expect(try await h.app.directory.fido2Configuration(tenant: h.tenant.tenantId).configuration.state == .enabled)
            let escalate = try await bob.post("/roles/assign", [("role", BuiltInRoles.globalAdministrator), ("principal", "bob@contoso.test")])
            #expect(escalate.status == 400 && escalate.text.contains("Insufficient privileges"))
            #expect(try await h.app.directory.directoryRoles(tenant: h.tenant.tenantId, principal: bobID) == [BuiltInRoles.userAdministrator])
            // Nor may a User Administrator touch an account that holds a privileged role: not disable it, not give it a pass.
            let disableAdmin = try await bob.post("/users/\(h.tenant.adminUserId)/disable", [])
            #expect(disableAdmin.status == 400 && disableAdmin.text.contains("holds a privileged role"))
            let passForAdmin = try await bob.post("/users/\(h.tenant.adminUserId)/tap", [("lifetimeInMinutes", "60")])
            #expect(passForAdmin.status == 400)
            #expect(await h.graph("GET", "users/\(h.tenant.adminUserId)", token: token, query: [("$select", "accountEnabled")]).json["accountEnabled"] == true)
            #expect(await h.graph("GET", "users/\(h.tenant.adminUserId)/authentication/temporaryAccessPassMethods", token: token).json["value"]?.arrayValue?.isEmpty == true)
            // A Global Administrator may (bob's own role is privileged).
            #expect(try await admin.post("/users/\(bobID)/disable", []).status == 303)
        }
    }

    @Test("groups: create, add and remove members")
    func groups() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let daveID = try await Self.createUser(h, token, "dave")
            let admin = try await Browser.signIn(h, userID: h.tenant.adminUserId)
            let created = try await admin.post("/groups", [("displayName", "Passkey pilots"), ("description", "Early adopters")], from: "/groups")
            let groupPage = try #require(Self.location(created))
            let groupID = String(try #require(groupPage.split(separator: "/").last?.split(separator: "?").first))
            #expect(try await admin.post("/groups/\(groupID)/members/add", [("member", "dave@contoso.test")]).status == 303)
            let members = await h.graph("GET", "groups/\(groupID)/members", token: token)
            #expect(members.json["value"]?.arrayValue?.map { $0["id"]?.stringValue } == [daveID])
            #expect((await admin.get("/groups/\(groupID)")).text.contains("dave@contoso.test"))
            let unknown = try await admin.post("/groups/\(groupID)/members/add", [("member", "nobody@contoso.test")])
            #expect(unknown.status == 400 && unknown.text.contains("No user or group"))
            #expect(try await admin.post("/groups/\(groupID)/members/\(daveID)/remove", []).status == 303)
            #expect(await h.graph("GET", "groups/\(groupID)/members", token: token).json["value"]?.arrayValue?.isEmpty == true)
        }
    }

    @Test("passkey policy: a profile for a group, who gets it, and Entra's rules refusing a bad change")
    func passkeyPolicy() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let eveID = try await Self.createUser(h, token, "eve")
            let group = await h.graph("POST", "groups", token: token, json: [
                "displayName": "Security keys only", "mailEnabled": false, "securityEnabled": true, "mailNickname": "keys"])
            let groupID = try #require(group.json["id"]?.stringValue)
            _ = await h.graph("POST", "groups/\(groupID)/members/$ref", token: token,
                              json: ["@odata.id": .string("\(Harness.base)/v1.0/directoryObjects/\(eveID)")])
            let admin = try await Browser.signIn(h, userID: h.tenant.adminUserId)
            let yubico = "cb69481e-8ff7-4039-93ec-0a2729a154a8"
            let added = try await admin.post("/passkeys/profiles/new", [
                ("name", "Hardware keys"), ("passkeyType", "deviceBound"), ("attestationEnforcement", "registrationOnly"),
                ("keyRestrictionsEnforced", "true"), ("enforcementType", "allow"), ("aaGuids", yubico)], from: "/passkeys")
            #expect(added.status == 303)
            var configuration = try await h.app.directory.fido2Configuration(tenant: h.tenant.tenantId).configuration
            let profile = try #require(configuration.passkeyProfiles.first { $0.name == "Hardware keys" })
            #expect(profile.passkeyTypes == [.deviceBound] && profile.attestationEnforcement == .registrationOnly && profile.keyRestrictions.aaGuids == [yubico])

            #expect(try await admin.post("/passkeys/include", [("target", "Security keys only"), ("profile", profile.id)], from: "/passkeys").status == 303)
            configuration = try await h.app.directory.fido2Configuration(tenant: h.tenant.tenantId).configuration
            #expect(configuration.includeTargets.contains { $0.id == groupID && $0.allowedPasskeyProfiles == [profile.id] })

            let page = await admin.get("/passkeys", [("check", "eve@contoso.test")])
            #expect(page.status == 200 && page.text.contains("Security keys only") && page.text.contains("Hardware keys"))
            let marker = try #require(page.text.range(of: "id=\"check-result\""))
            let check = page.text[marker.lowerBound...].prefix(400)
            #expect(check.contains("Hardware keys"))

            // Synced passkeys cannot be allowed where attestation is enforced: refused, nothing changed.
            let bad = try await admin.post("/passkeys/profiles/\(profile.id)", [
                ("name", "Hardware keys"), ("passkeyType", "deviceBound"), ("passkeyType", "synced"), ("attestationEnforcement", "registrationOnly"),
                ("enforcementType", "allow"), ("aaGuids", "")], from: "/passkeys")
            #expect(bad.status == 400 && bad.text.contains("role=\"alert\""))
            #expect(try await h.app.directory.fido2Configuration(tenant: h.tenant.tenantId).configuration == configuration)
            // The profile in use cannot be deleted; an unknown AAGUID text is refused.
            #expect(try await admin.post("/passkeys/profiles/\(profile.id)/delete", [], from: "/passkeys").status == 400)
            let notGUID = try await admin.post("/passkeys/profiles/new", [("name", "X"), ("passkeyType", "synced"), ("attestationEnforcement", "disabled"),
                                                                            ("enforcementType", "block"), ("aaGuids", "yubikey")], from: "/passkeys")
            #expect(notGUID.status == 400 && notGUID.text.contains("is not an AAGUID"))
        }
    }

    @Test("users are paged 50 at a time and found by the start of their name")
    func paging() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            for i in 0..<60 { _ = try await Self.createUser(h, token, String(format: "pager%02d", i)) }
            let admin = try await Browser.signIn(h, userID: h.tenant.adminUserId)
            let first = await admin.get("/users")
            #expect(first.text.components(separatedBy: "<tr><td><a href=").count - 1 == 50)
            let next = try #require(first.text.range(of: "rel=\"next\" href=\""))
            let link = String(first.text[next.upperBound...].prefix { $0 != "\"" }).replacingOccurrences(of: "&amp;", with: "&")
            let query = try #require(URLComponents(string: link)?.queryItems).map { (name: $0.name, value: $0.value ?? "") }
            let second = await admin.get("/users", query)
            #expect(second.text.components(separatedBy: "<tr><td><a href=").count - 1 == 11)
            let found = await admin.get("/users", [("q", "pager1")])
            #expect(!found.text.contains("role=\"alert\""))
            #expect(found.text.components(separatedBy: "<tr><td><a href=").count - 1 == 10)
            let byAddress = await admin.get("/users", [("q", "pager05@")])
            #expect(byAddress.text.contains("pager05@contoso.test") && !byAddress.text.contains("pager06@contoso.test"))
        }
    }

    @Test("backup: the timeline, a report with old and new values, a previewed recovery that a job then applies")
    func backupWizard() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let adaID = try await Self.createUser(h, token, "ada")
            _ = await h.graph("PATCH", "users/\(adaID)", token: token, json: ["jobTitle": "Analyst"])
            let snapshot = try await h.app.backup.snapshot(tenant: h.tenant.tenantId)
            _ = await h.graph("PATCH", "users/\(adaID)", token: token, json: ["jobTitle": "Director"])
            let admin = try await Browser.signIn(h, userID: h.tenant.adminUserId)
            let timeline = await admin.get("/backup")
            #expect(timeline.status == 200 && timeline.text.contains(snapshot.createdAt))
            let report = await admin.get("/backup", [("from", snapshot.id), ("type", "user")])
            #expect(report.text.contains("put it back as it was") && report.text.contains("&quot;Analyst&quot;") && report.text.contains("&quot;Director&quot;"))
            let object = "user:\(adaID)"
            let preview = try await admin.post("/backup/preview", [("snapshot", snapshot.id), ("object", object)])
            #expect(preview.status == 200 && preview.text.contains("id=\"plan\"") && preview.text.contains("jobTitle"))
            // The preview wrote nothing.
            #expect(await h.graph("GET", "users/\(adaID)", token: token, query: [("$select", "jobTitle")]).json["jobTitle"] == "Director")
            let started = try await admin.post("/backup/recover", [("snapshot", snapshot.id), ("object", object)])
            let jobPage = try #require(Self.location(started))
            #expect(started.status == 303 && jobPage.contains("/backup/jobs/"))
            await h.app.jobs.idle()
            let status = await admin.get(String(jobPage.dropFirst("/admin/\(h.tenant.tenantId)".count))).text
            #expect(status.contains("id=\"job-status\">successful"))
            #expect(await h.graph("GET", "users/\(adaID)", token: token, query: [("$select", "jobTitle")]).json["jobTitle"] == "Analyst")
            // Choosing nothing is a clear error.
            let none = try await admin.post("/backup/preview", [("snapshot", snapshot.id)])
            #expect(none.status == 400 && none.text.contains("Select at least one object"))
        }
    }

    @Test("delegated permissions are the token's scopes narrowed to the user's roles")
    func delegatedPermissions() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let frankID = try await Self.createUser(h, token, "frank")
            let frank = try #require(try await h.app.store.read { tx in try await tx.object(tenant: h.tenant.tenantId, id: frankID) })
            let scopes: Set<String> = ["User.ReadWrite.All", "Policy.ReadWrite.AuthenticationMethod"]
            let plain = try await Caller.user(tenant: h.tenant.tenantId, user: frank, scopes: scopes, app: h.app)
            #expect(plain.roles.isEmpty)
            _ = await h.graph("POST", "roleManagement/directory/roleAssignments", token: token, json: [
                "principalId": .string(frankID), "roleDefinitionId": .string(BuiltInRoles.authenticationPolicyAdministrator), "directoryScopeId": "/"])
            let policyAdmin = try await Caller.user(tenant: h.tenant.tenantId, user: frank, scopes: scopes, app: h.app)
            #expect(policyAdmin.roles == ["Policy.ReadWrite.AuthenticationMethod"])
        }
    }
}

extension APIResponse {
    var text: String { String(decoding: body, as: UTF8.self) }
}
