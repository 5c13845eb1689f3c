import Foundation
import Synchronization
import Testing
import Store
@testable import Sync
import TesseraCore
import TesseraTesting

/// An import's pages are exported through a ``PagePipeline``: each page is prepared while the page before it is
/// written. Against the in-test DirSync server of ``DirSyncFailureTests``, in pages of two entries.
@Suite("Sync: each page is prepared while the page before it is written; a failed preparation writes nothing of its page", .timeLimit(.minutes(1)))
struct PagePipelineTests {
    struct PreparationFailed: Error {}

    /// A tenant whose one connector reads from `server`, and its sync cycle.
    struct Setup {
        let start: SyncTestTenant
        let cycle: SyncCycle
        let passwordFile: URL

        init(_ server: DirSyncFailureTests.DirSyncServer) async throws {
            start = try await SyncTestTenant.make()
            passwordFile = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-pipeline-\(UUID().uuidString)")
            try Data("secret".utf8).write(to: passwordFile)
            var settings = SyncSettings()
            settings.connectors = [SyncConnector(name: "corp", ldapURL: server.url, bindDN: "CN=sync,DC=corp,DC=example,DC=test",
                                                 bindPasswordFile: passwordFile.path, baseDN: "OU=Staff,DC=corp,DC=example,DC=test", startTLS: false)]
            try await settings.save(tenant: start.tenant.id, store: start.store)
            cycle = SyncCycle(directory: start.directory, clock: start.clock)
        }

        func cookie() async throws -> [UInt8]? {
            try await SyncSettings.load(tenant: start.tenant.id, store: start.store).connectors.first?.cookie
        }

        /// The synced users' names, sorted (a name twice would be a user created twice).
        func syncedUsers() async throws -> [String] {
            let tenant = start.tenant.id
            return try await start.store.read { tx in
                try await tx.query(ObjectQuery(tenant: tenant, kinds: [.user], filter: .compare(PropertyPath(["onPremisesSyncEnabled"]), .eq, .bool(true))))
            }.compactMap { $0.body["userPrincipalName"]?.stringValue }.sorted()
        }

        func stagedCount() async throws -> Int {
            let tenant = start.tenant.id
            return try await start.store.read { tx in try await tx.stagedObjects(tenant: tenant, connector: "corp", states: nil, afterId: nil, limit: nil) }.count
        }

        func done() async throws {
            try? FileManager.default.removeItem(at: passwordFile)
            try await start.store.shutdown()
        }
    }

    static func names(_ range: Range<Int>) -> [String] { range.map { "u\($0)@contoso.test" }.sorted() }

    @Test("page 2 is prepared while page 1 is written (page 1's write waits for page 2's preparation to begin); pages are written in order, each once")
    func overlap() async throws {
        let server = try await DirSyncFailureTests.DirSyncServer([.init(users: 0..<6, cookie: Array("cookie-1".utf8))])
        let setup = try await Setup(server)
        let (began, begin) = AsyncStream<Int>.makeStream()
        let written = Mutex<[Int]>([])
        let run = try await SyncCycle.$pageSize.withValue(2) {
            try await PagePipeline.$preparing.withValue({ page in begin.yield(page) }) {
                try await PagePipeline.$writing.withValue({ page in
                    written.withLock { $0.append(page) }
                    // Without the overlap page 2 is prepared only after this write: the run would never end.
                    if page == 1 { for await prepared in began where prepared == 2 { break } }
                }) {
                    try #require(try await setup.cycle.run(tenant: setup.start.tenant).first)
                }
            }
        }
        #expect(run.status == "success" && run.added == 6 && run.imported == 6, "\(run.json)")
        #expect(written.withLock { $0 } == [1, 2, 3])
        #expect(try await setup.syncedUsers() == Self.names(0..<6))
        #expect(try await setup.cookie() == Array("cookie-1".utf8))
        try await setup.done()
    }

    @Test("a page whose preparation fails is not written, the page before it is, and the connector keeps the cookie before them; the rerun brings the rest, no one twice")
    func failedPreparation() async throws {
        let server = try await DirSyncFailureTests.DirSyncServer([
            .init(users: 0..<2, cookie: Array("cookie-1".utf8)),  // the first (full) run
            .init(users: 2..<8, cookie: Array("cookie-2".utf8)),  // a delta of three pages; the second fails to prepare
            .init(users: 2..<8, cookie: Array("cookie-2".utf8)),  // the same delta again
        ])
        let setup = try await Setup(server)
        try await SyncCycle.$pageSize.withValue(2) {
            let first = try #require(try await setup.cycle.run(tenant: setup.start.tenant).first)
            #expect(first.status == "success" && first.added == 2, "\(first.json)")

            await #expect(throws: PreparationFailed.self) {
                try await PagePipeline.$preparing.withValue({ page in if page == 2 { throw PreparationFailed() } }) {
                    _ = try await setup.cycle.run(tenant: setup.start.tenant)
                }
            }
            // Page 1 (u2, u3), written while page 2 was being prepared, is there; pages 2 and 3 are not, staged or synced.
            #expect(try await setup.syncedUsers() == Self.names(0..<4))
            #expect(try await setup.stagedCount() == 4)
            #expect(try await setup.cookie() == Array("cookie-1".utf8))

            // The failed run's lease runs out; the next run asks for the same changes again.
            setup.start.clock.advance(SyncRunLeases.duration + 1)
            let rerun = try #require(try await setup.cycle.run(tenant: setup.start.tenant).first)
            #expect(rerun.status == "success" && rerun.added == 4 && rerun.imported == 6, "\(rerun.json)")
            #expect(try await setup.syncedUsers() == Self.names(0..<8))
            #expect(try await setup.cookie() == Array("cookie-2".utf8))
        }
        #expect(server.cookiesSent.withLock { $0 } == [[], Array("cookie-1".utf8), Array("cookie-1".utf8)])
        try await setup.done()
    }
}
