import Foundation
import TesseraCore

/// Lists a collection with OData options: `$filter`, `$search`, `$select`, `$orderby`, `$top`, `$count`,
/// and paging by `@odata.nextLink` with an opaque `$skiptoken`.
struct Lister {
    let context: RequestContext
    let app: TesseraApp

    static let defaultPageSize = 100

    func list(kinds: [ObjectKind], scope: QueryScope = .all, deleted: Bool = false, contextPath: String,
              entity: String?, polymorphic: Bool = false, constraint: FilterExpression? = nil,
              virtual: [JSONValue] = []) async throws -> APIResponse {
        let options = try context.options(entity: entity, kinds: kinds)
        let top = options.top ?? Self.defaultPageSize
        let filter: FilterExpression? = switch (constraint, options.filter) {
        case (let a?, let b?): .and(a, b)
        case (let a?, nil): a
        case (nil, let b): b
        }
        // Without $orderby, order by the indexed property the filter narrows by (if any), so the database
        // walks that index rather than scanning every object in id order.
        var orderBy = options.orderBy
        if orderBy.isEmpty, let narrowing = ObjectQuery.indexedNarrowing(options.filter) {
            orderBy = [OrderByItem(path: narrowing, descending: false)]
        }
        var query = ObjectQuery(tenant: context.tenant, kinds: kinds, scope: scope, deleted: deleted,
                                deletedSince: deleted ? app.directory.deletedCutoff : nil, filter: filter,
                                search: options.search, orderBy: orderBy, limit: top + 1)
        // Read only what the response shows: the selected properties, or Graph's default set for users.
        if !deleted, !polymorphic, options.expand == nil {
            if let select = options.select {
                // Derived members read what they derive from.
                query.projection = Set(select.filter { $0 != "id" } + select.compactMap { Renderer.derivedFrom[$0] }).sorted()
            } else if kinds == [.user] {
                query.projection = Renderer.defaultUserProperties.filter { $0 != "id" }.sorted()
            }
            // The next page's token holds the last row's values of the order's properties: read them too.
            if let projection = query.projection {
                let ordered = orderBy.compactMap { $0.path.segments.count == 1 && $0.path.segments[0] != "id" ? $0.path.segments[0] : nil }
                query.projection = Set(projection + ordered).sorted()
            }
            if query.projection?.isEmpty == true { query.projection = nil }
        }
        if let token = options.skipToken { try Self.resume(&query, from: token) }
        let wantsCount = options.count && context.isAdvanced
        let frozen = query
        let (rows, total) = try await app.store.read { tx in
            (try await tx.query(frozen), wantsCount ? try await tx.count(frozen) : nil)
        }
        let page = Array(rows.prefix(top))
        // Objects that are not stored (directory roles in memberOf) match the same filter in memory; they come first,
        // on the first page.
        let matchingVirtual = virtual.filter { (options.filter?.matches($0) ?? true) && (options.search?.matches($0) ?? true) }
        let shown = options.skipToken == nil ? matchingVirtual.map { Renderer.select($0, options.select) } : []
        var rendered = page.map { Renderer.render($0, select: options.select, polymorphic: polymorphic) }
        if let expand = options.expand {
            rendered = try await Expander(app: app, tenant: context.tenant).expand(rendered, objects: page, names: expand,
                                                                                   selects: options.expandSelect)
        }
        var body: [String: JSONValue] = [
            "@odata.context": .string("\(context.base)/$metadata#\(contextPath)"),
            "value": .array(shown + rendered),
        ]
        if let total { body["@odata.count"] = .int(Int64(total + matchingVirtual.count)) }
        if rows.count > top, let last = page.last {
            body["@odata.nextLink"] = .string(nextLink(skipToken: Self.token(after: last, orderBy: orderBy, offset: query.offset + top)))
        }
        return .json(.object(body))
    }

    /// The `$skiptoken` of the page after `last`: a keyset position (the id, and with `$orderby` the last row's values of
    /// the order's properties), so that a page costs the same wherever it is and rows inserted or deleted before it
    /// move nothing in or out of it. An order by a property whose value is not text (which the store orders as its
    /// own type) pages by offset.
    static func token(after last: StoredObject, orderBy: [OrderByItem], offset: Int) -> String {
        var values: [JSONValue] = []
        for item in orderBy {
            if item.path.segments == ["id"] {
                values.append(.string(last.id))
                continue
            }
            switch JSONValue.object(last.body).value(at: item.path.segments) {
            case .string(let text)?: values.append(.string(text))
            case nil, .null?: values.append(.null)
            default: return encode(["o": .int(Int64(offset))])
            }
        }
        return encode(orderBy.isEmpty ? ["a": .string(last.id)] : ["k": .array(values), "a": .string(last.id)])
    }

