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
                                   inserting: [row], if: nil)
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
                                   inserting: [SingleUseSpendTests.token(t, user: user, handle: "other")], if: nil)
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
                                          inserting: [second], if: nil)
            }
            let statements = sent.take()
            #expect(spent == .spent)
            #expect(statements.first == "BEGIN" && statements.last == "COMMIT" && statements.count == 4, "\(statements)")
            #expect(try await SingleUseSpendTests.tokens(store, t, user: user).map(\.id).sorted() == [first.id, second.id].sorted())

            let third = SingleUseSpendTests.token(t, user: user, handle: nil)
            await #expect(throws: StoreError.self) {
                try await store.write { tx in
                    _ = try await tx.spend(tenant: t, key: "code:then", expiresAt: SingleUseSpendTests.later, now: SingleUseSpendTests.now,
                                           inserting: [], if: nil)
                    try await tx.insertCredential(third)
                }
            }
            // Run alone, the spend was its own commit before the refused statement: the key is spent, the record never sent.
            #expect(try await store.write { try await $0.consumeOnce(tenant: t, key: "code:then", expiresAt: SingleUseSpendTests.later,
                                                                     now: SingleUseSpendTests.now) } == false)
            #expect(try await SingleUseSpendTests.tokens(store, t, user: user).count == 2)
        }
    }

    @Test("a spend run alone is written with its proof: while the spend waits for another transaction's lock on its key, its SELECT 1 is already handed to the connection, and nothing more is sent once it ends",
          arguments: databases)
    func proofWrittenWithSpend(_ url: String) async throws {
        try await PostgresRoundTripTests.withCountedStore(url) { store, _, tenant, sent in
            let t = tenant.tenantId, user = tenant.adminUserId
            let row = SingleUseSpendTests.token(t, user: user, handle: "waiting")
            // Another transaction inserts the key and keeps it uncommitted, so the spend's insert of it waits on its lock.
            let side = try PostgresBackend(url: url, maxConnections: 2)
            let inserted = AsyncStream<Void>.makeStream(), release = AsyncStream<Void>.makeStream()
            // However the test ends, the other transaction ends (its ROLLBACK lets the spend go on).
            defer { release.continuation.finish() }
            let holder = Task {
                try await side.withReadSession { session in
                    _ = try await session.execute("BEGIN", [])
                    _ = try await session.execute("INSERT INTO single_use (tenant, key, expires_at) VALUES (?, ?, ?)",
                                                  [.text(t), .text("code:waiting"), .text(SingleUseSpendTests.later)])
                    inserted.continuation.yield()
                    for await _ in release.stream { break }
                    _ = try await session.execute("ROLLBACK", [])
                }
            }
            for await _ in inserted.stream { break }
            let spend = Task {
                try await store.write { tx in
                    try await tx.spend(tenant: t, key: "code:waiting", expiresAt: SingleUseSpendTests.later, now: SingleUseSpendTests.now,
                                       inserting: [row], if: nil)
                }
            }
            // Until PostgreSQL shows the spend waiting for the lock (bounded: a loaded machine may take a while to send it).
            var waiting = false
            for _ in 0..<3000 where !waiting {
                let rows = try await side.withReadSession { session in
                    try await session.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'WITH ok AS%'", [])
                }
                waiting = rows.first?.first?.int == 1
                if !waiting { try await Task.sleep(for: .milliseconds(10)) }
            }
            let early = sent.take()
            release.continuation.finish()
            try await holder.value
            let spent = try await spend.value
            try await side.close()
            #expect(waiting, "the spend never waited for the other transaction's lock")
            // The proof was handed over with the spend, not after its answer.
            #expect(early.count == 2 && early.first?.hasPrefix("WITH ok AS") == true && early.last == "SELECT 1", "\(early)")
            #expect(sent.take().isEmpty)
            // The other transaction rolled back: the spend took the key and saved its record.
            #expect(spent == .spent)
            #expect(try await SingleUseSpendTests.tokens(store, t, user: user) == [row])
        }
    }

    @Test("a spend run alone whose commit waits for a lost synchronous standby when the primary dies is reported in doubt, not spent: its answer came before its commit ended",
          .enabled(if: PostgresPair.available))
    func spendAloneInDoubt() async throws {
        let pair = try await PostgresPair.start(sync: true)
        var failure: (any Error)?
        do {
            let store = try await SQLDirectoryStore.open(pair.url)
            do {
                try await store.migrate()
                let directory = DirectoryService(store: store, clock: TestClock())
                let tenant = try await TenantProvisioner(directory: directory).create(name: "Doubt", domain: "doubt.test")
                let t = tenant.tenantId, user = tenant.adminUserId
                func spend(_ key: String) async throws -> SpendOutcome {
                    try await store.write { tx in
                        try await tx.spend(tenant: t, key: key, expiresAt: SingleUseSpendTests.later, now: SingleUseSpendTests.now,
                                           inserting: [SingleUseSpendTests.token(t, user: user, handle: key)], if: nil)
                    }
                }
                #expect(try await spend("code:before") == .spent)
                // With the synchronous standby gone, every commit on the primary waits for it.
                try await pair.stopStandby()
                let waitingSpend = Task { try await spend("code:waiting") }
                var waiting = false
                for _ in 0..<3000 where !waiting {
                    waiting = try await pair.psql(port: pair.primaryPort,
                                                  "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'") != "0"
                    if !waiting { try await Task.sleep(for: .milliseconds(10)) }
                }
                #expect(waiting, "no commit waited for the standby")
                // Killed, the server sends the spend's answer it had buffered with its goodbye; the proof never comes.
                try await pair.stopPrimary()
                do {
                    let outcome = try await waitingSpend.value
                    Issue.record("the spend was reported \(outcome), though its commit never reached the standby")
                } catch let error as DirectoryError {
                    #expect(error.code == .serviceUnavailable)
                    #expect(error.message.contains("may or may not have been saved"), "\(error)")
                }
            } catch {
                failure = error
            }
            try? await store.shutdown()
        } catch {
            failure = error
        }
        await pair.down()
        if let failure { throw failure }
    }
}
