import Foundation
import Testing
import TesseraCore

/// Random GUIDs made from the system's random generator (not Foundation's `UUID()`, which read `/dev/urandom` through a
/// file of its own for each id): the same form as before, version 4, lower case, with their random bits random.
@Suite("Random object and request ids")
struct IdentifierTests {
    @Test("a version 4 GUID in lower case: the version and variant bits set, every other hex digit varies, no two alike")
    func randomGUIDs() {
        let ids = (0..<2_000).map { _ in Identifier.make() }
        #expect(Set(ids).count == ids.count)
        var seen = [Set<Character>](repeating: [], count: 32)
        for id in ids {
            #expect(Identifier.isGUID(id))
            #expect(id == id.lowercased())
            #expect([8, 13, 18, 23].allSatisfy { Array(id)[$0] == "-" })
            let hex = Array(id.filter { $0 != "-" })
            #expect(hex[12] == "4")
            #expect("89ab".contains(hex[16]))
            for (i, digit) in hex.enumerated() { seen[i].insert(digit) }
        }
        // 122 random bits: each hex digit but the version takes all 16 values over 2,000 ids (the variant digit its 4).
        for i in 0..<32 where i != 12 {
            #expect(seen[i].count == (i == 16 ? 4 : 16), "hex digit \(i)")
        }
    }

    /// Ids come from a pool of the kernel's random words refilled 4 KiB (256 ids) at a time: made at once from many
    /// tasks, across many refills, no two are alike and none repeats the pool's zeroed words.
    @Test("ids made concurrently across many refills of the random pool are all distinct")
    func concurrentIds() async {
        let ids = await withTaskGroup(of: [String].self) { group in
            for _ in 0..<8 { group.addTask { (0..<1_000).map { i in i % 2 == 0 ? Identifier.make() : Identifier.makeTimeOrdered(at: .now) } } }
            var all: [String] = []
            for await some in group { all += some }
            return all
        }
        #expect(ids.count == 8_000)
        #expect(Set(ids).count == ids.count)
        // The random part of a time-ordered id (its last 16 hex digits but the variant's) is never all zeros.
        #expect(ids.allSatisfy { !$0.hasSuffix("0000-000000000000") })
    }
}
