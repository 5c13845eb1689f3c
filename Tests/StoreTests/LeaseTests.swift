import Foundation
import Testing
import Store
@testable import TesseraCore
import TesseraTesting

/// The one lease type a cluster's once-at-a-time work holds (a sync run, a cross-tenant synchronization run, a recovery
/// job): taken by one holder, refused to a second while live, renewed, run out and handed back, all at a test clock's
/// instants. On SQLite in memory, an SQLite file and PostgreSQL.
@Suite("Leases")
struct LeaseTests {
    enum Work: LeasePurpose {
        static let kind = CredentialKind(rawValue: "testLease")
        static let family = "testLeases"
        static let tenantKey = "workTenant"
        static let workKey = "task"
    }

    /// Takes the lease of `work` in `tenant` at `now`, in a transaction of its own.
    static func take(_ store: any DirectoryStore, _ tenant: String, _ work: String, now: Date) async throws -> Lease<Work>? {
        try await store.write { tx in try await Lease<Work>.take(tx, tenant: tenant, work: work, now: now) }
    }

    @Test("a live lease is refused to a second holder; renewed it lasts its duration from the renewal; once it runs out the next taker gets it and the first holder's renewals and ends are refused",
          arguments: TestDatabases.all)
    func expiryAndRenewal(_ database: String) async throws {
        try await withTenant(database) { store, _, tenant in
            let clock = TestClock()
            let t = tenant.tenantId
            let first = try #require(try await Self.take(store, t, "job-1", now: clock.now))
            #expect(first.expires == clock.now.addingTimeInterval(Leases.duration))
            #expect(try await Self.take(store, t, "job-1", now: clock.now) == nil, "a second holder got a live lease")
            #expect(try await Self.take(store, t, "job-2", now: clock.now) != nil, "another piece of work has a lease of its own")

            // Renewed 20 s in: it lasts to 50 s, so a taker at 49 s is refused.
            clock.advance(20)
            let now20 = clock.now
            let renewal: Lease<Work>? = try await store.write { tx in try await first.renew(tx, now: now20) }
            let renewed = try #require(renewal)
            #expect(renewed.expires == clock.now.addingTimeInterval(Leases.duration) && renewed.holder == first.holder)
            clock.advance(29)
            #expect(try await Self.take(store, t, "job-1", now: clock.now) == nil, "the lease ran out at its first expiry despite the renewal")
            let keeper = LeaseKeeper(first)
            keeper.renewed(true, at: clock.now.addingTimeInterval(-29))
            #expect(!keeper.mustStop(now: clock.now))

            // Not renewed again: at 50 s it is over, the holder must stop, and the next taker gets it with a new holder.
            clock.advance(1)
            #expect(keeper.mustStop(now: clock.now))
            let listed = try await Lease<Work>.all(store: store).filter { $0.tenant == t && $0.work == "job-1" }
            #expect(listed.count == 1 && listed.allSatisfy { $0.isOver(at: clock.now) })
            let second = try #require(try await Self.take(store, t, "job-1", now: clock.now), "a lease that ran out was not taken")
            #expect(second.holder != first.holder)
            let now50 = clock.now
            let stale: (renewed: Bool, firstHolds: Bool, secondHolds: Bool, handedBack: Bool, ended: Bool) = try await store.write { tx in
                (try await first.renew(tx, now: now50) != nil, try await first.holds(tx), try await second.holds(tx),
                 try await first.handBack(tx, now: now50), try await first.end(tx))
            }
            #expect(!stale.renewed, "the first holder renewed a lease it lost")
            #expect(!stale.firstHolds && stale.secondHolds)
            #expect(!stale.handedBack && !stale.ended, "the first holder ended a lease it lost")
            #expect(try await Self.take(store, t, "job-1", now: clock.now) == nil)

            // Handed back, it is over at once; ended, it is gone.
            let handedBack: Bool = try await store.write { tx in try await second.handBack(tx, now: now50) }
            #expect(handedBack)
            // Its holder's renewal after the hand-back does not bring it back.
            #expect(try await store.write { tx in try await second.renew(tx, now: now50) } == nil, "a handed-back lease was renewed")
            let third = try #require(try await Self.take(store, t, "job-1", now: clock.now), "a lease handed back was not taken")
            let ended: Bool = try await store.write { tx in try await third.end(tx) }
            #expect(ended)
            #expect(try await Lease<Work>.all(store: store).filter { $0.tenant == t && $0.work == "job-1" }.isEmpty)
        }
    }

    @Test("a lease's row names its tenant and work by its purpose's keys, so rows written under either earlier lease type read back")
    func payloadKeys() throws {
        let start = TestClock().now
        let lease = Lease<Work>(tenant: "t1", work: "job-1", holder: .init(rawValue: "h1"), expires: start)
        let row = try lease.row(tenant: Leases.tenant)
        let payload = try #require(try JSONSerialization.jsonObject(with: Data(row.payload.utf8)) as? [String: Any])
        #expect(Set(payload.keys) == ["id", "workTenant", "task", "holder", "expires"])
        #expect(row.kind == Work.kind && row.family == Work.family && row.state == "h1")
        #expect(try Lease<Work>(row) == lease)
    }
}
