import Foundation
import Testing
@testable import Store
import TesseraCore

/// A setting made once for a whole deployment (the signing key, the challenge key, a tenant's CA) when several nodes
/// make it at the same moment: ``DirectoryWriter/settingOrPut(tenant:key:value:)``.
@Suite("Settings made once across nodes")
struct SettingOrPutTests {
    @Test("of eight nodes making one setting at once, in transactions that overlap, the first committed is every node's",
          arguments: TestDatabases.all.filter { $0 != ":memory:" })
    func firstCommittedWins(_ database: String) async throws {
        let (url, folder) = TestDatabases.opened(database)
        defer { if let folder { try? FileManager.default.removeItem(at: folder) } }
        // Two stores on one database stand for two nodes; each makes four attempts.
        let nodes = [try await openStore(url), try await openStore(url)]
        try await nodes[0].migrate()
        let tenant = "settings-\(UUID().uuidString)"
        let answers = try await withThrowingTaskGroup(of: JSONValue.self) { group in
            for attempt in 0..<8 {
                group.addTask {
                    try await nodes[attempt % 2].write { tx in
                        let value = try await tx.settingOrPut(tenant: tenant, key: "once", value: ["made by": .int(Int64(attempt))])
                        // Held open, so the other transactions' inserts meet this one before it commits.
                        try await Task.sleep(for: .milliseconds(30))
                        return value
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let stored = try #require(try await nodes[1].read { tx in try await tx.setting(tenant: tenant, key: "once") })
        #expect(answers.count == 8)
        #expect(answers.allSatisfy { $0 == stored }, "\(answers)")
        // What is there already is never replaced.
        let again = try await nodes[0].write { tx in try await tx.settingOrPut(tenant: tenant, key: "once", value: ["made by": 99]) }
        #expect(again == stored)
        for node in nodes { try await node.shutdown() }
    }
}
