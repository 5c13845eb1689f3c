public import TesseraCore
import Foundation
import Synchronization

/// The real IP-to-country database (Tor's `geoip` and `geoip6` from Debian's `tor-geoipdb`), for tests that need
/// real allocations: `TESSERA_TEST_COUNTRY_DB` (set by `scripts/test`), else the package's installed folder, else
/// where `scripts/test` extracts it (`interop/.venv/share/tor-geoipdb`). Loaded once per test process.
public enum CountryDatabaseFixture {
    /// The folder the database is read from, or an error saying how to get one.
    public static func path() throws -> String {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidates: [String?] = [ProcessInfo.processInfo.environment["TESSERA_TEST_COUNTRY_DB"], CountryDatabase.defaultPath,
                          repository.appendingPathComponent("interop/.venv/share/tor-geoipdb").path]
        for case let candidate? in candidates where FileManager.default.fileExists(atPath: candidate + "/geoip") {
            return candidate
        }
        throw FixtureMissing()
    }

    /// The database, loaded once.
    public static func load() throws -> CountryDatabase {
        try loaded.withLock { cached in
            if let cached { return cached }
            let database = try CountryDatabase.load(path: try path())
            cached = database
            return database
        }
    }

    private static let loaded = Mutex<CountryDatabase?>(nil)

    struct FixtureMissing: Error, CustomStringConvertible {
        var description: String {
            "no IP-to-country database: run scripts/test (it extracts Debian's tor-geoipdb into interop/.venv/share/tor-geoipdb), "
                + "install tor-geoipdb, or set TESSERA_TEST_COUNTRY_DB to a folder holding Tor's geoip and geoip6"
        }
    }
}
