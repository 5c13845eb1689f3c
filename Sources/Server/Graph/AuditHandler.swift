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
        if rest.first == "provisioning" { return try await ProvisioningLogHandler(api: api, context: context).handle(Array(rest.dropFirst())) }
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
        // Any property of the record can be filtered (`initiatedBy/user/id`, `activityDateTime ge 2021-11-01`,
        // `targetResources/any(t:t/id eq '…')`); the only order is by activityDateTime, oldest first unless `desc`.
        let options = try QueryValidator(entity: nil, advanced: true, count: true).resolve(try context.parseOptions())
        guard options.search == nil else { throw DirectoryError(.unsupportedQuery, "$search is not supported on directory audits.") }
        var descending = false
        for item in options.orderBy {
            guard item.path.segments == ["activityDateTime"] else {
                throw DirectoryError(.unsupportedQuery, "Directory audits can be ordered by activityDateTime only.")
            }
            descending = item.descending
        }
        let top = options.top ?? Self.pageSize
        // The skip token is the sequence to continue after (oldest first) or before (`d…`, newest first).
        var boundary: Int64? = nil
        if let token = options.skipToken {
            guard token.hasPrefix("d") == descending, let value = Int64(descending ? String(token.dropFirst()) : token) else {
                throw DirectoryError.badRequest("Invalid $skiptoken.")
            }
            boundary = value
        }
        let page = descending
            ? try await newestFirst(before: boundary, top: top, filter: options.filter)
            : try await oldestFirst(after: boundary ?? 0, top: top, filter: options.filter)
        var body: [String: JSONValue] = ["@odata.context": .string("\(context.base)/$metadata#auditLogs/directoryAudits"),
                                         "value": .array(page.values.map { Renderer.select($0, options.select) })]
        if let next = page.next {
            body["@odata.nextLink"] = .string(Lister(context: context, app: api.app).nextLink(skipToken: descending ? "d\(next)" : String(next)))
        }
        return .json(.object(body))
    }

    static let readBatch = 500

    /// Up to `top` matching records after sequence `after`, and the sequence to continue after if there may be more.
    func oldestFirst(after: Int64, top: Int, filter: FilterExpression?) async throws -> (values: [JSONValue], next: Int64?) {
        let tenant = context.tenant
        var collected: [JSONValue] = []
        var position = after
        while true {
            let from = position
            let batch = try await api.app.store.read { tx in try await tx.changes(tenant: tenant, kinds: nil, after: from, limit: Self.readBatch) }
            for change in batch {
                position = change.seq
                let rendered = Self.render(change)
                guard filter?.matches(rendered) ?? true else { continue }
                collected.append(rendered)
                if collected.count == top { return (collected, change.seq == batch.last?.seq && batch.count < Self.readBatch ? nil : change.seq) }
            }
            if batch.count < Self.readBatch { return (collected, nil) }
        }
    }

    /// Up to `top` matching records before sequence `before` (from the newest when nil), newest first, and the
    /// sequence to continue before if there may be more. Reads the change log backwards in windows.
    func newestFirst(before: Int64?, top: Int, filter: FilterExpression?) async throws -> (values: [JSONValue], next: Int64?) {
        let tenant = context.tenant
        var upper: Int64
        if let before { upper = before } else { upper = try await api.app.store.read { tx in try await tx.latestSequence(tenant: tenant) } + 1 }
        var collected: [JSONValue] = []
        while upper > 1 {
            let lower = max(0, upper - 1 - Int64(Self.readBatch))
            let window = upper
            let batch = try await api.app.store.read { tx in
                try await tx.changes(tenant: tenant, kinds: nil, after: lower, limit: Self.readBatch)
            }.filter { $0.seq < window }
            for change in batch.reversed() {
                let rendered = Self.render(change)
                guard filter?.matches(rendered) ?? true else { continue }
                collected.append(rendered)
                if collected.count == top { return (collected, change.seq > 1 ? change.seq : nil) }
            }
            upper = lower + 1
        }
        return (collected, nil)
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
            "type": change.details["targetType"] ?? .string(change.kind.rawValue.prefix(1).uppercased() + change.kind.rawValue.dropFirst()),
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
            "targetResources": [.object(target)], "additionalDetails": change.details["additionalDetails"] ?? [],
        ]
    }
}

extension AuditHandler {
    /// `/auditLogs/signIns`: newest first, `$filter` on the record's properties, `$top`, keyset paging.
    func signIns() async throws -> APIResponse {
        let options = try QueryValidator(entity: nil, advanced: true, count: true).resolve(try context.parseOptions())
        guard options.search == nil else { throw DirectoryError(.unsupportedQuery, "$search is not supported on sign-ins.") }
        guard options.orderBy.allSatisfy({ $0.path.segments == ["createdDateTime"] && $0.descending }) else {
            throw DirectoryError(.unsupportedQuery, "Sign-ins are ordered by createdDateTime desc only.")
        }
        let top = options.top ?? Self.pageSize
        // The skip token is the last record shown (keyset: the next page starts after it, however many records
        // arrive meanwhile); a number is an offset from before keyset tokens.
        var offset = 0, before: String?
        if let token = options.skipToken {
            if let value = Int(token), value >= 0 {
                offset = value
            } else if let data = Base64URL.decode(token), case .object(let state)? = try? JSONParser.parse(Array(data)),
                      let id = state["before"]?.stringValue {
                before = id
            } else {
                throw DirectoryError.badRequest("Invalid $skiptoken.")
            }
        }
        let found = try await api.app.directory.signIns(tenant: context.tenant, filter: options.filter, limit: top + 1, offset: offset,
                                                        before: before)
        var body: [String: JSONValue] = [
            "@odata.context": .string("\(context.base)/$metadata#auditLogs/signIns"),
            "value": .array(found.prefix(top).map { Renderer.select(.object($0.body), options.select) }),
        ]
        if found.count > top, let last = found.prefix(top).last {
            body["@odata.nextLink"] = .string(Lister(context: context, app: api.app).nextLink(skipToken: Lister.encode(["before": .string(last.id)])))
        }
        return .json(.object(body))
    }
}
