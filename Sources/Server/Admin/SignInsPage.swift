import Foundation
import TesseraCore

/// Sign-in logs, newest first, 50 a page, optionally for one user: the outcome with its reason code and the
/// passkey used (AAGUID and type).
struct SignInsPage {
    let admin: AdminRequest

    func failureCell(_ status: JSONValue?) -> String {
        "<span class=\"pill off\">Failure</span> <span class=\"mono\">\(h(status?["failureReason"]?.stringValue))</span>"
            + "<br><span class=\"muted\">\(h(status?["additionalDetails"]?.stringValue))</span>"
    }

    func render(failure: String?) async throws -> APIResponse {
        let user = admin.request.parameter("user")?.trimmingCharacters(in: .whitespaces) ?? ""
        var query: [(name: String, value: String)] = [("$top", "\(UsersPage.pageSize)")]
        if !user.isEmpty { query.append(("$filter", "userPrincipalName eq \(AdminRequest.literal(user))")) }
        if let page = admin.request.parameter("page") { query.append(("$skiptoken", page)) }
        var rows = "", pager = ""
        var failure = failure
        switch await admin.graph("GET", "auditLogs/signIns", query: query) {
        case .success(let page):
            for entry in page["value"]?.arrayValue ?? [] {
                let status = entry["status"]
                let ok = status?["errorCode"]?.intValue == 0
                let detail = entry["authenticationDetails"]?.arrayValue?.first
                let passkey = [entry["passkeyType"]?.stringValue, entry["aaGuid"]?.stringValue].compactMap { $0 }.joined(separator: " · ")
                rows += "<tr><td>\(h(entry["createdDateTime"]?.stringValue))</td>"
                    + "<td>\(h(entry["userPrincipalName"]?.stringValue ?? entry["userDisplayName"]?.stringValue))</td>"
                    + "<td>\(h(entry["appDisplayName"]?.stringValue))</td>"
                    + "<td>\(h(detail?["authenticationMethod"]?.stringValue))<br><span class=\"muted mono\">\(h(passkey))</span></td>"
                    + "<td>\(ok ? "Success" : failureCell(status))</td>"
                    + "<td>\(h(entry["ipAddress"]?.stringValue))</td></tr>"
            }
            pager = admin.pager(page, path: "/signins", keep: user.isEmpty ? [] : [("user", user)])
        case .failure(let error): failure = failure ?? error.message
        }
        return admin.page(title: "Sign-in logs", section: "signins", failure: failure, content: """
        <h1>Sign-in logs</h1>
        <form method="get" action="\(h(admin.base))/signins" role="search"><input name="user" value="\(h(user))" placeholder="user@domain" aria-label="User principal name"><button type="submit">Filter</button></form>
        <table><thead><tr><th>Time (UTC)</th><th>User</th><th>Application</th><th>Method</th><th>Result</th><th>IP address</th></tr></thead>
        <tbody>\(rows.isEmpty ? "<tr><td colspan=\"6\" class=\"muted\">No sign-ins.</td></tr>" : rows)</tbody></table>
        \(pager)
        """)
    }
}
