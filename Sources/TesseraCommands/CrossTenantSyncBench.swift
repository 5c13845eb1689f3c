import ArgumentParser
import Foundation
import Server
import Store
import Sync
import TesseraCore

/// Cross-tenant synchronization of `--users` users and `--groups` security groups (the users split among them) from
/// one tenant into another of the same deployment, next to directory sync of the same objects from an LDIF file
/// through the existing sync path, in the same run: objects a second, first runs (everything created) and a second
/// run with nothing changed. Rounds alternate which goes first; medians are printed.
struct CrossTenantSyncBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "crosstenant-sync",
                                                    abstract: "Cross-tenant synchronization of users and groups, next to LDIF directory sync of the same objects.")
    @Option(help: "Users to synchronize.") var users = 10_000
    @Option(help: "Security groups (the users split among them).") var groups = 100
    @Option(help: "Rounds (each on fresh tenants), alternating which sync goes first.") var rounds = 3
    @Option(help: "A postgres:// URL to run on PostgreSQL instead of a fresh SQLite file.") var database: String?

    struct Timing {
        var first: Double
        var again: Double
    }

    func run() async throws {
        var crossTenant: [Timing] = [], ldif: [Timing] = []
        for round in 0..<rounds {
            let (folder, store, app, source) = try await Benchmarks.temporaryTenant(database: database)
            defer { try? FileManager.default.removeItem(atPath: folder) }
            let ids = try await populate(app: app, tenant: source.tenantId, domain: source.domain)
            if round % 2 == 0 {
                crossTenant.append(try await crossTenantSync(app: app, source: source, round: round))
                ldif.append(try await ldifSync(app: app, folder: folder, ids: ids, round: round))
            } else {
                ldif.append(try await ldifSync(app: app, folder: folder, ids: ids, round: round))
                crossTenant.append(try await crossTenantSync(app: app, source: source, round: round))
            }
            try await store.shutdown()
            say(String(format: "round %d: cross-tenant %.2f s (again %.2f s), LDIF %.2f s (again %.2f s)", round + 1, crossTenant.last!.first,
                       crossTenant.last!.again, ldif.last!.first, ldif.last!.again))
        }
        let objects = Double(users + groups)
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        let rows: [(String, [Timing])] = [("cross-tenant synchronization (in process)", crossTenant), ("directory sync from LDIF", ldif)]
        say("\n\(users) users, \(groups) groups (\(database == nil ? "SQLite" : "PostgreSQL")), medians of \(rounds) rounds")
        say("| sync | first run | objects/s | second run, nothing changed | objects/s |")
        say("|---|---|---|---|---|")
        for (name, timings) in rows {
            let first = median(timings.map(\.first)), again = median(timings.map(\.again))
            say(String(format: "| %@ | %.2f s | %.0f | %.2f s | %.0f |", name, first, objects / first, again, objects / again))
        }
        let ratio = median(zip(crossTenant, ldif).map { $0.first / $1.first })
        say(String(format: "cross-tenant / LDIF time, first runs, median of the rounds' ratios: %.2f", ratio))
    }

    /// The source tenant's users and groups, written in batches.
    func populate(app: TesseraApp, tenant: String, domain: String) async throws -> (users: [String], groups: [[String]]) {
        var ids: [String] = []
        for start in stride(from: 0, to: users, by: 250) {
            let writes: [DirectoryWrite] = (start..<min(start + 250, users)).map { i in
                .create(.user, body: ["accountEnabled": true, "displayName": .string("User \(i)"), "mailNickname": .string("user\(i)"),
                                      "userPrincipalName": .string("user\(i)@\(domain)"), "department": "Sales",
                                      "passwordProfile": ["password": "Xy!9aaaaaaaa"]])
            }
            for result in try await app.directory.apply(writes, tenant: tenant, actor: .system) { ids.append(try result.get().id) }
        }
        let per = max(1, users / max(groups, 1))
        var members: [[String]] = []
        for g in 0..<groups {
            let group = try await app.directory.create(tenant: tenant, kind: .group, body: [
                "displayName": .string("Team \(g)"), "mailEnabled": false, "securityEnabled": true, "mailNickname": .string("team\(g)")], actor: .system)
            let slice = Array(ids[min(g * per, ids.count)..<min((g + 1) * per, ids.count)])
            for start in stride(from: 0, to: slice.count, by: 250) {
                _ = try await app.directory.apply(slice[start..<min(start + 250, slice.count)].map { .link(source: group.id, relation: "members", target: $0) },
                                                  tenant: tenant, actor: .system)
            }
            members.append(slice)
        }
        return (ids, members)
    }

    /// A job with `SyncAll` into a fresh target that allows it; two runs.
    func crossTenantSync(app: TesseraApp, source: ProvisionedTenant, round: Int) async throws -> Timing {
        let target = try await TenantProvisioner(directory: app.directory).create(name: "Target", domain: "target-\(Identifier.make().prefix(8)).test")
        try await app.directory.createCrossTenantPartner(tenant: target.tenantId, body: ["tenantId": .string(source.tenantId)], actor: .system)
        try await app.directory.putCrossTenantIdentitySync(tenant: target.tenantId, partner: source.tenantId,
                                                           body: ["userSyncInbound": ["isSyncAllowed": true]], merge: false, actor: .system)
        let servicePrincipal = Identifier.make()
        var settings = SynchronizationSettings()
        var configuration = ServicePrincipalSynchronization()
        configuration.secrets = ["CompanyId": target.tenantId, "SyncAll": "true"]
        let job = CrossTenantSyncJob(id: "Azure2Azure.bench\(round)", templateId: "Azure2Azure", servicePrincipalID: servicePrincipal)
        configuration.jobs = [job]
        settings.servicePrincipals[servicePrincipal] = configuration
        try await settings.save(tenant: source.tenantId, store: app.store)
        let record = try await app.store.read { tx in try await tx.tenant(source.tenantId) }!
        let runner = CrossTenantSyncRunner(app: app, baseURL: "https://localhost:8443")
        var start = ContinuousClock.now
        let report = try await runner.run(.init(tenant: record, servicePrincipalID: servicePrincipal, jobID: job.id))
        let first = (ContinuousClock.now - start).seconds
        // The source's administrator is a member user too: SyncAll brings it.
        guard report.added >= users + groups, report.failed == 0 else {
            throw ValidationError("cross-tenant run added \(report.added) of \(users + groups), \(report.failed) failed (\(report.status))")
        }
        start = ContinuousClock.now
        let again = try await runner.run(.init(tenant: record, servicePrincipalID: servicePrincipal, jobID: job.id))
        guard again.added + again.updated + again.deleted == 0 else { throw ValidationError("the second cross-tenant run wrote \(again.entries.count) changes") }
        return Timing(first: first, again: (ContinuousClock.now - start).seconds)
    }

    /// The same users and groups as an LDIF file, synced by an LDIF connector into a fresh tenant; two runs.
    func ldifSync(app: TesseraApp, folder: String, ids: (users: [String], groups: [[String]]), round: Int) async throws -> Timing {
        let domain = "local-\(Identifier.make().prefix(8)).test"
        let tenant = try await TenantProvisioner(directory: app.directory).create(name: "Local", domain: domain)
        let base = "OU=Staff,DC=corp,DC=example,DC=test"
        func guid(_ n: Int) -> String { Data((0..<16).map { UInt8(truncatingIfNeeded: n >> (($0 % 4) * 8)) ^ UInt8($0 * 17) }).base64EncodedString() }
        let index = Dictionary(uniqueKeysWithValues: ids.users.enumerated().map { ($1, $0) })
        var text = ""
        for (i, _) in ids.users.enumerated() {
            text += "dn: CN=user\(i),\(base)\nobjectClass: top\nobjectClass: user\nobjectGUID:: \(guid(i))\nuserPrincipalName: user\(i)@\(domain)\n"
            text += "sAMAccountName: user\(i)\ndisplayName: User \(i)\ndepartment: Sales\nuserAccountControl: 512\n\n"
        }
        for (g, members) in ids.groups.enumerated() {
            text += "dn: CN=team\(g),\(base)\nobjectClass: top\nobjectClass: group\nobjectGUID:: \(guid(1_000_000 + g))\nsAMAccountName: team\(g)\n"
            text += "displayName: Team \(g)\ngroupType: -2147483646\n"
            for member in members { text += "member: CN=user\(index[member]!),\(base)\n" }
            text += "\n"
        }
        let file = folder + "/bench\(round).ldif"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        var settings = SyncSettings()
        var connector = SyncConnector(name: "ldif", ldapURL: "", bindDN: "", bindPasswordFile: "", baseDN: base)
        connector.ldifFile = file
        settings.connectors = [connector]
        settings.deletionPreventionType = "disabled"
        try await settings.save(tenant: tenant.tenantId, store: app.store)
        let record = try await app.store.read { tx in try await tx.tenant(tenant.tenantId) }!
        let cycle = SyncCycle(directory: app.directory)
        var start = ContinuousClock.now
        let run = try await cycle.run(tenant: record)[0]
        let first = (ContinuousClock.now - start).seconds
        guard run.added == users + groups, run.errors.isEmpty else { throw ValidationError("LDIF run added \(run.added) of \(users + groups): \(run.errors.prefix(3))") }
        start = ContinuousClock.now
        _ = try await cycle.run(tenant: record)
        return Timing(first: first, again: (ContinuousClock.now - start).seconds)
    }
}
