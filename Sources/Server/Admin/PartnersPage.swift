import TesseraCore

/// "Cross-tenant access": the tenant's default cross-tenant access settings and each partner's (B2B collaboration and
/// B2B direct connect inbound and outbound, inbound trust, automatic redemption, whether identity synchronization may
/// push users in, membership of the multitenant organization), read through `/policies/crossTenantAccessPolicy` as the signed-in user. Graph decides
/// who reads (Security Reader, Global Reader and the roles that write) and who writes (Security Administrator,
/// Global Administrator); the page says which the administrator is.
struct PartnersPage {
    let admin: AdminRequest

    static let root = "policies/crossTenantAccessPolicy"

    func render(failure: String?) async throws -> APIResponse {
        let defaults: JSONValue
        switch await admin.graph("GET", "\(Self.root)/default") {
        case .success(let value): defaults = value
        case .failure(let error):
            return admin.page(title: "Cross-tenant access", section: "partners", status: 403, failure: error.message,
                              content: "<h1>Cross-tenant access settings</h1>")
        }
        var failure = failure
        var partners: [JSONValue] = []
        switch await admin.graph("GET", "\(Self.root)/partners") {
        case .success(let value): partners = value["value"]?.arrayValue ?? []
        case .failure(let error): failure = failure ?? error.message
        }
        var rows = ""
        for partner in partners {
            let tenantID = partner["tenantId"]?.stringValue ?? ""
            rows += "<tr><td class=\"mono\">\(h(tenantID))</td>"
                + "<td>\(Self.b2b(partner["b2bCollaborationInbound"]))</td><td>\(Self.b2b(partner["b2bCollaborationOutbound"]))</td>"
                + "<td>\(Self.b2b(partner["b2bDirectConnectInbound"]))</td><td>\(Self.b2b(partner["b2bDirectConnectOutbound"]))</td>"
                + "<td>\(Self.trust(partner["inboundTrust"]))</td><td>\(Self.redemption(partner["automaticUserConsentSettings"]))</td>"
                + "<td>\(await identitySync(tenantID))</td>"
                + "<td>\(partner["isInMultiTenantOrganization"]?.boolValue == true ? "Yes" : "No")</td></tr>"
        }
        let writable = (try? admin.caller.require(anyOf: CrossTenantAccessHandler.writePermissions)) != nil
        let access = writable
            ? "Your roles let you change these settings through Graph (<span class=\"mono\">/policies/crossTenantAccessPolicy</span>)."
            : "Read only: a Security Administrator or Global Administrator changes these settings."
        return admin.page(title: "Cross-tenant access", section: "partners", failure: failure, content: """
        <h1>Cross-tenant access settings</h1>
        <p class="muted">\(access)</p>
        <h2>Default\(defaults["isServiceDefault"]?.boolValue == true ? " <span class=\"pill\">service default</span>" : "")</h2>
        <table><thead><tr><th>B2B collaboration inbound</th><th>B2B collaboration outbound</th><th>B2B direct connect inbound</th>
        <th>B2B direct connect outbound</th><th>Inbound trust</th></tr></thead>
        <tbody><tr><td>\(Self.b2b(defaults["b2bCollaborationInbound"]))</td><td>\(Self.b2b(defaults["b2bCollaborationOutbound"]))</td>
        <td>\(Self.b2b(defaults["b2bDirectConnectInbound"]))</td><td>\(Self.b2b(defaults["b2bDirectConnectOutbound"]))</td>
        <td>\(Self.trust(defaults["inboundTrust"]))</td></tr></tbody></table>
        <h2>Organizational settings</h2>
        <p class="muted">A setting a partner leaves unset is the default's.</p>
        <table><thead><tr><th>Tenant id</th><th>B2B collaboration inbound</th><th>B2B collaboration outbound</th>
        <th>B2B direct connect inbound</th><th>B2B direct connect outbound</th><th>Inbound trust</th><th>Automatic redemption</th>
        <th>Identity synchronization</th><th>In the multitenant organization</th></tr></thead>
        <tbody>\(rows.isEmpty ? "<tr><td colspan=\"9\" class=\"muted\">No partner has settings of its own.</td></tr>" : rows)</tbody></table>
        <h2>Related tenants</h2>
        \(await relatedTenants())
        """)
    }

