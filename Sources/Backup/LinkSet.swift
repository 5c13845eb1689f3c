public import TesseraCore

/// A state's links, grouped by source: each source's `(relation, target)` ends, sorted and without duplicates.
///
/// A tenant at 100,000 users holds about as many links, from a few thousand sources (groups). The store and the
/// snapshot manifests list links sorted by source, so a state is built with one hash a source rather than a `Set`'s
/// three string hashes a link, and two states are compared source by source with a merge of sorted arrays — a
/// difference report touches only the sources that changed.
public struct LinkSet: Sendable, Equatable, Sequence {
    /// One link's relation and target, ordered as `LinkRow` orders them after the source.
    public struct End: Sendable, Hashable, Comparable {
        public var relation: String
        public var target: String

        public init(relation: String, target: String) {
            self.relation = relation
            self.target = target
        }

        public static func < (a: End, b: End) -> Bool { (a.relation, a.target) < (b.relation, b.target) }
    }

    /// Each source's ends; never an empty array, so that equal sets are equal values.
    private var bySource: [String: [End]] = [:]
    public private(set) var count = 0

    public init() {}

    /// The links of `links`, in any order; runs of one source (as the store lists them) cost one hash.
    public init(_ links: some Sequence<LinkRow>) {
        var source: String?
        var run: [End] = []
        func flush() {
            guard let source, !run.isEmpty else { return }
            bySource[source, default: []].append(contentsOf: run)
            run.removeAll(keepingCapacity: true)
        }
        for link in links {
            if link.source != source {
                flush()
                source = link.source
            }
            run.append(End(relation: link.relation, target: link.target))
        }
        flush()
        count = 0
        for (key, ends) in bySource {
            if !zip(ends, ends.dropFirst()).allSatisfy({ $0 < $1 }) {
                bySource[key] = Self.normalised(ends)
            }
            count += bySource[key]!.count
        }
    }

    private static func normalised(_ ends: [End]) -> [End] {
        var sorted = ends.sorted()
        var kept = 0
        for index in sorted.indices where index == 0 || sorted[index] != sorted[kept - 1] {
            sorted[kept] = sorted[index]
            kept += 1
        }
        sorted.removeSubrange(kept...)
        return sorted
    }

    public var isEmpty: Bool { count == 0 }

    /// The sources with at least one link.
    public var sources: Dictionary<String, [End]>.Keys { bySource.keys }

    /// `source`'s ends, in order (empty when it has none).
    public func ends(from source: String) -> [End] { bySource[source] ?? [] }

    public func contains(_ link: LinkRow) -> Bool {
        guard let ends = bySource[link.source] else { return false }
        let end = End(relation: link.relation, target: link.target)
        let at = Self.insertionIndex(of: end, in: ends)
        return at < ends.count && ends[at] == end
    }

    /// Adds `link`; false when it was there.
    @discardableResult
    public mutating func insert(_ link: LinkRow) -> Bool {
        let end = End(relation: link.relation, target: link.target)
        var ends = bySource.removeValue(forKey: link.source) ?? []
        let at = Self.insertionIndex(of: end, in: ends)
        let isNew = at == ends.count || ends[at] != end
        if isNew {
            ends.insert(end, at: at)
            count += 1
        }
        bySource[link.source] = ends
        return isNew
    }

    /// Removes `link`; false when it was not there.
    @discardableResult
    public mutating func remove(_ link: LinkRow) -> Bool {
        guard var ends = bySource.removeValue(forKey: link.source) else { return false }
        let end = End(relation: link.relation, target: link.target)
        let at = Self.insertionIndex(of: end, in: ends)
        let found = at < ends.count && ends[at] == end
        if found {
            ends.remove(at: at)
            count -= 1
        }
        if !ends.isEmpty { bySource[link.source] = ends }
        return found
    }

    public mutating func formUnion(_ links: some Sequence<LinkRow>) {
        for link in links { insert(link) }
    }

    /// Removes every link from `source`; returns how many there were.
    @discardableResult
    public mutating func removeLinks(from source: String) -> Int {
        let removed = bySource.removeValue(forKey: source)?.count ?? 0
        count -= removed
        return removed
    }

