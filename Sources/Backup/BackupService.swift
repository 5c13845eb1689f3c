import Foundation
import Crypto
#if canImport(Glibc)
import Glibc
#endif
public import TesseraCore

/// Snapshots of a tenant's critical objects and their links, kept content-addressed.
///
/// A snapshot reads every object in scope as stored (no decoding) and every link of the scoped relations, hashes
/// each object's stored JSON (SHA-256), and keeps a blob per digest it has not kept before. The first snapshot of a
/// tenant records every object and link; each later one records only what differs from its parent, so five daily
/// snapshots at 1% churn cost little more than one. A snapshot's digest covers its whole logical state (every
/// object's digest and every link), so `verify` can check it however it is stored.
public struct BackupService: Sendable {
    public let store: any DirectoryStore
    public let clock: any TimeSource
    /// Snapshots older than this many days are dropped (Entra keeps 5).
    public var retentionDays: Int
    /// Objects (and links) a snapshot reads at a time, and so the most objects in one pack.
    public var batchSize = BackupService.packSize

    public init(store: any DirectoryStore, clock: any TimeSource = SystemTimeSource(), retentionDays: Int = 5) {
        self.store = store
        self.clock = clock
        self.retentionDays = retentionDays
    }

    /// What a snapshot holds: the directory's critical objects (Entra's scope as far as Tessera has them).
    public static let kinds: [ObjectKind] = [
        .user, .group, .application, .servicePrincipal, .appRoleAssignment, .roleAssignment, .authenticationMethodsPolicy,
        .conditionalAccessPolicy, .namedLocation, .authorizationPolicy, .oauth2PermissionGrant, .authenticationStrengthPolicy,
        .crossTenantAccessPolicy, .crossTenantAccessPolicyPartner,
    ]
    /// The links a snapshot holds.
    public static let relations = ["members", "owners"]

    /// A tenant's state at a snapshot (or now): each object's entry, and every link.
    public struct State: Sendable, Equatable {
        public var objects: [String: SnapshotEntry]
        public var links: LinkSet

        public init(objects: [String: SnapshotEntry] = [:], links: LinkSet = LinkSet()) {
            self.objects = objects
            self.links = links
        }

        /// SHA-256 over every object (id, kind, digest, deletion) and link, in order.
        public var digest: String {
            Self.digest(sortedObjects: objects.values.sorted { $0.object < $1.object }, sortedLinks: links.sorted())
        }

        /// The digest of a state whose objects (by id) and links are given in order: one line per object
        /// ("o id kind digest deletedAt", "-" for none) and per link ("l source relation target"), hashed as bytes.
        static func digest(sortedObjects: some Sequence<SnapshotEntry>, sortedLinks: some Sequence<LinkRow>) -> String {
            var hasher = SHA256()
            var line: [UInt8] = []
            line.reserveCapacity(1 << 16)
            func add(_ text: String, then separator: UInt8) {
                line.append(contentsOf: text.utf8)
                line.append(separator)
            }
            func flushIfFull() {
                guard line.count >= 1 << 16 - 512 else { return }
                hasher.update(data: line)
                line.removeAll(keepingCapacity: true)
            }
            let space = UInt8(ascii: " "), newline = UInt8(ascii: "\n")
            for e in sortedObjects {
                line.append(UInt8(ascii: "o")); line.append(space)
                add(e.object, then: space); add(e.kind.rawValue, then: space); add(e.digest ?? "-", then: space); add(e.deletedAt ?? "-", then: newline)
                flushIfFull()
            }
            for link in sortedLinks {
                line.append(UInt8(ascii: "l")); line.append(space)
                add(link.source, then: space); add(link.relation, then: space); add(link.target, then: newline)
                flushIfFull()
            }
            hasher.update(data: line)
            return hex(hasher.finalize())
        }

        static func hex(_ digest: some Sequence<UInt8>) -> String {
            let digits = Array("0123456789abcdef".utf8)
            var out: [UInt8] = []
            out.reserveCapacity(64)
            for byte in digest {
                out.append(digits[Int(byte >> 4)])
                out.append(digits[Int(byte & 0x0f)])
            }
            return String(decoding: out, as: UTF8.self)
        }
    }

    // MARK: Taking snapshots

