import TesseraCore

/// The admin center's tenant switcher (`/admin/{tenant}/switch`), for administrators who have access to several
/// tenants of this deployment: their home tenant, and each tenant where their home account redeemed an invitation
/// and the guest holds an administrator role there (its own directory roles, or a governance relationship's).
///
/// The list is computed from the store at every request and the switch is checked against it again, so a tenant the
/// administrator has no access to is never offered nor entered. Entering another tenant starts that tenant's session
/// for the guest, from the home sign-in (its methods travel, as for any B2B sign-in; Conditional Access decides every
/// admin center request there); going home needs the home tenant's own session.
struct TenantSwitcher {
    let admin: AdminRequest
    var app: TesseraApp { admin.app }

    /// A tenant the signed-in administrator may switch to, and as whom.
    struct Destination: Sendable, Hashable {
        var tenant: TenantRecord
        /// The user the administrator is there: the home account, or its guest.
        var userID: String
        var isHome: Bool
        /// Why: "Home tenant", "Guest with a role", "Governed tenant".
        var access: String
    }

    /// The home identity of the signed-in user: itself, or the home account a guest is linked to (this deployment's).
    func home() async throws -> (tenant: String, user: String) {
        if let link = try await CrossTenantSignIn(app: app).link(tenant: admin.tenant.id, user: admin.user), !link.isRemote {
            return (link.homeTenantID, link.homeUserID)
        }
        return (admin.tenant.id, admin.user.id)
    }

    /// Every tenant the signed-in administrator has access to, the current one included, home first.
    func destinations() async throws -> [Destination] {
        let (homeID, homeUser) = try await home()
        let tenants = try await app.store.read { tx in try await tx.tenants() }
        var found: [Destination] = []
        for tenant in tenants {
            if tenant.id == homeID {
                if try await app.activeUser(tenant: homeID, id: homeUser) != nil {
                    found.append(Destination(tenant: tenant, userID: homeUser, isHome: true, access: "Home tenant"))
                }
                continue
            }
            guard let guest = try await app.directory.externalUser(tenant: tenant.id, homeTenant: homeID, homeUser: homeUser),
                  try await app.activeUser(tenant: tenant.id, id: guest) != nil else { continue }
            if try await GovernedAccess(app: app).grant(tenant: tenant.id, homeTenantID: homeID, homeUserID: homeUser) != nil {
                found.append(Destination(tenant: tenant, userID: guest, isHome: false, access: "Governed tenant"))
            } else if try await !app.directory.directoryRoles(tenant: tenant.id, principal: guest).isEmpty {
                found.append(Destination(tenant: tenant, userID: guest, isHome: false, access: "Guest with a role"))
            }
        }
        return found.sorted { ($0.isHome ? 0 : 1, $0.tenant.name.lowercased()) < ($1.isHome ? 0 : 1, $1.tenant.name.lowercased()) }
    }

    /// `GET /admin/{tenant}/switch`: the tenants to switch to, each a form.
    func render() async throws -> APIResponse {
        let rows = try await destinations().map { destination in
            let current = destination.tenant.id == admin.tenant.id
            let action = current ? "<span class=\"muted\">Current</span>"
                : admin.form("/switch", "<input type=\"hidden\" name=\"tenant\" value=\"\(h(destination.tenant.id))\">", button: "Switch")
            return "<tr><td>\(h(destination.tenant.name))</td><td class=\"mono\">\(h(destination.tenant.id))</td><td>\(h(destination.access))</td><td>\(action)</td></tr>"
        }
        return admin.page(title: "Switch tenant", section: "switch", content: """
        <h1>Switch tenant</h1>
        <p>The tenants you administer: your home tenant, and those where your account is a guest with an administrator role
        or that your home tenant governs.</p>
        <table id="tenants"><tr><th>Tenant</th><th>Tenant id</th><th>Access</th><th></th></tr>\(rows.joined())</table>
        """)
    }

    /// `POST /admin/{tenant}/switch` (`tenant` = the destination): into the destination's admin center, when it is one
    /// of `destinations()`; 403 otherwise, with no session started.
    func switchTenant() async throws -> APIResponse {
        guard let wanted = admin.form["tenant"]?.lowercased(),
              let destination = try await destinations().first(where: { $0.tenant.id == wanted }) else {
            return admin.page(title: "Switch tenant", section: "switch", status: 403, content: """
            <h1>You cannot switch to that tenant</h1><p id="refused">You have no administrator access to it.</p>
            """)
        }
        let target = "/admin/\(destination.tenant.id)/users"
        let sessions = SignInSessions(app: app)
        if try await sessions.current(admin.request, tenant: destination.tenant.id)?.userID == destination.userID {
            return AdminCenter.redirect(target)
        }
        // Home again: its own sign-in (a guest's session never becomes a home one).
        guard !destination.isHome else {
            return AdminCenter.redirect("/\(destination.tenant.id)/login?" + AuthorizeEndpoint.encode([("continue", target)]))
        }
        guard let current = try await sessions.current(admin.request, tenant: admin.tenant.id) else {
            throw DirectoryError(.accessDenied, "Sign in first.")
        }
        let (homeID, homeUser) = try await home()
        if case .blocked(let reason) = try await CrossTenantSignIn(app: app).b2bCollaboration(
            resource: destination.tenant.id, home: homeID, homeUserID: homeUser, clientID: AdminCenter.appID) {
            return admin.page(title: "Switch tenant", section: "switch", status: 403, content: """
            <h1>You cannot switch to that tenant</h1><p id="refused">\(h(reason))</p>
            """)
        }
        let (_, cookie) = try await sessions.start(tenant: destination.tenant.id, userID: destination.userID, amr: current.amr,
                                                   aaguid: current.aaguid, baseURL: admin.request.baseURL)
        return APIResponse(status: 303, headers: [("Location", target), ("Set-Cookie", cookie), ("Cache-Control", "no-store")])
    }
}
