import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

/// One configuration baseline a governing tenant applies to the tenants it governs
/// (`/beta/admin/configurationManagement/governedConfigurationMonitors`, Tessera's): Contoso governs Fabrikam and
/// Woodgrove under a template giving its "tenant admins" group Security Administrator, and Northwind under one giving
/// User Administrator only; Litware is not governed at all.
@Suite("Configuration management over governed tenants: one baseline, managed monitors, drifts side by side")
struct ConfigurationManagementGovernedTests {
    static let root = "admin/configurationManagement"
    static let governed = "\(root)/governedConfigurationMonitors"

    struct World {
        let h: Harness
        /// Contoso's Global Administrator, in the tenant admins group.
        let admin: Caller
        let fabrikam: TenantGovernanceRelationshipTests.Other
        let woodgrove: TenantGovernanceRelationshipTests.Other
        let northwind: TenantGovernanceRelationshipTests.Other
        let litware: TenantGovernanceRelationshipTests.Other
        /// Fabrikam's relationship.
        let relationship: String
        var contoso: String { h.tenant.tenantId }
        var fab: String { fabrikam.tenant.tenantId }
        var wood: String { woodgrove.tenant.tenantId }

        func call(_ method: String, _ path: String, _ json: JSONValue? = nil, as caller: Caller? = nil, version: String = "beta") async throws -> APIResponse {
            try await TenantGovernancePolicyTemplateTests.call(h, method, path, json, as: caller ?? admin, version: version)
        }

        func apply(_ tenants: [String], baseline: JSONValue = ConfigurationManagementTests.monitor["baseline"] ?? nil,
                   as caller: Caller? = nil) async throws -> APIResponse {
            try await call("POST", ConfigurationManagementGovernedTests.governed, [
                "displayName": "Contoso baseline", "description": "Admin MFA and passkeys everywhere", "baseline": baseline,
                "governedTenantIds": .array(tenants.map { .string($0) })], as: caller)
        }

        /// The governed tenant's Conditional Access policy of Microsoft's example, made with its automation app.
        func policy(in other: TenantGovernanceRelationshipTests.Other) async throws -> String {
            let token = try await h.accessToken(clientId: other.tenant.clientId, secret: other.tenant.clientSecret, tenant: other.tenant.tenantId)
            let created = await h.graph("POST", ConfigurationManagementTests.policies, token: token, json: ConfigurationManagementTests.policy)
            return try #require(created.json["id"]?.stringValue, "\(created.text)")
        }

        func setPolicy(_ id: String, in other: TenantGovernanceRelationshipTests.Other, state: String) async throws {
            let token = try await h.accessToken(clientId: other.tenant.clientId, secret: other.tenant.clientSecret, tenant: other.tenant.tenantId)
            #expect(await h.graph("PATCH", "\(ConfigurationManagementTests.policies)/\(id)", token: token, json: ["state": .string(state)]).status == 204)
        }

        func monitors(in other: TenantGovernanceRelationshipTests.Other) async throws -> [JSONValue] {
            try await call("GET", "\(ConfigurationManagementGovernedTests.root)/configurationMonitors", as: other.globalAdmin).json["value"]?.arrayValue ?? []
        }

        func changes(_ tenant: String) async throws -> [ChangeRecord] {
            try await h.app.store.read { tx in try await tx.changes(tenant: tenant, kinds: nil, after: 0, limit: 1000) }
        }
    }

    static func template(_ h: Harness, group: String, role: String, name: String, as admin: Caller) async throws -> String {
        let created = try await TenantGovernancePolicyTemplateTests.call(h, "POST", "\(TenantGovernanceRelationshipTests.root)/governancePolicyTemplates", [
            "displayName": .string(name), "description": "Configuration baselines", "multiTenantApplicationsToProvision": [],
            "delegatedAdministrationRoleAssignments": [["roleTemplates": [["id": .string(role)]], "group": ["id": .string(group)]]]],
            as: admin, version: "beta")
        return try #require(created.json["id"]?.stringValue, "\(created.text)")
    }

