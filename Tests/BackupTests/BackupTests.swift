import Foundation
import Testing
import Backup
@testable import Store
import TesseraCore
import TesseraTesting

enum Databases {
    static var all: [String] {
        var urls = [":memory:"]
        if let url = ProcessInfo.processInfo.environment["TESSERA_TEST_POSTGRES_URL"], !url.isEmpty { urls.append(url) }
        return urls
    }
}

struct Fixture {
    let store: SQLDirectoryStore
    let directory: DirectoryService
    let backup: BackupService
    let clock: TestClock
    let tenant: ProvisionedTenant
    var id: String { tenant.tenantId }

    static func run(_ database: String, _ body: (Fixture) async throws -> Void) async throws {
        let store = try await SQLDirectoryStore.open(database)
        try await store.migrate()
        let clock = TestClock()
        let directory = DirectoryService(store: store, clock: clock)
        do {
            let tenant = try await TenantProvisioner(directory: directory).create(name: "Backup", domain: "b\(UUID().uuidString.prefix(8).lowercased()).test")
            try await body(Fixture(store: store, directory: directory, backup: BackupService(store: store, clock: clock), clock: clock, tenant: tenant))
            try await store.shutdown()
        } catch {
            try? await store.shutdown()
            throw error
        }
    }

    func user(_ name: String, extra: [String: JSONValue] = [:]) async throws -> StoredObject {
        var body: [String: JSONValue] = [
            "accountEnabled": true, "displayName": .string(name), "mailNickname": .string(name),
            "userPrincipalName": .string("\(name)@\(tenant.domain)"), "passwordProfile": ["password": "Str0ng!Passw0rd"]]
        body.merge(extra) { _, new in new }
        return try await directory.create(tenant: id, kind: .user, body: body, actor: .system)
    }

    func group(_ name: String) async throws -> StoredObject {
        try await directory.create(tenant: id, kind: .group, body: [
            "displayName": .string(name), "mailEnabled": false, "securityEnabled": true, "mailNickname": .string(name)], actor: .system)
    }

    /// The report of every object compared: `from`'s whole state against `to`'s (or now's), with the bodies of both.
    func everything(_ from: SnapshotRecord, _ to: SnapshotRecord?) async throws -> DifferenceReport {
        let target = try await backup.state(tenant: id, snapshot: from.id)
        var (current, bodies) = if let to { (try await backup.state(tenant: id, snapshot: to.id), [String: String]()) } else { try await backup.liveState(tenant: id) }
        let digests = Set(target.objects.values.compactMap(\.digest)).union(current.objects.values.compactMap(\.digest))
        bodies.merge(try await store.read { tx in try await tx.blobs(tenant: id, digests: Array(digests)) }) { a, _ in a }
        return DifferenceReport.compare(target: target, current: current, bodies: bodies)
    }
}

@Suite("Backup: snapshots, storage, verification, difference reports")
struct BackupTests {
    @Test("the first snapshot records everything; later ones only what changed, and rebuild the same state", arguments: Databases.all)
    func incremental(_ database: String) async throws {
        try await Fixture.run(database) { f in
            var users: [StoredObject] = []
            for i in 0..<20 { users.append(try await f.user("user\(i)")) }
            let group = try await f.group("staff")
            for user in users.prefix(5) {
                try await f.directory.addLink(tenant: f.id, source: group.id, relation: "members", target: user.id, actor: .system)
            }
            let first = try await f.backup.snapshot(tenant: f.id)
            #expect(first.parent == nil && first.objectCount >= 21 && first.linkCount == 5 && first.changedObjects == first.objectCount)

            f.clock.advance(days: 1)
            _ = try await f.directory.update(tenant: f.id, id: users[0].id, kind: .user, patch: ["jobTitle": "Engineer"], actor: .system)
            try await f.directory.delete(tenant: f.id, id: users[1].id, kind: .user, actor: .system)
            try await f.directory.removeLink(tenant: f.id, source: group.id, relation: "members", target: users[2].id, actor: .system)
            let second = try await f.backup.snapshot(tenant: f.id)
            #expect(second.parent == first.id)
            #expect(second.changedObjects == 2)  // the user updated and the user deleted; the group only lost a link
            let entries = try await f.store.read { tx in try await tx.snapshotEntries(tenant: f.id, snapshot: second.id) }
            #expect(Set(entries.map(\.object)) == [users[0].id, users[1].id])
            let links = try await f.store.read { tx in try await tx.snapshotLinks(tenant: f.id, snapshot: second.id) }
            #expect(links == [SnapshotLink(link: LinkRow(source: group.id, relation: "members", target: users[2].id), present: false)])

            // Rebuilt from the full snapshot and the change, the state is what a fresh read sees.
            let rebuilt = try await f.backup.state(tenant: f.id, snapshot: second.id)
            let (live, _) = try await f.backup.liveState(tenant: f.id)
            #expect(rebuilt == live && rebuilt.digest == second.digest)
            // The state now from the first snapshot and the change log is the same as reading everything, purges
            // (which drop links without a change on the group) included.
            try await f.directory.delete(tenant: f.id, id: users[3].id, kind: .user, actor: .system)
            try await f.directory.purgeDeleted(tenant: f.id, id: users[3].id, actor: .system)
            let (fromLog, _) = try await f.backup.liveState(tenant: f.id, since: first, base: try await f.backup.state(tenant: f.id, snapshot: first.id))
            #expect(fromLog == (try await f.backup.liveState(tenant: f.id)).0)
            let (problems, blobs) = try await f.backup.verify(tenant: f.id)
            #expect(problems.isEmpty && blobs == first.objectCount + 2)
        }
    }

