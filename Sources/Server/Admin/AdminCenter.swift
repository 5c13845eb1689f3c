import Foundation
import Logging
import TesseraCore
import WebAuthn

/// The admin center at `/admin/{tenant}/…`: server-rendered pages, no front-end build step, signed in with a
/// passkey through the tenant's sign-in page.
///
/// Every read and write goes through the Graph handlers on behalf of the signed-in user (`Caller.user`), so the
/// pages have exactly the user's Graph rights, Graph's validation and Graph's audit records; the admin center adds
/// only presentation. Forms post back with a per-session CSRF token and, when the browser sends one, this origin.
struct AdminCenter {
    let app: TesseraApp

    /// The admin center's application id, as Conditional Access and the sign-in log name it (one of the
    /// `MicrosoftAdminPortals`).
    static let appID = "5d3b0a6e-7e1c-4a8e-9f3d-7e55a1d0c0a1"
    static let appDisplayName = "Tessera admin center"

    func handle(_ request: APIRequest) async throws -> APIResponse {
        let s = request.segments
        guard s.count >= 2 else { return try await chooseTenant(request) }
        guard let tenant = try await app.tenantRecord(s[1]) else { throw DirectoryError.notFound("/" + s.joined(separator: "/")) }
        if s[1] != tenant.id {
            return Self.redirect("/admin/\(tenant.id)/" + s.dropFirst(2).joined(separator: "/"))
        }
        let here = "/" + s.map { $0.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? $0 }.joined(separator: "/")
        guard let session = try await SignInSessions(app: app).current(request, tenant: tenant.id) else {
            guard request.method == "GET" else { throw DirectoryError(.accessDenied, "Sign in first.") }
            return Self.redirect("/\(tenant.id)/login?" + AuthorizeEndpoint.encode([("continue", here)]))
        }
        let tenantID = tenant.id
        guard let user = try await app.store.read({ tx in try await tx.object(tenant: tenantID, id: session.userID) }) else {
            throw DirectoryError(.accessDenied, "Sign in first.")
        }
        // Conditional Access decides every admin center request, as the admin portal it is: a policy that targets
        // `MicrosoftAdminPortals`, or this app, applies here, from wherever the browser is now.
        let decision = try await app.conditionalAccess.decide(app: app, tenant: tenant, session: session, clientID: Self.appID, request: request)
        switch decision.outcome {
        case .allow:
            break
        case .needs(let sets) where sets.allSatisfy({ $0.requirements.contains(.reauthentication) }) && request.method == "GET":
            return Self.redirect("/\(tenant.id)/login?" + AuthorizeEndpoint.encode([("continue", here)]))
        case .needs, .block:
            app.logger.notice("Conditional Access refused the admin center", metadata: [
                "tenant": .string(tenantID), "user": .string(session.userID), "request-id": .string(request.requestID)])
            await SignInLog(app: app, tenant: tenantID).record(
                SignInEvent(kind: .interactiveUser, principal: user, appID: Self.appID, appDisplayName: Self.appDisplayName,
                            amr: session.amr, authTime: session.authTime, decision: decision,
                            failure: (53003, "Access has been blocked by Conditional Access policies."), clientAppUsed: "Browser"),
                request: request)
            return AccessBlockedPage.render(tenant: tenant, code: 53003, correlationID: request.requestID, now: app.clock.now)
        }
        let caller = try await Caller.user(tenant: tenant.id, user: user, scopes: nil, app: app)
        let admin = AdminRequest(app: app, request: request, tenant: tenant, sessionID: session.id, user: user, caller: caller)
        guard caller.roles != RolePermissions.memberDefaults else {
            return admin.page(title: "No administrator role", section: "", status: 403, content: """
            <h1>No administrator role</h1>
            <p>You are signed in as \(h(admin.userPrincipalName)), who holds no administrator role in \(h(tenant.name)).
            Ask a Global Administrator to assign you one.</p>
            """)
        }
        let path = Array(s.dropFirst(2))
        if request.method == "POST" {
            try admin.checkForm()
            return try await post(path, admin)
        }
        guard request.method == "GET" else { throw DirectoryError(.methodNotAllowed, "Use GET or POST.") }
        return try await get(path, admin, failure: nil)
    }

