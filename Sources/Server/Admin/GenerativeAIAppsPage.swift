import Foundation
import InternetAccess
import TesseraCore

/// "Generative AI apps": the AI apps found in the traffic records, riskiest first, with server-rendered SVG charts (a
/// daily trend and users per app), the sanctioned/unsanctioned/monitored switch, and a drill-down to an app's users.
/// It reads and writes through Graph beta's `/networkAccess` as the signed-in user.
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
            rows += "<tr><td>\(Self.riskPill(app["riskScore"]?.intValue ?? 0))</td>"
                + "<td><a href=\"\(h(admin.base))/ai-apps/\(h(Self.pathSegment(id)))\">\(h(app["displayName"]?.stringValue))</a>"
                + "<br><span class=\"muted\">\(h(app["category"]?.stringValue))</span></td>"
                + "<td>\(app["userCount"]?.intValue ?? 0)</td><td>\(app["requestCount"]?.intValue ?? 0)</td>"
                + "<td>\(app["promptCount"]?.intValue ?? 0)</td>"
                + "<td>\(Self.bytes(app["sentBytes"]?.intValue)) / \(Self.bytes(app["receivedBytes"]?.intValue))</td>"
                + "<td class=\"mono\">\(h(app["firstSeenDateTime"]?.stringValue))<br>\(h(app["lastSeenDateTime"]?.stringValue))</td>"
                + "<td>\(admin.form("/ai-apps/\(Self.pathSegment(id))/sanction", "<select name=\"state\" aria-label=\"Sanction state of \(h(app["displayName"]?.stringValue))\">\(options)</select>", button: "Set"))</td></tr>"
        }
        let content = """
        <h1>Generative AI apps</h1>
        <p class="muted">Requests to the AI apps of Tessera's catalog, from imported proxy and firewall logs (<span class="mono">tessera traffic import</span>), the last 30 days. Risk is the catalog's overall score: 0 is the riskiest, 10 the least.</p>
        \(Self.trendChart(trend))
        \(Self.usersChart(apps))
        <table><thead><tr><th>Risk</th><th>App</th><th>Users</th><th>Requests</th><th>Prompts</th><th>Sent / received</th><th>First / last seen (UTC)</th><th>Sanction</th></tr></thead>
        <tbody>\(rows.isEmpty ? "<tr><td colspan=\"8\" class=\"muted\">No AI app traffic recorded.</td></tr>" : rows)</tbody></table>
        """
        return admin.page(title: "Generative AI apps", section: "ai-apps", failure: failure, content: content)
    }

    /// One app's users, most requests first.
    func detail(appId: String, failure: String?) async throws -> APIResponse {
        var failure = failure
        var rows = ""
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
        let app = (try? NetworkAccessHandler.catalog())?.apps.first { $0.id == appId }
        return admin.page(title: "Generative AI apps", section: "ai-apps", failure: failure, content: """
        <p><a href="\(h(admin.base))/ai-apps">Generative AI apps</a></p>
        <h1>\(h(app?.name ?? appId))</h1>
        <p class="muted">\(h(app?.publisher)) · \(h(app?.category.displayName)) · \(h(app?.hosts.joined(separator: ", ")))</p>
        <table><thead><tr><th>User</th><th>Requests</th><th>Prompts</th><th>Sent / received</th><th>First / last seen (UTC)</th></tr></thead>
        <tbody>\(rows.isEmpty ? "<tr><td colspan=\"5\" class=\"muted\">No users.</td></tr>" : rows)</tbody></table>
        """)
    }

    /// `POST ai-apps/{appId}/sanction`.
    func act(_ path: [String]) async -> AdminRequest.Outcome {
        guard path.count == 2, path[1] == "sanction", let state = admin.form["state"] else { return .failed("Unknown action.") }
        switch await beta("PATCH", "networkAccess/reports/generativeAIApps/\(Self.pathSegment(path[0]))", body: ["sanctionState": .string(state)]) {
        case .success: return .done("saved")
        case .failure(let failure): return .failed(failure.message)
        }
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
