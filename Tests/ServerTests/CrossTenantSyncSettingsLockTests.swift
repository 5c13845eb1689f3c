import Foundation
import Testing
@testable import Server
@testable import Sync
import TesseraCore
import TesseraTesting

/// Read-modify-writes of a source tenant's cross-tenant synchronization settings (the `synchronization` setting) that
/// two nodes make at once — a run writing back its outcome into the job, a Graph call on
/// `/servicePrincipals/{id}/synchronization` changing the job — each reading the setting with its row locked
/// (``SynchronizationSettings/update(tenant:store:_:)``), so each keeps the other's change. The race is made certain as
/// in ``SyncSettingsLockTests``: a third transaction rewrites the setting and holds it until both have read and wait to
/// write. On SQLite and PostgreSQL.
@Suite("Cross-tenant sync settings read locked")
struct CrossTenantSyncSettingsLockTests {
    @Test("a run writing back its outcome while a Graph pause of the job lands on another node: both are kept",
          arguments: RecoveryLeaseTests.databases)
    func runWriteBesidePause(_ database: String) async throws {
        try await RecoveryLeaseTests.provisionedCluster(database, nodes: 2) { nodes, clock, tenant in
            let id = tenant.tenantId
            let sp = try await SyncRunSettingsTests.graph(nodes[1], tenant, "GET", "servicePrincipals(appId='\(tenant.clientId)')")
            let spID = try #require(sp.json["id"]?.stringValue, "\(sp.text)")
            var job = CrossTenantSyncJob(id: "Azure2Azure.lock.1", templateId: "Azure2Azure", servicePrincipalID: spID)
            job.scheduleState = "Active"
            job.statusCode = "Active"
            var settings = SynchronizationSettings()
            var configuration = ServicePrincipalSynchronization()
            configuration.secrets = ["CompanyId": id]
            configuration.jobs = [job]
            settings.servicePrincipals[spID] = configuration
            try await settings.save(tenant: id, store: nodes[0].store)
            let record = try #require(try await nodes[0].store.read { tx in try await tx.tenant(id) })
            let started = job

            let paused = try await SettingLockTests.whileRewriteHeld(nodes[1].store, tenant: id, key: SynchronizationSettings.key) {
                async let run: Void = CrossTenantSyncRunner(app: nodes[0], baseURL: Harness.base).record(
                    CrossTenantSyncReport(), objects: .init(), request: .init(tenant: record, servicePrincipalID: spID, jobID: started.id),
                    job: started, runID: "run-1", began: clock.now)
                async let pause = SyncRunSettingsTests.graph(nodes[1], tenant, "POST", "servicePrincipals/\(spID)/synchronization/jobs/\(started.id)/pause")
                let (_, response) = try await (run, pause)
                return response
            }
            #expect(paused.status == 204, "\(paused.text)")
            let stored = try #require(try await SynchronizationSettings.load(tenant: id, store: nodes[0].store).servicePrincipals[spID]?.jobs.first)
            #expect(stored.scheduleState == "Paused", "the run's write-back undid the pause")
            #expect(stored.lastExecution?.state == "Succeeded" && stored.lastRunAt != nil, "the pause put back the job without the run's outcome")
        }
    }
}
