/// One write of a batch (`DirectoryService.apply`).
public enum DirectoryWrite: Sendable, Hashable {
    /// Creates an object of a kind from a Graph request body (its `@odata.bind` links included), with `id` when given.
    case create(ObjectKind, body: [String: JSONValue], id: String? = nil)
    /// Applies a Graph PATCH body to an object; with `ifMatch`, only while the object's version is still that one.
    case update(id: String, kind: ObjectKind?, patch: [String: JSONValue], ifMatch: Int64? = nil)
    /// Adds a link (`POST …/{relation}/$ref`).
    case link(source: String, relation: String, target: String)
    /// Removes a link (`DELETE …/{relation}/{id}/$ref`).
    case unlink(source: String, relation: String, target: String)
    /// Deletes an object as `delete` does (soft for the kinds with deleted items).
    case delete(id: String, kind: ObjectKind?)
    /// Puts an object back to a body it had, from a snapshot (`revert`).
    case revert(StoredObject)
    /// Creates again, with its id, an object that was permanently deleted, from a snapshot (`reinstate`).
    case reinstate(StoredObject)
}

extension DirectoryService {
    /// Performs many writes in one transaction, each exactly as its own method (`create`, `update`, `addLink`,
    /// `removeLink`, `delete`, `revert`, `reinstate`) does it:
    /// checked, its unique keys claimed, change-logged and audited. Each write is all or nothing on its own: one that is
    /// refused is reported in its place and leaves nothing behind, and the others commit.
    ///
    /// `DirectoryTransaction` has no savepoints, so each write runs against a `PendingWrites` overlay of the transaction: its checks
    /// read through the overlay (seeing the keys, objects and links the write has claimed so far), its writes are held,
    /// and only a write that passed every check is played into the transaction; the change-log records of every played
    /// write are written together at the end. Should playing a write fail all the same (on PostgreSQL another transaction
    /// may commit a key between the check and the write), the batch's transaction is rolled back and each write runs
    /// again in a transaction of its own.
    ///
    /// - Parameter allowReadOnly: for directory sync, as in `create` and `update` (and `allowSynced` for links).
    /// - Parameter alongside: runs in the batch's transaction after its writes, with their results: what the caller keeps
    ///   about them commits with them (directory sync's staging area). When the batch runs again write by write, it runs
    ///   in a transaction of its own after them.
    /// - Returns: for each write, in order, the object it wrote (a link's source; a deleted object as it was), or why it
    ///   was refused.
    /// - Throws: what the store throws (a lost connection, a full disk): nothing of the batch is written, except, when
    ///   it came while the writes were running one by one, those that ran before it.
    public func apply(_ writes: [DirectoryWrite], tenant: String, actor: Actor, allowReadOnly: Bool = false,
                      alongside: (@Sendable ([Result<StoredObject, DirectoryError>], any DirectoryTransaction) async throws -> Void)? = nil)
        async throws -> [Result<StoredObject, DirectoryError>] {
        guard !writes.isEmpty else { return [] }
        // Ids are chosen once, so a batch that runs again write by write creates the same objects.
        var planned = writes
        var refused = [DirectoryError?](repeating: nil, count: writes.count)
        let instant = clock.now
        for (index, write) in writes.enumerated() {
            guard case .create(let kind, let body, let id) = write else { continue }
            planned[index] = .create(kind, body: body, id: id ?? Identifier.makeTimeOrdered(at: instant))
            // The schema needs no transaction: checked before one starts, as `create` does.
            do {
                try GraphValidator.validate(body, entity: try PolicyRules.schemaEntity(kind: kind, body: body, current: nil))
            } catch {
                refused[index] = error
            }
        }
        let now = self.now, writes = planned, checked = refused
        do {
            return try await write(tenant) { tx in
                var results: [Result<StoredObject, DirectoryError>] = []
                results.reserveCapacity(writes.count)
                var changes: [ChangeRecord] = []
                // Users' UPN domains read once a batch, not once a user (`PendingWrites.requirementsMet`).
                var met: Set<PendingWrites.MetRequirement> = []
                for (index, write) in writes.enumerated() {
                    if let error = checked[index] {
                        results.append(.failure(error))
                        continue
                    }
                    let pending = PendingWrites(tx, met: met)
                    let object: StoredObject
                    do {
                        object = try await Self.perform(write, tenant: tenant, actor: actor, allowReadOnly: allowReadOnly, now: now, tx: pending)
                    } catch let error as DirectoryError {
                        met = await pending.requirementsMet
                        results.append(.failure(error))
                        continue
                    }
                    do {
                        changes += try await pending.play()
                    } catch {
                        throw BatchPlaybackFailed(underlying: error)
                    }
                    met = await pending.requirementsMet
                    results.append(.success(object))
                }
                // The change log of every write that passed, in order, at once.
                try await tx.record(changes)
                try await alongside?(results, tx)
                return results
            }
        } catch is BatchPlaybackFailed {
            var results: [Result<StoredObject, DirectoryError>] = []
            for (index, write) in writes.enumerated() {
                if let error = checked[index] {
                    results.append(.failure(error))
                    continue
                }
                do {
                    results.append(.success(try await self.write(tenant) { tx in
                        try await Self.perform(write, tenant: tenant, actor: actor, allowReadOnly: allowReadOnly, now: now, tx: tx)
                    }))
                } catch let error as DirectoryError {
                    results.append(.failure(error))
                }
            }
            if let alongside {
                let done = results
                try await self.write(tenant) { tx in try await alongside(done, tx) }
            }
            return results
        }
    }

    /// One write of a batch inside a transaction, through the code of its single-object method.
    private static func perform(_ write: DirectoryWrite, tenant: String, actor: Actor, allowReadOnly: Bool, now: String,
                                tx: any DirectoryTransaction) async throws -> StoredObject {
        switch write {
        case .create(let kind, let body, let id):
            return try await insert(kind: kind, body: body, id: id ?? Identifier.make(), tenant: tenant, actor: actor, now: now,
                                    allowReadOnly: allowReadOnly, tx: tx)
        case .update(let id, let kind, let patch, let ifMatch):
            return try await update(tenant: tenant, id: id, kind: kind, patch: patch, actor: actor, ifMatch: ifMatch,
                                    allowReadOnly: allowReadOnly, now: now, tx: tx)
        case .link(let source, let relation, let target):
            guard let rule = linkRules[relation] else { throw DirectoryError.badRequest("Unsupported relation '\(relation)'.") }
            return try await addLink(tenant: tenant, source: source, relation: relation, target: target, rule: rule, actor: actor,
                                     allowSynced: allowReadOnly, now: now, tx: tx)
        case .unlink(let source, let relation, let target):
            return try await removeLink(tenant: tenant, source: source, relation: relation, target: target, actor: actor,
                                        allowSynced: allowReadOnly, now: now, tx: tx)
        case .delete(let id, let kind):
            return try await delete(tenant: tenant, id: id, kind: kind, actor: actor, ifMatch: nil, now: now, tx: tx)
        case .revert(let old):
            return try await revert(tenant: tenant, to: old, actor: actor, now: now, tx: tx)
        case .reinstate(let object):
            return try await reinstate(tenant: tenant, object, actor: actor, now: now, tx: tx)
        }
    }
}

/// A checked write failed when played into the batch's transaction.
private struct BatchPlaybackFailed: Error {
    let underlying: any Error
}