    /// `GET /admin`: the only tenant's admin center, or a form that asks which tenant.
    func chooseTenant(_ request: APIRequest) async throws -> APIResponse {
        if let wanted = request.parameter("tenant"), let tenant = try await app.tenantRecord(wanted) {
            return Self.redirect("/admin/\(tenant.id)/users")
        }
        let tenants = try await app.store.read { tx in try await tx.tenants() }
        if tenants.count == 1 { return Self.redirect("/admin/\(tenants[0].id)/users") }
        // Tenant names are not listed to people who have not signed in; they say which one they administer.
        return Page.render(title: "Tessera admin center", style: "", body: """
        <main><h1>Admin center</h1>
        <form method="get" action="/admin"><label for="tenant">Tenant domain or id</label>
        <input id="tenant" name="tenant" required><button type="submit">Continue</button></form></main>
        """, script: "")
    }

    func get(_ path: [String], _ admin: AdminRequest, failure: String?) async throws -> APIResponse {
        switch (path.first ?? "", path.count) {
        case ("", _), ("users", 1): return try await UsersPage(admin: admin).list(failure: failure)
        case ("users", 2): return try await UsersPage(admin: admin).detail(id: path[1], failure: failure)
        case ("groups", 1): return try await GroupsPage(admin: admin).list(failure: failure)
        case ("groups", 2): return try await GroupsPage(admin: admin).detail(id: path[1], failure: failure)
        case ("roles", 1): return try await RolesPage(admin: admin).render(failure: failure)
        case ("passkeys", 1): return try await PasskeyPolicyPage(admin: admin).render(failure: failure)
        case ("signins", 1): return try await SignInsPage(admin: admin).render(failure: failure)
        case ("devices", 1): return try await DevicesPage(admin: admin).render(failure: failure)
        case ("ai-apps", 1): return try await GenerativeAIAppsPage(admin: admin).list(failure: failure)
        case ("ai-apps", 2): return try await GenerativeAIAppsPage(admin: admin).detail(appId: path[1], failure: failure)
        case ("backup", 1): return try await BackupPage(admin: admin).render(failure: failure)
        case ("backup", 3) where path[1] == "jobs": return try await BackupPage(admin: admin).job(id: path[2])
        case ("sync", 1): return try await SyncPage(admin: admin).render(failure: failure)
        case ("health", 1): return try await HealthPage(admin: admin).render(failure: failure)
        case ("conditional-access", 1): return try await ConditionalAccessPage(admin: admin).list(failure: failure)
        case ("conditional-access", 2) where path[1] == "what-if": return try await WhatIfPage(admin: admin).render(failure: failure)
        case ("conditional-access", 2): return try await ConditionalAccessPage(admin: admin).detail(id: path[1], failure: failure)
        case ("partners", 1): return try await PartnersPage(admin: admin).render(failure: failure)
        case ("organization", 1): return try await OrganizationPage(admin: admin).render(failure: failure)
        case ("governance", 1): return try await GovernancePage(admin: admin).render(failure: failure)
        case ("drift", 1): return try await DriftPage(admin: admin).render(failure: failure)
        case ("switch", 1): return try await TenantSwitcher(admin: admin).render()
        default: throw DirectoryError.notFound("/admin/\(admin.tenant.id)/" + path.joined(separator: "/"))
        }
    }

    /// A form's action: on success back to the page that shows the result (303, so a reload does not repeat it);
    /// on failure that page again with Graph's message.
    func post(_ path: [String], _ admin: AdminRequest) async throws -> APIResponse {
        let outcome: AdminRequest.Outcome
        var page = Array(path.prefix(2))
        switch path.first {
        case "users":
            let users = UsersPage(admin: admin)
            if path.count == 3, path[2] == "tap" { return try await users.issueTemporaryAccessPass(id: path[1]) }
            outcome = path.count == 1 ? await users.create() : await users.act(id: path[1], action: Array(path.dropFirst(2)))
            if path.count == 1, case .done(_, let id?) = outcome { page = ["users", id] }
        case "groups":
            let groups = GroupsPage(admin: admin)
            outcome = path.count == 1 ? await groups.create() : await groups.act(id: path[1], action: Array(path.dropFirst(2)))
            if path.count == 1, case .done(_, let id?) = outcome { page = ["groups", id] }
        case "roles": outcome = await RolesPage(admin: admin).act(Array(path.dropFirst()))
            page = ["roles"]
        case "passkeys": outcome = await PasskeyPolicyPage(admin: admin).act(Array(path.dropFirst()))
            page = ["passkeys"]
        case "backup":
            let backup = BackupPage(admin: admin)
            switch Array(path.dropFirst()) {
            case ["preview"]: return try await backup.preview()
            case ["recover"]: return try await backup.recover()
            case let a where a.count == 3 && a[0] == "jobs" && a[2] == "cancel":
                outcome = await backup.cancel(id: a[1])
                page = ["backup", "jobs", a[1]]
            default: throw DirectoryError.notFound("/admin/\(admin.tenant.id)/" + path.joined(separator: "/"))
            }
        case "ai-apps": outcome = await GenerativeAIAppsPage(admin: admin).act(Array(path.dropFirst()))
            page = GenerativeAIAppsPage.page(after: Array(path.dropFirst()))
        case "sync": outcome = await SyncPage(admin: admin).act(Array(path.dropFirst()))
            page = ["sync"]
        case "governance": outcome = await GovernancePage(admin: admin).act(Array(path.dropFirst()))
            page = ["governance"]
        case "conditional-access" where path == ["conditional-access", "what-if"]: return try await WhatIfPage(admin: admin).evaluate()
        case "switch" where path.count == 1: return try await TenantSwitcher(admin: admin).switchTenant()
        default: throw DirectoryError.notFound("/admin/\(admin.tenant.id)/" + path.joined(separator: "/"))
        }
        switch outcome {
        case .done(let notice, _):
            return Self.redirect("/admin/\(admin.tenant.id)/" + page.joined(separator: "/") + "?" + AuthorizeEndpoint.encode([("done", notice)]))
        case .failed(let message):
            var response = try await get(page, admin, failure: message)
            response.status = 400
            return response
        }
    }

