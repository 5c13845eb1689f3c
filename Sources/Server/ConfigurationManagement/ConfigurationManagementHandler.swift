import Foundation
import Backup
import TesseraCore

/// `/admin/configurationManagement`: Tenant Configuration Management (Graph v1.0) — snapshot jobs and the snapshots
/// (baselines) they take, monitors, their results and the drifts they find.
struct ConfigurationManagementHandler {
    let context: RequestContext
    let app: TesseraApp

    static let readPermissions = ["ConfigurationMonitoring.Read.All", "ConfigurationMonitoring.ReadWrite.All"]
    static let writePermissions = ["ConfigurationMonitoring.ReadWrite.All"]

    var method: String { context.request.method }
    var tenant: String { context.tenant }
    var store: ConfigurationMonitors { ConfigurationMonitors(app: app) }
    var metadata: String { "\(context.base)/$metadata#admin/configurationManagement" }

    func handle(_ rest: [String]) async throws -> APIResponse {
        guard let collection = rest.first else {
            guard method == "GET" else { throw DirectoryError(.methodNotAllowed, "configurationManagement is read with GET.") }
            try context.caller.require(anyOf: Self.readPermissions)
            return .json(["@odata.context": .string("\(context.base)/$metadata#admin/configurationManagement/$entity"),
                          "id": .string(tenant)])
        }
        let tail = Array(rest.dropFirst())
        switch collection {
        case "configurationSnapshots": return try await snapshots(tail)
        case "configurationSnapshotJobs": return try await readable(ConfigurationMonitors.snapshotJobKind, collection, tail, deletable: true)
        case "configurationMonitors": return try await monitors(tail)
        case "configurationMonitoringResults": return try await readable(ConfigurationMonitors.resultKind, collection, tail)
        case "configurationDrifts": return try await readable(ConfigurationMonitors.driftKind, collection, tail)
        case "governedConfigurationMonitors": return try await GovernedConfigurationMonitors(context: context, app: app).handle(tail)
        default: throw DirectoryError(.badRequest, "Resource not found for the segment '\(collection)'.")
        }
    }

    // MARK: Collections that are read (and deleted)

