import Foundation
import TesseraCore

/// The admin center's Connect Health page: each agent with its role, version, last upload and health, and the
/// alerts (active first), each with what was seen and what to do. Read with the signed-in user's roles, as the
/// API reads (Global or Hybrid Identity Administrator, Global Reader, Security Reader).
struct HealthPage {
    let admin: AdminRequest

    func render(failure: String?) async throws -> APIResponse {
        let health = HealthService(directory: admin.app.directory, clock: admin.app.clock)
        let now = admin.app.clock.now
        do {
            try await health.require(admin.caller, oneOf: HealthService.readers, to: "read Connect Health")
        } catch let error as DirectoryError {
            return admin.page(title: "Connect Health", section: "health", status: 403, failure: error.message, content: "<h1>Connect Health</h1>")
        }
        let agents = try await health.agents(tenant: admin.tenant.id).map { $0.json(now: now) }
        let alerts = try await health.alerts(tenant: admin.tenant.id)
        var agentRows = ""
        for agent in agents {
            let state = agent["health"]?.stringValue ?? ""
            agentRows += "<tr><td>\(h(agent["machineName"]?.stringValue))<br><span class=\"muted mono\">\(h(agent["id"]?.stringValue))</span></td>"
                + "<td>\(agent["role"]?.stringValue == "sync" ? "Sync" : "AD DS")</td>"
                + "<td class=\"mono\">\(h(agent["agentVersion"]?.stringValue))</td>"
                + "<td>\(h(agent["lastUploadDateTime"]?.stringValue ?? "never"))</td>"
                + "<td><span class=\"pill\(state == "Healthy" ? "" : " off")\">\(h(state))</span> \(agent["activeAlerts"]?.intValue ?? 0) active</td>"
                + "<td>\(h(Self.summary(agent["lastReport"])))</td></tr>"
        }
        var alertRows = ""
        for alert in alerts {
            let active = alert["state"]?.stringValue == "Active"
            alertRows += "<tr><td><span class=\"pill\(active ? " off" : "")\">\(active ? "Active" : "Resolved")</span></td>"
                + "<td>\(h(alert["level"]?.stringValue))</td>"
                + "<td><strong>\(h(alert["displayName"]?.stringValue))</strong><br>\(h(alert["description"]?.stringValue))"
                + "<br><span class=\"muted\">\(h(alert["remediation"]?.stringValue))</span></td>"
                + "<td>\(h(alert["machineName"]?.stringValue))</td>"
                + "<td>\(h(alert["createdDate"]?.stringValue))\(alert["resolvedDate"]?.stringValue.map { "<br>resolved \(h($0))" } ?? "")</td></tr>"
        }
        return admin.page(title: "Connect Health", section: "health", failure: failure, content: """
        <h1>Connect Health</h1>
        <p class="muted">Agents upload over mutual TLS 1.2 or newer; one silent for more than two hours raises
        "Health service data is not up to date".</p>
        <h2>Agents</h2>
        <table><thead><tr><th>Machine</th><th>Role</th><th>Version</th><th>Last upload (UTC)</th><th>Health</th><th>Last report</th></tr></thead>
        <tbody>\(agentRows.isEmpty ? Self.noAgents : agentRows)</tbody></table>
        <h2>Alerts</h2>
        <table><thead><tr><th>State</th><th>Level</th><th>Alert</th><th>Machine</th><th>Raised (UTC)</th></tr></thead>
        <tbody>\(alertRows.isEmpty ? "<tr><td colspan=\"5\" class=\"muted\">No alerts.</td></tr>" : alertRows)</tbody></table>
        """)
    }

    /// One line about an agent's newest report.
    static func summary(_ report: JSONValue?) -> String {
        if let sync = report?["sync"] {
            let last = sync["runs"]?.arrayValue?.last
            return "last run \(last?["status"]?.stringValue ?? "none") \(last?["at"]?.stringValue ?? ""); "
                + "\(sync["exportErrors"]?.arrayValue?.count ?? 0) export error(s), \(sync["quarantined"]?.arrayValue?.count ?? 0) quarantined"
        }
        if let dc = report?["adds"] {
            guard dc["reachable"]?.boolValue == true else { return "\(dc["domainController"]?.stringValue ?? "") unreachable" }
            let name = dc["domainController"]?.stringValue ?? ""
            return "\(name): bind \(Self.ms(dc["bindMilliseconds"])), search \(Self.ms(dc["searchMilliseconds"]))"
        }
        return "no report yet"
    }

    static let noAgents = "<tr><td colspan=\"6\" class=\"muted\">No agents: register one with <code>tessera health agent</code>.</td></tr>"

    static func ms(_ value: JSONValue?) -> String { String(format: "%.1f ms", value?.doubleValue ?? 0) }
}
