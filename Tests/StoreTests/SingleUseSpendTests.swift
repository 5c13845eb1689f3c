import Foundation
import Testing
@testable import Store
import TesseraCore
import TesseraTesting

/// A sign-in step's writes as one (`SingleUseSpends.spend`): a single-use key spent and, only when it was fresh, its
/// credential records added, on every database. On PostgreSQL that is one statement, run alone as its own commit when
/// it is the transaction's only write: the guarantees of `consumeOnce` followed by `insertCredential` must hold as they
/// did in a transaction block (exactly one of concurrent spenders wins, a loser adds nothing, a failing insert leaves
/// the key unspent).
@Suite("A single-use key spent with its records in one statement")
struct SingleUseSpendTests {
    static let now = "2026-11-19T12:00:00Z"
    static let later = "2026-11-19T12:10:00Z"

    /// A refresh token's row for `user`, kept by `handle` (the digest of the code its family began with).
    static func token(_ tenant: String, user: String, handle: String?) -> CredentialRow {
        let id = UUID().uuidString.lowercased()
        return CredentialRow(tenant: tenant, id: id, kind: .refreshToken, userID: user, family: id, handle: handle, state: "unused",
                             expiresAt: "2027-02-17T12:00:00Z", payload: "{\"id\":\"\(id)\"}")
    }

    static func tokens(_ store: SQLDirectoryStore, _ tenant: String, user: String) async throws -> [CredentialRow] {
        try await store.read { tx in try await tx.credentialRows(tenant: tenant, kind: .refreshToken, userID: user) }
    }

