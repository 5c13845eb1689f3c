import Foundation
import TesseraCore

/// Conditional Access What If: a form that describes a sign-in (a user or a service principal, the application or user
/// action, where from, on what), asked of Graph's `evaluate` action, and every policy's answer: whether it applies, and
/// if not, which conditions the sign-in missed.
struct WhatIfPage {
    let admin: AdminRequest

    static let path = "/conditional-access/what-if"

    /// The form, empty (`GET`).
    func render(failure: String?) async throws -> APIResponse {
        page(fields: [:], results: "", failure: failure)
    }

    /// The form's question, answered (`POST`, with the session's CSRF token like every admin center form).
    func evaluate() async throws -> APIResponse {
        let fields = admin.form
        switch await question(fields) {
        case .failure(let failure):
            return page(fields: fields, results: "", failure: failure.message, status: 400)
        case .success(let body):
            switch await admin.graph("POST", "identity/conditionalAccess/evaluate", body: body) {
            case .failure(let failure): return page(fields: fields, results: "", failure: failure.message, status: 400)
            case .success(let answer): return page(fields: fields, results: results(answer["value"]?.arrayValue ?? []), failure: nil)
            }
        }
    }

    /// The `evaluate` body the form describes, or what is wrong with it.
    func question(_ fields: [String: String]) async -> Result<JSONValue, AdminRequest.GraphFailure> {
        func field(_ name: String) -> String { fields[name]?.trimmingCharacters(in: .whitespaces) ?? "" }
        let isUser = field("identity") != "servicePrincipal"
        let who = field("principal")
        guard !who.isEmpty else {
            return .failure(.init(message: "Say who signs in: a user principal name, a service principal's name, or an object id."))
        }
        let identity: JSONValue
        if isUser {
            let filter = Identifier.isGUID(who) ? "id eq \(AdminRequest.literal(who))" : "userPrincipalName eq \(AdminRequest.literal(who))"
            guard case .success(let id) = await find("users", filter: filter) else { return .failure(.init(message: "No user '\(who)' was found.")) }
            identity = ["@odata.type": "#microsoft.graph.userSignIn", "userId": .string(id)]
        } else {
            let filter = Identifier.isGUID(who) ? "id eq \(AdminRequest.literal(who)) or appId eq \(AdminRequest.literal(who))"
                : "displayName eq \(AdminRequest.literal(who))"
            guard case .success(let id) = await find("servicePrincipals", filter: filter) else {
                return .failure(.init(message: "No service principal '\(who)' was found."))
            }
            identity = ["@odata.type": "#microsoft.graph.servicePrincipalSignIn", "servicePrincipalId": .string(id)]
        }
        let context: JSONValue
        switch field("action") {
        case "registerSecurityInformation", "registerOrJoinDevices":
            context = ["@odata.type": "#microsoft.graph.userActionContext", "userAction": .string(field("action"))]
        default:
            let app = field("application")
            guard !app.isEmpty else { return .failure(.init(message: "Say which application: its application id or its name.")) }
            var appID = app
            if !Identifier.isGUID(app) {
                guard case .success(let found) = await admin.graph("GET", "servicePrincipals", query: [
                    ("$filter", "displayName eq \(AdminRequest.literal(app))"), ("$select", "appId")]),
                    let id = found["value"]?.arrayValue?.first?["appId"]?.stringValue
                else { return .failure(.init(message: "No application '\(app)' was found.")) }
                appID = id
            }
            context = ["@odata.type": "#microsoft.graph.applicationContext", "includeApplications": [.string(appID)]]
        }
        var conditions: [String: JSONValue] = [:]
        for name in ["ipAddress", "country", "devicePlatform", "clientAppType", "userRiskLevel", "signInRiskLevel"] where !field(name).isEmpty {
            conditions[name] = .string(field(name))
        }
        return .success(["signInIdentity": identity, "signInContext": context, "signInConditions": .object(conditions),
                         "appliedPoliciesOnly": false])
    }

    /// The id of the only object of `collection` that `filter` finds.
    private func find(_ collection: String, filter: String) async -> Result<String, AdminRequest.GraphFailure> {
        switch await admin.graph("GET", collection, query: [("$filter", filter), ("$select", "id"), ("$top", "2")]) {
        case .success(let found):
            guard let matches = found["value"]?.arrayValue, matches.count == 1, let id = matches[0]["id"]?.stringValue else {
                return .failure(.init(message: "Not found."))
            }
            return .success(id)
        case .failure(let failure): return .failure(failure)
        }
    }

