import Crypto
public import TesseraCore

/// Which objects a difference report or recovery covers (Graph's `filteringCriteria`): all, some entity types
/// (`recoveryJobEntityNamesFilter`), or some objects by type and id (`recoveryJobEntityNameAndIdsFilter`).
public enum RecoveryFilter: Sendable, Hashable {
    case all
    case entityTypes(Set<String>)
    case ids([String: Set<String>])

    public func includes(_ change: DifferenceReport.ObjectChange) -> Bool {
        let type = DifferenceReport.entityTypeName(change.kind).lowercased()
        switch self {
        case .all: return true
        case .entityTypes(let types): return types.contains(type)
        case .ids(let byType): return byType[type]?.contains(change.id) == true
        }
    }
}

extension RecoveryFilter {
    /// Checks entity type names (Graph's `resourceTypeName`, any case) against what a snapshot holds.
    public static func checkTypes(_ names: some Sequence<String>) throws(DirectoryError) {
        let known = Set(DifferenceReport.entityTypeNames.map { $0.lowercased() })
        for name in names where !known.contains(name.lowercased()) {
            throw DirectoryError.badRequest("Unknown entity type '\(name)': use one of \(DifferenceReport.entityTypeNames.joined(separator: ", ")).")
        }
    }
}

/// What a recovery did with one change: done, or why not.
public struct RecoveryOutcome: Sendable, Hashable {
    public var change: DifferenceReport.ObjectChange
    /// nil when the change was applied.
    public var failure: String?
}

extension BackupService {
    /// Puts the tenant back to a snapshot, for the objects `filter` names, through `directory` (so unique keys,
    /// links and the audit log hold, under `actor`). In Entra's model: objects added since are soft-deleted,
    /// changed ones reverted, soft-deleted ones restored; beyond Entra, hard-deleted ones are created again with
    /// their original ids when their unique keys are free. Objects synchronised from on-premises are left alone.
    ///
    /// A change that cannot be applied (a unique key taken since) is a failed change, not a failed recovery. The
    /// snapshot is checked first: a damaged one is refused before anything is written. A recovery works from the
    /// difference against the directory as it is, so running it again (after a crash, say) finishes what is left.
    /// `dryRun` returns what would be done without writing; `shouldStop` is asked between changes (cancel).
    public func recover(tenant: String, snapshot id: String, filter: RecoveryFilter, directory: DirectoryService, actor: Actor,
                        dryRun: Bool = false, shouldStop: @Sendable () async -> Bool = { false },
                        progress: @Sendable (Int, Int) async -> Void = { _, _ in }) async throws -> (planned: [DifferenceReport.ObjectChange], outcomes: [RecoveryOutcome], stopped: Bool) {
        let record = try snapshotRecord(tenant: tenant, id: id, in: try await snapshots(tenant: tenant))
        let (report, target, bodies) = try await comparison(tenant: tenant, from: record.id, to: nil)
        guard target.digest == record.digest else {
            throw BackupError.damaged("Snapshot \(record.id) does not match its digest; nothing was recovered.")
        }
        for digest in Set(report.changes.compactMap { target.objects[$0.id]?.digest }) {
            guard let body = bodies[digest], State.hex(SHA256.hash(data: Array(body.utf8))) == digest else {
                throw BackupError.damaged("Blob \(digest) of snapshot \(record.id) is missing or altered; nothing was recovered.")
            }
        }
        let planned = report.recoverable.filter(filter.includes)
        guard !dryRun else { return (planned, [], false) }

        func snapshotObject(_ change: DifferenceReport.ObjectChange) throws -> StoredObject {
            guard let entry = target.objects[change.id], let digest = entry.digest, let text = bodies[digest],
                  case .object(let body) = try JSONParser.parse(Array(text.utf8))
            else { throw BackupError.damaged("The snapshot's copy of \(change.id) cannot be read.") }
            return StoredObject(tenant: tenant, id: change.id, kind: entry.kind, body: body, deletedAt: entry.deletedAt)
        }
        // Objects first (those the links need), then links, then what was added since goes.
        let order: [DifferenceReport.Action: Int] = [.recreate: 0, .restore: 1, .update: 2, .softDelete: 3]
        let sorted = planned.sorted { (order[$0.action]!, $0.id) < (order[$1.action]!, $1.id) }
        var outcomes: [RecoveryOutcome] = []
        for (index, change) in sorted.enumerated() {
            if await shouldStop() { return (planned, outcomes, true) }
            await progress(index, sorted.count)
            do {
                switch change.action {
                case .recreate:
                    try await directory.reinstate(tenant: tenant, try snapshotObject(change), actor: actor)
                case .restore, .update:
                    if target.objects[change.id]?.digest != nil, !change.properties.isEmpty || change.action == .restore {
                        try await directory.revert(tenant: tenant, to: try snapshotObject(change), actor: actor)
                    }
                case .softDelete:
                    try await directory.delete(tenant: tenant, id: change.id, kind: nil, actor: actor)
                }
                if change.action != .softDelete {
                    for link in change.links {
                        if link.added {
                            try await directory.removeLink(tenant: tenant, source: change.id, relation: link.relation, target: link.target, actor: actor)
                        } else {
                            try await directory.addLink(tenant: tenant, source: change.id, relation: link.relation, target: link.target, actor: actor)
                        }
                    }
                }
                outcomes.append(RecoveryOutcome(change: change, failure: nil))
            } catch let error as DirectoryError {
                outcomes.append(RecoveryOutcome(change: change, failure: error.message))
            } catch let error as BackupError {
                outcomes.append(RecoveryOutcome(change: change, failure: error.description))
            }
        }
        await progress(sorted.count, sorted.count)
        return (planned, outcomes, false)
    }

    func snapshotRecord(tenant: String, id: String, in records: [SnapshotRecord]) throws -> SnapshotRecord {
        guard let found = records.first(where: { $0.id == id.lowercased() }) else { throw DirectoryError.notFound(id) }
        return found
    }
}
