import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

/// Country named locations at the token endpoint: the client's country comes from the IP-to-country database (Tor's
/// geoip files, real allocations) for the address a trusted proxy forwarded; an address the database does not place
/// is of unknown country, which only `includeUnknownCountriesAndRegions` brings into a location.
@Suite("Country named locations decide client credentials")
struct CountryLocationTests {
    static let proxy = "10.0.0.1"

    /// A country location of `countries` and an enabled policy that blocks the tenant's automation app in it.
    static func blockTheAppIn(_ countries: [String], unknown: Bool, _ h: Harness, _ admin: String) async throws -> String {
        let location = await h.graph("POST", ConditionalAccessTests.locations, token: admin, json: [
            "@odata.type": "#microsoft.graph.countryNamedLocation", "displayName": "Blocked countries",
            "countriesAndRegions": .array(countries.map { .string($0) }), "includeUnknownCountriesAndRegions": .bool(unknown)])
        #expect(location.status == 201, "\(location.text)")
        let locationID = try #require(location.json["id"]?.stringValue)
        let sp = await h.graph("GET", "servicePrincipals", token: admin, query: [("$filter", "appId eq '\(h.tenant.clientId)'")])
        let spID = try #require(sp.json["value"]?.arrayValue?.first?["id"]?.stringValue)
        let policy = await h.graph("POST", ConditionalAccessTests.policies, token: admin, json: [
            "displayName": "No automation from blocked countries", "state": "enabled",
            "conditions": [
                "users": ["includeUsers": ["None"]],
                "clientApplications": ["includeServicePrincipals": [.string(spID)]],
                "applications": ["includeApplications": ["All"]],
                "locations": ["includeLocations": [.string(locationID)]],
            ],
            "grantControls": ["operator": "OR", "builtInControls": ["block"]]])
        #expect(policy.status == 201, "\(policy.text)")
        return locationID
    }

    /// A client credentials request that reached Tessera from `peer` with `X-Forwarded-For: forwardedFor`.
    static func token(_ h: Harness, peer: String = proxy, forwardedFor: String?) async throws -> APIResponse {
        await h.clientCredentials(from: try #require(h.app.network.clientAddress(peer: peer, forwardedFor: forwardedFor)))
    }

    static func isRefused(_ response: APIResponse) -> Bool {
        response.status == 400 && response.json["error"] == "invalid_grant" && response.json["error_codes"]?.arrayValue?.first?.intValue == 53003
    }

    @Test("a policy blocking NL refuses the app from RIPE NCC's addresses behind the proxy, not from Google's, nor a forged header")
    func blockedCountry() async throws {
        let network = NetworkPolicy(trustedProxies: [try #require(NetworkPolicy.proxyRange("10.0.0.0/8"))])
        try await Harness.run(network: network, countries: try CountryDatabaseFixture.load()) { h in
            let admin = try await h.accessToken()
            _ = try await Self.blockTheAppIn(["NL"], unknown: false, h, admin)
            #expect(Self.isRefused(try await Self.token(h, forwardedFor: "193.0.0.10")))
            #expect(Self.isRefused(try await Self.token(h, forwardedFor: "2001:67c:2e8::2")))
            #expect(try await Self.token(h, forwardedFor: "8.8.8.8").status == 200)
            #expect(try await Self.token(h, forwardedFor: "2001:4860:4860::8888").status == 200)
            // A client that is not a trusted proxy cannot claim to be elsewhere: its own address (US) counts.
            #expect(try await Self.token(h, peer: "8.8.8.8", forwardedFor: "193.0.0.10").status == 200)
            // A private address is in no country: outside a location that does not include unknown countries.
            #expect(try await Self.token(h, forwardedFor: "192.168.1.5").status == 200)
            #expect(h.app.countries.country(for: "193.0.0.10") == "NL")
            // The sign-in log places each request: Graph's signIn.location.countryOrRegion.
            let log = await h.graph("GET", "auditLogs/signIns", token: admin, query: [("$filter", "ipAddress eq '193.0.0.10'")])
            let record = try #require(log.json["value"]?.arrayValue?.first)
            #expect(record["location"]?["countryOrRegion"] == "NL" && record["conditionalAccessStatus"] == "failure")
            let private_ = await h.graph("GET", "auditLogs/signIns", token: admin, query: [("$filter", "ipAddress eq '192.168.1.5'")])
            #expect(private_.json["value"]?.arrayValue?.first?["location"] == nil)
        }
    }

    @Test("includeUnknownCountriesAndRegions brings private addresses, and every address when no database is loaded, into the location")
    func unknownCountries() async throws {
        let network = NetworkPolicy(trustedProxies: [try #require(NetworkPolicy.proxyRange("10.0.0.0/8"))])
        try await Harness.run(network: network, countries: try CountryDatabaseFixture.load()) { h in
            let admin = try await h.accessToken()
            let location = try await Self.blockTheAppIn(["NL"], unknown: false, h, admin)
            #expect(try await Self.token(h, forwardedFor: "192.168.1.5").status == 200)
            let patched = await h.graph("PATCH", "\(ConditionalAccessTests.locations)/\(location)", token: admin, json: [
                "@odata.type": "#microsoft.graph.countryNamedLocation", "includeUnknownCountriesAndRegions": true])
            #expect(patched.status == 204, "\(patched.text)")
            #expect(Self.isRefused(try await Self.token(h, forwardedFor: "192.168.1.5")))
            #expect(Self.isRefused(try await Self.token(h, forwardedFor: "fd00::7")))
            #expect(try await Self.token(h, forwardedFor: "8.8.8.8").status == 200)
        }
        // Without a database every country is unknown: the NL address is outside a location without unknown
        // countries, and inside one with them.
        try await Harness.run(network: network) { h in
            let admin = try await h.accessToken()
            let location = try await Self.blockTheAppIn(["NL"], unknown: false, h, admin)
            #expect(try await Self.token(h, forwardedFor: "193.0.0.10").status == 200)
            _ = await h.graph("PATCH", "\(ConditionalAccessTests.locations)/\(location)", token: admin, json: [
                "@odata.type": "#microsoft.graph.countryNamedLocation", "includeUnknownCountriesAndRegions": true])
            #expect(Self.isRefused(try await Self.token(h, forwardedFor: "193.0.0.10")))
        }
    }
}
