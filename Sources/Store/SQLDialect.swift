/// The differences between SQLite and PostgreSQL that the store's SQL depends on.
struct SQLDialect: Sendable {
    let isPostgres: Bool

    static let sqlite = SQLDialect(isPostgres: false)
    static let postgres = SQLDialect(isPostgres: true)

    /// The column type of `objects.body`.
    var jsonColumnType: String { isPostgres ? "JSONB" : "TEXT" }
    /// A bind for a JSON document.
    var jsonBind: String { isPostgres ? "CAST(? AS JSONB)" : "?" }
    /// Reads `body` back as text.
    var bodyText: String { isPostgres ? "body::text" : "body" }

    /// The raw JSON value at `path` of `column` (SQLite: typed; PostgreSQL: jsonb).
    func json(_ path: [String], column: String = "body") -> String {
        isPostgres ? "(\(column) #> '{\(path.joined(separator: ","))}')" : "json_extract(\(column), '$.\(path.joined(separator: "."))')"
    }

    /// The value at `path` as text (PostgreSQL) or as its SQLite value.
    func text(_ path: [String], column: String = "body") -> String {
        isPostgres ? "(\(column) #>> '{\(path.joined(separator: ","))}')" : "json_extract(\(column), '$.\(path.joined(separator: "."))')"
    }

    /// The case-folded text at `path`, the form indexes and string comparisons use.
    func folded(_ path: [String], column: String = "body") -> String {
        isPostgres ? "lower\(text(path, column: column)) COLLATE \"C\"" : "lower(\(text(path, column: column)))"
    }

    /// A table of the elements of the array at `path`, aliased `alias` with a `value` column.
    func arrayElements(_ path: [String], alias: String, column: String = "objects.body") -> String {
        isPostgres
            ? "jsonb_array_elements(CASE WHEN jsonb_typeof(\(json(path, column: column))) = 'array' THEN \(json(path, column: column)) ELSE '[]'::jsonb END) AS \(alias)(value)"
            : "json_each(\(column), '$.\(path.joined(separator: "."))') AS \(alias)"
    }

    /// The text of an array element (or of `subpath` inside it).
    func elementText(alias: String, subpath: [String]) -> String {
        if isPostgres { return "(\(alias).value #>> '{\(subpath.joined(separator: ","))}')" }
        return subpath.isEmpty ? "\(alias).value" : "json_extract(\(alias).value, '$.\(subpath.joined(separator: "."))')"
    }

    /// A case-folded element text.
    func foldedElement(alias: String, subpath: [String]) -> String {
        isPostgres ? "lower\(elementText(alias: alias, subpath: subpath)) COLLATE \"C\"" : "lower(\(elementText(alias: alias, subpath: subpath)))"
    }

    /// A numeric view of a JSON value (null when it is not a number).
    func number(_ expression: String, isElement: Bool = false) -> String {
        guard isPostgres else { return expression }
        return "(CASE WHEN \(expression) ~ '^-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$' THEN CAST(\(expression) AS DOUBLE PRECISION) END)"
    }

    /// How a boolean is compared: SQLite's json_extract yields 1/0, PostgreSQL's #>> yields 'true'/'false'.
    func boolean(_ value: Bool) -> SQLValue { isPostgres ? .text(value ? "true" : "false") : .int(value ? 1 : 0) }

    /// A JSON object of just `properties` of `body`, as text (missing properties become null).
    func projectedBody(_ properties: [String]) -> String {
        if isPostgres {
            let pairs = properties.map { "'\($0)', body -> '\($0)'" }
            // jsonb_build_object takes at most 100 arguments: build in chunks and merge.
            let chunks = stride(from: 0, to: pairs.count, by: 40).map { Array(pairs[$0..<min($0 + 40, pairs.count)]) }
            return "(" + chunks.map { "jsonb_build_object(\($0.joined(separator: ", ")))" }.joined(separator: " || ") + ")::text"
        }
        return "json_object(" + properties.map { "'\($0)', json(body -> '$.\($0)')" }.joined(separator: ", ") + ")"
    }

}
