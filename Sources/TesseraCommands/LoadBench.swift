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
    @Option(help: "Where to write the tenant's id, domain and client credentials.") var output: String

    func run() async throws {
        let store = try await storage.openStore()
        let directory = DirectoryService(store: store)
        let tenant = try await TenantProvisioner(directory: directory).create(
            name: "Benchmark", domain: "bench-\(Identifier.make().prefix(8)).test")
        let userCount = users, groupCount = groups, perGroup = membersPerGroup
        let userStart = ContinuousClock.now
        let userIds = try await Self.parallel(count: userCount, concurrency: concurrency) { i in
            let n = String(format: "%06d", i)
            return try await directory.create(tenant: tenant.tenantId, kind: .user, body: [
                "accountEnabled": true, "displayName": .string("User \(n) Bench"), "givenName": .string("User\(n)"), "surname": "Bench",
                "mailNickname": .string("user\(n)"), "userPrincipalName": .string("user\(n)@\(tenant.domain)"),
                "mail": .string("user\(n)@\(tenant.domain)"), "jobTitle": .string(i % 3 == 0 ? "Engineer" : "Analyst"),
                "passwordProfile": ["forceChangePasswordNextSignIn": true],
            ], actor: .system).id
        }
        let userSeconds = Self.seconds(ContinuousClock.now - userStart)
        let groupStart = ContinuousClock.now
        let groupIds = try await Self.parallel(count: groupCount, concurrency: concurrency) { i in
            try await directory.create(tenant: tenant.tenantId, kind: .group, body: [
                "displayName": .string("Group \(String(format: "%05d", i))"), "mailEnabled": false,
                "mailNickname": .string("group\(i)"), "securityEnabled": true,
            ], actor: .system).id
        }
        let groupSeconds = Self.seconds(ContinuousClock.now - groupStart)
        let linkStart = ContinuousClock.now
        let ids = userIds, gids = groupIds
        _ = try await Self.parallel(count: gids.count * perGroup, concurrency: concurrency) { i in
            let group = gids[i / perGroup]
            let member = ids[(i * 7919) % ids.count]
            do {
                try await directory.addLink(tenant: tenant.tenantId, source: group, relation: "members", target: member, actor: .system)
            } catch let error as DirectoryError where error.code == .badRequest {
                // The same member drawn twice for one group: already a member.
            }
            return ""
        }
        let linkSeconds = Self.seconds(ContinuousClock.now - linkStart)
        let report: JSONValue = [
            "tenantId": .string(tenant.tenantId), "domain": .string(tenant.domain), "clientId": .string(tenant.clientId),
            "clientSecret": .string(tenant.clientSecret), "backend": .string(store.isPostgres ? "postgresql" : "sqlite"),
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

    /// Runs `work(0..<count)` from `concurrency` tasks; results in index order.
    static func parallel(count: Int, concurrency: Int, _ work: @escaping @Sendable (Int) async throws -> String) async throws -> [String] {
        try await withThrowingTaskGroup(of: [(Int, String)].self) { group in
            for worker in 0..<max(1, concurrency) {
                group.addTask {
                    var out: [(Int, String)] = []
                    var i = worker
                    while i < count {
                        out.append((i, try await work(i)))
                        i += max(1, concurrency)
                    }
                    return out
                }
            }
            var results = Array(repeating: "", count: count)
            for try await part in group { for (i, value) in part { results[i] = value } }
            return results
        }
    }
}
