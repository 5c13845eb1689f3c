import Foundation
import InternetAccess
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

@Suite("Graph beta networkAccess: traffic logs and generative-AI discovery")
struct NetworkAccessTrafficTests {
    static func beta(_ h: Harness, _ path: String, token: String, query: [(name: String, value: String)] = []) async -> APIResponse {
        await h.send("GET", "/beta/" + path, query: query, headers: ["authorization": "Bearer \(token)"])
    }

    /// A token for the tenant's automation app once it holds NetworkAccess.ReadWrite.All (Microsoft's id).
    static func readerToken(_ h: Harness) async throws -> String {
        let admin = try await h.accessToken()
        let sp = await h.graph("GET", "servicePrincipals", token: admin, query: [("$filter", "appId eq '\(h.tenant.clientId)'")])
        let spId = try #require(sp.json["value"]?.arrayValue?.first?["id"]?.stringValue)
        let graph = await h.graph("GET", "servicePrincipals", token: admin, query: [("$filter", "appId eq '\(GraphPermissions.graphAppId)'")])
        let graphId = try #require(graph.json["value"]?.arrayValue?.first?["id"]?.stringValue)
        let grant = await h.graph("POST", "servicePrincipals/\(spId)/appRoleAssignments", token: admin, json: [
            "principalId": .string(spId), "resourceId": .string(graphId),
            "appRoleId": .string(try #require(GraphPermissions.byValue("NetworkAccess.ReadWrite.All")).id)])
        #expect(grant.status == 201)
        return try await h.accessToken()
    }

    /// Imports a Squid log of five requests to AI apps (one by the admin) and one elsewhere, an hour before now.
    static func importTraffic(_ h: Harness) async throws {
        let t = Int(h.clock.now.timeIntervalSince1970) - 3600
        let admin = h.tenant.adminUserPrincipalName
        let log = """
            \(t).000 245 10.0.0.5 TCP_TUNNEL/200 5230 CONNECT api.openai.com:443 \(admin) HIER_DIRECT/104.18.7.192 -
            \(t + 1).000 20 10.0.0.5 TCP_MISS/200 900 GET http://www.example.com/ \(admin) HIER_DIRECT/93.184.215.14 text/html
            \(t + 2).000 80 10.0.0.6 TCP_MISS/200 48210 POST http://chat.deepseek.com/api/v0/chat/completion bob HIER_DIRECT/1.2.3.4 -
            \(t + 3).000 80 10.0.0.6 TCP_TUNNEL/200 700 CONNECT chat.deepseek.com:443 bob HIER_DIRECT/1.2.3.4 -
            \(t + 4).000 80 10.0.0.7 TCP_DENIED/403 300 CONNECT poe.com:443 carol HIER_NONE/- -
            \(t + 5).000 80 10.0.0.5 TCP_TUNNEL/200 100 CONNECT claude.ai:443 \(admin) HIER_DIRECT/160.79.104.10 -

            """
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-squid-\(UUID().uuidString).log")
        try Data(log.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let fd = open(file.path, O_RDONLY)
        defer { close(fd) }
        let importer = TrafficImporter(catalog: try AICatalog.bundled(year: 2026), tenant: h.tenant.tenantId, format: .squid)
        let users = try await UserAttribution.load(tenant: h.tenant.tenantId, store: h.app.store)
        let summary = try await importer.run(fd: fd, store: h.app.store, users: users, now: h.clock.now)
        #expect(summary.recorded == 5)
    }

    @Test("the traffic log lists networkAccessTraffic records newest first, with $filter, $top, $select and paging")
    func listsTraffic() async throws {
        try await Harness.run { h in
            try await Self.importTraffic(h)
            let token = try await Self.readerToken(h)
            let all = await Self.beta(h, "networkAccess/logs/traffic", token: token)
            #expect(all.status == 200)
            let values = try #require(all.json["value"]?.arrayValue)
            #expect(values.map { $0["destinationFQDN"]?.stringValue } == ["claude.ai", "poe.com", "chat.deepseek.com", "chat.deepseek.com", "api.openai.com"])
            let first = try #require(values.first)
            #expect(first["@odata.type"] == "#microsoft.graph.networkaccess.networkAccessTraffic")
            #expect(first["userPrincipalName"]?.stringValue == h.tenant.adminUserPrincipalName)
            #expect(first["userId"]?.stringValue != nil)
            #expect(first["cloudApplicationMetadata"]?["name"] == "Claude")
            #expect(first["cloudApplicationMetadata"]?["riskScore"]?.intValue != nil)
            #expect(first["origin"] == nil)
            #expect(values[1]["action"] == "block")
            #expect(all.json["@odata.context"]?.stringValue?.hasSuffix("/beta/networkAccess/logs/$metadata#traffic") == true)

            // Paging: $top 2, then the next link, which keeps the query.
            let page = await Self.beta(h, "networkAccess/logs/traffic", token: token, query: [("$top", "2")])
            #expect(page.json["value"]?.arrayValue?.count == 2)
            let next = try #require(page.json["@odata.nextLink"]?.stringValue)
            let items = try #require(URLComponents(string: next)?.queryItems).map { ($0.name, $0.value ?? "") }
            let second = await Self.beta(h, "networkAccess/logs/traffic", token: token, query: items)
            #expect(second.json["value"]?.arrayValue?.map { $0["destinationFQDN"]?.stringValue } == ["chat.deepseek.com", "chat.deepseek.com"])

            // The filters Microsoft's examples use, and the app's catalog id.
            let byUser = await Self.beta(h, "networkAccess/logs/traffic", token: token,
                                         query: [("$filter", "userPrincipalName eq '\(h.tenant.adminUserPrincipalName)'")])
            #expect(byUser.json["value"]?.arrayValue?.count == 2)
            let byApp = await Self.beta(h, "networkAccess/logs/traffic", token: token,
                                        query: [("$filter", "cloudApplicationMetadata/cloudApplicationCatalogId eq 'deepseek-chat' and action eq 'allow'")])
            #expect(byApp.json["value"]?.arrayValue?.count == 2)
            let prompts = await Self.beta(h, "networkAccess/logs/traffic", token: token,
                                          query: [("$filter", "cloudApplicationMetadata/activity eq 'prompt'"), ("$select", "transactionId,destinationUrl")])
            let prompt = try #require(prompts.json["value"]?.arrayValue?.first)
            #expect(prompt["destinationUrl"] == "http://chat.deepseek.com/api/v0/chat/completion")
            #expect(prompt["sourceIp"] == nil)

            // One record by its transactionId.
            let id = try #require(first["transactionId"]?.stringValue)
            let one = await Self.beta(h, "networkAccess/logs/traffic/\(id)", token: token)
            #expect(one.json["destinationFQDN"] == "claude.ai")
        }
    }

    @Test("the catalog is readable with each app's scores, the points each fact gave, and its sources")
    func catalog() async throws {
        try await Harness.run { h in
            let token = try await Self.readerToken(h)
            let catalog = await Self.beta(h, "networkAccess/generativeAIApps", token: token)
            #expect(catalog.status == 200)
            let apps = try #require(catalog.json["value"]?.arrayValue)
            #expect(apps.count >= 25)
            let api = try #require(apps.first { $0["id"] == "openai-api" })
            #expect(api["hosts"] == ["api.openai.com"])
            let reasons = try #require(api["scoreReasons"]?.arrayValue)
            let legal = reasons.filter { $0["area"] == "legal" }.compactMap { $0["points"]?.intValue }.reduce(0, +)
            #expect(Int64(min(10, legal)) == api["legalScore"]?.intValue)
            #expect(api["sources"]?["privacy"]?["url"]?.stringValue?.hasPrefix("https://") == true)
            #expect(api["sanctionState"] == "none")
        }
    }

    @Test("bad queries and callers without NetworkAccess.Read.All get Graph errors")
    func refusals() async throws {
        try await Harness.run { h in
            let plain = try await h.accessToken()
            let denied = await Self.beta(h, "networkAccess/logs/traffic", token: plain)
            #expect(denied.status == 403)
            #expect(denied.errorCode == "Authorization_RequestDenied")
            let token = try await Self.readerToken(h)
            #expect(await Self.beta(h, "networkAccess/logs/traffic", token: token, query: [("$top", "1001")]).status == 400)
            #expect(await Self.beta(h, "networkAccess/logs/traffic", token: token, query: [("$orderby", "sentBytes")]).errorCode == "Request_UnsupportedQuery")
            #expect(await Self.beta(h, "networkAccess/logs/traffic", token: token, query: [("$skiptoken", "nonsense!")]).status == 400)
            #expect(await Self.beta(h, "networkAccess/logs/traffic", token: token, query: [("$filter", "userPrincipalName eq")]).status == 400)
            #expect(await Self.beta(h, "networkAccess/logs/traffic/unknown", token: token).status == 404)
            // networkAccess is a beta API only.
            #expect(await h.graph("GET", "networkAccess/logs/traffic", token: token).status == 400)
        }
    }

    @Test("the discovery report lists apps riskiest first with users, requests, bytes and a daily trend, and drills down to users")
    func report() async throws {
        try await Harness.run { h in
            try await Self.importTraffic(h)
            let token = try await Self.readerToken(h)
            let report = await Self.beta(h, "networkAccess/reports/generativeAIApps", token: token)
            #expect(report.status == 200)
            let apps = try #require(report.json["value"]?.arrayValue)
            #expect(apps.count == 4)
            let risks = apps.compactMap { $0["riskScore"]?.intValue }
            #expect(risks == risks.sorted())
            let deepseek = try #require(apps.first { $0["appId"] == "deepseek-chat" })
            #expect(deepseek["requestCount"] == 2)
            #expect(deepseek["promptCount"] == 1)
            #expect(deepseek["userCount"] == 1)
            #expect(deepseek["receivedBytes"] == 48910)
            #expect(report.json["dailyTrend"]?.arrayValue?.compactMap { $0["requests"]?.intValue }.reduce(0, +) == 5)
            let users = await Self.beta(h, "networkAccess/reports/generativeAIApps/deepseek-chat/users", token: token)
            #expect(users.json["value"]?.arrayValue?.compactMap { $0["user"]?.stringValue } == ["bob"])
        }
    }
}

@Suite("Admin center: Generative AI apps")
struct GenerativeAIAppsPageTests {
    @Test("the page lists the apps riskiest first with SVG charts, escapes names, drills down to users, and sets sanction states through a CSRF-checked form")
    func page() async throws {
        try await Harness.run { h in
            try await NetworkAccessTrafficTests.importTraffic(h)
            let admin = try await AdminCenterTests.Browser.signIn(h, userID: h.tenant.adminUserId)
            let page = await admin.get("/ai-apps")
            #expect(page.status == 200)
            let html = page.text
            #expect(html.contains("<h1>Generative AI apps</h1>"))
            #expect(html.contains("<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"Requests to AI apps a day\""))
            #expect(html.contains("aria-label=\"Users per app\""))
            #expect(!html.contains("<script src"))
            // Riskiest first: DeepSeek (no certifications, trains on prompts) before OpenAI's API.
            let deepseek = try #require(html.range(of: "ai-apps/deepseek-chat\"")), openAI = try #require(html.range(of: "ai-apps/openai-api\""))
            #expect(deepseek.lowerBound < openAI.lowerBound)

            let users = await admin.get("/ai-apps/deepseek-chat")
            #expect(users.status == 200)
            #expect(users.text.contains("<td>bob <span class=\"muted\">(not a directory user)</span></td>"))
            let adminUsers = await admin.get("/ai-apps/anthropic-claude")
            #expect(adminUsers.text.contains(h.tenant.adminUserPrincipalName))

            // The switch: without the form's token it is refused; with it the state is saved and shown.
            let forged = try await admin.post("/ai-apps/deepseek-chat/sanction", [("state", "unsanctioned")], from: "/ai-apps", csrf: "forged")
            #expect(forged.status == 403)
            let set = try await admin.post("/ai-apps/deepseek-chat/sanction", [("state", "unsanctioned")], from: "/ai-apps")
            #expect(set.status == 303)
            #expect(try await AppSanctions.load(tenant: h.tenant.tenantId, store: h.app.store) == ["deepseek-chat": .unsanctioned])
            #expect(await admin.get("/ai-apps").text.contains("<option value=\"unsanctioned\" selected>"))
            let bad = try await admin.post("/ai-apps/deepseek-chat/sanction", [("state", "banned")], from: "/ai-apps")
            #expect(bad.status == 400)
            let unknown = try await admin.post("/ai-apps/no-such-app/sanction", [("state", "sanctioned")], from: "/ai-apps")
            #expect(unknown.status == 400)
            #expect(unknown.text.contains("no-such-app"))
        }
    }

    @Test("the sanction state is set over Graph with NetworkAccess.ReadWrite.All and shown in the report")
    func sanctionOverGraph() async throws {
        try await Harness.run { h in
            try await NetworkAccessTrafficTests.importTraffic(h)
            let plain = await h.send("PATCH", "/beta/networkAccess/reports/generativeAIApps/poe", headers: [
                "authorization": "Bearer \(try await h.accessToken())", "content-type": "application/json"],
                body: Array(#"{"sanctionState":"sanctioned"}"#.utf8))
            #expect(plain.status == 403)
            let token = try await NetworkAccessTrafficTests.readerToken(h)
            let patch = await h.send("PATCH", "/beta/networkAccess/reports/generativeAIApps/poe", headers: [
                "authorization": "Bearer \(token)", "content-type": "application/json"], body: Array(#"{"sanctionState":"monitored"}"#.utf8))
            #expect(patch.status == 204, "\(patch.text)")
            let report = await NetworkAccessTrafficTests.beta(h, "networkAccess/reports/generativeAIApps", token: token)
            #expect(report.json["value"]?.arrayValue?.first { $0["appId"] == "poe" }?["sanctionState"] == "monitored")
            #expect(report.json["value"]?.arrayValue?.first { $0["appId"] == "openai-api" }?["sanctionState"] == "none")
            let bad = await h.send("PATCH", "/beta/networkAccess/reports/generativeAIApps/poe", headers: [
                "authorization": "Bearer \(token)", "content-type": "application/json"], body: Array(#"{"sanctionState":"maybe"}"#.utf8))
            #expect(bad.status == 400)
            #expect(bad.errorCode == "Request_BadRequest")
        }
    }

    @Test("the hourly housekeeping drops traffic records older than 30 days, as it does sign-in records")
    func retention() async throws {
        try await Harness.run { h in
            try await NetworkAccessTrafficTests.importTraffic(h)
            let token = try await NetworkAccessTrafficTests.readerToken(h)
            #expect(await RetentionService(app: h.app).sweep().isEmpty)
            #expect(await NetworkAccessTrafficTests.beta(h, "networkAccess/logs/traffic", token: token).json["value"]?.arrayValue?.count == 5)
            h.clock.advance(Double(TrafficLog.retentionDays + 1) * 86_400)
            #expect(await RetentionService(app: h.app).sweep().isEmpty)
            #expect(await NetworkAccessTrafficTests.beta(h, "networkAccess/logs/traffic", token: try await h.accessToken()).json["value"]?.arrayValue?.count == 0)
        }
    }
}
