import Foundation
import Testing
@testable import Server
@testable import Sync
import TesseraCore
import TesseraTesting

/// Directory sync runs on a cluster when a node stops (issue 19): a node that drains stops its run after the next page
/// it commits, records it handed back and hands its lease back, and another node resumes it from there; a node killed
/// mid-run leaves the lease to run out, and the run is resumed from its last checkpoint. The real sync engine reads a
/// real LDIF file (the file connector the sync tests use), ten entries to a page. On SQLite and PostgreSQL.
@Suite("Directory sync runs handed back across nodes")
struct SyncRunHandbackTests {
    struct Killed: Error {}

    static let base = "OU=Staff,DC=corp,DC=test"

    static func guid(_ n: Int) -> String { Data([UInt8(n), 0x5e, 0x17, 0x19] + [UInt8](repeating: 0x42, count: 12)).base64EncodedString() }

    /// The directory as an LDIF file: the group `staff` first (its members are those of `users` given), then the users.
    static func ldif(users: [Int], domain: String) -> String {
        let group = (["dn: CN=staff,\(base)", "objectClass: group", "objectGUID:: \(guid(200))", "sAMAccountName: staff",
                      "groupType: -2147483646"] + users.map { "member: CN=u\($0),\(base)" }).joined(separator: "\n")
        return ([group] + users.map { n in
            "dn: CN=u\(n),\(base)\nobjectClass: user\nobjectGUID:: \(guid(n))\nsAMAccountName: u\(n)\nuserPrincipalName: u\(n)@\(domain)\ndisplayName: User \(n)"
        }).joined(separator: "\n\n") + "\n"
    }

    /// A file connector on `file`, reading `users`.
    static func source(_ app: TesseraApp, tenant: String, file: URL, users: [Int]) async throws {
        let domain = try #require(try await app.store.read { tx in try await tx.tenant(tenant) }).domain
        try ldif(users: users, domain: domain).write(to: file, atomically: true, encoding: .utf8)
        guard try await SyncSettings.load(tenant: tenant, store: app.store).connectors.isEmpty else { return }
        var connector = SyncConnector(name: "corp", ldapURL: "", bindDN: "", bindPasswordFile: "", baseDN: base)
        connector.ldifFile = file.path
        var settings = SyncSettings()
        settings.connectors = [connector]
        try await settings.save(tenant: tenant, store: app.store)
    }

    /// The live synced users by their anchors (a list: an anchor twice would be a duplicate), and the synced groups
    /// with their members.
    static func synced(_ app: TesseraApp, tenant: String) async throws -> (anchors: [String], groups: [String: Set<String>]) {
        try await app.store.read { tx in
            let synced = FilterExpression.compare(PropertyPath(["onPremisesSyncEnabled"]), .eq, .bool(true))
            let users = try await tx.query(ObjectQuery(tenant: tenant, kinds: [.user], filter: synced))
            var groups: [String: Set<String>] = [:]
            for group in try await tx.query(ObjectQuery(tenant: tenant, kinds: [.group], filter: synced)) {
                groups[group.id] = Set(try await tx.targets(tenant: tenant, source: group.id, relation: "members"))
            }
            return (users.compactMap { $0.body["onPremisesImmutableId"]?.stringValue }.sorted(), groups)
        }
    }

    static func runs(_ app: TesseraApp, tenant: String) async throws -> [SyncRun] {
        try await SyncSettings.load(tenant: tenant, store: app.store).runs.compactMap(SyncRun.init(json:))
    }

