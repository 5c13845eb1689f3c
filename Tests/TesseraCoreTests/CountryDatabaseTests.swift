import Foundation
import Testing
import TesseraCore
import TesseraTesting

/// The IP-to-country table of country named locations: real allocations from Tor's geoip files (Debian's
/// `tor-geoipdb`, the IPFire Location database), the table's boundaries and runs on small files, and every way a
/// file can be malformed.
@Suite struct CountryDatabaseTests {
    static func address(_ text: String) throws -> IPAddress { try #require(IPAddress(text)) }

    @Test("real allocations resolve to their country: Google's resolvers in the US, RIPE NCC's own blocks in the Netherlands",
          arguments: [("8.8.8.8", "US"), ("193.0.0.1", "NL"), ("193.0.7.255", "NL"), ("::ffff:8.8.4.4", "US"),
                      ("2001:4860:4860::8888", "US"), ("2001:67c:2e8::2", "NL"), ("2001:67c:2e8:ffff:ffff:ffff:ffff:ffff", "NL")])
    func realAllocations(address: String, country: String) throws {
        let database = try CountryDatabaseFixture.load()
        #expect(database.country(for: try Self.address(address)) == country)
        #expect(database.country(for: address) == country)
    }

    @Test("private, loopback, documentation and unique-local addresses have no country",
          arguments: ["10.1.2.3", "192.168.1.1", "172.16.0.9", "127.0.0.1", "100.64.0.1", "198.51.100.7", "203.0.113.9",
                      "::1", "fd00::1", "fe80::1", "2001:db8::5"])
    func unknownAddresses(address: String) throws {
        let database = try CountryDatabaseFixture.load()
        #expect(database.country(for: try Self.address(address)) == nil)
    }

    @Test("the real database says when it was exported and holds hundreds of thousands of ranges of each family")
    func realInfo() throws {
        let database = try CountryDatabaseFixture.load()
        #expect(database.info.generated != nil)
        #expect(database.info.ipv4Ranges > 100_000 && database.info.ipv6Ranges > 100_000)
        #expect(!database.isEmpty && database.country(for: "not an address") == nil && database.country(for: nil as String?) == nil)
    }

    static let small = """
        # Location Database Export
        # Generated: Thu, 25 Jun 2026 04:33:59 GMT
        0,255,AU
        256,511,AU
        1024,2047,NZ
        2048,2048,??
        2049,2050,NZ
        10.0.0.0,10.0.0.255,FR\r
        4294967040,4294967295,JP

        2001:db8::,2001:db8:0:ffff:ffff:ffff:ffff:ffff,DE
        2001:db8:1::,2001:db8:1:ffff:ffff:ffff:ffff:ffff,DE
        2001:db8:3::,2001:db8:3::7,GB
        ffff:ffff:ffff:ffff::,ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff,CH
        """

    @Test("every address of a range has its country, the ones just outside none; adjacent ranges of a country are one run",
          arguments: [("0.0.0.0", "AU"), ("0.0.1.255", "AU"), ("0.0.2.0", nil), ("0.0.3.255", nil), ("0.0.4.0", "NZ"),
                      ("0.0.8.0", nil), ("0.0.8.1", "NZ"), ("0.0.8.2", "NZ"), ("0.0.8.3", nil), ("9.255.255.255", nil),
                      ("10.0.0.0", "FR"), ("10.0.0.255", "FR"), ("10.0.1.0", nil), ("255.255.255.0", "JP"),
                      ("255.255.255.255", "JP"), ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", nil), ("2001:db8::", "DE"),
                      ("2001:db8:1:ffff::1", "DE"), ("2001:db8:2::", nil), ("2001:db8:3::7", "GB"), ("2001:db8:3::8", nil),
                      ("::", nil), ("ffff:ffff:ffff:ffff::", "CH"), ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "CH")] as [(String, String?)])
    func boundaries(address: String, country: String?) throws {
        let database = try CountryDatabase.parse(Data(Self.small.utf8), name: "small")
        #expect(database.country(for: try Self.address(address)) == country)
    }

