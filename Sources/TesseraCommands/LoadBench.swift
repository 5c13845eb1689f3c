import ArgumentParser
import Foundation
import Store
import TesseraCore

/// Loads a tenant with users, groups and memberships through the directory service (unique keys, change
/// log and all), and reports the rates. Writes the tenant's credentials to a JSON file for the query runs.
struct LoadBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "load", abstract: "Bulk-load users, groups and memberships.")
    @OptionGroup var storage: StorageOptions
    @Option(help: "Users to create.") var users: Int = 100_000
    @Option(help: "Groups to create.") var groups: Int = 5_000
    @Option(help: "Members per group.") var membersPerGroup: Int = 20
    @Option(help: "Concurrent writers.") var concurrency: Int = 4
    @Option(help: "Writes per transaction, through DirectoryService.apply (1: each through its own create or addLink).")
    var batch: Int = 500
    @Option(help: "Where to write the tenant's id, domain and client credentials.") var output: String

    func run() async throws {
        let store = try await storage.openStore()
        let directory = DirectoryService(store: store)
        let tenant = try await TenantProvisioner(directory: directory).create(
            name: "Benchmark", domain: "bench-\(Identifier.make().prefix(8)).test")
        let userCount = users, groupCount = groups, perGroup = membersPerGroup
        let userStart = ContinuousClock.now
        let userIds = try await Self.parallel(count: userCount, concurrency: concurrency, batch: batch, directory: directory,
                                              tenant: tenant.tenantId) { i in
            let n = String(format: "%06d", i)
            return .create(.user, body: [
                "accountEnabled": true, "displayName": .string("User \(n) Bench"), "givenName": .string("User\(n)"), "surname": "Bench",
                "mailNickname": .string("user\(n)"), "userPrincipalName": .string("user\(n)@\(tenant.domain)"),
                "mail": .string("user\(n)@\(tenant.domain)"), "jobTitle": .string(i % 3 == 0 ? "Engineer" : "Analyst"),
                "passwordProfile": ["forceChangePasswordNextSignIn": true],
            ])
        }
        let userSeconds = Self.seconds(ContinuousClock.now - userStart)
        let groupStart = ContinuousClock.now
        let groupIds = try await Self.parallel(count: groupCount, concurrency: concurrency, batch: batch, directory: directory,
                                               tenant: tenant.tenantId) { i in
            .create(.group, body: [
                "displayName": .string("Group \(String(format: "%05d", i))"), "mailEnabled": false,
                "mailNickname": .string("group\(i)"), "securityEnabled": true,
            ])
        }
        let groupSeconds = Self.seconds(ContinuousClock.now - groupStart)
        let linkStart = ContinuousClock.now
        let ids = userIds, gids = groupIds
        // The same member drawn twice for one group is refused as a link that exists: that write alone.
        _ = try await Self.parallel(count: gids.count * perGroup, concurrency: concurrency, batch: batch, directory: directory,
                                    tenant: tenant.tenantId, refusalsAllowed: true) { i in
            .link(source: gids[i / perGroup], relation: "members", target: ids[(i * 7919) % ids.count])
        }
        let linkSeconds = Self.seconds(ContinuousClock.now - linkStart)
        let report: JSONValue = [
            "tenantId": .string(tenant.tenantId), "domain": .string(tenant.domain), "clientId": .string(tenant.clientId),
            "clientSecret": .string(tenant.clientSecret), "backend": .string(store.isPostgres ? "postgresql" : "sqlite"), "batch": .int(Int64(batch)),
            "users": .int(Int64(userCount)), "usersPerSecond": .double((Double(userCount) / userSeconds).rounded()),
            "groups": .int(Int64(groupCount)), "groupsPerSecond": .double((Double(groupCount) / groupSeconds).rounded()),
            "memberships": .int(Int64(gids.count * perGroup)),
            "membershipsPerSecond": .double((Double(gids.count * perGroup) / linkSeconds).rounded()),
            "sampleUserPrincipalName": .string("user\(String(format: "%06d", userCount / 2))@\(tenant.domain)"),
            "sampleUserId": .string(ids[userCount / 2]),
        ]
        try Data(report.serialized.utf8).write(to: URL(fileURLWithPath: output))
        say(String(format: "%@: %d users in %.1f s (%.0f/s), %d groups in %.1f s (%.0f/s), %d memberships in %.1f s (%.0f/s)",
                   store.isPostgres ? "postgresql" : "sqlite", userCount, userSeconds, Double(userCount) / userSeconds,
                   groupCount, groupSeconds, Double(groupCount) / groupSeconds, gids.count * perGroup, linkSeconds,
                   Double(gids.count * perGroup) / linkSeconds))
        try await store.shutdown()
    }

    static func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

    /// Performs the writes `write(0..<count)` from `concurrency` tasks, `batch` to a transaction (`DirectoryService.apply`)
    /// or, with a batch of 1, each through its own single-object method; returns the objects' ids in index order.
    /// A refused write stops the run unless `refusalsAllowed`.
    static func parallel(count: Int, concurrency: Int, batch: Int, directory: DirectoryService, tenant: String, refusalsAllowed: Bool = false,
                         _ write: @escaping @Sendable (Int) -> DirectoryWrite) async throws -> [String] {
        let batch = max(1, batch), workers = max(1, concurrency)
        return try await withThrowingTaskGroup(of: [(Int, String)].self) { group in
            for worker in 0..<workers {
                group.addTask {
                    var out: [(Int, String)] = []
                    // Worker w takes chunks w, w + workers, …
                    var start = worker * batch
                    while start < count {
                        let indices = Array(start..<min(start + batch, count))
                        let results: [Result<String, DirectoryError>]
                        if batch == 1 {
                            results = [try await Self.single(write(indices[0]), directory: directory, tenant: tenant)]
                        } else {
                            results = try await directory.apply(indices.map(write), tenant: tenant, actor: .system).map { $0.map(\.id) }
                        }
                        for (i, result) in zip(indices, results) {
                            switch result {
                            case .success(let id): out.append((i, id))
                            case .failure(let error): if !refusalsAllowed { throw error }
                            }
                        }
                        start += workers * batch
                    }
                    return out
                }
            }
            var results = Array(repeating: "", count: count)
            for try await part in group { for (i, value) in part { results[i] = value } }
            return results
        }
    }

    /// One write through the directory service's single-object method, for comparison with a batch: the id of the
    /// object it created or updated (a link's source), or the directory's refusal.
    static func single(_ write: DirectoryWrite, directory: DirectoryService, tenant: String) async throws -> Result<String, DirectoryError> {
        do {
            switch write {
            case .create(let kind, let body, let id):
                return .success(try await directory.create(tenant: tenant, kind: kind, body: body, actor: .system, id: id).id)
            case .update(let id, let kind, let patch, let ifMatch):
                return .success(try await directory.update(tenant: tenant, id: id, kind: kind, patch: patch, actor: .system, ifMatch: ifMatch).id)
            case .link(let source, let relation, let target):
                try await directory.addLink(tenant: tenant, source: source, relation: relation, target: target, actor: .system)
                return .success(source)
            case .unlink, .delete, .revert, .reinstate:
                // The load creates and links only.
                return .success(try await directory.apply([write], tenant: tenant, actor: .system)[0].get().id)
            }
        } catch let error as DirectoryError {
            return .failure(error)
        }
    }
}