    /// Reads the tenant's objects and links as they are now from the digests the store keeps beside each object (no
    /// body is read or hashed), and stores the bodies whose digests `known` (the parent's state) lacks as blobs, packed
    /// inside the database so that they never travel to Tessera and back.
    ///
    /// It goes in batches of `batchSize` objects in id order: each batch's new bodies become one pack while the next
    /// batch's digests are read (two packs in flight: PostgreSQL builds each on its own core; on SQLite a reader reads
    /// the next pack's bodies while the one writer stores the last), and each batch's entries become manifest lines as
    /// soon as its pack is stored; links come the same way. What the scan holds at once is a few batches and the
    /// manifest's text, not an object per row of the tenant.
    ///
    /// An object written between the scan and the packing is packed as it is then; it is read again and kept as
    /// that (a snapshot holds each object as it was when read), as is any row the store has no digest for.
    func scanLive(tenant: String, storingBodiesNotIn known: State?) async throws -> Scan {
        let store = self.store, kinds = Self.kinds, batchSize = max(1, self.batchSize)
        async let linkLines = Self.scanLinks(store: store, tenant: tenant, batchSize: batchSize)
        var entries = ManifestLines()
        var done: [Int: ManifestLines] = [:]
        var nextToAppend = 0
        func collect(_ finished: (Int, ManifestLines)) {
            done[finished.0] = finished.1
            while let lines = done.removeValue(forKey: nextToAppend) {
                entries.append(lines)
                nextToAppend += 1
            }
        }
        // With nothing to compare against, a database that can (PostgreSQL) reads each batch and packs its bodies in one
        // statement; the batches' ends come from the primary key alone. (Asked with no kinds, it says whether it can.)
        var packsWhileScanning = false
        if known == nil {
            packsWhileScanning = try await store.write { tx in try await tx.scanAndPack(tenant: tenant, kinds: [], after: nil, through: nil) } != nil
        }
        try await withThrowingTaskGroup(of: (Int, ManifestLines).self) { group in
            var after: String?, index = 0
            repeat {
                try Task.checkCancellation()
                let cursor = after, batch = index
                if packsWhileScanning {
                    let through = try await store.read { tx in try await tx.objectID(tenant: tenant, after: cursor, skipping: batchSize) }
                    try await Self.batchScanned?(index)
                    if index >= 2, let finished = try await group.next() { collect(finished) }
                    group.addTask {
                        let rows = try await store.write { tx in try await tx.scanAndPack(tenant: tenant, kinds: kinds, after: cursor, through: through) } ?? []
                        return (batch, try await Self.finishBatch(store: store, tenant: tenant, kinds: kinds, rows: rows) { _ in true })
                    }
                    after = through
                } else {
                    // With nothing to compare against, every body is new: the batch's pack is read by the same reader
                    // right after its digests, from the table pages that read just brought into its cache.
                    let whole = known == nil
                    let (rows, next, pack) = try await store.read { tx in
                        let (rows, next) = try await tx.objectDigests(tenant: tenant, kinds: kinds, afterId: cursor, limit: batchSize)
                        let ids = whole ? rows.compactMap { $0.digest == nil ? nil : $0.id } : []
                        return (rows, next, ids.isEmpty ? nil : try await tx.readPack(tenant: tenant, ids: ids))
                    }
                    try await Self.batchScanned?(index)
                    let fresh = rows.map { $0.digest != nil && known?.objects[$0.id]?.digest != $0.digest }
                    if index >= 2, let finished = try await group.next() { collect(finished) }
                    group.addTask {
                        (batch, try await Self.storeBatch(store: store, tenant: tenant, kinds: kinds, rows: rows, fresh: fresh, read: pack))
                    }
                    after = next
                }
                index += 1
            } while after != nil
            for try await finished in group { collect(finished) }
        }
        entries.sort()
        var links = try await linkLines
        links.sort()
        return Scan(entries: entries, links: links, digest: Self.digest(entries: entries, links: links))
    }

