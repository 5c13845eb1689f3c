import Foundation
import TesseraCore

extension CrossTenantSyncImport {
    /// Creates or updates the security groups of one slice of a batch; their members are kept on the staged group
    /// (a group's members may come in several batches of a run) and written at the end of the run.
    func applyGroups(_ groups: [CrossTenantSyncBatch.Group], run: inout Run, report: inout CrossTenantSyncReport) async throws {
        let tenant = run.target.id, source = run.source
        let ids = groups.map { Self.stagingID(source: source, object: $0.id) }
        var staged = try await self.staged(ids, tenant: tenant)
        let clouds = ids.compactMap { staged[$0]?.cloudID }
        let current = Dictionary(try await store.read { tx in try await tx.objects(tenant: tenant, ids: clouds) }.map { ($0.id, $0) }) { a, _ in a }
        var writes: [DirectoryWrite] = [], planned: [(index: Int, create: Bool)] = []
        for (index, group) in groups.enumerated() {
            let id = ids[index]
            var item = staged[id] ?? newStaged(id, run: run, type: "Group")
            // Members accumulate over the run's batches; a new run starts afresh.
            let earlier = item.object.details["runId"]?.stringValue == run.batch.runID ? item.values("members") : []
            item.attributes["members"] = Array(Set(earlier + group.memberIDs)).sorted()
            item.object.details["displayName"] = .string(group.displayName)
            item.object.details["runId"] = .string(run.batch.runID)
            staged[id] = item
            let desired: [String: JSONValue] = [
                "displayName": .string(group.displayName), "description": .optional(group.description), "mailEnabled": false,
                "securityEnabled": true, "mailNickname": .string(group.mailNickname),
            ]
            if let cloud = item.cloudID, let object = current[cloud], object.deletedAt == nil {
                var patch: [String: JSONValue] = [:]
                for (key, value) in desired where object.body[key] != value { patch[key] = value }
                guard !patch.isEmpty else { continue }
                writes.append(.update(id: cloud, kind: .group, patch: patch))
                planned.append((index, false))
            } else if let cloud = item.cloudID, current[cloud]?.deletedAt != nil {
                // Back in scope: the deleted group is restored, then brought up to date.
                _ = try await directory.restore(tenant: tenant, id: cloud, actor: Self.actor)
                writes.append(.update(id: cloud, kind: .group, patch: desired))
                planned.append((index, false))
            } else {
                writes.append(.create(.group, body: desired))
                planned.append((index, true))
            }
        }
        let results = try await directory.apply(writes, tenant: tenant, actor: Self.actor, allowReadOnly: true)
        let now = Timestamp.format(clock.now)
        for (plan, result) in zip(planned, results) {
            let group = groups[plan.index], id = ids[plan.index]
            switch result {
            case .success(let object):
                staged[id]?.object.cloudID = object.id
                staged[id]?.object.state = "joined"
                staged[id]?.object.details["error"] = nil
                if plan.create { report.added += 1 } else { report.updated += 1 }
                report.entries.append(Self.entry(group.id, group.displayName, "Group", plan.create ? "create" : "update", target: object.id,
                                                 reason: "Group '\(group.displayName)' was \(plan.create ? "created" : "updated") in the target tenant."))
            case .failure(let error):
                staged[id]?.object.state = "error"
                staged[id]?.object.details["error"] = ["code": .string(error.code.rawValue), "message": .string(error.message), "occurredDateTime": .string(now)]
                report.failed += 1
                report.entries.append(Self.entry(group.id, group.displayName, "Group", plan.create ? "create" : "update", "failure", target: nil,
                                                 reason: error.message, error: .init(code: error.code.rawValue, message: error.message)))
            }
        }
        try await SyncCycle(directory: directory, clock: clock).saveStaged(ids.compactMap { staged[$0] })
    }

    /// The staged objects of this source, a page at a time.
    func stagedPages(run: Run, _ body: ([StagedUser]) async throws -> Void) async throws {
        let tenant = run.target.id, connector = run.connector
        var after: String?
        while true {
            let page = try await store.read { [after] tx in
                try await tx.stagedObjects(tenant: tenant, connector: connector, states: nil, afterId: after, limit: SyncCycle.pageSize)
            }
            try await body(page.map(StagedUser.init))
            guard page.count == SyncCycle.pageSize, let last = page.last?.id else { return }
            after = last
        }
    }

