import TesseraCore

/// "Tenant governance": this tenant's governance policy templates, the governance requests it sent or received, and
/// its relationships, read through `/directory/tenantGovernance` as the signed-in user. A pending request this tenant
/// received is accepted or rejected here by its Global Administrator with the same Graph `PATCH` an API client uses,
/// so the rules (only the governed tenant, only a Global Administrator, only while pending and unexpired) and the
/// audit records in both tenants are Graph's. A relationship is terminated here the same way, by the governing tenant
/// or, when its policy allows, the governed one. The tenant's governance settings say whether other tenants may invite
/// it to govern them, switched here by whoever may write them.
struct GovernancePage {
    let admin: AdminRequest

    static let root = "directory/tenantGovernance"

    func render(failure: String?) async throws -> APIResponse {
        let requests: [JSONValue]
        switch await admin.graph("GET", "\(Self.root)/governanceRequests") {
        case .success(let value): requests = value["value"]?.arrayValue ?? []
        case .failure(let error):
            return admin.page(title: "Tenant governance", section: "governance", status: 403, failure: error.message,
                              content: "<h1>Tenant governance</h1>")
        }
        var failure = failure
        var templates: [JSONValue] = [], relationships: [JSONValue] = []
        switch await admin.graph("GET", "\(Self.root)/governancePolicyTemplates") {
        case .success(let value): templates = value["value"]?.arrayValue ?? []
        case .failure(let error): failure = failure ?? error.message
        }
        switch await admin.graph("GET", "\(Self.root)/governanceRelationships") {
        case .success(let value): relationships = value["value"]?.arrayValue ?? []
        case .failure(let error): failure = failure ?? error.message
        }
        let mayAnswer = admin.caller.directoryRoles.contains(BuiltInRoles.globalAdministrator)
        var settings = ""
        if case .success(let value) = await admin.graph("GET", "\(Self.root)/settings", version: "beta") {
            let receives = value["canReceiveInvitations"]?.boolValue == true
            let change = (try? admin.caller.require(anyOf: GovernanceSettings.permissions.write)) != nil
                ? admin.form("/governance/settings/invitations/\(receives ? "off" : "on")", "",
                             button: receives ? "Stop receiving invitations" : "Receive invitations", confirm: receives)
                : ""
            settings = "<h2>Settings</h2><p>Other tenants may invite this tenant to govern them: "
                + "<span class=\"pill\(receives ? "" : " off")\">\(receives ? "yes" : "no")</span></p>\(change)"
        }

        let templateRows = templates.map { template in
            let roles = (template["delegatedAdministrationRoleAssignments"]?.arrayValue ?? []).map { assignment in
                let names = (assignment["roleTemplates"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue ?? $0["id"]?.stringValue }
                let group = assignment["groupDisplayName"]?.stringValue ?? assignment["group"]?["id"]?.stringValue
                return "\(h(group)): \(h(names.joined(separator: ", ")))"
            }
            return "<tr><td>\(h(template["displayName"]?.stringValue))"
                + "<br><span class=\"muted\">\(h(template["description"]?.stringValue))</span></td>"
                + "<td>\(roles.isEmpty ? "<span class=\"muted\">None</span>" : roles.joined(separator: "<br>"))</td>"
                + "<td>\(template["governedTenantCanTerminate"]?.boolValue == true ? "Yes" : "No")</td>"
                + "<td>\(h(template["version"]?.stringValue))</td></tr>"
        }.joined()

        let requestRows = requests.map { request in
            let id = request["id"]?.stringValue ?? "", status = request["status"]?.stringValue
            let received = request["governedTenantId"]?.stringValue == admin.tenant.id
            var answer = ""
            if received, status == "pending", mayAnswer {
                let path = "/governance/requests/\(GenerativeAIAppsPage.pathSegment(id))"
                answer = admin.form(path + "/accept", "", button: "Accept") + admin.form(path + "/reject", "", button: "Reject", confirm: true)
            }
            return "<tr><td>\(received ? "Received from" : "Sent to") \(Self.tenant(request, received ? "governing" : "governed"))</td>"
                + "<td>\(h(request["policySnapshot"]?["policyId"]?.stringValue))</td><td>\(Self.status(status))</td>"
                + "<td class=\"mono\">\(h(request["requestDateTime"]?.stringValue))<br>\(h(request["expirationDateTime"]?.stringValue))</td>"
                + "<td>\(answer)</td></tr>"
        }.joined()

        let mayTerminate = (try? admin.caller.require(anyOf: GovernanceRelationships.relationshipPermissions.write)) != nil
        let relationshipRows = relationships.map { relationship in
            let id = relationship["id"]?.stringValue ?? ""
            let governing = relationship["governingTenantId"]?.stringValue == admin.tenant.id
            let allowed = governing || relationship["policySnapshot"]?["governedTenantCanTerminate"]?.boolValue == true
            let terminate = mayTerminate && allowed && relationship["status"] == "active"
                ? admin.form("/governance/relationships/\(GenerativeAIAppsPage.pathSegment(id))/terminate", "", button: "Terminate", confirm: true)
                : ""
            return "<tr><td>\(Self.tenant(relationship, "governing"))</td><td>\(Self.tenant(relationship, "governed"))</td>"
                + "<td>\(Self.status(relationship["status"]?.stringValue))</td>"
                + "<td>\(h(relationship["policySnapshot"]?["policyId"]?.stringValue))</td>"
                + "<td class=\"mono\">\(h(relationship["creationDateTime"]?.stringValue))</td><td>\(terminate)</td></tr>"
        }.joined()

        return admin.page(title: "Tenant governance", section: "governance", failure: failure, content: """
        <h1>Tenant governance</h1>
        \(settings)
        <h2>Requests</h2>
        <p class="muted">A governed tenant's Global Administrator accepts or rejects a request within 14 days.</p>
        <table><thead><tr><th>Tenant</th><th>Policy template</th><th>Status</th><th>Requested / expires (UTC)</th><th></th></tr></thead>
        <tbody>\(requestRows.isEmpty ? "<tr><td colspan=\"5\" class=\"muted\">No governance requests.</td></tr>" : requestRows)</tbody></table>
        <h2>Relationships</h2>
        <table><thead><tr><th>Governing tenant</th><th>Governed tenant</th><th>Status</th><th>Policy template</th><th>Created (UTC)</th>
        <th></th></tr></thead>
        <tbody>\(relationshipRows.isEmpty
            ? "<tr><td colspan=\"6\" class=\"muted\">No governance relationships.</td></tr>" : relationshipRows)</tbody></table>
        <h2>Policy templates</h2>
        <table><thead><tr><th>Template</th><th>Roles in the governed tenant (group: roles)</th><th>Governed tenant can terminate</th>
        <th>Version</th></tr></thead>
        <tbody>\(templateRows.isEmpty ? "<tr><td colspan=\"4\" class=\"muted\">No policy templates.</td></tr>" : templateRows)</tbody></table>
        """)
    }

