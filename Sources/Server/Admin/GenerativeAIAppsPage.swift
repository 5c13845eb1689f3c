import Foundation
import InternetAccess
import TesseraCore

/// "Generative AI apps": the AI apps found in the traffic records, riskiest first, with server-rendered SVG charts (a
/// daily trend and users per app), the sanctioned/unsanctioned/monitored switch, the tenant's custom apps (added and
/// removed here), and a drill-down to an app: its users, and its scores with the catalog's reasons beside the
/// administrator's override (who set it, when, why), which is set and removed there. It reads and writes through Graph
/// beta's `/networkAccess` as the signed-in user.
struct GenerativeAIAppsPage {
    let admin: AdminRequest

    /// A beta Graph call as the signed-in user (the admin center's own helper speaks v1.0).
    func beta(_ method: String, _ path: String, body: JSONValue? = nil) async -> Result<JSONValue, AdminRequest.GraphFailure> {
        let inner = APIRequest(method: method, path: "/beta/" + path, query: [], headers: ["content-type": "application/json"],
                               body: body?.serializedBytes ?? [], baseURL: admin.request.baseURL)
        do {
            // The admin center is a first-party client with every scope; the user's roles still decide.
            var caller = admin.caller
            caller.scopes.formUnion(NetworkAccessHandler.permissions)
            let response = try await GraphAPI(app: admin.app).handle(inner, as: caller)
            if response.body.isEmpty { return .success(.null) }
            let value = try JSONParser.parse(response.body)
            if response.status >= 400 {
                return .failure(.init(message: value["error"]?["message"]?.stringValue ?? "The request failed."))
            }
            return .success(value)
        } catch let error as DirectoryError {
            return .failure(.init(message: error.message))
        } catch {
            return .failure(.init(message: "The request failed."))
        }
    }