    /// The tenants this tenant has B2B, multitenant organization, governance or sync links with (Graph beta's
    /// `relatedTenants`); a note for roles that may not read them.
    func relatedTenants() async -> String {
        guard case .success(let list) = await admin.graph("GET", "directory/tenantGovernance/relatedTenants") else {
            return "<p class=\"muted\">A Global Administrator or Global Reader sees the tenants this tenant has links with.</p>"
        }
        let names = ["b2bCollaboration": "B2B collaboration", "multiTenantOrganization": "Multitenant organization",
                     "tenantGovernance": "Tenant governance", "crossTenantSync": "Cross-tenant synchronization"]
        let rows = (list["value"]?.arrayValue ?? []).map { tenant -> String in
            let links = (tenant["relationships"]?.arrayValue ?? []).compactMap { $0.stringValue.map { names[$0] ?? $0 } }
            let b2b = tenant["b2BRegistrationMetrics"]?["recent"]
            let users = b2b.map { "\($0["inboundTotalUsers"]?.intValue ?? 0) in, \($0["outboundTotalUsers"]?.intValue ?? 0) out" } ?? ""
            return "<tr><td>\(h(tenant["displayName"]?.stringValue ?? ""))</td><td class=\"mono\">\(h(tenant["id"]?.stringValue))</td>"
                + "<td>\(links.map { "<span class=\"pill\">\(h($0))</span>" }.joined())</td><td>\(h(users))</td></tr>"
        }
        return """
        <table id="related-tenants"><thead><tr><th>Name</th><th>Tenant id</th><th>Links</th><th>B2B guests</th></tr></thead>
        <tbody>\(rows.isEmpty ? "<tr><td colspan=\"4\" class=\"muted\">This tenant has no links with other tenants.</td></tr>" : rows.joined())</tbody></table>
        """
    }

    /// The partner's `identitySynchronization` (Graph answers 404 when it has none).
    func identitySync(_ tenantID: String) async -> String {
        switch await admin.graph("GET", "\(Self.root)/partners/\(GenerativeAIAppsPage.pathSegment(tenantID))/identitySynchronization") {
        case .success(let policy):
            let allowed = policy["userSyncInbound"]?["isSyncAllowed"]?.boolValue == true
            return (allowed ? "Users may be synchronized in" : "Not allowed")
                + (policy["displayName"]?.stringValue.map { "<br><span class=\"muted\">\(h($0))</span>" } ?? "")
        case .failure:
            return "<span class=\"muted\">Not allowed (not configured)</span>"
        }
    }

    /// A `crossTenantAccessPolicyB2BSetting`: who (users and groups) and what (applications), each allowed or blocked
    /// for its targets; null means the default's.
    static func b2b(_ setting: JSONValue?) -> String {
        guard let setting, setting != .null else { return "<span class=\"muted\">Default</span>" }
        func part(_ name: String, _ value: JSONValue?) -> String {
            let access = value?["accessType"]?.stringValue ?? "—"
            let targets = (value?["targets"]?.arrayValue ?? []).compactMap { $0["target"]?.stringValue }.joined(separator: ", ")
            return "\(name): <span class=\"pill\(access == "blocked" ? " off" : "")\">\(h(access))</span> \(h(targets))"
        }
        return part("Users and groups", setting["usersAndGroups"]) + "<br>" + part("Applications", setting["applications"])
    }

    /// `automaticUserConsentSettings`: the directions in which the consent prompt is suppressed (both tenants must agree).
    static func redemption(_ settings: JSONValue?) -> String {
        let directions = [("inboundAllowed", "inbound"), ("outboundAllowed", "outbound")].filter { settings?[$0.0]?.boolValue == true }.map(\.1)
        return directions.isEmpty ? "Consent prompt shown" : "Automatic " + directions.joined(separator: " and ")
    }

    /// `crossTenantAccessPolicyInboundTrust`: which of the home tenant's claims this tenant accepts.
    static func trust(_ trust: JSONValue?) -> String {
        guard let trust, trust != .null else { return "<span class=\"muted\">Default</span>" }
        let claims = [("isMfaAccepted", "MFA"), ("isCompliantDeviceAccepted", "compliant devices"),
                      ("isHybridAzureADJoinedDeviceAccepted", "hybrid joined devices")]
        let accepted = claims.filter { trust[$0.0]?.boolValue == true }.map(\.1)
        return accepted.isEmpty ? "Trusts nothing from the home tenant" : "Trusts " + h(accepted.joined(separator: ", "))
    }
}
