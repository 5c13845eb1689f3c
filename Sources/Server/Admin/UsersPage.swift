import Foundation
import TesseraCore

/// Users: a searchable, paged list (indexed `startswith` on the name or user principal name, 50 a page, so it
/// stays fast at 100,000 users), creation, and each user's page: enable or disable, a Temporary Access Pass, their
/// passkeys, groups and roles.
struct UsersPage {
    let admin: AdminRequest
    static let pageSize = 50

    func list(failure: String?) async throws -> APIResponse {
        let search = admin.request.parameter("q")?.trimmingCharacters(in: .whitespaces) ?? ""
        var query: [(name: String, value: String)] = [("$select", "id,displayName,userPrincipalName,accountEnabled,jobTitle,department"),
                                                      ("$top", "\(Self.pageSize)")]
        if !search.isEmpty {
            // An address is looked up by its start, anything else by the name's; each walks its own index (and a
            // filter on an indexed property lists in that property's order).
            let property = search.contains("@") ? "userPrincipalName" : "displayName"
            query.append(("$filter", "startswith(\(property),\(AdminRequest.literal(search)))"))
        } else {
            query.append(("$orderby", "displayName"))
        }
        if let page = admin.request.parameter("page") { query.append(("$skiptoken", page)) }
        var rows = "", pager = ""
        var failure = failure
        switch await admin.graph("GET", "users", query: query) {
        case .success(let page):
            for user in page["value"]?.arrayValue ?? [] {
                let id = user["id"]?.stringValue ?? ""
                rows += "<tr><td><a href=\"\(h(admin.base))/users/\(h(id))\">\(h(user["displayName"]?.stringValue))</a></td>"
                    + "<td>\(h(user["userPrincipalName"]?.stringValue))</td><td>\(h(user["jobTitle"]?.stringValue))</td>"
                    + "<td>\(user["accountEnabled"]?.boolValue == false ? "<span class=\"pill off\">Disabled</span>" : "Enabled")</td></tr>"
            }
            pager = admin.pager(page, path: "/users", keep: search.isEmpty ? [] : [("q", search)])
        case .failure(let error): failure = failure ?? error.message
        }
        let create = admin.form("/users", """
            <label>Display name <input name="displayName" required></label>
            <label>User principal name <input name="userPrincipalName" required placeholder="someone@\(h(admin.tenant.domain))"></label>
            <label>Job title <input name="jobTitle"></label>
            """, button: "Create user", style: "block")
        return admin.page(title: "Users", section: "users", failure: failure, content: """
        <h1>Users</h1>
        <form method="get" action="\(h(admin.base))/users" role="search"><input name="q" value="\(h(search))" placeholder="Name, or user@domain, starts with…" aria-label="Search users"><button type="submit">Search</button></form>
        <table><thead><tr><th>Name</th><th>User principal name</th><th>Job title</th><th>Account</th></tr></thead>
        <tbody>\(rows.isEmpty ? "<tr><td colspan=\"4\" class=\"muted\">No users found.</td></tr>" : rows)</tbody></table>
        \(pager)
        <h2>New user</h2>
        <p class="muted">Tessera is passwordless: the new user signs in once with a Temporary Access Pass from their page and registers a passkey.</p>
        \(create)
        """)
    }

    func create() async -> AdminRequest.Outcome {
        let form = admin.form
        let upn = form["userPrincipalName"]?.trimmingCharacters(in: .whitespaces) ?? ""
        var body: [String: JSONValue] = [
            "accountEnabled": true, "displayName": .string(form["displayName"]?.trimmingCharacters(in: .whitespaces) ?? ""),
            "userPrincipalName": .string(upn), "mailNickname": .string(String(upn.split(separator: "@").first ?? "user")),
            // Checked against Entra's complexity rule and discarded: nobody signs in with a password here.
            "passwordProfile": ["password": .string("Aa1!" + Secrets.randomToken(bytes: 18)), "forceChangePasswordNextSignIn": false],
        ]
        if let title = form["jobTitle"], !title.isEmpty { body["jobTitle"] = .string(title) }
        return await admin.perform("POST", "users", body: .object(body), notice: "created")
    }

    func act(id: String, action: [String]) async -> AdminRequest.Outcome {
        let user = "users/\(id)"
        switch action {
        case ["disable"]: return await admin.perform("PATCH", user, body: ["accountEnabled": false], notice: "disabled")
        case ["enable"]: return await admin.perform("PATCH", user, body: ["accountEnabled": true], notice: "enabled")
        case ["revoke"]: return await admin.perform("POST", user + "/revokeSignInSessions", notice: "revoked")
        case let a where a.count == 3 && a[0] == "passkeys" && a[2] == "delete":
            return await admin.perform("DELETE", user + "/authentication/fido2Methods/\(a[1])", notice: "deleted")
        case ["tap", "delete"]:
            guard case .success(let passes) = await admin.graph("GET", user + "/authentication/temporaryAccessPassMethods"),
                  let passID = passes["value"]?.arrayValue?.first?["id"]?.stringValue else { return .failed("The user has no Temporary Access Pass.") }
            return await admin.perform("DELETE", user + "/authentication/temporaryAccessPassMethods/\(passID)", notice: "deleted")
        default: return .failed("Unknown action.")
        }
    }

    /// Issues a Temporary Access Pass and shows it this once (it is not stored in a readable form).
    func issueTemporaryAccessPass(id: String) async throws -> APIResponse {
        let form = admin.form
        var body: [String: JSONValue] = ["isUsableOnce": .bool(form["isUsableOnce"] == "true")]
        if let minutes = form["lifetimeInMinutes"].flatMap(Int64.init) { body["lifetimeInMinutes"] = .int(minutes) }
        switch await admin.graph("POST", "users/\(id)/authentication/temporaryAccessPassMethods", body: .object(body)) {
        case .success(let pass):
            let user = try? await admin.graph("GET", "users/\(id)", query: [("$select", "displayName,userPrincipalName")]).get()
            return admin.page(title: "Temporary Access Pass", section: "users", content: """
            <h1>Temporary Access Pass for \(h(user?["displayName"]?.stringValue))</h1>
            <p>Give this pass to \(h(user?["userPrincipalName"]?.stringValue)) in person or over a channel you trust. It is shown only now.</p>
            <p class="secret mono" id="temporary-access-pass">\(h(pass["temporaryAccessPass"]?.stringValue))</p>
            <p>Valid from \(h(pass["startDateTime"]?.stringValue)) for \(pass["lifetimeInMinutes"]?.intValue ?? 0) minutes\
            \(pass["isUsableOnce"]?.boolValue == true ? ", once" : ", as often as needed in that time").
            They sign in at <span class="mono">/\(h(admin.tenant.domain))/login</span> with “Use a Temporary Access Pass” and create a passkey.</p>
            <p><a href="\(h(admin.base))/users/\(h(id))">Back to the user</a></p>
            """)
        case .failure(let error):
            var response = try await detail(id: id, failure: error.message)
            response.status = 400
            return response
        }
    }

    func detail(id: String, failure: String?) async throws -> APIResponse {
        let path = "users/\(id)"
        let user: JSONValue
        switch await admin.graph("GET", path, query: [("$select", "id,displayName,userPrincipalName,accountEnabled,jobTitle,department,mail,createdDateTime,onPremisesSyncEnabled")]) {
        case .success(let found): user = found
        case .failure(let error):
            return admin.page(title: "User", section: "users", status: 404, failure: error.message, content: "<p><a href=\"\(h(admin.base))/users\">All users</a></p>")
        }
        let userID = user["id"]?.stringValue ?? id
        let enabled = user["accountEnabled"]?.boolValue != false
        var content = """
        <p><a href="\(h(admin.base))/users">All users</a></p>
        <h1>\(h(user["displayName"]?.stringValue))</h1>
        <table><tbody>
        <tr><th>User principal name</th><td>\(h(user["userPrincipalName"]?.stringValue))</td></tr>
        <tr><th>Object id</th><td class="mono">\(h(userID))</td></tr>
        <tr><th>Job title</th><td>\(h(user["jobTitle"]?.stringValue))</td></tr>
        <tr><th>Department</th><td>\(h(user["department"]?.stringValue))</td></tr>
        <tr><th>Account</th><td>\(enabled ? "Enabled" : "<span class=\"pill off\">Disabled</span>")</td></tr>
        <tr><th>Created</th><td>\(h(user["createdDateTime"]?.stringValue))</td></tr>
        </tbody></table>
        \(admin.form("/users/\(userID)/\(enabled ? "disable" : "enable")", "", button: enabled ? "Disable account" : "Enable account", confirm: enabled))
        \(admin.form("/users/\(userID)/revoke", "", button: "Revoke sessions"))
        """

        content += "<h2>Temporary Access Pass</h2>"
        switch await admin.graph("GET", path + "/authentication/temporaryAccessPassMethods") {
        case .success(let passes):
            if let pass = passes["value"]?.arrayValue?.first {
                content += "<p>Issued \(h(pass["createdDateTime"]?.stringValue)); state <strong>\(h(pass["methodUsabilityReason"]?.stringValue))</strong>, "
                    + "valid from \(h(pass["startDateTime"]?.stringValue)) for \(pass["lifetimeInMinutes"]?.intValue ?? 0) minutes.</p>"
                    + admin.form("/users/\(userID)/tap/delete", "", button: "Delete the pass", confirm: true)
            } else {
                content += "<p class=\"muted\">None.</p>"
            }
            content += admin.form("/users/\(userID)/tap", """
                <label>Lifetime (minutes) <input name="lifetimeInMinutes" type="number" min="10" max="43200" value="60"></label>
                <label><input type="checkbox" name="isUsableOnce" value="true" checked> One-time</label>
                """, button: "Issue a Temporary Access Pass")
        case .failure(let error): content += "<p class=\"muted\">\(h(error.message))</p>"
        }

        content += "<h2>Passkeys</h2>"
        switch await admin.graph("GET", path + "/authentication/fido2Methods") {
        case .success(let methods):
            let items = methods["value"]?.arrayValue ?? []
            if items.isEmpty { content += "<p class=\"muted\">No passkeys registered.</p>" } else {
                content += "<table><thead><tr><th>Name</th><th>Type</th><th>Model</th><th>AAGUID</th><th>Attestation</th><th>Created</th><th></th></tr></thead><tbody>"
                for m in items {
                    let methodID = m["id"]?.stringValue ?? ""
                    content += "<tr><td>\(h(m["displayName"]?.stringValue))</td><td>\(h(m["passkeyType"]?.stringValue))</td>"
                        + "<td>\(h(m["model"]?.stringValue))</td><td class=\"mono\">\(h(m["aaGuid"]?.stringValue))</td>"
                        + "<td>\(h(m["attestationLevel"]?.stringValue))</td><td>\(h(m["createdDateTime"]?.stringValue))</td>"
                        + "<td>\(admin.form("/users/\(userID)/passkeys/\(methodID)/delete", "", button: "Delete", confirm: true))</td></tr>"
                }
                content += "</tbody></table>"
            }
        case .failure(let error): content += "<p class=\"muted\">\(h(error.message))</p>"
        }

        content += "<h2>Groups</h2>"
        switch await admin.graph("GET", path + "/memberOf", query: [("$select", "id,displayName"), ("$top", "100")]) {
        case .success(let groups):
            let items = groups["value"]?.arrayValue ?? []
            content += items.isEmpty ? "<p class=\"muted\">Not in any group.</p>" : "<ul>" + items.map {
                "<li><a href=\"\(h(admin.base))/groups/\(h($0["id"]?.stringValue))\">\(h($0["displayName"]?.stringValue))</a></li>"
            }.joined() + "</ul>"
        case .failure(let error): content += "<p class=\"muted\">\(h(error.message))</p>"
        }

        content += "<h2>Directory roles</h2>"
        switch await admin.graph("GET", "roleManagement/directory/roleAssignments",
                                 query: [("$filter", "principalId eq \(AdminRequest.literal(userID))")]) {
        case .success(let assignments):
            let names = (assignments["value"]?.arrayValue ?? []).compactMap { $0["roleDefinitionId"]?.stringValue }
                .compactMap { BuiltInRoles.byTemplateId($0)?.displayName }
            content += names.isEmpty ? "<p class=\"muted\">No directly assigned roles.</p>"
                : "<p>" + names.map { "<span class=\"pill\">\(h($0))</span>" }.joined() + "</p>"
            content += "<p><a href=\"\(h(admin.base))/roles\">Manage role assignments</a></p>"
        case .failure(let error): content += "<p class=\"muted\">\(h(error.message))</p>"
        }
        return admin.page(title: user["displayName"]?.stringValue ?? "User", section: "users", failure: failure, content: content)
    }
}
