import Backup
import Foundation
import TesseraCore

/// `/beta/admin/configurationManagement/governedConfigurationMonitors`: one baseline a governing tenant applies to the
/// tenants it governs, and their drifts side by side. Tessera's own resource: Microsoft publishes no Graph API for
/// multitenant baselines (its `baselineParameter` says a baseline may serve several tenants, no more).
///
/// - Applying makes, in each governed tenant, an ordinary `configurationMonitor` marked `managedBy` the governing tenant
///   and the relationship: it runs in serve's scheduler there and reports there, so the governed tenant's
///   administrators read it, its results and its drifts as their own. While the relationship is active only the
///   governing tenant changes or deletes it (the governed tenant gets 403); once the relationship ends it is stopped
///   (`inactive`, in the termination's transaction) and becomes the governed tenant's to keep or delete.
/// - Writing needs `ConfigurationMonitoring.ReadWrite.All` here and, for every governed tenant touched, an active
///   relationship in which this tenant governs it and whose policy gives the acting administrator (through a group it
///   is in) a role that writes configuration monitors there (Global Administrator or Security Administrator): exactly
///   what the administrator could do by signing in to that tenant. Delegated only, as governance is.
/// - Reading needs `ConfigurationMonitoring.Read.All` here; a governed tenant's monitor and drifts are read while its
///   relationship is active and its policy gives some group such a role, and never after.
/// - A resource's object `Id` names an object of one tenant, so a baseline applied to other tenants matches by the
///   type's key (`DisplayName`, `UserPrincipalName`, `AppId`) instead: `Id` is dropped unless it is the key.
/// - Every write is one transaction over all the tenants it touches, audited in this tenant and in each governed tenant
///   (as the governing tenant's user, with `homeTenantId`).
struct GovernedConfigurationMonitors {
    let context: RequestContext
    let app: TesseraApp

    static let kind = ObjectKind(rawValue: "governedConfigurationMonitor")
    static let typeName = "#microsoft.graph.governedConfigurationMonitor"
    static let writable: Set<String> = [
        "@odata.type", "displayName", "description", "baseline", "sourceMonitorId", "sourceSnapshotId", "parameters", "governedTenantIds",
    ]
    static let readOnly: Set<String> = ["id", "createdDateTime", "lastModifiedDateTime", "createdBy", "lastModifiedBy", "governedTenants"]

    var method: String { context.request.method }
    var tenant: String { context.tenant }
    var metadata: String { "\(context.base)/$metadata#admin/configurationManagement/governedConfigurationMonitors" }

    /// A governed tenant as a governed monitor lists it: which relationship applied it there, as which monitor.
    struct Entry: Sendable, Equatable {
        var tenantID: String
        var tenantName: String
        var relationshipID: String
        var monitorID: String

        init(tenantID: String, tenantName: String, relationshipID: String, monitorID: String) {
            (self.tenantID, self.tenantName, self.relationshipID, self.monitorID) = (tenantID, tenantName, relationshipID, monitorID)
        }

        init?(_ json: JSONValue) {
            guard let tenant = json["tenantId"]?.stringValue, let relationship = json["governanceRelationshipId"]?.stringValue,
                  let monitor = json["configurationMonitorId"]?.stringValue else { return nil }
            self.init(tenantID: tenant, tenantName: json["tenantName"]?.stringValue ?? "", relationshipID: relationship, monitorID: monitor)
        }

        var json: JSONValue {
            ["tenantId": .string(tenantID), "tenantName": .string(tenantName), "governanceRelationshipId": .string(relationshipID),
             "configurationMonitorId": .string(monitorID)]
        }
    }

    /// A governed tenant a write may touch: the active relationship through which the caller may write monitors there.
    struct Target: Sendable {
        let tenantID: String
        let tenantName: String
        let relationshipID: String
    }

