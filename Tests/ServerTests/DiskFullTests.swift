import Foundation
import Testing
@testable import Server
@testable import Store
import TesseraCore
import TesseraTesting

/// A full database (SQLite's SQLITE_FULL, here from a page limit on the writer: the same error a full disk gives)
/// answers Graph writes with 507 `insufficientStorage`, keeps nothing of the refused write, and takes writes again
/// once there is room, with no restart. (interop/test_durability.py fills a real disk.)
@Suite struct DiskFullTests {
    static func writer(_ h: Harness) throws -> SQLiteWriter {
        let store = try #require((h.app.store as? InstrumentedStore)?.base as? SQLDirectoryStore)
        return try #require(store.backend as? SQLiteBackend).writer
    }

    static func user(_ name: String) -> JSONValue {
        ["accountEnabled": true, "displayName": .string(name), "mailNickname": .string(name),
         "userPrincipalName": .string("\(name)@contoso.test"), "passwordProfile": ["password": "Xy!9aaaaaaaa"]]
    }

    @Test("a full database: 507 insufficientStorage in Graph's error shape, nothing half-written, writes resume when room returns")
    func fullThenRoom() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let writer = try Self.writer(h)
            let pages = try await writer.write { try $0.execute("PRAGMA page_count").first?.first?.int ?? 0 }
            _ = try await writer.write { try $0.execute("PRAGMA max_page_count = \(pages + 3)") }
            var acknowledged: [String] = []
            var refused: (name: String, response: APIResponse)?
            for index in 0..<400 where refused == nil {
                let name = "full\(index)"
                let response = await h.graph("POST", "users", token: token, json: Self.user(name))
                if response.status == 201 {
                    acknowledged.append(try #require(response.json["id"]?.stringValue))
                } else {
                    refused = (name, response)
                }
            }
            let (name, response) = try #require(refused, "the page limit never filled")
            #expect(response.status == 507 && response.errorCode == "insufficientStorage", "\(response.text)")
            #expect(response.json["error"]?["message"]?.stringValue?.contains("storage is full") == true, "\(response.text)")
            // The refused user left nothing: not by its name, and its userPrincipalName is free once there is room.
            let missing = await h.graph("GET", "users/\(name)@contoso.test", token: token)
            #expect(missing.status == 404, "\(missing.text)")

            _ = try await writer.write { try $0.execute("PRAGMA max_page_count = 1073741823") }
            let again = await h.graph("POST", "users", token: token, json: Self.user(name))
            #expect(again.status == 201, "\(again.text)")
            for id in acknowledged {
                let read = await h.graph("GET", "users/\(id)", token: token)
                #expect(read.status == 200, "\(read.text)")
            }
            let check = try await writer.write { try $0.execute("PRAGMA integrity_check").first?.first?.text }
            #expect(check == "ok")
        }
    }
}
