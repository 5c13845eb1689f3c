import Foundation
import TesseraCore

/// `/users/delta` and `/groups/delta`: an initial full read, then only what changed, from the change log.
///
/// Tokens are opaque: base64url JSON with the change-log sequence they start after and when they were
/// issued; they expire after 7 days, as Entra's do.
struct DeltaHandler {
    let context: RequestContext
    let app: TesseraApp
    let kind: ObjectKind

    static let lifetime: TimeInterval = 7 * 86_400
    static let pageSize = 200

    func handle() async throws -> APIResponse {
        guard context.request.method == "GET" else { throw DirectoryError(.methodNotAllowed, "Use GET.") }
        var options = try QueryOptions.parseDelta(context.request.query)
        // Delta always carries the id, whatever $select says.
        if let select = options.select, !select.contains("id") { options.select = select + ["id"] }
        try QueryValidator(entity: kind.rawValue, advanced: false, count: false).check(QueryOptions(select: options.select))
        let tenant = context.tenant, kind = self.kind
        let now = app.clock.now
        if let token = options.deltaToken {
            if token == "latest" {
                let seq = try await app.store.read { tx in try await tx.latestSequence(tenant: tenant) }
                return page([], next: nil, delta: state(["s": .int(seq)]), select: options.select)
            }
            let decoded = try decode(token, now: now)
            guard let seq = decoded["s"]?.intValue else { throw expired() }
            return try await changes(after: seq, select: options.select, issued: decoded["t"]?.intValue ?? 0)
        }
        if let token = options.skipToken {
            let decoded = try decode(token, now: now)
            if let snapshot = decoded["snap"]?.intValue {
                return try await initial(after: decoded["a"]?.stringValue, snapshot: snapshot, select: options.select)
            }
            guard let seq = decoded["s"]?.intValue else { throw expired() }
            return try await changes(after: seq, select: options.select, issued: decoded["t"]?.intValue ?? 0)
        }
        let snapshot = try await app.store.read { tx in try await tx.latestSequence(tenant: tenant) }
        _ = kind
        return try await initial(after: nil, snapshot: snapshot, select: options.select)
    }

    func initial(after: String?, snapshot: Int64, select: [String]?) async throws -> APIResponse {
        let query = ObjectQuery(tenant: context.tenant, kinds: [kind], limit: Self.pageSize + 1, afterId: after)
        let rows = try await app.store.read { tx in try await tx.query(query) }
        let pageRows = Array(rows.prefix(Self.pageSize))
        let values = pageRows.map { Renderer.render($0, select: select) }
        if rows.count > Self.pageSize, let last = pageRows.last {
            return page(values, next: state(["snap": .int(snapshot), "a": .string(last.id)]), delta: nil, select: select)
        }
        return page(values, next: nil, delta: state(["s": .int(snapshot)]), select: select)
    }

    func changes(after seq: Int64, select: [String]?, issued: Int64) async throws -> APIResponse {
        let tenant = context.tenant, kind = self.kind
        let (records, objects) = try await app.store.read { tx -> ([ChangeRecord], [StoredObject]) in
            let records = try await tx.changes(tenant: tenant, kinds: [kind], after: seq, limit: 1000)
            var ids: [String] = []
            var seen: Set<String> = []
            for record in records.reversed() where seen.insert(record.objectId).inserted { ids.append(record.objectId) }
            return (records, try await tx.objects(tenant: tenant, ids: ids.reversed()))
        }
        var seen: Set<String> = []
        var orderedIds: [String] = []
        for record in records.reversed() where seen.insert(record.objectId).inserted { orderedIds.append(record.objectId) }
        orderedIds.reverse()
        let byId = Dictionary(objects.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let values: [JSONValue] = orderedIds.map { id in
            guard let object = byId[id] else { return ["id": .string(id), "@removed": ["reason": "deleted"]] }
            if object.deletedAt != nil { return ["id": .string(id), "@removed": ["reason": "changed"]] }
            return Renderer.render(object, select: select)
        }
        let last = records.last?.seq ?? seq
        if records.count == 1000 { return page(values, next: state(["s": .int(last)]), delta: nil, select: select) }
        return page(values, next: nil, delta: state(["s": .int(last)]), select: select)
    }

    func state(_ fields: [String: JSONValue]) -> String {
        var f = fields
        f["t"] = .int(Int64(app.clock.now.timeIntervalSince1970))
        return Base64URL.encode(Data(JSONValue.object(f).serialized.utf8))
    }

    func decode(_ token: String, now: Date) throws(DirectoryError) -> [String: JSONValue] {
        guard let data = Base64URL.decode(token), case .object(let fields)? = try? JSONParser.parse(Array(data)),
              let issued = fields["t"]?.intValue
        else { throw expired() }
        guard now.timeIntervalSince1970 - Double(issued) <= Self.lifetime else { throw expired() }
        return fields
    }

    func expired() -> DirectoryError {
        DirectoryError(.syncStateNotFound, "The sync state generation is not found. The delta token is expired and data must be synchronized again.")
    }

    func page(_ values: [JSONValue], next: String?, delta: String?, select: [String]?) -> APIResponse {
        var parameters: [(name: String, value: String)] = []
        if let select { parameters.append(("$select", select.joined(separator: ","))) }
        let path = "\(context.base)/\(kind.entitySet)/delta"
        func link(_ name: String, _ token: String) -> String {
            path + "?" + (parameters + [(name, token)]).map { "\(Lister.encode($0.name))=\(Lister.encode($0.value))" }.joined(separator: "&")
        }
        var body: [String: JSONValue] = ["@odata.context": .string("\(context.base)/$metadata#\(kind.entitySet)(\(select?.joined(separator: ",") ?? "*"))"),
                                         "value": .array(values)]
        if let next { body["@odata.nextLink"] = .string(link("$skiptoken", next)) }
        if let delta { body["@odata.deltaLink"] = .string(link("$deltatoken", delta)) }
        return .json(.object(body))
    }
}

extension QueryOptions {
    /// Delta accepts `$select`, `$skiptoken` and `$deltatoken` only.
    static func parseDelta(_ parameters: [(name: String, value: String)]) throws(DirectoryError) -> (select: [String]?, skipToken: String?, deltaToken: String?) {
        var select: [String]?
        var skip: String?
        var delta: String?
        for (name, value) in parameters {
            switch name {
            case "$select": select = value.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
            case "$skiptoken": skip = value
            case "$deltatoken": delta = value
            case "$filter", "$top", "$orderby", "$search", "$count", "$expand":
                throw DirectoryError(.unsupportedQuery, "The query option '\(name)' is not supported with delta queries here.")
            default:
                if name.hasPrefix("$") { throw DirectoryError.badRequest("Unrecognized query argument specified: '\(name)'.") }
            }
        }
        return (select, skip, delta)
    }
}
