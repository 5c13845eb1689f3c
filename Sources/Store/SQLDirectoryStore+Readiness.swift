extension SQLDirectoryStore {
    /// Whether SQLite's last write was refused for a full disk with none committed since (false on PostgreSQL).
    public var isDiskFull: Bool { (backend as? SQLiteBackend)?.writer.isDiskFull ?? false }

    /// The migration steps this build knows that the database has not recorded yet (empty once `migrate` has run here
    /// or on another node of the same or a newer build). One read: it also proves the database answers. Throws
    /// `SchemaNewerThanBuild` when a newer build applied a step this one must not run on.
    public func pendingMigrations() async throws -> [Int] {
        let status = try await schemaStatus()
        if !status.blocking.isEmpty { throw SchemaNewerThanBuild(status: status) }
        return status.pending.map(\.number)
    }

    /// The database's schema against the steps this build knows: pending ones, and ones a newer build applied (what
    /// `tessera migrate --check` prints). Reads only.
    public func schemaStatus() async throws -> SchemaStatus {
        let dialect = backend.dialect
        return try await backend.withReadSession { session in try await Migrations.status(session, dialect: dialect) }
    }

    /// Applies the pending migration steps and returns them (`migrate()` without the list); throws
    /// `SchemaNewerThanBuild`, changing nothing, when a newer build applied a step this one must not run on.
    @discardableResult
    public func applyMigrations() async throws -> [MigrationStep] {
        try await Migrations.run(on: backend)
    }

    /// Every migration step this build knows, in order.
    public static var migrationSteps: [MigrationStep] { Migrations.catalog }
}
