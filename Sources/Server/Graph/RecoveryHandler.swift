import Backup
import TesseraCore

/// `/directory/recovery`: Entra Backup and Recovery's Graph surface (`microsoft.graph.entraRecoveryServices`).
/// Snapshots (read-only), difference reports and recovery jobs.
struct RecoveryHandler {
    let context: RequestContext
    let app: TesseraApp

    /// Reading snapshots, reports and job history (Entra Backup Reader; Global Reader).
    static let readPermissions = ["EntraBackup.Read.All", "EntraBackup.ReadWrite.Preview", "EntraBackup.ReadWrite.Recovery"]
    /// Making difference reports (and cancelling them).
    static let previewPermissions = ["EntraBackup.ReadWrite.Preview", "EntraBackup.ReadWrite.Recovery"]
    /// Recovering objects (Entra Backup Administrator; Global Administrator).
    static let recoveryPermissions = ["EntraBackup.ReadWrite.Recovery"]

    var method: String { context.request.method }
    var jobs: RecoveryJobs { RecoveryJobs(app: app) }

    func handle(_ rest: [String]) async throws -> APIResponse {
        switch rest.first {
        case "snapshots": return try await snapshots(Array(rest.dropFirst()))
        case "jobs": return try await jobRoutes(Array(rest.dropFirst()))
        default: throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest.first ?? "recovery")'.")
        }
    }

    func snapshots(_ rest: [String]) async throws -> APIResponse {
        let base = "\(context.base)/$metadata#directory/recovery/snapshots"
        // A snapshot's job collections: recoveryPreviewJobs and recoveryJobs.
        if rest.count >= 2, let type = Self.jobTypes[rest[1]] {
            return try await snapshotJobs(snapshotID: rest[0], collection: rest[1], type: type, Array(rest.dropFirst(2)), base: base)
        }
        guard method == "GET" else {
            throw DirectoryError(.methodNotAllowed, "Snapshots are taken by the service and cannot be created, changed or deleted.")
        }
        try context.caller.require(anyOf: Self.readPermissions)
        switch rest.count {
        case 0:
            let records = try await app.backup.snapshots(tenant: context.tenant).reversed()
            return .json(["@odata.context": .string(base), "value": .array(records.map(Self.render))])
        case 1:
            guard case .object(var body) = Self.render(try await app.backup.snapshot(tenant: context.tenant, id: rest[0])) else {
                throw DirectoryError(.internalError, "render")
            }
            body["@odata.context"] = .string(base + "/$entity")
            return .json(.object(body))
        default:
            throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest.last ?? "")'.")
        }
    }

    /// A snapshot's navigation property for each kind of job, and the job type it holds.
    static let jobTypes = ["recoveryPreviewJobs": RecoveryJobs.previewType, "recoveryJobs": RecoveryJobs.recoveryType]

    /// `/snapshots/{id}/recoveryPreviewJobs` and `…/recoveryJobs`: list, create (Microsoft's RELO pattern: `202
    /// Accepted` and a `Location` naming the job, which is then read there or under `/directory/recovery/jobs`), and
    /// one job with its functions and actions.
    func snapshotJobs(snapshotID: String, collection: String, type: String, _ rest: [String], base: String) async throws -> APIResponse {
        let snapshot = try await app.backup.snapshot(tenant: context.tenant, id: snapshotID)
        let here = "\(context.base)/directory/recovery/snapshots/\(snapshot.id)/\(collection)"
        guard let jobID = rest.first else {
            switch method {
            case "GET":
                try context.caller.require(anyOf: Self.readPermissions)
                let found = try await jobs.jobs(tenant: context.tenant).filter { $0.snapshotId == snapshot.id && $0.type.rawValue == type }
                return .json(["@odata.context": .string(base + "('\(snapshot.id)')/\(collection)"), "value": .array(found.map(RecoveryJobs.render))])
            case "POST":
                try context.caller.require(anyOf: type == RecoveryJobs.previewType ? Self.previewPermissions : Self.recoveryPermissions)
                // The body is optional: only filteringCriteria (and the job's own @odata.type) may be in it.
                let request = context.request.body.isEmpty ? [:] : try context.request.jsonObject()
                if let named = request["@odata.type"]?.stringValue, named != type, named != String(type.dropFirst()) {
                    throw DirectoryError.badRequest("'\(collection)' holds \(type.dropFirst()) objects, not \(named).")
                }
                for key in request.keys where !["@odata.type", "filteringCriteria"].contains(key) {
                    throw DirectoryError.badRequest("Property '\(key)' does not exist on type '\(type.dropFirst())'.")
                }
                var body: [String: JSONValue] = ["@odata.type": .string(type), "snapshotId": .string(snapshot.id)]
                body["filteringCriteria"] = request["filteringCriteria"]
                let job = try await jobs.start(tenant: context.tenant, body: body)
                return APIResponse(status: 202, headers: [("Location", "\(here)/\(job.id)")])
            default:
                throw DirectoryError(.methodNotAllowed, "Use GET or POST.")
            }
        }
        let job = try await jobs.job(tenant: context.tenant, id: jobID)
        guard job.snapshotId == snapshot.id, job.type.rawValue == type else {
            throw DirectoryError.notFound(jobID)
        }
        if rest.count == 1, method == "GET" {
            try context.caller.require(anyOf: Self.readPermissions)
            guard case .object(var body) = RecoveryJobs.render(job) else { throw DirectoryError(.internalError, "render") }
            body["@odata.context"] = .string(base + "('\(snapshot.id)')/\(collection)/$entity")
            return .json(.object(body))
        }
        // getChanges, getFailedChanges, cancel: as under /directory/recovery/jobs.
        return try await jobRoutes(rest)
    }

    func jobRoutes(_ rest: [String]) async throws -> APIResponse {
        let base = "\(context.base)/$metadata#directory/recovery/jobs"
        if rest.isEmpty {
            switch method {
            case "GET":
                try context.caller.require(anyOf: Self.readPermissions)
                return .json(["@odata.context": .string(base), "value": .array(try await jobs.jobs(tenant: context.tenant).map(RecoveryJobs.render))])
            case "POST":
                let request = try context.request.jsonObject()
                let isPreview = request["@odata.type"]?.stringValue.map { $0.hasSuffix("recoveryPreviewJob") } ?? false
                try context.caller.require(anyOf: isPreview ? Self.previewPermissions : Self.recoveryPermissions)
                let job = try await jobs.start(tenant: context.tenant, body: request)
                guard case .object(var body) = RecoveryJobs.render(job) else { throw DirectoryError(.internalError, "render") }
                body["@odata.context"] = .string(base + "/$entity")
                return .json(.object(body), status: 201, headers: [("Location", "\(context.base)/directory/recovery/jobs/\(job.id)")])
            default:
                throw DirectoryError(.methodNotAllowed, "Use GET or POST.")
            }
        }
        let job = try await jobs.job(tenant: context.tenant, id: rest[0])
        // Operations may come after a cast to the job's type; the namespace prefix is optional.
        let operation = rest.dropFirst().filter { !$0.isEmpty }.last { !$0.hasSuffix("Job") }.map { segment -> String in
            var name = segment
            if let dot = name.lastIndex(of: ".") { name = String(name[name.index(after: dot)...]) }
            if name.hasSuffix("()") { name.removeLast(2) }
            return name
        }
        switch (operation, method) {
        case (nil, "GET"):
            try context.caller.require(anyOf: Self.readPermissions)
            guard case .object(var body) = RecoveryJobs.render(job) else { throw DirectoryError(.internalError, "render") }
            body["@odata.context"] = .string(base + "/$entity")
            return .json(.object(body))
        case (nil, _):
            throw DirectoryError(.methodNotAllowed, "Jobs cannot be changed or deleted; cancel one with its cancel action.")
        case ("getChanges"?, "GET"), ("getFailedChanges"?, "GET"):
            try context.caller.require(anyOf: Self.readPermissions)
            var changes = try await jobs.changes(tenant: context.tenant, id: job.id)
            if operation == "getFailedChanges" { changes = changes.filter { $0["failureMessage"] != nil && $0["failureMessage"] != .null } }
            return .json(["@odata.context": .string("\(context.base)/$metadata#Collection(microsoft.graph.entraRecoveryServices.recoveryChangeObjectBase)"),
                          "value": .array(changes)])
        case ("cancel"?, "POST"):
            try context.caller.require(anyOf: job.type == .preview ? Self.previewPermissions : Self.recoveryPermissions)
            try await jobs.cancel(tenant: context.tenant, id: job.id)
            return .noContent
        default:
            throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest.last ?? "")'.")
        }
    }

    static func render(_ snapshot: SnapshotRecord) -> JSONValue {
        ["@odata.type": "#microsoft.graph.entraRecoveryServices.snapshot", "id": .string(snapshot.id),
         "createdDateTime": .string(snapshot.createdAt), "totalChangedObjects": .int(Int64(snapshot.changedObjects))]
    }
}