    /// `POST governance/requests/{id}/accept` or `…/reject` (the governed tenant's answer),
    /// `POST governance/relationships/{id}/terminate` and `POST governance/settings/invitations/on|off`, through Graph.
    func act(_ path: [String]) async -> AdminRequest.Outcome {
        if path.count == 3, path[0] == "settings", path[1] == "invitations", path[2] == "on" || path[2] == "off" {
            return await admin.perform("PATCH", "\(Self.root)/settings", body: ["canReceiveInvitations": .bool(path[2] == "on")], notice: "saved",
                                       version: "beta")
        }
        guard path.count == 3 else { return .failed("Unknown action.") }
        let id = GenerativeAIAppsPage.pathSegment(path[1])
        switch (path[0], path[2]) {
        case ("requests", "accept"), ("requests", "reject"):
            let status = path[2] == "accept" ? "accepted" : "rejected"
            return await admin.perform("PATCH", "\(Self.root)/governanceRequests/\(id)", body: ["status": .string(status)],
                                       notice: status)
        case ("relationships", "terminate"):
            return await admin.perform("PATCH", "\(Self.root)/governanceRelationships/\(id)", body: ["status": "terminated"],
                                       notice: "terminated")
        default:
            return .failed("Unknown action.")
        }
    }

    /// The governing or governed tenant of a request or relationship: its name and id.
    static func tenant(_ record: JSONValue, _ side: String) -> String {
        "\(h(record["\(side)TenantName"]?.stringValue))<br><span class=\"muted mono\">\(h(record["\(side)TenantId"]?.stringValue))</span>"
    }

    static func status(_ status: String?) -> String {
        "<span class=\"pill\(status == "active" || status == "accepted" || status == "pending" ? "" : " off")\">\(h(status ?? "—"))</span>"
    }
}