    /// Removes every link whose target is in `targets`; returns the sources that lost one.
    public mutating func removeLinks(to targets: Set<String>) -> Set<String> {
        guard !targets.isEmpty else { return [] }
        var affected: Set<String> = []
        for (source, ends) in bySource {
            let kept = ends.filter { !targets.contains($0.target) }
            guard kept.count != ends.count else { continue }
            affected.insert(source)
            count -= ends.count - kept.count
            bySource[source] = kept.isEmpty ? nil : kept
        }
        return affected
    }

    /// The sources with a link to one of `targets` (nothing is removed).
    public func sources(linkingTo targets: Set<String>) -> Set<String> {
        guard !targets.isEmpty else { return [] }
        var found: Set<String> = []
        for (source, ends) in bySource where ends.contains(where: { targets.contains($0.target) }) { found.insert(source) }
        return found
    }

    /// Every link, sorted as `LinkRow` sorts (by source, relation, target).
    public func sorted() -> [LinkRow] {
        var rows: [LinkRow] = []
        rows.reserveCapacity(count)
        for source in bySource.keys.sorted() {
            for end in bySource[source]! { rows.append(LinkRow(source: source, relation: end.relation, target: end.target)) }
        }
        return rows
    }

    /// The sources whose links differ between `self` and `other`.
    public func differingSources(from other: LinkSet) -> Set<String> {
        var differing: Set<String> = []
        for (source, ends) in bySource where other.bySource[source] != ends { differing.insert(source) }
        for source in other.bySource.keys where bySource[source] == nil { differing.insert(source) }
        return differing
    }

    /// The links `source` has here and not in `old` (added) and in `old` and not here (removed), each in order.
    public func changes(from old: LinkSet, source: String) -> (added: [End], removed: [End]) {
        Self.merge(new: bySource[source] ?? [], old: old.bySource[source] ?? [])
    }

    /// Every link here and not in `old` (added), and in `old` and not here (removed).
    public func changes(from old: LinkSet) -> (added: [LinkRow], removed: [LinkRow]) {
        var added: [LinkRow] = [], removed: [LinkRow] = []
        for source in differingSources(from: old) {
            let (plus, minus) = changes(from: old, source: source)
            added += plus.map { LinkRow(source: source, relation: $0.relation, target: $0.target) }
            removed += minus.map { LinkRow(source: source, relation: $0.relation, target: $0.target) }
        }
        return (added, removed)
    }

    /// A merge of two sorted, duplicate-free arrays: what only `new` has, and what only `old` has.
    static func merge(new: [End], old: [End]) -> (added: [End], removed: [End]) {
        var added: [End] = [], removed: [End] = []
        var i = 0, j = 0
        while i < new.count, j < old.count {
            if new[i] == old[j] {
                i += 1
                j += 1
            } else if new[i] < old[j] {
                added.append(new[i])
                i += 1
            } else {
                removed.append(old[j])
                j += 1
            }
        }
        added += new[i...]
        removed += old[j...]
        return (added, removed)
    }

    private static func insertionIndex(of end: End, in ends: [End]) -> Int {
        var low = 0, high = ends.count
        while low < high {
            let middle = (low + high) / 2
            if ends[middle] < end { low = middle + 1 } else { high = middle }
        }
        return low
    }

    public struct Iterator: IteratorProtocol {
        private var sources: Dictionary<String, [End]>.Iterator
        private var current: (source: String, ends: [End])?
        private var index = 0

        fileprivate init(_ bySource: [String: [End]]) { sources = bySource.makeIterator() }

        public mutating func next() -> LinkRow? {
            while true {
                if let current, index < current.ends.count {
                    defer { index += 1 }
                    let end = current.ends[index]
                    return LinkRow(source: current.source, relation: end.relation, target: end.target)
                }
                guard let (source, ends) = sources.next() else { return nil }
                current = (source, ends)
                index = 0
            }
        }
    }

    /// Every link, in no particular order (`sorted()` gives them in order).
    public func makeIterator() -> Iterator { Iterator(bySource) }

    public var underestimatedCount: Int { count }
}
