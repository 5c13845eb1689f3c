import TesseraCore

/// Turns stored objects into Graph JSON: private members removed, `$select` applied, Graph's default
/// property set for users.
enum Renderer {
    /// What `GET /users` returns without `$select`, as in Graph v1.0.
    static let defaultUserProperties: Set<String> = [
        "businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone", "officeLocation",
        "preferredLanguage", "surname", "userPrincipalName", "id",
    ]

    static func render(_ object: StoredObject, select: [String]?, polymorphic: Bool = false) -> JSONValue {
        var out: [String: JSONValue] = [:]
        if let select {
            for name in select { out[name] = object.body[name] ?? (name == "id" ? .string(object.id) : .null) }
        } else if object.kind == .user {
            for name in defaultUserProperties { out[name] = object.body[name] ?? .null }
        } else {
            out = object.body
        }
        if select == nil {
            out["id"] = .string(object.id)
            if object.deletedAt != nil { out["deletedDateTime"] = object.body["deletedDateTime"] ?? .string(object.deletedAt ?? "") }
        }
        if let derived = object.body["@odata.type"], object.kind == .namedLocation {
            out["@odata.type"] = derived  // always: clients pick the derived type by it
        } else if polymorphic || object.deletedAt != nil {
            out["@odata.type"] = .string(object.kind.odataType)
        }
        return stripPrivate(.object(out))
    }

    /// Removes `_`-prefixed members at every depth (secret digests, certificates kept for verification).
    static func stripPrivate(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let members):
            var out: [String: JSONValue] = [:]
            for (key, member) in members where !key.hasPrefix("_") { out[key] = stripPrivate(member) }
            return .object(out)
        case .array(let items): return .array(items.map(stripPrivate))
        default: return value
        }
    }
}

/// Checks `$select`, `$filter` and `$orderby` names against the schema, and Entra's advanced-query rules.
struct QueryValidator {
    let entity: String?
    let advanced: Bool
    let count: Bool

    func check(_ options: QueryOptions) throws(DirectoryError) {
        if let select = options.select { for name in select { try property(name) } }
        for item in options.orderBy { try property(item.path.segments.first ?? "") }
        if let filter = options.filter { try walk(filter) }
        if options.search != nil, !advanced {
            throw DirectoryError(.badRequest, "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'")
        }
        if options.filter != nil, !options.orderBy.isEmpty, !(advanced && count) {
            throw DirectoryError(.unsupportedQuery, "Sorting not supported for current query. $orderby with $filter requires $count=true and the ConsistencyLevel header set to eventual.")
        }
        if options.expand != nil {
            throw DirectoryError(.unsupportedQuery, "$expand is not supported on this resource yet.")
        }
    }

    func property(_ name: String) throws(DirectoryError) {
        guard let entity, let structure = GraphSchema.entity(entity) else { return }
        guard name == "id" || structure.properties[name] != nil else {
            throw DirectoryError(.badRequest, "Could not find a property named '\(name)' on type 'microsoft.graph.\(entity)'.")
        }
    }

    func needsAdvanced(_ what: String) throws(DirectoryError) {
        guard advanced, count else {
            throw DirectoryError(.unsupportedQuery,
                                 "\(what) is not supported because the required parameters might be missing. Try adding $count with a value of true and set the ConsistencyLevel header to eventual.")
        }
    }

    func walk(_ e: FilterExpression) throws(DirectoryError) {
        switch e {
        case .and(let a, let b), .or(let a, let b):
            try walk(a)
            try walk(b)
        case .not(let a):
            try needsAdvanced("Operator 'not'")
            try walk(a)
        case .compare(let p, let op, _):
            if !p.isLambdaVariable { try property(p.segments.first ?? "") }
            if op == .ne { try needsAdvanced("Operator 'ne'") }
        case .startsWith(let p, _), .in(let p, _):
            if !p.isLambdaVariable { try property(p.segments.first ?? "") }
        case .endsWith(let p, _):
            if !p.isLambdaVariable { try property(p.segments.first ?? "") }
            try needsAdvanced("Operator 'endsWith'")
        case .contains:
            throw DirectoryError(.unsupportedQuery, "Unsupported Query: the 'contains' function is not supported on directory objects.")
        case .any(let c, _, let predicate):
            try property(c.segments.first ?? "")
            if let predicate { try walk(predicate) }
        case .all(let c, _, let predicate):
            try property(c.segments.first ?? "")
            try walk(predicate)
        }
    }
}
