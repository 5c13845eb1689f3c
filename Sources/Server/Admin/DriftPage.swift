import TesseraCore

/// "Configuration drift": the tenant's configuration monitors with their last run (a monitor a governing tenant applied
/// says so), and the drifts still active (each drifted property with the tenant's current value and the baseline's
/// desired one), read through `/admin/configurationManagement` as the signed-in user. A governing tenant also sees each
/// baseline it applied to governed tenants with the tenants side by side (``GovernedDriftTable``).
struct DriftPage {
    let admin: AdminRequest

    static let root = "admin/configurationManagement"

    func render(failure: String?) async throws -> APIResponse {
        let monitors: [JSONValue]
        switch await admin.graph("GET", "\(Self.root)/configurationMonitors") {
        case .success(let value): monitors = value["value"]?.arrayValue ?? []
        case .failure(let error):
            return admin.page(title: "Configuration drift", section: "drift", status: 403, failure: error.message,
                              content: "<h1>Configuration drift</h1>")
        }
        var failure = failure
        var results: [JSONValue] = [], drifts: [JSONValue] = []
        switch await admin.graph("GET", "\(Self.root)/configurationMonitoringResults") {
        case .success(let value): results = value["value"]?.arrayValue ?? []
        case .failure(let error): failure = failure ?? error.message
        }
        switch await admin.graph("GET", "\(Self.root)/configurationDrifts") {
        case .success(let value): drifts = (value["value"]?.arrayValue ?? []).filter { $0["status"] == "active" }
        case .failure(let error): failure = failure ?? error.message
        }
        // The latest run of each monitor (the timestamps are ISO 8601 in UTC, so they order as strings).
        var last: [String: JSONValue] = [:]
        for result in results {
            guard let monitor = result["monitorId"]?.stringValue else { continue }
            let started = result["runInitiationDateTime"]?.stringValue ?? ""
            if started >= (last[monitor]?["runInitiationDateTime"]?.stringValue ?? "") { last[monitor] = result }
        }
        var names: [String: String] = [:]
        var monitorRows = ""
        for monitor in monitors {
            let id = monitor["id"]?.stringValue ?? ""
            names[id] = monitor["displayName"]?.stringValue
            let run = last[id].map { result in
                "\(Self.pill(result["runStatus"]?.stringValue)) \(result["driftsCount"]?.intValue ?? 0) drifts"
                    + "<br><span class=\"mono\">\(h(result["runCompletionDateTime"]?.stringValue))</span>"
                    + ((result["errorDetails"]?.arrayValue ?? []).compactMap { $0["errorMessage"]?.stringValue }.map { "<br>\(h($0))" }.joined())
            } ?? "<span class=\"muted\">Not run yet</span>"
            let managed = monitor["managedBy"].flatMap { $0["tenantName"]?.stringValue ?? $0["tenantId"]?.stringValue }
                .map { "<br><span class=\"pill\">Managed by \(h($0))</span>" } ?? ""
            monitorRows += "<tr><td>\(h(monitor["displayName"]?.stringValue))"
                + "<br><span class=\"muted\">\(h(monitor["description"]?.stringValue))</span>\(managed)</td>"
                + "<td>\(Self.pill(monitor["status"]?.stringValue))</td><td>every \(monitor["monitorRunFrequencyInHours"]?.intValue ?? 6) hours</td>"
                + "<td>\(run)</td></tr>"
        }
        var driftRows = ""
        for drift in drifts {
            let properties = (drift["driftedProperties"]?.arrayValue ?? []).map { property in
                "<tr><td>\(h(property["propertyName"]?.stringValue))</td><td>\(Self.value(property["currentValue"]))</td>"
                    + "<td>\(Self.value(property["desiredValue"]))</td></tr>"
            }.joined()
            driftRows += "<tr id=\"drift-\(h(drift["id"]?.stringValue))\"><td>\(h(names[drift["monitorId"]?.stringValue ?? ""] ?? drift["monitorId"]?.stringValue))</td>"
                + "<td>\(h(drift["baselineResourceDisplayName"]?.stringValue))"
                + "<br><span class=\"muted mono\">\(h(drift["resourceType"]?.stringValue))</span></td>"
                + "<td><table class=\"inner\"><thead><tr><th>Property</th><th>Current</th><th>Desired</th></tr></thead>"
                + "<tbody>\(properties)</tbody></table></td>"
                + "<td class=\"mono\">\(h(drift["firstReportedDateTime"]?.stringValue))</td></tr>"
        }
        let governed = await GovernedDriftTable(admin: admin).render()
        return admin.page(title: "Configuration drift", section: "drift", failure: failure, content: """
        <h1>Configuration drift</h1>
        <p class="muted">Monitors compare the tenant with their baseline at fixed six-hour slots (00:00, 06:00, 12:00 and 18:00 UTC).</p>
        <h2>Monitors</h2>
        <table><thead><tr><th>Monitor</th><th>Status</th><th>Runs</th><th>Last run</th></tr></thead>
        <tbody>\(monitorRows.isEmpty ? "<tr><td colspan=\"4\" class=\"muted\">No configuration monitors.</td></tr>" : monitorRows)</tbody></table>
        <h2>Active drifts</h2>
        <table><thead><tr><th>Monitor</th><th>Resource</th><th>Drifted properties</th><th>First reported (UTC)</th></tr></thead>
        <tbody>\(driftRows.isEmpty ? "<tr><td colspan=\"4\" class=\"muted\">No active drifts.</td></tr>" : driftRows)</tbody></table>
        \(governed)
        """)
    }

    /// A property's value: a string as itself, anything else as JSON.
    static func value(_ value: JSONValue?) -> String {
        guard let value else { return "" }
        return "<span class=\"mono\">\(h(value.stringValue ?? value.serialized))</span>"
    }

    static func pill(_ status: String?) -> String {
        "<span class=\"pill\(status == "active" || status == "successful" ? "" : " off")\">\(h(status ?? "—"))</span>"
    }
}
