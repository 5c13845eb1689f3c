import Foundation
import Testing
@testable import Server
@testable import Store
import TesseraCore
import TesseraTesting

/// Recovery jobs on a cluster (issue 19): the node running a job holds its lease; another node takes the job up only
/// once the lease is handed back or has run out, exactly one node takes it, and nothing handed back is lost when
/// nodes hand back at the same moment. On SQLite and on PostgreSQL (read committed, a store of its own per node).
@Suite("Recovery job leases across nodes")
struct RecoveryLeaseTests {
    static var databases: [String] {
        var databases = ["sqlite"]
        if let url = ProcessInfo.processInfo.environment["TESSERA_TEST_POSTGRES_URL"], !url.isEmpty { databases.append(url) }
        return databases
    }

    /// `count` nodes on one database with one clock and a tenant: on SQLite one store (its one writer), on PostgreSQL
    /// a new database with a store (a connection pool) per node.
    static func cluster(_ database: String, nodes count: Int,
                        _ body: (_ nodes: [TesseraApp], _ clock: TestClock, _ tenant: String) async throws -> Void) async throws {
        try await provisionedCluster(database, nodes: count) { nodes, clock, tenant in try await body(nodes, clock, tenant.tenantId) }
    }

    /// `count` nodes as ``cluster(_:nodes:_:)`` makes them, with the tenant as provisioned (its automation app's
    /// credentials, for a harness on the first node).
    static func provisionedCluster(_ database: String, nodes count: Int,
                        _ body: (_ nodes: [TesseraApp], _ clock: TestClock, _ tenant: ProvisionedTenant) async throws -> Void) async throws {
        let clock = TestClock()
        var stores: [SQLDirectoryStore] = []
        var folder: URL?
        var admin: SQLDirectoryStore?
        let name = "tessera_lease_\(UUID().uuidString.prefix(8).lowercased())"
        var failure: (any Error)?
        var nodes: [TesseraApp] = []
        do {
            if database == "sqlite" {
                let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-lease-\(UUID().uuidString)")
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                folder = dir
                stores = [try await SQLDirectoryStore.open(dir.appendingPathComponent("tessera.sqlite").path)]
            } else {
                var components = try #require(URLComponents(string: database))
                components.path = "/" + name
                let server = try await SQLDirectoryStore.open(database)
                admin = server
                _ = try await server.backend.withReadSession { try await $0.execute("CREATE DATABASE \(name)", []) }
                let url = try #require(components.string)
                for _ in 0..<count { stores.append(try await SQLDirectoryStore.open(url)) }
            }
            try await stores[0].migrate()
            for index in 0..<count { nodes.append(try await TesseraApp.make(store: stores[index % stores.count], clock: clock)) }
            let tenant = try await TenantProvisioner(directory: nodes[0].directory).create(name: "Contoso", domain: "contoso.test")
            try await body(nodes, clock, tenant)
        } catch {
            failure = error
        }
        for node in nodes { await node.jobs.idle() }
        for store in stores { try? await store.shutdown() }
        if let admin {
            _ = try? await admin.backend.withReadSession { try await $0.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)", []) }
            try? await admin.shutdown()
        }
        if let folder { try? FileManager.default.removeItem(at: folder) }
        if let failure { throw failure }
    }

    /// A recovery job left active (as a node running it leaves it), naming a snapshot that does not exist: a node that
    /// runs it finds none and marks it failed. A tenant has one job in progress at a time.
    static func activeJob(_ app: TesseraApp, tenant: String) async throws -> String {
        let job = RecoveryJobRecord(tenant: tenant, id: Identifier.makeTimeOrdered(at: app.clock.now), type: .recovery, status: .running,
                                    snapshotId: "none", targetStateDateTime: "", filteringCriteria: .null,
                                    jobStartDateTime: Timestamp.format(app.clock.now))
        try await app.store.write { tx in try await tx.insertRecoveryJob(job) }
        return job.id
    }

    /// Renews `lease` at `now` in a transaction of its own; nil when it is another holder's.
    static func renew(_ lease: RecoveryLease, store: any DirectoryStore, now: Date) async throws -> RecoveryLease? {
        try await store.write { tx in try await lease.renew(tx, now: now) }
    }

    static func status(_ app: TesseraApp, tenant: String, job: String) async throws -> String? {
        try await RecoveryJobs(app: app).job(tenant: tenant, id: job).status.rawValue
    }

