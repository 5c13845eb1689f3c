/// What the store keeps for backups (the `Backup` target decides what goes in): content-addressed blobs, the
/// snapshots, and each snapshot's entries — every object and link for a full snapshot, only what changed since
/// its parent for an incremental one.

/// An object as stored, without decoding its JSON: what a snapshot hashes and keeps.
public struct RawObject: Sendable, Hashable {
    public var id: String
    public var kind: ObjectKind
    /// The stored JSON text (the store writes it canonically, so equal objects have equal text).
    public var body: String
    public var deletedAt: String?
    /// The SHA-256 (hex) of `body` as the store keeps it beside the object; nil when it has none.
    public var digest: String?
    public init(id: String, kind: ObjectKind, body: String, deletedAt: String?, digest: String? = nil) {
        self.id = id
        self.kind = kind
        self.body = body
        self.deletedAt = deletedAt
        self.digest = digest
    }
}

/// An object's id, kind, deletion and the digest of its stored JSON (SHA-256, hex), which the store writes beside
/// the body on every insert and update: a snapshot reads these instead of hashing every body.
public struct ObjectDigest: Sendable, Hashable {
    public var id: String
    public var kind: ObjectKind
    /// nil for a row the store has no digest for (a snapshot then hashes its body).
    public var digest: String?
    public var deletedAt: String?
    /// Where the row sits in the store's table, when the store can say (SQLite's rowid): a snapshot packs bodies in
    /// this order, so the table is read front to back instead of at random by id.
    public var position: Int64?
    public init(id: String, kind: ObjectKind, digest: String?, deletedAt: String?, position: Int64? = nil) {
        self.id = id
        self.kind = kind
        self.digest = digest
        self.deletedAt = deletedAt
        self.position = position
    }
}

/// One pack of stored bodies as text: index lines `digest length`, and the bodies concatenated in the same order.
public struct PackText: Sendable, Hashable {
    public var index: String
    public var body: String
    public init(index: String, body: String) {
        self.index = index
        self.body = body
    }
}

/// One link: `source` → `target` by `relation` (a group's member, an application's owner).
public struct LinkRow: Sendable, Hashable, Comparable {
    public var source: String
    public var relation: String
    public var target: String
    public init(source: String, relation: String, target: String) {
        self.source = source
        self.relation = relation
        self.target = target
    }
    public static func < (a: LinkRow, b: LinkRow) -> Bool { (a.source, a.relation, a.target) < (b.source, b.relation, b.target) }
}

/// A snapshot's record.
public struct SnapshotRecord: Sendable, Hashable {
    public var tenant: String
    public var id: String
    public var createdAt: String
    /// The tenant's change-log sequence when the snapshot began.
    public var sequence: Int64
    /// The snapshot this one records changes against; nil for a full snapshot.
    public var parent: String?
    /// SHA-256 (hex) over the snapshot's entries and its parent's digest: what `verify` recomputes.
    public var digest: String
    public var objectCount: Int
    public var linkCount: Int
    /// Objects added, changed or removed since the previous snapshot (Graph's `totalChangedObjects`).
    public var changedObjects: Int
    public init(tenant: String, id: String, createdAt: String, sequence: Int64, parent: String?, digest: String,
                objectCount: Int, linkCount: Int, changedObjects: Int) {
        self.tenant = tenant
        self.id = id
        self.createdAt = createdAt
        self.sequence = sequence
        self.parent = parent
        self.digest = digest
        self.objectCount = objectCount
        self.linkCount = linkCount
        self.changedObjects = changedObjects
    }
}

/// An object's state in a snapshot: the digest of its stored JSON, or nil when it no longer exists (in an
/// incremental snapshot).
public struct SnapshotEntry: Sendable, Hashable {
    public var object: String
    public var kind: ObjectKind
    public var digest: String?
    public var deletedAt: String?
    public init(object: String, kind: ObjectKind, digest: String?, deletedAt: String?) {
        self.object = object
        self.kind = kind
        self.digest = digest
        self.deletedAt = deletedAt
    }
}

/// A link's presence in a snapshot: present, or (in an incremental snapshot) removed since the parent.
public struct SnapshotLink: Sendable, Hashable {
    public var link: LinkRow
    public var present: Bool
    public init(link: LinkRow, present: Bool) {
        self.link = link
        self.present = present
    }
}
