import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

/// A node shutting down (issue 19): from SIGTERM on, `/readyz` tells the load balancer to stop sending it requests while
/// it still serves them, and work handed back to the cluster is taken up once, by a node that is not itself leaving.
@Suite struct NodeLifecycleTests {
    @Test("a draining node answers /readyz 503 with the reason and Retry-After, and still serves requests")
    func drainingIsNotReady() async throws {
        try await Harness.run { h in
            #expect(await h.send("GET", "/readyz").status == 200)
            h.app.lifecycle.beginDraining()
            #expect(h.app.lifecycle.isDraining && !h.app.lifecycle.isStopping)
            let ready = await h.send("GET", "/readyz")
            #expect(ready.status == 503 && ready.errorCode == "ServiceUnavailable", "\(ready.text)")
            #expect(ready.json["error"]?["message"]?.stringValue == "Not ready: the node is shutting down.", "\(ready.text)")
            #expect(ReadinessTests.header(ready, "Retry-After") == String(Readiness.retryAfter))
            #expect(await h.send("GET", "/healthz").status == 200)
            #expect(await h.token().status == 200)
            h.app.lifecycle.beginStopping()
            h.app.lifecycle.beginDraining()  // phases only move forward
            #expect(h.app.lifecycle.isStopping)
        }
    }

    @Test("a handed-back job is free at once: a draining node leaves it, the first other node takes it, a second finds it taken")
    func handbacksAreClaimedOnce() async throws {
        try await Harness.run { h in
            let other = try await TesseraApp.make(store: h.app.store, clock: h.clock)
            let third = try await TesseraApp.make(store: h.app.store, clock: h.clock)
            let job = try await RecoveryLeaseTests.activeJob(h.app, tenant: h.tenant.tenantId)
            let lease = try #require(try await RecoveryJobs(app: h.app).takeUp(tenant: h.tenant.tenantId, job: job))
            #expect(try await Handbacks(app: h.app).pending().isEmpty)
            h.app.lifecycle.beginDraining()
            try await RecoveryJobs(app: h.app).handBack(tenant: h.tenant.tenantId, id: job, done: 0, keeper: LeaseKeeper(lease))
            #expect(try await Handbacks(app: h.app).pending().map(\.work) == [job])
            #expect(await Handbacks(app: h.app).takeUp().isEmpty)
            #expect(try await Handbacks(app: h.app).pending().map(\.work) == [job])
            #expect(await Handbacks(app: other).takeUp().map(\.work) == [job])
            #expect(await Handbacks(app: third).takeUp().isEmpty)
            await other.jobs.idle()
            #expect(try await Handbacks(app: third).pending().isEmpty)
            #expect(await Handbacks(app: third).takeUp().isEmpty)
            let stored = try await RecoveryJobs(app: h.app).job(tenant: h.tenant.tenantId, id: job)
            #expect(stored.handedBackDateTime != nil && stored.resumedDateTime != nil)
        }
    }
}