    @Test("a node that drains mid-run stops at a page, records the run handed back and hands its lease back; the other node resumes it and every object is synced exactly once",
          arguments: RecoveryLeaseTests.databases)
    func drainHandsTheRunBack(_ database: String) async throws {
        try await RecoveryLeaseTests.cluster(database, nodes: 2) { nodes, _, tenant in
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-\(UUID().uuidString).ldif")
            defer { try? FileManager.default.removeItem(at: file) }
            let users = Array(1...25)
            try await Self.source(nodes[0], tenant: tenant, file: file, users: users)

            // The first node's scheduled run; SIGTERM arrives while its first page (the group and nine users) commits.
            let failures = await SyncCycle.$pageSize.withValue(10) {
                await SyncCycle.$pageCommitted.withValue({ pages in if pages == 1 { nodes[0].lifecycle.beginDraining() } }) {
                    await SyncService(app: nodes[0], interval: .seconds(1800)).cycle()
                }
            }
            #expect(failures.isEmpty)
            let handed = try await Self.runs(nodes[0], tenant: tenant)
            #expect(handed.count == 1)
            let record = try #require(handed.first)
            #expect(record.status == "handed-back" && record.handedBackAt != nil, "the run went on to its end: \(record.json)")
            #expect(record.imported == 10 && record.added == 10, "\(record.json)")
            #expect(try await Self.synced(nodes[0], tenant: tenant).anchors.count == 9, "the draining node went past its page")
            let leases = try await SyncRunLeases.all(store: nodes[0].store)
            #expect(leases.count == 1 && leases.allSatisfy { $0.handedBack != nil && $0.work == "sync:corp" }, "the lease was not handed back: \(leases)")

            // The draining node takes nothing back; the other takes the run up at its next look and finishes it.
            #expect(await SyncRunHandbacks(app: nodes[0]).takeUp().isEmpty)
            let taken = await SyncCycle.$pageSize.withValue(10) { await SyncRunHandbacks(app: nodes[1]).takeUp() }
            #expect(taken.count == 1)
            await nodes[1].jobs.idle()

            let runs = try await Self.runs(nodes[1], tenant: tenant)
            #expect(runs.count == 1, "the resumed run is the same run: \(runs.map(\.json))")
            let done = try #require(runs.first)
            #expect(done.id == record.id && done.status == "success" && done.resumedAt != nil && done.handedBackAt != nil, "\(done.json)")
            #expect(done.imported == 26 && done.added == 26 && done.deleted == 0, "\(done.json)")
            let (anchors, groups) = try await Self.synced(nodes[1], tenant: tenant)
            #expect(anchors == users.map(Self.guid).sorted(), "each user exactly once")
            #expect(groups.count == 1 && groups.values.first?.count == 25, "the group made before the handback gets every member: \(groups.mapValues(\.count))")
            let staged = try await nodes[1].store.read { tx in try await tx.stagedObjects(tenant: tenant, connector: "corp", states: nil, afterId: nil, limit: nil) }
            #expect(staged.count == 26 && staged.allSatisfy { $0.state == "joined" })
            #expect(try await SyncRunLeases.all(store: nodes[1].store).isEmpty, "a finished run leaves no lease")
        }
    }

    @Test("a node killed mid-run leaves its lease to run out; the other node then resumes the full run at its last page: what the directory no longer has is deleted, nothing else",
          arguments: RecoveryLeaseTests.databases)
    func killedRunIsResumed(_ database: String) async throws {
        try await RecoveryLeaseTests.cluster(database, nodes: 2) { nodes, clock, tenant in
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-\(UUID().uuidString).ldif")
            defer { try? FileManager.default.removeItem(at: file) }
            try await Self.source(nodes[1], tenant: tenant, file: file, users: Array(1...25))
            let first = try await SyncCycle(directory: nodes[1].directory, clock: clock).run(tenant: try #require(try await nodes[1].store.read { tx in try await tx.tenant(tenant) }))
            #expect(first.first?.added == 26)

            // u3 (first page) and u20 (a later one) leave the directory; the first node is killed after committing its first page.
            let kept = Array(1...25).filter { $0 != 3 && $0 != 20 }
            try await Self.source(nodes[0], tenant: tenant, file: file, users: kept)
            let record = try #require(try await nodes[0].store.read { tx in try await tx.tenant(tenant) })
            await #expect(throws: Killed.self) {
                try await SyncCycle.$pageSize.withValue(10) {
                    try await SyncCycle.$pageCommitted.withValue({ _ in throw Killed() }) {
                        _ = try await SyncCycle(directory: nodes[0].directory, clock: clock).run(tenant: record)
                    }
                }
            }
            // Its lease holds for 30 s: no node takes the run up, nor runs the connector meanwhile.
            #expect(try await SyncRunHandbacks(app: nodes[1]).pending().isEmpty)
            await #expect(throws: SyncRunInProgress.self) { _ = try await SyncCycle(directory: nodes[1].directory, clock: clock).run(tenant: record) }
            clock.advance(SyncRunLeases.duration + 1)
            let taken = await SyncCycle.$pageSize.withValue(10) { await SyncRunHandbacks(app: nodes[1]).takeUp() }
            #expect(taken.count == 1 && taken.first?.handedBack == nil)
            await nodes[1].jobs.idle()

            let (anchors, groups) = try await Self.synced(nodes[1], tenant: tenant)
            #expect(anchors == kept.map(Self.guid).sorted(), "the resumed run deleted users its first page named, or kept the two gone")
            #expect(groups.values.first?.count == 23)
            let runs = try await Self.runs(nodes[1], tenant: tenant)
            #expect(runs.count == 2)
            let resumed = try #require(runs.last)
            #expect(resumed.status == "success" && resumed.resumedAt != nil && resumed.handedBackAt == nil, "\(resumed.json)")
            #expect(resumed.deleted == 2 && resumed.added == 0 && resumed.imported == 24, "\(resumed.json)")
            #expect(try await SyncRunLeases.all(store: nodes[1].store).isEmpty)
        }
    }
}

