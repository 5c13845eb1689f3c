import ArgumentParser
import Foundation
import Server
import Store
import TesseraCore

/// The admin center's pages on a loaded tenant (`bench load`): each page rendered in process, as a signed-in
/// Global Administrator would get it, with the median and p99 of `--repeat` renders.
struct AdminBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "admin", abstract: "Admin center page times on a loaded tenant.")
    @OptionGroup var storage: StorageOptions
    @Option(help: "The loaded tenant's id (bench load's output).") var tenant: String
    @Option(help: "Renders per page.") var renders: Int = 30

    func run() async throws {
        let store = try await storage.openStore()
        let app = try await TesseraApp.make(store: store)
        let tenantID = tenant
        let admins = try await store.read { tx in
            try await tx.query(ObjectQuery(tenant: tenantID, kinds: [.roleAssignment],
                                           filter: .compare(PropertyPath(["roleDefinitionId"]), .eq, .string(BuiltInRoles.globalAdministrator))))
        }
        guard let adminID = admins.first?.body["principalId"]?.stringValue else { throw ValidationError("no Global Administrator in \(tenant)") }
        let users = try await store.read { tx in try await tx.count(ObjectQuery(tenant: tenantID, kinds: [.user])) }
        let cookie = try await app.adminBenchSession(tenant: tenant, userID: adminID)
        let byOffset = Base64URL.encode(Data(#"{"o":\#(max(0, users - 50))}"#.utf8))
        // The next link to the last 50 users by name: the keyset position of the user before them (the Graph lister's
        // token: the order's values and the id).
        let beforeLast = try await store.read { tx in
            try await tx.query(ObjectQuery(tenant: tenantID, kinds: [.user], orderBy: [OrderByItem(path: PropertyPath(["displayName"]), descending: true)],
                                           limit: 51))
        }.last
        let keyset: JSONValue = ["k": [beforeLast?.body["displayName"] ?? .null], "a": .string(beforeLast?.id ?? "")]
        let deep = Base64URL.encode(Data(keyset.serialized.utf8))
        let pages: [(String, String, [(name: String, value: String)])] = [
            ("users, first page (50, by name)", "users", []),
            ("users, the last page (its next link)", "users", [("page", deep)]),
            ("users, the same page by offset \(max(0, users - 50)) (before keyset tokens)", "users", [("page", byOffset)]),
            ("users, search by name start", "users", [("q", "User 0999")]),
            ("users, search by address start", "users", [("q", "user050000@")]),
            ("groups, first page", "groups", []),
            ("sign-in logs, first page", "signins", []),
            ("passkey policy", "passkeys", []),
            ("roles", "roles", []),
        ]
        say("| admin center page (\(users) users, in process, \(renders) renders) | median | p99 |")
        say("|---|---|---|")
        for (name, path, query) in pages {
            var times: [Double] = []
            for _ in 0..<max(1, renders) {
                let start = ContinuousClock.now
                let response = await app.handle(APIRequest(method: "GET", path: "/admin/\(tenant)/\(path)", query: query,
                                                           headers: ["cookie": cookie], body: [], baseURL: "https://localhost:8443"))
                times.append((ContinuousClock.now - start).seconds * 1000)
                guard response.status == 200, !String(decoding: response.body, as: UTF8.self).contains("role=\"alert\"") else {
                    throw ValidationError("\(path) answered \(response.status): \(String(decoding: response.body.prefix(600), as: UTF8.self))")
                }
            }
            times.sort()
            say(String(format: "| %@ | %.1f ms | %.1f ms |", name as NSString, times[times.count / 2], times[min(times.count - 1, Int(Double(times.count) * 0.99))]))
        }
        try await store.shutdown()
    }
}