    /// Stores one batch's new bodies (`fresh[i]`: whether the parent lacks `rows[i]`'s digest) as a pack (`read`: the
    /// pack of those bodies, when already read), re-reads and hashes the rows that changed since their digests were
    /// read or have none, and returns the batch's manifest lines, by id. What the pack holds is told by its index lines,
    /// read as digests of four words each (no `String` a blob).
    static func storeBatch(store: any DirectoryStore, tenant: String, kinds: [ObjectKind], rows: [ObjectDigest], fresh: [Bool],
                           read: PackText? = nil) async throws -> ManifestLines {
        let ids = zip(rows, fresh).compactMap { $1 ? $0.id : nil }
        var stored = PackedDigests()
        if !ids.isEmpty {
            var pack = read
            if pack == nil { pack = try await store.read { tx in try await tx.readPack(tenant: tenant, ids: ids) } }
            if let pack {
                try await store.write { tx in try await tx.putPack(tenant: tenant, pack) }
                stored = PackedDigests(index: pack.index)
            } else {
                stored = PackedDigests(try await store.write { tx in try await tx.packObjects(tenant: tenant, ids: ids) })
            }
        }
        return try await finishBatch(store: store, tenant: tenant, kinds: kinds, rows: rows) { index in
            !fresh[index] || rows[index].digest.map(stored.contains) == true
        }
    }

    /// A batch's manifest lines, by id: its rows whose bodies are kept (`isKept`, by the row's index: stored before, or
    /// by this batch's pack), and the rows that are not or have no digest, read again, hashed and stored as blobs.
    static func finishBatch(store: any DirectoryStore, tenant: String, kinds: [ObjectKind], rows: [ObjectDigest],
                            isKept: (Int) -> Bool) async throws -> ManifestLines {
        var again: [String] = []
        for (index, row) in rows.enumerated() where row.digest == nil || !isKept(index) { again.append(row.id) }
        var lines = ManifestLines()
        if again.isEmpty {
            // Every row as read (the store gives them by id): straight into lines, no entry made a row.
            for row in rows { lines.append(row.id, row.kind.rawValue, row.digest ?? "-", row.deletedAt ?? "") }
            if lines.isSorted { return lines }
            lines = ManifestLines()
        }
        var entries: [SnapshotEntry] = []
        entries.reserveCapacity(rows.count)
        for (index, row) in rows.enumerated() {
            guard let digest = row.digest, isKept(index) else { continue }
            entries.append(SnapshotEntry(object: row.id, kind: row.kind, digest: digest, deletedAt: row.deletedAt))
        }
        if !again.isEmpty {
            let reread = again
            var blobs: [(digest: String, body: String)] = []
            for row in try await store.read({ tx in try await tx.rawObjects(tenant: tenant, ids: reread) }) where kinds.contains(row.kind) {
                var body = row.body
                let digest = State.hex(body.withUTF8 { SHA256.hash(data: UnsafeRawBufferPointer($0)) })
                entries.append(SnapshotEntry(object: row.id, kind: row.kind, digest: digest, deletedAt: row.deletedAt))
                blobs.append((digest, row.body))
            }
            let batch = blobs
            try await store.write { tx in try await tx.putBlobs(tenant: tenant, batch) }
        }
        if !zip(entries, entries.dropFirst()).allSatisfy({ $0.object < $1.object }) { sortByObject(&entries) }
        for entry in entries { lines.append(entry.object, entry.kind.rawValue, entry.digest ?? "-", entry.deletedAt ?? "") }
        return lines
    }

    /// The tenant's links of `relations` as manifest lines, read in batches.
    static func scanLinks(store: any DirectoryStore, tenant: String, batchSize: Int) async throws -> ManifestLines {
        var lines = ManifestLines()
        var after: LinkRow?
        while true {
            try Task.checkCancellation()
            let cursor = after
            let batch = try await store.read { tx in try await tx.links(tenant: tenant, relations: Self.relations, after: cursor, limit: batchSize) }
            for link in batch { lines.append(link.source, link.relation, link.target, "1") }
            guard batch.count == batchSize, let last = batch.last else { return lines }
            after = last
        }
    }

    /// The digest of a scanned state (`State.digest`'s lines, from the manifest's sorted lines).
    static func digest(entries: ManifestLines, links: ManifestLines) -> String {
        var hasher = SHA256()
        var line: [UInt8] = []
        line.reserveCapacity(1 << 16)
        let space = UInt8(ascii: " "), newline = UInt8(ascii: "\n"), dash = UInt8(ascii: "-")
        func flushIfFull() {
            guard line.count >= 1 << 16 - 512 else { return }
            hasher.update(data: line)
            line.removeAll(keepingCapacity: true)
        }
        entries.forEach { object, kind, digest, deletedAt in
            line.append(UInt8(ascii: "o")); line.append(space)
            line.append(contentsOf: object); line.append(space)
            line.append(contentsOf: kind); line.append(space)
            line.append(contentsOf: digest); line.append(space)
            if deletedAt.isEmpty { line.append(dash) } else { line.append(contentsOf: deletedAt) }
            line.append(newline)
            flushIfFull()
        }
        links.forEach { source, relation, target, _ in
            line.append(UInt8(ascii: "l")); line.append(space)
            line.append(contentsOf: source); line.append(space)
            line.append(contentsOf: relation); line.append(space)
            line.append(contentsOf: target); line.append(newline)
            flushIfFull()
        }
        hasher.update(data: line)
        return State.hex(hasher.finalize())
    }

