import Foundation
import Testing
import TesseraCore

@testable import Backup

@Suite("LinkSet: a state's links grouped by source")
struct LinkSetTests {
    static func link(_ source: String, _ target: String, _ relation: String = "members") -> LinkRow {
        LinkRow(source: source, relation: relation, target: target)
    }

    /// A Set<LinkRow> is the model: every operation must agree with it.
    static let rows = [
        link("g2", "u3"), link("g1", "u2"), link("g1", "u1"), link("g1", "o1", "owners"), link("g2", "u1"), link("g1", "u2"),
    ]

    @Test("built in any order and with duplicates, it holds what a Set holds, and equal sets are equal values")
    func canonical() {
        let links = LinkSet(Self.rows)
        #expect(links.count == 5)
        #expect(Set(links) == Set(Self.rows))
        #expect(links.sorted() == Set(Self.rows).sorted())
        #expect(links == LinkSet(Self.rows.reversed()))
        #expect(links == LinkSet(Set(Self.rows).sorted()))
        var built = LinkSet()
        for row in Self.rows.shuffled() { built.insert(row) }
        #expect(built == links)
        #expect(built.count == links.count)
    }

    @Test("insert and remove report what they did; a source with no link left is gone, so the sets compare equal")
    func insertRemove() {
        var links = LinkSet(Self.rows)
        let insertedAgain = links.insert(Self.link("g1", "u1")), insertedNew = links.insert(Self.link("g1", "u9"))
        #expect(!insertedAgain && insertedNew)
        #expect(links.contains(Self.link("g1", "u9")))
        let removed = links.remove(Self.link("g1", "u9")), removedAgain = links.remove(Self.link("g1", "u9"))
        let removedAbsent = links.remove(Self.link("g7", "u1"))
        #expect(removed && !removedAgain && !removedAbsent)
        #expect(links == LinkSet(Self.rows))
        links.remove(Self.link("g2", "u3"))
        links.remove(Self.link("g2", "u1"))
        #expect(!links.sources.contains("g2"))
        #expect(links == LinkSet(Self.rows.filter { $0.source != "g2" }))
        #expect(links.count == 3)
    }

    @Test("removing by source and by target counts and names what went")
    func removeBySourceAndTarget() {
        var links = LinkSet(Self.rows)
        let first = links.removeLinks(from: "g1"), second = links.removeLinks(from: "g1")
        #expect(first == 3 && second == 0)
        #expect(links.count == 2)
        var again = LinkSet(Self.rows)
        let affected = again.removeLinks(to: ["u1"])
        #expect(affected == ["g1", "g2"])
        #expect(Set(again) == Set(Self.rows).filter { $0.target != "u1" })
        #expect(again.count == 3)
    }

    @Test("changes between two sets are the two differences of the Sets, by source and whole")
    func changes() {
        let old = LinkSet(Self.rows)
        var rows = Set(Self.rows)
        rows.remove(Self.link("g1", "u1"))
        rows.insert(Self.link("g1", "u0"))
        rows.insert(Self.link("g3", "u1"))
        rows.remove(Self.link("g2", "u3"))
        rows.remove(Self.link("g2", "u1"))
        let new = LinkSet(rows)
        #expect(new.differingSources(from: old) == ["g1", "g2", "g3"])
        let (added, removed) = new.changes(from: old)
        #expect(Set(added) == rows.subtracting(Self.rows))
        #expect(Set(removed) == Set(Self.rows).subtracting(rows))
        let g1 = new.changes(from: old, source: "g1")
        #expect(g1.added == [.init(relation: "members", target: "u0")])
        #expect(g1.removed == [.init(relation: "members", target: "u1")])
        #expect(new.changes(from: new).added.isEmpty && new.changes(from: new).removed.isEmpty)
    }
}

@Suite("Snapshot entries sorted by id")
struct SnapshotEntryOrderTests {
    @Test("sorting by the ids' first eight bytes gives String's order: GUIDs, shared and short prefixes, NUL, non-ASCII")
    func prefixOrderIsStringOrder() {
        var ids = (0..<2_000).map { _ in UUID().uuidString.lowercased() }
        ids += ["", "a", "ab", "abcdefgh", "abcdefgh0", "abcdefgh\u{0}", "abcdefg", "abcdefgi", "a\u{0}", "\u{0}",
                "é", "eé", "abcdefgé", "abcdefghé", "zzzzzzzzzzzz", "ZZZZZZZZ", "~~~~~~~~~", "abcdefgh", "0", "00000000-0000"]
        var entries = ids.shuffled().map { SnapshotEntry(object: $0, kind: .user, digest: nil, deletedAt: nil) }
        BackupService.sortByObject(&entries)
        #expect(entries.map(\.object) == ids.sorted())
    }
}
