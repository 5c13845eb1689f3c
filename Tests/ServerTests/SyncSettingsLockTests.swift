import Foundation
import Testing
@testable import Server
@testable import Sync
import TesseraCore
import TesseraTesting

/// Read-modify-writes of a tenant's sync settings (the `sync` setting) that two nodes make at once — a run's write-back
/// of its record and cookie, the Graph PATCH of `onPremisesDirectorySynchronization`, `tessera sync connector add` and
/// `remove` — each reading the setting with its row locked (``SyncSettings/update(tenant:store:_:)``,
/// ``DirectoryWriter/lockedSetting(tenant:key:)``), so each keeps the other's change. The race is made certain, as in
/// ``SettingLockTests``: a third transaction rewrites the setting and holds it until both have read and wait to write (on
/// PostgreSQL, read unlocked, the second to write then puts back what it read); SQLite has one writer, so there they run
/// one after the other anyway. On SQLite and PostgreSQL.
@Suite("Sync settings read locked")
struct SyncSettingsLockTests {
    @Test("a run writing back its record and cookie while a Graph PATCH of onPremisesDirectorySynchronization lands on another node: both are kept",
          arguments: RecoveryLeaseTests.databases)
    func runWriteBackBesidePatch(_ database: String) async throws {
        try await RecoveryLeaseTests.cluster(database, nodes: 2) { nodes, clock, _ in
            let tenant = try await TenantProvisioner(directory: nodes[0].directory).create(name: "Fabrikam", domain: "fabrikam.test")
            let id = tenant.tenantId
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-\(UUID().uuidString).ldif")
            defer { try? FileManager.default.removeItem(at: file) }
            try SyncRunHandbackTests.ldif(users: Array(1...25), domain: "fabrikam.test").write(to: file, atomically: true, encoding: .utf8)
            // A stale cookie, which the run (of a file: read whole) clears when it writes back.
            try await SyncSettings.addConnector(SyncRunSettingsTests.connector("corp", file: file, cookie: [1, 2, 3]), tenant: id, store: nodes[0].store)
            let record = try #require(try await nodes[0].store.read { tx in try await tx.tenant(id) })

            // The run stops after its last full page until the setting is held; then it goes on to its write-back while
            // the PATCH is made on node 1.
            let (reached, reach) = AsyncStream<Void>.makeStream()
            let (resumed, resume) = AsyncStream<Void>.makeStream()
            let pause: @Sendable (Int) async throws -> Void = { pages in
                guard pages == 2 else { return }
                reach.yield()
                for await _ in resumed { break }
            }
            let run = Task {
                try await SyncCycle.$pageSize.withValue(10) {
                    try await SyncCycle.$pageCommitted.withValue(pause) {
                        try await SyncCycle(directory: nodes[0].directory, clock: clock).run(tenant: record, connector: "corp")
                    }
                }
            }
            for await _ in reached { break }
            let path = "directory/onPremisesSynchronization/\(id)"
            let patched = try await SettingLockTests.whileRewriteHeld(nodes[1].store, tenant: id, key: SyncSettings.key) {
                resume.yield()
                return try await SyncRunSettingsTests.graph(nodes[1], tenant, "PATCH", path, [
                    "features": ["blockSoftMatchEnabled": true],
                    "configuration": ["accidentalDeletionPrevention": ["synchronizationPreventionType": "enabledForPercentage", "alertThreshold": 10]]])
            }
            #expect(patched.status == 204, "\(patched.text)")
            let runs = try await run.value
            #expect(runs.count == 1 && runs.first?.status == "success", "\(runs.map(\.json))")

            let stored = try await SyncSettings.load(tenant: id, store: nodes[0].store)
            #expect(stored.features.blockSoftMatchEnabled && stored.deletionPreventionType == "enabledForPercentage" && stored.deletionThreshold == 10,
                    "the run's write-back undid the PATCH")
            #expect(stored.runs.compactMap { $0["id"]?.stringValue } == runs.map(\.id), "the PATCH put back the settings without the run's record")
            #expect(stored.connectors.map(\.name) == ["corp"] && stored.connectors.first?.cookie == nil, "the PATCH put back the connector's old cookie")
        }
    }

    @Test("`tessera sync connector add` and `remove` at once on two nodes: the connector added and the one removed are both so",
          arguments: RecoveryLeaseTests.databases)
    func connectorChangesAtOnce(_ database: String) async throws {
        try await SharedDatabase.withTwoStores(database) { storeA, storeB in
            let tenant = "fabrikam", file = URL(fileURLWithPath: "/dev/null")
            // The first change makes the setting (there is none to lock yet).
            for name in ["corp", "branch"] {
                try await SyncSettings.addConnector(SyncRunSettingsTests.connector(name, file: file), tenant: tenant, store: storeA)
            }
            await #expect(throws: SyncSettings.ConnectorRefusal.self) {
                try await SyncSettings.addConnector(SyncRunSettingsTests.connector("corp", file: file), tenant: tenant, store: storeB)
            }
            for round in 0..<2 {
                let added = "hr\(round)", removed = round == 0 ? "branch" : "corp"
                try await SettingLockTests.whileRewriteHeld(storeB, tenant: tenant, key: SyncSettings.key) {
                    async let add: Void = SyncSettings.addConnector(SyncRunSettingsTests.connector(added, file: file), tenant: tenant, store: storeA)
                    async let remove: Void = SyncSettings.removeConnector(named: removed, tenant: tenant, store: storeB)
                    _ = try await (add, remove)
                }
                let names = try await SyncSettings.load(tenant: tenant, store: storeA).connectors.map(\.name)
                #expect(names == (round == 0 ? ["corp", "hr0"] : ["hr0", "hr1"]), "round \(round): one change undid the other: \(names)")
            }
            await #expect(throws: SyncSettings.ConnectorRefusal.self) {
                try await SyncSettings.removeConnector(named: "branch", tenant: tenant, store: storeB)
            }
        }
    }
}
