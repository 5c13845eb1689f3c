import Foundation
import Synchronization
import Testing
@testable import Server
@testable import Store
import TesseraCore
import TesseraTesting

/// PostgreSQL failover (issue 19) end to end in one process: a Tessera whose database URL names a real primary and its
/// streaming standby (`scripts/pg-pair-up`) with `target_session_attrs=read-write`, driven through `TesseraApp.handle`
/// while the primary dies and the standby is promoted. Every answer is judged: a write acknowledged is never lost,
/// anything refused is a retryable 503 with `Retry-After` (never a 500, a wrong answer or a hang), and the node serves
/// again soon after the promotion without a restart, as many times as the primary changes.
@Suite("PostgreSQL failover", .serialized, .enabled(if: PostgresPair.available))
struct PostgresFailoverTests {
    /// How soon after a promotion a write must be acknowledged again. The router watches every second and probes with
    /// a backoff of at most one; by hand and in soak runs it takes 0.1–2.2 s. The bound leaves room for a loaded machine.
    static let recovery: Duration = .seconds(15)

    /// A Tessera on a fresh pair, with a tenant and an access token for its automation app.
    struct Node {
        let pair: PostgresPair
        let store: SQLDirectoryStore
        let app: TesseraApp
        let tenant: ProvisionedTenant
        let token: String

        func graph(_ method: String, _ path: String, json: JSONValue? = nil) async -> APIResponse {
            var headers = ["authorization": "Bearer \(token)"]
            if json != nil { headers["content-type"] = "application/json" }
            return await app.handle(APIRequest(method: method, path: "/v1.0/" + path, query: [], headers: headers,
                                               body: json?.serializedBytes ?? [], baseURL: Harness.base))
        }

        /// POST /groups; the new group's id when acknowledged (201), else the answer.
        func createGroup(_ name: String) async -> Result<String, Refusal> {
            let response = await graph("POST", "groups", json: [
                "displayName": .string(name), "mailEnabled": false, "securityEnabled": true, "mailNickname": .string(name)])
            if response.status == 201, let id = response.json["id"]?.stringValue { return .success(id) }
            return .failure(Refusal(response))
        }
    }

    /// An answer other than success, as a test judges it: a retryable refusal or not.
    struct Refusal: Error, CustomStringConvertible {
        let status: Int
        let retryAfter: String?
        let code: String?
        let text: String

        init(_ response: APIResponse) {
            status = response.status
            retryAfter = response.headers.first { $0.name.lowercased() == "retry-after" }?.value
            code = response.errorCode
            text = response.text
        }

        /// 503 ServiceUnavailable with a Retry-After of whole seconds: what a client retries.
        var isRetryable: Bool { status == 503 && code == "ServiceUnavailable" && retryAfter.flatMap(Int.init).map { $0 > 0 } == true }
        var description: String { "\(status) \(code ?? "-") Retry-After \(retryAfter ?? "none"): \(text.prefix(300))" }
    }

    /// Runs `body` on a fresh pair (synchronous standby when `sync`), then closes the store and removes the pair however
    /// `body` ends. The store is closed before the pair goes: its router must end every pool and task it made.
    static func withNode(sync: Bool = true, _ body: (Node) async throws -> Void) async throws {
        let pair = try await PostgresPair.start(sync: sync)
        var store: SQLDirectoryStore?
        var app: TesseraApp?
        var failure: (any Error)?
        do {
            let opened = try await SQLDirectoryStore.open(pair.url)
            store = opened
            app = try await TesseraApp.make(store: opened, clock: TestClock())
            let tenant = try await TenantProvisioner(directory: app!.directory).create(name: "Contoso", domain: "contoso.test")
            let form = "grant_type=client_credentials&client_id=\(tenant.clientId)&client_secret=\(tenant.clientSecret.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"
            let issued = await app!.handle(APIRequest(method: "POST", path: "/\(tenant.tenantId)/oauth2/v2.0/token", query: [],
                                                      headers: ["content-type": "application/x-www-form-urlencoded"],
                                                      body: Array(form.utf8), baseURL: Harness.base))
            let token = try #require(issued.json["access_token"]?.stringValue, "\(issued.text)")
            try await body(Node(pair: pair, store: opened, app: app!, tenant: tenant, token: token))
        } catch {
            failure = error
        }
        await app?.jobs.idle()
        try? await store?.shutdown()
        await pair.down()
        if let failure { throw failure }
    }

