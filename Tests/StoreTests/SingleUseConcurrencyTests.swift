import Foundation
import Testing
@testable import Store
import TesseraCore
import TesseraTesting

/// Single-use keys (authorization codes, passkey challenges, replayed JWT ids, cluster slots) taken by many requests
/// at the same moment, on every database: of twelve concurrent `consumeOnce` calls for one key exactly one is told
/// the key is fresh, whether the key is new or its earlier use has expired (PostgreSQL takes an expired holder over
/// with a conditional upsert; SQLite sweeps the expired rows first), and a key in use is refused until it expires.
/// `DirectoryStoreTests.singleUse` checks the sequential case.
@Suite("Single-use keys under concurrency")
struct SingleUseConcurrencyTests {
    static let now = "2026-11-19T12:00:00Z"
    static let later = "2026-11-19T12:05:00Z"
    static let afterwards = "2026-11-19T12:06:00Z"

    /// How many of `takers` concurrent `consumeOnce` calls for `key`, each in a write transaction of its own (through
    /// `stores` in turn), were told the key was fresh. A taker's transaction failing is a failure of the test: a race
    /// must be decided by the key, not by an error.
    static func race(_ stores: [SQLDirectoryStore], tenant: String, key: String, takers: Int = 12, expiresAt: String = later,
                     now: String = now) async -> Int {
        let outcomes = await withTaskGroup(of: Result<Bool, any Error>.self) { group in
            for i in 0..<takers {
                let store = stores[i % stores.count]
                group.addTask {
                    do {
                        return .success(try await store.write { tx in
                            try await tx.consumeOnce(tenant: tenant, key: key, expiresAt: expiresAt, now: now)
                        })
                    } catch {
                        return .failure(error)
                    }
                }
            }
            return await group.reduce(into: [Result<Bool, any Error>]()) { $0.append($1) }
        }
        for case .failure(let error) in outcomes { Issue.record("a taker's transaction failed: \(error)") }
        return outcomes.filter { (try? $0.get()) == true }.count
    }

    @Test("twelve takers of one new key at once: exactly one is told it is fresh, and the key stays taken", arguments: TestDatabases.all)
    func twelveAtOnce(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let t = tenant.tenantId
            #expect(await Self.race([store], tenant: t, key: "code:racer") == 1)
            // Still in use: refused to every later taker until it expires.
            #expect(await Self.race([store], tenant: t, key: "code:racer") == 0)
            // Each tenant's keys are its own: the same key elsewhere is fresh once.
            let other = try await TenantProvisioner(directory: directory)
                .create(name: "Fabrikam", domain: "f\(UUID().uuidString.prefix(8).lowercased()).test")
            #expect(await Self.race([store], tenant: other.tenantId, key: "code:racer") == 1)
        }
    }

    @Test("a key whose use has expired is refused before its expiry and taken by exactly one of twelve after it",
          arguments: TestDatabases.all)
    func expiredTakenOver(_ database: String) async throws {
        try await withTenant(database) { store, _, tenant in
            let t = tenant.tenantId
            #expect(await Self.race([store], tenant: t, key: "slot:1", takers: 1, expiresAt: Self.later) == 1)
            // One second before it expires the key is refused, to every one of twelve.
            #expect(await Self.race([store], tenant: t, key: "slot:1", expiresAt: Self.afterwards, now: "2026-11-19T12:04:59Z") == 0)
            // Once expired, the twelve race again: one takes it over, the others find it taken by that one.
            #expect(await Self.race([store], tenant: t, key: "slot:1", expiresAt: "2026-11-19T12:10:00Z", now: Self.afterwards) == 1)
            #expect(await Self.race([store], tenant: t, key: "slot:1", expiresAt: "2026-11-19T12:10:00Z", now: "2026-11-19T12:09:59Z") == 0)
        }
    }

    @Test("twelve takers of one key through two stores on the same database: exactly one wins", arguments: TestDatabases.all)
    func twoStores(_ database: String) async throws {
        guard database != ":memory:" else { return }  // an in-memory database is one store's alone
        let (url, folder) = TestDatabases.opened(database)
        defer { if let folder { try? FileManager.default.removeItem(at: folder) } }
        let first = try await openStore(url), second = try await openStore(url)
        do {
            try await first.migrate()
            let tenant = try await TenantProvisioner(directory: DirectoryService(store: first, clock: TestClock()))
                .create(name: "Test", domain: "t\(UUID().uuidString.prefix(8).lowercased()).test")
            let t = tenant.tenantId
            #expect(await Self.race([first, second], tenant: t, key: "passkey-challenge:shared") == 1)
            #expect(await Self.race([first, second], tenant: t, key: "passkey-challenge:shared") == 0)
            // Expired, then taken over by exactly one of the two stores' takers.
            #expect(await Self.race([first, second], tenant: t, key: "passkey-challenge:shared", expiresAt: "2026-11-19T12:10:00Z",
                                    now: Self.afterwards) == 1)
            try await first.shutdown()
            try await second.shutdown()
        } catch {
            try? await first.shutdown()
            try? await second.shutdown()
            throw error
        }
    }
}
