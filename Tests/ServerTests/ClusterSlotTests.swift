@testable import Backup
import Foundation
import Testing
@testable import Server
import Sync
import TesseraCore
import TesseraTesting

/// Once-per-interval work on a cluster when a node stops (issue 19): a stopping node claims no sync slot, and a slot
/// whose work it could not finish is released for another node in the same interval. On SQLite and PostgreSQL.
@Suite("Cluster slots of a stopping node")
struct ClusterSlotTests {
    struct Failed: Error {}

    @Test("a draining node claims no directory sync slot: the other node runs the interval's sync", arguments: RecoveryLeaseTests.databases)
    func drainingNodeLeavesTheSlot(_ database: String) async throws {
        try await RecoveryLeaseTests.cluster(database, nodes: 2) { nodes, _, tenant in
            let domain = try #require(try await nodes[0].store.read { tx in try await tx.tenant(tenant) }).domain
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-\(UUID().uuidString).ldif")
            defer { try? FileManager.default.removeItem(at: file) }
            try "dn: CN=ada,OU=Staff,DC=corp,DC=test\nobjectClass: user\nobjectGUID:: AAECAwQFBgcICQoLDA0ODw==\nsAMAccountName: ada\nuserPrincipalName: ada@\(domain)\n"
                .write(to: file, atomically: true, encoding: .utf8)
            var connector = SyncConnector(name: "file", ldapURL: "", bindDN: "", bindPasswordFile: "", baseDN: "OU=Staff,DC=corp,DC=test")
            connector.ldifFile = file.path
            var settings = SyncSettings()
            settings.connectors = [connector]
            try await settings.save(tenant: tenant, store: nodes[0].store)

            nodes[0].lifecycle.beginDraining()
            #expect(await SyncService(app: nodes[0], interval: .seconds(1800)).cycle().isEmpty)
            #expect(try await SyncSettings.load(tenant: tenant, store: nodes[0].store).runs.isEmpty, "the draining node ran the sync")
            #expect(await SyncService(app: nodes[1], interval: .seconds(1800)).cycle().isEmpty)
            let runs = try await SyncSettings.load(tenant: tenant, store: nodes[1].store).runs
            #expect(runs.count == 1 && runs.first?["added"] == 1, "\(runs)")
        }
    }

    @Test("a draining node's housekeeping claims no day's snapshot: the other node's sweep takes it", arguments: RecoveryLeaseTests.databases)
    func drainingNodeTakesNoSnapshot(_ database: String) async throws {
        try await RecoveryLeaseTests.cluster(database, nodes: 2) { nodes, _, tenant in
            nodes[0].lifecycle.beginDraining()
            #expect(await RetentionService(app: nodes[0]).sweep().isEmpty)
            let before = try await nodes[0].backup.snapshots(tenant: tenant)
            #expect(before.isEmpty, "the draining node took the snapshot")
            #expect(await RetentionService(app: nodes[1]).sweep().isEmpty)
            let after = try await nodes[1].backup.snapshots(tenant: tenant)
            #expect(after.count == 1)
        }
    }

    @Test("a daily snapshot cancelled mid-way (a graceful shutdown's timeout) releases the day's claim: the other node takes the snapshot in the same hour",
          arguments: RecoveryLeaseTests.databases)
    func cancelledSnapshotReleasesTheDay(_ database: String) async throws {
        try await RecoveryLeaseTests.cluster(database, nodes: 2) { nodes, _, tenant in
            let (claimed, signal) = AsyncStream<Void>.makeStream()
            let running = Task {
                try await BackupService.$dayClaimed.withValue({
                    signal.yield()
                    try await Task.sleep(for: .seconds(3600))
                }) {
                    try await nodes[0].backup.daily(tenant: tenant)
                }
            }
            var waiting = claimed.makeAsyncIterator()
            _ = await waiting.next()
            running.cancel()
            await #expect(throws: CancellationError.self) { _ = try await running.value }
            #expect(try await nodes[0].backup.snapshots(tenant: tenant).isEmpty, "the cancelled node took the snapshot")
            // Same clock, same hour: had the claim been kept, the other node would find the day taken and do nothing.
            let taken = try await nodes[1].backup.daily(tenant: tenant)
            #expect(taken != nil, "the cancelled snapshot's claim was not released")
            #expect(try await nodes[1].backup.snapshots(tenant: tenant).count == 1)
        }
    }

    @Test("a slot whose work was cancelled, or failed while the node drained, is released for another node in the same interval; finished or plainly failed work keeps it",
          arguments: RecoveryLeaseTests.databases)
    func unfinishedSlotsAreReleased(_ database: String) async throws {
        try await RecoveryLeaseTests.cluster(database, nodes: 2) { nodes, _, tenant in
            let (first, second) = (ClusterSlot(app: nodes[0]), ClusterSlot(app: nodes[1]))
            // Cancelled mid-work (what the end of a graceful shutdown's timeout does to the work still running).
            let (claimed, signal) = AsyncStream<Void>.makeStream()
            let running = Task {
                try await first.run(tenant: tenant, key: "slot-cancelled", for: 3600) {
                    signal.yield()
                    try await Task.sleep(for: .seconds(3600))
                    return 1
                }
            }
            var waiting = claimed.makeAsyncIterator()
            _ = await waiting.next()
            running.cancel()
            await #expect(throws: CancellationError.self) { _ = try await running.value }
            let secondCancelled = try await second.claim("slot-cancelled", 2)
            #expect(secondCancelled == 2)
            // Finished: kept.
            let firstDone = try await first.claim("slot-done", 1)
            #expect(firstDone == 1)
            let secondDone = try await second.claim("slot-done", 2)
            #expect(secondDone == nil)
            // Failed on a node that keeps running: kept, as before (the next interval tries again).
            await #expect(throws: Failed.self) { _ = try await first.run(tenant: tenant, key: "slot-failed", for: 3600) { () async throws -> Int in throw Failed() } }
            let secondFailed = try await second.claim("slot-failed", 2)
            #expect(secondFailed == nil)
            // Failed once the node began to stop: released.
            await #expect(throws: Failed.self) {
                _ = try await first.run(tenant: tenant, key: "slot-stopping", for: 3600) { () async throws -> Int in
                    nodes[0].lifecycle.beginDraining()
                    throw Failed()
                }
            }
            let secondStopping = try await second.claim("slot-stopping", 2)
            #expect(secondStopping == 2)
            // And the stopping node claims nothing more.
            let firstNew = try await first.claim("slot-new", 1)
            #expect(firstNew == nil)
            let secondNew = try await second.claim("slot-new", 2)
            #expect(secondNew == 2)
        }
    }
}

extension ClusterSlot {
    /// Claims `key` of the cluster's tenant with `value` as its work's answer; nil when not claimed.
    func claim(_ key: String, _ value: Int) async throws -> Int? {
        let tenant = try #require(try await app.store.read { tx in try await tx.tenants() }.first).id
        return try await run(tenant: tenant, key: key, for: 3600) { value }
    }
}
