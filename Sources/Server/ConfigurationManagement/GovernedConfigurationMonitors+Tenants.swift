import Backup
import Foundation
import TesseraCore

extension GovernedConfigurationMonitors {
    // MARK: Request bodies

    struct Request {
        var displayName: String?
        var description: JSONValue?
        var baseline: ConfigurationBaseline?
        var parameters: JSONValue?
        var tenantIDs: [String]?
    }

    /// A POST or PATCH body with Graph's errors. The baseline is given inline (`baseline`), or as this tenant's monitor
    /// (`sourceMonitorId`) or snapshot (`sourceSnapshotId`) whose baseline is copied; one of them is required to create.
    func parse(_ body: [String: JSONValue], creating: Bool) async throws -> Request {
        for key in body.keys where !Self.writable.contains(key) {
            if Self.readOnly.contains(key) { throw DirectoryError.badRequest("Property '\(key)' is read-only.") }
            throw DirectoryError.badRequest("Property '\(key)' does not exist on type 'microsoft.graph.governedConfigurationMonitor'.")
        }
        var request = Request()
        if let name = body["displayName"] {
            guard let text = name.stringValue, !text.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw DirectoryError.badRequest("'displayName' must be a non-empty string.")
            }
            request.displayName = text
        } else if creating {
            throw DirectoryError.badRequest("'displayName' is required.")
        }
        if let description = body["description"] {
            guard description == .null || description.stringValue != nil else { throw DirectoryError.badRequest("'description' must be a string.") }
            request.description = description
        }
        if let parameters = body["parameters"] {
            guard parameters.objectValue != nil else { throw DirectoryError.badRequest("'parameters' must be an object of key-value pairs.") }
            request.parameters = parameters
        }
        let sources = ["baseline", "sourceMonitorId", "sourceSnapshotId"].filter { body[$0] != nil }
        guard sources.count <= 1 else {
            throw DirectoryError.badRequest("Give one of 'baseline', 'sourceMonitorId' and 'sourceSnapshotId', not \(sources.count).")
        }
        if creating, sources.isEmpty { throw DirectoryError.badRequest("One of 'baseline', 'sourceMonitorId' or 'sourceSnapshotId' is required.") }
        switch sources.first {
        case "baseline": request.baseline = Self.portable(try ConfigurationBaseline.parse(body["baseline"]))
        case "sourceMonitorId", "sourceSnapshotId":
            let key = sources[0], kind = key == "sourceMonitorId" ? ConfigurationMonitors.monitorKind : ConfigurationMonitors.snapshotKind
            guard let id = body[key]?.stringValue, !id.isEmpty else { throw DirectoryError.badRequest("'\(key)' must be a string.") }
            let source = try await ConfigurationMonitors(app: app).one(tenant: tenant, kind: kind, id: id)
            let stored = kind == ConfigurationMonitors.monitorKind ? source.body["_baseline"] : .object(source.body)
            request.baseline = Self.portable(try ConfigurationBaseline.parse(stored))
        default: break
        }
        if let ids = body["governedTenantIds"] {
            guard let list = ids.arrayValue, !list.isEmpty else {
                throw DirectoryError.badRequest("'governedTenantIds' must name at least one tenant.")
            }
            var tenants: [String] = []
            for item in list {
                guard let id = item.stringValue?.lowercased(), Identifier.isGUID(id) else {
                    throw DirectoryError.badRequest("'governedTenantIds' holds \(item.serialized), which is not a tenant id.")
                }
                guard id != tenant else { throw DirectoryError.badRequest("A tenant does not govern itself: 'governedTenantIds' names this tenant.") }
                guard !tenants.contains(id) else { throw DirectoryError.badRequest("'governedTenantIds' names tenant \(id) twice.") }
                tenants.append(id)
            }
            request.tenantIDs = tenants
        } else if creating {
            throw DirectoryError.badRequest("'governedTenantIds' is required.")
        }
        return request
    }

    /// `baseline` for other tenants: a resource's `Id` is dropped when its type names instances by another key (an
    /// object id is one tenant's), so each tenant's instance is found by the key.
    static func portable(_ baseline: ConfigurationBaseline) -> ConfigurationBaseline {
        var out = baseline
        out.resources = baseline.resources.map { resource in
            guard let type = ConfigurationResourceType.named(resource.resourceType), type.key != "Id",
                  resource.properties[type.key]?.stringValue?.isEmpty == false else { return resource }
            var copy = resource
            copy.properties["Id"] = nil
            return copy
        }
        return out
    }

    // MARK: The tenants side by side

    /// The record as Graph shows it: each governed tenant with its relationship's status and, while this tenant may read
    /// it, its monitor's status, active drifts and last run.
    func render(_ record: StoredObject) async throws -> JSONValue {
        var body = record.body.filter { !$0.key.hasPrefix("_") }
        let entries = (record.body["governedTenants"]?.arrayValue ?? []).compactMap(Entry.init)
        let governing = tenant
        body["governedTenants"] = .array(try await app.store.read { tx in
            var out: [JSONValue] = []
            for entry in entries {
                guard case .object(var item) = entry.json else { continue }
                let relationship = try await Self.relationship(tx, tenant: governing, id: entry.relationshipID)
                item["relationshipStatus"] = relationship?.body["status"] ?? "terminated"
                for name in ["monitorStatus", "activeDriftsCount", "lastRunStatus", "lastRunDateTime"] { item[name] = .null }
                if let monitor = try await Self.readable(tx, entry, relationship: relationship, governing: governing, id: record.id) {
                    let kinds = [ConfigurationMonitors.driftKind, ConfigurationMonitors.resultKind]
                    let owned = try await tx.query(ObjectQuery(tenant: entry.tenantID, kinds: kinds))
                        .filter { $0.body["monitorId"]?.stringValue == monitor.id }
                    item["monitorStatus"] = monitor.body["status"] ?? .null
                    let active = owned.filter { $0.kind == ConfigurationMonitors.driftKind && $0.body["status"] == "active" }
                    item["activeDriftsCount"] = .int(Int64(active.count))
                    let last = owned.filter { $0.kind == ConfigurationMonitors.resultKind }
                        .max { ($0.body["runInitiationDateTime"]?.stringValue ?? "") < ($1.body["runInitiationDateTime"]?.stringValue ?? "") }
                    item["lastRunStatus"] = last?.body["runStatus"] ?? .null
                    item["lastRunDateTime"] = last?.body["runCompletionDateTime"] ?? .null
                }
                out.append(.object(item))
            }
            return out
        })
        return .object(body)
    }

    /// The drifts (or monitoring results) of every governed tenant this tenant may read, each as the governed tenant
    /// has it (Graph's `configurationDrift` names its `tenantId`).
    func sideBySide(_ record: StoredObject, kind: ObjectKind) async throws -> [JSONValue] {
        let entries = (record.body["governedTenants"]?.arrayValue ?? []).compactMap(Entry.init)
        let governing = tenant
        return try await app.store.read { tx in
            var out: [JSONValue] = []
            for entry in entries {
                let relationship = try await Self.relationship(tx, tenant: governing, id: entry.relationshipID)
                guard let monitor = try await Self.readable(tx, entry, relationship: relationship, governing: governing, id: record.id) else {
                    continue
                }
                let owned = try await tx.query(ObjectQuery(tenant: entry.tenantID, kinds: [kind]))
                    .filter { $0.body["monitorId"]?.stringValue == monitor.id }
                out += owned.sorted { $0.id < $1.id }.map(ConfigurationManagementHandler.render)
            }
            return out
        }
    }

    /// The governed tenant's monitor for `entry`, when the governing tenant may read it: the relationship is active, its
    /// policy lets monitors be written, and the monitor is still the one this governed monitor applied.
    static func readable(_ tx: any DirectoryReader, _ entry: Entry, relationship: StoredObject?, governing: String,
                         id: String) async throws -> StoredObject? {
        guard let relationship, relationship.body["status"] == "active", relationship.body["governingTenantId"]?.stringValue == governing,
              relationship.body["governedTenantId"]?.stringValue == entry.tenantID, policyPermitsMonitors(relationship.body["policySnapshot"]),
              let monitor = try await tx.object(tenant: entry.tenantID, id: entry.monitorID), monitor.kind == ConfigurationMonitors.monitorKind,
              monitor.body["managedBy"]?["tenantId"]?.stringValue == governing,
              monitor.body["managedBy"]?["governedConfigurationMonitorId"]?.stringValue == id else { return nil }
        return monitor
    }

    // MARK: The governed tenant's side

    /// Refuses a change by the governed tenant to a monitor its governing tenant manages through an active relationship.
    static func refuseIfManaged(_ tx: any DirectoryReader, _ monitor: StoredObject, doing: String) async throws {
        guard let managedBy = monitor.body["managedBy"], let relationshipID = managedBy["governanceRelationshipId"]?.stringValue,
              try await relationship(tx, tenant: monitor.tenant, id: relationshipID)?.body["status"] == "active" else { return }
        let name = managedBy["tenantName"]?.stringValue ?? managedBy["tenantId"]?.stringValue ?? ""
        throw DirectoryError(.accessDenied, "This configuration monitor is managed by the governing tenant \(name) through governance relationship \(relationshipID): it is \(doing) there, or once the relationship ends.")
    }

    /// Stops (in `tx`) the monitors that `relationship` applied in the governed tenant: `inactive`, with the reason, kept
    /// with their results and drifts as the governed tenant's own. Called in the termination's transaction.
    static func stop(_ tx: any DirectoryTransaction, governed: String, relationshipID: String, governingName: String, actor: Actor,
                     now: Date) async throws {
        let managed = try await tx.query(ObjectQuery(tenant: governed, kinds: [ConfigurationMonitors.monitorKind])).filter {
            $0.body["managedBy"]?["governanceRelationshipId"]?.stringValue == relationshipID && $0.body["status"] == "active"
        }
        for var monitor in managed {
            let version = monitor.version
            monitor.body["status"] = "inactive"
            monitor.body["inactivationReason"] = .string("The governance relationship with \(governingName) ended.")
            monitor.body["lastModifiedDateTime"] = .string(Timestamp.format(now))
            monitor.version = version + 1
            try await tx.update(monitor, expectedVersion: version)
            try await ConfigurationMonitors.audit(tx, monitor, operation: "update", activity: "Stop configuration monitor", actor: actor, now: now)
        }
    }

    /// For the scheduler: stops a managed monitor whose relationship is no longer active (one applied while the
    /// relationship was being terminated) and says so; false for a monitor that may run.
    static func stopIfOrphaned(app: TesseraApp, _ monitor: StoredObject) async throws -> Bool {
        guard let relationshipID = monitor.body["managedBy"]?["governanceRelationshipId"]?.stringValue else { return false }
        let current = try await app.store.read { tx in try await relationship(tx, tenant: monitor.tenant, id: relationshipID) }
        guard current?.body["status"] != "active" else { return false }
        try await app.store.write { tx in
            try await stop(tx, governed: monitor.tenant, relationshipID: relationshipID,
                           governingName: monitor.body["managedBy"]?["tenantName"]?.stringValue ?? "the governing tenant",
                           actor: .system, now: app.clock.now)
        }
        return true
    }
}