    /// Makes each group of the run have exactly the synchronized users its source members are (members out of scope
    /// are not synchronized, as Entra leaves them out).
    func syncMemberships(run: Run, report: inout CrossTenantSyncReport) async throws {
        let tenant = run.target.id, source = run.source
        var groups: [StagedUser] = []
        try await stagedPages(run: run) { page in
            groups += page.filter { $0.object.details["identityType"] == "Group" && $0.state == "joined" && $0.object.details["runId"]?.stringValue == run.batch.runID }
        }
        var writes: [DirectoryWrite] = []
        for group in groups {
            guard let cloud = group.cloudID else { continue }
            let memberIDs = group.values("members").map { Self.stagingID(source: source, object: $0) }
            let (wanted, present) = try await store.read { tx in
                let members = try await tx.stagedObjects(tenant: tenant, ids: memberIDs).map(StagedUser.init)
                return (Set(members.filter { $0.state == "joined" }.compactMap(\.cloudID)),
                        Set(try await tx.targets(tenant: tenant, source: cloud, relation: "members")))
            }
            for member in wanted.subtracting(present).sorted() { writes.append(.link(source: cloud, relation: "members", target: member)) }
            for member in present.subtracting(wanted).sorted() { writes.append(.unlink(source: cloud, relation: "members", target: member)) }
        }
        for start in stride(from: 0, to: writes.count, by: Self.bulkSize) {
            let slice = Array(writes[start..<min(start + Self.bulkSize, writes.count)])
            for (write, result) in zip(slice, try await directory.apply(slice, tenant: tenant, actor: Self.actor, allowReadOnly: true)) {
                guard case .failure(let error) = result, case .link(let group, _, let member) = write else { continue }
                report.failed += 1
                report.entries.append(Self.entry(group, group, "Group", "update", "failure", target: group,
                                                 reason: "Member '\(member)' could not be added: \(error.message)",
                                                 error: .init(code: error.code.rawValue, message: error.message)))
            }
        }
    }

    /// Deletes (softly, so they can come back) the target objects of what this full run did not name: users and groups
    /// that left the scope or were deleted at home. Past the threshold nothing is deleted, unless the run forces it.
    func removeUnseen(run: Run, report: inout CrossTenantSyncReport) async throws {
        var gone: [StagedUser] = [], dropped: [StagedUser] = []
        try await stagedPages(run: run) { page in
            for item in page where item.object.details["runId"]?.stringValue != run.batch.runID && item.state != "outOfScope" {
                if item.cloudID != nil && item.state == "joined" { gone.append(item) } else { dropped.append(item) }
            }
        }
        let cycle = SyncCycle(directory: directory, clock: clock)
        for item in dropped { try await cycle.removeStaged(item, tenant: run.target.id) }
        let threshold = DeletionThreshold(limit: run.batch.deleteThreshold)
        if threshold.holdsBack(gone.count), !run.batch.forceDeletes {
            report.status = "stopped-deletion-threshold-exceeded"
            report.pendingDeletions = gone.count
            return
        }
        for start in stride(from: 0, to: gone.count, by: Self.bulkSize) {
            let slice = Array(gone[start..<min(start + Self.bulkSize, gone.count)])
            let results = try await directory.apply(slice.map { .delete(id: $0.cloudID ?? "", kind: $0.cloudKindForCrossTenant) }, tenant: run.target.id,
                                                    actor: Self.actor, allowReadOnly: true)
            var kept: [StagedUser] = []
            for (item, result) in zip(slice, results) {
                let type = item.object.details["identityType"]?.stringValue ?? "User"
                let name = item.object.details["displayName"]?.stringValue ?? ""
                let sourceID = String(item.object.id.split(separator: ":").last ?? "")
                let refused: DirectoryError? = if case .failure(let error) = result, error.code != .notFound { error } else { nil }
                switch refused {
                case nil:
                    var out = item
                    out.object.state = "outOfScope"
                    kept.append(out)
                    report.deleted += 1
                    report.entries.append(Self.entry(sourceID, name, type, "delete", target: item.cloudID,
                                                     reason: "\(type) '\(name)' left the scope of the job (or was deleted in the source tenant) and was deleted in the target tenant."))
                case .some(let error):
                    report.failed += 1
                    report.entries.append(Self.entry(sourceID, name, type, "delete", "failure", target: item.cloudID, reason: error.message,
                                                     error: .init(code: error.code.rawValue, message: error.message)))
                }
            }
            try await cycle.saveStaged(kept)
        }
    }
}

extension StagedUser {
    var cloudKindForCrossTenant: ObjectKind { object.details["identityType"] == "Group" ? .group : .user }
}