    func list(failure: String?) async throws -> APIResponse {
        var failure = failure
        var apps: [JSONValue] = [], trend: [JSONValue] = []
        switch await beta("GET", "networkAccess/reports/generativeAIApps") {
        case .success(let report):
            apps = report["value"]?.arrayValue ?? []
            trend = report["dailyTrend"]?.arrayValue ?? []
        case .failure(let error): failure = failure ?? error.message
        }
        var rows = ""
        for app in apps {
            let id = app["appId"]?.stringValue ?? ""
            let state = app["sanctionState"]?.stringValue ?? "none"
            let options = AppSanctions.State.allCases.map {
                "<option value=\"\($0.rawValue)\"\($0.rawValue == state ? " selected" : "")>\(h($0.rawValue))</option>"
            }.joined()
            let marks = (app["scoreOverridden"]?.boolValue == true ? " <span class=\"pill warn\" title=\"an administrator's scores\">override</span>" : "")
                + (app["isCustom"]?.boolValue == true ? " <span class=\"pill\">custom</span>" : "")
            rows += "<tr><td>\(Self.riskPill(app["riskScore"]?.intValue ?? 0))</td>"
                + "<td><a href=\"\(h(admin.base))/ai-apps/\(h(Self.pathSegment(id)))\">\(h(app["displayName"]?.stringValue))</a>\(marks)"
                + "<br><span class=\"muted\">\(h(app["category"]?.stringValue))</span></td>"
                + "<td>\(app["userCount"]?.intValue ?? 0)</td><td>\(app["requestCount"]?.intValue ?? 0)</td>"
                + "<td>\(app["promptCount"]?.intValue ?? 0)</td>"
                + "<td>\(Self.bytes(app["sentBytes"]?.intValue)) / \(Self.bytes(app["receivedBytes"]?.intValue))</td>"
                + "<td class=\"mono\">\(h(app["firstSeenDateTime"]?.stringValue))<br>\(h(app["lastSeenDateTime"]?.stringValue))</td>"
                + "<td>\(admin.form("/ai-apps/\(Self.pathSegment(id))/sanction", "<select name=\"state\" aria-label=\"Sanction state of \(h(app["displayName"]?.stringValue))\">\(options)</select>", button: "Set"))</td></tr>"
        }
        let custom = await customApps(&failure)
        let content = """
        <h1>Generative AI apps</h1>
        <p class="muted">Requests to the AI apps of Tessera's catalog, from imported proxy and firewall logs (<span class="mono">tessera traffic import</span>), the last 30 days. Risk is the catalog's overall score: 0 is the riskiest, 10 the least.</p>
        \(Self.trendChart(trend))
        \(Self.usersChart(apps))
        <table><thead><tr><th>Risk</th><th>App</th><th>Users</th><th>Requests</th><th>Prompts</th><th>Sent / received</th><th>First / last seen (UTC)</th><th>Sanction</th></tr></thead>
        <tbody>\(rows.isEmpty ? "<tr><td colspan=\"8\" class=\"muted\">No AI app traffic recorded.</td></tr>" : rows)</tbody></table>
        \(custom)
        """
        return admin.page(title: "Generative AI apps", section: "ai-apps", failure: failure, content: content)
    }

    /// The tenant's custom apps, each removable, and the form that adds one.
    func customApps(_ failure: inout String?) async -> String {
        var rows = ""
        switch await beta("GET", "networkAccess/generativeAIApps") {
        case .success(let catalog):
            for app in catalog["value"]?.arrayValue ?? [] where app["isCustom"]?.boolValue == true {
                let id = app["id"]?.stringValue ?? ""
                rows += "<tr><td><a href=\"\(h(admin.base))/ai-apps/\(h(Self.pathSegment(id)))\">\(h(app["displayName"]?.stringValue))</a></td>"
                    + "<td class=\"mono\">\(h(app["hosts"]?.arrayValue?.compactMap(\.stringValue).joined(separator: ", ")))</td>"
                    + "<td>\(h(app["category"]?.stringValue))</td><td>\(Self.riskPill(app["riskScore"]?.intValue ?? 0))</td>"
                    + "<td>\(h(app["createdBy"]?.stringValue))<br><span class=\"mono\">\(h(app["createdDateTime"]?.stringValue))</span></td>"
                    + "<td>\(admin.form("/ai-apps/\(Self.pathSegment(id))/delete", "", button: "Remove", confirm: true))</td></tr>"
            }
        case .failure(let error): failure = failure ?? error.message
        }
        let categories = AIApp.Category.allCases.map { "<option value=\"\($0.rawValue)\">\(h($0.displayName))</option>" }.joined()
        let add = admin.form("/ai-apps/custom", """
            <label>Id <input name="id" required pattern="[a-z0-9-]+" placeholder="contoso-gpt"></label> \
            <label>Name <input name="displayName" required></label> \
            <label>Hosts <input name="hosts" required placeholder="gpt.contoso.com, api.contoso.ai"></label> \
            <label>Category <select name="category">\(categories)</select></label>
            """, button: "Add custom app")
        return """
        <h2>Custom apps</h2>
        <p class="muted">Apps the catalog does not ship, added by this tenant's administrators: discovered in traffic and filtered by the proxy as catalog apps are. Facts not stated count as the riskiest.</p>
        <table><thead><tr><th>App</th><th>Hosts</th><th>Category</th><th>Risk</th><th>Added by</th><th></th></tr></thead>
        <tbody>\(rows.isEmpty ? "<tr><td colspan=\"6\" class=\"muted\">No custom apps.</td></tr>" : rows)</tbody></table>
        \(add)
        """
    }

    /// One app: its scores (the catalog's with their reasons, and an override) and its users, most requests first.
    func detail(appId: String, failure: String?) async throws -> APIResponse {
        var failure = failure
        var rows = ""
        var scores = ""
        switch await beta("GET", "networkAccess/generativeAIApps/\(Self.pathSegment(appId))") {
        case .success(let app): scores = scoreSection(app)
        case .failure(let error): failure = failure ?? error.message
        }
        switch await beta("GET", "networkAccess/reports/generativeAIApps/\(Self.pathSegment(appId))/users") {
        case .success(let users):
            for u in users["value"]?.arrayValue ?? [] {
                rows += "<tr><td>\(h(u["user"]?.stringValue))\(u["userId"]?.stringValue == nil ? " <span class=\"muted\">(not a directory user)</span>" : "")</td>"
                    + "<td>\(u["requestCount"]?.intValue ?? 0)</td><td>\(u["promptCount"]?.intValue ?? 0)</td>"
                    + "<td>\(Self.bytes(u["sentBytes"]?.intValue)) / \(Self.bytes(u["receivedBytes"]?.intValue))</td>"
                    + "<td class=\"mono\">\(h(u["firstSeenDateTime"]?.stringValue))<br>\(h(u["lastSeenDateTime"]?.stringValue))</td></tr>"
            }
        case .failure(let error): failure = failure ?? error.message
        }
        return admin.page(title: "Generative AI apps", section: "ai-apps", failure: failure, content: """
        <p><a href="\(h(admin.base))/ai-apps">Generative AI apps</a></p>
        \(scores.isEmpty ? "<h1>\(h(appId))</h1>" : scores)
        <h2>Users</h2>
        <table><thead><tr><th>User</th><th>Requests</th><th>Prompts</th><th>Sent / received</th><th>First / last seen (UTC)</th></tr></thead>
        <tbody>\(rows.isEmpty ? "<tr><td colspan=\"5\" class=\"muted\">No users.</td></tr>" : rows)</tbody></table>
        """)
    }

    /// An app's heading and its scores: per area the catalog's score, the points its facts gave and the override.
    func scoreSection(_ app: JSONValue) -> String {
        let id = app["id"]?.stringValue ?? ""
        let override = app["scoreOverride"]
        var rows = ""
        for (area, key) in [("general", "generalScore"), ("security", "securityScore"), ("compliance", "complianceScore"), ("legal", "legalScore")] {
            let reasons = (app["scoreReasons"]?.arrayValue ?? []).filter { $0["area"]?.stringValue == area }
                .map { "+\($0["points"]?.intValue ?? 0) \(h($0["reason"]?.stringValue))" }.joined(separator: "<br>")
            let overridden = override?[key]?.intValue.map { "<strong>\($0)</strong>" } ?? "<span class=\"muted\">—</span>"
            rows += "<tr><td>\(h(area))</td><td>\(app["catalogScores"]?[key]?.intValue ?? 0)</td><td>\(reasons)</td><td>\(overridden)</td>"
                + "<td><input name=\"\(key)\" type=\"number\" min=\"0\" max=\"10\" value=\"\(override?[key]?.intValue.map(String.init) ?? "")\" aria-label=\"\(h(area)) score override\"></td></tr>"
        }
        let author = override.flatMap { o -> String? in
            guard let by = o["author"]?.stringValue else { return nil }
            return "<p>Scores overridden by <strong>\(h(by))</strong> at <span class=\"mono\">\(h(o["lastModifiedDateTime"]?.stringValue))</span>"
                + (o["reason"]?.stringValue.map { ": \(h($0))" } ?? "") + "</p>"
                + admin.form("/ai-apps/\(Self.pathSegment(id))/override-remove", "", button: "Remove override", confirm: true)
        } ?? ""
        let sources = (app["sources"]?.objectValue ?? [:]).sorted { $0.key < $1.key }
            .map { "<li>\(h($0.key)): <a href=\"\(h($0.value["url"]?.stringValue))\" rel=\"noreferrer\">\(h($0.value["url"]?.stringValue))</a> (\(h($0.value["asOf"]?.stringValue)))</li>" }
            .joined()
        let form = admin.form("/ai-apps/\(Self.pathSegment(id))/override", """
            <table><thead><tr><th>Area</th><th>Catalog</th><th>Why (the catalog's facts)</th><th>Override</th><th>New override</th></tr></thead><tbody>\(rows)</tbody></table>
            <label>Reason <input name="reason" size="60"></label>
            """, button: "Override scores")
        return """
        <h1>\(h(app["displayName"]?.stringValue)) \(Self.riskPill(app["riskScore"]?.intValue ?? 0))</h1>
        <p class="muted">\(h(app["publisher"]?.stringValue)) · \(h(app["category"]?.stringValue)) · \(h(app["hosts"]?.arrayValue?.compactMap(\.stringValue).joined(separator: ", ")))</p>
        <h2>Risk scores</h2>
        \(author)
        \(form)
        <p class="muted">Sources:</p><ul>\(sources)</ul>
        """
    }

    /// `POST ai-apps/{appId}/sanction`, `…/override`, `…/override-remove`, `…/delete` and `ai-apps/custom`.
    func act(_ path: [String]) async -> AdminRequest.Outcome {
        let result: Result<JSONValue, AdminRequest.GraphFailure>
        switch path {
        case ["custom"]:
            let hosts = (admin.form["hosts"] ?? "").split(whereSeparator: { $0 == "," || $0 == " " }).map { JSONValue.string(String($0)) }
            result = await beta("POST", "networkAccess/generativeAIApps", body: [
                "id": .string(admin.form["id"] ?? ""), "displayName": .string(admin.form["displayName"] ?? ""),
                "category": .string(admin.form["category"] ?? ""), "hosts": .array(hosts)])
        case let p where p.count == 2:
            let app = "networkAccess/generativeAIApps/\(Self.pathSegment(p[0]))"
            switch p[1] {
            case "sanction":
                guard let state = admin.form["state"] else { return .failed("Unknown action.") }
                result = await beta("PATCH", "networkAccess/reports/generativeAIApps/\(Self.pathSegment(p[0]))", body: ["sanctionState": .string(state)])
            case "override":
                var body: [String: JSONValue] = [:]
                for key in ScoreOverrideForm.keys {
                    guard let text = admin.form[key]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { continue }
                    guard let n = Int(text) else { return .failed("\(key) must be a whole number from 0 to 10.") }
                    body[key] = .int(Int64(n))
                }
                if let reason = admin.form["reason"], !reason.isEmpty { body["reason"] = .string(reason) }
                result = await beta("PATCH", app + "/scoreOverride", body: .object(body))
            case "override-remove": result = await beta("DELETE", app + "/scoreOverride")
            case "delete": result = await beta("DELETE", app)
            default: return .failed("Unknown action.")
            }
        default: return .failed("Unknown action.")
        }
        switch result {
        case .success: return .done("saved")
        case .failure(let failure): return .failed(failure.message)
        }
    }

    /// The page an action returns to: an app's own for its scores, the list otherwise.
    static func page(after path: [String]) -> [String] {
        path.count == 2 && path[1].hasPrefix("override") ? ["ai-apps", path[0]] : ["ai-apps"]
    }

    enum ScoreOverrideForm {
        static let keys = ["generalScore", "securityScore", "complianceScore", "legalScore"]
    }

    static func pathSegment(_ id: String) -> String { id.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(["-"])) ?? id }

    static func riskPill(_ score: Int64) -> String {
        let kind = score <= 3 ? "off" : (score <= 6 ? "warn" : "on")
        return "<span class=\"pill \(kind)\" title=\"overall score \(score) of 10\">\(score)</span>"
    }

    static func bytes(_ value: Int64?) -> String {
        let v = Double(value ?? 0)
        if v >= 1e9 { return String(format: "%.1f GB", v / 1e9) }
        if v >= 1e6 { return String(format: "%.1f MB", v / 1e6) }
        if v >= 1e3 { return String(format: "%.1f kB", v / 1e3) }
        return "\(Int(v)) B"
    }
}

