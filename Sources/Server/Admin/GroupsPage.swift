import Foundation
import TesseraCore

/// Groups: a searchable, paged list, creation, and each group's members (paged, added by user principal name or
/// object id, removed one by one).
struct GroupsPage {
    let admin: AdminRequest

    func list(failure: String?) async throws -> APIResponse {
        let search = admin.request.parameter("q")?.trimmingCharacters(in: .whitespaces) ?? ""
        var query: [(name: String, value: String)] = [("$select", "id,displayName,description,securityEnabled,isAssignableToRole"),
                                                      ("$top", "\(UsersPage.pageSize)")]
        query.append(search.isEmpty ? ("$orderby", "displayName") : ("$filter", "startswith(displayName,\(AdminRequest.literal(search)))"))
        if let page = admin.request.parameter("page") { query.append(("$skiptoken", page)) }
        var rows = "", pager = ""
        var failure = failure
        switch await admin.graph("GET", "groups", query: query) {
        case .success(let page):
            for group in page["value"]?.arrayValue ?? [] {
                rows += "<tr><td><a href=\"\(h(admin.base))/groups/\(h(group["id"]?.stringValue))\">\(h(group["displayName"]?.stringValue))</a></td>"
                    + "<td>\(h(group["description"]?.stringValue))</td>"
                    + "<td>\(group["isAssignableToRole"]?.boolValue == true ? "<span class=\"pill\">Role-assignable</span>" : "")</td></tr>"
            }
            pager = admin.pager(page, path: "/groups", keep: search.isEmpty ? [] : [("q", search)])
        case .failure(let error): failure = failure ?? error.message
        }
        let create = admin.form("/groups", """
            <label>Display name <input name="displayName" required></label>
            <label>Description <input name="description"></label>
            <label><input type="checkbox" name="isAssignableToRole" value="true"> Can be assigned directory roles</label>
            """, button: "Create group", style: "block")
        return admin.page(title: "Groups", section: "groups", failure: failure, content: """
        <h1>Groups</h1>
        <form method="get" action="\(h(admin.base))/groups" role="search"><input name="q" value="\(h(search))" placeholder="Name starts with…" aria-label="Search groups"><button type="submit">Search</button></form>
        <table><thead><tr><th>Name</th><th>Description</th><th></th></tr></thead>
        <tbody>\(rows.isEmpty ? "<tr><td colspan=\"3\" class=\"muted\">No groups found.</td></tr>" : rows)</tbody></table>
        \(pager)
        <h2>New security group</h2>
        \(create)
        """)
    }

    func create() async -> AdminRequest.Outcome {
        let form = admin.form
        let name = form["displayName"]?.trimmingCharacters(in: .whitespaces) ?? ""
        let nickname = String(name.unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) && $0.isASCII }.prefix(50))
        var body: [String: JSONValue] = [
            "displayName": .string(name), "mailEnabled": false, "securityEnabled": true,
            "mailNickname": .string(nickname.isEmpty ? "group" : nickname),
        ]
        if let description = form["description"], !description.isEmpty { body["description"] = .string(description) }
        if form["isAssignableToRole"] == "true" { body["isAssignableToRole"] = true }
        return await admin.perform("POST", "groups", body: .object(body), notice: "created")
    }

    func act(id: String, action: [String]) async -> AdminRequest.Outcome {
        switch action {
        case ["members", "add"]:
            let who = admin.form["member"]?.trimmingCharacters(in: .whitespaces) ?? ""
            guard !who.isEmpty else { return .failed("Say which user or group to add: a user principal name or an object id.") }
            guard case .success(let member) = await admin.graph("GET", (who.contains("@") ? "users/" : "directoryObjects/") + who,
                                                                query: [("$select", "id")]),
                  let memberID = member["id"]?.stringValue else { return .failed("No user or group '\(who)' was found.") }
            return await admin.perform("POST", "groups/\(id)/members/$ref",
                                       body: ["@odata.id": .string("\(admin.request.baseURL)/v1.0/directoryObjects/\(memberID)")], notice: "added")
        case let a where a.count == 3 && a[0] == "members" && a[2] == "remove":
            return await admin.perform("DELETE", "groups/\(id)/members/\(a[1])/$ref", notice: "removed")
        default: return .failed("Unknown action.")
        }
    }

    func detail(id: String, failure: String?) async throws -> APIResponse {
        let group: JSONValue
        switch await admin.graph("GET", "groups/\(id)", query: [("$select", "id,displayName,description,isAssignableToRole,createdDateTime")]) {
        case .success(let found): group = found
        case .failure(let error):
            return admin.page(title: "Group", section: "groups", status: 404, failure: error.message, content: "<p><a href=\"\(h(admin.base))/groups\">All groups</a></p>")
        }
        let groupID = group["id"]?.stringValue ?? id
        var query: [(name: String, value: String)] = [("$select", "id,displayName,userPrincipalName"), ("$top", "\(UsersPage.pageSize)")]
        if let page = admin.request.parameter("page") { query.append(("$skiptoken", page)) }
        var rows = "", pager = ""
        var failure = failure
        switch await admin.graph("GET", "groups/\(groupID)/members", query: query) {
        case .success(let page):
            for member in page["value"]?.arrayValue ?? [] {
                let memberID = member["id"]?.stringValue ?? ""
                let isUser = member["@odata.type"]?.stringValue == "#microsoft.graph.user"
                rows += "<tr><td><a href=\"\(h(admin.base))/\(isUser ? "users" : "groups")/\(h(memberID))\">\(h(member["displayName"]?.stringValue))</a></td>"
                    + "<td>\(h(member["userPrincipalName"]?.stringValue))</td>"
                    + "<td>\(admin.form("/groups/\(groupID)/members/\(memberID)/remove", "", button: "Remove", confirm: true))</td></tr>"
            }
            pager = admin.pager(page, path: "/groups/\(groupID)", keep: [])
        case .failure(let error): failure = failure ?? error.message
        }
        return admin.page(title: group["displayName"]?.stringValue ?? "Group", section: "groups", failure: failure, content: """
        <p><a href="\(h(admin.base))/groups">All groups</a></p>
        <h1>\(h(group["displayName"]?.stringValue))</h1>
        <p>\(h(group["description"]?.stringValue))</p>
        <p class="muted mono">\(h(groupID))\(group["isAssignableToRole"]?.boolValue == true ? " · role-assignable" : "")</p>
        <h2>Members</h2>
        <table><thead><tr><th>Name</th><th>User principal name</th><th></th></tr></thead>
        <tbody>\(rows.isEmpty ? "<tr><td colspan=\"3\" class=\"muted\">No members.</td></tr>" : rows)</tbody></table>
        \(pager)
        \(admin.form("/groups/\(groupID)/members/add", "<label>User principal name or object id <input name=\"member\" required></label>", button: "Add member"))
        """)
    }
}