    static func encode(_ state: JSONValue) -> String { Base64URL.encode(Data(state.serialized.utf8)) }

    /// Continues `query` from a `$skiptoken` this lister made.
    static func resume(_ query: inout ObjectQuery, from token: String) throws(DirectoryError) {
        guard let data = Base64URL.decode(token), case .object(let state)? = try? JSONParser.parse(Array(data)) else {
            throw DirectoryError.badRequest("Invalid $skiptoken.")
        }
        if case .array(let keys)? = state["k"] {
            guard let id = state["a"]?.stringValue, keys.count == query.orderBy.count else { throw DirectoryError.badRequest("Invalid $skiptoken.") }
            var values: [String?] = []
            for key in keys {
                switch key {
                case .string(let text): values.append(text)
                case .null: values.append(nil)
                default: throw DirectoryError.badRequest("Invalid $skiptoken.")
                }
            }
            query.after = KeysetPosition(values: values, id: id)
        } else if let after = state["a"]?.stringValue {
            guard query.orderBy.isEmpty else { throw DirectoryError.badRequest("Invalid $skiptoken.") }
            query.afterId = after
        } else if let offset = state["o"]?.intValue, offset >= 0 {
            query.offset = Int(offset)
        } else {
            throw DirectoryError.badRequest("Invalid $skiptoken.")
        }
    }

    /// The same URL with a new `$skiptoken`.
    func nextLink(skipToken: String) -> String {
        var parameters = context.request.query.filter { $0.name != "$skiptoken" }
        parameters.append(("$skiptoken", skipToken))
        let path = context.request.segments.map(Self.encode).joined(separator: "/")
        return "\(context.request.baseURL)/\(path)?" + parameters.map { "\(Self.encode($0.name))=\(Self.encode($0.value))" }.joined(separator: "&")
    }

    static let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~$")
    static func encode(_ text: String) -> String { text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? text }

    /// `…/$count`: the number of matching objects as plain text (needs `ConsistencyLevel: eventual`).
    /// `virtual` counts objects that are not stored (directory roles in `memberOf/$count`).
    func count(kinds: [ObjectKind], scope: QueryScope = .all, entity: String?, virtual: [JSONValue] = []) async throws -> APIResponse {
        guard context.isAdvanced else {
            throw DirectoryError(.badRequest, "Count is not currently supported: the request needs the header 'ConsistencyLevel: eventual'.")
        }
        let options = try QueryValidator(entity: entity, kinds: kinds, advanced: true, count: true, beta: context.version == "beta").resolve(try context.parseOptions())
        let query = ObjectQuery(tenant: context.tenant, kinds: kinds, scope: scope, filter: options.filter, search: options.search)
        let total = try await app.store.read { tx in try await tx.count(query) }
        return .text(String(total + virtual.filter { (options.filter?.matches($0) ?? true) && (options.search?.matches($0) ?? true) }.count))
    }
}

extension Lister {
    /// OData over a small collection that is not stored (built-in role definitions, directory roles): `$filter`,
    /// `$orderby` (case-insensitive text, numbers, nulls first), `$top` and `$select` in memory, so no option is
    /// silently ignored; `$search` is refused.
    static func inMemory(_ values: [JSONValue], _ options: QueryOptions) throws(DirectoryError) -> [JSONValue] {
        guard options.search == nil else { throw DirectoryError(.unsupportedQuery, "$search is not supported on this resource.") }
        var out = values.filter { options.filter?.matches($0) ?? true }
        if !options.orderBy.isEmpty {
            out.sort { a, b in
                for item in options.orderBy {
                    let x = sortKey(a.value(at: item.path.segments)), y = sortKey(b.value(at: item.path.segments))
                    if x != y { return item.descending ? x > y : x < y }
                }
                return false
            }
        }
        if let top = options.top { out = Array(out.prefix(top)) }
        return out.map { Renderer.select($0, options.select) }
    }

    /// A comparable key: text folded, numbers zero-padded after it sorts nulls first.
    static func sortKey(_ value: JSONValue?) -> String {
        switch value {
        case .string(let s)?: "1" + s.lowercased()
        case .int(let i)?: "1" + String(format: "%020lld", i)
        case .bool(let b)?: "1" + (b ? "1" : "0")
        default: "0"
        }
    }
}
