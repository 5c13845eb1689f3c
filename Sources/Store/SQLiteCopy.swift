import Foundation
#if canImport(Glibc)
import Glibc
#endif
import TesseraCore

/// A whole SQLite database copied while Tessera serves from it (`tessera backup deployment`).
///
/// SQLite's `VACUUM INTO` on a connection of its own reads one consistent snapshot of the database, which holds every
/// commit acknowledged before the copy began and nothing of any after, and writes it compacted into a new file; the
/// server's writer is never held (in WAL mode a reader does not block it), and the copy needs no WAL beside it.
public enum SQLiteCopy {
    /// What a copy wrote.
    public struct Copied: Sendable {
        /// The copy's size.
        public let bytes: Int64
        /// The copy's tables, by the rows each holds.
        public let rows: [String: Int64]
    }

    /// Why a copy could not be made or did not check out.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// Copies the database at `source` to `destination`, a file that must not exist yet and is made readable by its
    /// owner only (the database holds the deployment's keys); the copy is checked with `PRAGMA integrity_check`
    /// before it is reported, and removed when anything fails.
    public static func copy(_ source: String, to destination: String) async throws -> Copied {
        try await withCheckedThrowingContinuation { continuation in
            // Blocking C calls for as long as the copy takes: a thread of their own, not the concurrency pool's.
            Thread.detachNewThread {
                continuation.resume(with: Result { try copyNow(source, to: destination) })
            }
        }
    }

    private static func copyNow(_ source: String, to destination: String) throws -> Copied {
        let files = FileManager.default
        guard files.fileExists(atPath: source) else {
            throw Failure(description: "There is no SQLite database at \(source).")
        }
        // Created here, empty and private, never over an existing file (VACUUM INTO fills an empty one).
        let created = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard created >= 0 else {
            throw Failure(description: "Cannot create \(destination): \(String(cString: strerror(errno))) (it must not exist yet).")
        }
        close(created)
        do {
            let from = try SQLiteHandle(path: source)
            defer { from.close() }
            from.setBusyTimeout(milliseconds: 10_000)
            _ = try from.execute("VACUUM INTO ?", [.text(destination)])
            let copy = try SQLiteHandle(path: destination)
            defer { copy.close() }
            let integrity = try copy.execute("PRAGMA integrity_check").first?.first?.text ?? ""
            guard integrity == "ok" else {
                throw Failure(description: "The copy at \(destination) failed SQLite's integrity check: \(integrity)")
            }
            var rows: [String: Int64] = [:]
            let tables = try copy.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            for case let name? in tables.map({ $0.first?.text }) {
                rows[name] = try copy.execute("SELECT count(*) FROM \"\(name.replacingOccurrences(of: "\"", with: "\"\""))\"").first?.first?.int ?? 0
            }
            let bytes = (try? files.attributesOfItem(atPath: destination)[.size] as? Int).map { Int64($0) } ?? 0
            return Copied(bytes: bytes, rows: rows)
        } catch {
            try? files.removeItem(atPath: destination)
            throw error
        }
    }
}
