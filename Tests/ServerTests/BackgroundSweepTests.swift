import Backup
import Foundation
import Testing
@testable import Server
import Sync
import TesseraCore
import TesseraTesting

@Suite("Background sweeps: one tenant's failure is reported and the other tenants are still served")
struct BackgroundSweepTests {
    @Test("a tenant whose connector cannot run is reported, and the tenants after it are synced")
    func syncGoesOnPastAFailingTenant() async throws {
        try await Harness.run { h in
            _ = try await TenantProvisioner(directory: h.app.directory).create(name: "Fabrikam", domain: "fabrikam.test")
            let tenants = try await h.app.store.read { tx in try await tx.tenants() }
            let (broken, healthy) = (try #require(tenants.first), try #require(tenants.last))
            #expect(broken.id != healthy.id)
            // The first tenant's connector names a bind password file that is gone: its run throws.
            var settings = SyncSettings()
            settings.connectors = [SyncConnector(name: "corp", ldapURL: "ldap://127.0.0.1:1", bindDN: "CN=sync,DC=corp,DC=test",
                                                 bindPasswordFile: "/nonexistent/tessera-\(UUID().uuidString)", baseDN: "DC=corp,DC=test")]
            try await settings.save(tenant: broken.id, store: h.app.store)
            // The last one reads a good LDIF file.
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-\(UUID().uuidString).ldif")
            defer { try? FileManager.default.removeItem(at: file) }
            try "dn: CN=ada,OU=Staff,DC=corp,DC=test\nobjectClass: user\nobjectGUID:: AAECAwQFBgcICQoLDA0ODw==\nsAMAccountName: ada\nuserPrincipalName: ada@\(healthy.domain)\n"
                .write(to: file, atomically: true, encoding: .utf8)
            var good = SyncConnector(name: "file", ldapURL: "", bindDN: "", bindPasswordFile: "", baseDN: "OU=Staff,DC=corp,DC=test")
            good.ldifFile = file.path
            var healthySettings = SyncSettings()
            healthySettings.connectors = [good]
            try await healthySettings.save(tenant: healthy.id, store: h.app.store)

            let failures = await SyncService(app: h.app, interval: .seconds(1800)).cycle()
            #expect(failures.map(\.tenant) == [broken.id] && failures.first?.task == "directory sync", "\(failures)")
            let runs = try await SyncSettings.load(tenant: healthy.id, store: h.app.store).runs
            #expect(runs.count == 1 && runs.first?["added"] == 1, "\(runs)")
        }
    }

    @Test("a retention sweep over healthy tenants reports nothing and takes each tenant's snapshot")
    func retentionReportsNothingWhenAllIsWell() async throws {
        try await Harness.run { h in
            _ = try await TenantProvisioner(directory: h.app.directory).create(name: "Fabrikam", domain: "fabrikam.test")
            #expect(await RetentionService(app: h.app).sweep().isEmpty)
            for tenant in try await h.app.store.read({ tx in try await tx.tenants() }) {
                #expect(try await h.app.backup.snapshots(tenant: tenant.id).count == 1)
            }
        }
    }
}
