/// An object in a sync connector's staging area (directory sync, cross-tenant synchronization): what the connector
/// last read of one on-premises (or source-tenant) object, and where sync put it. Internal to sync and never a Graph
/// object, so it is a row of its own table, not a Graph object with `_` members: what a delta looks up by (the cloud
/// object it is joined to, its distinguished name, whether it waits for a conflict's release) are indexed columns.
public struct StagedObject: Sendable, Hashable {
    public var tenant: String
    /// The object's anchor within its connector, prefixed by the connector (`sync:<connector>:<objectGUID in hex>`,
    /// `xts:<source tenant>:<object id>`): how runs, the quarantine and held-back deletions name it.
    public var id: String
    public var connector: String
    /// The distinguished name as the directory last gave it ("" for a source without them).
    public var dn: String
    /// The cloud object it synchronizes to, once joined.
    public var cloudID: String?
    /// `pending`, `joined`, `quarantined`, `error` or `outOfScope`.
    public var state: String
    /// Exported with an attribute conflict that waits for release (or quarantined for one).
    public var conflict: Bool
    /// Everything else, as JSON: the attributes read, the last error, how it was matched.
    public var details: [String: JSONValue]

    public init(tenant: String, id: String, connector: String, dn: String = "", cloudID: String? = nil, state: String = "pending",
                conflict: Bool = false, details: [String: JSONValue] = [:]) {
        self.tenant = tenant
        self.id = id
        self.connector = connector
        self.dn = dn
        self.cloudID = cloudID
        self.state = state
        self.conflict = conflict
        self.details = details
    }

    /// The form a distinguished name is looked up by (a group's `member` values name DNs without regard to case).
    public static func foldedDN(_ dn: String) -> String { dn.lowercased() }
}

/// Reads of the staging area. Each is an index lookup, so a delta costs what it names, not the connector's size.
public protocol StagingReader: Sendable {
    /// These staged objects (absent ones left out), in the order asked.
    func stagedObjects(tenant: String, ids: [String]) async throws -> [StagedObject]
    /// A page of a connector's staged objects (every connector's with nil) in id order after `afterId`, only those in
    /// `states` when given.
    func stagedObjects(tenant: String, connector: String?, states: [String]?, afterId: String?, limit: Int?) async throws -> [StagedObject]
    /// A page of a connector's staged objects in id order after `afterId`, as each one's id and the run that last wrote
    /// it (`details.runId`) only: what the end of a full run reads of every staged object to tell what the import did
    /// not name, without decoding the rest.
    func stagedRunIDs(tenant: String, connector: String, afterId: String?, limit: Int) async throws -> [(id: String, runId: String?)]
    /// The staged objects joined to these cloud objects (the join map, read from the cloud end).
    func stagedObjects(tenant: String, joinedTo cloudIDs: [String]) async throws -> [StagedObject]
    /// A connector's staged objects with these distinguished names (compared folded).
    func stagedObjects(tenant: String, connector: String, dns: [String]) async throws -> [StagedObject]
    /// The staged objects whose attribute conflict waits for release.
    func conflictedStagedObjects(tenant: String) async throws -> [StagedObject]
    /// How many of a connector's staged objects are joined to a cloud object.
    func joinedStagedCount(tenant: String, connector: String) async throws -> Int
}

extension StagingReader {
    /// Reads the page whole and keeps the ids and run ids (the store's own reads only the two).
    public func stagedRunIDs(tenant: String, connector: String, afterId: String?, limit: Int) async throws -> [(id: String, runId: String?)] {
        try await stagedObjects(tenant: tenant, connector: connector, states: nil, afterId: afterId, limit: limit)
            .map { ($0.id, $0.details["runId"]?.stringValue) }
    }
}

/// Writes of the staging area: a staged object is written whole (its export decides every column), so a write reads
/// nothing first.
public protocol StagingWriter: StagingReader {
    /// Inserts or replaces each of `objects` (many to a statement).
    func putStaged(_ objects: [StagedObject]) async throws
    /// Removes these staged objects.
    func removeStaged(tenant: String, ids: [String]) async throws
}