    static func redirect(_ location: String) -> APIResponse {
        APIResponse(status: 303, headers: [("Location", location), ("Cache-Control", "no-store")])
    }
}

/// HTML escaping, short for the templates.
func h(_ text: String?) -> String { Page.escape(text ?? "") }

/// One admin center request: who is signed in, as what Graph caller, and helpers to call Graph and render.
struct AdminRequest: Sendable {
    let app: TesseraApp
    let request: APIRequest
    let tenant: TenantRecord
    let sessionID: String
    let user: StoredObject
    let caller: Caller

    var base: String { "/admin/\(tenant.id)" }
    var userPrincipalName: String { user.body["userPrincipalName"]?.stringValue ?? user.id }

    /// What a form's action came to: a notice code for the page it returns to (and the id of what it made), or
    /// Graph's message.
    enum Outcome: Sendable {
        case done(String, id: String? = nil)
        case failed(String)
    }

    /// The notices a `done` code stands for; unknown codes show nothing (the URL is not a place for free text).
    static let notices: [String: String] = [
        "created": "Created.", "saved": "Saved.", "deleted": "Deleted.", "enabled": "The account is enabled.",
        "disabled": "The account is disabled; its sessions and refresh tokens were revoked.", "added": "Added.", "removed": "Removed.",
        "assigned": "Role assigned.", "revoked": "Sessions revoked.", "accepted": "Request accepted.", "rejected": "Request rejected.",
        "terminated": "Relationship terminated.",
    ]

    // MARK: Graph

    /// A Graph call as the signed-in user (v1.0 unless `version` says beta); a failure is its Graph error message.
    func graph(_ method: String, _ path: String, query: [(name: String, value: String)] = [], body: JSONValue? = nil,
               advanced: Bool = false, version: String = "v1.0") async -> Result<JSONValue, GraphFailure> {
        var headers = ["content-type": "application/json"]
        if advanced { headers["consistencylevel"] = "eventual" }
        let inner = APIRequest(method: method, path: "/\(version)/" + path, query: query, headers: headers,
                               body: body?.serializedBytes ?? [], baseURL: request.baseURL)
        do {
            let response = try await GraphAPI(app: app).handle(inner, as: caller)
            if response.body.isEmpty { return .success(.null) }
            let value = try JSONParser.parse(response.body)
            if response.status >= 400 { return .failure(GraphFailure(message: value["error"]?["message"]?.stringValue ?? "The request failed.")) }
            return .success(value)
        } catch let error as DirectoryError {
            return .failure(GraphFailure(message: error.message))
        } catch {
            app.logger.error("Admin center call \(method) \(path) failed: \(String(describing: error))")
            return .failure(GraphFailure(message: "An unexpected error occurred."))
        }
    }

    struct GraphFailure: Error, Sendable { let message: String }

    /// A Graph write turned into an outcome.
    func perform(_ method: String, _ path: String, body: JSONValue? = nil, notice: String, version: String = "v1.0") async -> Outcome {
        switch await graph(method, path, body: body, version: version) {
        case .success(let value): .done(notice, id: value["id"]?.stringValue)
        case .failure(let failure): .failed(failure.message)
        }
    }

