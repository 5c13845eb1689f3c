import Foundation
import Testing
@testable import Store
import TesseraTesting

/// The writer's page cache is small (`SQLiteBackend.writerCacheKiB`): transactions larger than it still commit whole
/// or roll back whole (SQLite spills their pages to the WAL before the commit), and the cache stays small after them.
@Suite("SQLite writer cache")
struct SQLiteWriterCacheTests {
    struct Refused: Error {}

    /// Rows of one page each, three times the writer's cache in one transaction.
    static let rows = 3 * SQLiteBackend.writerCacheKiB / 4

    @Test("a write three times the writer's cache commits whole; one that fails after writing as much leaves nothing; the cache stays small")
    func largeWritesPastTheCache() async throws {
        let (url, folder) = TestDatabases.opened(TestDatabases.sqliteFile)
        defer { if let folder { try? FileManager.default.removeItem(at: folder) } }
        let backend = try SQLiteBackend(path: url)
        let store = SQLDirectoryStore(backend: backend)
        do {
            try await store.migrate()
            let page = String(repeating: "x", count: 4000)
            try await backend.withWriteSession { session in
                for i in 0..<Self.rows {
                    _ = try await session.execute("INSERT INTO settings (tenant, key, value) VALUES ('kept', ?, ?)", [.text("k\(i)"), .text(page)])
                }
            }
            await #expect(throws: Refused.self) {
                try await backend.withWriteSession { session in
                    for i in 0..<Self.rows {
                        _ = try await session.execute("INSERT INTO settings (tenant, key, value) VALUES ('undone', ?, ?)", [.text("k\(i)"), .text(page)])
                    }
                    throw Refused()
                }
            }
            let counts = try await backend.withReadSession { session in
                try await session.execute("SELECT tenant, COUNT(*), SUM(LENGTH(value)) FROM settings WHERE tenant IN ('kept', 'undone') GROUP BY tenant", [])
            }
            #expect(counts == [[.text("kept"), .int(Int64(Self.rows)), .int(Int64(Self.rows * 4000))]])
            // The writer's cache (a negative cache_size is KiB); the readers keep SQLite's default.
            let writerCache = try await backend.withWriteSession { try await $0.execute("PRAGMA cache_size", []) }
            #expect(writerCache.first?.first?.int == -Int64(SQLiteBackend.writerCacheKiB))
            #expect(SQLiteBackend.writerCacheKiB <= 8192)
            try await store.shutdown()
        } catch {
            try? await store.shutdown()
            throw error
        }
    }
}