    /// A collection the service writes: listed (`$filter`, `$orderby`, `$top`, `$select` in memory), read by id, and
    /// for snapshot jobs deleted.
    func readable(_ kind: ObjectKind, _ collection: String, _ rest: [String], deletable: Bool = false) async throws -> APIResponse {
        switch (rest.count, method) {
        case (0, "GET"):
            try context.caller.require(anyOf: Self.readPermissions)
            let values = try await store.all(tenant: tenant, kind: kind).map(Self.render)
            return .json(["@odata.context": .string("\(metadata)/\(collection)"), "value": .array(try Lister.inMemory(values, context.parseOptions()))])
        case (1, "GET"):
            try context.caller.require(anyOf: Self.readPermissions)
            return try entity(Self.render(try await store.one(tenant: tenant, kind: kind, id: rest[0])), "\(metadata)/\(collection)/$entity")
        case (1, "DELETE") where deletable:
            try context.caller.require(anyOf: Self.writePermissions)
            let job = try await store.one(tenant: tenant, kind: kind, id: rest[0])
            guard job.body["status"] != "notStarted", job.body["status"] != "running" else {
                throw DirectoryError(.conflict, "The snapshot job is still running; delete it once it has completed.")
            }
            // The job's snapshot goes with it.
            let snapshotID = job.body["_snapshotId"]?.stringValue
            try await app.store.write { tx in
                if let snapshotID, let snapshot = try await tx.object(tenant: job.tenant, id: snapshotID),
                   snapshot.kind == ConfigurationMonitors.snapshotKind {
                    try await tx.purge(tenant: job.tenant, id: snapshotID)
                }
                try await tx.purge(tenant: job.tenant, id: job.id)
            }
            return .noContent
        case (0, _), (1, _):
            throw DirectoryError(.methodNotAllowed, "\(collection) are written by the service; use GET\(deletable ? " or DELETE" : "").")
        default:
            throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest.last ?? "")'.")
        }
    }

    // MARK: Snapshots

    func snapshots(_ rest: [String]) async throws -> APIResponse {
        if rest.count == 1, Self.operation(rest[0]) == "createSnapshot" {
            guard method == "POST" else { throw DirectoryError(.methodNotAllowed, "createSnapshot is an action: use POST.") }
            try context.caller.require(anyOf: Self.writePermissions)
            let body = try context.request.jsonObject()
            for key in body.keys where !["displayName", "description", "resources"].contains(key) {
                throw DirectoryError.badRequest("'\(key)' is not a parameter of createSnapshot.")
            }
            guard let name = body["displayName"]?.stringValue, !name.isEmpty else { throw DirectoryError.badRequest("'displayName' is required.") }
            if let description = body["description"], description != .null, description.stringValue == nil {
                throw DirectoryError.badRequest("'description' must be a string.")
            }
            guard let names = body["resources"]?.arrayValue, !names.isEmpty else {
                throw DirectoryError.badRequest("'resources' must name at least one resource type.")
            }
            var types: [ConfigurationResourceType] = []
            for name in names {
                guard let text = name.stringValue, let type = ConfigurationResourceType.named(text) else {
                    throw DirectoryError.badRequest("The resource type \(name.serialized) is not supported. Supported: "
                        + ConfigurationResourceType.all.map(\.name).joined(separator: ", ") + ".")
                }
                guard !types.contains(where: { $0.canonicalName == type.canonicalName }) else {
                    throw DirectoryError.badRequest("'resources' names \(type.name) twice.")
                }
                types.append(type)
            }
            let job = try await store.startSnapshot(tenant: tenant, displayName: name, description: body["description"]?.stringValue,
                                                    resources: types, actor: context.caller.actor, base: context.base)
            return try entity(Self.render(job), "\(context.base)/$metadata#microsoft.graph.configurationSnapshotJob")
        }
        // Snapshots are taken by createSnapshot and go with their job: read-only here.
        return try await readable(ConfigurationMonitors.snapshotKind, "configurationSnapshots", rest)
    }

    /// An action or function segment without its namespace and parentheses.
    static func operation(_ segment: String) -> String {
        var name = segment
        if let dot = name.lastIndex(of: ".") { name = String(name[name.index(after: dot)...]) }
        if name.hasSuffix("()") { name.removeLast(2) }
        return name
    }

    // MARK: Monitors

    static let monitorProperties: Set<String> = ["@odata.type", "displayName", "description", "baseline", "parameters", "monitorRunFrequencyInHours", "mode"]
    static let readOnlyMonitorProperties: Set<String> = [
        "id", "tenantId", "status", "inactivationReason", "createdDateTime", "lastModifiedDateTime", "createdBy", "lastModifiedBy",
    ]

    func monitors(_ rest: [String]) async throws -> APIResponse {
        switch (rest.count, method) {
        case (0, "GET"), (1, "GET"), (1, "DELETE"):
            if rest.count == 1, method == "DELETE" {
                try context.caller.require(anyOf: Self.writePermissions)
                try await store.deleteMonitor(tenant: tenant, id: rest[0], actor: context.caller.actor)
                return .noContent
            }
            return try await readable(ConfigurationMonitors.monitorKind, "configurationMonitors", rest)
        case (0, "POST"):
            try context.caller.require(anyOf: Self.writePermissions)
            let body = try Self.checkedMonitorBody(try context.request.jsonObject())
            guard let name = body["displayName"]?.stringValue, !name.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw DirectoryError.badRequest("'displayName' is required.")
            }
            let baseline = try ConfigurationBaseline.parse(body["baseline"])
            let monitor = try await store.createMonitor(tenant: tenant, displayName: name, description: body["description"]?.stringValue,
                                                        baseline: baseline, parameters: body["parameters"] ?? [:], actor: context.caller.actor)
            var response = try entity(Self.render(monitor), "\(metadata)/configurationMonitors/$entity")
            response.status = 201
            response.headers.append(("Location", "\(context.base)/admin/configurationManagement/configurationMonitors/\(monitor.id)"))
            return response
        case (1, "PATCH"):
            try context.caller.require(anyOf: Self.writePermissions)
            let body = try Self.checkedMonitorBody(try context.request.jsonObject())
            if let name = body["displayName"], name.stringValue?.trimmingCharacters(in: .whitespaces).isEmpty != false {
                throw DirectoryError.badRequest("'displayName' cannot be empty.")
            }
            let baseline = try body["baseline"].map { value throws(DirectoryError) in try ConfigurationBaseline.parse(value) }
            try await store.updateMonitor(tenant: tenant, id: rest[0], displayName: body["displayName"]?.stringValue, description: body["description"],
                                          baseline: baseline, parameters: body["parameters"], actor: context.caller.actor)
            return .noContent
        case (2, "GET") where rest[1] == "baseline":
            try context.caller.require(anyOf: Self.readPermissions)
            let monitor = try await store.one(tenant: tenant, kind: ConfigurationMonitors.monitorKind, id: rest[0])
            guard case .object(var baseline)? = monitor.body["_baseline"] else { throw DirectoryError.notFound("baseline") }
            baseline["@odata.type"] = "#microsoft.graph.configurationBaseline"
            return try entity(.object(baseline), "\(metadata)/configurationMonitors('\(monitor.id)')/baseline/$entity")
        case (0, _), (1, _):
            throw DirectoryError(.methodNotAllowed, "Use GET or POST on the collection, GET, PATCH or DELETE on a monitor.")
        default:
            throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest.last ?? "")'.")
        }
    }

    /// A monitor's request body with Graph's errors: known properties only, read-only ones refused, the frequency and
    /// mode only as Microsoft allows them (every six hours, `monitorOnly`), `parameters` an object.
    static func checkedMonitorBody(_ body: [String: JSONValue]) throws(DirectoryError) -> [String: JSONValue] {
        for key in body.keys where !monitorProperties.contains(key) {
            if readOnlyMonitorProperties.contains(key) { throw DirectoryError.badRequest("Property '\(key)' is read-only.") }
            throw DirectoryError.badRequest("Property '\(key)' does not exist on type 'microsoft.graph.configurationMonitor'.")
        }
        if let frequency = body["monitorRunFrequencyInHours"], frequency.intValue != Int64(ConfigurationMonitors.runFrequencyInHours) {
            throw DirectoryError.badRequest("'monitorRunFrequencyInHours' can only be \(ConfigurationMonitors.runFrequencyInHours): monitors run every six hours.")
        }
        if let mode = body["mode"], mode != "monitorOnly" { throw DirectoryError.badRequest("'mode' can only be 'monitorOnly'.") }
        if let description = body["description"], description != .null, description.stringValue == nil {
            throw DirectoryError.badRequest("'description' must be a string.")
        }
        if let parameters = body["parameters"], parameters.objectValue == nil {
            throw DirectoryError.badRequest("'parameters' must be an object of key-value pairs.")
        }
        return body
    }

    // MARK: Rendering

    static func render(_ object: StoredObject) -> JSONValue {
        .object(object.body.filter { !$0.key.hasPrefix("_") })
    }

    /// One entity with its `@odata.context`, `$select` applied.
    func entity(_ value: JSONValue, _ odataContext: String) throws -> APIResponse {
        guard case .object(var body) = Renderer.select(value, try context.parseOptions().select) else { throw DirectoryError(.internalError, "render") }
        body["@odata.context"] = .string(odataContext)
        return .json(.object(body))
    }
}
