/// One object as the store holds it: its Graph JSON is the truth.
public struct StoredObject: Sendable, Hashable {
    public var tenant: String
    public var id: String
    public var kind: ObjectKind
    /// The Graph JSON, including private `_`-prefixed members that are never served.
    public var body: [String: JSONValue]
    /// Bumped on every write; the ETag.
    public var version: Int64
    /// When soft-deleted, else nil.
    public var deletedAt: String?

    public init(tenant: String, id: String, kind: ObjectKind, body: [String: JSONValue], version: Int64 = 1, deletedAt: String? = nil) {
        self.tenant = tenant
        self.id = id
        self.kind = kind
        self.body = body
        self.version = version
        self.deletedAt = deletedAt
    }
}

/// A value that must be unique in a tenant (a UPN, a proxy address, an appId…), held by one object.
public struct UniqueKey: Sendable, Hashable {
    /// What the value is, e.g. `userPrincipalName`; also the property named in a conflict error.
    public var name: String
    /// The value, normalised: lowercased, as Entra compares names and addresses, except for the keys whose case is part
    /// of the value (`caseSensitiveNames`).
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = Self.caseSensitiveNames.contains(name) ? value : value.lowercased()
    }

    /// Keys compared as written. `onPremisesImmutableId` is an on-premises sourceAnchor, the base64 of an objectGUID or
    /// ms-DS-ConsistencyGuid: `QUJD` and `qujd` are different bytes, so two objects whose anchors differ only in case
    /// are different objects. `federatedIdentity` is an OpenID Connect issuer and subject, both case-sensitive.
    public static let caseSensitiveNames: Set<String> = ["onPremisesImmutableId", "federatedIdentity"]
}

/// A row of the change log: every write, in the same transaction as the write.
public struct ChangeRecord: Sendable, Hashable {
    public var seq: Int64
    public var tenant: String
    public var objectId: String
    public var kind: ObjectKind
    /// `create`, `update`, `delete`, `restore`, `purge`, `link`, `unlink`.
    public var operation: String
    /// Graph's `activityDisplayName`, e.g. "Add user".
    public var activity: String
    /// Who did it: `{"user": {...}}` or `{"app": {...}}` in `auditActivityInitiator` shape.
    public var actor: JSONValue
    public var at: String
    /// Extra facts: modified properties, link targets, display names.
    public var details: JSONValue

    public init(seq: Int64 = 0, tenant: String, objectId: String, kind: ObjectKind, operation: String, activity: String,
                actor: JSONValue, at: String, details: JSONValue = .object([:])) {
        self.seq = seq
        self.tenant = tenant
        self.objectId = objectId
        self.kind = kind
        self.operation = operation
        self.activity = activity
        self.actor = actor
        self.at = at
        self.details = details
    }
}

/// A tenant: the unit of isolation.
public struct TenantRecord: Sendable, Hashable {
    public var id: String
    public var domain: String
    public var name: String
    public var createdAt: String
    /// The newest sequence number of the tenant's change log when this record was read: anything derived
    /// from the tenant's objects at that sequence is still true while it has not moved.
    public var changeSequence: Int64
    public init(id: String, domain: String, name: String, createdAt: String, changeSequence: Int64 = 0) {
        self.id = id
        self.domain = domain
        self.name = name
        self.createdAt = createdAt
        self.changeSequence = changeSequence
    }
}

/// Which objects a query ranges over.
public enum QueryScope: Sendable, Hashable {
    /// Every object of the kinds.
    case all
    /// Objects linked from `source` by `relation` (a group's members).
    case targets(of: String, relation: String)
    /// Objects that link to `target` by `relation` (a user's groups).
    case sources(of: String, relation: String)
    /// These ids only.
    case ids([String])
}

/// A query over objects, translated to SQL by the store.
public struct ObjectQuery: Sendable, Hashable {
    /// Properties the store indexes (case-folded), for the `$filter` and `$orderby` clients use most.
    public static let indexedProperties = [
        "displayName", "userPrincipalName", "mail", "mailNickname", "givenName", "surname", "appId", "deviceId",
        "onPremisesImmutableId", "employeeId", "jobTitle", "department",
    ]

