import Foundation
import Testing
@testable import Backup
@testable import Store
import TesseraCore
import TesseraTesting

@Suite("Reports from manifest lines read by id")
struct ManifestIndexTests {
    @Test("a manifest's lines by first field: in text order, unsorted text and repeated fields included, lines of other than four fields skipped")
    func linesByFirstField() {
        let text = "b\tx\t1\t\nb\ty\t2\t\na\tz\t3\t\nb\tonly three\n\nc\t1\t2\t3\t4\na\tw\t4\t\nb\tv\t5\tlast"
        let index = ManifestIndex(text)
        var all: [[String]] = []
        index.forEach { a, b, c, d in all.append([a, b, c, d].map { String(decoding: $0, as: UTF8.self) }) }
        #expect(all == [["b", "x", "1", ""], ["b", "y", "2", ""], ["a", "z", "3", ""], ["a", "w", "4", ""]])
        for key in ["a", "b", "c", "", "z", "bb"] {
            var found: [[String]] = []
            index.forEachLine(startingWith: key) { a, b, c, d in found.append([a, b, c, d].map { String(decoding: $0, as: UTF8.self) }) }
            #expect(found == all.filter { $0[0] == key }, "\(key)")
        }
        // Sorted text (as a snapshot writes it): the same answers.
        let sorted = ManifestIndex("a\tz\t3\t\na\tw\t4\t\nab\tq\t1\t\nb\tx\t1\t\nb\ty\t2\t\n")
        var found: [String] = []
        sorted.forEachLine(startingWith: "a") { _, b, _, _ in found.append(String(decoding: b, as: UTF8.self)) }
        #expect(found == ["z", "w"])
        found = []
        sorted.forEachLine(startingWith: "ab") { _, b, _, _ in found.append(String(decoding: b, as: UTF8.self)) }
        #expect(found == ["q"])
    }

    /// Users and groups with links; then, snapshot by snapshot: updates, soft deletes, restores, creates, a purge whose
    /// link comes from a group that did not change, a deleted group, links added and removed. Returns the snapshots.
    static func history(_ f: Fixture) async throws -> [SnapshotRecord] {
        var users: [StoredObject] = []
        for i in 0..<30 { users.append(try await f.user("mi\(i)", extra: ["jobTitle": .string("t\(i) é\t😀")])) }
        let staff = try await f.group("mistaff"), quiet = try await f.group("miquiet"), doomed = try await f.group("midoomed")
        for user in users.prefix(12) {
            try await f.directory.addLink(tenant: f.id, source: staff.id, relation: "members", target: user.id, actor: .system)
        }
        for user in users.suffix(6) {
            try await f.directory.addLink(tenant: f.id, source: quiet.id, relation: "members", target: user.id, actor: .system)
            try await f.directory.addLink(tenant: f.id, source: doomed.id, relation: "owners", target: user.id, actor: .system)
        }
        try await f.directory.delete(tenant: f.id, id: users[20].id, kind: .user, actor: .system)
        var taken = [try await f.backup.snapshot(tenant: f.id)]
        f.clock.advance(days: 1)
        _ = try await f.directory.update(tenant: f.id, id: users[0].id, kind: .user, patch: ["jobTitle": "changed"], actor: .system)
        try await f.directory.removeLink(tenant: f.id, source: staff.id, relation: "members", target: users[1].id, actor: .system)
        try await f.directory.addLink(tenant: f.id, source: staff.id, relation: "members", target: users[15].id, actor: .system)
        _ = try await f.user("minew1")
        taken.append(try await f.backup.snapshot(tenant: f.id))
        f.clock.advance(days: 1)
        try await f.directory.delete(tenant: f.id, id: users[2].id, kind: .user, actor: .system)
        _ = try await f.directory.restore(tenant: f.id, id: users[20].id, actor: .system)
        try await f.directory.delete(tenant: f.id, id: doomed.id, kind: .group, actor: .system)
        let added = try await f.group("miadded")
        try await f.directory.addLink(tenant: f.id, source: added.id, relation: "members", target: users[3].id, actor: .system)
        taken.append(try await f.backup.snapshot(tenant: f.id))
        f.clock.advance(days: 1)
        _ = try await f.directory.update(tenant: f.id, id: users[4].id, kind: .user, patch: ["displayName": "renamed"], actor: .system)
        taken.append(try await f.backup.snapshot(tenant: f.id))
        // Since the last snapshot: a purge whose links come from a group that did not change, more changes.
        try await f.directory.delete(tenant: f.id, id: users[29].id, kind: .user, actor: .system)
        try await f.directory.purgeDeleted(tenant: f.id, id: users[29].id, actor: .system)
        _ = try await f.directory.update(tenant: f.id, id: users[5].id, kind: .user, patch: ["jobTitle": "again"], actor: .system)
        try await f.directory.removeLink(tenant: f.id, source: staff.id, relation: "members", target: users[6].id, actor: .system)
        _ = try await f.user("minew2")
        return taken
    }

