import Foundation
import Testing
@testable import Server
@testable import Store
import TesseraCore
import TesseraTesting

/// Nodes of a cluster started at the same moment on an empty PostgreSQL database: what the first start makes (the
/// signing key, the challenge key, the first tenant) is made once, and every node uses the same.
@Suite("A cluster's first start")
struct ClusterFirstStartTests {
    @Test("four nodes starting at once on an empty database get one signing key, one challenge key and one first tenant")
    func oneOfEach() async throws {
        guard let database = ProcessInfo.processInfo.environment["TESSERA_TEST_POSTGRES_URL"], !database.isEmpty else {
            // SQLite has one writer per file: the race is PostgreSQL's. The test command always provides PostgreSQL.
            return
        }
        let name = "tessera_first_\(UUID().uuidString.prefix(8).lowercased())"
        var components = try #require(URLComponents(string: database))
        components.path = "/" + name
        let admin = try await SQLDirectoryStore.open(database)
        _ = try await admin.backend.withReadSession { try await $0.execute("CREATE DATABASE \(name)", []) }
        let url = try #require(components.string)
        var stores: [SQLDirectoryStore] = []
        var failure: (any Error)?
        do {
            for _ in 0..<4 { stores.append(try await SQLDirectoryStore.open(url)) }
            let nodes = stores
            try await withThrowingTaskGroup(of: Void.self) { group in
                for store in nodes { group.addTask { try await store.migrate() } }
                try await group.waitForAll()
            }
            let started = try await withThrowingTaskGroup(of: (kid: String, mac: [UInt8], tenant: ProvisionedTenant?).self) { group in
                for store in nodes {
                    group.addTask {
                        let app = try await TesseraApp.make(store: store)
                        return (app.signingKey.kid, app.passkeyChallenges.mac("probe", [1, 2, 3]), try await app.makeFirstTenant())
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(Set(started.map(\.kid)).count == 1)
            #expect(Set(started.map(\.mac)).count == 1)
            #expect(started.compactMap(\.tenant).count == 1, "every node but one finds the winner's tenant")
            let tenants = try await nodes[0].read { tx in try await tx.tenants() }
            #expect(tenants.count == 1 && tenants.first?.id == started.compactMap(\.tenant).first?.tenantId)
        } catch {
            failure = error
        }
        for store in stores { try? await store.shutdown() }
        _ = try? await admin.backend.withReadSession { try await $0.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)", []) }
        try await admin.shutdown()
        if let failure { throw failure }
    }
}
