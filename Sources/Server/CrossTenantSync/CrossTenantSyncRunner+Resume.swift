import Foundation
import Sync
import TesseraCore

/// Where a scheduled cross-tenant synchronization run stands after the batches the target answered (the run's
/// ``SyncRunLease`` checkpoint): its id and start (the target recognises the run's objects by that id, so a resumed run
/// keeps it), the counts so far, and how far the objects in scope went, by id: users in id order up to `user`, then
/// groups in id order up to `group`, of which the first `groupMembers` members (in id order) went.
struct CrossTenantSyncProgress: Codable {
    var runID: String
    var began: Date
    var report = CrossTenantSyncReport()
    var user: String?
    var group: String?
    var groupMembers = 0

    init(runID: String, began: Date) {
        self.runID = runID
        self.began = began
    }

    init?(text: String) {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        guard let decoded = try? decoder.decode(Self.self, from: Data(text.utf8)) else { return nil }
        self = decoded
    }

    var text: String {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// The objects in scope in the order a run sends them: users by id, groups by id with their members by id.
    static func ordered(_ objects: CrossTenantSyncScope.Objects) -> CrossTenantSyncScope.Objects {
        CrossTenantSyncScope.Objects(users: objects.users.sorted { $0.id < $1.id }, groups: objects.groups.sorted { $0.id < $1.id }.map { group in
            var group = group
            group.memberIDs.sort()
            return group
        })
    }

    /// What is left to send of `objects` (``ordered(_:)``) past the cursor.
    func remaining(_ objects: CrossTenantSyncScope.Objects) -> CrossTenantSyncScope.Objects {
        var left = objects
        if let group {
            left.users = []
            left.groups = objects.groups.compactMap { item in
                if item.id < group { return nil }
                guard item.id == group else { return item }
                guard groupMembers < item.memberIDs.count else { return nil }
                var rest = item
                rest.memberIDs = Array(item.memberIDs.dropFirst(groupMembers))
                return rest
            }
        } else if let user {
            left.users = objects.users.filter { $0.id > user }
        }
        return left
    }

    /// Moves the cursor past `batch`, which the target answered.
    mutating func advance(past batch: CrossTenantSyncBatch) {
        if let last = batch.users.last { user = last.id }
        for part in batch.groups {
            groupMembers = part.id == group ? groupMembers + part.memberIDs.count : part.memberIDs.count
            group = part.id
        }
    }
}

extension CrossTenantSyncRunner {
    /// The lease name of a job's scheduled runs.
    static func work(job: String) -> String { "crosstenantsync:\(job.lowercased())" }

    /// Test seam: called after each batch's checkpoint is saved, with how many batches this node sent.
    @TaskLocal static var batchCommitted: (@Sendable (Int) async throws -> Void)?

    /// Leaves a run this node, now stopping, began for another node to resume: the job says when it was handed back,
    /// then the lease ends (its checkpoint stays), so another node, which looks once a second, takes it up.
    func handBack(_ keeper: SyncRunKeeper, request: Request) async throws {
        let tenant = request.tenant.id, now = app.clock.now
        let (spID, jobID) = (request.servicePrincipalID, request.jobID)
        // One transaction, the setting locked: a Graph change of the job made at once on another node is kept.
        try await SynchronizationSettings.update(tenant: tenant, store: app.store) { settings in
            if var configuration = settings.servicePrincipals[spID], let index = configuration.jobs.firstIndex(where: { $0.id == jobID }) {
                configuration.jobs[index].handedBackAt = Timestamp.format(now)
                configuration.jobs[index].resumedAt = nil
                settings.servicePrincipals[spID] = configuration
            }
        }
        _ = try await SyncRunLeases.handBack(store: app.store, keeper.initial, now: now)
    }
}
