/// A value bound to or read from SQL.
enum SQLValue: Sendable, Hashable {
    case text(String)
    case int(Int64)
    case double(Double)
    case null

    var text: String? { if case .text(let s) = self { s } else { nil } }
    var int: Int64? {
        switch self {
        case .int(let i): i
        case .double(let d): Int64(d)
        case .text(let s): Int64(s)
        case .null: nil
        }
    }
}

/// A database: SQLite in a file, or PostgreSQL. Everything above this speaks the same SQL, with the
/// few differences held by `SQLDialect`.
protocol SQLBackend: Sendable {
    var dialect: SQLDialect { get }
    /// Runs `body` in a read-write transaction that commits when it returns and rolls back when it throws.
    func withWriteSession<T: Sendable>(_ body: @Sendable (any SQLSession) async throws -> T) async throws -> T
    /// Runs `body` on a connection for reads.
    func withReadSession<T: Sendable>(_ body: @Sendable (any SQLSession) async throws -> T) async throws -> T
    func close() async throws
}