    @Test("a fresh key is spent with its records; the same key again is refused and adds none", arguments: TestDatabases.all)
    func spendsOnce(_ database: String) async throws {
        try await withTenant(database) { store, _, tenant in
            let t = tenant.tenantId, user = tenant.adminUserId
            let first = Self.token(t, user: user, handle: "code-1"), second = Self.token(t, user: user, handle: "code-2")
            let spent = try await store.write { tx in
                try await tx.spend(tenant: t, key: "code:1", expiresAt: Self.later, now: Self.now, inserting: [first], if: nil)
            }
            #expect(spent == .spent)
            let again = try await store.write { tx in
                try await tx.spend(tenant: t, key: "code:1", expiresAt: Self.later, now: Self.now, inserting: [second], if: nil)
            }
            #expect(again == .alreadySpent)
            #expect(try await Self.tokens(store, t, user: user) == [first])
            // Spent as `consumeOnce` spends it, and without records too.
            #expect(try await store.write { try await $0.consumeOnce(tenant: t, key: "code:1", expiresAt: Self.later, now: Self.now) } == false)
            #expect(try await store.write { tx in
                try await tx.spend(tenant: t, key: "code:2", expiresAt: Self.later, now: Self.now, inserting: [], if: nil)
            } == .spent)
            #expect(try await store.write { try await $0.consumeOnce(tenant: t, key: "code:2", expiresAt: Self.later, now: Self.now) } == false)
        }
    }

    @Test("one code redeemed twelve times at once through two stores, each spend with its own refresh token for that code: exactly one spends, and only its token is stored",
          arguments: TestDatabases.all)
    func concurrentRedemptions(_ database: String) async throws {
        guard database != ":memory:" else { return }  // an in-memory database is one store's alone
        let (url, folder) = TestDatabases.opened(database)
        defer { if let folder { try? FileManager.default.removeItem(at: folder) } }
        let first = try await openStore(url), second = try await openStore(url)
        do {
            try await first.migrate()
            let tenant = try await TenantProvisioner(directory: DirectoryService(store: first, clock: TestClock()))
                .create(name: "Test", domain: "t\(UUID().uuidString.prefix(8).lowercased()).test")
            let t = tenant.tenantId, user = tenant.adminUserId
            let stores = [first, second]
            let outcomes = await withTaskGroup(of: (CredentialRow, Result<SpendOutcome, any Error>).self) { group in
                for i in 0..<12 {
                    let store = stores[i % 2], row = Self.token(t, user: user, handle: "the-code")
                    group.addTask {
                        do {
                            return (row, .success(try await store.write { tx in
                                try await tx.spend(tenant: t, key: "code:the-code", expiresAt: Self.later, now: Self.now, inserting: [row],
                                                   if: nil)
                            }))
                        } catch {
                            return (row, .failure(error))
                        }
                    }
                }
                return await group.reduce(into: [(CredentialRow, Result<SpendOutcome, any Error>)]()) { $0.append($1) }
            }
            // A race is decided by the key, never by an error (a loser's token, with the same handle, is never inserted).
            for case (_, .failure(let error)) in outcomes { Issue.record("a spend failed: \(error)") }
            let winners = outcomes.filter { (try? $0.1.get()) == .spent }
            #expect(winners.count == 1)
            #expect(outcomes.filter { (try? $0.1.get()) == .alreadySpent }.count == 11)
            #expect(try await Self.tokens(first, t, user: user) == winners.map(\.0))
            try await first.shutdown()
            try await second.shutdown()
        } catch {
            try? await first.shutdown()
            try? await second.shutdown()
            throw error
        }
    }

    @Test("a spend whose object changed since it was read writes nothing, not even its key; while the object is as read it spends",
          arguments: TestDatabases.all)
    func objectChanged(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let t = tenant.tenantId, user = tenant.adminUserId
            let ada = try await directory.makeUser(tenant, "Ada")
            var changed = ada
            changed.body["displayName"] = "Ada L."
            changed.version = ada.version + 1
            let renamed = changed
            try await store.write { tx in try await tx.update(renamed, expectedVersion: ada.version) }
            let row = Self.token(t, user: user, handle: nil)
            let stale = try await store.write { tx in
                try await tx.spend(tenant: t, key: "passkey-challenge:a", expiresAt: Self.later, now: Self.now, inserting: [row], if: .unchanged(ada))
            }
            #expect(stale == .objectChanged)
            #expect(try await Self.tokens(store, t, user: user).isEmpty)
            let current = try await store.write { tx in
                try await tx.spend(tenant: t, key: "passkey-challenge:a", expiresAt: Self.later, now: Self.now, inserting: [row], if: .unchanged(renamed))
            }
            #expect(current == .spent)
            #expect(try await Self.tokens(store, t, user: user) == [row])
            // Gone: changed as well.
            try await store.write { tx in try await tx.purge(tenant: t, id: ada.id) }
            #expect(try await store.write { tx in
                try await tx.spend(tenant: t, key: "passkey-challenge:b", expiresAt: Self.later, now: Self.now, inserting: [], if: .unchanged(renamed))
            } == .objectChanged)
            #expect(try await store.write { try await $0.consumeOnce(tenant: t, key: "passkey-challenge:b", expiresAt: Self.later, now: Self.now) })
        }
    }

    @Test("a spend held on a live record (a code's sign-in session) writes nothing once the record is gone or expired, not even its key; spent before, it is a replay all the same",
          arguments: TestDatabases.all)
    func liveRecord(_ database: String) async throws {
        try await withTenant(database) { store, _, tenant in
            let t = tenant.tenantId, user = tenant.adminUserId
            func session(expires: String) -> CredentialRow {
                let id = UUID().uuidString.lowercased()
                return CredentialRow(tenant: t, id: id, kind: .signInSession, userID: user, family: nil, handle: nil, state: "active",
                                     expiresAt: expires, payload: "{\"id\":\"\(id)\"}")
            }
            func spend(_ key: String, _ row: CredentialRow, while record: CredentialRow) async throws -> SpendOutcome {
                try await store.write { tx in
                    try await tx.spend(tenant: t, key: key, expiresAt: Self.later, now: Self.now, inserting: [row],
                                       if: .live(tenant: record.tenant, kind: record.kind, id: record.id))
                }
            }
            let live = session(expires: "2026-11-19T23:00:00Z"), expired = session(expires: "2026-11-19T11:59:59Z")
            let ended = session(expires: "2026-11-19T23:00:00Z")
            try await store.write { tx in for row in [live, expired, ended] { try await tx.insertCredential(row) } }
            _ = try await store.write { tx in try await tx.deleteCredential(tenant: t, kind: .signInSession, id: ended.id) }
            let first = Self.token(t, user: user, handle: nil)
            #expect(try await spend("code:live", first, while: live) == .spent)
            #expect(try await spend("code:live", Self.token(t, user: user, handle: nil), while: live) == .alreadySpent)
            for record in [expired, ended] {
                #expect(try await spend("code:\(record.id)", Self.token(t, user: user, handle: nil), while: record) == .objectChanged)
                // The key is still unspent.
                #expect(try await store.write { try await $0.consumeOnce(tenant: t, key: "code:\(record.id)", expiresAt: Self.later, now: Self.now) })
            }
            // A key spent before its record went is a replay, not a changed object (the caller revokes what it gave).
            _ = try await store.write { tx in try await tx.deleteCredential(tenant: t, kind: .signInSession, id: live.id) }
            #expect(try await spend("code:live", Self.token(t, user: user, handle: nil), while: live) == .alreadySpent)
            #expect(try await Self.tokens(store, t, user: user) == [first])
        }
    }

    @Test("a record whose handle or id is taken fails the spend, and its key stays unspent", arguments: TestDatabases.all)
    func failingInsertLeavesTheKey(_ database: String) async throws {
        try await withTenant(database) { store, _, tenant in
            let t = tenant.tenantId, user = tenant.adminUserId
            let held = Self.token(t, user: user, handle: "taken")
            try await store.write { tx in try await tx.insertCredential(held) }
            for (row, property) in [(Self.token(t, user: user, handle: "taken"), "handle"), (held, "id")] {
                var copy = row
                if property == "id" { copy.handle = "another" }
                let record = copy
                await #expect(throws: DirectoryError.duplicate(property)) {
                    try await store.write { tx in
                        try await tx.spend(tenant: t, key: "code:\(property)", expiresAt: Self.later, now: Self.now, inserting: [record],
                                           if: nil)
                    }
                }
                #expect(try await store.write { try await $0.consumeOnce(tenant: t, key: "code:\(property)", expiresAt: Self.later, now: Self.now) })
            }
            #expect(try await Self.tokens(store, t, user: user) == [held])
        }
    }
}
