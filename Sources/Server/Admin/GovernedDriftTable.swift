import TesseraCore

/// The governing tenant's view of the baselines it applied to governed tenants
/// (`/beta/admin/configurationManagement/governedConfigurationMonitors`): per baseline, one column per governed tenant
/// (its relationship, monitor status, active drifts and last run) and one row per baseline resource, each cell the
/// drifted properties with current and desired values. Tenants link to their own drift page and each drift to its row
/// there, which the tenant switcher opens for an administrator who holds a role in that tenant.
struct GovernedDriftTable {
    let admin: AdminRequest

    static let root = "admin/configurationManagement/governedConfigurationMonitors"

    /// The section, or nothing when the tenant applied no baseline to governed tenants (or may not read them).
    func render() async -> String {
        guard case .success(let list) = await admin.graph("GET", Self.root, version: "beta"),
              let monitors = list["value"]?.arrayValue, !monitors.isEmpty else { return "" }
        var sections = ""
        for monitor in monitors {
            let id = monitor["id"]?.stringValue ?? ""
            let segment = GenerativeAIAppsPage.pathSegment(id)
            var resources: [JSONValue] = [], drifts: [JSONValue] = []
            if case .success(let baseline) = await admin.graph("GET", "\(Self.root)/\(segment)/baseline", version: "beta") {
                resources = baseline["resources"]?.arrayValue ?? []
            }
            if case .success(let value) = await admin.graph("GET", "\(Self.root)/\(segment)/configurationDrifts", version: "beta") {
                drifts = (value["value"]?.arrayValue ?? []).filter { $0["status"] == "active" }
            }
            sections += table(monitor, resources: resources, drifts: drifts)
        }
        return """
        <h2>Baselines over governed tenants</h2>
        <p class="muted">Each baseline runs as a monitor in every governed tenant it was applied to, while the governance relationship is active.</p>
        \(sections)
        """
    }

    func table(_ monitor: JSONValue, resources: [JSONValue], drifts: [JSONValue]) -> String {
        let tenants = monitor["governedTenants"]?.arrayValue ?? []
        let header = tenants.map { tenant -> String in
            let id = tenant["tenantId"]?.stringValue ?? ""
            let readable = tenant["monitorStatus"]?.stringValue != nil
            let state = readable
                ? "\(DriftPage.pill(tenant["monitorStatus"]?.stringValue)) \(tenant["activeDriftsCount"]?.intValue ?? 0) drifts"
                    + "<br><span class=\"muted mono\">\(h(tenant["lastRunDateTime"]?.stringValue ?? "not run yet"))</span>"
                : "<span class=\"pill off\">relationship \(h(tenant["relationshipStatus"]?.stringValue))</span>"
            return "<th><a href=\"/admin/\(h(id))/drift\">\(h(tenant["tenantName"]?.stringValue ?? id))</a><br>\(state)</th>"
        }.joined()
        let rows = resources.map { resource -> String in
            let name = resource["displayName"]?.stringValue ?? ""
            let cells = tenants.map { tenant -> String in
                let tenantID = tenant["tenantId"]?.stringValue ?? ""
                guard tenant["monitorStatus"]?.stringValue != nil else { return "<td class=\"muted\">—</td>" }
                let found = drifts.filter {
                    $0["tenantId"]?.stringValue == tenantID && $0["monitorId"] == tenant["configurationMonitorId"]
                        && $0["baselineResourceDisplayName"]?.stringValue?.lowercased() == name.lowercased()
                }
                guard !found.isEmpty else {
                    return tenant["lastRunStatus"]?.stringValue == nil ? "<td class=\"muted\">Not run yet</td>" : "<td>Matches</td>"
                }
                let properties = found.flatMap { drift in
                    (drift["driftedProperties"]?.arrayValue ?? []).map { property in
                        "<a href=\"/admin/\(h(tenantID))/drift#drift-\(h(drift["id"]?.stringValue))\">\(h(property["propertyName"]?.stringValue))</a>: "
                            + "\(DriftPage.value(property["currentValue"])) → \(DriftPage.value(property["desiredValue"]))"
                    }
                }
                return "<td>\(properties.joined(separator: "<br>"))</td>"
            }.joined()
            return "<tr><td>\(h(name))<br><span class=\"muted mono\">\(h(resource["resourceType"]?.stringValue))</span></td>\(cells)</tr>"
        }.joined()
        return """
        <h3>\(h(monitor["displayName"]?.stringValue))</h3>
        <table><thead><tr><th>Resource</th>\(header)</tr></thead>
        <tbody>\(rows.isEmpty ? "<tr><td colspan=\"\(tenants.count + 1)\" class=\"muted\">No resources.</td></tr>" : rows)</tbody></table>
        """
    }
}