    @Test("a report names each change with old and new values, links, and Entra's recovery action", arguments: Databases.all)
    func differenceReport(_ database: String) async throws {
        try await Fixture.run(database) { f in
            let ada = try await f.user("ada", extra: ["jobTitle": "Analyst"])
            let bob = try await f.user("bob")
            let cyd = try await f.user("cyd")
            let group = try await f.group("pilots")
            try await f.directory.addLink(tenant: f.id, source: group.id, relation: "members", target: ada.id, actor: .system)
            let snapshot = try await f.backup.snapshot(tenant: f.id)

            _ = try await f.directory.update(tenant: f.id, id: ada.id, kind: .user, patch: ["jobTitle": "Director", "department": "Ops"], actor: .system)
            try await f.directory.delete(tenant: f.id, id: bob.id, kind: .user, actor: .system)
            try await f.directory.delete(tenant: f.id, id: cyd.id, kind: .user, actor: .system)
            try await f.directory.purgeDeleted(tenant: f.id, id: cyd.id, actor: .system)
            let eve = try await f.user("eve")
            try await f.directory.addLink(tenant: f.id, source: group.id, relation: "members", target: eve.id, actor: .system)
            let synced = try await f.user("sam", extra: ["onPremisesImmutableId": "c2FtCg=="])

            let report = try await f.backup.difference(tenant: f.id, from: snapshot.id, to: nil)
            let byID = Dictionary(uniqueKeysWithValues: report.changes.map { ($0.id, $0) })
            let adaChange = try #require(byID[ada.id])
            #expect(adaChange.action == .update)
            #expect(adaChange.properties.first { $0.name == "jobTitle" }.map { ($0.old, $0.new) }! == (.string("Analyst"), .string("Director")))
            #expect(adaChange.properties.first { $0.name == "department" }.map { ($0.old, $0.new) }! == (nil, .string("Ops")))
            #expect(byID[bob.id]?.action == .restore)
            #expect(byID[cyd.id]?.action == .recreate)
            #expect(byID[eve.id]?.action == .softDelete)
            #expect(byID[synced.id]?.action == .softDelete)
            let groupChange = try #require(byID[group.id])
            #expect(groupChange.action == .update && groupChange.properties.isEmpty)
            #expect(groupChange.links == [DifferenceReport.LinkChange(relation: "members", target: eve.id, added: true)])

            // Between two snapshots, the same answer.
            let later = try await f.backup.snapshot(tenant: f.id)
            let between = try await f.backup.difference(tenant: f.id, from: snapshot.id, to: later.id)
            #expect(between.changes.map(\.id) == report.changes.map(\.id))
            #expect(between.changes.map(\.action) == report.changes.map(\.action))
        }
    }

    @Test("verify finds an altered blob and an altered snapshot", arguments: Databases.all)
    func verifyFindsDamage(_ database: String) async throws {
        try await Fixture.run(database) { f in
            let ada = try await f.user("ada")
            let snapshot = try await f.backup.snapshot(tenant: f.id)
            #expect(try await f.backup.verify(tenant: f.id).problems.isEmpty)
            let state = try await f.backup.state(tenant: f.id, snapshot: snapshot.id)
            let digest = try #require(state.objects[ada.id]?.digest)
            try await f.store.write { tx in
                try await tx.replaceSnapshot(snapshot, entries: state.objects.values.map { entry in
                    var e = entry
                    if e.object == ada.id { e.deletedAt = "2020-01-01T00:00:00Z" }
                    return e
                }, links: [])
            }
            let altered = try await f.backup.verify(tenant: f.id).problems
            #expect(altered.contains { $0.message.contains("was altered") && $0.snapshot == snapshot.id })
            _ = digest
        }
    }