    /// The kinds each property's index covers (migration 18 makes each a partial index over them): the kinds whose
    /// lists are long and are filtered or ordered by the property (Graph's `$filter`/`$orderby`, the admin center's
    /// lists and searches, the sign-in log's filter by user, device sign-in by `deviceId`). Objects of other kinds
    /// write no entry in the index (a sign-in record one, an audit or policy object none, a user none for `appId` or
    /// `deviceId`); a query of theirs by the property reads the objects of its kind. The store writes a query's kind
    /// into the SQL text so that the database can prove the query is of a covered kind. Changing this table changes
    /// the schema: it needs a new migration step.
    public static let propertyIndexKinds: [String: [ObjectKind]] = [
        "displayName": [.user, .group, .application, .servicePrincipal, .device],
        "userPrincipalName": [.user, .signIn],
        "mail": [.user, .group],
        "mailNickname": [.user, .group],
        "givenName": [.user],
        "surname": [.user],
        "appId": [.application, .servicePrincipal],
        "deviceId": [.device],
        "onPremisesImmutableId": [.user],
        "employeeId": [.user],
        "jobTitle": [.user],
        "department": [.user],
    ]

    /// The indexed property a filter narrows by (a top-level `eq`, `in` or `startswith` conjunct), if any:
    /// ordering by it lets the database walk that index instead of scanning in id order.
    public static func indexedNarrowing(_ filter: FilterExpression?) -> PropertyPath? {
        guard let filter else { return nil }
        func indexed(_ path: PropertyPath) -> PropertyPath? {
            !path.isLambdaVariable && path.segments.count == 1 && indexedProperties.contains(path.segments[0]) ? path : nil
        }
        switch filter {
        case .and(let a, let b): return indexedNarrowing(a) ?? indexedNarrowing(b)
        case .startsWith(let path, _): return indexed(path)
        case .compare(let path, .eq, .string(_)): return indexed(path)
        case .in(let path, let values) where values.allSatisfy({ if case .string = $0 { true } else { false } }): return indexed(path)
        default: return nil
        }
    }

    public var tenant: String
    public var kinds: [ObjectKind]
    public var scope: QueryScope
    public var deleted: Bool
    /// With `deleted`: only objects deleted at or after this ISO 8601 instant.
    public var deletedSince: String?
    /// With `deleted`: only objects deleted before this ISO 8601 instant.
    public var deletedBefore: String?
    public var filter: FilterExpression?
    public var search: SearchExpression?
    public var orderBy: [OrderByItem]
    /// At most this many (the store may fetch one more to know if a next page exists).
    public var limit: Int?
    /// Keyset paging on id when there is no `orderBy`.
    public var afterId: String?
    /// Keyset paging when there is an `orderBy`: the page starts after this row in the query's order.
    public var after: KeysetPosition?
    /// Offset paging when there is an `orderBy` (for orders with no keyset: a property that is not text).
    public var offset: Int
    /// When set, only these top-level properties of each body are read (the database builds the smaller
    /// JSON), for `$select` and Graph's default user properties.
    public var projection: [String]?

    public init(tenant: String, kinds: [ObjectKind], scope: QueryScope = .all, deleted: Bool = false,
                deletedSince: String? = nil, deletedBefore: String? = nil, filter: FilterExpression? = nil, search: SearchExpression? = nil, orderBy: [OrderByItem] = [],
                limit: Int? = nil, afterId: String? = nil, offset: Int = 0) {
        self.tenant = tenant
        self.kinds = kinds
        self.scope = scope
        self.deleted = deleted
        self.deletedSince = deletedSince
        self.deletedBefore = deletedBefore
        self.filter = filter
        self.search = search
        self.orderBy = orderBy
        self.limit = limit
        self.afterId = afterId
        self.offset = offset
        self.projection = nil
    }
}

/// A row's place in an ordered list: its values of the order's properties, as stored (nil when it has none),
/// and its id, which breaks ties. The store compares them folded exactly as it orders, so a page that starts
/// after a position neither skips nor repeats a row however many rows are inserted or deleted before it.
public struct KeysetPosition: Sendable, Hashable {
    public var values: [String?]
    public var id: String
    public init(values: [String?], id: String) {
        self.values = values
        self.id = id
    }
}

/// What a read of the directory may do: tenants, objects, unique keys' holders, links, the change log and settings.
/// ``DirectoryStore/read(_:)`` hands out only this and ``BackupReader``, so a read cannot write.
public protocol DirectoryReader: Sendable {
    func tenant(_ idOrDomain: String) async throws -> TenantRecord?
    func tenants() async throws -> [TenantRecord]

    func object(tenant: String, id: String) async throws -> StoredObject?
    func objects(tenant: String, ids: [String]) async throws -> [StoredObject]
    /// The object that holds a key.
    func holder(tenant: String, key: UniqueKey) async throws -> String?
    /// The holders of those of `keys` that are held (many keys to a statement where the store can).
    func holders(tenant: String, of keys: [UniqueKey]) async throws -> [UniqueKey: String]
    /// The object that holds a key, read with it (one query where the store can: a sign-in asks this of a UPN, a
    /// credential id and a client id).
    func object(tenant: String, holding key: UniqueKey) async throws -> StoredObject?
    func targets(tenant: String, source: String, relation: String) async throws -> [String]
    func sources(tenant: String, target: String, relation: String) async throws -> [String]