    /// For tests: awaited after each batch of object digests is read (with the batch's number, from 0), so a test can
    /// cancel a snapshot mid-way.
    @TaskLocal static var batchScanned: (@Sendable (Int) async throws -> Void)?

    /// Sorts entries by object id as `String`'s `<` orders them, deciding most pairs by the ids' first eight bytes read
    /// as one number (the same order for ASCII) instead of comparing the strings: at 100,000 entries the comparisons
    /// were most of a SQLite snapshot's sorting time.
    static func sortByObject(_ entries: inout [SnapshotEntry]) {
        /// The first eight bytes, big-endian, zero-padded; nil when one of them is not ASCII (then the strings decide).
        func prefix(_ id: String) -> UInt64? {
            var key: UInt64 = 0, count = 0
            for byte in id.utf8.prefix(8) {
                guard byte < 0x80 else { return nil }
                key = key << 8 | UInt64(byte)
                count += 1
            }
            return count == 8 ? key : key << UInt64(8 * (8 - count))
        }
        var keyed = entries.map { (key: prefix($0.object), entry: $0) }
        keyed.sort { a, b in
            if let x = a.key, let y = b.key, x != y { return x < y }
            return a.entry.object < b.entry.object
        }
        entries = keyed.map(\.entry)
    }

    /// What a snapshot read: every object's entry and every link as manifest lines in order, and the digest of that
    /// state.
    struct Scan {
        var entries: ManifestLines
        var links: ManifestLines
        var digest: String

        /// The state as `State` (an object per entry and link): for comparing with a parent's.
        var state: State {
            var objects: [String: SnapshotEntry] = [:]
            objects.reserveCapacity(entries.count)
            entries.forEach { object, kind, digest, deletedAt in
                let id = String(decoding: object, as: UTF8.self)
                objects[id] = SnapshotEntry(object: id, kind: ObjectKind(rawValue: String(decoding: kind, as: UTF8.self)),
                                            digest: digest.elementsEqual("-".utf8) ? nil : String(decoding: digest, as: UTF8.self),
                                            deletedAt: deletedAt.isEmpty ? nil : String(decoding: deletedAt, as: UTF8.self))
            }
            var rows: [LinkRow] = []
            rows.reserveCapacity(links.count)
            links.forEach { source, relation, target, _ in
                rows.append(LinkRow(source: String(decoding: source, as: UTF8.self), relation: String(decoding: relation, as: UTF8.self),
                                    target: String(decoding: target, as: UTF8.self)))
            }
            return State(objects: objects, links: LinkSet(rows))
        }
    }

    /// Objects packed into one blob pack.
    static let packSize = 2000

    /// Reads the tenant's objects and links as they are now, hashing each object's stored JSON (what the store's
    /// digests must agree with), with the bodies by digest.
    func readLive(tenant: String) async throws -> (State, [(digest: String, body: String)]) {
        let store = self.store, kinds = Self.kinds, relations = Self.relations
        async let linkRows = store.read { tx in try await tx.allLinks(tenant: tenant, relations: relations, sources: nil) }
        var objects: [String: SnapshotEntry] = [:]
        var bodies: [(digest: String, body: String)] = []
        var cursor: String?
        repeat {
            let after = cursor
            let rows = try await store.read { tx in try await tx.rawObjects(tenant: tenant, kinds: kinds, afterId: after, limit: Self.packSize) }
            for row in rows {
                var body = row.body
                let digest = State.hex(body.withUTF8 { SHA256.hash(data: UnsafeRawBufferPointer($0)) })
                objects[row.id] = SnapshotEntry(object: row.id, kind: row.kind, digest: digest, deletedAt: row.deletedAt)
                bodies.append((digest, row.body))
            }
            cursor = rows.count == Self.packSize ? rows.last?.id : nil
        } while cursor != nil
        return (State(objects: objects, links: LinkSet(try await linkRows)), bodies)
    }