    @Test("backups kept in the earlier layout (a row per blob, entry and link) move to packs and manifests intact")
    func migratesTheEarlierLayout() async throws {
        try await Fixture.run(":memory:") { f in
            let ada = try await f.user("ada", extra: ["jobTitle": "Tab\there, quote \" and \\ and é"])
            let group = try await f.group("g")
            try await f.directory.addLink(tenant: f.id, source: group.id, relation: "members", target: ada.id, actor: .system)
            let first = try await f.backup.snapshot(tenant: f.id)
            try await f.directory.delete(tenant: f.id, id: ada.id, kind: .user, actor: .system)
            let second = try await f.backup.snapshot(tenant: f.id)
            let states = [try await f.backup.state(tenant: f.id, snapshot: first.id), try await f.backup.state(tenant: f.id, snapshot: second.id)]
            let digests = Set(states.flatMap { $0.objects.values.compactMap(\.digest) })
            let bodies = try await f.store.read { tx in try await tx.blobs(tenant: f.id, digests: Array(digests)) }
            var deltas: [(String, [SnapshotEntry], [SnapshotLink])] = []
            for record in [first, second] {
                deltas.append((record.id, try await f.store.read { tx in try await tx.snapshotEntries(tenant: f.id, snapshot: record.id) },
                               try await f.store.read { tx in try await tx.snapshotLinks(tenant: f.id, snapshot: record.id) }))
            }
            // Put them back as step 5 kept them, as a deployment upgraded from it has them.
            let old = deltas
            _ = try await f.store.backend.withWriteSession { s in
                for statement in Migrations.steps(.sqlite).first(where: { $0.0 == 5 })!.1 { _ = try await s.execute(statement, []) }
                for (digest, body) in bodies {
                    _ = try await s.execute("INSERT INTO backup_blobs VALUES (?, ?, ?)", [.text(f.id), .text(digest), .text(body)])
                }
                for (snapshot, entries, links) in old {
                    for e in entries {
                        _ = try await s.execute("INSERT INTO backup_entries VALUES (?, ?, ?, ?, ?, ?)", [
                            .text(f.id), .text(snapshot), .text(e.object), .text(e.kind.rawValue), e.digest.map { .text($0) } ?? .null,
                            e.deletedAt.map { .text($0) } ?? .null])
                    }
                    for l in links {
                        _ = try await s.execute("INSERT INTO backup_links VALUES (?, ?, ?, ?, ?, ?)", [
                            .text(f.id), .text(snapshot), .text(l.link.source), .text(l.link.relation), .text(l.link.target), .int(l.present ? 1 : 0)])
                    }
                }
                _ = try await s.execute("DELETE FROM backup_packs", [])
                _ = try await s.execute("DELETE FROM backup_manifests", [])
                return try await s.execute("DELETE FROM schema_migrations WHERE version = 6", [])
            }
            try await f.store.migrate()
            #expect(try await f.backup.state(tenant: f.id, snapshot: first.id) == states[0])
            #expect(try await f.backup.state(tenant: f.id, snapshot: second.id) == states[1])
            #expect(try await f.store.read { tx in try await tx.blobs(tenant: f.id, digests: Array(digests)) } == bodies)
            #expect(try await f.backup.verify(tenant: f.id).problems.isEmpty)
        }
    }

