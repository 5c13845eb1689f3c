import Foundation
import TesseraCore

/// `/users/delta` and `/groups/delta`: an initial full read, then only what changed, from the change log.
///
/// Tokens are opaque: base64url JSON with the change-log sequence they start after and when they were
/// issued; they expire after 7 days, as Entra's do. As Microsoft documents: `$select` may name `members` on groups
/// (each group then carries `members@delta`, all members at first and the additions and removals after);
/// `$filter=id eq '…'` (joined by `or`) tracks chosen objects; `Prefer: return=minimal` returns only the
/// properties that changed.
struct DeltaHandler {
    let context: RequestContext
    let app: TesseraApp
    let kind: ObjectKind

    static let lifetime: TimeInterval = 7 * 86_400
    static let pageSize = 200

    /// What the client asked for, carried in every link.
    struct Options {
        var select: [String]?
        var ids: [String]?
        var skipToken: String?
        var deltaToken: String?
        var wantsMembers: Bool { select?.contains("members") == true }
        /// `$select` without the navigation property.
        var properties: [String]? { select?.filter { $0 != "members" } }
    }

    var minimal: Bool {
        context.request.header("prefer")?.lowercased().split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces) == "return=minimal" } == true
    }

    func handle() async throws -> APIResponse {
        guard context.request.method == "GET" else { throw DirectoryError(.methodNotAllowed, "Use GET.") }
        let options = try parse()
        let tenant = context.tenant
        let now = app.clock.now
        if let token = options.deltaToken {
            if token == "latest" {
                let seq = try await app.store.read { tx in try await tx.latestSequence(tenant: tenant) }
                return page([], next: nil, delta: state(["s": .int(seq)]), options)
            }
            let decoded = try decode(token, now: now)
            guard let seq = decoded["s"]?.intValue else { throw expired() }
            return try await changes(after: seq, options)
        }
        if let token = options.skipToken {
            let decoded = try decode(token, now: now)
            if let snapshot = decoded["snap"]?.intValue {
                return try await initial(after: decoded["a"]?.stringValue, snapshot: snapshot, options)
            }
            guard let seq = decoded["s"]?.intValue else { throw expired() }
            return try await changes(after: seq, options)
        }
        let snapshot = try await app.store.read { tx in try await tx.latestSequence(tenant: tenant) }
        return try await initial(after: nil, snapshot: snapshot, options)
    }

    /// Delta accepts `$select`, `$filter` on ids, `$skiptoken` and `$deltatoken`.
    func parse() throws(DirectoryError) -> Options {
        var options = Options()
        var validator = QueryValidator(entity: kind.rawValue, advanced: false, count: false, beta: context.version == "beta")
        if kind == .group { validator.navigation = ["members"] }
        for (name, value) in context.request.query {
            switch name.lowercased() {
            case "$select":
                let names: [String]?
                do { names = try QueryOptions.parse([("$select", value)]).select } catch { throw DirectoryError(.badRequest, error.message) }
                var select = try validator.resolve(QueryOptions(select: names)).select ?? []
                if !select.contains("id") { select.append("id") }  // delta always carries the id
                options.select = select
            case "$filter":
                let filter: FilterExpression
                do { filter = try FilterParser.parse(value) } catch { throw DirectoryError(.badRequest, error.message) }
                guard let ids = Self.ids(filter), !ids.isEmpty, ids.count <= 50 else {
                    throw DirectoryError(.unsupportedQuery, "Delta queries filter on ids only: $filter=id eq '…' or id eq '…' (up to 50).")
                }
                options.ids = ids
            case "$skiptoken": options.skipToken = value
            case "$deltatoken": options.deltaToken = value
            case "$top", "$orderby", "$search", "$count", "$expand":
                throw DirectoryError(.unsupportedQuery, "The query option '\(name)' is not supported with delta queries.")
            default:
                if name.hasPrefix("$") { throw DirectoryError.badRequest("Unrecognized query argument specified: '\(name)'.") }
            }
        }
        return options
    }

    /// The ids of `id eq '…' or id eq '…'`, or nil for any other filter.
    static func ids(_ filter: FilterExpression) -> [String]? {
        switch filter {
        case .compare(let path, .eq, .string(let id)) where path.segments.count == 1 && path.segments[0].lowercased() == "id":
            return [id.lowercased()]
        case .compare(let path, .eq, .guid(let id)) where path.segments.count == 1 && path.segments[0].lowercased() == "id":
            return [id]
        case .or(let a, let b):
            guard let left = ids(a), let right = ids(b) else { return nil }
            return left + right
        default: return nil
        }
    }

    func initial(after: String?, snapshot: Int64, _ options: Options) async throws -> APIResponse {
        var query = ObjectQuery(tenant: context.tenant, kinds: [kind], limit: Self.pageSize + 1, afterId: after)
        if let ids = options.ids { query.scope = .ids(ids) }
        let frozen = query, tenant = context.tenant, wantsMembers = options.wantsMembers
        let (rows, members) = try await app.store.read { tx -> ([StoredObject], [String: [JSONValue]]) in
            let rows = try await tx.query(frozen)
            guard wantsMembers else { return (rows, [:]) }
            var members: [String: [JSONValue]] = [:]
            for group in rows.prefix(Self.pageSize) {
                let objects = try await tx.objects(tenant: tenant, ids: try await tx.targets(tenant: tenant, source: group.id, relation: "members"))
                members[group.id] = objects.filter { $0.deletedAt == nil }.map { ["@odata.type": .string($0.kind.odataType), "id": .string($0.id)] }
            }
            return (rows, members)
        }
        let pageRows = Array(rows.prefix(Self.pageSize))
        let values = pageRows.map { object in
            var rendered = Renderer.render(object, select: options.properties)
            if wantsMembers { rendered["members@delta"] = .array(members[object.id] ?? []) }
            return rendered
        }
        if rows.count > Self.pageSize, let last = pageRows.last {
            return page(values, next: state(["snap": .int(snapshot), "a": .string(last.id)]), delta: nil, options)
        }
        return page(values, next: nil, delta: state(["s": .int(snapshot)]), options)
    }

    func changes(after seq: Int64, _ options: Options) async throws -> APIResponse {
        let tenant = context.tenant, kind = self.kind
        let (records, objects, memberKinds) = try await app.store.read { tx -> ([ChangeRecord], [StoredObject], [String: ObjectKind]) in
            let records = try await tx.changes(tenant: tenant, kinds: [kind], after: seq, limit: 1000)
            let ids = Array(Set(records.map(\.objectId)))
            let targets = Array(Set(records.compactMap { $0.details["relation"]?.stringValue == "members" ? $0.details["targetId"]?.stringValue : nil }))
            let memberKinds = Dictionary(try await tx.objects(tenant: tenant, ids: targets).map { ($0.id, $0.kind) }, uniquingKeysWith: { a, _ in a })
            return (records, try await tx.objects(tenant: tenant, ids: ids), memberKinds)
        }
        var byObject: [String: [ChangeRecord]] = [:]
        var order: [String] = []
        for record in records {
            if byObject[record.objectId] == nil { order.append(record.objectId) }
            byObject[record.objectId, default: []].append(record)
        }
        // Each object once, where it last changed.
        order.sort { (byObject[$0]?.last?.seq ?? 0) < (byObject[$1]?.last?.seq ?? 0) }
        if let ids = options.ids { order = order.filter(ids.contains) }
        let byId = Dictionary(objects.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let values: [JSONValue] = order.compactMap { id in
            guard let object = byId[id] else { return ["id": .string(id), "@removed": ["reason": "deleted"]] }
            if object.deletedAt != nil { return ["id": .string(id), "@removed": ["reason": "changed"]] }
            let history = byObject[id] ?? []
            let memberChanges = options.wantsMembers ? Self.memberChanges(history, kinds: memberKinds) : []
            var rendered: JSONValue
            if minimal, history.allSatisfy({ ["update", "link", "unlink"].contains($0.operation) }) {
                var changed = Set(history.flatMap { $0.details["modifiedProperties"]?.arrayValue?.compactMap { $0["displayName"]?.stringValue } ?? [] })
                if let wanted = options.properties { changed.formIntersection(wanted) }
                var out: [String: JSONValue] = ["id": .string(id)]
                for name in changed where !name.hasPrefix("_") { out[name] = object.body[name] ?? .null }
                rendered = Renderer.stripPrivate(.object(out))
                if changed.isEmpty, memberChanges.isEmpty { return nil }  // nothing the client tracks changed
            } else {
                rendered = Renderer.render(object, select: options.properties)
            }
            if options.wantsMembers, !memberChanges.isEmpty || !minimal { rendered["members@delta"] = .array(memberChanges) }
            return rendered
        }
        let last = records.last?.seq ?? seq
        if records.count == 1000 { return page(values, next: state(["s": .int(last)]), delta: nil, options) }
        return page(values, next: nil, delta: state(["s": .int(last)]), options)
    }

    /// `members@delta` from a group's link records: added members, and removed ones marked `@removed`.
    static func memberChanges(_ history: [ChangeRecord], kinds: [String: ObjectKind]) -> [JSONValue] {
        var latest: [String: Bool] = [:]
        var order: [String] = []
        for record in history where record.details["relation"]?.stringValue == "members" {
            guard let target = record.details["targetId"]?.stringValue, record.operation == "link" || record.operation == "unlink" else { continue }
            if latest[target] == nil { order.append(target) }
            latest[target] = record.operation == "link"
        }
        return order.map { target in
            var entry: [String: JSONValue] = ["id": .string(target)]
            if let kind = kinds[target] { entry["@odata.type"] = .string(kind.odataType) }
            if latest[target] == false { entry["@removed"] = ["reason": "deleted"] }
            return .object(entry)
        }
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

    func page(_ values: [JSONValue], next: String?, delta: String?, _ options: Options) -> APIResponse {
        var parameters: [(name: String, value: String)] = []
        if let select = options.select { parameters.append(("$select", select.joined(separator: ","))) }
        if let ids = options.ids { parameters.append(("$filter", ids.map { "id eq '\($0)'" }.joined(separator: " or "))) }
        let path = "\(context.base)/\(kind.entitySet)/delta"
        func link(_ name: String, _ token: String) -> String {
            path + "?" + (parameters + [(name, token)]).map { "\(Lister.encode($0.name))=\(Lister.encode($0.value))" }.joined(separator: "&")
        }
        var body: [String: JSONValue] = ["@odata.context": .string("\(context.base)/$metadata#\(kind.entitySet)(\(options.select?.joined(separator: ",") ?? "*"))"),
                                         "value": .array(values)]
        if let next { body["@odata.nextLink"] = .string(link("$skiptoken", next)) }
        if let delta { body["@odata.deltaLink"] = .string(link("$deltatoken", delta)) }
        return .json(.object(body), headers: minimal ? [("Preference-Applied", "return=minimal")] : [])
    }
}