    // MARK: Forms

    /// The CSRF token of this session's forms: a MAC of the session id, so it needs no storage and dies with it.
    var csrfToken: String { WebAuthn.Base64URL.encode(app.passkeyChallenges.mac("admin-form:\(tenant.id)", Array(sessionID.utf8))) }

    /// The posted form's fields (first value of each name).
    var form: [String: String] {
        Dictionary(APIRequest.parseForm(String(decoding: request.body, as: UTF8.self)).map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
    }

    /// Every value of a repeated field (checkboxes).
    func formValues(_ name: String) -> [String] {
        APIRequest.parseForm(String(decoding: request.body, as: UTF8.self)).filter { $0.name == name }.map(\.value)
    }

    /// A form post must carry this session's token, and come from this origin when the browser says where from.
    func checkForm() throws {
        guard request.header("content-type")?.lowercased().hasPrefix("application/x-www-form-urlencoded") == true else {
            throw DirectoryError.badRequest("The admin center accepts only its own forms.")
        }
        if let origin = request.header("origin"), origin != PasskeyRegistration.site(baseURL: request.baseURL).origin {
            throw DirectoryError(.accessDenied, "Cross-origin form posts are refused.")
        }
        guard let presented = form["csrf"], WebAuthn.constantTimeEquals(Array(presented.utf8), Array(csrfToken.utf8)) else {
            throw DirectoryError(.accessDenied, "The form has expired; reload the page and try again.")
        }
    }

    /// A form that posts to `action` (under the admin center) with this session's token.
    func form(_ action: String, _ inner: String, button: String, style: String = "", confirm: Bool = false) -> String {
        """
        <form method="post" action="\(h(base + action))" class="\(style)">\
        <input type="hidden" name="csrf" value="\(csrfToken)">\(inner)\
        <button type="submit"\(confirm ? " class=\"danger\"" : "")>\(h(button))</button></form>
        """
    }

    // MARK: Pages

    static let sections: [(path: String, title: String)] = [
        ("users", "Users"), ("groups", "Groups"), ("roles", "Roles"), ("passkeys", "Passkey policy"), ("signins", "Sign-in logs"),
        ("devices", "Devices"),
        ("ai-apps", "Generative AI apps"),
        ("conditional-access", "Conditional Access"), ("backup", "Backup and Recovery"), ("sync", "Directory sync"), ("health", "Connect Health"),
        ("partners", "Cross-tenant access"), ("organization", "Multitenant organization"), ("governance", "Tenant governance"),
        ("drift", "Configuration drift"),
    ]

    func page(title: String, section: String, status: Int = 200, failure: String? = nil, content: String) -> APIResponse {
        let nav = Self.sections.map { item in
            "<a href=\"\(h(base))/\(item.path)\"\(item.path == section ? " aria-current=\"page\"" : "")>\(h(item.title))</a>"
        }.joined()
        var banner = ""
        if let failure { banner = "<p class=\"banner error\" role=\"alert\">\(h(failure))</p>" }
        else if let code = request.parameter("done"), let notice = Self.notices[code] { banner = "<p class=\"banner ok\" role=\"status\">\(h(notice))</p>" }
        let signOut = "/\(tenant.id)/oauth2/v2.0/logout"
        return Page.render(title: "\(title) – \(tenant.name) – Tessera", shell: Self.shell, style: "", body: """
        <header><strong>Tessera</strong> <span class="tenant">\(h(tenant.name))</span>
        <a id="switch-tenant" href="\(h(base))/switch">Switch tenant</a>
        <span class="who">\(h(userPrincipalName)) · <a href="\(h(signOut))">Sign out</a></span></header>
        <nav>\(nav)</nav>
        <main>\(banner)\(content)</main>
        """, script: "", status: status, referrerPolicy: "same-origin")
    }