    @Test("each object's digest is kept beside it as the SHA-256 of its stored JSON; a snapshot reads it, and hashes rows without one",
          arguments: Databases.all)
    func storedDigests(_ database: String) async throws {
        try await Fixture.run(database) { f in
            var users: [StoredObject] = []
            for i in 0..<12 { users.append(try await f.user("digest\(i)", extra: ["jobTitle": .string("tab\t, é, \"q\", 😀 \(i)")])) }
            _ = try await f.directory.update(tenant: f.id, id: users[0].id, kind: .user, patch: ["department": "Ünits"], actor: .system)
            try await f.directory.delete(tenant: f.id, id: users[1].id, kind: .user, actor: .system)
            let (live, _) = try await f.backup.liveState(tenant: f.id)
            let kept = try await f.store.read { tx in try await tx.objectDigests(tenant: f.id, kinds: BackupService.kinds) }
            #expect(kept.count == live.objects.count)
            for row in kept { #expect(row.digest == live.objects[row.id]?.digest, "\(row.id)") }

            let first = try await f.backup.snapshot(tenant: f.id)
            #expect(try await f.backup.state(tenant: f.id, snapshot: first.id) == live)
            // Rows written without a digest (by a path that does not keep one) are hashed from their bodies.
            let tenant = f.id, bare = [users[2].id, users[3].id, users[4].id]
            _ = try await f.store.backend.withWriteSession { s in
                try await s.execute("UPDATE objects SET digest = NULL WHERE tenant = ? AND id IN (?, ?, ?)", [.text(tenant)] + bare.map { .text($0) })
            }
            _ = try await f.directory.update(tenant: f.id, id: users[5].id, kind: .user, patch: ["jobTitle": "changed"], actor: .system)
            let second = try await f.backup.snapshot(tenant: f.id)
            #expect(second.changedObjects == 1)
            #expect(try await f.backup.state(tenant: f.id, snapshot: second.id) == (try await f.backup.liveState(tenant: f.id)).0)
            #expect(try await f.backup.verify(tenant: f.id).problems.isEmpty)
            #expect(try await f.backup.difference(tenant: f.id, from: first.id, to: nil).changes.map(\.id) == [users[5].id])
        }
    }

    @Test("a report compares only what the later snapshots or the change log touched, and finds what comparing everything finds",
          arguments: Databases.all)
    func reportsCompareOnlyWhatChanged(_ database: String) async throws {
        try await Fixture.run(database) { f in
            var users: [StoredObject] = []
            for i in 0..<10 { users.append(try await f.user("cmp\(i)")) }
            let group = try await f.group("cmpgroup"), other = try await f.group("cmpother")
            for user in users.prefix(4) {
                try await f.directory.addLink(tenant: f.id, source: group.id, relation: "members", target: user.id, actor: .system)
            }
            try await f.directory.addLink(tenant: f.id, source: other.id, relation: "members", target: users[9].id, actor: .system)
            try await f.directory.delete(tenant: f.id, id: users[8].id, kind: .user, actor: .system)
            let first = try await f.backup.snapshot(tenant: f.id)
            _ = try await f.directory.update(tenant: f.id, id: users[0].id, kind: .user, patch: ["jobTitle": "changed"], actor: .system)
            try await f.directory.removeLink(tenant: f.id, source: group.id, relation: "members", target: users[1].id, actor: .system)
            let second = try await f.backup.snapshot(tenant: f.id)
            try await f.directory.delete(tenant: f.id, id: users[2].id, kind: .user, actor: .system)
            _ = try await f.directory.restore(tenant: f.id, id: users[8].id, actor: .system)
            _ = try await f.user("cmpnew")
            try await f.directory.addLink(tenant: f.id, source: group.id, relation: "members", target: users[5].id, actor: .system)
            let third = try await f.backup.snapshot(tenant: f.id)
            // Purged since: its links from a group that did not change go too.
            try await f.directory.delete(tenant: f.id, id: users[9].id, kind: .user, actor: .system)
            try await f.directory.purgeDeleted(tenant: f.id, id: users[9].id, actor: .system)

            for (from, to) in [(first, second), (first, third), (second, third), (third, first), (second, first), (first, nil), (second, nil), (third, nil)] {
                let report = try await f.backup.difference(tenant: f.id, from: from.id, to: to?.id)
                let full = try await f.everything(from, to)
                #expect(!full.changes.isEmpty)
                #expect(report.changes == full.changes, "\(from.id) → \(to?.id ?? "now")")
            }
        }
    }

    @Test("migration 7 fills in the digests of objects written before it, and earlier snapshots go on as parents")
    func digestMigration() async throws {
        try await Fixture.run(":memory:") { f in
            // More rows than one page of the backfill.
            for i in 0..<2100 { _ = try await f.user("before\(i)", extra: ["jobTitle": .string("é😀\t\(i)")]) }
            let first = try await f.backup.snapshot(tenant: f.id)
            // The schema as a deployment before step 7 has it.
            _ = try await f.store.backend.withWriteSession { s in
                _ = try await s.execute("ALTER TABLE objects DROP COLUMN digest", [])
                return try await s.execute("DELETE FROM schema_migrations WHERE version = 7", [])
            }
            try await f.store.migrate()
            let kept = try await f.store.read { tx in try await tx.objectDigests(tenant: f.id, kinds: BackupService.kinds) }
            let (live, _) = try await f.backup.liveState(tenant: f.id)
            #expect(kept.count > 2100 && kept.allSatisfy { $0.digest != nil && $0.digest == live.objects[$0.id]?.digest })
            let second = try await f.backup.snapshot(tenant: f.id)
            #expect(second.parent == first.id && second.changedObjects == 0 && second.digest == first.digest)
            #expect(try await f.backup.verify(tenant: f.id).problems.isEmpty)
        }
    }

    @Test("a large snapshot keeps every byte, tabs, newlines and backslashes included", arguments: Databases.all)
    func largeSnapshot(_ database: String) async throws {
        try await Fixture.run(database) { f in
            for i in 0..<230 {
                _ = try await f.user("bulk\(i)", extra: ["jobTitle": .string("tab\there, line\nbreak, back\\slash, \"quote\", ünïcødé \(i)")])
            }
            let snapshot = try await f.backup.snapshot(tenant: f.id)
            #expect(snapshot.objectCount >= 230)
            let (problems, blobs) = try await f.backup.verify(tenant: f.id)
            #expect(problems.isEmpty && blobs == snapshot.objectCount)
            #expect(try await f.backup.state(tenant: f.id, snapshot: snapshot.id) == (try await f.backup.liveState(tenant: f.id)).0)
            // A second full-size write of the same blobs keeps one copy of each.
            let state = try await f.backup.state(tenant: f.id, snapshot: snapshot.id)
            let bodies = try await f.store.read { tx in try await tx.blobs(tenant: f.id, digests: state.objects.values.compactMap(\.digest)) }
            try await f.store.write { tx in try await tx.putBlobs(tenant: f.id, bodies.map { (digest: $0.key, body: $0.value) }) }
            #expect(try await f.backup.verify(tenant: f.id).blobs == snapshot.objectCount)
        }
    }

    @Test("SQLite packs a first snapshot in table order, indexed by lengths alone; every body reads back byte for byte beside packs with offsets")
    func packsInTableOrder() async throws {
        try await Fixture.run(":memory:") { f in
            // Written in one id order and read in another: ids are random, rowids follow the writes.
            for i in 0..<2_300 { _ = try await f.user("row\(i)", extra: ["jobTitle": .string(String(repeating: "é😀\t", count: i % 7) + "\(i)")]) }
            let rows = try await f.store.read { tx in try await tx.objectDigests(tenant: f.id, kinds: BackupService.kinds) }
            let positions = rows.compactMap(\.position)
            #expect(positions.count == rows.count && zip(positions, positions.dropFirst()).allSatisfy { $0 < $1 })
            #expect(!zip(rows, rows.dropFirst()).allSatisfy { $0.id < $1.id })  // so the snapshot must sort them itself

            let snapshot = try await f.backup.snapshot(tenant: f.id)
            let indexes = try await f.store.backend.withWriteSession { s in
                try await s.execute("SELECT digests FROM backup_packs WHERE tenant = ?", [.text(f.id)])
            }
            #expect(indexes.count == 2)  // 2,000 objects a pack
            for index in indexes {
                let lines = (index.first?.text ?? "").split(separator: "\n")
                #expect(!lines.isEmpty && lines.allSatisfy { $0.split(separator: " ").count == 2 })
            }
            // A blob kept the earlier way (digest, offset, length) in a pack of its own, read beside them.
            let extra = #"{"id":"x","note":"ünïcødé"}"#, extraDigest = String(repeating: "ab", count: 32)
            try await f.store.write { tx in try await tx.putBlobs(tenant: f.id, [(digest: extraDigest, body: extra), (digest: String(repeating: "cd", count: 32), body: "{}")]) }

            let state = try await f.backup.state(tenant: f.id, snapshot: snapshot.id)
            #expect(state == (try await f.backup.liveState(tenant: f.id)).0)
            let wanted = state.objects.values.compactMap(\.digest) + [extraDigest]
            let bodies = try await f.store.read { tx in try await tx.blobs(tenant: f.id, digests: wanted) }
            #expect(bodies.count == wanted.count && bodies[extraDigest] == extra)
            // Every body hashes to its digest (verify reads each blob back and hashes it).
            let (problems, blobs) = try await f.backup.verify(tenant: f.id)
            #expect(problems.isEmpty && blobs == snapshot.objectCount)
        }
    }

    @Test("SQLite reads a pack on a reader connection, each body at the running sum of the lengths before it; PostgreSQL packs in the database", arguments: Databases.all)
    func packReadOnAReader(_ database: String) async throws {
        try await Fixture.run(database) { f in
            var made: [String] = []
            for i in 0..<30 { made.append(try await f.user("reader\(i)", extra: ["jobTitle": .string("é😀\t\(i)")]).id) }
            let ids = made
            let pack = try await f.store.read { tx in try await tx.readPack(tenant: f.id, ids: ids) }
            guard f.store.isPostgres == false else {
                #expect(pack == nil)
                return
            }
            let text = try #require(pack)
            let raw = try await f.store.read { tx in try await tx.rawObjects(tenant: f.id, ids: ids) }
            let bodies = Dictionary(uniqueKeysWithValues: raw.map { ($0.digest ?? "", $0.body) })
            var offset = 0, seen = 0
            let bytes = Array(text.body.utf8)
            for line in text.index.split(separator: "\n") {
                let fields = line.split(separator: " ")
                let digest = String(fields[0]), length = Int(fields[1]) ?? -1
                #expect(String(decoding: bytes[offset..<(offset + length)], as: UTF8.self) == bodies[digest])
                offset += length
                seen += 1
            }
            #expect(seen == 30 && offset == bytes.count)
            try await f.store.write { tx in try await tx.putPack(tenant: f.id, text) }
            let stored = Array(bodies.keys)
            #expect(try await f.store.read { tx in try await tx.blobs(tenant: f.id, digests: stored) } == bodies)
        }
    }

    @Test("a tenant whose plan has no backups gets no daily snapshot until it is turned on again", arguments: Databases.all)
    func planGate(_ database: String) async throws {
        try await Fixture.run(database) { f in
            #expect(try await f.backup.isEnabled(tenant: f.id))
            try await f.backup.setEnabled(tenant: f.id, false)
            #expect(try await f.backup.daily(tenant: f.id) == nil)
            #expect(try await f.backup.snapshots(tenant: f.id).isEmpty)
            try await f.backup.setEnabled(tenant: f.id, true)
            #expect(try await f.backup.daily(tenant: f.id) != nil)
        }
    }

    @Test("retention keeps five days: the oldest kept snapshot becomes full, and unshared blobs go", arguments: Databases.all)
    func retention(_ database: String) async throws {
        try await Fixture.run(database) { f in
            let ada = try await f.user("ada")
            var taken: [SnapshotRecord] = []
            for day in 0..<7 {
                _ = try await f.directory.update(tenant: f.id, id: ada.id, kind: .user, patch: ["jobTitle": .string("Day \(day)")], actor: .system)
                if let snapshot = try await f.backup.daily(tenant: f.id) { taken.append(snapshot) }
                // A second run the same day takes nothing.
                #expect(try await f.backup.daily(tenant: f.id) == nil)
                f.clock.advance(days: 1)
            }
            #expect(taken.count == 7)
            let kept = try await f.backup.snapshots(tenant: f.id)
            #expect(kept.map(\.id) == taken.suffix(5).map(\.id) || kept.map(\.id) == taken.suffix(6).map(\.id))
            #expect(kept.first?.parent == nil)
            let (problems, _) = try await f.backup.verify(tenant: f.id)
            #expect(problems.isEmpty)
            // Each kept snapshot still rebuilds to what it recorded.
            for record in kept {
                #expect(try await f.backup.state(tenant: f.id, snapshot: record.id).digest == record.digest)
            }
        }
    }
}

@Suite("Recovery: back to a snapshot through the directory service")
struct RecoveryTests {
    static let job = Actor(kind: .application, id: "5e1f0000-0000-0000-0000-00000000b4c0", displayName: "Backup and Recovery job")

