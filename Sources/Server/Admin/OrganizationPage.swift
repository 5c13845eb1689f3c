import TesseraCore

/// "Multitenant organization": the organization this tenant belongs to (`/tenantRelationships/multiTenantOrganization`),
/// its tenants with their role and state, and this tenant's join request, read as the signed-in user.
struct OrganizationPage {
    let admin: AdminRequest

    static let root = "tenantRelationships/multiTenantOrganization"

    func render(failure: String?) async throws -> APIResponse {
        let organization: JSONValue
        switch await admin.graph("GET", Self.root) {
        case .success(let value): organization = value
        case .failure(let error):
            return admin.page(title: "Multitenant organization", section: "organization", status: 403, failure: error.message,
                              content: "<h1>Multitenant organization</h1>")
        }
        var failure = failure
        var join: JSONValue = .null
        switch await admin.graph("GET", "\(Self.root)/joinRequest") {
        case .success(let value): join = value
        case .failure(let error): failure = failure ?? error.message
        }
        // A tenant in no organization has no tenants to list (Graph answers 404).
        guard organization["state"]?.stringValue != "inactive" else {
            return admin.page(title: "Multitenant organization", section: "organization", failure: failure, content: """
            <h1>Multitenant organization</h1>
            <p>\(h(admin.tenant.name)) is in no multitenant organization.</p>
            \(Self.joinRequest(join))
            """)
        }
        var tenants: [JSONValue] = []
        switch await admin.graph("GET", "\(Self.root)/tenants") {
        case .success(let value): tenants = value["value"]?.arrayValue ?? []
        case .failure(let error): failure = failure ?? error.message
        }
        let rows = tenants.map { member in
            "<tr><td>\(h(member["displayName"]?.stringValue))<br><span class=\"muted mono\">\(h(member["tenantId"]?.stringValue))</span></td>"
                + "<td>\(h(member["role"]?.stringValue))</td><td>\(Self.state(member["state"]?.stringValue))</td>"
                + "<td class=\"mono\">\(h(member["addedDateTime"]?.stringValue))</td>"
                + "<td class=\"mono\">\(h(member["joinedDateTime"]?.stringValue))</td></tr>"
        }.joined()
        return admin.page(title: "Multitenant organization", section: "organization", failure: failure, content: """
        <h1>\(h(organization["displayName"]?.stringValue))</h1>
        <p>\(h(organization["description"]?.stringValue))</p>
        <p class="muted">Multitenant organization \(Self.state(organization["state"]?.stringValue)), created \
        <span class="mono">\(h(organization["createdDateTime"]?.stringValue))</span>.</p>
        <h2>Tenants</h2>
        <table><thead><tr><th>Tenant</th><th>Role</th><th>State</th><th>Added (UTC)</th><th>Joined (UTC)</th></tr></thead>
        <tbody>\(rows.isEmpty ? "<tr><td colspan=\"5\" class=\"muted\">No tenants.</td></tr>" : rows)</tbody></table>
        \(Self.joinRequest(join))
        """)
    }

    /// This tenant's `multiTenantOrganizationJoinRequestRecord`.
    static func joinRequest(_ join: JSONValue) -> String {
        guard join != .null else { return "" }
        let addedBy = join["addedByTenantId"]?.stringValue
        let none = addedBy == nil || addedBy == MultiTenantOrganizationJoinRequest.noTenant
        return """
        <h2>Join request</h2>
        <p>\(none ? "This tenant has not asked to join an organization." : """
        Asked to join as <strong>\(h(join["role"]?.stringValue ?? "member"))</strong>, added by tenant \
        <span class="mono">\(h(addedBy))</span>; membership \(state(join["memberState"]?.stringValue)).
        """)</p>
        """
    }

    static func state(_ state: String?) -> String {
        "<span class=\"pill\(state == "active" ? "" : " off")\">\(h(state ?? "—"))</span>"
    }
}
