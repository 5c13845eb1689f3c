import ArgumentParser
import Backup
import Foundation
import Store
import TesseraCore

/// Backup costs on a tenant `bench load` filled: a first (full) snapshot, four more daily snapshots after 1% churn
/// each, the bytes they take against five full copies, difference reports between two snapshots and against now,
/// and the recovery of about 1,000 objects.
struct BackupBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "backup", abstract: "Snapshot, storage, report and recovery costs on a loaded tenant.")
    @OptionGroup var storage: StorageOptions
    @Option(help: "The loaded tenant's id (bench load's output).") var tenant: String
    @Option(help: "Share of users changed between snapshots.") var churn: Double = 0.01

    func run() async throws {
        let store = try await storage.openStore()
        let directory = DirectoryService(store: store)
        let backup = BackupService(store: store, retentionDays: 30)
        let tenantID = tenant
        func seconds(_ start: ContinuousClock.Instant) -> Double { (ContinuousClock.now - start).seconds }
        // Tessera's processor time (every thread: the SQLite checkpointer's too) beside each clock time: the steadier
        // measure on a shared machine.
        func processor() -> Double { TrafficBench.processorSeconds(children: false) }
        let loadBefore = TrafficBench.loadAverage()
        let userIDs = try await store.read { tx in
            try await tx.rawObjects(tenant: tenantID, kinds: [.user], afterId: nil, limit: 1_000_000).filter { $0.deletedAt == nil }.map(\.id)
        }
        let groupIDs = try await store.read { tx in try await tx.rawObjects(tenant: tenantID, kinds: [.group], afterId: nil, limit: 1_000_000).map(\.id) }
        say("tenant \(tenant): \(userIDs.count) users, \(groupIDs.count) groups (\(store.isPostgres ? "PostgreSQL" : "SQLite"))")
        guard !userIDs.isEmpty, !groupIDs.isEmpty else {
            try? await store.shutdown()
            throw ValidationError("tenant \(tenant) has no users or no groups to change between snapshots: give the tenant id `bench load` wrote")
        }

        // The floor: the rows a first snapshot keeps, read with one SELECT each (objects with their bodies, and links).
        var start = ContinuousClock.now, cpu = processor()
        let kinds = BackupService.kinds, relations = BackupService.relations
        let (floorObjects, floorLinks) = try await store.read { tx in
            (try await tx.rawObjects(tenant: tenantID, kinds: kinds, afterId: nil, limit: 10_000_000).count,
             try await tx.allLinks(tenant: tenantID, relations: relations, sources: nil).count)
        }
        let floorSeconds = seconds(start), floorCPU = processor() - cpu
        say(String(format: "floor: reading the same %d objects and %d links with one SELECT each: %.2f s", floorObjects, floorLinks, floorSeconds))

        start = ContinuousClock.now
        cpu = processor()
        let first = try await backup.snapshot(tenant: tenant)
        let fullSeconds = seconds(start), fullCPU = processor() - cpu
        let oneFull = try await store.backupBytes(tenant: tenant)
        say(String(format: "first snapshot: %d objects, %d links in %.2f s (%.1f× the floor); %.1f MB stored", first.objectCount, first.linkCount,
                   fullSeconds, fullSeconds / floorSeconds, Double(oneFull.total) / 1e6))

        var snapshots = [first]
        let run = Identifier.make().prefix(8)  // so every run's changes are changes, whatever an earlier run wrote
        var incremental: [Double] = [], incrementalCPU: [Double] = []
        let perDay = max(1, Int(Double(userIDs.count) * churn))
        for day in 1...4 {
            // 1% of users change a property; 1% of that many memberships come and go.
            for i in 0..<perDay {
                let id = userIDs[(day * 7919 + i * 104_729) % userIDs.count]
                _ = try await directory.update(tenant: tenant, id: id, kind: .user, patch: ["jobTitle": .string("Run \(run) day \(day) title \(i)")], actor: .system)
            }
            for i in 0..<max(1, perDay / 10) {
                let group = groupIDs[(day * 31 + i) % groupIDs.count], user = userIDs[(day * 131 + i * 7) % userIDs.count]
                try? await directory.addLink(tenant: tenant, source: group, relation: "members", target: user, actor: .system)
            }
            start = ContinuousClock.now
            cpu = processor()
            snapshots.append(try await backup.snapshot(tenant: tenant))
            incremental.append(seconds(start))
            incrementalCPU.append(processor() - cpu)
        }
        let five = try await store.backupBytes(tenant: tenant)
        say(String(format: "four more snapshots after %d user changes a day: median %.2f s each", perDay, incremental.sorted()[incremental.count / 2]))
        say(String(format: "storage for the five: %.1f MB; five full copies: %.1f MB; ratio to one full snapshot: %.2f (target < 1.2)",
                   Double(five.total) / 1e6, Double(oneFull.total * 5) / 1e6, Double(five.total) / Double(oneFull.total)))

        start = ContinuousClock.now
        cpu = processor()
        let between = try await backup.difference(tenant: tenant, from: snapshots[0].id, to: snapshots[4].id)
        let betweenSeconds = seconds(start), betweenCPU = processor() - cpu
        start = ContinuousClock.now
        cpu = processor()
        let live = try await backup.difference(tenant: tenant, from: snapshots[0].id, to: nil)
        let liveSeconds = seconds(start), liveCPU = processor() - cpu
        say(String(format: "difference report, first vs fifth snapshot: %d objects in %.2f s; first snapshot vs now: %d objects in %.2f s",
                   between.changes.count, betweenSeconds, live.changes.count, liveSeconds))

        // About 1,000 objects to put back: the users changed on the first day, after the others are put back to today.
        start = ContinuousClock.now
        cpu = processor()
        let result = try await backup.recover(tenant: tenant, snapshot: snapshots[3].id, filter: .entityTypes(["user"]), directory: directory,
                                              actor: Actor(kind: .application, id: Identifier.make(), displayName: "bench"))
        let recoverSeconds = seconds(start), recoverCPU = processor() - cpu
        say(String(format: "recovery of %d objects (to the fourth snapshot): %.2f s, %d failed", result.outcomes.count, recoverSeconds,
                   result.outcomes.filter { $0.failure != nil }.count))
        say("")
        say("load average before: \(loadBefore); after: \(TrafficBench.loadAverage())")
        say("| measure | value | Tessera CPU | target |")
        say("|---|---|---|---|")
        say(String(format: "| reading the same rows with one SELECT (the floor) | %.2f s | %.2f s | |", floorSeconds, floorCPU))
        say(String(format: "| first (full) snapshot, %d objects + %d links | %.2f s | %.2f s | ≤ 1 s SQLite, ≤ 2 s PostgreSQL |", first.objectCount, first.linkCount,
                   fullSeconds, fullCPU))
        say(String(format: "| daily snapshot after %.0f%% churn (median of 4) | %.2f s | %.2f s | < 5 s |", churn * 100, TrafficBench.median(incremental),
                   TrafficBench.median(incrementalCPU)))
        say(String(format: "| storage, 5 snapshots / 1 full snapshot | %.2f (%.1f MB / %.1f MB) | | < 1.2 |", Double(five.total) / Double(oneFull.total),
                   Double(five.total) / 1e6, Double(oneFull.total) / 1e6))
        say(String(format: "| storage, 5 snapshots / 5 full copies | %.2f | | |", Double(five.total) / Double(oneFull.total * 5)))
        say(String(format: "| difference report between two snapshots (%d objects) | %.2f s | %.2f s | ≤ 0.5 s SQLite, ≤ 1 s PostgreSQL |", between.changes.count,
                   betweenSeconds, betweenCPU))
        say(String(format: "| difference report, snapshot vs now (%d objects) | %.2f s | %.2f s | ≤ 0.5 s SQLite, ≤ 1 s PostgreSQL |", live.changes.count,
                   liveSeconds, liveCPU))
        say(String(format: "| recovery of %d objects | %.2f s | %.2f s | |", result.outcomes.count, recoverSeconds, recoverCPU))
        try await store.shutdown()
    }
}
