import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

@Suite("Graph paging by keyset")
struct GraphPagingTests {
    /// Follows next links from `first`; between pages, `between` runs (it may write).
    static func walk(_ h: Harness, token: String, _ path: String, _ query: [(name: String, value: String)],
                     between: (Int) async throws -> Void = { _ in }) async throws -> [JSONValue] {
        var rows: [JSONValue] = []
        var page = await h.graph("GET", path, token: token, query: query)
        var pages = 0
        while true {
            #expect(page.status == 200, "\(String(decoding: page.body, as: UTF8.self))")
            rows += page.json["value"]?.arrayValue ?? []
            guard let next = page.json["@odata.nextLink"]?.stringValue else { break }
            let items = try #require(URLComponents(string: next)?.queryItems)
            // The token is opaque, and the link keeps the request's other options.
            for (name, value) in query { #expect(items.contains { $0.name == name && $0.value == value }, "\(name) kept") }
            pages += 1
            try await between(pages)
            page = await h.graph("GET", path, token: token, query: items.map { ($0.name, $0.value ?? "") })
        }
        return rows
    }

    func create(_ h: Harness, token: String, _ name: String, title: String?) async throws -> String {
        var body: [String: JSONValue] = [
            "accountEnabled": true, "displayName": .string(name), "mailNickname": .string("u\(UUID().uuidString.prefix(8))"),
            "userPrincipalName": .string("u\(UUID().uuidString.prefix(12).lowercased())@contoso.test"),
            "passwordProfile": ["password": "Str0ng!Passw0rd"],
        ]
        if let title { body["jobTitle"] = .string(title) }
        let response = await h.graph("POST", "users", token: token, json: .object(body))
        #expect(response.status == 201)
        return try #require(response.json["id"]?.stringValue)
    }

    @Test("$orderby with $top pages by keyset: users created and deleted between pages move no other user in or out",
          arguments: ["displayName", "displayName desc", "jobTitle", "jobTitle desc,displayName"])
    func orderedPagesWhileWriting(_ orderBy: String) async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let titles: [String?] = [nil, "Pilot", "pilot", "Baker", nil, "Zoologist"]
            var ids: [String] = []
            for i in 0..<16 { ids.append(try await create(h, token: token, "Person \(i % 5)", title: titles[i % titles.count])) }
            var deleted: Set<String> = []
            var made = 0
            let rows = try await Self.walk(h, token: token, "users", [("$orderby", orderBy), ("$top", "3"), ("$select", "id,displayName")]) { page in
                // Two arrive (one sorts first, one last), and one listed and one not yet listed go.
                made += 1
                _ = try await create(h, token: token, "AAA \(made)", title: "AAA")
                _ = try await create(h, token: token, "zzz \(made)", title: "zzz")
                for id in [ids[page - 1], ids[ids.count - page]] where !deleted.contains(id) {
                    #expect(await h.graph("DELETE", "users/\(id)", token: token).status == 204)
                    deleted.insert(id)
                }
            }
            let seen = rows.compactMap { $0["id"]?.stringValue }
            #expect(Set(seen).count == seen.count, "no user repeated")
            #expect(ids.filter { !deleted.contains($0) }.allSatisfy(seen.contains), "no user that stayed skipped")
            #expect(rows.allSatisfy { $0.objectValue?.keys.sorted() == ["displayName", "id"] }, "$select kept: the order's property is not shown")
        }
    }

    @Test("a filtered list and the id order page by keyset; a token from another order or a made-up one is refused")
    func filteredAndRefused() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            for i in 0..<7 { _ = try await create(h, token: token, "Able \(i)", title: nil) }
            let filtered = try await Self.walk(h, token: token, "users", [("$filter", "startswith(displayName,'able')"), ("$top", "2")])
            #expect(filtered.compactMap { $0["displayName"]?.stringValue } == (0..<7).map { "Able \($0)" })
            let all = try await Self.walk(h, token: token, "users", [("$top", "3")])
            let ids = all.compactMap { $0["id"]?.stringValue }
            #expect(ids == ids.sorted() && ids.count == 8)

            let first = await h.graph("GET", "users", token: token, query: [("$orderby", "displayName"), ("$top", "2")])
            let next = try #require(first.json["@odata.nextLink"]?.stringValue)
            let skip = try #require(URLComponents(string: next)?.queryItems?.first { $0.name == "$skiptoken" }?.value)
            for query: [(name: String, value: String)] in [
                [("$orderby", "displayName,jobTitle"), ("$skiptoken", skip)],   // the position has one value, the order two
                [("$skiptoken", skip)],                                          // a keyset position without its order
                [("$skiptoken", Base64URL.encode(Data(#"{"k":[1],"a":"x"}"#.utf8))), ("$orderby", "displayName")],
                [("$skiptoken", Base64URL.encode(Data("{}".utf8)))],
            ] {
                let response = await h.graph("GET", "users", token: token, query: query)
                #expect(response.status == 400 && response.errorCode == "Request_BadRequest", "\(query)")
            }
        }
    }
}
