import TesseraCore

/// A manifest column's lines as stored ("object kind digest deletedAt" or "source relation target present", four
/// tab-separated fields each, a newline after each), found by their first field without making a record of every line.
///
/// A report touches a few thousand ids of a 100,000-object tenant; building the snapshot's whole state (a `String`
/// four times a line, a dictionary entry and a link-set entry each) was about half of its CPU. Here the text's lines are
/// found in one pass, and each wanted id's lines by a binary search. The lines a snapshot writes come in order of their
/// first field; a manifest whose lines do not (one rewritten by retention) gets an order of its line numbers, sorted
/// once. Lines read by one id come in the order the text has them, as `snapshotEntries`/`snapshotLinks` give them.
struct ManifestIndex {
    private let bytes: [UInt8]
    /// Where each line starts, and one more: where the text after the last newline starts.
    private let starts: [Int]
    /// Where each line's first field ends (its first tab, or its newline).
    private let firstEnds: [Int]
    /// The line numbers in order of their first fields (text order among equal ones); nil when the text has them so.
    private let order: [Int]?

    var count: Int { firstEnds.count }

    init(_ text: String) {
        let bytes = Array(text.utf8)
        var starts: [Int] = [], firstEnds: [Int] = []
        starts.reserveCapacity(bytes.count / 64)
        firstEnds.reserveCapacity(bytes.count / 64)
        var sorted = true
        bytes.withUnsafeBufferPointer { all in
            var start = 0, firstEnd = -1
            for index in all.indices {
                let byte = all[index]
                if byte == 9, firstEnd < 0 {
                    firstEnd = index
                } else if byte == 10 {
                    if firstEnd < 0 { firstEnd = index }
                    if sorted, let previous = starts.last,
                       Self.compare(all, previous..<firstEnds[firstEnds.count - 1], start..<firstEnd) > 0 {
                        sorted = false
                    }
                    starts.append(start)
                    firstEnds.append(firstEnd)
                    start = index + 1
                    firstEnd = -1
                }
            }
            starts.append(start)
        }
        self.bytes = bytes
        self.starts = starts
        self.firstEnds = firstEnds
        if sorted {
            order = nil
        } else {
            order = bytes.withUnsafeBufferPointer { all in
                (0..<firstEnds.count).sorted { a, b in
                    let c = Self.compare(all, starts[a]..<firstEnds[a], starts[b]..<firstEnds[b])
                    return c < 0 || (c == 0 && a < b)
                }
            }
        }
    }

    /// The order of two byte ranges of `all` (negative: the first before the second), as `String`'s `<` orders ASCII.
    private static func compare(_ all: UnsafeBufferPointer<UInt8>, _ a: Range<Int>, _ b: Range<Int>) -> Int {
        var i = a.lowerBound, j = b.lowerBound
        while i < a.upperBound, j < b.upperBound {
            if all[i] != all[j] { return all[i] < all[j] ? -1 : 1 }
            i += 1
            j += 1
        }
        return a.count - b.count
    }

    /// Each line whose first field is `key`, in the text's order, with its four fields (lines of other than four fields
    /// are skipped, as `snapshotEntries`/`snapshotLinks` skip them).
    func forEachLine(startingWith key: String, _ body: (ManifestLines.Field, ManifestLines.Field, ManifestLines.Field, ManifestLines.Field) -> Void) {
        var key = key
        key.withUTF8 { key in
            bytes.withUnsafeBufferPointer { all in
                func compareTo(_ line: Int) -> Int {
                    var i = starts[line], j = 0
                    let end = firstEnds[line]
                    while i < end, j < key.count {
                        if all[i] != key[j] { return all[i] < key[j] ? -1 : 1 }
                        i += 1
                        j += 1
                    }
                    return (end - starts[line]) - key.count
                }
                var low = 0, high = count
                while low < high {
                    let middle = (low + high) / 2
                    if compareTo(order?[middle] ?? middle) < 0 { low = middle + 1 } else { high = middle }
                }
                while low < count {
                    let line = order?[low] ?? low
                    guard compareTo(line) == 0 else { break }
                    if let fields = Self.fields(all, starts[line]..<(starts[line + 1] - 1)) { body(fields.0, fields.1, fields.2, fields.3) }
                    low += 1
                }
            }
        }
    }

    /// Every line with its four fields, in the text's order (other lines skipped).
    func forEach(_ body: (ManifestLines.Field, ManifestLines.Field, ManifestLines.Field, ManifestLines.Field) -> Void) {
        bytes.withUnsafeBufferPointer { all in
            for line in 0..<count {
                if let fields = Self.fields(all, starts[line]..<(starts[line + 1] - 1)) { body(fields.0, fields.1, fields.2, fields.3) }
            }
        }
    }

