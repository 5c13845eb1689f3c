import TesseraCore

/// Translates an `ObjectQuery` (OData `$filter`, `$search`, `$orderby`, paging) to SQL with binds.
///
/// Property names become JSON paths; every name is checked to be a plain identifier before it is
/// placed in SQL text, and every value is a bind.
struct QueryTranslator {
    let dialect: SQLDialect
    private var binds: [SQLValue] = []
    private var aliasCounter = 0

    init(dialect: SQLDialect) {
        self.dialect = dialect
    }

    struct Translated {
        let sql: String
        let binds: [SQLValue]
    }

    func select(_ query: ObjectQuery, columns: String) throws(DirectoryError) -> Translated {
        if let after = query.after, let limit = query.limit, let first = query.orderBy.first, after.values.first.flatMap({ $0 }) != nil,
           after.values.count == query.orderBy.count, first.path.segments != ["id"], nullsFollow(descending: first.descending) {
            return try selectBeforeAndAmongNulls(query, after: after, limit: limit, columns: columns)
        }
        var me = self
        var sql = "SELECT \(columns) FROM objects WHERE " + (try me.whereClause(query))
        if query.orderBy.isEmpty {
            if let after = query.afterId {
                sql += " AND id > ?"
                me.binds.append(.text(after))
            }
            sql += " ORDER BY id"
        } else {
            let terms = try query.orderBy.map { item throws(DirectoryError) in
                "\(try me.orderExpression(item.path)) \(item.descending ? "DESC" : "ASC")"
            }
            if let after = query.after { sql += " AND " + (try me.keyset(after, order: query.orderBy)) }
            // The id breaks ties, unless the order already ends with it: a second, ascending "id" after "id DESC"
            // makes SQLite give up the (tenant, kind, id) index and walk every object of the tenant.
            let tieBreak = query.orderBy.last?.path.segments == ["id"] ? "" : ", id"
            sql += " ORDER BY " + terms.joined(separator: ", ") + tieBreak
        }
        if let limit = query.limit {
            // Written into the text, not bound: SQLite re-plans a prepared statement whenever a bound LIMIT moves
            // between 0, 1 and more (about 2 re-prepares a passkey sign-in), and a query's limit takes few values.
            sql += " LIMIT \(max(0, limit))"
            if query.offset > 0 {
                sql += " OFFSET ?"
                me.binds.append(.int(Int64(query.offset)))
            }
        }
        return Translated(sql: sql, binds: me.binds)
    }

    /// A keyset page whose first order term has NULLs after the position's value (PostgreSQL ascending, SQLite
    /// descending): the rows after it with a value, walked from the position along the index, then the rows without
    /// one, each part limited, merged in order. One predicate with "or NULL" would have the database step over every
    /// row before the position.
    private func selectBeforeAndAmongNulls(_ query: ObjectQuery, after: KeysetPosition, limit: Int,
                                           columns: String) throws(DirectoryError) -> Translated {
        var me = self
        let expressions = try query.orderBy.map { item throws(DirectoryError) in try me.orderExpression(item.path) }
        let keys = expressions.enumerated().map { ", \($1) AS keyset_\($0)" }.joined()
        let directions = query.orderBy.map { $0.descending ? "DESC" : "ASC" }
        let order = zip(expressions, directions).map { "\($0) \($1)" }.joined(separator: ", ")
            + (query.orderBy.last?.path.segments == ["id"] ? "" : ", id")
        let outerOrder = "keyset_part, " + directions.enumerated().map { "keyset_\($0) \($1)" }.joined(separator: ", ")
            + (query.orderBy.last?.path.segments == ["id"] ? "" : ", id")
        var valued = "SELECT \(columns), 0 AS keyset_part\(keys) FROM objects WHERE " + (try me.whereClause(query))
        valued += " AND " + (try me.keyset(after, order: query.orderBy, firstHasNoNulls: true)) + " ORDER BY \(order) LIMIT ?"
        me.binds.append(.int(Int64(limit)))
        var nulls = "SELECT \(columns), 1 AS keyset_part\(keys) FROM objects WHERE " + (try me.whereClause(query))
        nulls += " AND \(expressions[0]) IS NULL ORDER BY \(order) LIMIT ?"
        me.binds.append(.int(Int64(limit)))
        me.binds.append(.int(Int64(limit)))
        return Translated(sql: "SELECT * FROM (SELECT * FROM (\(valued)) AS valued UNION ALL SELECT * FROM (\(nulls)) AS nulls) AS page "
                          + "ORDER BY \(outerOrder) LIMIT ?", binds: me.binds)
    }