extension GenerativeAIAppsPage {
    /// Requests a day as an SVG bar chart.
    static func trendChart(_ trend: [JSONValue]) -> String {
        guard !trend.isEmpty else { return "" }
        let width = 640.0, height = 160.0, top = 10.0, bottom = 24.0
        let counts = trend.map { Double($0["requests"]?.intValue ?? 0) }
        let peak = max(counts.max() ?? 1, 1)
        let slot = width / Double(trend.count)
        var bars = ""
        for (n, day) in trend.enumerated() {
            let value = counts[n], barHeight = (height - top - bottom) * value / peak
            let x = Double(n) * slot + slot * 0.1, y = height - bottom - barHeight
            let label = h(day["day"]?.stringValue)
            bars += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#0f3d73\"><title>%@: %d requests</title></rect>",
                           x, y, slot * 0.8, barHeight, label as NSString, Int(value))
            if trend.count <= 10 || n % max(1, trend.count / 6) == 0 {
                bars += String(format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"middle\">%@</text>",
                               x + slot * 0.4, height - 8, String(label.suffix(5)) as NSString)
            }
        }
        return """
        <figure><figcaption>Requests to AI apps a day (peak \(Int(peak)))</figcaption>
        <svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="Requests to AI apps a day" viewBox="0 0 \(Int(width)) \(Int(height))" width="100%" style="max-width:\(Int(width))px">\(bars)</svg></figure>
        """
    }

    /// Users per app as horizontal SVG bars, coloured by risk.
    static func usersChart(_ apps: [JSONValue]) -> String {
        guard !apps.isEmpty else { return "" }
        let shown = Array(apps.prefix(15))
        let row = 22.0, labelWidth = 220.0, width = 640.0
        let peak = max(Double(shown.compactMap { $0["userCount"]?.intValue }.max() ?? 1), 1)
        var bars = ""
        for (n, app) in shown.enumerated() {
            let users = Double(app["userCount"]?.intValue ?? 0), risk = app["riskScore"]?.intValue ?? 0
            let y = Double(n) * row, w = (width - labelWidth - 40) * users / peak
            let colour = risk <= 3 ? "#b3261e" : (risk <= 6 ? "#b26a00" : "#1e7b34")
            bars += String(format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"end\">%@</text>", labelWidth - 6, y + 15,
                           h(app["displayName"]?.stringValue) as NSString)
                + String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"16\" fill=\"%@\"><title>%d users, risk %d</title></rect>",
                         labelWidth, y + 3, w, colour as NSString, Int(users), Int(risk))
                + String(format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\">%d</text>", labelWidth + w + 4, y + 15, Int(users))
        }
        return """
        <figure><figcaption>Users per app (red: risk 0–3, amber: 4–6, green: 7–10)</figcaption>
        <svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="Users per app" viewBox="0 0 \(Int(width)) \(Int(Double(shown.count) * row + 6))" width="100%" style="max-width:\(Int(width))px">\(bars)</svg></figure>
        """
    }
}