    /// Takes a snapshot of the tenant now. A snapshot cancelled or failed part way leaves no snapshot: its record and
    /// manifest are written in one transaction at the end (packs already stored stay unreferenced until retention).
    @discardableResult
    public func snapshot(tenant: String) async throws -> SnapshotRecord {
        defer { Self.trimMemory() }
        let sequence = try await store.read { tx in try await tx.latestSequence(tenant: tenant) }
        let existing = try await snapshots(tenant: tenant)
        let parent = existing.last
        var parentState: State?
        if let parent { parentState = try await state(tenant: tenant, snapshot: parent.id) }
        var scan = try await scanLive(tenant: tenant, storingBodiesNotIn: parentState)
        var record = SnapshotRecord(
            tenant: tenant, id: Identifier.makeTimeOrdered(at: clock.now), createdAt: Timestamp.format(clock.now), sequence: sequence,
            parent: parent?.id, digest: scan.digest, objectCount: scan.entries.count, linkCount: scan.links.count,
            changedObjects: scan.entries.count)
        if let parentState {
            let (entries, links) = Self.changes(from: parentState, to: scan)
            record.changedObjects = entries.count
            let written = record
            try await store.write { [entries] tx in try await tx.insertSnapshot(written, entries: entries, links: links) }
        } else {
            // A full snapshot's manifest is the scan's lines as they are: no object per entry is made.
            let entryLines = scan.entries.takeText(), linkLines = scan.links.takeText()
            let written = record
            try await store.write { tx in try await tx.insertSnapshot(written, entryLines: entryLines, linkLines: linkLines) }
        }
        try await store.write { tx in try await tx.releaseMemory() }
        return record
    }

    /// What an incremental snapshot records: the entries that differ from the parent's state (a removed object's with no
    /// digest) and the links added and removed since, found from the scan's lines as they are (no second `State`).
    static func changes(from parent: State, to scan: Scan) -> (entries: [SnapshotEntry], links: [SnapshotLink]) {
        func text(_ bytes: ManifestLines.Field) -> String { String(decoding: bytes, as: UTF8.self) }
        var entries: [SnapshotEntry] = []
        var matched = 0
        scan.entries.forEach { object, kind, digest, deletedAt in
            let id = text(object)
            if let old = parent.objects[id] {
                matched += 1
                if old.kind.rawValue.utf8.elementsEqual(kind), (old.digest ?? "-").utf8.elementsEqual(digest),
                   (old.deletedAt ?? "").utf8.elementsEqual(deletedAt) { return }
            }
            entries.append(SnapshotEntry(object: id, kind: ObjectKind(rawValue: text(kind)), digest: digest.elementsEqual("-".utf8) ? nil : text(digest),
                                         deletedAt: deletedAt.isEmpty ? nil : text(deletedAt)))
        }
        if matched < parent.objects.count {
            for (id, old) in parent.objects where !scan.entries.containsLine(startingWith: Array(id.utf8)) {
                entries.append(SnapshotEntry(object: id, kind: old.kind, digest: nil, deletedAt: nil))
            }
        }
        // Links source by source: the scan's lines come sorted, so each source's ends are a sorted run to merge with the
        // parent's.
        var links: [SnapshotLink] = []
        var seen: Set<String> = []
        var source: String?, run: [LinkSet.End] = []
        func flush() {
            guard let source else { return }
            seen.insert(source)
            let (added, removed) = LinkSet.merge(new: run, old: parent.links.ends(from: source))
            links += added.map { SnapshotLink(link: LinkRow(source: source, relation: $0.relation, target: $0.target), present: true) }
            links += removed.map { SnapshotLink(link: LinkRow(source: source, relation: $0.relation, target: $0.target), present: false) }
            run.removeAll(keepingCapacity: true)
        }
        scan.links.forEach { from, relation, target, _ in
            if source.map({ $0.utf8.elementsEqual(from) }) != true {
                flush()
                source = text(from)
            }
            run.append(LinkSet.End(relation: text(relation), target: text(target)))
        }
        flush()
        for link in parent.links where !seen.contains(link.source) { links.append(SnapshotLink(link: link, present: false)) }
        return (entries, links)
    }