    @Test("added objects are soft-deleted, changed ones reverted, deleted ones restored or recreated, links put back", arguments: Databases.all)
    func everyAction(_ database: String) async throws {
        try await Fixture.run(database) { f in
            let ada = try await f.user("ada", extra: ["jobTitle": "Analyst"])
            let bob = try await f.user("bob")
            let cyd = try await f.user("cyd")
            let group = try await f.group("pilots")
            for member in [ada, cyd] {
                try await f.directory.addLink(tenant: f.id, source: group.id, relation: "members", target: member.id, actor: .system)
            }
            let snapshot = try await f.backup.snapshot(tenant: f.id)

            _ = try await f.directory.update(tenant: f.id, id: ada.id, kind: .user, patch: ["jobTitle": "Director", "department": "Ops"], actor: .system)
            try await f.directory.delete(tenant: f.id, id: bob.id, kind: .user, actor: .system)
            try await f.directory.delete(tenant: f.id, id: cyd.id, kind: .user, actor: .system)
            try await f.directory.purgeDeleted(tenant: f.id, id: cyd.id, actor: .system)
            let eve = try await f.user("eve")
            try await f.directory.addLink(tenant: f.id, source: group.id, relation: "members", target: eve.id, actor: .system)
            let sam = try await f.user("sam")
            _ = try await f.directory.update(tenant: f.id, id: sam.id, kind: .user, patch: ["onPremisesSyncEnabled": true], actor: .system,
                                             allowReadOnly: true)

            let dry = try await f.backup.recover(tenant: f.id, snapshot: snapshot.id, filter: .all, directory: f.directory, actor: Self.job, dryRun: true)
            #expect(dry.outcomes.isEmpty && Set(dry.planned.map(\.id)) == [ada.id, bob.id, cyd.id, eve.id, group.id])
            #expect(try await f.store.read { tx in try await tx.object(tenant: f.id, id: eve.id) }?.deletedAt == nil)  // nothing written

            let run = try await f.backup.recover(tenant: f.id, snapshot: snapshot.id, filter: .all, directory: f.directory, actor: Self.job)
            #expect(run.outcomes.allSatisfy { $0.failure == nil } && run.outcomes.count == 5 && !run.stopped)
            func object(_ id: String) async throws -> StoredObject? { try await f.store.read { tx in try await tx.object(tenant: f.id, id: id) } }
            let adaNow = try #require(try await object(ada.id))
            #expect(adaNow.body["jobTitle"] == "Analyst" && adaNow.body["department"] == nil)
            #expect(try await object(bob.id)?.deletedAt == nil)
            let cydNow = try #require(try await object(cyd.id))
            #expect(cydNow.deletedAt == nil && cydNow.body["userPrincipalName"] == cyd.body["userPrincipalName"])
            #expect(try await object(eve.id)?.deletedAt != nil)
            #expect(try await object(sam.id)?.deletedAt == nil)  // on-premises: reported, not recovered
            let members = try await f.store.read { tx in try await tx.targets(tenant: f.id, source: group.id, relation: "members") }
            #expect(Set(members) == [ada.id, cyd.id])
            // The unique keys came back with the objects: the recreated user's name is taken again.
            let holder = try await f.store.read { tx in try await tx.holder(tenant: f.id, key: UniqueKey("userPrincipalName", "cyd@\(f.tenant.domain)")) }
            #expect(holder == cyd.id)
            // Every change is in the audit log under the job.
            let changes = try await f.store.read { tx in try await tx.changes(tenant: f.id, kinds: nil, after: 0, limit: 1000) }
            #expect(changes.filter { $0.actor["app"]?["displayName"]?.stringValue == Self.job.displayName }.count >= 6)
            // Against the snapshot only the on-premises user differs now; a second run has nothing left to do.
            let after = try await f.backup.difference(tenant: f.id, from: snapshot.id, to: nil)
            #expect(after.changes.map(\.id) == [sam.id])
            #expect(try await f.backup.recover(tenant: f.id, snapshot: snapshot.id, filter: .all, directory: f.directory, actor: Self.job).planned.isEmpty)
        }
    }

