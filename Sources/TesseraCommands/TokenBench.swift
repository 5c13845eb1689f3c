import ArgumentParser
import Foundation
import Server
import Store
import TesseraCore

/// Client-credentials issuance rate against the raw RS256 signing rate, measured in one run.
struct TokenBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokens", abstract: "Token issuance per second vs raw RS256 signing.")
    @Option(help: "Seconds per measurement.") var seconds: Double = 5
    @Option(help: "Concurrent clients.") var concurrency: Int = 4
    @Option(help: "Rounds; each measures both rates back to back, and the median ratio is reported.") var rounds: Int = 5

    func run() async throws {
        let (folder, store, app, tenant) = try await Benchmarks.temporaryTenant()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let body = "grant_type=client_credentials&client_id=\(tenant.clientId)&client_secret=\(tenant.clientSecret.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"
        let request = APIRequest(method: "POST", path: "/\(tenant.tenantId)/oauth2/v2.0/token", query: [],
                                 headers: ["content-type": "application/x-www-form-urlencoded"], body: Array(body.utf8),
                                 baseURL: "https://localhost:8443")
        var samples: [(raw: Double, issued: Double)] = []
        for round in 1...max(1, rounds) {
            // Back to back in each round, so both rates see the same machine.
            let raw = try await Benchmarks.measure(seconds: seconds, concurrency: concurrency) { try app.signOnce() }
            let issued = try await Benchmarks.measure(seconds: seconds, concurrency: concurrency) {
                let response = await app.handle(request)
                guard response.status == 200 else { throw ValidationError("token request failed: \(response.status)") }
            }
            samples.append((raw, issued))
            say(String(format: "round %d: raw RS256 signatures/s %.0f, client-credentials tokens/s %.0f, ratio %.2f",
                       round, raw, issued, issued / raw))
        }
        func median(_ values: [Double]) -> Double {
            let sorted = values.sorted()
            return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        }
        say(String(format: "median over %d rounds (%d concurrent, %.0f s each): raw %.0f/s, tokens %.0f/s, ratio %.2f (target >= 0.80)",
                   samples.count, concurrency, seconds, median(samples.map(\.raw)), median(samples.map(\.issued)),
                   median(samples.map { $0.issued / $0.raw })))
        try await store.shutdown()
    }
}

enum Benchmarks {
    /// A Tessera on a SQLite file in a fresh temporary folder (as `tessera serve` uses: an in-memory database has a
    /// single connection), or on the PostgreSQL `database` names, with one new tenant. The caller removes the folder.
    static func temporaryTenant(database: String? = nil, network: NetworkPolicy = .init()) async throws -> (folder: String, store: SQLDirectoryStore, app: TesseraApp, tenant: ProvisionedTenant) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-bench-\(Identifier.make())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let store = try await SQLDirectoryStore.open(database ?? folder + "/tessera.sqlite")
        let app = try await TesseraApp.make(store: store, network: network)
        // A database that outlives the run may hold an earlier run's tenant: each run gets a domain of its own.
        let domain = database == nil ? "bench.test" : "bench-\(Identifier.make().prefix(8)).test"
        let tenant = try await TenantProvisioner(directory: app.directory).create(name: "Bench", domain: domain)
        return (folder, store, app, tenant)
    }

    /// Runs `operation` from `concurrency` tasks for `seconds`; returns operations per second.
    static func measure(seconds: Double, concurrency: Int, _ operation: @escaping @Sendable () async throws -> Void) async throws -> Double {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        let start = ContinuousClock.now
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var n = 0
                    while ContinuousClock.now < deadline {
                        try await operation()
                        n += 1
                    }
                    return n
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = ContinuousClock.now - start
        return Double(total) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }
}
