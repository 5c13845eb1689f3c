import Foundation
import TesseraCore

/// `/auditLogs/directoryAudits`: every write, read from the change log.
struct AuditHandler {
    let api: GraphAPI
    let context: RequestContext

    static let pageSize = 200

    func handle(_ rest: [String]) async throws -> APIResponse {
        try context.caller.require(anyOf: ["AuditLog.Read.All"])
        if rest == ["signIns"], context.request.method == "GET" { return try await signIns() }
        guard rest.first == "directoryAudits", context.request.method == "GET" else {
            throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest.first ?? "")'.")
        }
        let tenant = context.tenant
        if rest.count == 2 {
            guard rest[1].hasPrefix("Directory_"), let seq = Int64(rest[1].dropFirst("Directory_".count)),
                  let change = try await api.app.store.read({ tx in try await tx.changes(tenant: tenant, kinds: nil, after: seq - 1, limit: 1) }).first,
                  change.seq == seq
            else { throw DirectoryError.notFound(rest[1]) }
            return .json(Self.render(change))
        }
        let options = try context.parseOptions()
        var wanted: (String, String)? = nil
        if let filter = options.filter {
            guard case .compare(let path, .eq, .string(let value)) = filter, path.segments.count == 1,
                  ["activityDisplayName", "category", "operationType"].contains(path.segments[0])
            else { throw DirectoryError(.unsupportedQuery, "Only activityDisplayName, category or operationType eq filters are supported.") }
            wanted = (path.segments[0], value)
        }
        let top = options.top ?? Self.pageSize
        var after: Int64 = 0
        if let token = options.skipToken {
            guard let value = Int64(token) else { throw DirectoryError.badRequest("Invalid $skiptoken.") }
            after = value
        }
        var collected: [JSONValue] = []
        var lastSeq = after
        var exhausted = false
        while collected.count < top, !exhausted {
            let from = lastSeq
            let batch = try await api.app.store.read { tx in try await tx.changes(tenant: tenant, kinds: nil, after: from, limit: 500) }
            exhausted = batch.count < 500
            for change in batch {
                lastSeq = change.seq
                let rendered = Self.render(change)
                if let (field, value) = wanted, rendered[field]?.stringValue?.lowercased() != value.lowercased() { continue }
                collected.append(rendered)
                if collected.count == top { exhausted = exhausted && change.seq == batch.last?.seq; break }
            }
        }
        var body: [String: JSONValue] = ["@odata.context": .string("\(context.base)/$metadata#auditLogs/directoryAudits"),
                                         "value": .array(collected)]
        if collected.count == top, !exhausted {
            body["@odata.nextLink"] = .string(Lister(context: context, app: api.app).nextLink(skipToken: String(lastSeq)))
        }
        return .json(.object(body))
    }

    static func render(_ change: ChangeRecord) -> JSONValue {
        let operationType: String = switch change.operation {
        case "create": "Add"
        case "update": "Update"
        case "delete", "purge": "Delete"
        case "restore": "Restore"
        case "link": "Assign"
        case "unlink": "Unassign"
        default: "Other"
        }
        var target: [String: JSONValue] = [
            "id": .string(change.objectId), "displayName": change.details["displayName"] ?? nil,
            "type": .string(change.kind.rawValue.prefix(1).uppercased() + change.kind.rawValue.dropFirst()),
            "userPrincipalName": nil, "groupType": nil,
            "modifiedProperties": change.details["modifiedProperties"] ?? [],
        ]
        if let targetId = change.details["targetId"]?.stringValue {
            target["modifiedProperties"] = [["displayName": .optional(change.details["relation"]?.stringValue), "oldValue": nil,
                                             "newValue": .string("\"\(targetId)\"")]]
        }
        return [
            "id": .string("Directory_\(change.seq)"), "category": .string(change.kind.auditCategory),
            "correlationId": .string(Identifier.make()), "result": "success", "resultReason": "",
            "activityDisplayName": .string(change.activity), "activityDateTime": .string(change.at),
            "loggedByService": "Core Directory", "operationType": .string(operationType), "initiatedBy": change.actor,
            "targetResources": [.object(target)], "additionalDetails": [],
        ]
    }
}

extension AuditHandler {
    /// `/auditLogs/signIns`: newest first, `$filter` on the record's properties, `$top`, offset paging.
    func signIns() async throws -> APIResponse {
        let options = try context.parseOptions()
        let top = options.top ?? Self.pageSize
        var offset = 0
        if let token = options.skipToken {
            guard let value = Int(token), value >= 0 else { throw DirectoryError.badRequest("Invalid $skiptoken.") }
            offset = value
        }
        let found = try await api.app.directory.signIns(tenant: context.tenant, filter: options.filter, limit: top + 1, offset: offset)
        var body: [String: JSONValue] = [
            "@odata.context": .string("\(context.base)/$metadata#auditLogs/signIns"),
            "value": .array(found.prefix(top).map { .object($0.body.filter { !$0.key.hasPrefix("_") }) }),
        ]
        if found.count > top {
            body["@odata.nextLink"] = .string("\(context.base)/auditLogs/signIns?$top=\(top)&$skiptoken=\(offset + top)")
        }
        return .json(.object(body))
    }
}