    @Test("Conditional Access policies, named locations, the authorization policy and delegated grants come back", arguments: Databases.all)
    func policies(_ database: String) async throws {
        try await Fixture.run(database) { f in
            let office = try await f.directory.create(tenant: f.id, kind: .namedLocation, body: [
                "@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Office", "ipRanges": [["cidrAddress": "198.51.100.0/24"]]],
                                                      actor: .system)
            let policyBody: [String: JSONValue] = [
                "displayName": "Passkeys outside the office", "state": "enabled",
                "conditions": ["users": ["includeUsers": ["All"]], "applications": ["includeApplications": ["All"]],
                               "locations": ["includeLocations": ["All"], "excludeLocations": [.string(office.id)]]],
                "grantControls": ["operator": "OR", "authenticationStrength": ["id": "00000000-0000-0000-0000-000000000004"]]]
            let policy = try await f.directory.create(tenant: f.id, kind: .conditionalAccessPolicy, body: policyBody, actor: .system)
            try await f.directory.updateAuthorizationPolicy(tenant: f.id, patch: ["blockMsolPowerShell": true], actor: .system)
            let sps = try await f.store.read { tx in try await tx.query(ObjectQuery(tenant: f.id, kinds: [.servicePrincipal])) }
            let grant = try await f.directory.create(tenant: f.id, kind: .oauth2PermissionGrant, body: [
                "clientId": .string(sps[0].id), "resourceId": .string(sps[1].id), "consentType": "AllPrincipals", "scope": "User.Read"],
                                                     actor: .system)
            let snapshot = try await f.backup.snapshot(tenant: f.id)

            // An administrator (or an attacker) switches the policy to report-only, takes the location out of it (a PATCH
            // merges complex values, so that takes an explicit null) and deletes it, loosens the authorization policy,
            // removes the grant and adds a policy of their own.
            _ = try await f.directory.update(tenant: f.id, id: policy.id, kind: nil, patch: ["state": "enabledForReportingButNotEnforced",
                "conditions": ["users": ["includeUsers": ["All"]], "applications": ["includeApplications": ["All"]], "locations": .null]],
                                             actor: .system)
            try await f.directory.delete(tenant: f.id, id: office.id, kind: nil, actor: .system)
            try await f.directory.updateAuthorizationPolicy(tenant: f.id, patch: ["blockMsolPowerShell": false, "allowInvitesFrom": "none"], actor: .system)
            try await f.directory.delete(tenant: f.id, id: grant.id, kind: nil, actor: .system)
            let added = try await f.directory.create(tenant: f.id, kind: .conditionalAccessPolicy, body: [
                "displayName": "Block nothing", "state": "disabled",
                "conditions": ["users": ["includeUsers": ["None"]], "applications": ["includeApplications": ["None"]]],
                "grantControls": ["operator": "OR", "builtInControls": ["mfa"]]], actor: .system)

            let report = try await f.backup.difference(tenant: f.id, from: snapshot.id, to: nil)
            let byID = Dictionary(uniqueKeysWithValues: report.changes.map { ($0.id, $0) })
            #expect(byID[policy.id]?.action == .update && byID[policy.id]?.properties.map(\.name).contains("state") == true)
            #expect(byID[office.id]?.action == .restore && byID[added.id]?.action == .softDelete && byID[grant.id]?.action == .recreate)
            #expect(report.changes.contains { $0.kind == .authorizationPolicy && $0.properties.contains { $0.name == "blockMsolPowerShell" } })
            #expect(Set(report.changes.map { DifferenceReport.entityTypeName($0.kind) })
                    == ["conditionalAccessPolicy", "namedLocationPolicy", "authorizationPolicy", "oAuth2PermissionGrant"])

            let run = try await f.backup.recover(tenant: f.id, snapshot: snapshot.id, filter: .all, directory: f.directory, actor: Self.job)
            #expect(run.outcomes.allSatisfy { $0.failure == nil } && run.outcomes.count == 5, "\(run.outcomes)")
            func object(_ id: String) async throws -> StoredObject? { try await f.store.read { tx in try await tx.object(tenant: f.id, id: id) } }
            #expect(try await object(policy.id)?.body == policy.body)
            #expect(try await object(office.id)?.deletedAt == nil)
            #expect(try await object(added.id)?.deletedAt != nil)
            #expect(try await object(grant.id)?.body["scope"] == "User.Read")
            let authorization = try await f.directory.authorizationPolicy(tenant: f.id)
            #expect(authorization["blockMsolPowerShell"] == true && authorization["allowInvitesFrom"] == "everyone")
            #expect(try await f.backup.difference(tenant: f.id, from: snapshot.id, to: nil).changes.isEmpty)
        }
    }