    func count(_ query: ObjectQuery) throws(DirectoryError) -> Translated {
        var me = self
        let sql = "SELECT COUNT(*) FROM objects WHERE " + (try me.whereClause(query))
        return Translated(sql: sql, binds: me.binds)
    }

    private mutating func whereClause(_ query: ObjectQuery) throws(DirectoryError) -> String {
        var parts = ["tenant = ?"]
        binds.append(.text(query.tenant))
        if query.kinds.count == 1 {
            parts.append("kind = \(kindValue(query.kinds[0]))")
        } else if !query.kinds.isEmpty {
            parts.append("kind IN (\(query.kinds.map { kindValue($0) }.joined(separator: ",")))")
        }
        parts.append(query.deleted ? "deleted_at IS NOT NULL" : "deleted_at IS NULL")
        if query.deleted, let since = query.deletedSince {
            parts.append("deleted_at >= ?")
            binds.append(.text(since))
        }
        if query.deleted, let before = query.deletedBefore {
            parts.append("deleted_at < ?")
            binds.append(.text(before))
        }
        switch query.scope {
        case .all: break
        case .targets(let source, let relation):
            parts.append("id IN (SELECT target FROM links WHERE tenant = ? AND source = ? AND relation = ?)")
            binds += [.text(query.tenant), .text(source), .text(relation)]
        case .sources(let target, let relation):
            parts.append("id IN (SELECT source FROM links WHERE tenant = ? AND target = ? AND relation = ?)")
            binds += [.text(query.tenant), .text(target), .text(relation)]
        case .ids(let ids):
            if ids.isEmpty {
                parts.append("1 = 0")
            } else {
                parts.append("id IN (\(marks(ids.count)))")
                binds += ids.map { .text($0) }
            }
        }
        if let filter = query.filter { parts.append(try expression(filter, tenant: query.tenant, element: nil)) }
        if let search = query.search { parts.append(try searchExpression(search)) }
        return parts.joined(separator: " AND ")
    }