    /// Contoso governs `other` under `template`, accepted by its Global Administrator; the relationship's id.
    static func govern(_ h: Harness, _ other: TenantGovernanceRelationshipTests.Other, template: String, as admin: Caller) async throws -> String {
        let sent = try await TenantGovernanceRelationshipTests.request(h, governed: other.tenant.tenantId, template: template, as: admin)
        let id = try #require(sent.json["id"]?.stringValue, "\(sent.text)")
        #expect(try await TenantGovernanceRelationshipTests.call(h, "PATCH", "governanceRequests/\(id)", ["status": "accepted"],
                                                                 as: other.globalAdmin).status == 204)
        let relationships = try await TenantGovernanceRelationshipTests.call(h, "GET", "governanceRelationships", as: other.globalAdmin)
        return try #require(relationships.json["value"]?.arrayValue?.first { $0["status"] == "active" }?["id"]?.stringValue, "\(relationships.text)")
    }

    static func world(_ h: Harness) async throws -> World {
        let admin = try await h.caller(named: "contosoga", role: BuiltInRoles.globalAdministrator)
        let group = try await TenantGovernancePolicyTemplateTests.adminsGroup(h)
        #expect(await h.graph("POST", "groups/\(group)/members/$ref", token: try await h.accessToken(),
                              json: ["@odata.id": .string("https://graph.microsoft.com/v1.0/directoryObjects/\(try #require(admin.userID))")]).status == 204)
        let security = try await template(h, group: group, role: BuiltInRoles.securityAdministrator, name: "Security", as: admin)
        let users = try await template(h, group: group, role: BuiltInRoles.userAdministrator, name: "Users", as: admin)
        let fabrikam = try await TenantGovernanceRelationshipTests.other(h, name: "Fabrikam", domain: "fabrikam.test")
        let woodgrove = try await TenantGovernanceRelationshipTests.other(h, name: "Woodgrove", domain: "woodgrove.test")
        let northwind = try await TenantGovernanceRelationshipTests.other(h, name: "Northwind", domain: "northwind.test")
        let litware = try await TenantGovernanceRelationshipTests.other(h, name: "Litware", domain: "litware.test")
        let relationship = try await govern(h, fabrikam, template: security, as: admin)
        _ = try await govern(h, woodgrove, template: security, as: admin)
        _ = try await govern(h, northwind, template: users, as: admin)
        return World(h: h, admin: admin, fabrikam: fabrikam, woodgrove: woodgrove, northwind: northwind, litware: litware, relationship: relationship)
    }

    @Test("one baseline runs as a managed monitor in each governed tenant, which reads it as its own but cannot change it; the governing tenant reads their drifts side by side, audited in both")
    func appliedAndSideBySide() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            let fabPolicy = try await w.policy(in: w.fabrikam)
            _ = try await w.policy(in: w.woodgrove)
            let applied = try await w.apply([w.fab, w.wood])
            #expect(applied.status == 201, "\(applied.text)")
            #expect(applied.json["@odata.type"] == "#microsoft.graph.governedConfigurationMonitor" && applied.json["_baseline"] == nil)
            let id = try #require(applied.json["id"]?.stringValue)
            let tenants = applied.json["governedTenants"]?.arrayValue ?? []
            #expect(tenants.map { $0["tenantName"] } == ["Fabrikam", "Woodgrove"], "\(applied.text)")
            #expect(tenants.allSatisfy { $0["relationshipStatus"] == "active" && $0["monitorStatus"] == "active" && $0["activeDriftsCount"] == 0 })
            #expect(tenants.first?["governanceRelationshipId"] == .string(w.relationship))

            // Fabrikam sees the monitor as its own, marked as Contoso's; it cannot change or delete it.
            let theirs = try await w.monitors(in: w.fabrikam)
            let monitor = try #require(theirs.first, "\(theirs)")
            #expect(theirs.count == 1 && monitor["managedBy"]?["tenantId"] == .string(w.contoso) && monitor["managedBy"]?["tenantName"] == "Contoso")
            #expect(monitor["tenantId"] == .string(w.fab) && monitor["displayName"] == "Contoso baseline" && monitor["status"] == "active")
            let monitorID = try #require(monitor["id"]?.stringValue)
            let baseline = try await w.call("GET", "\(Self.root)/configurationMonitors/\(monitorID)/baseline", as: w.fabrikam.globalAdmin)
            #expect(baseline.json["resources"]?.arrayValue?.count == 2, "\(baseline.text)")
            let patched = try await w.call("PATCH", "\(Self.root)/configurationMonitors/\(monitorID)", ["displayName": "Ours now"], as: w.fabrikam.globalAdmin)
            #expect(patched.status == 403 && patched.text.contains("managed by the governing tenant Contoso"), "\(patched.text)")
            #expect(try await w.call("DELETE", "\(Self.root)/configurationMonitors/\(monitorID)", as: w.fabrikam.globalAdmin).status == 403)

            // Fabrikam drifts; both tenants' monitors run at the next slot, each in its tenant.
            try await w.setPolicy(fabPolicy, in: w.fabrikam, state: "disabled")
            h.clock.advance(toNext: 6 * 3600, plus: 60)
            let runs = await ConfigurationMonitors(app: h.app).runDue()
            #expect(Set(runs.map(\.tenant)) == [w.fab, w.wood], "\(runs)")
            let fabDrifts = try await w.call("GET", "\(Self.root)/configurationDrifts", as: w.fabrikam.globalAdmin).json["value"]?.arrayValue ?? []
            #expect(fabDrifts.count == 1 && fabDrifts.first?["monitorId"] == .string(monitorID))

            let drifts = try await w.call("GET", "\(Self.governed)/\(id)/configurationDrifts")
            let values = drifts.json["value"]?.arrayValue ?? []
            #expect(values.count == 1 && values.first?["tenantId"] == .string(w.fab), "\(drifts.text)")
            #expect(values.first?["driftedProperties"]?.arrayValue?.first?["propertyName"] == "State")
            #expect(values.first?["driftedProperties"]?.arrayValue?.first?["currentValue"] == "disabled")
            let results = try await w.call("GET", "\(Self.governed)/\(id)/configurationMonitoringResults")
            #expect(results.json["value"]?.arrayValue?.count == 2, "\(results.text)")
            let read = try await w.call("GET", "\(Self.governed)/\(id)")
            let byTenant = Dictionary(uniqueKeysWithValues: (read.json["governedTenants"]?.arrayValue ?? []).map { ($0["tenantName"]?.stringValue ?? "", $0) })
            #expect(byTenant["Fabrikam"]?["activeDriftsCount"] == 1 && byTenant["Woodgrove"]?["activeDriftsCount"] == 0, "\(read.text)")
            #expect(byTenant["Fabrikam"]?["lastRunStatus"] == "successful")

            // Put back: fixed at the next run, gone from the side-by-side active drifts.
            try await w.setPolicy(fabPolicy, in: w.fabrikam, state: "enabledForReportingButNotEnforced")
            h.clock.advance(toNext: 6 * 3600, plus: 60)
            _ = await ConfigurationMonitors(app: h.app).runDue()
            let after = try await w.call("GET", "\(Self.governed)/\(id)/configurationDrifts")
            #expect(after.json["value"]?.arrayValue?.map { $0["status"] } == ["fixed"], "\(after.text)")

            // Audited in the governing tenant and, as Contoso's user, in each governed tenant.
            #expect(try await w.changes(w.contoso).contains { $0.activity == "Apply configuration baseline to governed tenants" && $0.objectId == id })
            for tenant in [w.fab, w.wood] {
                let created = try #require(try await w.changes(tenant).first { $0.activity == "Create configuration monitor" })
                #expect(created.actor["user"]?["homeTenantId"] == .string(w.contoso) && created.actor["user"]?["displayName"] == "contosoga")
                #expect(created.details["actorTenantId"] == .string(w.contoso))
            }
        }
    }

    @Test("refused without an active relationship whose policy gives the administrator a role that writes monitors: a third tenant, a User Administrator template, an administrator outside the group, an application; nothing is written")
    func refusals() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            let litware = try await w.apply([w.fab, w.litware.tenant.tenantId])
            #expect(litware.status == 403 && litware.text.contains("does not govern"), "\(litware.text)")
            #expect(try await w.monitors(in: w.fabrikam).isEmpty)
            let northwind = try await w.apply([w.northwind.tenant.tenantId])
            #expect(northwind.status == 403 && northwind.text.contains("no role that writes configuration monitors"), "\(northwind.text)")
            #expect(try await w.monitors(in: w.northwind).isEmpty)

            let outsider = try await h.caller(named: "secadmin", role: BuiltInRoles.securityAdministrator)
            #expect(try await w.apply([w.fab], as: outsider).status == 403)
            let reader = try await h.caller(named: "secreader", role: BuiltInRoles.securityReader)
            #expect(try await w.apply([w.fab], as: reader).status == 403)
            let app = await h.send("POST", "/beta/\(Self.governed)", headers: [
                "authorization": "Bearer \(try await h.accessToken())", "content-type": "application/json"],
                body: (["displayName": "x", "baseline": ConfigurationManagementTests.monitor["baseline"] ?? nil,
                        "governedTenantIds": [.string(w.fab)]] as JSONValue).serializedBytes)
            #expect(app.status == 403, "\(app.text)")
            // A governed tenant cannot reach into its governing tenant.
            let reverse = try await w.apply([w.contoso], as: w.fabrikam.globalAdmin)
            #expect(reverse.status == 403, "\(reverse.text)")
            #expect(try await w.monitors(in: w.fabrikam).isEmpty)

            // Bad bodies, and v1.0.
            #expect(try await w.apply([w.contoso]).status == 400)
            #expect(try await w.apply([w.fab, w.fab]).status == 400)
            #expect(try await w.apply(["not-a-tenant"]).status == 400)
            let noTenants = try await w.call("POST", Self.governed, ["displayName": "x", "baseline": ConfigurationManagementTests.monitor["baseline"] ?? nil])
            #expect(noTenants.status == 400 && noTenants.text.contains("governedTenantIds"), "\(noTenants.text)")
            let two = try await w.call("POST", Self.governed, ["displayName": "x", "baseline": ConfigurationManagementTests.monitor["baseline"] ?? nil,
                                                                "sourceMonitorId": "x", "governedTenantIds": [.string(w.fab)]])
            #expect(two.status == 400, "\(two.text)")
            #expect(try await w.call("POST", Self.governed, ["displayName": "x", "id": "y"]).status == 400)
            #expect(try await w.call("GET", Self.governed, version: "v1.0").status == 400)
            #expect(try await w.call("GET", Self.governed).json["value"] == [])
        }
    }

    @Test("terminating the relationship stops the governed tenant's managed monitor in the same transaction: it no longer runs, the governed tenant may delete it, the governing tenant reads nothing more")
    func terminationStops() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            let id = try #require(try await w.apply([w.fab, w.wood]).json["id"]?.stringValue)
            let terminated = try await TenantGovernanceRelationshipTests.call(h, "PATCH", "governanceRelationships/\(w.relationship)",
                                                                              ["status": "terminated"], as: w.admin)
            #expect(terminated.status == 204, "\(terminated.text)")
            let monitor = try #require(try await w.monitors(in: w.fabrikam).first)
            #expect(monitor["status"] == "inactive" && monitor["inactivationReason"]?.stringValue?.contains("Contoso") == true, "\(monitor)")
            #expect(try await w.changes(w.fab).contains { $0.activity == "Stop configuration monitor" })

            h.clock.advance(toNext: 6 * 3600, plus: 60)
            #expect(await ConfigurationMonitors(app: h.app).runDue().map(\.tenant) == [w.wood])

            let read = try await w.call("GET", "\(Self.governed)/\(id)")
            let fabrikam = try #require(read.json["governedTenants"]?.arrayValue?.first { $0["tenantId"] == .string(w.fab) })
            #expect(fabrikam["relationshipStatus"] == "terminated" && fabrikam["monitorStatus"] == .null && fabrikam["activeDriftsCount"] == .null, "\(read.text)")
            let results = try await w.call("GET", "\(Self.governed)/\(id)/configurationMonitoringResults")
            #expect(results.json["value"]?.arrayValue?.allSatisfy { $0["tenantId"] == .string(w.wood) } == true, "\(results.text)")
            // Naming Fabrikam again is refused; a change to the rest leaves Fabrikam's (now its own) monitor alone.
            #expect(try await w.call("PATCH", "\(Self.governed)/\(id)", ["governedTenantIds": [.string(w.fab), .string(w.wood)]]).status == 403)
            #expect(try await w.call("PATCH", "\(Self.governed)/\(id)", ["displayName": "Renamed"]).status == 204)
            #expect(try await w.monitors(in: w.fabrikam).first?["displayName"] == "Contoso baseline")
            #expect(try await w.monitors(in: w.woodgrove).first?["displayName"] == "Renamed")
            let monitorID = try #require(monitor["id"]?.stringValue)
            #expect(try await w.call("DELETE", "\(Self.root)/configurationMonitors/\(monitorID)", as: w.fabrikam.globalAdmin).status == 204)
        }
    }

    @Test("a managed monitor whose relationship ended without it being stopped (applied while the termination ran) is stopped by the scheduler, not run")
    func orphanStoppedByTheScheduler() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            #expect(try await w.apply([w.fab]).status == 201)
            // The relationship ends behind the monitor's back: both copies terminated, the monitor left active.
            let relationship = w.relationship, tenants = [w.contoso, w.fab], fab = w.fab
            try await h.app.store.write { tx in
                guard var body = try await tx.object(tenant: fab, id: relationship)?.body else { return }
                body["status"] = "terminated"
                try await GovernanceRelationships.writeBoth(tx, id: relationship, kind: GovernanceRelationships.relationshipKind, body: body, tenants: tenants)
            }
            #expect(try await w.monitors(in: w.fabrikam).first?["status"] == "active")
            h.clock.advance(toNext: 6 * 3600, plus: 60)
            #expect(await ConfigurationMonitors(app: h.app).runDue().isEmpty)
            #expect(try await w.monitors(in: w.fabrikam).first?["status"] == "inactive")
        }
    }

    @Test("a baseline from the governing tenant's snapshot matches governed instances by name (its object ids dropped); a PATCH moves it between tenants and a DELETE removes it from all")
    func snapshotUpdateDelete() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            let token = try await h.accessToken()
            #expect(await h.graph("POST", ConfigurationManagementTests.policies, token: token, json: ConfigurationManagementTests.policy).status == 201)
            let job = try await w.call("POST", "\(Self.root)/configurationSnapshots/createSnapshot", [
                "displayName": "Contoso CA", "resources": ["microsoft.entra.conditionalAccessPolicy"]])
            #expect(job.status == 200, "\(job.text)")
            await h.app.jobs.idle()
            let snapshots = try await w.call("GET", "\(Self.root)/configurationSnapshots").json["value"]?.arrayValue ?? []
            let snapshot = try #require(snapshots.first?["id"]?.stringValue)
            _ = try await w.policy(in: w.fabrikam)
            let applied = try await w.call("POST", Self.governed, ["displayName": "From the snapshot", "sourceSnapshotId": .string(snapshot),
                                                                   "governedTenantIds": [.string(w.fab)]])
            #expect(applied.status == 201, "\(applied.text)")
            let id = try #require(applied.json["id"]?.stringValue)
            let baseline = try await w.call("GET", "\(Self.governed)/\(id)/baseline")
            let resource = try #require(baseline.json["resources"]?.arrayValue?.first)
            #expect(resource["properties"]?["Id"] == nil && resource["properties"]?["DisplayName"] == "Require MFA for admins", "\(baseline.text)")
            h.clock.advance(toNext: 6 * 3600, plus: 60)
            _ = await ConfigurationMonitors(app: h.app).runDue()
            let drifts = try await w.call("GET", "\(Self.governed)/\(id)/configurationDrifts")
            #expect(drifts.json["value"] == [], "Fabrikam's policy of the same name matches: \(drifts.text)")

            #expect(try await w.call("PATCH", "\(Self.governed)/\(id)", ["governedTenantIds": [.string(w.wood)]]).status == 204)
            #expect(try await w.monitors(in: w.fabrikam).isEmpty)
            #expect(try await w.monitors(in: w.woodgrove).first?["managedBy"]?["governedConfigurationMonitorId"] == .string(id))
            #expect(try await w.changes(w.fab).contains { $0.activity == "Delete configuration monitor" && $0.actor["user"]?["homeTenantId"] == .string(w.contoso) })
            #expect(try await w.call("DELETE", "\(Self.governed)/\(id)").status == 204)
            #expect(try await w.monitors(in: w.woodgrove).isEmpty)
            #expect(try await w.call("GET", "\(Self.governed)/\(id)").status == 404)
        }
    }

    @Test("a tenant's own monitor writes are audited: create, update and delete in directory audits")
    func monitorWritesAudited() async throws {
        try await Harness.run { h in
            let admin = try await ConfigurationManagementTests.admin(h)
            let created = try await ConfigurationManagementTests.call(h, "POST", "\(Self.root)/configurationMonitors", ConfigurationManagementTests.monitor, as: admin)
            let id = try #require(created.json["id"]?.stringValue, "\(created.text)")
            #expect(try await ConfigurationManagementTests.call(h, "PATCH", "\(Self.root)/configurationMonitors/\(id)", ["displayName": "Renamed"], as: admin).status == 204)
            #expect(try await ConfigurationManagementTests.call(h, "DELETE", "\(Self.root)/configurationMonitors/\(id)", as: admin).status == 204)
            let audits = await h.graph("GET", "auditLogs/directoryAudits", token: try await h.accessToken(),
                                       query: [("$filter", "targetResources/any(t:t/id eq '\(id)')")]).json["value"]?.arrayValue ?? []
            let mine = audits.filter { $0["targetResources"]?.arrayValue?.first?["id"] == .string(id) }
            #expect(mine.map { $0["activityDisplayName"] } == ["Create configuration monitor", "Update configuration monitor", "Delete configuration monitor"], "\(mine)")
            #expect(mine.map { $0["operationType"] } == ["Add", "Update", "Delete"])
            #expect(mine.allSatisfy { $0["initiatedBy"]?["user"]?["displayName"] == "configadmin" })
            #expect(mine.last?["targetResources"]?.arrayValue?.first?["displayName"] == "Renamed")
        }
    }

    @Test("the governing tenant's drift page shows each governed tenant as a column with its drifted properties linked to the tenant's drift; the governed tenant's page marks the monitor as managed; names escaped")
    func driftPages() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            let fabPolicy = try await w.policy(in: w.fabrikam)
            _ = try await w.policy(in: w.woodgrove)
            let applied = try await w.call("POST", Self.governed, [
                "displayName": .string(AdminGovernancePagesTests.hostile), "baseline": ConfigurationManagementTests.monitor["baseline"] ?? nil,
                "governedTenantIds": [.string(w.fab), .string(w.wood)]])
            #expect(applied.status == 201, "\(applied.text)")
            try await w.setPolicy(fabPolicy, in: w.fabrikam, state: "disabled")
            h.clock.advance(toNext: 6 * 3600, plus: 60)
            _ = await ConfigurationMonitors(app: h.app).runDue()

            let contoso = try await AdminGovernancePagesTests.Browser.signIn(h, w.admin)
            let page = await contoso.get("/drift")
            #expect(page.status == 200 && page.text.contains("Baselines over governed tenants"), "\(page.text)")
            #expect(page.text.contains("<a href=\"/admin/\(w.fab)/drift\">Fabrikam</a>") && page.text.contains("<a href=\"/admin/\(w.wood)/drift\">Woodgrove</a>"))
            let drift = try #require(try await w.call("GET", "\(Self.root)/configurationDrifts", as: w.fabrikam.globalAdmin).json["value"]?.arrayValue?.first)
            let driftID = try #require(drift["id"]?.stringValue)
            #expect(page.text.contains("<a href=\"/admin/\(w.fab)/drift#drift-\(driftID)\">State</a>"), "\(page.text)")
            #expect(page.text.contains("1 drifts") && page.text.contains("Matches"))
            AdminGovernancePagesTests.expectEscaped(page)

            let fabrikam = try await AdminGovernancePagesTests.Browser.signIn(h, w.fabrikam.globalAdmin)
            let theirs = await fabrikam.get("/drift")
            #expect(theirs.status == 200 && theirs.text.contains("Managed by Contoso") && theirs.text.contains("id=\"drift-\(driftID)\""), "\(theirs.text)")
            #expect(!theirs.text.contains("Baselines over governed tenants"))
        }
    }
}