    static let shell = """
      body { font-family: system-ui, sans-serif; margin: 0; background: #f5f6f8; color: #1b1b1b;
             display: grid; grid-template-columns: 12rem 1fr; grid-template-rows: auto 1fr; min-height: 100vh; }
      header { grid-column: 1 / 3; background: #0f3d73; color: white; padding: .7rem 1.2rem; display: flex; gap: 1rem; align-items: baseline; }
      header .who { margin-left: auto; } header a { color: #cfe3ff; }
      nav { background: white; border-right: 1px solid #ddd; padding: 1rem 0; }
      nav a { display: block; padding: .5rem 1.2rem; color: #0f3d73; text-decoration: none; }
      nav a[aria-current] { background: #e8eef7; font-weight: 600; }
      main { padding: 1.5rem 2rem; max-width: 72rem; overflow-x: auto; }
      h1 { font-size: 1.5rem; margin-top: 0; } h2 { font-size: 1.15rem; margin-top: 2rem; }
      table { border-collapse: collapse; width: 100%; background: white; margin: .5rem 0; }
      th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid #e3e3e3; vertical-align: top; font-size: .93rem; }
      th { background: #f0f2f5; font-weight: 600; } table.inner { margin: 0; } table.inner td, table.inner th { font-size: .85rem; padding: .2rem .4rem; }
      form { display: inline-flex; gap: .4rem; align-items: center; flex-wrap: wrap; margin: .2rem 0; }
      form.block { display: flex; flex-direction: column; align-items: flex-start; background: white; padding: 1rem; border: 1px solid #ddd; border-radius: 8px; }
      form.block label { font-size: .9rem; }
      input, select, textarea { padding: .35rem .5rem; font-size: .95rem; border: 1px solid #bbb; border-radius: 5px; }
      textarea { width: 28rem; height: 4rem; font-family: ui-monospace, monospace; font-size: .85rem; }
      button { padding: .4rem .9rem; font-size: .93rem; border: 0; border-radius: 5px; background: #0f6cbd; color: white; cursor: pointer; }
      button.danger { background: #b00020; }
      .banner { padding: .6rem 1rem; border-radius: 6px; } .banner.ok { background: #e3f4e8; color: #0a5d26; }
      .banner.error { background: #fde7ea; color: #8a0019; }
      .muted { color: #666; } .pill { display: inline-block; padding: 0 .5rem; border-radius: 1rem; background: #e8eef7; font-size: .85rem; margin-right: .25rem; }
      .pill.off { background: #f3e1e1; } code, .mono { font-family: ui-monospace, monospace; font-size: .85rem; }
      .secret { font-size: 1.6rem; letter-spacing: .08em; background: white; padding: .8rem 1rem; border: 2px dashed #0f6cbd; display: inline-block; }
      table.report { table-layout: fixed; } table.report td { overflow-wrap: anywhere; }
      table.report th:nth-child(1) { width: 2rem; } table.report th:nth-child(2) { width: 7.5rem; } table.report th:nth-child(4) { width: 8rem; }
      table.report th:nth-child(5) { width: 38%; } table.inner { table-layout: fixed; } table.inner th:first-child { width: 30%; }
      @media (max-width: 40rem) {
        body { grid-template-columns: 1fr; } header { grid-column: 1; flex-wrap: wrap; }
        nav { display: flex; overflow-x: auto; border-right: 0; border-bottom: 1px solid #ddd; padding: 0; } nav a { white-space: nowrap; }
        main { padding: 1rem; } main table { table-layout: fixed; } th, td { overflow-wrap: anywhere; }
        table.report th:nth-child(2), table.report td:nth-child(2) { display: none; } table.report th:nth-child(5) { width: 50%; }
      }
    """

    /// The `$skiptoken` of a Graph page's `@odata.nextLink`, if there is a next page.
    static func nextToken(_ page: JSONValue) -> String? {
        guard let link = page["@odata.nextLink"]?.stringValue, let components = URLComponents(string: link) else { return nil }
        return components.queryItems?.first { $0.name == "$skiptoken" }?.value
    }

    /// "Next page" and "first page" links for a listing.
    func pager(_ page: JSONValue, path: String, keep: [(name: String, value: String)]) -> String {
        var links: [String] = []
        if request.parameter("page") != nil { links.append("<a href=\"\(h(base + path + "?" + AuthorizeEndpoint.encode(keep)))\">First page</a>") }
        if let next = Self.nextToken(page) {
            links.append("<a rel=\"next\" href=\"\(h(base + path + "?" + AuthorizeEndpoint.encode(keep + [("page", next)])))\">Next page</a>")
        }
        return links.isEmpty ? "" : "<p>" + links.joined(separator: " · ") + "</p>"
    }

    /// A single-quoted OData string literal.
    static func literal(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "''") + "'" }
}

extension TesseraApp {
    /// A session cookie for `userID`, for `tessera bench admin` (which renders pages in process as that user).
    public func adminBenchSession(tenant: String, userID: String) async throws -> String {
        let (_, setCookie) = try await SignInSessions(app: self).start(tenant: tenant, userID: userID, amr: ["fido", "mfa"], baseURL: "https://localhost:8443")
        return String(setCookie.split(separator: ";")[0])
    }
}
