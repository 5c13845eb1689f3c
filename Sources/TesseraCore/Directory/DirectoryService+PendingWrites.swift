/// One write of a batch, held over its transaction until every check of it has passed: the savepoint the store
/// does not have. Reads go to the transaction as this write has changed it so far (its objects, unique keys and
/// links); writes are checked as the store would check them (a key another object holds, a stale version, a link
/// that exists) and kept; `play()` replays them into the transaction in order.
///
/// Queries (`query`, `count`) and the backup and settings reads see the transaction without this write's own changes:
/// the directory's rules query only before they write.
actor PendingWrites: DirectoryTransaction {
    private let base: any DirectoryTransaction
    /// Objects this write inserted or changed (nil: purged).
    private var objects: [ObjectRef: StoredObject?] = [:]
    /// Unique keys this write claimed (its holder) or released (nil).
    private var keys: [KeyRef: String?] = [:]
    /// Links this write added (true) or removed (false).
    private var links: [LinkRef: Bool] = [:]
    private var writes: [@Sendable (any DirectoryTransaction) async throws -> Void] = []
    /// Create requirements (a user's UPN domain) found met in the transaction by this write or an earlier one of the
    /// batch: a batch of users in one domain reads the domain once, not once a user.
    private var met: Set<MetRequirement>

    private struct ObjectRef: Hashable { var tenant, id: String }
    private struct KeyRef: Hashable { var tenant: String, key: UniqueKey }
    private struct LinkRef: Hashable { var tenant, source, relation, target: String }

    /// A create requirement of a tenant that held when it was read from the batch's transaction.
    struct MetRequirement: Hashable, Sendable {
        var tenant: String
        var requirement: CreateRequirement
    }

    /// - Parameter met: what the batch's earlier writes left known (`requirementsMet`).
    init(_ base: any DirectoryTransaction, met: Set<MetRequirement> = []) {
        self.base = base
        self.met = met
    }

    /// The requirements known met, for the batch's next write: all but those on an object this write changed (it may
    /// have unverified or deleted the domain). A write that failed changed nothing in the transaction, and what it read
    /// there holds as well.
    var requirementsMet: Set<MetRequirement> {
        met.filter { !holdsChange(tenant: $0.tenant, id: $0.requirement.id) }
    }

    /// Whether this write holds a change of the object (ids compared without case, as the store compares them).
    private func holdsChange(tenant: String, id: String) -> Bool {
        objects.keys.contains { $0.tenant == tenant && $0.id.lowercased() == id.lowercased() }
    }

    /// Change-log records of this write, held apart from its other writes: `play()` hands them back, so a batch writes
    /// all of its writes' records at once.
    private var changes: [ChangeRecord] = []

    /// Plays the held writes into the transaction; returns the write's change-log records, which the caller records.
    func play() async throws -> [ChangeRecord] {
        for write in writes { try await write(base) }
        writes.removeAll()
        defer { changes.removeAll() }
        return changes
    }

    // MARK: Objects

    func object(tenant: String, id: String) async throws -> StoredObject? {
        if let held = objects[ObjectRef(tenant: tenant, id: id)] { return held }
        return try await base.object(tenant: tenant, id: id)
    }

    func objects(tenant: String, ids: [String]) async throws -> [StoredObject] {
        let unheld = ids.filter { objects[ObjectRef(tenant: tenant, id: $0)] == nil }
        let read = Dictionary(try await base.objects(tenant: tenant, ids: unheld).map { ($0.id, $0) }) { first, _ in first }
        return ids.compactMap { id in objects[ObjectRef(tenant: tenant, id: id)] ?? read[id] }
    }

    func insert(_ object: StoredObject) async throws {
        objects[ObjectRef(tenant: object.tenant, id: object.id)] = .some(object)
        writes.append { try await $0.insert(object) }
    }

    func update(_ object: StoredObject, expectedVersion: Int64) async throws {
        guard try await self.object(tenant: object.tenant, id: object.id)?.version == expectedVersion else {
            throw DirectoryError(.conflict, "The object was changed by another request; read it again and retry.")
        }
        objects[ObjectRef(tenant: object.tenant, id: object.id)] = .some(object)
        writes.append { try await $0.update(object, expectedVersion: expectedVersion) }
    }

    func purge(tenant: String, id: String) async throws {
        objects[ObjectRef(tenant: tenant, id: id)] = .some(nil)
        writes.append { try await $0.purge(tenant: tenant, id: id) }
    }

    /// `create` once its requirement holds: read through this write (as `DirectoryWriter.create(_:keys:change:requiring:)`
    /// reads it) unless an earlier write of the batch found it met and no write since changed that object. The batch's
    /// writes run in one transaction, so only its own writes change what the read saw (on PostgreSQL, under READ
    /// COMMITTED, a commit elsewhere may change it between statements; the read holds no lock either way).
    func create(_ object: StoredObject, keys: [UniqueKey], change: ChangeRecord, requiring requirement: CreateRequirement) async throws {
        let known = MetRequirement(tenant: object.tenant, requirement: requirement)
        let changed = holdsChange(tenant: object.tenant, id: requirement.id)
        if changed || !met.contains(known) {
            try await requirement.check(tenant: object.tenant, in: self)
            if !changed { met.insert(known) }
        }
        try await create(object, keys: keys, change: change)
    }

    // MARK: Unique keys

    func claim(tenant: String, object: String, keys claimed: [UniqueKey]) async throws {
        // The keys this write has not touched are read together (one statement for an object's keys).
        let stored = try await base.holders(tenant: tenant, of: claimed.filter { keys[KeyRef(tenant: tenant, key: $0)] == nil })
        for key in claimed {
            let holder = keys[KeyRef(tenant: tenant, key: key)] ?? stored[key]
            if let holder, holder != object { throw key.conflictError }
        }
        for key in claimed { keys[KeyRef(tenant: tenant, key: key)] = .some(object) }
        writes.append { try await $0.claim(tenant: tenant, object: object, keys: claimed) }
    }

    func release(tenant: String, object: String, keys released: [UniqueKey]) async throws {
        for key in released where try await holder(tenant: tenant, key: key) == object {
            keys[KeyRef(tenant: tenant, key: key)] = .some(nil)
        }
        writes.append { try await $0.release(tenant: tenant, object: object, keys: released) }
    }

    func holder(tenant: String, key: UniqueKey) async throws -> String? {
        if let held = keys[KeyRef(tenant: tenant, key: key)] { return held }
        return try await base.holder(tenant: tenant, key: key)
    }

    // MARK: Links

    private func linked(_ link: LinkRef) async throws -> Bool {
        if let held = links[link] { return held }
        // A target's sources are few (a user's groups); a group's targets may be many.
        return try await base.sources(tenant: link.tenant, target: link.target, relation: link.relation).contains(link.source)
    }

    func link(tenant: String, source: String, relation: String, target: String) async throws -> Bool {
        let link = LinkRef(tenant: tenant, source: source, relation: relation, target: target)
        guard try await !linked(link) else { return false }
        links[link] = true
        writes.append { try await $0.link(tenant: tenant, source: source, relation: relation, target: target) }
        return true
    }

    func unlink(tenant: String, source: String, relation: String, target: String) async throws -> Bool {
        let link = LinkRef(tenant: tenant, source: source, relation: relation, target: target)
        guard try await linked(link) else { return false }
        links[link] = false
        writes.append { try await $0.unlink(tenant: tenant, source: source, relation: relation, target: target) }
        return true
    }

    func targets(tenant: String, source: String, relation: String) async throws -> [String] {
        overlaid(try await base.targets(tenant: tenant, source: source, relation: relation), end: \.target) {
            $0.tenant == tenant && $0.source == source && $0.relation == relation
        }
    }

    func sources(tenant: String, target: String, relation: String) async throws -> [String] {
        overlaid(try await base.sources(tenant: tenant, target: target, relation: relation), end: \.source) {
            $0.tenant == tenant && $0.target == target && $0.relation == relation
        }
    }

    /// Stored link ends with the held links that `matches` over them: removed ones gone, added ones at the end.
    private func overlaid(_ stored: [String], end: KeyPath<LinkRef, String>, matches: (LinkRef) -> Bool) -> [String] {
        var out = stored
        for (link, added) in links where matches(link) {
            out.removeAll { $0 == link[keyPath: end] }
            if added { out.append(link[keyPath: end]) }
        }
        return out
    }

    // MARK: The change log

    /// Held apart from the other writes (see `play()`): the sequence is taken when the batch records them, so this returns 0.
    func record(_ change: ChangeRecord) async throws -> Int64 {
        changes.append(change)
        return 0
    }

    func changes(tenant: String, kinds: [ObjectKind]?, after seq: Int64, limit: Int) async throws -> [ChangeRecord] {
        try await base.changes(tenant: tenant, kinds: kinds, after: seq, limit: limit)
    }

    func latestSequence(tenant: String) async throws -> Int64 { try await base.latestSequence(tenant: tenant) }

    // MARK: Reads that see the transaction as it was

    func tenant(_ idOrDomain: String) async throws -> TenantRecord? { try await base.tenant(idOrDomain) }
    func tenants() async throws -> [TenantRecord] { try await base.tenants() }
    func query(_ query: ObjectQuery) async throws -> [StoredObject] { try await base.query(query) }
    func count(_ query: ObjectQuery) async throws -> Int { try await base.count(query) }
    func setting(tenant: String, key: String) async throws -> JSONValue? { try await base.setting(tenant: tenant, key: key) }
    func settings(key: String) async throws -> [(tenant: String, value: JSONValue)] { try await base.settings(key: key) }
    func rawObjects(tenant: String, kinds: [ObjectKind], afterId: String?, limit: Int) async throws -> [RawObject] {
        try await base.rawObjects(tenant: tenant, kinds: kinds, afterId: afterId, limit: limit)
    }
    func rawObjects(tenant: String, ids: [String]) async throws -> [RawObject] { try await base.rawObjects(tenant: tenant, ids: ids) }
    func allLinks(tenant: String, relations: [String], sources: [String]?) async throws -> [LinkRow] {
        try await base.allLinks(tenant: tenant, relations: relations, sources: sources)
    }
    func objectDigests(tenant: String, kinds: [ObjectKind]) async throws -> [ObjectDigest] {
        try await base.objectDigests(tenant: tenant, kinds: kinds)
    }
    func objectDigests(tenant: String, kinds: [ObjectKind], afterId: String?, limit: Int) async throws -> (rows: [ObjectDigest], next: String?) {
        try await base.objectDigests(tenant: tenant, kinds: kinds, afterId: afterId, limit: limit)
    }
    func links(tenant: String, relations: [String], after: LinkRow?, limit: Int) async throws -> [LinkRow] {
        try await base.links(tenant: tenant, relations: relations, after: after, limit: limit)
    }
    func objectID(tenant: String, after afterId: String?, skipping count: Int) async throws -> String? {
        try await base.objectID(tenant: tenant, after: afterId, skipping: count)
    }
    func readPack(tenant: String, ids: [String]) async throws -> PackText? {
        try await base.readPack(tenant: tenant, ids: ids)
    }
    func blobs(tenant: String, digests: [String]) async throws -> [String: String] { try await base.blobs(tenant: tenant, digests: digests) }
    func snapshots(tenant: String) async throws -> [SnapshotRecord] { try await base.snapshots(tenant: tenant) }
    func snapshotEntries(tenant: String, snapshot: String) async throws -> [SnapshotEntry] {
        try await base.snapshotEntries(tenant: tenant, snapshot: snapshot)
    }
    func snapshotLinks(tenant: String, snapshot: String) async throws -> [SnapshotLink] {
        try await base.snapshotLinks(tenant: tenant, snapshot: snapshot)
    }
    func snapshotManifest(tenant: String, snapshot: String) async throws -> (entries: String, links: String)? {
        try await base.snapshotManifest(tenant: tenant, snapshot: snapshot)
    }
    func stagedObjects(tenant: String, ids: [String]) async throws -> [StagedObject] { try await base.stagedObjects(tenant: tenant, ids: ids) }
    func stagedObjects(tenant: String, connector: String?, states: [String]?, afterId: String?, limit: Int?) async throws -> [StagedObject] {
        try await base.stagedObjects(tenant: tenant, connector: connector, states: states, afterId: afterId, limit: limit)
    }
    func stagedObjects(tenant: String, joinedTo cloudIDs: [String]) async throws -> [StagedObject] {
        try await base.stagedObjects(tenant: tenant, joinedTo: cloudIDs)
    }
    func stagedObjects(tenant: String, connector: String, dns: [String]) async throws -> [StagedObject] {
        try await base.stagedObjects(tenant: tenant, connector: connector, dns: dns)
    }
    func conflictedStagedObjects(tenant: String) async throws -> [StagedObject] { try await base.conflictedStagedObjects(tenant: tenant) }
    func joinedStagedCount(tenant: String, connector: String) async throws -> Int {
        try await base.joinedStagedCount(tenant: tenant, connector: connector)
    }

    // MARK: Writes no directory write makes

    private static func outsideBatch(_ what: String) -> DirectoryError {
        DirectoryError(.internalError, "\(what) is not a directory write and cannot be part of a batch.")
    }

    func insertTenant(_ tenant: TenantRecord) async throws { throw Self.outsideBatch("Creating a tenant") }
    func consumeOnce(tenant: String, key: String, expiresAt: String, now: String) async throws -> Bool {
        throw Self.outsideBatch("Spending a single-use key")
    }
    func release(tenant: String, key: String) async throws { throw Self.outsideBatch("Releasing a single-use key") }
    func packObjects(tenant: String, ids: [String]) async throws -> [String] { throw Self.outsideBatch("Packing backup blobs") }
    func putPack(tenant: String, _ pack: PackText) async throws { throw Self.outsideBatch("Storing a backup pack") }
    func putBlobs(tenant: String, _ blobs: [(digest: String, body: String)]) async throws { throw Self.outsideBatch("Storing backup blobs") }
    func insertSnapshot(_ snapshot: SnapshotRecord, entries: [SnapshotEntry], links: [SnapshotLink]) async throws {
        throw Self.outsideBatch("Storing a snapshot")
    }
    func insertSnapshot(_ snapshot: SnapshotRecord, entryLines: String, linkLines: String) async throws {
        throw Self.outsideBatch("Storing a snapshot")
    }
    func releaseMemory() async throws { throw Self.outsideBatch("Releasing a snapshot's memory") }
    func scanAndPack(tenant: String, kinds: [ObjectKind], after afterId: String?, through: String?) async throws -> [ObjectDigest]? {
        throw Self.outsideBatch("Packing backup blobs")
    }
    func deleteSnapshot(tenant: String, id: String) async throws -> Int { throw Self.outsideBatch("Deleting a snapshot") }
    func replaceSnapshot(_ snapshot: SnapshotRecord, entries: [SnapshotEntry], links: [SnapshotLink]) async throws {
        throw Self.outsideBatch("Replacing a snapshot")
    }
    func putSetting(tenant: String, key: String, value: JSONValue) async throws { throw Self.outsideBatch("Writing a setting") }
    func settingOrPut(tenant: String, key: String, value: JSONValue) async throws -> JSONValue { throw Self.outsideBatch("Writing a setting") }
    func lockedSetting(tenant: String, key: String) async throws -> JSONValue? { throw Self.outsideBatch("Locking a setting") }
    func insertAll(_ objects: [StoredObject]) async throws { throw Self.outsideBatch("Writing a batch of sign-in records") }
    func insertCredentialsIfAbsent(_ records: [CredentialRow]) async throws { throw Self.outsideBatch("Writing a batch of credential records") }
    func putStaged(_ objects: [StagedObject]) async throws { throw Self.outsideBatch("Writing the sync staging area") }
    func removeStaged(tenant: String, ids: [String]) async throws { throw Self.outsideBatch("Removing from the sync staging area") }
}
