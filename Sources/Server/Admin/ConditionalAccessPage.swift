import Foundation
import TesseraCore

/// Conditional Access: the tenant's policies (state, who and what they target, conditions, grant and session
/// controls), and each policy with the sign-ins it applied to and what it decided for each: the impact of a
/// report-only policy before it is switched on.
struct ConditionalAccessPage {
    let admin: AdminRequest

    static let path = "/conditional-access"

    func list(failure: String?) async throws -> APIResponse {
        var failure = failure
        var rows = ""
        switch await admin.graph("GET", "identity/conditionalAccess/policies", query: [("$top", "999")]) {
        case .success(let page):
            let policies = (page["value"]?.arrayValue ?? []).sorted {
                ($0["displayName"]?.stringValue ?? "").localizedStandardCompare($1["displayName"]?.stringValue ?? "") == .orderedAscending
            }
            let names = await PolicyDescription.Names.lookUp(policies, admin: admin)
            for policy in policies {
                let described = PolicyDescription(policy: policy, names: names)
                let link = "\(admin.base + Self.path)/\(policy["id"]?.stringValue ?? "")"
                rows += "<tr><td><a href=\"\(h(link))\">\(h(policy["displayName"]?.stringValue))</a></td>"
                    + "<td>\(PolicyDescription.state(policy["state"]?.stringValue))</td>"
                    + "<td>\(described.targets)</td><td>\(described.resources)</td><td>\(described.otherConditions)</td>"
                    + "<td>\(described.grant)</td><td>\(described.session)</td></tr>"
            }
        case .failure(let error): failure = failure ?? error.message
        }
        return admin.page(title: "Conditional Access", section: "conditional-access", failure: failure, content: """
        <h1>Conditional Access</h1>
        <p><a href="\(h(admin.base + WhatIfPage.path))">What If: which policies apply to a sign-in</a></p>
        <table><thead><tr><th>Policy</th><th>State</th><th>Users and workload identities</th><th>Resources</th><th>Conditions</th>\
        <th>Grant</th><th>Session</th></tr></thead>
        <tbody>\(rows.isEmpty ? "<tr><td colspan=\"7\" class=\"muted\">No policies.</td></tr>" : rows)</tbody></table>
        """)
    }

    /// The results a sign-in records for a policy that applied to it (`notApplied` and `notEnabled` ones did not).
    static let appliedResults = ["success", "failure", "reportOnlySuccess", "reportOnlyFailure", "reportOnlyInterrupted"]

    /// A result in words, as a pill.
    static func result(_ result: String?) -> String {
        switch result {
        case "success": "<span class=\"pill\">Success</span>"
        case "failure": "<span class=\"pill off\">Failure</span>"
        case "reportOnlySuccess": "<span class=\"pill\">Report-only: success</span>"
        case "reportOnlyFailure": "<span class=\"pill off\">Report-only: failure</span>"
        case "reportOnlyInterrupted": "<span class=\"pill off\">Report-only: user action required</span>"
        default: "<span class=\"pill\">\(h(result))</span>"
        }
    }