    /// A kind as the query's SQL names it: written into the text when it is a plain name (every kind the code defines),
    /// so that the database can prove the query is of a kind a property index covers (migration 18's partial indexes:
    /// SQLite matches a partial index's condition against the query's text, and a bound value proves nothing); anything
    /// else is bound. A kind takes few values, so the statements stay few.
    private mutating func kindValue(_ kind: ObjectKind) -> String {
        let name = kind.rawValue
        if !name.isEmpty, name.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) }) {
            return "'\(name)'"
        }
        binds.append(.text(name))
        return "?"
    }

    private func marks(_ n: Int) -> String { Array(repeating: "?", count: n).joined(separator: ",") }

    /// Every property name placed in SQL: a plain identifier, never a hidden (`_`-prefixed) member, whatever the kind.
    /// Hidden members hold secret digests and internal state; no query may read them, even by prefix.
    static func checkPath(_ segments: [String]) throws(DirectoryError) {
        for segment in segments {
            guard !segment.hasPrefix("_") else {
                throw DirectoryError(.badRequest, "Could not find a property named '\(segment)'.")
            }
            guard !segment.isEmpty, segment.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 95 })
            else { throw DirectoryError(.badRequest, "Invalid property name '\(segment)'.") }
        }
    }

    /// The lambda element in scope: its alias.
    private typealias Element = String

    /// The SQL for a property's value: as stored (`raw`) or case-folded for comparisons and ordering.
    private func column(_ path: PropertyPath, element: Element?, folded: Bool) throws(DirectoryError) -> String {
        try Self.checkPath(path.segments)
        if path.isLambdaVariable {
            guard let element else { throw DirectoryError(.badRequest, "A lambda variable is used outside its lambda.") }
            return folded ? dialect.foldedElement(alias: element, subpath: path.segments)
                : dialect.elementText(alias: element, subpath: path.segments)
        }
        if path.segments == ["id"] { return "id" }
        return folded ? dialect.folded(path.segments) : dialect.text(path.segments)
    }

    private func raw(_ path: PropertyPath, element: Element?) throws(DirectoryError) -> String {
        try column(path, element: element, folded: false)
    }

    private func folded(_ path: PropertyPath, element: Element?) throws(DirectoryError) -> String {
        try column(path, element: element, folded: true)
    }

    private func orderExpression(_ path: PropertyPath) throws(DirectoryError) -> String {
        // The id is a column (and the last part of every index): ordering by it walks an index, not the JSON.
        if path.segments == ["id"], !path.isLambdaVariable { return "id" }
        return try folded(path, element: nil)
    }

    /// The rows after `position` in `order` then id: for some term, every earlier term equal and this one after,
    /// or all equal and a greater id. Values are folded by the same SQL as the ordered column, so the comparison
    /// agrees with the order. NULLs sit where each database sorts them (SQLite: first ascending, PostgreSQL: last
    /// ascending). When NULLs cannot follow the position, the first term's bound leads, so the database starts
    /// its index walk at the position rather than stepping over every row before it.
    /// With `firstHasNoNulls`, rows whose first term is NULL are left to the caller.
    private mutating func keyset(_ position: KeysetPosition, order: [OrderByItem], firstHasNoNulls: Bool = false) throws(DirectoryError) -> String {
        guard position.values.count == order.count else { throw DirectoryError.badRequest("Invalid $skiptoken.") }
        var terms: [KeysetTerm] = []
        for (item, value) in zip(order, position.values) {
            let isID = item.path.segments == ["id"] && !item.path.isLambdaVariable
            terms.append(KeysetTerm(expression: try orderExpression(item.path), isID: isID, descending: item.descending,
                                    value: isID ? value ?? position.id : value))
        }
        if firstHasNoNulls { terms[0].hasNulls = false }
        if !(terms.last?.isID ?? false) { terms.append(KeysetTerm(expression: "id", isID: true, descending: false, value: position.id)) }
        var sql = ""
        if let first = terms.first, let value = first.value, !nullsFollow(first) {
            sql += "\(first.expression) \(first.descending ? "<=" : ">=") \(bound(value, first)) AND "
        }
        var alternatives: [String] = []
        for (index, term) in terms.enumerated() {
            var parts: [String] = []
            for earlier in terms[..<index] {
                parts.append(earlier.value.map { "\(earlier.expression) = \(bound($0, earlier))" } ?? "\(earlier.expression) IS NULL")
            }
            if let value = term.value {
                let after = "\(term.expression) \(term.descending ? "<" : ">") \(bound(value, term))"
                parts.append(nullsFollow(term) ? "(\(after) OR \(term.expression) IS NULL)" : after)
            } else if nullsFollow(term) {
                continue  // nothing sorts after NULL here but other NULLs, which the next term orders
            } else {
                parts.append("\(term.expression) IS NOT NULL")
            }
            alternatives.append("(" + parts.joined(separator: " AND ") + ")")
        }
        return "(" + sql + "(" + (alternatives.isEmpty ? "1 = 0" : alternatives.joined(separator: " OR ")) + "))"
    }

    private struct KeysetTerm {
        var expression: String
        var isID: Bool
        var descending: Bool
        var value: String?
        /// False for the id, and for a term whose NULLs the query leaves to another part.
        var hasNulls: Bool

        init(expression: String, isID: Bool, descending: Bool, value: String?) {
            self.expression = expression
            self.isID = isID
            self.descending = descending
            self.value = value
            self.hasNulls = !isID
        }
    }

    /// Whether NULLs come after every value of the term in its direction.
    private func nullsFollow(_ term: KeysetTerm) -> Bool {
        term.hasNulls && nullsFollow(descending: term.descending)
    }

    /// Whether NULLs sort after every value in this direction (SQLite: NULLs first ascending; PostgreSQL: last).
    private func nullsFollow(descending: Bool) -> Bool {
        dialect.isPostgres != descending
    }

    /// A bind folded as the term's column is.
    private mutating func bound(_ value: String, _ term: KeysetTerm) -> String {
        binds.append(.text(value))
        if term.isID { return "?" }
        return dialect.isPostgres ? "lower(CAST(? AS TEXT))" : "lower(?)"
    }

    private mutating func expression(_ filter: FilterExpression, tenant: String, element: Element?) throws(DirectoryError) -> String {
        switch filter {
        case .and(let a, let b):
            return "(\(try expression(a, tenant: tenant, element: element)) AND \(try expression(b, tenant: tenant, element: element)))"
        case .or(let a, let b):
            return "(\(try expression(a, tenant: tenant, element: element)) OR \(try expression(b, tenant: tenant, element: element)))"
        case .not(let a):
            return "(NOT COALESCE(\(try expression(a, tenant: tenant, element: element)), FALSE))"
        case .compare(let path, let op, let literal) where path.segments.last == "$count" && !path.isLambdaVariable:
            guard case .int(let n) = literal else { throw DirectoryError(.badRequest, "$count compares with an integer.") }
            let sqlOp = Self.sql(op)
            binds.append(.int(n))
            return "(\(try countExpression(PropertyPath(Array(path.segments.dropLast())))) \(sqlOp) ?)"
        case .compare(let path, let op, let literal):
            return try comparison(path, op, literal, element: element)
        case .isOf(let type):
            // A derived type is kept in the body (named locations); otherwise the kind is the type.
            let stored = dialect.isPostgres ? "(body ->> '@odata.type')" : "json_extract(body, '$.\"@odata.type\"')"
            binds += [.text(type), .text("#microsoft.graph.\(type)")]
            return "(kind = ? OR \(stored) = ?)"
        case .startsWith(let path, let prefix):
            let lhs = try folded(path, element: element)
            binds += [.text(prefix.lowercased()), .text(prefix.lowercased() + "\u{10FFFF}")]
            return "(\(lhs) >= ? AND \(lhs) < ?)"
        case .endsWith(let path, let suffix):
            binds.append(.text("%" + Self.escapeLike(suffix.lowercased())))
            return "(\(try folded(path, element: element)) LIKE ? ESCAPE '!')"
        case .contains(let path, let text):
            binds.append(.text("%" + Self.escapeLike(text.lowercased()) + "%"))
            return "(\(try folded(path, element: element)) LIKE ? ESCAPE '!')"
        case .in(let path, let literals):
            guard !literals.isEmpty else { return "(1 = 0)" }
            let terms = try literals.map { literal throws(DirectoryError) in try comparison(path, .eq, literal, element: element) }
            return "(" + terms.joined(separator: " OR ") + ")"
        case .any(let collection, _, let predicate):
            guard !collection.isLambdaVariable else { throw DirectoryError(.unsupportedQuery, "Nested lambda expressions are not supported.") }
            try Self.checkPath(collection.segments)
            // Fast path: an address lookup through the unique-key index.
            if collection.segments == ["proxyAddresses"],
               case .compare(let p, .eq, .string(let value))? = predicate, p.isLambdaVariable, p.segments.isEmpty {
                binds += [.text(tenant), .text(value.lowercased())]
                return "id IN (SELECT object FROM unique_keys WHERE tenant = ? AND name = 'proxyAddresses' AND value = ?)"
            }
            aliasCounter += 1
            let alias = "e\(aliasCounter)"
            let from = dialect.arrayElements(collection.segments, alias: alias)
            guard let predicate else { return "EXISTS (SELECT 1 FROM \(from))" }
            return "EXISTS (SELECT 1 FROM \(from) WHERE \(try expression(predicate, tenant: tenant, element: alias)))"
        case .all(let collection, _, let predicate):
            try Self.checkPath(collection.segments)
            aliasCounter += 1
            let alias = "e\(aliasCounter)"
            let from = dialect.arrayElements(collection.segments, alias: alias)
            return "NOT EXISTS (SELECT 1 FROM \(from) WHERE NOT COALESCE(\(try expression(predicate, tenant: tenant, element: alias)), FALSE))"
        }
    }

    /// The number of elements of a collection property, or of objects on a relation (`memberOf/$count`).
    private func countExpression(_ path: PropertyPath) throws(DirectoryError) -> String {
        try Self.checkPath(path.segments)
        switch path.segments {
        case ["memberOf"]:
            return "(SELECT COUNT(*) FROM links l WHERE l.tenant = objects.tenant AND l.target = objects.id AND l.relation = 'members')"
        case ["members"], ["owners"]:
            return "(SELECT COUNT(*) FROM links l WHERE l.tenant = objects.tenant AND l.source = objects.id AND l.relation = '\(path.segments[0])')"
        case ["appRoleAssignments"]:
            return "(SELECT COUNT(*) FROM objects a WHERE a.tenant = objects.tenant AND a.kind = 'appRoleAssignment'"
                + " AND a.deleted_at IS NULL AND \(dialect.text(["principalId"], column: "a.body")) = objects.id)"
        default:
            let array = dialect.json(path.segments)
            return dialect.isPostgres
                ? "COALESCE(jsonb_array_length(CASE WHEN jsonb_typeof(\(array)) = 'array' THEN \(array) END), 0)"
                : "COALESCE(json_array_length(body, '$.\(path.segments.joined(separator: "."))'), 0)"
        }
    }

    /// The SQL operator of an OData comparison.
    static func sql(_ op: ComparisonOperator) -> String {
        switch op {
        case .eq: "="
        case .ne: "<>"
        case .gt: ">"
        case .ge: ">="
        case .lt: "<"
        case .le: "<="
        }
    }

    private mutating func comparison(_ path: PropertyPath, _ op: ComparisonOperator, _ literal: ODataLiteral,
                                     element: Element?) throws(DirectoryError) -> String {
        let sqlOp = Self.sql(op)
        switch literal {
        case .null:
            let lhs = try raw(path, element: element)
            switch op {
            case .eq: return "(\(lhs) IS NULL)"
            case .ne: return "(\(lhs) IS NOT NULL)"
            default: throw DirectoryError(.badRequest, "Only 'eq' and 'ne' can compare with null.")
            }
        case .string(let s), .guid(let s), .dateTimeOffset(let s):
            let lhs = try folded(path, element: element)
            binds.append(.text(s.lowercased()))
            return op == .ne ? "(\(lhs) IS NULL OR \(lhs) <> ?)" : "(\(lhs) \(sqlOp) ?)"
        case .bool(let b):
            let lhs = try raw(path, element: element)
            binds.append(dialect.boolean(b))
            return op == .ne ? "(\(lhs) IS NULL OR \(lhs) <> ?)" : "(\(lhs) \(sqlOp) ?)"
        case .int(let i):
            let lhs = dialect.number(try raw(path, element: element))
            binds.append(dialect.isPostgres ? .double(Double(i)) : .int(i))
            return op == .ne ? "(\(lhs) IS NULL OR \(lhs) <> ?)" : "(\(lhs) \(sqlOp) ?)"
        case .double(let d):
            let lhs = dialect.number(try raw(path, element: element))
            binds.append(.double(d))
            return op == .ne ? "(\(lhs) IS NULL OR \(lhs) <> ?)" : "(\(lhs) \(sqlOp) ?)"
        }
    }

    private mutating func searchExpression(_ search: SearchExpression) throws(DirectoryError) -> String {
        switch search {
        case .and(let a, let b): return "(\(try searchExpression(a)) AND \(try searchExpression(b)))"
        case .or(let a, let b): return "(\(try searchExpression(a)) OR \(try searchExpression(b)))"
        case .term(let term):
            try Self.checkPath([term.property])
            let lhs = dialect.folded([term.property]), raw = dialect.text([term.property])
            let word = term.value.lowercased()
            guard let first = word.unicodeScalars.first else { return "(1 = 1)" }
            // Graph's $search matches the start of a token: tokens split at anything but letters and digits, between
            // letters and digits, and where a lower-case letter meets an upper-case one ("contoso_Android",
            // "contosoAndroid", "Android10" all have the token "android").
            let isDigit = first.properties.numericType != nil
            let boundary = isDigit ? "[a-z]" : "[0-9]"
            var caseChange = ""
            for (offset, ch) in word.unicodeScalars.enumerated() {
                let upper = String(ch).uppercased(), lower = String(ch)
                if upper == lower { caseChange += dialect.isPostgres ? Self.escapeRegex(lower) : Self.escapeGlob(lower) }
                else { caseChange += offset == 0 ? upper : "[\(lower)\(upper)]" }
            }
            binds.append(.text(Self.escapeLike(word) + "%"))
            if dialect.isPostgres {
                binds.append(.text("([^a-z0-9]|\(boundary))\(Self.escapeRegex(word))"))
                if isDigit { return "(\(lhs) LIKE ? ESCAPE '!' OR \(lhs) ~ ?)" }
                binds.append(.text("[a-z]\(caseChange)"))
                return "(\(lhs) LIKE ? ESCAPE '!' OR \(lhs) ~ ? OR \(raw) ~ ?)"
            }
            let escaped = Self.escapeGlob(word)
            binds += [.text("*[^a-z0-9]\(escaped)*"), .text("*\(boundary)\(escaped)*")]
            if isDigit { return "(\(lhs) LIKE ? ESCAPE '!' OR \(lhs) GLOB ? OR \(lhs) GLOB ?)" }
            binds.append(.text("*[a-z]\(caseChange)*"))
            return "(\(lhs) LIKE ? ESCAPE '!' OR \(lhs) GLOB ? OR \(lhs) GLOB ? OR \(raw) GLOB ?)"
        }
    }

    /// A literal for SQLite's GLOB: its wildcards and brackets each inside brackets.
    static func escapeGlob(_ text: String) -> String {
        var out = ""
        for ch in text { out += "*?[]".contains(ch) ? "[\(ch)]" : String(ch) }
        return out
    }

    /// A literal for a POSIX regular expression: every character that is not a letter or digit escaped.
    static func escapeRegex(_ text: String) -> String {
        var out = ""
        for ch in text { out += ch.isLetter || ch.isNumber ? String(ch) : "\\\(ch)" }
        return out
    }

    static func escapeLike(_ text: String) -> String {
        var out = ""
        for ch in text {
            if ch == "%" || ch == "_" || ch == "!" { out.append("!") }
            out.append(ch)
        }
        return out
    }
}
