import Foundation
import Testing
@testable import Backup
@testable import Store
import TesseraCore
import TesseraTesting

@Suite("Snapshots read in batches")
struct SnapshotBatchTests {
    /// A tenant with more objects and links than several batches of seven: users (one soft-deleted, some with tabs and
    /// non-ASCII text), groups with members and owners, and rows kept without a digest (hashed from their bodies).
    static func fill(_ f: Fixture) async throws {
        var users: [StoredObject] = []
        for i in 0..<40 { users.append(try await f.user("batch\(i)", extra: ["jobTitle": .string("tab\there é😀 \(i)")])) }
        let staff = try await f.group("staff"), owners = try await f.group("owners")
        for user in users.prefix(23) {
            try await f.directory.addLink(tenant: f.id, source: staff.id, relation: "members", target: user.id, actor: .system)
        }
        for user in users.suffix(9) {
            try await f.directory.addLink(tenant: f.id, source: owners.id, relation: "owners", target: user.id, actor: .system)
        }
        try await f.directory.delete(tenant: f.id, id: users[3].id, kind: .user, actor: .system)
        let tenant = f.id, bare = [users[10].id, users[20].id]
        _ = try await f.store.backend.withWriteSession { s in
            try await s.execute("UPDATE objects SET digest = NULL WHERE tenant = ? AND id IN (?, ?)", [.text(tenant)] + bare.map { .text($0) })
        }
    }

    /// Everything a snapshot recorded: its digest and counts, its manifest's entries and links, and every blob's text.
    struct Content: Equatable {
        var digest: String
        var objects: Int
        var links: Int
        var entries: [SnapshotEntry]
        var linkRows: [SnapshotLink]
        var blobs: [String: String]

        init(_ f: Fixture, _ record: SnapshotRecord) async throws {
            digest = record.digest
            objects = record.objectCount
            links = record.linkCount
            entries = try await f.store.read { tx in try await tx.snapshotEntries(tenant: f.id, snapshot: record.id) }
            linkRows = try await f.store.read { tx in try await tx.snapshotLinks(tenant: f.id, snapshot: record.id) }
            let digests = entries.compactMap(\.digest)
            blobs = try await f.store.read { tx in try await tx.blobs(tenant: f.id, digests: digests) }
        }
    }

    func packCount(_ f: Fixture) async throws -> Int {
        let tenant = f.id
        return try await f.store.backend.withWriteSession { s in
            try await s.execute("SELECT COUNT(*) FROM backup_packs WHERE tenant = ?", [.text(tenant)])
        }.first?.first?.int.map(Int.init) ?? -1
    }

    @Test("a snapshot in batches of seven records exactly what one batch records: digest, entries, links and every blob",
          arguments: Databases.all)
    func sameWhateverTheBatch(_ database: String) async throws {
        try await Fixture.run(database) { f in
            try await Self.fill(f)
            var small = f.backup
            small.batchSize = 7
            let batched = try await small.snapshot(tenant: f.id)
            let first = try await Content(f, batched)
            // Each batch's new bodies went into a pack of their own.
            #expect(try await packCount(f) >= batched.objectCount / 7)
            #expect(first.objects == first.entries.count && first.objects > 40 && first.links == 32 && first.linkRows.count == 32)
            #expect(first.entries.map(\.object) == first.entries.map(\.object).sorted())
            #expect(first.blobs.count == Set(first.entries.compactMap(\.digest)).count)
            // The state read whole, hashed from the bodies, is the snapshot's.
            let (live, bodies) = try await f.backup.liveState(tenant: f.id)
            #expect(live.digest == batched.digest)
            #expect(first.blobs == bodies.filter { first.blobs[$0.key] != nil } && first.blobs.count == bodies.count)
            #expect(try await f.backup.verify(tenant: f.id).problems.isEmpty)

            // The same tenant again in one batch, once the batched snapshot and its packs are gone.
            _ = try await f.store.write { tx in try await tx.deleteSnapshot(tenant: f.id, id: batched.id) }
            #expect(try await packCount(f) == 0)
            var whole = f.backup
            whole.batchSize = 1_000_000
            f.clock.advance(days: 1)
            let single = try await whole.snapshot(tenant: f.id)
            #expect(try await packCount(f) == 2)  // one of the bodies, one of the two rows hashed from theirs
            #expect(try await Content(f, single) == first)

            // An incremental snapshot in batches of seven finds the changes one batch finds.
            let changed = try #require(first.entries.first { $0.kind == .user && $0.deletedAt == nil })
            _ = try await f.directory.update(tenant: f.id, id: changed.object, kind: .user, patch: ["jobTitle": "renamed"], actor: .system)
            f.clock.advance(days: 1)
            let next = try await small.snapshot(tenant: f.id)
            #expect(next.parent == single.id && next.changedObjects == 1)
            #expect(try await f.backup.state(tenant: f.id, snapshot: next.id) == (try await f.backup.liveState(tenant: f.id)).0)
        }
    }

    @Test("a snapshot cancelled between batches leaves no snapshot, and the next one is whole", arguments: Databases.all)
    func cancelledMidway(_ database: String) async throws {
        try await Fixture.run(database) { f in
            try await Self.fill(f)
            var batched = f.backup
            batched.batchSize = 7
            let small = batched, tenant = f.id
            let (reached, arrived) = AsyncStream<Void>.makeStream()
            let running = Task {
                try await BackupService.$batchScanned.withValue({ batch in
                    guard batch == 3 else { return }
                    arrived.yield()
                    try await Task.sleep(for: .seconds(3600))  // until cancelled
                }) {
                    try await small.snapshot(tenant: tenant)
                }
            }
            var waiting = reached.makeAsyncIterator()
            _ = await waiting.next()
            running.cancel()
            await #expect(throws: CancellationError.self) { _ = try await running.value }
            // Batches 0–2 had stored packs; no snapshot names them.
            #expect(try await packCount(f) > 0)
            #expect(try await f.backup.snapshots(tenant: f.id).isEmpty)
            #expect(try await f.backup.verify(tenant: f.id).problems.isEmpty)

            let taken = try await small.snapshot(tenant: f.id)
            #expect(taken.parent == nil)
            #expect(taken.digest == (try await f.backup.liveState(tenant: f.id)).0.digest)
            #expect(try await f.backup.state(tenant: f.id, snapshot: taken.id) == (try await f.backup.liveState(tenant: f.id)).0)
            #expect(try await f.backup.verify(tenant: f.id).problems.isEmpty)
        }
    }
}
