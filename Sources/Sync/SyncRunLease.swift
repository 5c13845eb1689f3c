public import Foundation
public import TesseraCore

/// What a directory sync run (`sync:<connector>`) or a cross-tenant synchronization run (`crosstenantsync:<job id>`)
/// holds on a cluster: a ``Lease`` (one row per run), so exactly one node runs it, and another resumes it once its
/// node hands it back or is killed. Where the run is (its ``SyncRunCheckpoint``) is a row of its own, written after each
/// batch the run committed, in the same transaction as a renewal of the lease, so a node that lost the lease writes no
/// checkpoint.
public enum SyncRunWork: LeasePurpose {
    public static let kind = CredentialKind(rawValue: "syncRunLease")
    public static let family = "syncRunLeases"
    public static let tenantKey = "runTenant"
    public static let workKey = "work"
}

/// The lease of a directory sync or cross-tenant synchronization run.
public typealias SyncRunLease = Lease<SyncRunWork>

/// Where a run that a node began stands: what it committed so far (its counts, the cursor of its source, what waits
/// for its end), as JSON the run's engine reads back. One row per run, next to its lease; gone once the run ends.
struct SyncRunCheckpoint: CredentialRecord {
    struct Saved: RawRepresentable, Codable, Sendable, Hashable {
        var rawValue: String
        init(rawValue: String) { self.rawValue = rawValue }
    }

    static let kind = CredentialKind(rawValue: "syncRunCheckpoint")
    /// Records of a tenant share one key space: the lease's id, marked.
    static func id(lease: String) -> String { "\(lease)#checkpoint" }

    var id: String
    var progress: String
    var expires: Date
    var state: Saved { Saved(rawValue: "saved") }
    var owner: String? { nil }
}

/// A run's lease with its checkpoint: the operations of ``Lease`` that also read, write or remove the checkpoint.
public enum SyncRunLeases {
    /// How long a lease lasts from its last renewal.
    public static var duration: TimeInterval { Leases.duration }

    /// Takes the lease of `work` when it has none or it has run out; nil when another node holds it. With the lease
    /// comes the run's checkpoint, when a node that held it before committed part of the run.
    public static func take(store: any DirectoryStore, tenant: String, work: String, now: Date) async throws -> (SyncRunLease, String?)? {
        try await store.write { tx in
            guard let lease = try await SyncRunLease.take(tx, tenant: tenant, work: work, now: now) else { return nil }
            let saved = try await tx.credential(SyncRunCheckpoint.self, tenant: Leases.tenant, id: SyncRunCheckpoint.id(lease: lease.id))
            return (lease, saved?.progress)
        }
    }

    /// Saves where the run stands, with a renewal of its lease (one transaction); false when the lease is another's.
    static func checkpoint(store: any DirectoryStore, _ lease: SyncRunLease, progress: String, now: Date) async throws -> Bool {
        try await store.write { tx in
            guard try await lease.renew(tx, now: now) != nil else { return false }
            let saved = SyncRunCheckpoint(id: SyncRunCheckpoint.id(lease: lease.id), progress: progress, expires: now.addingTimeInterval(365 * 86_400))
            if !(try await tx.replaceCredential(saved, tenant: Leases.tenant, ifStateIs: saved.state)) {
                try await tx.insertCredential(saved, tenant: Leases.tenant)
            }
            return true
        }
    }

    /// Ends `lease` now, keeping the run's checkpoint, so another node takes the run up at its next look; false when
    /// it was not this holder's.
    public static func handBack(store: any DirectoryStore, _ lease: SyncRunLease, now: Date) async throws -> Bool {
        try await store.write { tx in try await lease.handBack(tx, now: now) }
    }

    /// Removes `lease` and the run's checkpoint (the run is over); false when the lease was not this holder's.
    @discardableResult
    public static func end(store: any DirectoryStore, _ lease: SyncRunLease) async throws -> Bool {
        try await store.write { tx in
            guard try await lease.holds(tx) else { return false }
            _ = try await tx.deleteCredential(tenant: Leases.tenant, kind: SyncRunCheckpoint.kind, id: SyncRunCheckpoint.id(lease: lease.id))
            return try await lease.end(tx)
        }
    }

    /// Removes the lease and checkpoint of a run that can no longer run (its tenant, connector or job is gone), if no
    /// node holds it; false when one does.
    @discardableResult
    public static func abandon(store: any DirectoryStore, tenant: String, work: String, now: Date) async throws -> Bool {
        guard let (lease, _) = try await take(store: store, tenant: tenant, work: work, now: now) else { return false }
        return try await end(store: store, lease)
    }

    /// Every lease of the deployment's runs (one per run that is running or waiting to be taken up).
    public static func all(store: any DirectoryStore) async throws -> [SyncRunLease] {
        try await SyncRunLease.all(store: store)
    }
}

/// Thrown when a run asked for (on demand, or by a node's schedule) is running on another node: its lease is held.
public struct SyncRunInProgress: Error, CustomStringConvertible {
    public let tenant: String
    public let work: String

    public init(tenant: String, work: String) {
        self.tenant = tenant
        self.work = work
    }

    public var description: String { "A run of \(work) of tenant \(tenant) is in progress on another node." }
}

/// The lease a running run holds, renewed in the background while it runs (``LeaseKeeper/keep(store:clock:lost:failed:)``)
/// and with each checkpoint.
public typealias SyncRunKeeper = LeaseKeeper<SyncRunWork>

extension LeaseKeeper where Purpose == SyncRunWork {
    /// Saves a checkpoint of the run, renewing the lease; false (and the lease is lost) when another node holds it.
    public func checkpoint(store: any DirectoryStore, progress: String, now: Date) async throws -> Bool {
        let held = try await SyncRunLeases.checkpoint(store: store, initial, progress: progress, now: now)
        renewed(held, at: now)
        return held
    }
}