    /// Changes after `seq`, oldest first.
    func changes(tenant: String, kinds: [ObjectKind]?, after seq: Int64, limit: Int) async throws -> [ChangeRecord]
    /// The newest sequence number of the tenant's change log.
    func latestSequence(tenant: String) async throws -> Int64

    func query(_ query: ObjectQuery) async throws -> [StoredObject]
    func count(_ query: ObjectQuery) async throws -> Int

    /// A private per-tenant setting (signing keys, counters). Not part of the Graph surface.
    func setting(tenant: String, key: String) async throws -> JSONValue?
    /// Every tenant's value of the setting `key`, in one query (checks over all tenants at start).
    func settings(key: String) async throws -> [(tenant: String, value: JSONValue)]
}

/// The directory's writes: tenants, objects, unique keys, links, the change log and settings.
public protocol DirectoryWriter: DirectoryReader {
    func insertTenant(_ tenant: TenantRecord) async throws

    func insert(_ object: StoredObject) async throws
    /// Replaces body, version and deletion state; fails with `conflict` if `expectedVersion` is stale.
    func update(_ object: StoredObject, expectedVersion: Int64) async throws
    /// Removes the object, its links and its keys for good.
    func purge(tenant: String, id: String) async throws

    /// Claims keys for an object; throws `DirectoryError.duplicate(name)` if another object holds one.
    func claim(tenant: String, object: String, keys: [UniqueKey]) async throws
    /// Releases keys held by an object.
    func release(tenant: String, object: String, keys: [UniqueKey]) async throws

    /// Adds a link; false if it already existed.
    @discardableResult
    func link(tenant: String, source: String, relation: String, target: String) async throws -> Bool
    /// Removes a link; false if it did not exist.
    @discardableResult
    func unlink(tenant: String, source: String, relation: String, target: String) async throws -> Bool

    /// Appends to the change log; returns the record's sequence number.
    @discardableResult
    func record(_ change: ChangeRecord) async throws -> Int64
    /// Appends many records to the change log, in order (a batch's: the store takes their sequence numbers at once).
    func record(_ changes: [ChangeRecord]) async throws
    /// Creates a new object: claims `keys` for it, inserts it and records `change`, as those three calls do (the same
    /// errors), in one statement where the store can. On PostgreSQL a create that is its transaction's only write may be
    /// held until the transaction ends and then run alone, outside a transaction block (one round trip instead of five):
    /// its errors then come from the commit, or from the transaction's next statement, rather than from this call.
    func create(_ object: StoredObject, keys: [UniqueKey], change: ChangeRecord) async throws
    /// `create`, saved only if `requirement` holds when it is saved, else `requirement.error` is thrown and nothing is
    /// saved. On PostgreSQL a create run alone checks it in its one statement (no round trip of its own); elsewhere it is
    /// read first.
    func create(_ object: StoredObject, keys: [UniqueKey], change: ChangeRecord, requiring requirement: CreateRequirement) async throws

    func putSetting(tenant: String, key: String, value: JSONValue) async throws
    /// The setting under `key`, written as `value` when there is none yet. Of two nodes that make one at once, the
    /// first to commit wins and both get its value (on PostgreSQL the second insert waits for the first to commit), so
    /// a key made on first start (the signing key, a tenant's CA) is one key across a cluster.
    func settingOrPut(tenant: String, key: String, value: JSONValue) async throws -> JSONValue
    /// The setting under `key`, read with its row locked until the transaction ends: another transaction that locks it
    /// or writes it waits until this one has ended, and then reads or writes over what this one committed. The one
    /// mechanism for a read-modify-write of a setting that several nodes may make at once (a key rotation, a plain key
    /// sealed at start): read it, or the setting every writer of the thing locks first, this way before deciding
    /// anything from it. On PostgreSQL `SELECT … FOR UPDATE` (read committed: once the lock is had, the latest
    /// committed value); SQLite has one writer, so there every write transaction runs alone anyway. A setting there is
    /// none of locks nothing: lock one that exists (the CA whose rotation setting it is).
    func lockedSetting(tenant: String, key: String) async throws -> JSONValue?
}

