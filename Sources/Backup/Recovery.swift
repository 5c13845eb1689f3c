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
    /// `dryRun` returns what would be done without writing; `shouldStop` is asked between batches of changes (cancel).
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
            return StoredObject(tenant: tenant, id: change.id, kind: entry.kind, body: Self.withoutSecretDigests(body),
                                deletedAt: entry.deletedAt)
        }
        // Objects first (those the links need), then links, then what was added since goes. The changes go to the
        // directory a batch at a time (`DirectoryService.apply`, one transaction each): their objects, then the links
        // of those whose object was written; a change fails alone, with the first of its writes that was refused.
        let order: [DifferenceReport.Action: Int] = [.recreate: 0, .restore: 1, .update: 2, .softDelete: 3]
        let sorted = planned.sorted { (order[$0.action]!, $0.id) < (order[$1.action]!, $1.id) }
        var outcomes: [RecoveryOutcome] = []
        for start in stride(from: 0, to: sorted.count, by: Self.recoveryBatch) {
            if await shouldStop() { return (planned, outcomes, true) }
            await progress(start, sorted.count)
            let batch = Array(sorted[start..<min(start + Self.recoveryBatch, sorted.count)])
            var failures: [Int: String] = [:]
            var writes: [(change: Int, write: DirectoryWrite)] = []
            for (index, change) in batch.enumerated() {
                do {
                    switch change.action {
                    case .recreate:
                        writes.append((index, .reinstate(try snapshotObject(change))))
                    case .restore, .update:
                        if target.objects[change.id]?.digest != nil, !change.properties.isEmpty || change.action == .restore {
                            writes.append((index, .revert(try snapshotObject(change))))
                        }
                    case .softDelete:
                        writes.append((index, .delete(id: change.id, kind: nil)))
                    }
                } catch let error as BackupError {
                    failures[index] = error.description
                } catch let error as DirectoryError {
                    failures[index] = error.message
                }
            }
            try await apply(writes, tenant: tenant, directory: directory, actor: actor, failures: &failures)
            writes = []
            for (index, change) in batch.enumerated() where failures[index] == nil && change.action != .softDelete {
                for link in change.links {
                    writes.append((index, link.added ? .unlink(source: change.id, relation: link.relation, target: link.target)
                                                     : .link(source: change.id, relation: link.relation, target: link.target)))
                }
            }
            try await apply(writes, tenant: tenant, directory: directory, actor: actor, failures: &failures)
            outcomes += batch.enumerated().map { RecoveryOutcome(change: $1, failure: failures[$0]) }
        }
        await progress(sorted.count, sorted.count)
        return (planned, outcomes, false)
    }

    /// A snapshot's copy of an object without the `_` members of its `passwordCredentials` (the `_hash` that snapshots
    /// taken before the credential records held): a client secret's digest lives only in its credential record, so a
    /// recovered application lists its secrets but only those whose records are still there authenticate.
    static func withoutSecretDigests(_ body: [String: JSONValue]) -> [String: JSONValue] {
        guard let credentials = body["passwordCredentials"]?.arrayValue else { return body }
        var body = body
        body["passwordCredentials"] = .array(credentials.map { credential in
            guard case .object(let members) = credential else { return credential }
            return .object(members.filter { !$0.key.hasPrefix("_") })
        })
        return body
    }

    /// Changes written in one transaction (a cancel is seen between batches).
    static let recoveryBatch = 100

    /// Applies the writes of a batch's changes; a change's first refused write is its failure.
    private func apply(_ writes: [(change: Int, write: DirectoryWrite)], tenant: String, directory: DirectoryService, actor: Actor,
                       failures: inout [Int: String]) async throws {
        let results = try await directory.apply(writes.map(\.write), tenant: tenant, actor: actor)
        for (write, result) in zip(writes, results) where failures[write.change] == nil {
            if case .failure(let error) = result { failures[write.change] = error.message }
        }
    }

    func snapshotRecord(tenant: String, id: String, in records: [SnapshotRecord]) throws -> SnapshotRecord {
        guard let found = records.first(where: { $0.id == id.lowercased() }) else { throw DirectoryError.notFound(id) }
        return found
    }
}
