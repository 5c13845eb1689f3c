import ArgumentParser
import Foundation
import Logging
import TesseraCore

/// `serve --country-database`: which country a client address is in, for Conditional Access's country named locations.
extension Serve {
    /// The database named (it must load: a bad configuration fails at start), else Debian's `tor-geoipdb` when it is
    /// installed, else none (every country unknown, which `includeUnknownCountriesAndRegions` decides). Logs which
    /// one was loaded, its date, its size and how long it took.
    static func loadCountries(named path: String?, logger: Logger) throws -> CountryDatabase {
        let chosen = path ?? CountryDatabase.defaultPath
        guard path != nil || FileManager.default.fileExists(atPath: chosen + "/geoip") else {
            logger.notice("""
                No IP-to-country database: every client's country is unknown to Conditional Access \
                (install Debian's tor-geoipdb or pass --country-database)
                """)
            return .empty
        }
        let started = ContinuousClock.now
        let database: CountryDatabase
        do { database = try CountryDatabase.load(path: chosen) } catch {
            throw ValidationError("--country-database: \(error.message)")
        }
        let elapsed = ContinuousClock.now - started
        let info = database.info
        logger.info("IP-to-country database loaded", metadata: [
            "path": .string(info.source), "generated": .string(info.generated.map { $0.formatted(.iso8601) } ?? "unknown"),
            "ipv4Ranges": .stringConvertible(info.ipv4Ranges), "ipv6Ranges": .stringConvertible(info.ipv6Ranges),
            "milliseconds": .stringConvertible(Int((elapsed / .milliseconds(1)).rounded()))])
        if let generated = info.generated, Date().timeIntervalSince(generated) > 365 * 86_400 {
            logger.warning("The IP-to-country database is more than a year old: addresses move between countries; update it (Debian's tor-geoipdb)")
        }
        return database
    }

    /// Warns once, at start, when a tenant has a country named location and no database was loaded: such a location
    /// then holds only addresses of unknown country (those it includes with `includeUnknownCountriesAndRegions`).
    static func warnOfCountryLocations(without database: CountryDatabase, store: any DirectoryStore, tenants: [TenantRecord],
                                       logger: Logger) async throws {
        guard database.isEmpty else { return }
        for tenant in tenants {
            let locations = try await store.read { tx in try await tx.query(ObjectQuery(tenant: tenant.id, kinds: [.namedLocation])) }
            if locations.contains(where: { $0.deletedAt == nil && $0.body["@odata.type"]?.stringValue?.hasSuffix("countryNamedLocation") == true }) {
                logger.warning("""
                    A tenant has a country named location but no IP-to-country database is loaded: \
                    every address is of unknown country to it
                    """, metadata: ["tenant": .string(tenant.id)])
                return
            }
        }
    }
}