    /// Groups written by several tasks at once until stopped: every acknowledged id, and every refusal.
    final class Writers: Sendable {
        private struct Log {
            var acknowledged: [String] = []
            var refused: [Refusal] = []
            var stop = false
            /// When each writer's request now in flight was sent.
            var sent: [Int: ContinuousClock.Instant] = [:]
        }
        private let log = Mutex(Log())
        private let tasks = Mutex<[Task<Void, Never>]>([])

        init(_ node: Node, count: Int) {
            let started = (0..<count).map { writer in
                Task { [self] in
                    var n = 0
                    while !log.withLock({ $0.stop }) {
                        n += 1
                        log.withLock { $0.sent[writer] = .now }
                        let result = await node.createGroup("w\(writer)n\(n)")
                        log.withLock { $0.sent[writer] = nil }
                        switch result {
                        case .success(let id): log.withLock { $0.acknowledged.append(id) }
                        case .failure(let refusal):
                            log.withLock { $0.refused.append(refusal) }
                            // A client told to retry waits a little (not the whole Retry-After: the test measures recovery).
                            try? await Task.sleep(for: .milliseconds(50))
                        }
                    }
                }
            }
            tasks.withLock { $0 = started }
        }

        var acknowledged: [String] { log.withLock { $0.acknowledged } }
        var refused: [Refusal] { log.withLock { $0.refused } }

        /// Returns once `count` more writes than now have been acknowledged, or `within` has passed; how long it took.
        func waitForMore(_ count: Int, within limit: Duration) async -> Duration? {
            let start = ContinuousClock.now
            let target = acknowledged.count + count
            while ContinuousClock.now - start < limit {
                if acknowledged.count >= target { return ContinuousClock.now - start }
                try? await Task.sleep(for: .milliseconds(20))
            }
            return nil
        }

        /// How long each request still in flight has been waiting for its answer.
        var inFlight: [Duration] { log.withLock { $0.sent.values.map { ContinuousClock.now - $0 } } }

        /// Stops the writers once their requests in flight are answered; a request unanswered for `limit` fails the
        /// test (a hang) rather than hanging it.
        func stop(within limit: Duration = .seconds(60)) async {
            log.withLock { $0.stop = true }
            let all = tasks.withLock { $0 }
            // Deadline.within does not wait for work that outlasts it: a hung request fails the test instead of hanging it.
            let finished = (try? await Deadline.within(limit) {
                for task in all { await task.value }
                return true
            }) ?? nil
            #expect(finished == true, "writers' requests unanswered after \(limit): in flight for \(inFlight)")
        }
    }

    /// Fails the test for every refusal that is not a retryable 503.
    static func expectOnlyRetryable(_ refusals: [Refusal], _ context: String) {
        let wrong = refusals.filter { !$0.isRetryable }
        #expect(wrong.isEmpty, "\(context): \(wrong.count) answers were neither success nor a retryable 503: \(wrong.prefix(3))")
    }