    /// One policy, and the sign-ins it applied to (newest first, 50 a page).
    func detail(id: String, failure: String?) async throws -> APIResponse {
        let policy: JSONValue
        let found = Identifier.isGUID(id) ? await admin.graph("GET", "identity/conditionalAccess/policies/\(id)")
            : .failure(AdminRequest.GraphFailure(message: "No Conditional Access policy has the id '\(id)'."))
        switch found {
        case .success(let found): policy = found
        case .failure(let error):
            return admin.page(title: "Conditional Access", section: "conditional-access", status: 404, failure: error.message,
                              content: "<h1>Conditional Access policy</h1>")
        }
        let policyID = policy["id"]?.stringValue ?? id
        let described = PolicyDescription(policy: policy, names: await PolicyDescription.Names.lookUp([policy], admin: admin))
        let results = Self.appliedResults.map(AdminRequest.literal).joined(separator: ",")
        var query: [(name: String, value: String)] = [
            ("$filter", "appliedConditionalAccessPolicies/any(p:p/id eq \(AdminRequest.literal(policyID)) and p/result in (\(results)))"),
            ("$top", "\(UsersPage.pageSize)")]
        if let page = admin.request.parameter("page") { query.append(("$skiptoken", page)) }
        var failure = failure
        var rows = "", pager = "", counts: [String: Int] = [:]
        switch await admin.graph("GET", "auditLogs/signIns", query: query) {
        case .success(let page):
            for entry in page["value"]?.arrayValue ?? [] {
                let applied = entry["appliedConditionalAccessPolicies"]?.arrayValue?.first {
                    $0["id"]?.stringValue?.lowercased() == policyID.lowercased()
                }
                let result = applied?["result"]?.stringValue
                counts[result ?? "", default: 0] += 1
                let enforced = (applied?["enforcedGrantControls"]?.arrayValue ?? []) + (applied?["enforcedSessionControls"]?.arrayValue ?? [])
                let who = entry["userPrincipalName"]?.stringValue ?? entry["servicePrincipalName"]?.stringValue
                    ?? entry["userDisplayName"]?.stringValue
                rows += "<tr><td>\(h(entry["createdDateTime"]?.stringValue))</td>"
                    + "<td>\(h(who))</td>"
                    + "<td>\(h(entry["appDisplayName"]?.stringValue ?? entry["appId"]?.stringValue))</td>"
                    + "<td>\(Self.result(result))</td>"
                    + "<td class=\"mono\">\(h(enforced.compactMap(\.stringValue).joined(separator: ", ")))</td>"
                    + "<td>\(h(entry["conditionalAccessStatus"]?.stringValue))</td>"
                    + "<td>\(h(entry["ipAddress"]?.stringValue))</td></tr>"
            }
            pager = admin.pager(page, path: "\(Self.path)/\(policyID)", keep: [])
        case .failure(let error): failure = failure ?? error.message
        }
        let reportOnly = policy["state"] == "enabledForReportingButNotEnforced"
            ? ": as report-only it enforced none of it, so this is what switching it on would do" : ""
        let tally = Self.appliedResults.compactMap { result in counts[result].map { "\(Self.result(result)) × \($0)" } }
        let summary = tally.isEmpty ? "" : "On this page: " + tally.joined(separator: " ")
        return admin.page(title: policy["displayName"]?.stringValue ?? "Conditional Access", section: "conditional-access", failure: failure,
                          content: """
        <p><a href="\(h(admin.base + Self.path))">Conditional Access</a></p>
        <h1>\(h(policy["displayName"]?.stringValue))</h1>
        <table><tbody>
        <tr><th>State</th><td>\(PolicyDescription.state(policy["state"]?.stringValue))</td></tr>
        <tr><th>Users and workload identities</th><td>\(described.targets)</td></tr>
        <tr><th>Resources</th><td>\(described.resources)</td></tr>
        <tr><th>Conditions</th><td>\(described.otherConditions)</td></tr>
        <tr><th>Grant</th><td>\(described.grant)</td></tr>
        <tr><th>Session</th><td>\(described.session)</td></tr>
        <tr><th>Changed</th><td>\(h(policy["modifiedDateTime"]?.stringValue ?? policy["createdDateTime"]?.stringValue))</td></tr>
        </tbody></table>
        <h2>Sign-ins it applied to</h2>
        <p class="muted">Every sign-in and token this policy applied to, with what it decided\(reportOnly). \(summary)</p>
        <table><thead><tr><th>Time (UTC)</th><th>User or service principal</th><th>Application</th><th>Result</th><th>Controls</th>\
        <th>Conditional Access</th><th>IP address</th></tr></thead>
        <tbody>\(rows.isEmpty ? "<tr><td colspan=\"7\" class=\"muted\">No sign-ins.</td></tr>" : rows)</tbody></table>
        \(pager)
        """)
    }
}
