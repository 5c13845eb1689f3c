import Foundation
import Testing
@testable import Server
import TesseraCore

@Suite("Graph queries through the whole app")
struct GraphQueryTests {
    func createUsers(_ h: Harness, token: String, names: [String]) async throws {
        for name in names {
            let nick = name.replacingOccurrences(of: " ", with: "").lowercased()
            let response = await h.graph("POST", "users", token: token, json: [
                "accountEnabled": true, "displayName": .string(name), "mailNickname": .string(nick),
                "userPrincipalName": .string("\(nick)@contoso.test"), "passwordProfile": ["password": "Str0ng!Passw0rd"],
            ])
            #expect(response.status == 201)
        }
    }

    @Test("a filtered list pages through every match exactly once, ordered by the narrowing index")
    func pagesFilteredResults() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            try await createUsers(h, token: token, names: ["Zed Able", "Amy Able", "Bob Able", "Cat Able", "Dan Baker"])
            var seen: [String] = []
            let query: [(name: String, value: String)] = [
                ("$filter", "startswith(displayName,'a') or startswith(displayName,'b') or startswith(displayName,'c') or startswith(displayName,'z')"),
                ("$top", "2"),
            ]
            var page = await h.graph("GET", "users", token: token, query: query)
            while true {
                #expect(page.status == 200)
                seen += page.json["value"]?.arrayValue?.compactMap { $0["displayName"]?.stringValue } ?? []
                guard let next = page.json["@odata.nextLink"]?.stringValue, let components = URLComponents(string: next) else { break }
                #expect(next.hasPrefix(Harness.base + "/v1.0/users?"))
                page = await h.graph("GET", "users", token: token,
                                     query: components.queryItems?.map { ($0.name, $0.value ?? "") } ?? [])
            }
            #expect(seen.sorted() == ["Amy Able", "Bob Able", "Cat Able", "Zed Able"])
            #expect(Set(seen).count == seen.count)

            let prefixed = await h.graph("GET", "users", token: token, query: [("$filter", "startswith(displayName,'')"), ("$top", "3")])
            let names = prefixed.json["value"]?.arrayValue?.compactMap { $0["displayName"]?.stringValue } ?? []
            #expect(names == ["Amy Able", "Bob Able", "Cat Able"], "ordered by displayName, the index the filter narrows by")
        }
    }

    @Test("the narrowing index is found in top-level conjuncts only", arguments: [
        ("startswith(displayName,'a')", "displayName"),
        ("accountEnabled eq true and userPrincipalName eq 'x@y'", "userPrincipalName"),
        ("mail in ('a@b','c@d')", "mail"),
        ("startswith(displayName,'a') or startswith(mail,'b')", nil),
        ("not(displayName eq 'a')", nil),
        ("proxyAddresses/any(p:p eq 'smtp:a@b')", nil),
        ("jobTitle eq null", nil),
    ] as [(String, String?)])
    func narrowing(_ filter: String, _ expected: String?) throws {
        #expect(ObjectQuery.indexedNarrowing(try FilterParser.parse(filter))?.segments.first == expected)
    }

    @Test("advanced queries need ConsistencyLevel: eventual and $count=true, as in Entra")
    func advancedQueries() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            try await createUsers(h, token: token, names: ["Eve Early", "Fay Final"])
            let plain = await h.graph("GET", "users", token: token, query: [("$filter", "displayName ne 'Eve Early'")])
            #expect(plain.errorCode == "Request_UnsupportedQuery")
            let advanced = await h.graph("GET", "users", token: token, query: [("$filter", "displayName ne 'Eve Early'"), ("$count", "true")],
                                         headers: ["consistencylevel": "eventual"])
            #expect(advanced.status == 200)
            #expect(advanced.json["@odata.count"]?.intValue == 2)  // Fay and the administrator
            let search = await h.graph("GET", "users", token: token, query: [("$search", "\"displayName:final\"")],
                                       headers: ["consistencylevel": "eventual"])
            #expect(search.json["value"]?.arrayValue?.compactMap { $0["displayName"]?.stringValue } == ["Fay Final"])
            let count = await h.graph("GET", "users/$count", token: token, headers: ["consistencylevel": "eventual"])
            #expect(String(decoding: count.body, as: UTF8.self) == "3")
        }
    }
}
