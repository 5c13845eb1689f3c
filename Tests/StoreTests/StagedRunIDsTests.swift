import Testing
@testable import Store
import TesseraCore
import TesseraTesting

/// The end of a full sync run reads each staged object's id and run id only (`stagedRunIDs`), the run id taken from the
/// stored JSON by the database: the same ids, in the same pages, and the same run ids as reading the objects whole.
@Suite("Staging area: ids and run ids without the rest")
struct StagedRunIDsTests {
    @Test("a connector's staged objects page by id with each one's run id, none where no run wrote one", arguments: TestDatabases.all)
    func runIDs(_ database: String) async throws {
        try await withTenant(database) { store, _, tenant in
            let t = tenant.tenantId
            @Sendable func staged(_ n: Int, connector: String = "corp") -> StagedObject {
                // Every third without a run id; one whose attribute holds text that looks like a run id member.
                var details: [String: JSONValue] = ["attributes": ["objectclass": ["user"], "description": [.string("\"runId\":\"fake-\(n)\"")]]]
                if n % 3 != 0 { details["runId"] = .string("run-\(n % 2)") }
                return StagedObject(tenant: t, id: "sync:\(connector):\(n < 10 ? "00" : n < 100 ? "0" : "")\(n)", connector: connector,
                                    dn: "CN=User \(n),DC=corp,DC=example,DC=test", state: "joined", details: details)
            }
            try await store.write { tx in try await tx.putStaged((0..<230).map { staged($0) } + (0..<5).map { staged($0, connector: "other") }) }

            let (pages, whole) = try await store.read { tx in
                var pages: [[(id: String, runId: String?)]] = [], after: String?
                while true {
                    let page = try await tx.stagedRunIDs(tenant: t, connector: "corp", afterId: after, limit: 100)
                    pages.append(page)
                    guard page.count == 100, let last = page.last?.id else { break }
                    after = last
                }
                return (pages, try await tx.stagedObjects(tenant: t, connector: "corp", states: nil, afterId: nil, limit: nil))
            }
            #expect(pages.map(\.count) == [100, 100, 30])
            let read = pages.flatMap { $0 }
            #expect(read.map(\.id) == whole.map(\.id))
            #expect(read.map(\.runId) == whole.map { $0.details["runId"]?.stringValue })
            #expect(read.first { $0.id == "sync:corp:003" }?.runId == nil)
            #expect(read.first { $0.id == "sync:corp:004" }?.runId == "run-0")
            #expect(read.first { $0.id == "sync:corp:005" }?.runId == "run-1")
        }
    }
}
