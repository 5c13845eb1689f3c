import TesseraCore

/// The staging area's indexes, so that a delta reads the staged objects it names and no others. They are rows of the
/// store's links table (indexed from both ends, and removed with the staged object they name when it is purged), of
/// relations no Graph object uses:
/// - `syncJoin`: a staged object → the cloud object it synchronizes to (the join map, read from the cloud end);
/// - `syncDN`: `syncdn:<connector>:<dn>` → the staged objects with that distinguished name (a group's members are DNs);
/// - `syncConflict`: `syncconflicts` → each staged object with an attribute conflict waiting for release.
///
/// `SyncCycle.saveStaged` keeps them with every write of a staged object; a tenant staged before they existed is
/// indexed once (`SyncCycle.indexStaging`).
enum StagingIndex {
    static let join = "syncJoin", distinguishedName = "syncDN", conflict = "syncConflict"
    static let conflicts = "syncconflicts"

    static func dnKey(connector: String, dn: String) -> String { "syncdn:\(connector.lowercased()):\(dn.lowercased())" }

    struct Entry: Hashable {
        var source, relation, target: String
    }

    /// The index entries of a staged object as stored.
    static func entries(of object: StoredObject) -> Set<Entry> {
        var out: Set<Entry> = []
        if let cloud = object.body["cloudId"]?.stringValue { out.insert(Entry(source: object.id, relation: join, target: cloud)) }
        if let connector = object.body["connector"]?.stringValue, let dn = object.body["dn"]?.stringValue {
            out.insert(Entry(source: dnKey(connector: connector, dn: dn), relation: distinguishedName, target: object.id))
        }
        if object.body["conflict"] == .bool(true) { out.insert(Entry(source: conflicts, relation: conflict, target: object.id)) }
        return out
    }

    /// Brings the index from `old` (nil: a new staged object) to `new`, in the transaction that writes `new`.
    static func update(from old: StoredObject?, to new: StoredObject, tx: any DirectoryTransaction) async throws {
        let before = old.map(entries) ?? [], after = entries(of: new)
        for entry in before.subtracting(after) {
            try await tx.unlink(tenant: new.tenant, source: entry.source, relation: entry.relation, target: entry.target)
        }
        for entry in after.subtracting(before) {
            try await tx.link(tenant: new.tenant, source: entry.source, relation: entry.relation, target: entry.target)
        }
    }
}

/// Which staged object holds each cloud object: the `syncJoin` index, with the joins made since the last save on top.
struct JoinMap: Sendable {
    let store: any DirectoryStore
    let tenant: String
    private var unsaved: [String: String] = [:]

    init(store: any DirectoryStore, tenant: String) {
        self.store = store
        self.tenant = tenant
    }

    /// The staged object that synchronizes to `cloud`, if any.
    func holder(of cloud: String) async throws -> String? {
        if let staged = unsaved[cloud] { return staged }
        let tenant = self.tenant
        return try await store.read { tx in try await tx.sources(tenant: tenant, target: cloud, relation: StagingIndex.join) }.first
    }

    mutating func join(_ cloud: String, to staged: String) { unsaved[cloud] = staged }

    /// The staged objects were saved: the index has what this held.
    mutating func saved() { unsaved.removeAll(keepingCapacity: true) }
}
