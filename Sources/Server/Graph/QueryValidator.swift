import TesseraCore

/// Resolves `$select`, `$filter`, `$orderby` and `$search` against Graph's schema for the types a collection holds.
///
/// Names match case-insensitively, as Graph's do, and come back as declared; unknown and hidden (`_`-prefixed)
/// members are refused; comparisons, functions and ordering take single primitive values only (never a complex
/// value or a collection read as text); Entra's advanced-query rules apply. Every Graph query goes through here
/// before it reaches the store, so what holds here holds for every kind.
struct QueryValidator {
    /// The declared types of what the collection holds (several for polymorphic lists).
    let structures: [GraphStructure]
    /// The type named in messages.
    let typeName: String
    /// The entity names the collection holds.
    let entityNames: [String]
    let advanced: Bool
    let count: Bool
    /// Navigation properties `$select` may name besides the declared properties (delta's `members`).
    var navigation: [String] = []

    /// Relations `$filter` can count (`memberOf/$count eq 0`), as Entra's advanced queries allow.
    static let countableRelations = ["memberOf", "members", "owners", "appRoleAssignments"]

    /// Abstract types whose collections hold derived ones, resolved against each.
    static let derived = ["namedLocation": ["namedLocation", "ipNamedLocation", "countryNamedLocation"]]

    init(entity: String?, kinds: [ObjectKind] = [], advanced: Bool, count: Bool, beta: Bool = false) {
        let names = entity.map { [$0] } ?? kinds.map(\.rawValue)
        structures = names.flatMap { Self.derived[$0] ?? [$0] }.compactMap { GraphSchema.entity($0, beta: beta) }
        typeName = names.count == 1 ? names[0] : "directoryObject"
        entityNames = names
        self.advanced = advanced
        self.count = count
    }

    /// Checks the options and returns them with every property name as the schema declares it.
    func resolve(_ options: QueryOptions) throws(DirectoryError) -> QueryOptions {
        var out = options
        if let select = options.select {
            var names: [String] = []
            for name in select { names.append(try selectName(name)) }
            out.select = names
        }
        var orderBy: [OrderByItem] = []
        for item in options.orderBy {
            let (segments, type) = try path(item.path.segments)
            guard type?.isPrimitive ?? true else {
                throw DirectoryError(.badRequest, "Sorting by '\(segments.joined(separator: "/"))' is not supported: it is not a primitive property.")
            }
            orderBy.append(OrderByItem(path: PropertyPath(segments), descending: item.descending))
        }
        out.orderBy = orderBy
        if let filter = options.filter { out.filter = try walk(filter, lambda: nil) }
        if let search = options.search { out.search = try searchTerms(search) }
        if options.search != nil, !advanced {
            throw DirectoryError(.unsupportedQuery, "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'")
        }
        if options.filter != nil, !options.orderBy.isEmpty, !(advanced && count) {
            throw DirectoryError(.unsupportedQuery, "Sorting not supported for current query. $orderby with $filter requires $count=true and the ConsistencyLevel header set to eventual.")
        }
        if let expand = options.expand {
            var names: [String] = [], selects: [String: [String]] = [:]
            for name in expand {
                let declared = try Expander.resolve(name, on: entityNames)
                names.append(declared)
                if let nested = options.expandSelect[name] {
                    let target = declared == "roleDefinition"
                        ? QueryValidator(entity: "unifiedRoleDefinition", advanced: advanced, count: count)
                        : QueryValidator(entity: nil, kinds: Expander.relatedKinds, advanced: advanced, count: count)
                    selects[declared] = try target.resolve(QueryOptions(select: nested)).select
                }
            }
            out.expand = names
            out.expandSelect = selects
        }
        return out
    }

    func notFound(_ name: String, on type: String? = nil) -> DirectoryError {
        DirectoryError(.badRequest, "Could not find a property named '\(name)' on type 'microsoft.graph.\(type ?? typeName)'.")
    }

    func selectName(_ name: String) throws(DirectoryError) -> String {
        if let nav = navigation.first(where: { $0.lowercased() == name.lowercased() }) { return nav }
        return try path([name]).segments[0]
    }

    /// A path from the collection's type: its declared segments and the type it ends on (nil where the schema is open).
    func path(_ segments: [String]) throws(DirectoryError) -> (segments: [String], type: GraphPropertyType?) {
        guard let first = segments.first else { throw DirectoryError(.badRequest, "A property name is missing.") }
        if first.lowercased() == "id" {
            guard segments.count == 1 else { throw notFound(segments[1]) }
            return (["id"], .string)
        }
        guard !first.hasPrefix("_") else { throw notFound(first) }
        if structures.isEmpty { return try walkPath(segments, from: nil, resolved: []) }
        for structure in structures {
            if let (name, property) = structure.resolve(first) {
                return try walkPath(Array(segments.dropFirst()), from: property.type, resolved: [name])
            }
        }
        throw notFound(first)
    }

    /// Resolves `segments` inside a value of `type` (a complex value or a lambda's element).
    func walkPath(_ segments: [String], from type: GraphPropertyType?, resolved: [String]) throws(DirectoryError)
        -> (segments: [String], type: GraphPropertyType?) {
        var out = resolved, current = type
        for (offset, segment) in segments.enumerated() {
            guard !segment.hasPrefix("_") else { throw notFound(segment) }
            guard let known = current else {
                out.append(segment)
                continue
            }
            guard case .complex(let complexName) = known else {
                let what = known.elementType == nil ? "a primitive value" : "a collection; use any() or all()"
                let full = (out + [segment]).joined(separator: "/")
                throw DirectoryError(.badRequest, "The property '\(full)' cannot be reached: '\(out.joined(separator: "/"))' is \(what).")
            }
            guard let structure = known.structure, !structure.properties.isEmpty else {
                // A type the schema leaves open (custom security attributes): names pass as written.
                out += segments.dropFirst(offset)
                return (out, nil)
            }
            guard let (name, property) = structure.resolve(segment) else { throw notFound(segment, on: complexName) }
            out.append(name)
            current = property.type
        }
        return (out, current)
    }

