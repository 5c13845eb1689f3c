import Foundation
import Testing
@testable import Store
import TesseraCore
import TesseraTesting

/// On PostgreSQL a sign-in step's spend (`SingleUseSpends.spend`) that is its transaction's only write runs alone as its
/// own commit: the statement and the `SELECT 1` that proves its commit ended, with no `BEGIN` or `COMMIT`. After another
/// write it runs inside the block, which commits as usual; nothing may follow it.
@Suite("PostgreSQL: round trips of a sign-in step's spend")
struct PostgresSpendRoundTripTests {
    static let databases = PostgresRoundTripTests.databases

    @Test("a spend that is its transaction's only write is two statements, the spend and the proof of its commit, and is saved",
          arguments: databases)
    func spendAlone(_ url: String) async throws {
        try await PostgresRoundTripTests.withCountedStore(url) { store, _, tenant, sent in
            let t = tenant.tenantId, user = tenant.adminUserId
            let row = SingleUseSpendTests.token(t, user: user, handle: "code")
            let spent = try await store.write { tx in
                try await tx.spend(tenant: t, key: "code:alone", expiresAt: SingleUseSpendTests.later, now: SingleUseSpendTests.now,
                                   inserting: [row], ifUnchanged: nil)
            }
            let statements = sent.take()
            #expect(spent == .spent)
            #expect(statements.count == 2, "\(statements)")
            #expect(statements.first?.hasPrefix("WITH ok AS") == true && statements.first?.contains("made AS (INSERT") == true)
            #expect(statements.last == "SELECT 1")
            #expect(try await SingleUseSpendTests.tokens(store, t, user: user) == [row])
            // Refused alone as well: two statements, nothing added.
            _ = sent.take()
            let again = try await store.write { tx in
                try await tx.spend(tenant: t, key: "code:alone", expiresAt: SingleUseSpendTests.later, now: SingleUseSpendTests.now,
                                   inserting: [SingleUseSpendTests.token(t, user: user, handle: "other")], ifUnchanged: nil)
            }
            #expect(again == .alreadySpent)
            #expect(sent.take().count == 2)
            #expect(try await SingleUseSpendTests.tokens(store, t, user: user) == [row])
        }
    }

    @Test("after another write a spend runs in the block and commits with it; a statement after a spend is refused",
          arguments: databases)
    func spendInBlock(_ url: String) async throws {
        try await PostgresRoundTripTests.withCountedStore(url) { store, _, tenant, sent in
            let t = tenant.tenantId, user = tenant.adminUserId
            let first = SingleUseSpendTests.token(t, user: user, handle: nil), second = SingleUseSpendTests.token(t, user: user, handle: nil)
            let spent = try await store.write { tx in
                try await tx.insertCredential(first)
                return try await tx.spend(tenant: t, key: "code:block", expiresAt: SingleUseSpendTests.later, now: SingleUseSpendTests.now,
                                          inserting: [second], ifUnchanged: nil)
            }
            let statements = sent.take()
            #expect(spent == .spent)
            #expect(statements.first == "BEGIN" && statements.last == "COMMIT" && statements.count == 4, "\(statements)")
            #expect(try await SingleUseSpendTests.tokens(store, t, user: user).map(\.id).sorted() == [first.id, second.id].sorted())

            let third = SingleUseSpendTests.token(t, user: user, handle: nil)
            await #expect(throws: StoreError.self) {
                try await store.write { tx in
                    _ = try await tx.spend(tenant: t, key: "code:then", expiresAt: SingleUseSpendTests.later, now: SingleUseSpendTests.now,
                                           inserting: [], ifUnchanged: nil)
                    try await tx.insertCredential(third)
                }
            }
            // Run alone, the spend was its own commit before the refused statement: the key is spent, the record never sent.
            #expect(try await store.write { try await $0.consumeOnce(tenant: t, key: "code:then", expiresAt: SingleUseSpendTests.later,
                                                                     now: SingleUseSpendTests.now) } == false)
            #expect(try await SingleUseSpendTests.tokens(store, t, user: user).count == 2)
        }
    }
}
