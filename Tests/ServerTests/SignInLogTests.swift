import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

@Suite("Sign-in logs")
struct SignInLogTests {
    /// The query of a next link, to send again.
    static func query(of link: String) throws -> [(name: String, value: String)] {
        try #require(URLComponents(string: link)?.queryItems).map { ($0.name, $0.value ?? "") }
    }

    @Test("records are listed newest first, page, filter, and go after 30 days")
    func listingAndRetention() async throws {
        try await Harness.run { h in
            let directory = h.app.directory, tenant = h.tenant.tenantId
            // The admin's token is a service principal sign-in of its own: the oldest record here.
            let token = try await h.accessToken()
            for n in 0..<5 {
                try await directory.recordSignIn(tenant: tenant, entry: ["userId": .string("user-\(n % 2)"), "n": .int(Int64(n))])
                h.clock.advance(1)
            }
            let page = await h.graph("GET", "auditLogs/signIns", token: token, query: [("$top", "2")])
            #expect(page.json["value"]?.arrayValue?.compactMap { $0["n"]?.intValue } == [4, 3])
            let next = try #require(page.json["@odata.nextLink"]?.stringValue)
            // The link is a keyset position: records arriving meanwhile (newer, so before it) move nothing on the next page.
            try await directory.recordSignIn(tenant: tenant, entry: ["userId": "user-7", "n": 7])
            let second = await h.graph("GET", "auditLogs/signIns", token: token, query: try Self.query(of: next))
            #expect(second.json["value"]?.arrayValue?.compactMap { $0["n"]?.intValue } == [2, 1])
            // An offset from an earlier link still works.
            let byOffset = await h.graph("GET", "auditLogs/signIns", token: token, query: [("$top", "2"), ("$skiptoken", "3")])
            #expect(byOffset.json["value"]?.arrayValue?.compactMap { $0["n"]?.intValue } == [2, 1])
            let filtered = await h.graph("GET", "auditLogs/signIns", token: token, query: [("$filter", "userId eq 'user-1'")])
            #expect(filtered.json["value"]?.arrayValue?.compactMap { $0["n"]?.intValue } == [3, 1])
            // The next link keeps the filter.
            let firstFiltered = await h.graph("GET", "auditLogs/signIns", token: token, query: [("$filter", "userId eq 'user-0'"), ("$top", "1")])
            let filteredNext = try #require(firstFiltered.json["@odata.nextLink"]?.stringValue)
            let secondFiltered = await h.graph("GET", "auditLogs/signIns", token: token, query: try Self.query(of: filteredNext))
            #expect(secondFiltered.json["value"]?.arrayValue?.compactMap { $0["n"]?.intValue } == [2])
            #expect(await h.graph("GET", "auditLogs/signIns", token: token, query: [("$skiptoken", "not-a-token")]).errorCode == "Request_BadRequest")
            h.clock.advance(31 * 86_400)
            try await directory.recordSignIn(tenant: tenant, entry: ["userId": "user-9", "n": 9])
            #expect(try await directory.purgeExpiredSignIns(tenant: tenant) == 7)
            let fresh = try await h.accessToken()
            #expect(await h.graph("GET", "auditLogs/signIns", token: fresh).json["value"]?.arrayValue?.compactMap { $0["n"]?.intValue } == [9])
        }
    }
}
