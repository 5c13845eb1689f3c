import Foundation
import Testing
@testable import Server
@testable import Store
import TesseraCore
import TesseraTesting

/// A full disk takes the node out of rotation: once SQLite refuses a write with SQLITE_FULL, `/readyz` answers 503
/// with the reason, until a write commits again.
@Suite struct DiskFullReadinessTests {
    @Test("a write refused for a full disk makes /readyz answer 503 with the reason; the next write that commits makes it ready again")
    func fullDiskIsUnready() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let writer = try DiskFullTests.writer(h)
            #expect(await h.send("GET", "/readyz").status == 200)
            let pages = try await writer.write { try $0.execute("PRAGMA page_count").first?.first?.int ?? 0 }
            _ = try await writer.write { try $0.execute("PRAGMA max_page_count = \(pages + 3)") }
            var refused: String?
            for index in 0..<400 where refused == nil {
                let response = await h.graph("POST", "users", token: token, json: DiskFullTests.user("ready\(index)"))
                if response.status != 201 {
                    #expect(response.status == 507, "\(response.text)")
                    refused = "ready\(index)"
                }
            }
            let name = try #require(refused, "the page limit never filled")
            let unready = await h.send("GET", "/readyz")
            #expect(unready.status == 503, "\(unready.text)")
            #expect(unready.json["error"]?["message"]?.stringValue?.contains("disk is full") == true, "\(unready.text)")

            _ = try await writer.write { try $0.execute("PRAGMA max_page_count = 1073741823") }
            let again = await h.graph("POST", "users", token: token, json: DiskFullTests.user(name))
            #expect(again.status == 201, "\(again.text)")
            let ready = await h.send("GET", "/readyz")
            #expect(ready.status == 200, "\(ready.text)")
        }
    }
}
