import Foundation
import Testing
@testable import Server
@testable import Sync
import TesseraCore
import TesseraTesting

/// A directory sync run writes back only what it owns of the tenant's sync settings — its run record and its
/// connector's DirSync cookie — in one read-modify-write at its end, so what an administrator changed while it ran
/// (the `onPremisesDirectorySynchronization` switches and deletion prevention over Graph, connectors added or removed)
/// stays. The real sync engine reads a real LDIF file, ten entries to a page, and is paused after its first page
/// while the administrator acts on another node. On SQLite and PostgreSQL.
@Suite("Directory sync runs keep settings changed while they run")
struct SyncRunSettingsTests {
    /// A file connector named `name` reading `file`, with `cookie` as its stored DirSync cookie.
    static func connector(_ name: String, file: URL, cookie: [UInt8]? = nil) -> SyncConnector {
        var connector = SyncConnector(name: name, ldapURL: "", bindDN: "", bindPasswordFile: "", baseDN: SyncRunHandbackTests.base, cookie: cookie)
        connector.ldifFile = file.path
        return connector
    }

    /// A Graph call on `node` with an application token of `tenant`'s automation app, as a client of the Graph API makes it.
    static func graph(_ node: TesseraApp, _ tenant: ProvisionedTenant, _ method: String, _ path: String, _ json: JSONValue? = nil) async throws -> APIResponse {
        func enc(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? s }
        let form = "grant_type=client_credentials&client_id=\(enc(tenant.clientId))&client_secret=\(enc(tenant.clientSecret))&scope=\(enc("https://graph.microsoft.com/.default"))"
        let issued = await node.handle(APIRequest(method: "POST", path: "/\(tenant.tenantId)/oauth2/v2.0/token", query: [],
                                                  headers: ["content-type": "application/x-www-form-urlencoded"], body: Array(form.utf8), baseURL: Harness.base))
        let token = try #require(issued.json["access_token"]?.stringValue, "\(issued.text)")
        var headers = ["authorization": "Bearer \(token)"]
        if json != nil { headers["content-type"] = "application/json" }
        return await node.handle(APIRequest(method: method, path: "/v1.0/" + path, query: [], headers: headers,
                                            body: json?.serializedBytes ?? [], baseURL: Harness.base))
    }

    @Test("a run paused after a page while an administrator PATCHes onPremisesDirectorySynchronization and adds and removes connectors ends with the changes kept and its own record and cookie saved; a connector removed mid-run is not made again",
          arguments: RecoveryLeaseTests.databases)
    func runKeepsAdministratorChanges(_ database: String) async throws {
        try await RecoveryLeaseTests.cluster(database, nodes: 2) { nodes, clock, _ in
            let tenant = try await TenantProvisioner(directory: nodes[0].directory).create(name: "Fabrikam", domain: "fabrikam.test")
            let id = tenant.tenantId
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-\(UUID().uuidString).ldif")
            defer { try? FileManager.default.removeItem(at: file) }
            try SyncRunHandbackTests.ldif(users: Array(1...25), domain: "fabrikam.test").write(to: file, atomically: true, encoding: .utf8)
            // `corp` holds a stale cookie, which its run (a file: read whole) clears; `branch` is removed while the run goes on.
            var settings = SyncSettings()
            settings.connectors = [Self.connector("corp", file: file, cookie: [1, 2, 3]), Self.connector("branch", file: file)]
            try await settings.save(tenant: id, store: nodes[0].store)
            let record = try #require(try await nodes[0].store.read { tx in try await tx.tenant(id) })

            // The run on node 0 stops after its first page; meanwhile the administrator changes the switches and the
            // deletion prevention over Graph on node 1, and a connector is added and another removed (as `tessera sync connector` does).
            let path = "directory/onPremisesSynchronization/\(id)"
            let admin: @Sendable (Int) async throws -> Void = { pages in
                guard pages == 1 else { return }
                let patched = try await Self.graph(nodes[1], tenant, "PATCH", path, [
                    "features": ["blockSoftMatchEnabled": true, "quarantineUponUpnConflictEnabled": true],
                    "configuration": ["accidentalDeletionPrevention": ["synchronizationPreventionType": "enabledForPercentage", "alertThreshold": 10]]])
                #expect(patched.status == 204, "\(patched.text)")
                var current = try await SyncSettings.load(tenant: id, store: nodes[1].store)
                current.connectors.removeAll { $0.name == "branch" }
                current.connectors.append(Self.connector("hr", file: file))
                try await current.save(tenant: id, store: nodes[1].store)
            }
            let runs = try await SyncCycle.$pageSize.withValue(10) {
                try await SyncCycle.$pageCommitted.withValue(admin) {
                    try await SyncCycle(directory: nodes[0].directory, clock: clock).run(tenant: record, connector: "corp")
                }
            }
            let run = try #require(runs.first)
            #expect(runs.count == 1 && run.status == "success" && run.added == 26, "\(runs.map(\.json))")

            let after = try await Self.graph(nodes[1], tenant, "GET", path).json
            #expect(after["features"]?["blockSoftMatchEnabled"] == true && after["features"]?["quarantineUponUpnConflictEnabled"] == true,
                    "the run reverted the switches: \(after)")
            #expect(after["configuration"]?["accidentalDeletionPrevention"]?["synchronizationPreventionType"] == "enabledForPercentage"
                    && after["configuration"]?["accidentalDeletionPrevention"]?["alertThreshold"] == 10, "the run reverted the deletion prevention: \(after)")
            let stored = try await SyncSettings.load(tenant: id, store: nodes[0].store)
            #expect(stored.connectors.map(\.name) == ["corp", "hr"], "the run put back the connectors it read: \(stored.connectors.map(\.name))")
            #expect(stored.connectors.first?.cookie == nil, "the run's connector state was not saved")
            #expect(stored.runs.compactMap(SyncRun.init(json:)).map(\.id) == [run.id] && stored.runs.first?["status"] == "success")

            // A run whose own connector is removed while it runs records itself and does not make the connector again.
            let removeCorp: @Sendable (Int) async throws -> Void = { pages in
                guard pages == 1 else { return }
                var current = try await SyncSettings.load(tenant: id, store: nodes[1].store)
                current.connectors.removeAll { $0.name == "corp" }
                try await current.save(tenant: id, store: nodes[1].store)
            }
            clock.advance(60)
            let second = try await SyncCycle.$pageSize.withValue(10) {
                try await SyncCycle.$pageCommitted.withValue(removeCorp) {
                    try await SyncCycle(directory: nodes[0].directory, clock: clock).run(tenant: record, connector: "corp")
                }
            }
            let final = try await SyncSettings.load(tenant: id, store: nodes[0].store)
            #expect(final.connectors.map(\.name) == ["hr"], "a removed connector was made again: \(final.connectors.map(\.name))")
            #expect(final.runs.compactMap { $0["id"]?.stringValue } == [run.id] + second.map(\.id))
            #expect(final.features.blockSoftMatchEnabled && final.deletionThreshold == 10)
        }
    }
}