    @Test("filters by type or id; a unique key taken since fails that object only", arguments: Databases.all)
    func filtersAndFailures(_ database: String) async throws {
        try await Fixture.run(database) { f in
            let ada = try await f.user("ada")
            let group = try await f.group("staff")
            let snapshot = try await f.backup.snapshot(tenant: f.id)
            try await f.directory.delete(tenant: f.id, id: ada.id, kind: .user, actor: .system)
            try await f.directory.purgeDeleted(tenant: f.id, id: ada.id, actor: .system)
            let impostor = try await f.user("ada")  // takes ada's user principal name
            _ = try await f.directory.update(tenant: f.id, id: group.id, kind: .group, patch: ["description": "changed"], actor: .system)

            let groupsOnly = try await f.backup.recover(tenant: f.id, snapshot: snapshot.id, filter: .entityTypes(["group"]),
                                                        directory: f.directory, actor: RecoveryTests.job)
            #expect(groupsOnly.outcomes.map(\.change.id) == [group.id] && groupsOnly.outcomes[0].failure == nil)
            let byID = try await f.backup.recover(tenant: f.id, snapshot: snapshot.id, filter: .ids(["user": [ada.id]]),
                                                  directory: f.directory, actor: RecoveryTests.job)
            #expect(byID.outcomes.count == 1 && byID.outcomes[0].change.action == .recreate)
            #expect(byID.outcomes[0].failure?.contains("userPrincipalName") == true)
            #expect(try await f.store.read { tx in try await tx.object(tenant: f.id, id: ada.id) } == nil)  // nothing half-written
            #expect(try await f.store.read { tx in try await tx.object(tenant: f.id, id: impostor.id) }?.deletedAt == nil)
        }
    }