/// The backup store's reads (the `Backup` target): objects and links as stored, digests, blobs and snapshots.
public protocol BackupReader: Sendable {
    /// These objects' bodies as one pack, read on a reader connection so that the writer only stores it
    /// (`BackupWriter.putPack`); nil where the database builds packs faster itself (`BackupWriter.packObjects`).
    func readPack(tenant: String, ids: [String]) async throws -> PackText?
    /// Objects of `kinds`, soft-deleted ones included, as stored, in id order after `afterId`.
    func rawObjects(tenant: String, kinds: [ObjectKind], afterId: String?, limit: Int) async throws -> [RawObject]
    /// These objects as stored (absent ones are left out).
    func rawObjects(tenant: String, ids: [String]) async throws -> [RawObject]
    /// Every link of `relations`, ordered; only those from `sources` when given.
    func allLinks(tenant: String, relations: [String], sources: [String]?) async throws -> [LinkRow]
    /// Objects of `kinds`, soft-deleted ones included, with the digest kept beside each (no bodies): in id order, or,
    /// when the store gives each row's position, in the order of those positions.
    func objectDigests(tenant: String, kinds: [ObjectKind]) async throws -> [ObjectDigest]
    /// One batch of `objectDigests(tenant:kinds:)` in id order: those of `kinds` among the next `limit` objects (of any
    /// kind) after `afterId`, and the id to go on after (nil once none are left), so a snapshot holds a batch at once.
    func objectDigests(tenant: String, kinds: [ObjectKind], afterId: String?, limit: Int) async throws -> (rows: [ObjectDigest], next: String?)
    /// One batch of `allLinks(tenant:relations:sources:nil)`: up to `limit` links after `after`, ordered.
    func links(tenant: String, relations: [String], after: LinkRow?, limit: Int) async throws -> [LinkRow]
    /// The id `count` objects (of any kind) after `afterId` in id order, where a batch of `count` ends; nil when fewer
    /// are left.
    func objectID(tenant: String, after afterId: String?, skipping count: Int) async throws -> String?
    func blobs(tenant: String, digests: [String]) async throws -> [String: String]
    func snapshots(tenant: String) async throws -> [SnapshotRecord]
    func snapshotEntries(tenant: String, snapshot: String) async throws -> [SnapshotEntry]
    func snapshotLinks(tenant: String, snapshot: String) async throws -> [SnapshotLink]
    /// A snapshot's manifest as stored: its entry lines and link lines (what `snapshotEntries`/`snapshotLinks` parse),
    /// nil when it has none.
    func snapshotManifest(tenant: String, snapshot: String) async throws -> (entries: String, links: String)?
}

/// The backup store's writes: packs of stored bodies, blobs, snapshots and their retention.
public protocol BackupWriter: BackupReader {
    /// Stores these objects' bodies as blobs without reading them out of the database; returns the digests stored.
    func packObjects(tenant: String, ids: [String]) async throws -> [String]
    /// Stores a pack `readPack` read (its index lines name the digests it holds).
    func putPack(tenant: String, _ pack: PackText) async throws
    /// Stores blobs (each the stored JSON of an object, named by its digest).
    func putBlobs(tenant: String, _ blobs: [(digest: String, body: String)]) async throws
    func insertSnapshot(_ snapshot: SnapshotRecord, entries: [SnapshotEntry], links: [SnapshotLink]) async throws
    /// `insertSnapshot(_:entries:links:)` with the entries and links already written as manifest lines of four
    /// tab-separated fields ("object kind digest deletedAt", "-" for no digest, nothing for no deletion; "source
    /// relation target 1", 0 for a removed link), each ending in a newline: what `snapshotEntries`/`snapshotLinks` read.
    func insertSnapshot(_ snapshot: SnapshotRecord, entryLines: String, linkLines: String) async throws
    /// Gives back memory the connection keeps from a snapshot's writes (SQLite's page cache); nothing elsewhere.
    func releaseMemory() async throws
    /// For a snapshot with nothing to compare against, where the database does it faster (PostgreSQL): the objects of
    /// `kinds` with ids after `afterId` and up to `through` (nil: no bound), each with its digest, in id order, and the
    /// bodies of those with a digest stored as one pack by the same statement (no body leaves the database, and the
    /// rows are read once). nil where the store reads and packs apart (`objectDigests`, then `readPack` or
    /// `packObjects`).
    func scanAndPack(tenant: String, kinds: [ObjectKind], after afterId: String?, through: String?) async throws -> [ObjectDigest]?
    /// Removes a snapshot with its entries (retention), and then every blob no snapshot references; returns how
    /// many blobs went.
    func deleteSnapshot(tenant: String, id: String) async throws -> Int
    /// Replaces a snapshot's record and entries (retention folds an expiring full snapshot into its child).
    func replaceSnapshot(_ snapshot: SnapshotRecord, entries: [SnapshotEntry], links: [SnapshotLink]) async throws
}

