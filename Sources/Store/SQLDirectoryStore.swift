public import TesseraCore

/// The directory store over SQL: SQLite (default) or PostgreSQL, one implementation.
public final class SQLDirectoryStore: DirectoryStore {
    let backend: any SQLBackend

    init(backend: any SQLBackend) {
        self.backend = backend
    }

    /// Opens the store named by `database`: a `postgres://` URL, or a path to an SQLite file (`:memory:` for tests).
    public static func open(_ database: String) async throws -> SQLDirectoryStore {
        if database.hasPrefix("postgres://") || database.hasPrefix("postgresql://") {
            return SQLDirectoryStore(backend: try PostgresBackend(url: database))
        }
        let path = database.hasPrefix("sqlite://") ? String(database.dropFirst("sqlite://".count)) : database
        return SQLDirectoryStore(backend: try SQLiteBackend(path: path))
    }

    /// True for PostgreSQL.
    public var isPostgres: Bool { backend.dialect.isPostgres }

    public func migrate() async throws {
        try await Migrations.run(on: backend)
    }

    public func write<T: Sendable>(_ body: @Sendable (any DirectoryTransaction) async throws -> T) async throws -> T {
        try await backend.withWriteSession { session in
            try await body(SQLTransaction(session: session, dialect: self.backend.dialect))
        }
    }

    public func read<T: Sendable>(_ body: @Sendable (any DirectoryReadView) async throws -> T) async throws -> T {
        try await backend.withReadSession { session in
            try await body(SQLTransaction(session: session, dialect: self.backend.dialect))
        }
    }

    public func shutdown() async throws {
        try await backend.close()
    }
}

extension SQLDirectoryStore {
    /// Bytes a tenant's backups take, counted as their stored text (before any compression by the database):
    /// packs (blob bodies and their index) and manifests; for `tessera bench backup`.
    public func backupBytes(tenant: String) async throws -> (total: Int, blobs: Int) {
        try await backend.withReadSession { session in
            let packs = try await session.execute("SELECT COALESCE(SUM(LENGTH(body) + LENGTH(digests)), 0) FROM backup_packs WHERE tenant = ?", [.text(tenant)])
            let manifests = try await session.execute(
                "SELECT COALESCE(SUM(LENGTH(entries) + LENGTH(links)), 0) FROM backup_manifests WHERE tenant = ?", [.text(tenant)])
            let b = Int(packs.first?.first?.int ?? 0)
            return (b + Int(manifests.first?.first?.int ?? 0), b)
        }
    }
}
