public import TesseraCore

/// What differs between a snapshot (the state to go back to) and a later state (another snapshot, or now), object
/// by object, with each changed property's old and new value and each added or removed link, and what a recovery
/// would do about it in Entra's model.
public struct DifferenceReport: Sendable {
    public enum Action: String, Sendable, Hashable {
        /// Added since the snapshot (or deleted in it): soft-delete it.
        case softDelete
        /// Changed since the snapshot: put its properties and links back.
        case update
        /// Soft-deleted since the snapshot: restore it (and put back what else changed).
        case restore
        /// Hard-deleted since the snapshot: create it again with its original id (beyond Entra, which cannot).
        case recreate
    }

    public struct PropertyChange: Sendable, Hashable {
        public var name: String
        /// nil: the property was not set.
        public var old: JSONValue?
        public var new: JSONValue?
    }

    public struct LinkChange: Sendable, Hashable {
        public var relation: String
        public var target: String
        /// True when the link was added since the snapshot (a recovery removes it), false when it was removed.
        public var added: Bool
        public init(relation: String, target: String, added: Bool) {
            self.relation = relation
            self.target = target
            self.added = added
        }
    }

    public struct ObjectChange: Sendable, Hashable {
        public var id: String
        public var kind: ObjectKind
        public var displayName: String?
        public var action: Action
        public var properties: [PropertyChange]
        public var links: [LinkChange]
        /// Synchronised from on-premises: shown, never recovered.
        public var isOnPremises: Bool
    }

    public var changes: [ObjectChange]

    /// The changes a recovery considers (on-premises objects excluded), by type and id.
    public var recoverable: [ObjectChange] { changes.filter { !$0.isOnPremises } }

    /// Compares `target` (the snapshot's state) with `current`; `bodies` gives stored JSON by digest for both.
    /// With `among`, only those ids can differ (the caller knows what changed between the two), and only they are
    /// compared.
    public static func compare(target: BackupService.State, current: BackupService.State, bodies: [String: String],
                               among: Set<String>? = nil) -> DifferenceReport {
        // Links: only the sources whose ends differ, each a merge of two sorted arrays.
        var linksBySource: [String: [LinkChange]] = [:]
        let sources = among.map { Array($0) } ?? Array(current.links.differingSources(from: target.links))
        for source in sources {
            let (added, removed) = current.links.changes(from: target.links, source: source)
            guard !added.isEmpty || !removed.isEmpty else { continue }
            linksBySource[source] = added.map { LinkChange(relation: $0.relation, target: $0.target, added: true) }
                + removed.map { LinkChange(relation: $0.relation, target: $0.target, added: false) }
        }
        var changes: [ObjectChange] = []
        // Only the ids whose entries or links differ (a tenant has many objects; a day changes few).
        var differing = Set(linksBySource.keys)
        if let among {
            for id in among where target.objects[id] != current.objects[id] { differing.insert(id) }
        } else {
            for (id, entry) in target.objects where current.objects[id] != entry { differing.insert(id) }
            for (id, entry) in current.objects where target.objects[id] != entry { differing.insert(id) }
        }
        for id in differing.sorted() {
            let old = target.objects[id], new = current.objects[id]
            let links = (linksBySource[id] ?? []).sorted { ($0.relation, $0.target, $0.added ? 1 : 0) < ($1.relation, $1.target, $1.added ? 1 : 0) }
            guard old != new || !links.isEmpty, let kind = (old ?? new)?.kind else { continue }
            // Made and deleted since: already where going back would put it (soft-deleted, as Entra leaves it).
            if old == nil, new?.deletedAt != nil, links.isEmpty { continue }
            let oldBody = old?.digest.flatMap { bodies[$0] }.flatMap(Self.parse) ?? [:]
            let newBody = new?.digest.flatMap { bodies[$0] }.flatMap(Self.parse) ?? [:]
            let action: Action
            switch (old, new) {
            case (nil, _?): action = .softDelete
            case (let o?, let n?) where o.deletedAt == nil && n.deletedAt != nil: action = .restore
            case (let o?, let n?) where o.deletedAt != nil && n.deletedAt == nil: action = .softDelete
            case (_?, nil): action = .recreate
            default: action = .update
            }
            var properties: [PropertyChange] = []
            if old?.digest != new?.digest {
                for name in Set(oldBody.keys).union(newBody.keys).sorted() where !name.hasPrefix("_") && oldBody[name] != newBody[name] {
                    properties.append(PropertyChange(name: name, old: oldBody[name], new: newBody[name]))
                }
            }
            if old == new, links.isEmpty { continue }
            let body = newBody.isEmpty ? oldBody : newBody
            changes.append(ObjectChange(
                id: id, kind: kind, displayName: body["displayName"]?.stringValue ?? body["userPrincipalName"]?.stringValue,
                action: action, properties: properties, links: links,
                isOnPremises: body["onPremisesSyncEnabled"]?.boolValue == true || oldBody["onPremisesSyncEnabled"]?.boolValue == true))
        }
        return DifferenceReport(changes: changes)
    }

    static func parse(_ text: String) -> [String: JSONValue]? {
        (try? JSONParser.parse(Array(text.utf8)))?.objectValue
    }