    /// Every pair of snapshots (and each snapshot against now): the report from manifest lines read by id is the one
    /// the snapshot's whole state gives, and the one comparing every object gives.
    static func reportsAgree(_ f: Fixture, _ snapshots: [SnapshotRecord]) async throws {
        var pairs: [(SnapshotRecord, SnapshotRecord?)] = snapshots.map { ($0, nil) }
        for from in snapshots { for to in snapshots { pairs.append((from, to)) } }
        for (from, to) in pairs {
            let report = try await f.backup.difference(tenant: f.id, from: from.id, to: to?.id)
            let whole = try await f.backup.comparison(tenant: f.id, from: from.id, to: to?.id, wholeTarget: true).report
            #expect(report.changes == whole.changes, "\(from.id) → \(to?.id ?? "now")")
            #expect(report.changes == (try await f.everything(from, to)).changes, "\(from.id) → \(to?.id ?? "now")")
            if from.id != to?.id { #expect(!report.changes.isEmpty, "\(from.id) → \(to?.id ?? "now")") }
        }
    }

    @Test("reports read by id list what the whole states list: creates, updates, deletes, restores, purges, links", arguments: Databases.all)
    func reportsMatchTheWholeState(_ database: String) async throws {
        try await Fixture.run(database) { f in
            let snapshots = try await Self.history(f)
            try await Self.reportsAgree(f, snapshots)
            // The chain's state read by id is the whole state's, id by id.
            for record in snapshots {
                let whole = try await f.backup.state(tenant: f.id, snapshot: record.id)
                let chain = try await f.backup.manifestChain(tenant: f.id, snapshot: record.id)
                let ids = Set(whole.objects.keys).union(whole.links.sources)
                let partial = chain.state(of: ids)
                #expect(partial == whole)
                #expect(partial.digest == record.digest)
            }
        }
    }

    @Test("a manifest retention rewrote (lines not in id order) gives the same reports", arguments: Databases.all)
    func reportsAfterRetention(_ database: String) async throws {
        try await Fixture.run(database) { f in
            var snapshots = try await Self.history(f)
            // The first snapshot expires: the second is written out whole, its lines in no particular order.
            f.clock.advance(days: 1.5)
            let backup = BackupService(store: f.store, clock: f.clock, retentionDays: 4)
            try await backup.applyRetention(tenant: f.id)
            snapshots.removeFirst()
            #expect(try await f.backup.snapshots(tenant: f.id).map(\.id) == snapshots.map(\.id))
            let foldedID = snapshots[0].id
            let folded = try #require(try await f.store.read { tx in try await tx.snapshotManifest(tenant: f.id, snapshot: foldedID) })
            let lines = folded.entries.split(separator: "\n").map(String.init)
            #expect(lines != lines.sorted(), "the rewritten manifest is not in id order, so the unsorted path is what is tested")
            try await Self.reportsAgree(f, snapshots)
        }
    }
}
