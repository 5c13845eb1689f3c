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

    @Test("a handed-back entry is claimed once: a draining node leaves it, the first other node takes it, a second finds it gone")
    func handbacksAreClaimedOnce() async throws {
        try await Harness.run { h in
            let other = try await TesseraApp.make(store: h.app.store, clock: h.clock)
            let third = try await TesseraApp.make(store: h.app.store, clock: h.clock)
            // A job id that names no job: taking it up claims it and starts a run that finds no job (and logs so).
            let entry = Handbacks.Entry(tenant: h.tenant.tenantId, job: Identifier.make(), version: 3)
            try await Handbacks(app: h.app).handBack(entry)
            #expect(try await Handbacks(app: h.app).pending() == [entry])
            h.app.lifecycle.beginDraining()
            #expect(await Handbacks(app: h.app).takeUp().isEmpty)
            #expect(try await Handbacks(app: h.app).pending() == [entry])
            #expect(await Handbacks(app: other).takeUp() == [entry])
            await other.jobs.idle()
            #expect(try await Handbacks(app: other).pending().isEmpty)
            // Handed back again with the same version (a lost update of the list), it is not taken a second time.
            try await Handbacks(app: h.app).handBack(entry)
            #expect(await Handbacks(app: third).takeUp().isEmpty)
            #expect(try await Handbacks(app: third).pending().isEmpty)
        }
    }
}