    func handle(_ rest: [String]) async throws -> APIResponse {
        guard context.version == "beta" else {
            throw DirectoryError(.badRequest, "Resource not found for the segment 'governedConfigurationMonitors': it is Tessera's, in beta.")
        }
        switch (rest.count, method) {
        case (0, "GET"):
            try context.caller.require(anyOf: ConfigurationManagementHandler.readPermissions)
            var values: [JSONValue] = []
            for record in try await records() { values.append(try await render(record)) }
            return .json(["@odata.context": .string(metadata), "value": .array(try Lister.inMemory(values, context.parseOptions()))])
        case (0, "POST"):
            try context.caller.require(anyOf: ConfigurationManagementHandler.writePermissions)
            return try await create()
        case (1, "GET"):
            try context.caller.require(anyOf: ConfigurationManagementHandler.readPermissions)
            return try entity(try await render(try await record(rest[0])), "\(metadata)/$entity")
        case (1, "PATCH"):
            try context.caller.require(anyOf: ConfigurationManagementHandler.writePermissions)
            try await update(rest[0])
            return .noContent
        case (1, "DELETE"):
            try context.caller.require(anyOf: ConfigurationManagementHandler.writePermissions)
            try await delete(rest[0])
            return .noContent
        case (2, "GET") where rest[1] == "baseline":
            try context.caller.require(anyOf: ConfigurationManagementHandler.readPermissions)
            let record = try await record(rest[0])
            guard case .object(var baseline)? = record.body["_baseline"] else { throw DirectoryError.notFound("baseline") }
            baseline["@odata.type"] = "#microsoft.graph.configurationBaseline"
            return try entity(.object(baseline), "\(metadata)('\(record.id)')/baseline/$entity")
        case (2, "GET") where rest[1] == "configurationDrifts" || rest[1] == "configurationMonitoringResults":
            try context.caller.require(anyOf: ConfigurationManagementHandler.readPermissions)
            let kind = rest[1] == "configurationDrifts" ? ConfigurationMonitors.driftKind : ConfigurationMonitors.resultKind
            let values = try await sideBySide(try await record(rest[0]), kind: kind)
            return .json(["@odata.context": .string("\(context.base)/$metadata#\(rest[1])"),
                          "value": .array(try Lister.inMemory(values, context.parseOptions()))])
        case (0, _), (1, _):
            throw DirectoryError(.methodNotAllowed, "Use GET or POST on the collection, GET, PATCH or DELETE on a governed monitor.")
        default:
            throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest.last ?? "")'.")
        }
    }

    // MARK: Writing

    func create() async throws -> APIResponse {
        let request = try await parse(try context.request.jsonObject(), creating: true)
        guard let baseline = request.baseline, let tenantIDs = request.tenantIDs else { throw DirectoryError(.internalError, "parse") }
        let targets = try await writableTargets(tenantIDs)
        let now = app.clock.now, id = Identifier.makeTimeOrdered(at: now), actor = context.caller.actor
        var stored = baseline.json
        stored["id"] = .string(id)
        let body: [String: JSONValue] = [
            "@odata.type": .string(Self.typeName), "id": .string(id), "displayName": .string(request.displayName ?? ""),
            "description": request.description ?? .null, "parameters": request.parameters ?? [:],
            "createdDateTime": .string(Timestamp.format(now)), "lastModifiedDateTime": .string(Timestamp.format(now)),
            "createdBy": ConfigurationMonitors.identitySet(actor), "lastModifiedBy": ConfigurationMonitors.identitySet(actor),
            "_baseline": .object(stored),
        ]
        let governing = try await governingName()
        let address = context.request.clientAddress, tenant = self.tenant, fields = body
        let record = try await app.store.write { tx -> StoredObject in
            var body = fields
            let entries = try await Self.reconcile(tx, governing: (tenant, governing), id: id, body: body, targets: targets, previous: [],
                                                   actor: actor, address: address, now: now)
            body["governedTenants"] = .array(entries.map(\.json))
            let record = StoredObject(tenant: tenant, id: id, kind: Self.kind, body: body)
            try await tx.insert(record)
            try await GovernanceRelationships.audit(tx, tenants: [tenant], objectId: id, kind: Self.kind, operation: "create",
                                                    activity: "Apply configuration baseline to governed tenants", actor: actor,
                                                    address: address, actingTenant: tenant, now: now)
            return record
        }
        var response = try entity(try await render(record), "\(metadata)/$entity")
        response.status = 201
        response.headers.append(("Location", "\(context.base)/admin/configurationManagement/governedConfigurationMonitors/\(id)"))
        return response
    }

    /// A PATCH: the new name, description, baseline or parameters go to every governed tenant whose relationship is
    /// active; `governedTenantIds` (when given) is the new set of tenants: added ones get a monitor, removed ones lose it.
    func update(_ id: String) async throws {
        let request = try await parse(try context.request.jsonObject(), creating: false)
        let current = try await record(id)
        let previous = (current.body["governedTenants"]?.arrayValue ?? []).compactMap(Entry.init)
        let active = try await activeEntries(previous)
        let wanted = request.tenantIDs ?? active.map(\.tenantID)
        // Tenants losing the monitor while their relationship is active are written too, so the caller must be allowed there.
        let removed = active.filter { !wanted.contains($0.tenantID) }.map(\.tenantID)
        let targets = try await writableTargets(wanted + removed)
        let now = app.clock.now, actor = context.caller.actor, address = context.request.clientAddress, tenant = self.tenant
        let governing = try await governingName()
        var body = current.body
        if let name = request.displayName { body["displayName"] = .string(name) }
        if let description = request.description { body["description"] = description }
        if let parameters = request.parameters { body["parameters"] = parameters }
        if let baseline = request.baseline {
            var stored = baseline.json
            stored["id"] = .string(current.id)
            body["_baseline"] = .object(stored)
        }
        body["lastModifiedDateTime"] = .string(Timestamp.format(now))
        body["lastModifiedBy"] = ConfigurationMonitors.identitySet(actor)
        let kept = targets.filter { wanted.contains($0.tenantID) }, fields = body
        try await app.store.write { tx in
            var body = fields
            guard var record = try await tx.object(tenant: tenant, id: current.id), record.kind == Self.kind else {
                throw DirectoryError.notFound(id)
            }
            let entries = try await Self.reconcile(tx, governing: (tenant, governing), id: record.id, body: body, targets: kept,
                                                   previous: previous, actor: actor, address: address, now: now)
            // Tenants whose relationship ended stay listed (their monitor is theirs now) unless the PATCH names the set.
            let ended = request.tenantIDs == nil ? previous.filter { entry in !active.contains(entry) } : []
            body["governedTenants"] = .array((entries + ended).map(\.json))
            let version = record.version
            record.body = body
            record.version = version + 1
            try await tx.update(record, expectedVersion: version)
            try await GovernanceRelationships.audit(tx, tenants: [tenant], objectId: record.id, kind: Self.kind, operation: "update",
                                                    activity: "Update configuration baseline of governed tenants", actor: actor,
                                                    address: address, actingTenant: tenant, now: now)
        }
    }

    /// Removes the monitor from every governed tenant whose relationship is active, then the record.
    func delete(_ id: String) async throws {
        let current = try await record(id)
        let previous = (current.body["governedTenants"]?.arrayValue ?? []).compactMap(Entry.init)
        let active = try await activeEntries(previous)
        _ = try await writableTargets(active.map(\.tenantID))
        let now = app.clock.now, actor = context.caller.actor, address = context.request.clientAddress, tenant = self.tenant
        let governing = try await governingName()
        try await app.store.write { tx in
            _ = try await Self.reconcile(tx, governing: (tenant, governing), id: current.id, body: current.body, targets: [],
                                         previous: active, actor: actor, address: address, now: now)
            try await tx.purge(tenant: tenant, id: current.id)
            try await GovernanceRelationships.audit(tx, tenants: [tenant], objectId: current.id, kind: Self.kind, operation: "delete",
                                                    activity: "Remove configuration baseline from governed tenants", actor: actor,
                                                    address: address, actingTenant: tenant, now: now)
        }
    }

    /// Makes each governed tenant agree with `body` inside `tx`: the monitor of a target already applied through the same
    /// relationship is updated; a new target gets a new monitor; a previous tenant that is no longer a target loses its
    /// monitor (with its results and drifts) if it is still managed through an active relationship. Each write is
    /// audited in the governed tenant as the governing tenant's user. Returns the targets' entries.
    static func reconcile(_ tx: any DirectoryTransaction, governing: (id: String, name: String), id: String, body: [String: JSONValue],
                          targets: [Target], previous: [Entry], actor: Actor, address: String?, now: Date) async throws -> [Entry] {
        let baseline = try ConfigurationBaseline.parse(body["_baseline"])
        var visiting = actor
        visiting.homeTenantId = governing.id
        visiting.homeTenantName = governing.name
        var entries: [Entry] = []
        for target in targets {
            // Asked again in the governed tenant's copy: a relationship terminated meanwhile takes nothing more.
            guard try await relationship(tx, tenant: target.tenantID, id: target.relationshipID)?.body["status"] == "active" else {
                throw DirectoryError(.accessDenied, "The governance relationship with tenant \(target.tenantID) is no longer active.")
            }
            do {
                if let entry = previous.first(where: { $0.tenantID == target.tenantID && $0.relationshipID == target.relationshipID }),
                   var monitor = try await tx.object(tenant: target.tenantID, id: entry.monitorID),
                   monitor.kind == ConfigurationMonitors.monitorKind {
                    try await ConfigurationMonitors.setBaseline(tx, &monitor, baseline)
                    for name in ["displayName", "description", "parameters"] { monitor.body[name] = body[name] ?? .null }
                    monitor.body["lastModifiedDateTime"] = .string(Timestamp.format(now))
                    monitor.body["lastModifiedBy"] = ConfigurationMonitors.identitySet(actor)
                    let version = monitor.version
                    monitor.version = version + 1
                    try await tx.update(monitor, expectedVersion: version)
                    try await ConfigurationMonitors.audit(tx, monitor, operation: "update", activity: "Update configuration monitor",
                                                          actor: visiting, now: now, details: ["actorTenantId": .string(governing.id)])
                    entries.append(entry)
                } else {
                    let monitor = ConfigurationMonitors.monitorObject(
                        tenant: target.tenantID, id: Identifier.makeTimeOrdered(at: now), displayName: body["displayName"]?.stringValue ?? "",
                        description: body["description"]?.stringValue, baseline: baseline, parameters: body["parameters"] ?? [:],
                        actor: actor, now: now,
                        managedBy: ["tenantId": .string(governing.id), "tenantName": .string(governing.name),
                                    "governanceRelationshipId": .string(target.relationshipID), "governedConfigurationMonitorId": .string(id)])
                    try await ConfigurationMonitors.insert(tx, monitor)
                    try await ConfigurationMonitors.audit(tx, monitor, operation: "create", activity: "Create configuration monitor",
                                                          actor: visiting, now: now, details: ["actorTenantId": .string(governing.id)])
                    entries.append(Entry(tenantID: target.tenantID, tenantName: target.tenantName, relationshipID: target.relationshipID,
                                         monitorID: monitor.id))
                }
            } catch let error as DirectoryError where error.code == .badRequest {
                throw DirectoryError.badRequest("Tenant \(target.tenantName) (\(target.tenantID)): \(error.message)")
            }
        }
        for entry in previous where !entries.contains(where: { $0.tenantID == entry.tenantID }) {
            guard try await relationship(tx, tenant: entry.tenantID, id: entry.relationshipID)?.body["status"] == "active",
                  let monitor = try await tx.object(tenant: entry.tenantID, id: entry.monitorID),
                  monitor.body["managedBy"]?["governedConfigurationMonitorId"]?.stringValue == id else { continue }
            try await ConfigurationMonitors.purge(tx, monitor)
            try await ConfigurationMonitors.audit(tx, monitor, operation: "delete", activity: "Delete configuration monitor",
                                                  actor: visiting, now: now, details: ["actorTenantId": .string(governing.id)])
        }
        return entries
    }

    // MARK: Who may write where

    /// The targets for `tenantIDs`, each through an active relationship whose policy gives the caller a role that writes
    /// configuration monitors there; refused (403) for a tenant this tenant does not govern, a terminated relationship,
    /// or a policy that gives the caller no such role.
    func writableTargets(_ tenantIDs: [String]) async throws -> [Target] {
        guard let user = context.caller.userID else {
            throw DirectoryError(.accessDenied,
                                 "Applying a baseline to governed tenants is delegated only: an administrator acts through the relationship's policy.")
        }
        let governing = tenant, directory = app.directory
        return try await app.store.read { tx in
            let groups = Set(try await directory.transitiveGroups(tenant: governing, of: user, tx: tx))
            var targets: [Target] = []
            for id in tenantIDs {
                guard let relationship = try await Self.activeRelationship(tx, governing: governing, governed: id) else {
                    throw DirectoryError(.accessDenied, "This tenant does not govern tenant \(id) through an active governance relationship.")
                }
                let roles = GovernedAccess.roles(policy: relationship.body["policySnapshot"], groups: groups)
                guard Self.writesMonitors(roles) else {
                    throw DirectoryError(.accessDenied, "The policy of governance relationship \(relationship.id) gives you no role that writes configuration monitors in tenant \(id) (Global Administrator or Security Administrator).")
                }
                targets.append(Target(tenantID: id, tenantName: relationship.body["governedTenantName"]?.stringValue ?? "",
                                      relationshipID: relationship.id))
            }
            return targets
        }
    }

    /// Whether directory roles (template ids) include one that writes configuration monitors.
    static func writesMonitors(_ roles: Set<String>) -> Bool {
        RolePermissions.graphPermissions(roles: roles).contains("ConfigurationMonitoring.ReadWrite.All")
    }

    /// Whether a relationship's policy gives any of its groups a role that writes configuration monitors.
    static func policyPermitsMonitors(_ policy: JSONValue?) -> Bool {
        let assignments = policy?["delegatedAdministrationRoleAssignments"]?.arrayValue ?? []
        let groups = assignments.compactMap { $0["group"]?["id"]?.stringValue?.lowercased() }
        return writesMonitors(GovernedAccess.roles(policy: policy, groups: Set(groups)))
    }

    static func activeRelationship(_ tx: any DirectoryReader, governing: String, governed: String) async throws -> StoredObject? {
        try await tx.query(ObjectQuery(tenant: governing, kinds: [GovernanceRelationships.relationshipKind])).first {
            $0.body["status"] == "active" && $0.body["governingTenantId"]?.stringValue == governing
                && $0.body["governedTenantId"]?.stringValue == governed
        }
    }

    static func relationship(_ tx: any DirectoryReader, tenant: String, id: String) async throws -> StoredObject? {
        guard let found = try await tx.object(tenant: tenant, id: id), found.kind == GovernanceRelationships.relationshipKind else { return nil }
        return found
    }

    /// The entries whose relationship is still active (in this tenant's copy).
    func activeEntries(_ entries: [Entry]) async throws -> [Entry] {
        let tenant = self.tenant
        return try await app.store.read { tx in
            var active: [Entry] = []
            for entry in entries where try await Self.relationship(tx, tenant: tenant, id: entry.relationshipID)?.body["status"] == "active" {
                active.append(entry)
            }
            return active
        }
    }

    func governingName() async throws -> String {
        let tenant = self.tenant
        return try await app.store.read { tx in try await tx.tenant(tenant) }?.name ?? ""
    }

    // MARK: Reading

    func records() async throws -> [StoredObject] {
        let tenant = self.tenant
        return try await app.store.read { tx in try await tx.query(ObjectQuery(tenant: tenant, kinds: [Self.kind])) }.sorted { $0.id < $1.id }
    }

    func record(_ id: String) async throws -> StoredObject {
        let tenant = self.tenant
        guard let found = try await app.store.read({ tx in try await tx.object(tenant: tenant, id: id.lowercased()) }), found.kind == Self.kind else {
            throw DirectoryError.notFound(id)
        }
        return found
    }

    func entity(_ value: JSONValue, _ odataContext: String) throws -> APIResponse {
        try ConfigurationManagementHandler(context: context, app: app).entity(value, odataContext)
    }
}
