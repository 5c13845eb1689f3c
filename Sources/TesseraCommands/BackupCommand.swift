import ArgumentParser
import Backup
import Foundation
import Store
import TesseraCore

/// `tessera backup`: snapshots for operators — take one now, list, show, compare, verify.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup", abstract: "Snapshots of each tenant's critical objects (taken daily by `serve`).",
        subcommands: [Snapshot.self, List.self, Show.self, Diff.self, Verify.self])

    /// Storage, the tenant and output options every backup command takes.
    struct Common: ParsableArguments {
        @OptionGroup var storage: StorageOptions
        @Option(help: "Tenant id or domain (default: the only tenant).") var tenant: String?
        @Flag(help: "Print JSON.") var json = false
        @Option(help: "Days snapshots are kept.") var backupRetentionDays: Int = 5

        func open() async throws -> (SQLDirectoryStore, BackupService) {
            let store = try await storage.openStore()
            return (store, BackupService(store: store, retentionDays: backupRetentionDays))
        }

        /// The tenants named (or every tenant when `all` and none is named; else the only one).
        func tenants(_ store: SQLDirectoryStore, all: Bool = false) async throws -> [TenantRecord] {
            let every = try await store.read { tx in try await tx.tenants() }
            if let tenant {
                guard let found = try await store.read({ tx in try await tx.tenant(tenant) }) else {
                    throw ValidationError("no tenant '\(tenant)'")
                }
                return [found]
            }
            if all || every.count == 1 { return every }
            throw ValidationError("there are \(every.count) tenants: say which with --tenant")
        }

        func emit(_ value: JSONValue, _ text: String) {
            say(json ? value.serialized : text)
        }
    }

    static func render(_ s: SnapshotRecord) -> JSONValue {
        ["id": .string(s.id), "tenant": .string(s.tenant), "createdDateTime": .string(s.createdAt), "totalChangedObjects": .int(Int64(s.changedObjects)),
         "objects": .int(Int64(s.objectCount)), "links": .int(Int64(s.linkCount)), "full": .bool(s.parent == nil), "digest": .string(s.digest)]
    }

    struct Snapshot: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take a snapshot (of every tenant unless --tenant says which).")
        @OptionGroup var common: Common
        @Flag(help: "Take it now, even if today's was taken.") var now = false

        func run() async throws {
            let (store, backup) = try await common.open()
            var taken: [JSONValue] = []
            for tenant in try await common.tenants(store, all: true) {
                let started = ContinuousClock.now
                let snapshot = now ? try await backup.snapshot(tenant: tenant.id) : try await backup.daily(tenant: tenant.id)
                if let snapshot {
                    try await backup.applyRetention(tenant: tenant.id)
                    taken.append(BackupCommand.render(snapshot))
                    if !common.json {
                        say(String(format: "%@ (%@): snapshot %@, %d objects, %d links, %d changed, in %.2f s", tenant.domain, tenant.id, snapshot.id,
                                   snapshot.objectCount, snapshot.linkCount, snapshot.changedObjects, (ContinuousClock.now - started).seconds))
                    }
                } else if !common.json {
                    say("\(tenant.domain) (\(tenant.id)): today's snapshot exists (use --now for another)")
                }
            }
            if common.json { say(JSONValue.array(taken).serialized) }
            try await store.shutdown()
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a tenant's snapshots, oldest first.")
        @OptionGroup var common: Common

        func run() async throws {
            let (store, backup) = try await common.open()
            let tenant = try await common.tenants(store)[0]
            let records = try await backup.snapshots(tenant: tenant.id)
            common.emit(.array(records.map(BackupCommand.render)), records.map {
                "\($0.id)  \($0.createdAt)  \($0.objectCount) objects  \($0.linkCount) links  \($0.changedObjects) changed\($0.parent == nil ? "  (full)" : "")"
            }.joined(separator: "\n"))
            try await store.shutdown()
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a snapshot's objects by type.")
        @OptionGroup var common: Common
        @Argument(help: "Snapshot id.") var snapshot: String

        func run() async throws {
            let (store, backup) = try await common.open()
            let tenant = try await common.tenants(store)[0]
            let record = try await backup.snapshot(tenant: tenant.id, id: snapshot)
            let state = try await backup.state(tenant: tenant.id, snapshot: record.id)
            var counts: [String: Int] = [:]
            for entry in state.objects.values { counts[DifferenceReport.entityTypeName(entry.kind), default: 0] += 1 }
            var value = BackupCommand.render(record)
            value = .object((value.objectValue ?? [:]).merging(["objectsByType": .object(counts.mapValues { .int(Int64($0)) })]) { _, b in b })
            common.emit(value, "snapshot \(record.id) taken \(record.createdAt)\n"
                + counts.keys.sorted().map { "  \($0): \(counts[$0]!)" }.joined(separator: "\n") + "\n  links: \(state.links.count)")
            try await store.shutdown()
        }
    }

    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "What changed between snapshot A and snapshot B (or now).")
        @OptionGroup var common: Common
        @Argument(help: "The earlier snapshot (the state a recovery would return to).") var from: String
        @Argument(help: "The later snapshot; omit for now.") var to: String?
        @Option(help: "Only this type (user, group, application, servicePrincipal, …).") var type: String?

        func run() async throws {
            let (store, backup) = try await common.open()
            let tenant = try await common.tenants(store)[0]
            var changes = try await backup.difference(tenant: tenant.id, from: from, to: to).changes
            if let type { changes = changes.filter { DifferenceReport.entityTypeName($0.kind).lowercased() == type.lowercased() } }
            common.emit(.array(changes.map(DifferenceReport.render)), changes.map { change in
                var lines = ["\(change.action.rawValue)  \(DifferenceReport.entityTypeName(change.kind))  \(change.id)  \(change.displayName ?? "")\(change.isOnPremises ? "  (on-premises: not recovered)" : "")"]
                for p in change.properties { lines.append("    \(p.name): \(p.old?.serialized ?? "(not set)") → \(p.new?.serialized ?? "(not set)")") }
                for l in change.links { lines.append("    \(l.relation) \(l.added ? "+" : "-") \(l.target)") }
                return lines.joined(separator: "\n")
            }.joined(separator: "\n") + (changes.isEmpty ? "no differences" : "\n\(changes.count) objects differ"))
            try await store.shutdown()
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check every snapshot's digest and every blob; exit 1 if anything is damaged.")
        @OptionGroup var common: Common

        func run() async throws {
            let (store, backup) = try await common.open()
            var damaged = false
            for tenant in try await common.tenants(store, all: true) {
                let (problems, blobs) = try await backup.verify(tenant: tenant.id)
                damaged = damaged || !problems.isEmpty
                common.emit(["tenant": .string(tenant.id), "blobsChecked": .int(Int64(blobs)),
                             "problems": .array(problems.map { ["snapshot": .optional($0.snapshot), "message": .string($0.message)] })],
                            problems.isEmpty ? "\(tenant.domain): every snapshot sound (\(blobs) blobs checked)"
                                : "\(tenant.domain): DAMAGED\n" + problems.map { "  \($0.snapshot ?? "-"): \($0.message)" }.joined(separator: "\n"))
            }
            try await store.shutdown()
            if damaged { throw ExitCode(1) }
        }
    }
}
