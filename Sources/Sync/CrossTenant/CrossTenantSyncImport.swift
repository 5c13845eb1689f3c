import Foundation
public import TesseraCore

/// The target tenant's side of cross-tenant synchronization: a connector whose source is another tenant's directory.
/// It uses the sync engine's parts rather than copies of them: each source object is a staged object of the target's
/// staging area (a `StagedObject`, joined to its cloud object, quarantined or in error there, listed
/// by `tessera sync errors`), each user is matched by `Matcher` (its hard match is the home identity, so an invited
/// B2B user of that account is taken over, but not one holding a directory role: `InvalidHardMatch`), and a run that
/// would delete more than the threshold deletes nothing (`DeletionThreshold`). Writes go through `DirectoryService`,
/// 250 to a transaction, audited under `actor`.
///
/// Nothing is written unless the target allows inbound synchronization from the source
/// (`crossTenantAccessPolicy/partners/{source}/identitySynchronization` `userSyncInbound.isSyncAllowed`).
public struct CrossTenantSyncImport: Sendable {
    public let directory: DirectoryService
    public let clock: any TimeSource

    /// Who cross-tenant synchronization acts as in the target's audit log.
    public static let actor = Actor(kind: .application, id: "5f1c0000-0000-0000-0000-0000000c7a57", displayName: "Tessera cross-tenant synchronization",
                                    appId: "5f1c0000-0000-0000-0000-0000000c7a57")
    /// Entra's error when the target tenant does not allow the source to synchronize into it.
    public static let policyRefused = "AzureDirectoryB2BManagementPolicyCheckFailure"
    static let bulkSize = 250

    public init(directory: DirectoryService, clock: any TimeSource = SystemTimeSource()) {
        self.directory = directory
        self.clock = clock
    }

    var store: any DirectoryStore { directory.store }

    /// The staging area's connector name for a source tenant.
    static func connector(source: String) -> String { "crosstenant:\(source.lowercased())" }
    static func stagingID(source: String, object: String) -> String { "xts:\(source.lowercased()):\(object.lowercased())" }

    /// Why `source` may not synchronize into `target`; nil when the target's policy allows it.
    public func refusal(source: String, target: TenantRecord) async throws -> CrossTenantSyncReport.Failure? {
        guard source.lowercased() != target.id else {
            return .init(code: Self.policyRefused, message: "A tenant does not synchronize into itself.")
        }
        let access = try await directory.crossTenantAccess(tenant: target.id, partner: source)
        guard access.partner?.identitySynchronization?.isSyncAllowed == true else {
            return .init(code: Self.policyRefused,
                         message: "The target tenant '\(target.id)' does not allow user synchronization from tenant '\(source.lowercased())': its cross-tenant access settings for that partner have no identitySynchronization with userSyncInbound.isSyncAllowed true.")
        }
        return nil
    }

    /// Applies one batch in `target`, or refuses it whole (status `refused`, nothing written).
    public func apply(_ batch: CrossTenantSyncBatch, target: TenantRecord) async throws -> CrossTenantSyncReport {
        var report = CrossTenantSyncReport()
        if let refusal = try await refusal(source: batch.sourceTenantID, target: target) {
            report.status = "refused"
            report.refusal = refusal
            report.skipped = batch.users.count + batch.groups.count
            return report
        }
        let access = try await directory.crossTenantAccess(tenant: target.id, partner: batch.sourceTenantID)
        let inbound = access.partner?.settings.automaticUserConsentSettings?.inboundAllowed
            ?? access.defaults.automaticUserConsentSettings?.inboundAllowed ?? false
        let settings = try await SyncSettings.load(tenant: target.id, store: store)
        var run = Run(batch: batch, target: target, automaticRedemption: batch.automaticConsentOutbound && inbound,
                      matcher: Matcher(features: settings.features, enforcementDate: settings.enforcementDate))
        for start in stride(from: 0, to: batch.users.count, by: Self.bulkSize) {
            try await applyUsers(Array(batch.users[start..<min(start + Self.bulkSize, batch.users.count)]), run: &run, report: &report)
        }
        for start in stride(from: 0, to: batch.groups.count, by: Self.bulkSize) {
            try await applyGroups(Array(batch.groups[start..<min(start + Self.bulkSize, batch.groups.count)]), run: &run, report: &report)
        }
        if batch.isLast {
            if batch.isFull { try await removeUnseen(run: run, report: &report) }
            try await syncMemberships(run: run, report: &report)
            try await directory.recordEvent(tenant: target.id, objectId: batch.runID, kind: .syncObject, activity: "Cross-tenant synchronization run",
                                            actor: Self.actor, details: [
                                                "sourceTenantId": .string(batch.sourceTenantID), "jobId": .string(batch.jobID),
                                                "status": .string(report.status)])
        }
        return report
    }

    /// What one batch's application knows beyond its objects.
    struct Run {
        let batch: CrossTenantSyncBatch
        let target: TenantRecord
        let automaticRedemption: Bool
        let matcher: Matcher
        var connector: String { CrossTenantSyncImport.connector(source: batch.sourceTenantID) }
        var source: String { batch.sourceTenantID }
        /// The user's object id in the source tenant, which is the hard match (the home identity of a B2B user).
        func anchor(_ user: String) -> String { "\(source)/\(user)" }
    }

    func staged(_ ids: [String], tenant: String) async throws -> [String: StagedUser] {
        let objects = try await store.read { tx in try await tx.stagedObjects(tenant: tenant, ids: ids) }
        return Dictionary(objects.map { ($0.id, StagedUser($0)) }) { a, _ in a }
    }

    func newStaged(_ id: String, run: Run, type: String) -> StagedUser {
        StagedUser(StagedObject(tenant: run.target.id, id: id, connector: run.connector, details: ["identityType": .string(type)]))
    }

    static func entry(_ id: String, _ name: String, _ type: String, _ action: String, _ status: String = "success", target: String?,
                      reason: String, error: CrossTenantSyncReport.Failure? = nil) -> CrossTenantSyncReport.Entry {
        .init(sourceID: id, sourceDisplayName: name, identityType: type, action: action, status: status, targetID: target, reason: reason, error: error)
    }
}

/// Accidental deletions prevention, as directory sync and cross-tenant synchronization apply it: past the limit a run
/// deletes nothing and says so.
struct DeletionThreshold: Sendable, Hashable {
    /// The most deletions a run may make; nil when prevention is off.
    var limit: Int?

    /// The tenant's sync setting (`enabledForCount`, `enabledForPercentage` of the `joined` objects, `disabled`).
    init(settings: SyncSettings, joined: () async throws -> Int) async rethrows {
        switch settings.deletionPreventionType {
        case "disabled": limit = nil
        case "enabledForPercentage": limit = max(1, try await joined() * settings.deletionThreshold / 100)
        default: limit = settings.deletionThreshold
        }
    }

    init(limit: Int?) { self.limit = limit }

    func holdsBack(_ deletions: Int) -> Bool { limit.map { deletions > $0 } ?? false }
}