    /// Graph's `recoveryChangeObjectBase` for one change, with Tessera's attribute and link detail.
    public static func render(_ change: ObjectChange) -> JSONValue {
        [
            "id": .string(change.id), "displayName": .optional(change.displayName), "entityTypeName": .string(Self.entityTypeName(change.kind)),
            "recoveryAction": .string(change.action == .recreate ? "restore" : change.action.rawValue),
            "tesseraAction": .string(change.action.rawValue), "isOnPremisesSynced": .bool(change.isOnPremises),
            "changedProperties": .array(change.properties.map { ["name": .string($0.name), "oldValue": $0.old ?? .null, "newValue": $0.new ?? .null] }),
            "changedLinks": .array(change.links.map { ["relation": .string($0.relation), "targetId": .string($0.target),
                                                       "change": .string($0.added ? "added" : "removed")] }),
        ]
    }

    /// Graph's `resourceTypeName` of every kind a snapshot holds.
    public static let entityTypeNames = BackupService.kinds.map(entityTypeName)

    /// Graph's `resourceTypeName` for a kind.
    public static func entityTypeName(_ kind: ObjectKind) -> String {
        switch kind {
        case .authenticationMethodsPolicy: "authenticationMethodPolicy"
        case .roleAssignment: "unifiedRoleAssignment"
        case .namedLocation: "namedLocationPolicy"
        default: kind.rawValue
        }
    }
}

extension BackupService {
    /// The report between snapshot `from` (the state to go back to) and snapshot `to`, or now when `to` is nil.
    public func difference(tenant: String, from: String, to: String?) async throws -> DifferenceReport {
        try await comparison(tenant: tenant, from: from, to: to, wholeTarget: false).report
    }

    /// The report, with the snapshot's state and the stored JSON of everything that differs (what a recovery needs).
    /// Without `wholeTarget`, the state given back holds only the ids the report compared (each entry and outgoing
    /// link as the whole state has it), read from the manifests' lines by id instead of building the snapshot's whole
    /// state (`ManifestChain`): the report is the same.
    func comparison(tenant: String, from: String, to: String?,
                    wholeTarget: Bool = true) async throws -> (report: DifferenceReport, target: State, bodies: [String: String]) {
        let fromRecord = try await snapshot(tenant: tenant, id: from)
        let target: State, current: State
        var bodies: [String: String]
        // Only what the later snapshots or the change log touched can differ: just those ids are compared.
        let touched: Set<String>?
        if !wholeTarget, let partial = try await touchedStates(tenant: tenant, from: fromRecord, to: to) {
            (target, current, bodies, touched) = (partial.target, partial.current, partial.bodies, partial.touched)
        } else {
            target = try await state(tenant: tenant, snapshot: fromRecord.id)
            if let to {
                // A later snapshot is the earlier one's state plus the changes between: only those are read again.
                (current, touched) = try await chainState(tenant: tenant, snapshot: try snapshot(tenant: tenant, id: to).id, from: (fromRecord.id, target))
                bodies = [:]
            } else {
                // Now is the snapshot's state plus the change log since: only the ids it names (and their links) are built.
                (current, bodies, touched) = try await liveChanges(tenant: tenant, since: fromRecord, base: target, onlyTouched: true)
            }
        }
        // Bodies only for what differs: its entries, or its links.
        var wanted: Set<String> = []
        let ids = touched ?? Set(target.objects.keys).union(current.objects.keys).union(current.links.differingSources(from: target.links))
        let linkSources = Set(ids.filter { current.links.ends(from: $0) != target.links.ends(from: $0) })
        for id in ids {
            let old = target.objects[id], new = current.objects[id]
            if old != new {
                if let d = old?.digest { wanted.insert(d) }
                if let d = new?.digest { wanted.insert(d) }
            } else if linkSources.contains(id), let d = old?.digest ?? new?.digest {
                wanted.insert(d)
            }
        }
        let missing = Array(wanted.filter { bodies[$0] == nil })
        let stored = try await store.read { tx in try await tx.blobs(tenant: tenant, digests: missing) }
        bodies.merge(stored) { a, _ in a }
        if let lost = missing.first(where: { bodies[$0] == nil }) {
            throw BackupError.damaged("Blob \(lost) is missing.")
        }
        return (DifferenceReport.compare(target: target, current: current, bodies: bodies, among: ids), target, bodies)
    }

    /// The states a report compares, each holding only the ids that can differ (`touched`), read from the manifests by
    /// id: against now, the ids the change log names since `from` and the sources that link to what it purged; against
    /// a later snapshot, the ids the snapshots after `from` in its chain record. nil when `to` does not descend from
    /// `from` (then every id is compared).
    func touchedStates(tenant: String, from: SnapshotRecord, to: String?) async throws
        -> (target: State, current: State, bodies: [String: String], touched: Set<String>)? {
        guard let to else {
            let chain = try await manifestChain(tenant: tenant, snapshot: from.id)
            let log = try await changeLog(tenant: tenant, since: from)
            let base = chain.state(of: log.changed.union(log.purged).union(chain.sources(mentioning: log.purged)))
            let (current, bodies, touched) = try await liveChanges(tenant: tenant, since: from, base: base, onlyTouched: true, log: log)
            return (base, current, bodies, touched)
        }
        let chain = try await manifestChain(tenant: tenant, snapshot: try snapshot(tenant: tenant, id: to).id)
        guard let position = chain.snapshots.firstIndex(where: { $0.id == from.id }) else { return nil }
        let touched = chain.touched(after: position + 1)
        return (chain.prefix(through: position).state(of: touched), chain.state(of: touched), [:], touched)
    }
}