    /// Gives the C allocator's free pages back to the system: a snapshot frees tens of megabytes in many small blocks
    /// across threads' arenas, which glibc keeps resident otherwise.
    static func trimMemory() {
        #if canImport(Glibc)
        typealias Trim = @convention(c) (Int) -> Int32
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") {
            _ = unsafeBitCast(symbol, to: Trim.self)(0)
        }
        #endif
    }

    /// The tenant's snapshots, oldest first.
    public func snapshots(tenant: String) async throws -> [SnapshotRecord] {
        try await store.read { tx in try await tx.snapshots(tenant: tenant) }
    }

    /// The snapshot with this id, or a Graph 404.
    public func snapshot(tenant: String, id: String) async throws -> SnapshotRecord {
        guard let found = try await snapshots(tenant: tenant).first(where: { $0.id == id.lowercased() }) else {
            throw DirectoryError.notFound(id)
        }
        return found
    }

    /// The state a snapshot records: its full ancestor with every later change applied, in order. With `known`
    /// (an ancestor's state), only the changes after that ancestor are read.
    public func state(tenant: String, snapshot id: String, from known: (id: String, state: State)? = nil) async throws -> State {
        try await chainState(tenant: tenant, snapshot: id, from: known).state
    }

    /// The state a snapshot records, and when it was built from `known`, the ids whose entries or outgoing links the
    /// changes since touched (nothing else can differ from `known`); nil when `known` is not its ancestor.
    func chainState(tenant: String, snapshot id: String, from known: (id: String, state: State)?) async throws -> (state: State, touched: Set<String>?) {
        var touched: Set<String> = []
        var fromKnown = false
        let all = Dictionary(uniqueKeysWithValues: try await snapshots(tenant: tenant).map { ($0.id, $0) })
        var chain: [SnapshotRecord] = []
        var next: String? = id
        var state = State()
        while let current = next {
            if let known, current == known.id {
                state = known.state
                fromKnown = true
                break
            }
            guard let record = all[current], chain.count <= all.count else {
                throw BackupError.damaged("Snapshot \(current) is missing from the chain of \(id).")
            }
            chain.append(record)
            next = record.parent
        }
        for record in chain.reversed() {
            let (entries, links) = try await store.read { tx in
                (try await tx.snapshotEntries(tenant: tenant, snapshot: record.id), try await tx.snapshotLinks(tenant: tenant, snapshot: record.id))
            }
            if state.objects.isEmpty { state.objects.reserveCapacity(entries.count) }
            for entry in entries { state.objects[entry.object] = entry.digest == nil ? nil : entry }
            if state.links.isEmpty, links.allSatisfy(\.present) {
                // A full snapshot (the chain's first): its links come sorted by source, one hash a source.
                state.links = LinkSet(links.lazy.map(\.link))
            } else {
                for link in links {
                    if link.present { state.links.insert(link.link) } else { state.links.remove(link.link) }
                }
            }
            if fromKnown {
                for entry in entries { touched.insert(entry.object) }
                for link in links { touched.insert(link.link.source) }
            }
        }
        return (state, fromKnown ? touched : nil)
    }

    /// The state now, from a snapshot's state and the change log since: only the objects written since are read
    /// again (and the links of those that are link sources). Every write to the objects in scope goes through the
    /// directory service and its change log; the next snapshot, which reads everything, is the ground truth.
    public func liveState(tenant: String, since record: SnapshotRecord, base: State) async throws -> (State, [String: String]) {
        let (state, bodies, _) = try await liveChanges(tenant: tenant, since: record, base: base)
        return (state, bodies)
    }

    /// The state now as `liveState(tenant:since:base:)` builds it, and the ids whose entries or outgoing links may
    /// differ from `base` (nothing else can). With `onlyTouched`, the state holds only those ids' entries and outgoing
    /// links (each as the whole state would have it), and `base` is not copied: what a report compares.
    ///
    /// `log`: the change log since `record` as `changeLog(tenant:since:)` read it, when the caller has it. With
    /// `onlyTouched`, `base` need only hold the entries and outgoing links of the ids the log names and of the sources
    /// that link to an object it purges (each as the whole state has them).
    func liveChanges(tenant: String, since record: SnapshotRecord, base: State, onlyTouched: Bool = false,
                     log: (changed: Set<String>, purged: Set<String>)? = nil) async throws -> (state: State, bodies: [String: String], touched: Set<String>) {
        let (changed, purged): (Set<String>, Set<String>)
        if let log { (changed, purged) = log } else { (changed, purged) = try await changeLog(tenant: tenant, since: record) }
        // A whole state is `base` with these changes made; a state of the touched ids alone starts empty (copying a
        // 100,000-entry base to change a few thousand entries was a tenth of a report).
        var state = onlyTouched ? State() : base
        var bodies: [String: String] = [:]
        let ids = Array(changed)
        let rows = try await store.read { tx in try await tx.rawObjects(tenant: tenant, ids: ids) }
        var seen: Set<String> = []
        for row in rows where Self.kinds.contains(row.kind) {
            let digest = row.digest ?? State.hex(SHA256.hash(data: Array(row.body.utf8)))
            state.objects[row.id] = SnapshotEntry(object: row.id, kind: row.kind, digest: digest, deletedAt: row.deletedAt)
            bodies[digest] = row.body
            seen.insert(row.id)
        }
        for id in changed where !seen.contains(id) { state.objects[id] = nil }
        // Links: those of every changed source as they are now; none to or from a purged object.
        var touched = changed.union(purged)
        if onlyTouched {
            // The sources that lose links to purged objects keep the rest of theirs; every touched id that did not
            // change keeps its entry.
            let losing = base.links.sources(linkingTo: purged).subtracting(touched)
            for source in losing {
                for end in base.links.ends(from: source) where !purged.contains(end.target) {
                    state.links.insert(LinkRow(source: source, relation: end.relation, target: end.target))
                }
            }
            touched.formUnion(losing)
            for id in touched where !changed.contains(id) { state.objects[id] = base.objects[id] }
        } else {
            for source in touched { state.links.removeLinks(from: source) }
            touched.formUnion(state.links.removeLinks(to: purged))
        }
        let present = Array(changed.intersection(seen))
        state.links.formUnion(try await store.read { tx in try await tx.allLinks(tenant: tenant, relations: Self.relations, sources: present) })
        return (state, bodies, touched)
    }

    /// The ids of the objects in scope the change log names since `record` (written, deleted, restored, purged), and
    /// the ids of any kind it purges.
    func changeLog(tenant: String, since record: SnapshotRecord) async throws -> (changed: Set<String>, purged: Set<String>) {
        var changed: Set<String> = []
        var purged: Set<String> = []
        var after = record.sequence
        while true {
            let cursor = after
            let page = try await store.read { tx in try await tx.changes(tenant: tenant, kinds: nil, after: cursor, limit: 5000) }
            for change in page {
                if Self.kinds.contains(change.kind) { changed.insert(change.objectId) }
                if change.operation == "purge" { purged.insert(change.objectId) }
            }
            guard page.count == 5000, let last = page.last else { break }
            after = last.seq
        }
        return (changed, purged)
    }

    /// The live state, read whole, for reports against now.
    public func liveState(tenant: String) async throws -> (State, [String: String]) {
        let (state, bodies) = try await readLive(tenant: tenant)
        return (state, Dictionary(bodies.map { ($0.digest, $0.body) }, uniquingKeysWith: { a, _ in a }))
    }

    // MARK: Checking

    /// One thing `verify` found wrong.
    public struct Problem: Sendable, Hashable {
        public var snapshot: String?
        public var message: String
    }

    /// Checks every snapshot of the tenant: its recorded digest against its reconstructed state, and every blob it
    /// references against its own digest. Returns what is wrong (nothing: all sound) and how many blobs were read.
    public func verify(tenant: String, progress: (@Sendable (Int, Int) -> Void)? = nil) async throws -> (problems: [Problem], blobs: Int) {
        var problems: [Problem] = []
        var checked: Set<String> = []
        let records = try await snapshots(tenant: tenant)
        for (index, record) in records.enumerated() {
            progress?(index, records.count)
            let state: State
            do {
                state = try await self.state(tenant: tenant, snapshot: record.id)
            } catch let error as BackupError {
                problems.append(Problem(snapshot: record.id, message: error.description))
                continue
            }
            if state.digest != record.digest {
                problems.append(Problem(snapshot: record.id, message: "Its entries do not match its digest: the snapshot was altered."))
            }
            let wanted = Set(state.objects.values.compactMap(\.digest)).subtracting(checked)
            let found = try await store.read { tx in try await tx.blobs(tenant: tenant, digests: Array(wanted)) }
            for digest in wanted.sorted() {
                guard let body = found[digest] else {
                    problems.append(Problem(snapshot: record.id, message: "Blob \(digest) is missing."))
                    continue
                }
                if State.hex(SHA256.hash(data: Array(body.utf8))) != digest {
                    problems.append(Problem(snapshot: record.id, message: "Blob \(digest) does not match its digest: it was altered."))
                }
            }
            checked.formUnion(wanted)
        }
        progress?(records.count, records.count)
        return (problems, checked.count)
    }

    // MARK: The tenant's plan

    /// Whether backups are part of the tenant's plan (Entra needs P1 or P2): on unless an operator turned them off.
    public func isEnabled(tenant: String) async throws -> Bool {
        try await store.read { tx in try await tx.setting(tenant: tenant, key: "backup") }?["enabled"]?.boolValue ?? true
    }

    /// Turns daily snapshots, reports and recoveries on or off for the tenant; snapshots already taken are kept
    /// until their retention ends.
    public func setEnabled(tenant: String, _ enabled: Bool) async throws {
        try await store.write { tx in try await tx.putSetting(tenant: tenant, key: "backup", value: ["enabled": .bool(enabled)]) }
    }

    // MARK: Schedule and retention

    /// The daily job for one tenant: a snapshot unless one was taken today (UTC), then retention. On a cluster the
    /// day is claimed once (a single-use key), so one node takes it. Returns the snapshot taken, if any.
    @discardableResult
    public func daily(tenant: String) async throws -> SnapshotRecord? {
        guard try await isEnabled(tenant: tenant) else {
            try await applyRetention(tenant: tenant)
            return nil
        }
        let now = clock.now
        let day = String(Timestamp.format(now).prefix(10))
        if try await snapshots(tenant: tenant).last.map({ $0.createdAt.hasPrefix(day) }) == true {
            try await applyRetention(tenant: tenant)
            return nil
        }
        // A node that dies mid-snapshot leaves the claim; it lapses after an hour and another node takes the day. One
        // cancelled mid-snapshot (a graceful shutdown's timeout) releases it, so another node takes it at its next sweep.
        let key = "backup-day:\(day):\(Int(now.timeIntervalSince1970) / 3600)"
        let claimed = try await store.write { tx in
            try await tx.consumeOnce(tenant: tenant, key: key, expiresAt: Timestamp.format(now.addingTimeInterval(7200)), now: Timestamp.format(now))
        }
        guard claimed else { return nil }
        let taken: SnapshotRecord
        do {
            try await Self.dayClaimed?()
            taken = try await snapshot(tenant: tenant)
        } catch {
            if Task.isCancelled || error is CancellationError {
                let store = store
                try? await Task { try await store.write { tx in try await tx.release(tenant: tenant, key: key) } }.value
            }
            throw error
        }
        try await applyRetention(tenant: tenant)
        return taken
    }

    /// For tests: awaited by ``daily(tenant:)`` once it has claimed the day and before it takes the snapshot, so a
    /// test can stop a node mid-snapshot at that point.
    @TaskLocal static var dayClaimed: (@Sendable () async throws -> Void)?

    /// Drops snapshots older than `retentionDays`. The oldest kept snapshot becomes a full one first (its state
    /// written out whole), so nothing it needs goes; then blobs no snapshot references are deleted.
    public func applyRetention(tenant: String) async throws {
        let cutoff = Timestamp.format(clock.now.addingTimeInterval(-Double(retentionDays) * 86_400))
        var records = try await snapshots(tenant: tenant)
        while let oldest = records.first, oldest.createdAt < cutoff {
            if records.count > 1 {
                var child = records[1]
                if child.parent == oldest.id {
                    let state = try await self.state(tenant: tenant, snapshot: child.id)
                    child.parent = nil
                    let folded = child
                    try await store.write { tx in
                        try await tx.replaceSnapshot(folded, entries: Array(state.objects.values),
                                                     links: state.links.map { SnapshotLink(link: $0, present: true) })
                    }
                }
            }
            _ = try await store.write { tx in try await tx.deleteSnapshot(tenant: tenant, id: oldest.id) }
            records.removeFirst()
        }
    }
}

/// A backup that cannot be used as it is.
public enum BackupError: Error, Sendable, CustomStringConvertible {
    case damaged(String)

    public var description: String {
        switch self {
        case .damaged(let message): "The snapshot is damaged: \(message)"
        }
    }
}
