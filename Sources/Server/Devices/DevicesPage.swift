import Foundation
import TesseraCore

/// The admin center's Devices page: the tenant's devices through Graph with the signed-in administrator's roles (50 a
/// page, filtered by join type as Entra's portal does), and the state of hybrid join through Kerberos (the domain, the
/// SPN, the key versions Tessera holds).
struct DevicesPage {
    let admin: AdminRequest

    /// Entra's portal names for `trustType`.
    static let joinTypes: [(trustType: String, name: String)] = [
        ("ServerAd", "Microsoft Entra hybrid joined"), ("AzureAd", "Microsoft Entra joined"), ("Workplace", "Microsoft Entra registered"),
    ]

    func render(failure: String?) async throws -> APIResponse {
        let trustType = admin.request.parameter("trustType").flatMap { type in Self.joinTypes.first { $0.trustType == type }?.trustType }
        var query: [(name: String, value: String)] = [
            ("$top", "\(UsersPage.pageSize)"),
            ("$select", "id,displayName,deviceId,trustType,operatingSystem,operatingSystemVersion,accountEnabled,registrationDateTime,"
                + "onPremisesSyncEnabled,onPremisesSecurityIdentifier"),
        ]
        if let trustType { query.append(("$filter", "trustType eq \(AdminRequest.literal(trustType))")) }
        if let page = admin.request.parameter("page") { query.append(("$skiptoken", page)) }
        var rows = "", pager = ""
        var failure = failure
        switch await admin.graph("GET", "devices", query: query) {
        case .success(let page):
            for device in page["value"]?.arrayValue ?? [] {
                let type = device["trustType"]?.stringValue
                let joined = Self.joinTypes.first { $0.trustType == type }?.name ?? type ?? "—"
                let enabled = device["accountEnabled"]?.boolValue != false
                rows += "<tr><td>\(h(device["displayName"]?.stringValue))<br><span class=\"muted mono\">\(h(device["deviceId"]?.stringValue))</span></td>"
                    + "<td>\(h(joined))</td>"
                    + "<td>\(h(device["operatingSystem"]?.stringValue)) \(h(device["operatingSystemVersion"]?.stringValue))</td>"
                    + "<td>\(enabled ? "<span class=\"pill on\">Enabled</span>" : "<span class=\"pill off\">Disabled</span>")</td>"
                    + "<td>\(h(device["registrationDateTime"]?.stringValue))</td>"
                    + "<td>\(device["onPremisesSyncEnabled"]?.boolValue == true ? "Yes" : "No")"
                    + "<br><span class=\"muted mono\">\(h(device["onPremisesSecurityIdentifier"]?.stringValue))</span></td></tr>"
            }
            pager = admin.pager(page, path: "/devices", keep: trustType.map { [("trustType", $0)] } ?? [])
        case .failure(let error): failure = failure ?? error.message
        }
        let options = ([("", "All join types")] + Self.joinTypes.map { ($0.trustType, $0.name) }).map { value, name in
            "<option value=\"\(h(value))\"\(value == (trustType ?? "") ? " selected" : "")>\(h(name))</option>"
        }.joined()
        return admin.page(title: "Devices", section: "devices", failure: failure, content: """
        <h1>Devices</h1>
        \(try await kerberosSummary())
        <form method="get" action="\(h(admin.base))/devices" role="search"><select name="trustType" aria-label="Join type">\(options)</select><button type="submit">Filter</button></form>
        <table><thead><tr><th>Device</th><th>Join type</th><th>Operating system</th><th>State</th><th>Registered (UTC)</th><th>Synced · SID</th></tr></thead>
        <tbody>\(rows.isEmpty ? "<tr><td colspan=\"6\" class=\"muted\">No devices.</td></tr>" : rows)</tbody></table>
        \(pager)
        """)
    }

    /// Hybrid join through Kerberos as `tessera hybrid kerberos` set it up (no key material, only versions).
    func kerberosSummary() async throws -> String {
        guard let domain = try await KerberosDomain.load(tenant: admin.tenant.id, store: admin.app.store, sealing: admin.app.keySealing) else {
            return "<p class=\"muted\">Hybrid join through Kerberos is not enabled (<span class=\"mono\">tessera hybrid kerberos enable</span>).</p>"
        }
        let versions = domain.keys.map { key in
            "\(key.version)" + (key.retiresAt.map { " (until \(Timestamp.format($0)))" } ?? " (current)")
        }.joined(separator: ", ")
        return """
        <p>Hybrid join through Kerberos: <strong>\(h(domain.realm))</strong>, service principal <span class="mono">\(h(domain.servicePrincipal))</span>, \
        key versions \(h(versions)), enabled \(h(Timestamp.format(domain.created))).</p>
        """
    }
}