    /// A line's fields when it has exactly four (three tabs), newline excluded.
    private static func fields(_ all: UnsafeBufferPointer<UInt8>, _ line: Range<Int>)
        -> (ManifestLines.Field, ManifestLines.Field, ManifestLines.Field, ManifestLines.Field)? {
        var tabs = (0, 0, 0), found = 0
        for index in line where all[index] == 9 {
            switch found {
            case 0: tabs.0 = index
            case 1: tabs.1 = index
            case 2: tabs.2 = index
            default: return nil
            }
            found += 1
        }
        guard found == 3 else { return nil }
        return (ManifestLines.Field(rebasing: all[line.lowerBound..<tabs.0]), ManifestLines.Field(rebasing: all[(tabs.0 + 1)..<tabs.1]),
                ManifestLines.Field(rebasing: all[(tabs.1 + 1)..<tabs.2]), ManifestLines.Field(rebasing: all[(tabs.2 + 1)..<line.upperBound]))
    }
}

extension BackupService {
    /// A snapshot's chain of manifests, its full ancestor first: what `state(tenant:snapshot:)` applies in order, read
    /// for some ids at a time.
    struct ManifestChain {
        /// Each snapshot of the chain, oldest first, with its manifest.
        var snapshots: [(id: String, entries: ManifestIndex, links: ManifestIndex)]

        /// The chain up to (and with) the snapshot at `index` alone.
        func prefix(through index: Int) -> ManifestChain { ManifestChain(snapshots: Array(snapshots[...index])) }

        /// The state the chain's last snapshot records, for `ids` alone: each one's entry and outgoing links, as the
        /// whole state (`chainState`) has them.
        func state(of ids: some Sequence<String>) -> State {
            func text(_ bytes: ManifestLines.Field) -> String { String(decoding: bytes, as: UTF8.self) }
            var state = State()
            for id in ids {
                for snapshot in snapshots {
                    snapshot.entries.forEachLine(startingWith: id) { _, kind, digest, deletedAt in
                        state.objects[id] = digest.elementsEqual("-".utf8) ? nil
                            : SnapshotEntry(object: id, kind: ObjectKind(rawValue: text(kind)), digest: text(digest),
                                            deletedAt: deletedAt.isEmpty ? nil : text(deletedAt))
                    }
                    snapshot.links.forEachLine(startingWith: id) { _, relation, target, present in
                        let link = LinkRow(source: id, relation: text(relation), target: text(target))
                        if present.elementsEqual("1".utf8) { state.links.insert(link) } else { state.links.remove(link) }
                    }
                }
            }
            return state
        }

        /// The sources of any link line (added or removed) to one of `targets` in any manifest of the chain: every source
        /// the chain's state links from to one of them is among these.
        func sources(mentioning targets: Set<String>) -> Set<String> {
            guard !targets.isEmpty else { return [] }
            let keys = targets.map { Array($0.utf8) }
            var found: Set<String> = []
            for snapshot in snapshots {
                snapshot.links.forEach { source, _, target, _ in
                    if keys.contains(where: { $0.elementsEqual(target) }) { found.insert(String(decoding: source, as: UTF8.self)) }
                }
            }
            return found
        }

        /// The ids whose entries or outgoing links the snapshots after the first `count` change: nothing else can differ
        /// between the state at the snapshot `count - 1` and the chain's last.
        func touched(after count: Int) -> Set<String> {
            var touched: Set<String> = []
            for snapshot in snapshots.dropFirst(count) {
                snapshot.entries.forEach { object, _, _, _ in touched.insert(String(decoding: object, as: UTF8.self)) }
                snapshot.links.forEach { source, _, _, _ in touched.insert(String(decoding: source, as: UTF8.self)) }
            }
            return touched
        }
    }

    /// The chain of manifests `state(tenant:snapshot:)` applies for snapshot `id`, read as they are stored.
    func manifestChain(tenant: String, snapshot id: String) async throws -> ManifestChain {
        let all = Dictionary(uniqueKeysWithValues: try await snapshots(tenant: tenant).map { ($0.id, $0) })
        var chain: [SnapshotRecord] = []
        var next: String? = id
        while let current = next {
            guard let record = all[current], chain.count <= all.count else {
                throw BackupError.damaged("Snapshot \(current) is missing from the chain of \(id).")
            }
            chain.append(record)
            next = record.parent
        }
        var snapshots: [(id: String, entries: ManifestIndex, links: ManifestIndex)] = []
        for record in chain.reversed() {
            let manifest = try await store.read { tx in try await tx.snapshotManifest(tenant: tenant, snapshot: record.id) }
            snapshots.append((record.id, ManifestIndex(manifest?.entries ?? ""), ManifestIndex(manifest?.links ?? "")))
        }
        return ManifestChain(snapshots: snapshots)
    }
}
