import Foundation
import Logging
import TesseraCore

/// What a governing tenant's administrator does in a governed tenant is audited in both tenants: the governed tenant
/// records it as it records every write (the actor with `homeTenantId`); the governing tenant gets a copy of each of
/// those records, naming the governed tenant, so its own directory audits show what its administrators did elsewhere.
///
/// The copies are kinds of their own (`governedTenantActivity`), so they never enter the governing tenant's delta or
/// backups as objects it has; the audit shows the original target type and the governed tenant in
/// `additionalDetails`. They are written right after the governed tenant's write commits, each record once (a
/// single-use key per governed record, so overlapping requests of one administrator do not copy twice): a server
/// stopped between the two leaves that action in the governed tenant's audit only.
struct GovernedAudit {
    let app: TesseraApp
    let logger = Logger(label: "tessera.governance.audit")

    static let kind = ObjectKind(rawValue: "governedTenantActivity")

    /// Runs `write` (a request of `caller`, a governing administrator in its governed tenant) and copies the audit
    /// records it wrote there into the administrator's home tenant.
    func mirroring(_ caller: Caller, _ write: () async throws -> APIResponse) async throws -> APIResponse {
        guard let home = caller.actor.homeTenantId, home != caller.tenant else { return try await write() }
        let governed = caller.tenant
        let before = try await app.store.read { tx in try await tx.latestSequence(tenant: governed) }
        let response = try await write()
        guard response.status < 400 else { return response }
        do {
            try await copy(tenant: governed, after: before, actor: caller.actor.id, home: home)
        } catch {
            logger.error("Could not copy the audit of \(caller.actor.id)'s request in tenant \(governed) to tenant \(home): \(String(describing: error))")
        }
        return response
    }

    /// Copies the records `actor` of `home` wrote in `tenant` after sequence `after`.
    func copy(tenant: String, after: Int64, actor: String, home: String) async throws {
        var records: [ChangeRecord] = []
        var cursor = after
        while true {
            let from = cursor
            let page = try await app.store.read { tx in try await tx.changes(tenant: tenant, kinds: nil, after: from, limit: 500) }
            records += page.filter { $0.actor["user"]?["id"]?.stringValue == actor && $0.actor["user"]?["homeTenantId"]?.stringValue == home }
            guard page.count == 500, let last = page.last else { break }
            cursor = last.seq
        }
        guard !records.isEmpty else { return }
        let copied = records
        let name = try await app.store.read { tx in try await tx.tenant(tenant) }?.name ?? ""
        let now = app.clock.now
        let (stamp, keep) = (Timestamp.format(now), Timestamp.format(now.addingTimeInterval(86_400)))
        try await app.store.write { tx in
            for record in copied {
                // Each record is copied once, even when two requests of the same administrator overlap and both see it.
                guard try await tx.consumeOnce(tenant: home, key: "governedAudit:\(tenant):\(record.seq)", expiresAt: keep, now: stamp) else { continue }
                var details = record.details.objectValue ?? [:]
                details["targetType"] = .string(record.kind.rawValue.prefix(1).uppercased() + record.kind.rawValue.dropFirst())
                details["additionalDetails"] = [
                    ["key": "GovernedTenantId", "value": .string(tenant)], ["key": "GovernedTenantName", "value": .string(name)],
                    ["key": "GovernedTenantAuditId", "value": .string("Directory_\(record.seq)")],
                ]
                _ = try await tx.record(ChangeRecord(tenant: home, objectId: record.objectId, kind: Self.kind, operation: record.operation,
                                                     activity: record.activity, actor: record.actor, at: record.at, details: .object(details)))
            }
        }
    }
}