    func needsAdvanced(_ what: String) throws(DirectoryError) {
        guard advanced, count else {
            throw DirectoryError(.unsupportedQuery,
                                 "\(what) is not supported because the required parameters might be missing. Try adding $count with a value of true and set the ConsistencyLevel header to eventual.")
        }
    }

    /// The element type of the lambda in scope (`.some(nil)` when the schema does not say).
    typealias Lambda = GraphPropertyType?

    func operand(_ p: PropertyPath, lambda: Lambda?) throws(DirectoryError) -> PropertyPath {
        let resolved: (segments: [String], type: GraphPropertyType?)
        if p.isLambdaVariable {
            guard let lambda else { throw DirectoryError(.badRequest, "A lambda variable is used outside its lambda.") }
            resolved = try walkPath(p.segments, from: lambda, resolved: [])
        } else {
            resolved = try path(p.segments)
        }
        guard resolved.type?.isPrimitive ?? true else {
            let shown = p.isLambdaVariable && resolved.segments.isEmpty ? "the lambda variable" : "'\(resolved.segments.joined(separator: "/"))'"
            throw DirectoryError(.badRequest, "Invalid filter clause: \(shown) is not a primitive value; compare its properties instead.")
        }
        return PropertyPath(resolved.segments, isLambdaVariable: p.isLambdaVariable)
    }

    func walk(_ e: FilterExpression, lambda: Lambda?) throws(DirectoryError) -> FilterExpression {
        switch e {
        case .and(let a, let b): return .and(try walk(a, lambda: lambda), try walk(b, lambda: lambda))
        case .or(let a, let b): return .or(try walk(a, lambda: lambda), try walk(b, lambda: lambda))
        case .not(let a):
            try needsAdvanced("Operator 'not'")
            return .not(try walk(a, lambda: lambda))
        case .compare(let p, let op, let literal) where p.segments.last == "$count" && !p.isLambdaVariable:
            try needsAdvanced("$count in $filter")
            guard case .int = literal else { throw DirectoryError(.badRequest, "Invalid filter clause: $count compares with an integer.") }
            let prefix = Array(p.segments.dropLast())
            if prefix.count == 1, let relation = Self.countableRelations.first(where: { $0.lowercased() == prefix[0].lowercased() }),
               structures.allSatisfy({ $0.resolve(relation) == nil }) {
                return .compare(PropertyPath([relation, "$count"]), op, literal)
            }
            let (segments, type) = try path(prefix)
            guard type == nil || type?.elementType != nil else {
                throw DirectoryError(.badRequest, "Invalid filter clause: '\(segments.joined(separator: "/"))' is not a collection to count.")
            }
            return .compare(PropertyPath(segments + ["$count"]), op, literal)
        case .compare(let p, let op, let literal):
            if op == .ne { try needsAdvanced("Operator 'ne'") }
            return .compare(try operand(p, lambda: lambda), op, literal)
        case .startsWith(let p, let value): return .startsWith(try operand(p, lambda: lambda), value)
        case .in(let p, let values): return .in(try operand(p, lambda: lambda), values)
        case .endsWith(let p, let value):
            try needsAdvanced("Operator 'endsWith'")
            return .endsWith(try operand(p, lambda: lambda), value)
        case .contains:
            throw DirectoryError(.unsupportedQuery, "Unsupported Query: the 'contains' function is not supported on directory objects.")
        case .isOf(let type): return .isOf(type)
        case .any(let c, let variable, let predicate):
            let (collection, element) = try lambdaCollection(c, lambda: lambda)
            let checked = try predicate.map { p throws(DirectoryError) in try walk(p, lambda: .some(element)) }
            return .any(collection: collection, variable: variable, predicate: checked)
        case .all(let c, let variable, let predicate):
            let (collection, element) = try lambdaCollection(c, lambda: lambda)
            return .all(collection: collection, variable: variable, predicate: try walk(predicate, lambda: .some(element)))
        }
    }

    func lambdaCollection(_ c: PropertyPath, lambda: Lambda?) throws(DirectoryError) -> (PropertyPath, GraphPropertyType?) {
        guard !c.isLambdaVariable else { throw DirectoryError(.unsupportedQuery, "Nested lambda expressions are not supported.") }
        let (segments, type) = try path(c.segments)
        guard let type else { return (PropertyPath(segments), nil) }
        guard let element = type.elementType else {
            throw DirectoryError(.badRequest,
                                 "Invalid filter clause: any() and all() apply to collections; '\(segments.joined(separator: "/"))' is not one.")
        }
        return (PropertyPath(segments), element)
    }

    func searchTerms(_ s: SearchExpression) throws(DirectoryError) -> SearchExpression {
        switch s {
        case .and(let a, let b): return .and(try searchTerms(a), try searchTerms(b))
        case .or(let a, let b): return .or(try searchTerms(a), try searchTerms(b))
        case .term(let term):
            let (segments, type) = try path([term.property])
            guard type?.isPrimitive ?? true else {
                throw DirectoryError(.badRequest, "Invalid $search clause: '\(segments[0])' is not a text property.")
            }
            return .term(SearchTerm(property: segments[0], value: term.value))
        }
    }
}
