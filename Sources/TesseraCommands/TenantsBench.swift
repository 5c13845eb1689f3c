import ArgumentParser
import Foundation
import Server
import Store
import TesseraCore

/// Issue 18's scale question: does a tenant among many cost what a tenant alone costs? Two deployments side by side in
/// one run — one with a single tenant, one with `--tenants` of them measured in the last one created — and, alternating
/// between them each round, client-credentials tokens, a Graph read and complete passkey sign-ins (in process, so the
/// measure is Tessera's work and not the socket's). The target is the crowded deployment within 10% of the lone one.
struct TenantsBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenants", abstract: "Tokens, Graph reads and passkey sign-ins in the last of many tenants vs a deployment with one.")
    @Option(help: "Tenants in the crowded deployment; the last one created is measured.") var tenants: Int = 1000
    @Option(help: "Seconds per measurement.") var seconds: Double = 3
    @Option(help: "Concurrent clients.") var concurrency: Int = 4
    @Option(help: "Rounds; medians are reported.") var rounds: Int = 3
    @Option(help: "PostgreSQL for the crowded deployment (postgres:// URL of an empty database); SQLite in a temporary folder when omitted.")
    var database: String?
    @Option(help: "PostgreSQL for the one-tenant deployment (another empty database); required with --database.")
    var singleDatabase: String?

    func validate() throws {
        guard tenants >= 2 else { throw ValidationError("--tenants must be at least 2") }
        guard (database == nil) == (singleDatabase == nil) else {
            throw ValidationError("--database and --single-database go together: each deployment needs a database of its own")
        }
    }

    func run() async throws {
        let lone = try await Deployment.make(database: singleDatabase, tenants: 1, concurrency: concurrency)
        defer { lone.remove() }
        say(String(format: "one-tenant deployment ready in %.1f s", lone.setupSeconds))
        let crowded = try await Deployment.make(database: database, tenants: tenants, concurrency: concurrency)
        defer { crowded.remove() }
        say(String(format: "%d-tenant deployment ready in %.1f s (%.1f tenants/s created); measuring tenant %@", tenants, crowded.setupSeconds,
                   Double(tenants) / crowded.setupSeconds, crowded.measured.tenantId as NSString))

        var samples: [String: [(lone: Double, crowded: Double)]] = [:]
        for round in 1...max(1, rounds) {
            var line: [String] = []
            for (name, operation) in Deployment.operations {
                // Alternating within the round, so both deployments see the same machine.
                let a = try await measure { try await operation(lone, $0) }
                let b = try await measure { try await operation(crowded, $0) }
                samples[name, default: []].append((a, b))
                line.append(String(format: "%@ %.0f/s vs %.0f/s (%.2f)", name as NSString, a, b, b / a))
            }
            say("round \(round): " + line.joined(separator: "; "))
        }
        let backend = database == nil ? "SQLite" : "PostgreSQL"
        say("| \(backend), median of \(samples.first?.value.count ?? 0) rounds | one tenant | tenant \(tenants) of \(tenants) | ratio |")
        say("|---|---:|---:|---:|")
        for (name, _) in Deployment.operations {
            let values = samples[name] ?? []
            say(String(format: "| %@ | %.0f/s | %.0f/s | %.2f |", name as NSString, median(values.map(\.lone)), median(values.map(\.crowded)),
                       median(values.map { $0.crowded / $0.lone })))
        }
        say("target: every ratio ≥ 0.90 (within 10%)")
        try await lone.store.shutdown()
        try await crowded.store.shutdown()
    }

    /// Operations per second from `concurrency` workers for `seconds`; each worker passes its own index (a sign-in
    /// worker signs in its own user, as each browser does: one user's passkey signing twice at once is a clone).
    private func measure(_ operation: @escaping @Sendable (Int) async throws -> Void) async throws -> Double {
        let start = ContinuousClock.now, deadline = start + .milliseconds(Int(seconds * 1000))
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    var n = 0
                    while ContinuousClock.now < deadline {
                        try await operation(worker)
                        n += 1
                    }
                    return n
                }
            }
            return try await group.reduce(0, +)
        }
        return Double(total) / (ContinuousClock.now - start).seconds
    }

    private func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    /// One Tessera (its own database) with `tenants` tenants, ready to measure the last.
    struct Deployment: Sendable {
        let folder: String
        let store: SQLDirectoryStore
        let app: TesseraApp
        let measured: ProvisionedTenant
        let tokenRequest: APIRequest
        let graphRead: APIRequest
        let signIns: Setup
        let setupSeconds: Double

        static let host = "localhost:8443"

        static let operations: [(String, @Sendable (Deployment, _ worker: Int) async throws -> Void)] = [
            ("client-credentials tokens", { d, _ in
                let response = await d.app.handle(d.tokenRequest)
                guard response.status == 200 else { throw ValidationError("token request failed: \(response.status)") }
            }),
            ("Graph reads (GET /v1.0/users/{id})", { d, _ in
                let response = await d.app.handle(d.graphRead)
                guard response.status == 200 else { throw ValidationError("Graph read failed: \(response.status)") }
            }),
            ("passkey sign-ins (in process)", { d, worker in
                _ = try await d.signIns.signIn(user: d.signIns.users[worker % d.signIns.users.count], over: InProcess(app: d.app, host: host))
            }),
        ]

        static func make(database: String?, tenants: Int, concurrency: Int) async throws -> Deployment {
            let start = ContinuousClock.now
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-bench-\(Identifier.make())").path
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let store = try await SQLDirectoryStore.open(database ?? folder + "/tessera.sqlite")
            let app = try await TesseraApp.make(store: store)
            let provisioner = TenantProvisioner(directory: app.directory)
            // A database that outlives the run may hold an earlier run's tenants: each run's domains are its own.
            let run = Identifier.make().prefix(8).lowercased()
            // The others first, a few at a time as an operator's script would; the measured tenant last.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<(tenants - 1) {
                    if index >= concurrency { try await group.next() }
                    group.addTask { _ = try await provisioner.create(name: "Tenant \(index)", domain: "t\(index)-\(run).test") }
                }
                try await group.waitForAll()
            }
            let measured = try await provisioner.create(name: "Measured", domain: "measured-\(run).test")
            let form = "grant_type=client_credentials&client_id=\(measured.clientId)&client_secret=\(Setup.encode(measured.clientSecret))"
                + "&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"
            let tokenRequest = APIRequest(method: "POST", path: "/\(measured.tenantId)/oauth2/v2.0/token", query: [],
                                          headers: ["content-type": "application/x-www-form-urlencoded"], body: Array(form.utf8),
                                          baseURL: "https://\(host)")
            let token = await app.handle(tokenRequest)
            guard token.status == 200,
                  let accessToken = (try? JSONParser.parse(token.body))?["access_token"]?.stringValue
            else { throw ValidationError("the measured tenant's app got no token: \(token.status)") }
            let graphRead = APIRequest(method: "GET", path: "/v1.0/users/\(measured.adminUserId)", query: [],
                                       headers: ["authorization": "Bearer \(accessToken)"], body: [], baseURL: "https://\(host)")
            let signIns = try await Setup.make(app: app, tenant: measured, base: "http://\(host)", users: concurrency)
            // Each operation once, checked, before anything is timed.
            for (_, operation) in operations {
                try await operation(Deployment(folder: folder, store: store, app: app, measured: measured, tokenRequest: tokenRequest,
                                               graphRead: graphRead, signIns: signIns, setupSeconds: 0), 0)
            }
            return Deployment(folder: folder, store: store, app: app, measured: measured, tokenRequest: tokenRequest, graphRead: graphRead,
                              signIns: signIns, setupSeconds: (ContinuousClock.now - start).seconds)
        }

        func remove() { try? FileManager.default.removeItem(atPath: folder) }
    }
}
