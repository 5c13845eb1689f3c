extension SQLDirectoryStore {
    /// Whether SQLite's last write was refused for a full disk with none committed since (false on PostgreSQL).
    public var isDiskFull: Bool { (backend as? SQLiteBackend)?.writer.isDiskFull ?? false }

    /// The migration steps this build knows that the database has not recorded yet (empty once `migrate` has run here
    /// or on another node of the same or a newer build). One read: it also proves the database answers.
    public func pendingMigrations() async throws -> [Int] {
        let dialect = backend.dialect
        return try await backend.withReadSession { session in
            let table = dialect.isPostgres
                ? "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = 'schema_migrations'"
                : "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
            let known = Migrations.steps(dialect).map(\.0)
            guard try await !session.execute(table, []).isEmpty else { return known }
            let applied = Set(try await session.execute("SELECT version FROM schema_migrations", []).compactMap { $0.first?.int })
            return known.filter { !applied.contains(Int64($0)) }
        }
    }
}