    /// `whatIfAnalysisReasons` flags in words.
    static let reasons = [
        "users": "user not targeted, or excluded", "workloadIdentities": "service principal not targeted, or excluded",
        "application": "application not targeted", "userActions": "user action not targeted",
        "authenticationContext": "authentication context not targeted", "devicePlatform": "device platform",
        "devices": "device filter", "clientApps": "client app", "location": "location", "signInRisk": "sign-in risk",
        "userRisk": "user risk", "insiderRisk": "insider risk", "authenticationFlow": "authentication flow",
        "policyNotEnabled": "policy is off", "invalidPolicy": "policy cannot be evaluated (fails closed)",
        "invalidCondition": "a condition cannot be evaluated (fails closed)", "notEnoughInformation": "not enough information",
    ]

    func results(_ value: [JSONValue]) -> String {
        let sorted = value.sorted { ($0["policyApplies"]?.boolValue == true ? 0 : 1, $0["displayName"]?.stringValue ?? "")
            < ($1["policyApplies"]?.boolValue == true ? 0 : 1, $1["displayName"]?.stringValue ?? "") }
        var rows = ""
        for policy in sorted {
            let applies = policy["policyApplies"]?.boolValue == true
            let flags = (policy["analysisReasons"]?.stringValue ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            let why = flags.filter { $0 != "notSet" }.map { Self.reasons[$0] ?? $0 }.joined(separator: "; ")
            let link = "\(admin.base + ConditionalAccessPage.path)/\(policy["id"]?.stringValue ?? "")"
            rows += "<tr><td><a href=\"\(h(link))\">\(h(policy["displayName"]?.stringValue))</a></td>"
                + "<td>\(PolicyDescription.state(policy["state"]?.stringValue))</td>"
                + "<td>\(applies ? "<strong>Applies</strong>" : "Does not apply")</td>"
                + "<td>\(applies && !why.isEmpty ? "Applies: " : "")\(h(why))</td>"
                + "<td>\(applies ? PolicyDescription(policy: policy, names: .init()).grant : "")</td></tr>"
        }
        return """
        <h2>Result</h2>
        <table class="whatif"><thead><tr><th>Policy</th><th>State</th><th>Applies</th><th>Why not</th><th>Grant</th></tr></thead>
        <tbody>\(rows.isEmpty ? "<tr><td colspan=\"5\" class=\"muted\">The tenant has no Conditional Access policies.</td></tr>" : rows)\
        </tbody></table>
        """
    }

    func page(fields: [String: String], results: String, failure: String?, status: Int = 200) -> APIResponse {
        func value(_ name: String) -> String { h(fields[name]) }
        func select(_ name: String, _ label: String, _ options: [(String, String)]) -> String {
            "<label>\(h(label)) <select name=\"\(name)\">" + options.map { option in
                "<option value=\"\(h(option.0))\"\(fields[name] == option.0 ? " selected" : "")>\(h(option.1))</option>"
            }.joined() + "</select></label>"
        }
        let risk = [("", "none"), ("low", "low"), ("medium", "medium"), ("high", "high")]
        let form = admin.form(Self.path, """
            \(select("identity", "Who", [("user", "User"), ("servicePrincipal", "Service principal")]))
            <label>User principal name, service principal name or object id <input name="principal" required size="40" value="\(value("principal"))"></label>
            <label>Application (id or name) <input name="application" size="40" value="\(value("application"))" \
            placeholder="00000003-0000-0000-c000-000000000000"></label>
            \(select("action", "Or a user action", [("", "none"), ("registerSecurityInformation", "Register security information"),
                                                    ("registerOrJoinDevices", "Register or join devices")]))
            <label>IP address <input name="ipAddress" value="\(value("ipAddress"))" placeholder="203.0.113.7"></label>
            <label>Country <input name="country" value="\(value("country"))" maxlength="2" placeholder="NZ"></label>
            \(select("devicePlatform", "Device platform", [("", "unknown")] + DevicePlatform.allCases.map { ($0.rawValue, $0.rawValue) }))
            \(select("clientAppType", "Client app", [("", "default")] + ClientAppType.allCases.map { ($0.rawValue, $0.rawValue) }))
            \(select("userRiskLevel", "User risk", risk))
            \(select("signInRiskLevel", "Sign-in risk", risk))
            """, button: "What If", style: "block")
        return admin.page(title: "What If", section: "conditional-access", status: status, failure: failure, content: """
        <p><a href="\(h(admin.base + ConditionalAccessPage.path))">Conditional Access</a></p>
        <h1>What If</h1>
        <p class="muted">Which Conditional Access policies apply to a sign-in, decided by the same engine as real sign-ins. \
        A condition left out is unknown: a policy that needs it does not apply.</p>
        \(form)
        \(results)
        """)
    }
}