    /// Fails the test for every acknowledged group the node cannot read now.
    static func expectAllPresent(_ node: Node, _ ids: [String]) async throws {
        let rows = try await node.store.backend.withReadSession { session in
            try await session.execute("SELECT id FROM objects WHERE tenant = ? AND deleted_at IS NULL", [.text(node.tenant.tenantId)])
        }
        let stored = Set(rows.compactMap { row -> String? in
            if case .text(let id) = row.first { return id }
            return nil
        })
        let lost = ids.filter { !stored.contains($0) }
        #expect(lost.isEmpty, "\(lost.count) of \(ids.count) acknowledged writes were lost: \(lost.prefix(5))")
        // And through Graph, as a client would look.
        for id in ids.suffix(5) {
            let read = await node.graph("GET", "groups/\(id)")
            #expect(read.status == 200 && read.json["id"]?.stringValue == id, "\(read.text)")
        }
    }

    /// Stops the primary under load, promotes the standby and judges what the writers saw.
    static func failOver(_ node: Node, writers: Writers) async throws {
        #expect(await writers.waitForMore(20, within: .seconds(60)) != nil, "no writes before the failover: \(writers.refused.prefix(3))")
        try await node.pair.stopPrimary()
        // Requests meet the dead primary for a moment: some are refused (retryably) before the standby is promoted.
        try? await Task.sleep(for: .milliseconds(300))
        try await node.pair.promote()
        let resumed = await writers.waitForMore(5, within: recovery)
        #expect(resumed != nil, "writes did not resume within \(recovery) of the promotion: last refusals \(writers.refused.suffix(3)), in flight for \(writers.inFlight)")
    }

    /// Reads of acknowledged groups by several tasks at once until stopped: an answer is the group itself or a retryable
    /// 503, never a 404 or a 500 (a wrong answer).
    final class Readers: Sendable {
        private let wrong = Mutex<[String]>([])
        private let counts = Mutex((ok: 0, refused: 0))
        private let stopFlag = Mutex(false)
        private let tasks = Mutex<[Task<Void, Never>]>([])

        init(_ node: Node, of writers: Writers, count: Int) {
            let started = (0..<count).map { reader in
                Task { [self] in
                    var n = reader
                    while !stopFlag.withLock({ $0 }) {
                        let known = writers.acknowledged
                        guard !known.isEmpty else {
                            try? await Task.sleep(for: .milliseconds(20))
                            continue
                        }
                        n += 7
                        let id = known[n % known.count]
                        let response = await node.graph("GET", "groups/\(id)")
                        if response.status == 200, response.json["id"]?.stringValue == id {
                            counts.withLock { $0.ok += 1 }
                        } else if Refusal(response).isRetryable {
                            counts.withLock { $0.refused += 1 }
                            try? await Task.sleep(for: .milliseconds(50))
                        } else {
                            wrong.withLock { $0.append("\(id): \(Refusal(response))") }
                        }
                    }
                }
            }
            tasks.withLock { $0 = started }
        }

        func stop() async -> (ok: Int, refused: Int, wrong: [String]) {
            stopFlag.withLock { $0 = true }
            let all = tasks.withLock { $0 }
            let finished = (try? await Deadline.within(.seconds(60)) {
                for task in all { await task.value }
                return true
            }) ?? nil
            #expect(finished == true, "readers' requests unanswered after 60 s")
            let (ok, refused) = counts.withLock { ($0.ok, $0.refused) }
            return (ok, refused, wrong.withLock { $0 })
        }
    }

    @Test("the primary dies under writes and reads and the standby is promoted: no acknowledged write is lost, every refusal is a retryable 503, reads never answer wrong, writes resume without a restart")
    func promotionUnderLoad() async throws {
        try await Self.withNode(sync: true) { node in
            let writers = Writers(node, count: 4)
            let readers = Readers(node, of: writers, count: 2)
            try await Self.failOver(node, writers: writers)
            await writers.stop()
            let reads = await readers.stop()
            Self.expectOnlyRetryable(writers.refused, "writes")
            #expect(reads.wrong.isEmpty, "reads answered wrong: \(reads.wrong.prefix(3))")
            #expect(reads.ok > 0)
            try await Self.expectAllPresent(node, writers.acknowledged)
            // The store now writes to the promoted standby.
            let port = node.pair.standbyPort
            #expect(try await node.pair.psql(port: port, "SELECT pg_is_in_recovery()") == "f")
        }
    }

