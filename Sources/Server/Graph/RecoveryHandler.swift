import Backup
import TesseraCore

/// `/directory/recovery`: Entra Backup and Recovery's Graph surface (`microsoft.graph.entraRecoveryServices`).
/// Snapshots so far; difference reports and recovery jobs as Graph jobs are still to come (issue 5).
struct RecoveryHandler {
    let context: RequestContext
    let app: TesseraApp

    /// Reading backups: what Backup Reader has; Tessera maps it to directory read permissions until Graph names
    /// its own.
    static let readPermissions = ["Directory.Read.All", "Directory.ReadWrite.All"]

    func handle(_ rest: [String]) async throws -> APIResponse {
        guard rest.first == "snapshots" else {
            throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest.first ?? "recovery")'.")
        }
        guard context.request.method == "GET" else {
            throw DirectoryError(.methodNotAllowed, "Snapshots are taken by the service and cannot be created, changed or deleted.")
        }
        try context.caller.require(anyOf: Self.readPermissions)
        let base = "\(context.base)/$metadata#directory/recovery/snapshots"
        switch rest.count {
        case 1:
            let records = try await app.backup.snapshots(tenant: context.tenant).reversed()
            return .json(["@odata.context": .string(base), "value": .array(records.map(Self.render))])
        case 2:
            guard case .object(var body) = Self.render(try await app.backup.snapshot(tenant: context.tenant, id: rest[1])) else {
                throw DirectoryError(.internalError, "render")
            }
            body["@odata.context"] = .string(base + "/$entity")
            return .json(.object(body))
        default:
            throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest[2])'.")
        }
    }

    static func render(_ snapshot: SnapshotRecord) -> JSONValue {
        ["@odata.type": "#microsoft.graph.entraRecoveryServices.snapshot", "id": .string(snapshot.id),
         "createdDateTime": .string(snapshot.createdAt), "totalChangedObjects": .int(Int64(snapshot.changedObjects))]
    }
}