/// Cross-tenant synchronization runs on a cluster when a node stops (issue 19): the run stops after the batch the target
/// answered, the job says it was handed back, and another node resumes it with the same run id from the objects not yet
/// sent. Two nodes on one database (``RecoveryLeaseTests/cluster(_:nodes:_:)``: SQLite, and PostgreSQL with a store per
/// node), the first driven as a harness; the target is a tenant of the same deployment.
@Suite("Cross-tenant synchronization runs handed back across nodes")
struct CrossTenantSyncHandbackTests {
    /// Two nodes on `database`: the first as a harness (its tenant is the source), the second a plain app.
    static func nodes(_ database: String, _ body: (_ h: Harness, _ other: TesseraApp) async throws -> Void) async throws {
        try await RecoveryLeaseTests.provisionedCluster(database, nodes: 2) { nodes, clock, tenant in
            try await body(Harness(app: nodes[0], clock: clock, tenant: tenant), nodes[1])
        }
    }

    @Test("a node that drains mid-run stops after a batch and hands the run back; the other node resumes it: every user and the group arrive exactly once, logged once",
          arguments: RecoveryLeaseTests.databases)
    func drainHandsTheRunBack(_ database: String) async throws {
        try await Self.nodes(database) { h, other in
            let w = try await CrossTenantSyncTests.world(h)
            let (users, groups) = try await CrossTenantSyncTests.populate(h, users: 30, groups: 1)
            let group = try #require(groups.keys.first)
            try await w.assign(group)
            let source = try #require(try await h.app.store.read { tx in try await tx.tenant(w.source) })
            let request = CrossTenantSyncRunner.Request(tenant: source, servicePrincipalID: w.servicePrincipal, jobID: w.job)

            // Ten objects to a batch: the users in three, the group in a fourth. SIGTERM arrives as the first is answered.
            let report = try await CrossTenantSyncRunner.$batchObjects.withValue(10) {
                try await CrossTenantSyncRunner.$batchCommitted.withValue({ sent in if sent == 1 { h.app.lifecycle.beginDraining() } }) {
                    try await CrossTenantSyncRunner(app: h.app, baseURL: "https://localhost:8443").run(request)
                }
            }
            #expect(report.added == 10, "the draining node went past its batch: \(report.added)")
            #expect(try await w.synced().count == 10)
            let handed = try #require(try await SynchronizationSettings.load(tenant: w.source, store: h.app.store).jobs.first { $0.id == w.job })
            #expect(handed.handedBackAt != nil && handed.lastExecution == nil, "the job does not say it was handed back")
            let leases = try await SyncRunLeases.all(store: h.app.store)
            #expect(leases.count == 1 && leases.first?.handedBack != nil && leases.first?.work == CrossTenantSyncRunner.work(job: w.job))

            // The other node takes it up at its next look and finishes it.
            #expect(await SyncRunHandbacks(app: h.app).takeUp().isEmpty, "a draining node takes nothing up")
            let taken = await CrossTenantSyncRunner.$batchObjects.withValue(10) { await SyncRunHandbacks(app: other).takeUp() }
            #expect(taken.count == 1)
            await other.jobs.idle()

            let synced = try await w.synced()
            #expect(Set(synced.keys) == Set(users), "every user exactly once")
            let fromSource = try await w.users(in: w.target.tenantId).filter {
                $0.body["identities"]?.arrayValue?.first?["issuer"]?.stringValue?.contains(w.source) == true
            }
            #expect(fromSource.count == 30, "a user arrived twice")
            let targetGroups = try await h.app.store.read { tx in
                try await tx.query(ObjectQuery(tenant: w.target.tenantId, kinds: [.group], filter: .compare(PropertyPath(["displayName"]), .eq, .string("Team 0"))))
            }
            #expect(targetGroups.count == 1)
            let members = try await h.app.store.read { tx in try await tx.targets(tenant: w.target.tenantId, source: targetGroups[0].id, relation: "members") }
            #expect(Set(members) == Set(synced.values.map(\.id)))
            let created = await w.provisioning("provisioningAction eq 'create'")
            #expect(created.count == 31 && Set(created.compactMap { $0["sourceIdentity"]?["id"]?.stringValue }).count == 31, "\(created.count) creations logged")
            #expect(Set(created.compactMap { $0["cycleId"]?.stringValue }).count == 1, "the resumed run is the same run")
            let job = await h.graph("GET", w.jobPath, token: w.sourceToken).json
            #expect(job["status"]?["tesseraHandedBackDateTime"]?.stringValue != nil && job["status"]?["tesseraResumedDateTime"]?.stringValue != nil, "\(job)")
            #expect(job["status"]?["lastExecution"]?["state"] == "Succeeded" && job["status"]?["lastExecution"]?["countImported"] == 31)
            #expect(try await SyncRunLeases.all(store: h.app.store).isEmpty)
        }
    }

