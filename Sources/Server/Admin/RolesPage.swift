import Foundation
import TesseraCore

/// Directory role assignments at the tenant scope: who holds which role, assigning a role to a user or a
/// role-assignable group, and removing an assignment.
struct RolesPage {
    let admin: AdminRequest

    func render(failure: String?) async throws -> APIResponse {
        var failure = failure
        var byRole: [String: [(assignment: String, principal: String)]] = [:]
        var names: [String: (name: String, detail: String, isUser: Bool)] = [:]
        switch await admin.graph("GET", "roleManagement/directory/roleAssignments", query: [("$top", "999")]) {
        case .success(let page):
            for a in page["value"]?.arrayValue ?? [] {
                guard let id = a["id"]?.stringValue, let role = a["roleDefinitionId"]?.stringValue,
                      let principal = a["principalId"]?.stringValue else { continue }
                byRole[role, default: []].append((id, principal))
            }
            let ids = Array(Set(byRole.values.flatMap { $0.map(\.principal) }))
            if !ids.isEmpty, case .success(let found) = await admin.graph("POST", "directoryObjects/getByIds", body: ["ids": .strings(ids)]) {
                for object in found["value"]?.arrayValue ?? [] {
                    guard let id = object["id"]?.stringValue else { continue }
                    let isUser = object["@odata.type"]?.stringValue == "#microsoft.graph.user"
                    names[id] = (object["displayName"]?.stringValue ?? id,
                                 object["userPrincipalName"]?.stringValue ?? object["appId"]?.stringValue ?? "", isUser)
                }
            }
        case .failure(let error): failure = failure ?? error.message
        }
        var rows = ""
        let held = byRole.keys.compactMap(BuiltInRoles.byTemplateId).sorted { $0.displayName < $1.displayName }
        for role in held {
            let holders = (byRole[role.templateId] ?? []).sorted { (names[$0.principal]?.name ?? "") < (names[$1.principal]?.name ?? "") }
            let list = holders.map { holder -> String in
                let who = names[holder.principal]
                let link = who?.isUser == true ? "<a href=\"\(h(admin.base))/users/\(h(holder.principal))\">\(h(who?.name))</a>" : h(who?.name ?? holder.principal)
                return "<li>\(link) <span class=\"muted\">\(h(who?.detail))</span> "
                    + admin.form("/roles/\(holder.assignment)/remove", "", button: "Remove", confirm: true) + "</li>"
            }.joined()
            rows += "<tr><td><strong>\(h(role.displayName))</strong>\(role.isPrivileged ? " <span class=\"pill\">Privileged</span>" : "")"
                + "<br><span class=\"muted\">\(h(role.description))</span></td><td><ul>\(list)</ul></td></tr>"
        }
        let options = BuiltInRoles.all.sorted { $0.displayName < $1.displayName }.map {
            "<option value=\"\($0.templateId)\">\(h($0.displayName))</option>"
        }.joined()
        return admin.page(title: "Roles", section: "roles", failure: failure, content: """
        <h1>Directory roles</h1>
        <table><thead><tr><th>Role</th><th>Assigned to</th></tr></thead>
        <tbody>\(rows.isEmpty ? "<tr><td colspan=\"2\" class=\"muted\">No role assignments.</td></tr>" : rows)</tbody></table>
        <h2>Assign a role</h2>
        \(admin.form("/roles/assign", """
            <label>Role <select name="role">\(options)</select></label>
            <label>User principal name or object id <input name="principal" required></label>
            """, button: "Assign", style: "block"))
        """)
    }

    func act(_ action: [String]) async -> AdminRequest.Outcome {
        switch action {
        case ["assign"]:
            let form = admin.form
            let who = form["principal"]?.trimmingCharacters(in: .whitespaces) ?? ""
            guard !who.isEmpty, let role = form["role"] else { return .failed("Choose a role and say to whom.") }
            guard case .success(let principal) = await admin.graph("GET", (who.contains("@") ? "users/" : "directoryObjects/") + who,
                                                                   query: [("$select", "id")]),
                  let principalID = principal["id"]?.stringValue else { return .failed("No user or group '\(who)' was found.") }
            return await admin.perform("POST", "roleManagement/directory/roleAssignments", body: [
                "principalId": .string(principalID), "roleDefinitionId": .string(role), "directoryScopeId": "/",
            ], notice: "assigned")
        case let a where a.count == 2 && a[1] == "remove":
            return await admin.perform("DELETE", "roleManagement/directory/roleAssignments/\(a[0])", notice: "removed")
        default: return .failed("Unknown action.")
        }
    }
}