    @Test("a dead primary and no promotion: every request is answered promptly with a retryable 503 and /readyz is unready; no 500, no hang")
    func noPromotion() async throws {
        try await Self.withNode(sync: false) { node in
            #expect(await node.graph("GET", "groups").status == 200)
            try await node.pair.stopPrimary()
            let requests: [(String, String, JSONValue?)] = [
                ("GET", "groups", nil), ("GET", "users", nil),
                ("POST", "groups", ["displayName": "g", "mailEnabled": false, "securityEnabled": true, "mailNickname": "g"]),
            ]
            for round in 0..<2 {
                for (method, path, json) in requests {
                    let start = ContinuousClock.now
                    let response = await node.graph(method, path, json: json)
                    let took = ContinuousClock.now - start
                    #expect(Refusal(response).isRetryable, "round \(round) \(method) \(path): \(Refusal(response))")
                    #expect(Refusal(response).retryAfter == String(TesseraApp.unavailableRetryAfter))
                    // The router's failover wait is 2 s; the bound tells an answer from a hang on a loaded machine.
                    #expect(took < .seconds(30), "\(method) \(path) took \(took)")
                }
            }
            let ready = await node.app.handle(APIRequest(method: "GET", path: "/readyz", query: [], headers: [:], body: [], baseURL: Harness.base))
            #expect(ready.status == 503 && Refusal(ready).retryAfter != nil, "\(ready.text)")
            // And once the standby is promoted, the same node serves again.
            try await node.pair.promote()
            var served = false
            let start = ContinuousClock.now
            while !served, ContinuousClock.now - start < Self.recovery {
                served = await node.graph("GET", "groups").status == 200
                if !served { try? await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(served, "not serving again within \(Self.recovery) of the promotion")
        }
    }

    @Test("a create whose commit waits for a lost synchronous standby when the primary dies is not acknowledged: PostgreSQL answers a statement outside a transaction block before committing it, and sends that answer when it is killed")
    func commitWaitingForStandby() async throws {
        try await Self.withNode(sync: true) { node in
            if case .failure(let refusal) = await node.createGroup("before") { Issue.record("\(refusal)") }
            // With the synchronous standby gone, every commit on the primary waits for it.
            try await node.pair.stopStandby()
            let create = Task { await node.createGroup("waiting") }
            var waiting = false
            let start = ContinuousClock.now
            while !waiting, ContinuousClock.now - start < .seconds(30) {
                waiting = try await node.pair.psql(port: node.pair.primaryPort,
                                                  "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'") != "0"
                if !waiting { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(waiting, "no commit waited for the standby")
            // Killed, the server flushes what it had buffered for the client (the statement's CommandComplete) with its
            // goodbye: a client that took that for the commit would acknowledge a write that only the dead server has.
            try await node.pair.stopPrimary()
            let answer = await create.value
            switch answer {
            case .success(let id): Issue.record("acknowledged \(id), which was never on the standby")
            case .failure(let refusal):
                #expect(refusal.isRetryable, "\(refusal)")
                #expect(refusal.text.contains("may or may not have been saved"), "\(refusal)")
            }
        }
    }

    @Test("two failovers in a row in one process: the node follows the primary to the standby and back after the old primary rejoins, losing nothing acknowledged")
    func thereAndBack() async throws {
        try await Self.withNode(sync: true) { node in
            let writers = Writers(node, count: 3)
            try await Self.failOver(node, writers: writers)
            try await node.pair.rejoin()
            try await Self.failOver(node, writers: writers)
            await writers.stop()
            Self.expectOnlyRetryable(writers.refused, "writes")
            try await Self.expectAllPresent(node, writers.acknowledged)
            #expect(try await node.pair.psql(port: node.pair.primaryPort, "SELECT pg_is_in_recovery()") == "f")
        }
    }
}
