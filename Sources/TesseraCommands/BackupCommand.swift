import ArgumentParser
import Backup
import Foundation
import Store
import TesseraCore

/// `tessera backup`: snapshots for operators — take one now, list, show, compare, verify.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup", abstract: "Snapshots of each tenant's critical objects (taken daily by `serve`).",
        subcommands: [Snapshot.self, List.self, Show.self, Diff.self, Restore.self, Verify.self, Export.self, Deployment.self, Enable.self, Disable.self])

    /// Storage, the tenant and output options every backup command takes.
    struct Common: ParsableArguments {
        @OptionGroup var storage: StorageOptions
        @Option(help: "Tenant id or domain (default: the only tenant).") var tenant: String?
        @Flag(help: "Print JSON.") var json = false
        @Option(help: "Days snapshots are kept.") var backupRetentionDays: Int = 5

        /// Runs `body` with the store and the backup service; the store is closed however `body` ends.
        func run<T>(_ body: (SQLDirectoryStore, BackupService) async throws -> T) async throws -> T {
            try await storage.withStore { store in try await body(store, BackupService(store: store, retentionDays: backupRetentionDays)) }
        }

        /// The tenants named (or every tenant when `all` and none is named; else the only one).
        func tenants(_ store: SQLDirectoryStore, all: Bool = false) async throws -> [TenantRecord] {
            try await StorageOptions.tenants(store, named: tenant, all: all)
        }

        /// Turns backups on or off for the named (or only) tenant.
        func setPlan(_ enabled: Bool, _ message: String) async throws {
            try await run { store, backup in
                for tenant in try await tenants(store) { try await backup.setEnabled(tenant: tenant.id, enabled) }
                say(message)
            }
        }

        func emit(_ value: JSONValue, _ text: String) {
            say(json ? value.serialized : text)
        }
    }

    static func render(_ s: SnapshotRecord) -> JSONValue {
        ["id": .string(s.id), "tenant": .string(s.tenant), "createdDateTime": .string(s.createdAt), "totalChangedObjects": .int(Int64(s.changedObjects)),
         "objects": .int(Int64(s.objectCount)), "links": .int(Int64(s.linkCount)), "full": .bool(s.parent == nil), "digest": .string(s.digest)]
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make Backup and Recovery part of the tenant's plan again (it is unless turned off).")
        @OptionGroup var common: Common
        func run() async throws { try await common.setPlan(true, "Backup and Recovery is on.") }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take Backup and Recovery out of the tenant's plan: no new snapshots, reports or recoveries; existing snapshots age out.")
        @OptionGroup var common: Common
        func run() async throws {
            try await common.setPlan(false, "Backup and Recovery is off; snapshots already taken are kept until their retention ends.")
        }
    }

    struct Snapshot: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take a snapshot (of every tenant unless --tenant says which).")
        @OptionGroup var common: Common
        @Flag(help: "Take it now, even if today's was taken.") var now = false

        func run() async throws {
            try await common.run { store, backup in
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
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a tenant's snapshots, oldest first.")
        @OptionGroup var common: Common

        func run() async throws {
            try await common.run { store, backup in
                let tenant = try await common.tenants(store)[0]
                let records = try await backup.snapshots(tenant: tenant.id)
                common.emit(.array(records.map(BackupCommand.render)), records.map {
                    "\($0.id)  \($0.createdAt)  \($0.objectCount) objects  \($0.linkCount) links  \($0.changedObjects) changed\($0.parent == nil ? "  (full)" : "")"
                }.joined(separator: "\n"))
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a snapshot's objects by type.")
        @OptionGroup var common: Common
        @Argument(help: "Snapshot id.") var snapshot: String

        func run() async throws {
            try await common.run { store, backup in
                let tenant = try await common.tenants(store)[0]
                let record = try await backup.snapshot(tenant: tenant.id, id: snapshot)
                let state = try await backup.state(tenant: tenant.id, snapshot: record.id)
                var counts: [String: Int] = [:]
                for entry in state.objects.values { counts[DifferenceReport.entityTypeName(entry.kind), default: 0] += 1 }
                var value = BackupCommand.render(record)
                value = .object((value.objectValue ?? [:]).merging(["objectsByType": .object(counts.mapValues { .int(Int64($0)) })]) { _, b in b })
                common.emit(value, "snapshot \(record.id) taken \(record.createdAt)\n"
                    + counts.keys.sorted().map { "  \($0): \(counts[$0]!)" }.joined(separator: "\n") + "\n  links: \(state.links.count)")
            }
        }
    }

    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "What changed between snapshot A and snapshot B (or now).")
        @OptionGroup var common: Common
        @Argument(help: "The earlier snapshot (the state a recovery would return to).") var from: String
        @Argument(help: "The later snapshot; omit for now.") var to: String?
        @Option(help: "Only this type (user, group, application, servicePrincipal, …).") var type: String?

        func run() async throws {
            try await common.run { store, backup in
                let tenant = try await common.tenants(store)[0]
                var changes = try await backup.difference(tenant: tenant.id, from: from, to: to).changes
                if let type { changes = changes.filter { DifferenceReport.entityTypeName($0.kind).lowercased() == type.lowercased() } }
                common.emit(.array(changes.map(DifferenceReport.render)), changes.map { change in
                    var lines = ["\(change.action.rawValue)  \(DifferenceReport.entityTypeName(change.kind))  \(change.id)  \(change.displayName ?? "")\(change.isOnPremises ? "  (on-premises: not recovered)" : "")"]
                    for p in change.properties { lines.append("    \(p.name): \(p.old?.serialized ?? "(not set)") → \(p.new?.serialized ?? "(not set)")") }
                    for l in change.links { lines.append("    \(l.relation) \(l.added ? "+" : "-") \(l.target)") }
                    return lines.joined(separator: "\n")
                }.joined(separator: "\n") + (changes.isEmpty ? "no differences" : "\n\(changes.count) objects differ"))
            }
        }
    }

    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put objects back as a snapshot had them (through the directory, audited); --dry-run shows what it would do.")
        @OptionGroup var common: Common
        @Option(help: "The snapshot to go back to.") var snapshot: String
        @Option(help: "Only objects of this type (repeatable).") var type: [String] = []
        @Option(help: "Only this object (repeatable; with --type for its type, else any).") var id: [String] = []
        @Flag(help: "Show what would be done; change nothing.") var dryRun = false

        func run() async throws {
            try await common.run { store, backup in
                let tenant = try await common.tenants(store)[0]
                let directory = DirectoryService(store: store)
                var filter = RecoveryFilter.all
                try RecoveryFilter.checkTypes(type)
                if !id.isEmpty {
                    let types = type.isEmpty ? BackupService.kinds.map(DifferenceReport.entityTypeName) : type
                    filter = .ids(Dictionary(uniqueKeysWithValues: types.map { ($0.lowercased(), Set(id.map { $0.lowercased() })) }))
                } else if !type.isEmpty {
                    filter = .entityTypes(Set(type.map { $0.lowercased() }))
                }
                let actor = Actor(kind: .system, id: Actor.system.id, displayName: "tessera backup restore", appId: Actor.system.appId)
                let result = try await backup.recover(tenant: tenant.id, snapshot: snapshot, filter: filter, directory: directory, actor: actor,
                                                      dryRun: dryRun, progress: { done, total in
                                                          if !common.json, total > 0, done % 100 == 0 || done == total { Progress.show(done, total) }
                                                      })
                let outcomes: [JSONValue] = dryRun ? result.planned.map(DifferenceReport.render) : result.outcomes.map { outcome in
                    guard case .object(var change) = DifferenceReport.render(outcome.change) else { return .null }
                    change["failureMessage"] = .optional(outcome.failure)
                    return .object(change)
                }
                let failed = result.outcomes.filter { $0.failure != nil }
                common.emit(.array(outcomes), (dryRun ? result.planned.map { "would \($0.action.rawValue)  \(DifferenceReport.entityTypeName($0.kind))  \($0.id)  \($0.displayName ?? "")" }
                    : result.outcomes.map { "\($0.failure == nil ? "done" : "FAILED")  \($0.change.action.rawValue)  \(DifferenceReport.entityTypeName($0.change.kind))  \($0.change.id)\($0.failure.map { ": " + $0 } ?? "")" })
                    .joined(separator: "\n") + "\n\(dryRun ? "\(result.planned.count) changes planned (dry run)" : "\(result.outcomes.count - failed.count) applied, \(failed.count) failed")")
                if !failed.isEmpty { throw ExitCode(1) }
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a snapshot, whole, to a JSON file (for keeping longer than the retention).")
        @OptionGroup var common: Common
        @Argument(help: "Snapshot id.") var snapshot: String
        @Option(help: "The file to write.") var output: String

        func run() async throws {
            try await common.run { store, backup in
                let tenant = try await common.tenants(store)[0]
                let record = try await backup.snapshot(tenant: tenant.id, id: snapshot)
                let state = try await backup.state(tenant: tenant.id, snapshot: record.id)
                let digests = Array(Set(state.objects.values.compactMap(\.digest)))
                let bodies = try await store.read { tx in try await tx.blobs(tenant: tenant.id, digests: digests) }
                var objects: [JSONValue] = []
                for id in state.objects.keys.sorted() {
                    let entry = state.objects[id]!
                    guard let digest = entry.digest, let body = bodies[digest], let parsed = try? JSONParser.parse(Array(body.utf8)) else {
                        throw ValidationError("snapshot \(record.id) is damaged: blob \(entry.digest ?? "-") of \(id) is missing")
                    }
                    objects.append(["id": .string(id), "kind": .string(entry.kind.rawValue), "deletedDateTime": .optional(entry.deletedAt),
                                    "sha256": .string(digest), "body": parsed])
                }
                let document: JSONValue = [
                    "tenant": .string(tenant.id), "snapshot": BackupCommand.render(record), "objects": .array(objects),
                    "links": .array(state.links.sorted().map { ["source": .string($0.source), "relation": .string($0.relation), "target": .string($0.target)] }),
                ]
                try Data(document.serializedBytes).write(to: URL(fileURLWithPath: output), options: .atomic)
                common.emit(["file": .string(output), "objects": .int(Int64(objects.count)), "links": .int(Int64(state.links.count))],
                            "wrote \(objects.count) objects and \(state.links.count) links of snapshot \(record.id) to \(output)")
            }
        }
    }

    struct Deployment: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy a whole SQLite deployment, while it serves, into a new data folder that `serve --data` runs on another machine.",
            discussion: """
            The folder gets a consistent copy of the database (SQLite's VACUUM INTO: every commit acknowledged before the copy \
            began, tenants, keys, credentials, sessions and snapshots included) and the data folder's tls/ material. It holds \
            the deployment's signing and MAC keys: keep it as you keep the data folder. A PostgreSQL deployment is copied with \
            PostgreSQL's own tools (pg_basebackup, or pg_dump) and the data folder's tls/ folder.
            """)
        @OptionGroup var storage: StorageOptions
        @Option(help: "The folder to write (must not exist, or be empty).") var to: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let database = storage.database ?? ProcessInfo.processInfo.environment["TESSERA_DATABASE"] ?? (storage.data + "/tessera.sqlite")
            if database.hasPrefix("postgres://") || database.hasPrefix("postgresql://") {
                throw ValidationError("this deployment is on PostgreSQL: copy the database with pg_basebackup or pg_dump, and the data folder's tls/ folder")
            }
            let source = database.hasPrefix("sqlite://") ? String(database.dropFirst("sqlite://".count)) : database
            let files = FileManager.default
            if files.fileExists(atPath: to), !((try? files.contentsOfDirectory(atPath: to))?.isEmpty ?? false) {
                throw ValidationError("\(to) exists and is not an empty folder")
            }
            try files.createDirectory(atPath: to, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let copied = try await SQLiteCopy.copy(source, to: to + "/tessera.sqlite")
            var material: [String] = []
            let tls = storage.data + "/tls"
            if let names = try? files.contentsOfDirectory(atPath: tls), !names.isEmpty {
                try files.createDirectory(atPath: to + "/tls", withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
                for name in names.sorted() {
                    try files.copyItem(atPath: tls + "/" + name, toPath: to + "/tls/" + name)
                    // The private keys stay readable by their owner only, whatever the copy's defaults.
                    try files.setAttributes([.posixPermissions: 0o600], ofItemAtPath: to + "/tls/" + name)
                    material.append("tls/" + name)
                }
            }
            let objects = copied.rows["objects"] ?? 0, tenants = copied.rows["tenants"] ?? 0
            let value: JSONValue = ["folder": .string(to), "databaseBytes": .int(copied.bytes), "tenants": .int(tenants), "objects": .int(objects),
                                    "tables": .object(copied.rows.mapValues { .int($0) }), "files": .array(material.map { .string($0) })]
            say(json ? value.serialized
                : "copied the deployment to \(to): \(tenants) tenants, \(objects) objects, \(copied.bytes) bytes of database (integrity ok)"
                    + (material.isEmpty ? "" : ", \(material.count) files of tls/") + "; run it with `tessera serve --data \(to)`")
        }
    }

    /// A progress bar on standard error, for long work in a terminal.
    enum Progress {
        static func show(_ done: Int, _ total: Int) {
            let width = 30, filled = total == 0 ? width : width * done / total
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            FileHandle.standardError.write(Data("\r[\(bar)] \(done)/\(total)\(done == total ? "\n" : "")".utf8))
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check every snapshot's digest and every blob; exit 1 if anything is damaged.")
        @OptionGroup var common: Common

        func run() async throws {
            try await common.run { store, backup in
                var damaged = false
                for tenant in try await common.tenants(store, all: true) {
                    let json = common.json
                    let (problems, blobs) = try await backup.verify(tenant: tenant.id) { done, total in
                        if !json, total > 0 { Progress.show(done, total) }
                    }
                    damaged = damaged || !problems.isEmpty
                    common.emit(["tenant": .string(tenant.id), "blobsChecked": .int(Int64(blobs)),
                                 "problems": .array(problems.map { ["snapshot": .optional($0.snapshot), "message": .string($0.message)] })],
                                problems.isEmpty ? "\(tenant.domain): every snapshot sound (\(blobs) blobs checked)"
                                    : "\(tenant.domain): DAMAGED\n" + problems.map { "  \($0.snapshot ?? "-"): \($0.message)" }.joined(separator: "\n"))
                }
                if damaged { throw ExitCode(1) }
            }
        }
    }
}