    @Test("a node killed mid-run leaves the job's lease to run out; the other node then resumes the run after the last batch answered: nothing sent twice, nothing lost",
          arguments: RecoveryLeaseTests.databases)
    func killedRunIsResumed(_ database: String) async throws {
        try await Self.nodes(database) { h, other in
            let w = try await CrossTenantSyncTests.world(h)
            let (users, groups) = try await CrossTenantSyncTests.populate(h, users: 30, groups: 1)
            try await w.assign(try #require(groups.keys.first))
            let source = try #require(try await h.app.store.read { tx in try await tx.tenant(w.source) })
            let request = CrossTenantSyncRunner.Request(tenant: source, servicePrincipalID: w.servicePrincipal, jobID: w.job)
            await #expect(throws: SyncRunHandbackTests.Killed.self) {
                try await CrossTenantSyncRunner.$batchObjects.withValue(10) {
                    try await CrossTenantSyncRunner.$batchCommitted.withValue({ sent in if sent == 2 { throw SyncRunHandbackTests.Killed() } }) {
                        try await CrossTenantSyncRunner(app: h.app, baseURL: "https://localhost:8443").run(request)
                    }
                }
            }
            #expect(try await w.synced().count == 20)
            // The lease holds for 30 s: the other node neither takes the run up nor starts one of its own.
            #expect(try await SyncRunHandbacks(app: other).pending().isEmpty)
            await #expect(throws: SyncRunInProgress.self) { try await CrossTenantSyncRunner(app: other, baseURL: "https://localhost:8443").run(request) }
            h.clock.advance(SyncRunLeases.duration + 1)
            let taken = await CrossTenantSyncRunner.$batchObjects.withValue(10) { await SyncRunHandbacks(app: other).takeUp() }
            #expect(taken.count == 1 && taken.first?.handedBack == nil)
            await other.jobs.idle()

            #expect(Set(try await w.synced().keys) == Set(users))
            let created = await w.provisioning("provisioningAction eq 'create'")
            #expect(created.count == 31 && Set(created.compactMap { $0["sourceIdentity"]?["id"]?.stringValue }).count == 31, "\(created.count) creations logged")
            let job = await h.graph("GET", w.jobPath, token: w.sourceToken).json
            #expect(job["status"]?["tesseraResumedDateTime"]?.stringValue != nil && job["status"]?["tesseraHandedBackDateTime"] == .null, "\(job)")
            #expect(job["status"]?["lastExecution"]?["state"] == "Succeeded")
            #expect(try await SyncRunLeases.all(store: h.app.store).isEmpty)
        }
    }
}