    @Test("a job whose node renews its lease is taken by no node starting or sweeping; once it runs out, exactly one of two nodes takes it, and the first node's writes are refused",
          arguments: databases)
    func leaseRunsOut(_ database: String) async throws {
        try await Self.cluster(database, nodes: 3) { nodes, clock, tenant in
            let (first, second, third) = (nodes[0], nodes[1], nodes[2])
            let job = try await Self.activeJob(first, tenant: tenant)
            // The first node runs the job (taken as at start, not launched: the test plays its renewals).
            let held = try #require(try await RecoveryJobs(app: first).takeUp(tenant: tenant, job: job))
            let keeper = LeaseKeeper(held)
            // A node restarting meanwhile, and the others' once-a-second sweeps, leave it alone.
            await RecoveryJobs(app: second).resumeInterrupted()
            #expect(await Handbacks(app: second).takeUp().isEmpty)
            #expect(await Handbacks(app: third).takeUp().isEmpty)
            #expect(try await RecoveryLease.all(store: first.store).map(\.holder) == [held.holder])
            #expect(try await RecoveryJobs(app: first).job(tenant: tenant, id: job).resumedDateTime != nil)
            // Renewed 20 s in, the lease lasts to 50 s: still nobody's at 49 s.
            clock.advance(20)
            #expect(try await Self.renew(held, store: first.store, now: clock.now) != nil)
            clock.advance(29)
            await RecoveryJobs(app: second).resumeInterrupted()
            #expect(await Handbacks(app: third).takeUp().isEmpty)
            #expect(try await Handbacks(app: second).pending().isEmpty)
            #expect(!keeper.mustStop(now: clock.now.addingTimeInterval(-28)))
            // The first node stops renewing (killed): at 50 s the lease is over, and of two nodes sweeping at once one takes the job.
            clock.advance(1)
            #expect(keeper.mustStop(now: clock.now), "a holder stops by itself once its lease runs out")
            #expect(try await Handbacks(app: second).pending().map(\.work) == [job])
            async let a = Handbacks(app: second).takeUp()
            async let b = Handbacks(app: third).takeUp()
            let taken = await a + b
            #expect(taken.map(\.work) == [job], "\(taken)")
            await second.jobs.idle()
            await third.jobs.idle()
            #expect(try await Self.status(first, tenant: tenant, job: job) == "failed", "the taker ran it (its snapshot does not exist)")
            #expect(try await RecoveryLease.all(store: first.store).isEmpty, "a job that ended leaves no lease")
            // The first node, back from a pause, can neither renew nor write its outcome.
            #expect(try await Self.renew(held, store: first.store, now: clock.now) == nil)
            await #expect(throws: RecoveryLeaseLost.self) {
                try await RecoveryJobs(app: first).update(tenant: tenant, id: job, keeper: keeper, finish: true) { $0.status = .successful }
            }
            #expect(try await Self.status(first, tenant: tenant, job: job) == "failed")
        }
    }

    @Test("twelve jobs handed back at the same moment by two nodes are all free at once and each is taken up exactly once",
          arguments: databases)
    func concurrentHandbacks(_ database: String) async throws {
        try await Self.cluster(database, nodes: 3) { nodes, clock, tenant in
            var leases: [(node: Int, keeper: LeaseKeeper<RecoveryWork>)] = []
            for index in 0..<12 {
                // One job in progress a tenant: twelve jobs, of twelve tenants.
                let jobTenant = "\(tenant)-\(index)"
                let job = try await Self.activeJob(nodes[0], tenant: jobTenant)
                let lease = try #require(try await RecoveryJobs(app: nodes[index % 2]).takeUp(tenant: jobTenant, job: job))
                leases.append((index % 2, LeaseKeeper(lease)))
            }
            #expect(try await Handbacks(app: nodes[2]).pending().isEmpty)
            // Both nodes are stopping and hand back all their jobs at once.
            let handed = leases
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (node, keeper) in handed {
                    group.addTask {
                        try await RecoveryJobs(app: nodes[node]).handBack(tenant: keeper.initial.tenant, id: keeper.initial.work, done: 0, keeper: keeper)
                    }
                }
                try await group.waitForAll()
            }
            nodes[0].lifecycle.beginDraining()
            nodes[1].lifecycle.beginDraining()
            let pending = try await Handbacks(app: nodes[2]).pending()
            #expect(Set(pending.map(\.work)) == Set(leases.map(\.keeper.initial.work)), "\(pending.count) of 12")
            #expect(pending.allSatisfy { $0.handedBack == clock.now })
            #expect(await Handbacks(app: nodes[0]).takeUp().isEmpty, "a draining node takes nothing up")
            let taken = await Handbacks(app: nodes[2]).takeUp()
            #expect(taken.count == 12)
            await nodes[2].jobs.idle()
            for (_, keeper) in leases {
                #expect(try await Self.status(nodes[2], tenant: keeper.initial.tenant, job: keeper.initial.work) == "failed")
            }
            #expect(try await RecoveryLease.all(store: nodes[2].store).isEmpty)
        }
    }
}