    @Test("a damaged snapshot is refused before anything is written", arguments: Databases.all)
    func damagedSnapshot(_ database: String) async throws {
        try await Fixture.run(database) { f in
            let ada = try await f.user("ada", extra: ["jobTitle": "Analyst"])
            let snapshot = try await f.backup.snapshot(tenant: f.id)
            _ = try await f.directory.update(tenant: f.id, id: ada.id, kind: .user, patch: ["jobTitle": "Director"], actor: .system)
            let state = try await f.backup.state(tenant: f.id, snapshot: snapshot.id)
            let digest = try #require(state.objects[ada.id]?.digest)
            // Someone edits the stored copy of ada in the database: the blob no longer matches its digest.
            let blobs = try await f.store.read { tx in try await tx.blobs(tenant: f.id, digests: [digest]) }
            #expect(try #require(blobs[digest]).contains("Analyst"))
            _ = try await f.store.backend.withWriteSession { session in
                try await session.execute("UPDATE backup_packs SET body = replace(body, 'Analyst', 'Analyse') WHERE tenant = ?", [.text(f.id)])
            }
            await #expect(throws: BackupError.self) {
                _ = try await f.backup.recover(tenant: f.id, snapshot: snapshot.id, filter: .all, directory: f.directory, actor: RecoveryTests.job)
            }
            #expect(try await f.store.read { tx in try await tx.object(tenant: f.id, id: ada.id) }?.body["jobTitle"] == "Director")
            #expect(try await f.backup.verify(tenant: f.id).problems.contains { $0.message.contains(digest) })
        }
    }
}