/// Keys that may be used once (authorization codes, challenges, replayed tickets), forgotten when they expire.
public protocol SingleUseKeys: Sendable {
    /// Records `key` as used until `expiresAt`; false if it was already used (replayed). Expired keys are forgotten.
    func consumeOnce(tenant: String, key: String, expiresAt: String, now: String) async throws -> Bool
    /// Forgets `key`, so it may be consumed again: a once-per-cluster claim (a sync run's slot, the day's snapshot) whose
    /// work a stopping node could not finish, released for another node to take in the same interval.
    func release(tenant: String, key: String) async throws
}

/// What a read is handed: the directory's reads, the backup store's, the sync staging area's, the credential records'
/// and the recovery jobs'.
public typealias DirectoryReadView = DirectoryReader & BackupReader & StagingReader & CredentialReader & RecoveryJobReader

/// The operations of one write transaction: every read, and every write. Everything a write does happens through one
/// of these and commits or rolls back together.
public protocol DirectoryTransaction: DirectoryWriter, BackupWriter, SingleUseKeys, StagingWriter, CredentialWriter, RecoveryJobWriter,
    RecordBatchInserting, SingleUseSpends {}

/// A store of tenants, objects, links, unique keys and the change log.
public protocol DirectoryStore: Sendable {
    /// Creates or upgrades the schema.
    func migrate() async throws
    /// Runs `body` in one read-write transaction.
    func write<T: Sendable>(_ body: @Sendable (any DirectoryTransaction) async throws -> T) async throws -> T
    /// Runs `body` against a consistent read view, which cannot write.
    func read<T: Sendable>(_ body: @Sendable (any DirectoryReadView) async throws -> T) async throws -> T
    /// Closes connections.
    func shutdown() async throws
}

/// What a create needs of another object of its tenant: an object with this id and kind whose `property` is not
/// `false` (a user's UPN domain: one of the tenant's domains, not unverified). `error` is what the create throws when
/// there is none.
public struct CreateRequirement: Sendable, Hashable {
    public let id: String
    public let kind: ObjectKind
    public let property: String
    public let error: DirectoryError

    public init(id: String, kind: ObjectKind, notFalse property: String, error: DirectoryError) {
        self.id = id
        self.kind = kind
        self.property = property
        self.error = error
    }

    /// Whether `object` (the one found under `id`, if any) meets the requirement.
    public func isMet(by object: StoredObject?) -> Bool {
        guard let object else { return false }
        return object.kind == kind && object.body[property] != .bool(false)
    }

    /// Reads the object and throws `error` when it does not meet the requirement.
    public func check(tenant: String, in reader: any DirectoryReader) async throws {
        guard isMet(by: try await reader.object(tenant: tenant, id: id)) else { throw error }
    }
}

extension DirectoryWriter {
    public func create(_ object: StoredObject, keys: [UniqueKey], change: ChangeRecord, requiring requirement: CreateRequirement) async throws {
        try await requirement.check(tenant: object.tenant, in: self)
        try await create(object, keys: keys, change: change)
    }

    public func record(_ changes: [ChangeRecord]) async throws {
        for change in changes { try await record(change) }
    }

    /// ``lockedSetting(tenant:key:)`` for a setting that may not exist yet, which has no row to lock: `empty` is stored
    /// first when there is none (of two nodes making it at once the second waits for the first's commit:
    /// ``settingOrPut(tenant:key:value:)``), and then the row is locked and read.
    public func lockedSetting(tenant: String, key: String, creatingWith empty: JSONValue) async throws -> JSONValue {
        if let stored = try await lockedSetting(tenant: tenant, key: key) { return stored }
        let made = try await settingOrPut(tenant: tenant, key: key, value: empty)
        return try await lockedSetting(tenant: tenant, key: key) ?? made
    }

    public func create(_ object: StoredObject, keys: [UniqueKey], change: ChangeRecord) async throws {
        try await claim(tenant: object.tenant, object: object.id, keys: keys)
        try await insert(object)
        try await record(change)
    }
}

extension DirectoryReader {
    public func holders(tenant: String, of keys: [UniqueKey]) async throws -> [UniqueKey: String] {
        var found: [UniqueKey: String] = [:]
        for key in Set(keys) { found[key] = try await holder(tenant: tenant, key: key) }
        return found
    }

    public func object(tenant: String, holding key: UniqueKey) async throws -> StoredObject? {
        guard let id = try await holder(tenant: tenant, key: key) else { return nil }
        return try await object(tenant: tenant, id: id)
    }
}