    @Test("the header's export date and the ranges with a country are counted (?? lines are not)")
    func smallInfo() throws {
        let database = try CountryDatabase.parse(Data(Self.small.utf8), name: "small")
        #expect(database.info.generated == Date(timeIntervalSince1970: 1_782_362_039))
        #expect(database.info.ipv4Ranges == 6 && database.info.ipv6Ranges == 4)
    }

    @Test("the export date is read from the header as RFC 1123 writes it; a header that is no such date is no date",
          arguments: [("Thu, 29 Feb 2024 12:00:00 GMT", 1_709_208_000), ("Thu, 01 Jan 1970 00:00:00 GMT", 0),
                      ("Fri, 31 Dec 2032 23:59:59 GMT", 1_988_150_399), ("Sun, 01 Mar 2026 00:00:00 GMT", 1_772_323_200),
                      ("25 Jun 2026", nil), ("Thu, 25 Jun 2026 04:33:59 CET", nil), ("Thu, 25 Foo 2026 04:33:59 GMT", nil),
                      ("Thu, 25 Jun 2026 24:00:00 GMT", nil)] as [(String, Int?)])
    func exportDate(header: String, seconds: Int?) throws {
        let database = try CountryDatabase.parse(Data("# Generated: \(header)\n1,2,US\n".utf8), name: "dated")
        #expect(database.info.generated == seconds.map { Date(timeIntervalSince1970: TimeInterval($0)) })
    }

    @Test("a malformed line is refused with its line number and what is wrong",
          arguments: [("1,2", "line 1 of bad: expected FIRST,LAST,CC"),
                      ("1,2,US,extra", "line 1 of bad: expected FIRST,LAST,CC"),
                      ("# comment\nx,y,US", "line 2 of bad: 'x' is not an IP address"),
                      ("10,5,US", "line 1 of bad: the range ends before it starts"),
                      ("1,2,us", "line 1 of bad: the country must be a two-letter code in capitals or ??"),
                      ("1,2,USA", "line 1 of bad: the country must be a two-letter code or ??"),
                      ("1.2.3.4,::1,US", "line 1 of bad: the range mixes IPv4 and IPv6"),
                      ("4294967296,4294967297,US", "line 1 of bad: 4294967296 is not an IPv4 address"),
                      ("10,20,US\n15,30,FR", "line 2 of bad: ranges must come in ascending order without overlapping"),
                      ("10,20,US\n1,5,FR", "line 2 of bad: ranges must come in ascending order without overlapping")])
    func malformed(text: String, message: String) {
        #expect {
            try CountryDatabase.parse(Data(text.utf8), name: "bad")
        } throws: { error in
            let error = error as? CountryDatabaseError
            return error?.code == .malformedLine && error?.message == message
        }
    }

    @Test("a file with no range, a missing path and a folder without Tor's files are refused, each saying so")
    func unusable() throws {
        #expect(throws: CountryDatabaseError(.empty, "")) { try CountryDatabase.parse(Data("# nothing\n1,2,??\n".utf8), name: "empty") }
        #expect(throws: CountryDatabaseError(.unreadable, "")) { try CountryDatabase.load(path: "/nonexistent/geoip") }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("country-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(throws: CountryDatabaseError(.unreadable, "")) { try CountryDatabase.load(path: folder.path) }
        // The same folder with only geoip6 in it is a database of IPv6 ranges.
        try Data("2001:db8::,2001:db8::ff,SE\n".utf8).write(to: folder.appendingPathComponent("geoip6"))
        let database = try CountryDatabase.load(path: folder.path)
        #expect(try database.country(for: Self.address("2001:db8::7")) == "SE" && database.info.source == folder.path)
    }

    @Test("printed, even inside another value by reflection, it names its source and size, not its entries")
    func description() throws {
        struct Holder { var countries: CountryDatabase }
        let database = try CountryDatabaseFixture.load()
        let text = String(describing: Holder(countries: database))
        #expect(text.count < 300 && text.contains("IPv4") && String(reflecting: database).count < 300, "\(text.prefix(300))")
        #expect(String(describing: CountryDatabase.empty) == "CountryDatabase(empty)")
    }

    @Test("the empty database knows no address")
    func empty() throws {
        #expect(try CountryDatabase.empty.isEmpty && CountryDatabase.empty.country(for: Self.address("8.8.8.8")) == nil)
    }
}
