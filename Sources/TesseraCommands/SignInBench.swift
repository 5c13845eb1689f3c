import ArgumentParser
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Server
import Store
import TesseraCore
import WebAuthn

/// Complete passkey sign-ins per second over HTTP on SQLite or PostgreSQL — options, assertion, authorize, token — next to the
/// in-process WebAuthn verify rate and the same sign-in without the socket, measured in one run, with the median and
/// p99 of each step, so the report can say what the time goes to.
struct SignInBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signin", abstract: "Passkey sign-ins per second over HTTP vs the in-process verify rate.")
    @Option(help: "Seconds per measurement.") var seconds: Double = 5
    @Option(help: "Concurrent browsers (connections), each signing its own user in again and again.") var concurrency: Int = 4
    @Option(help: "Rounds; medians are reported.") var rounds: Int = 3
    @Option(help: "Conditional Access policies to install (none blocking these users); each round then measures sign-ins with them disabled and enabled.")
    var policies: Int = 0
    @Option(help: "A postgres:// URL to sign in against PostgreSQL (a tenant of its own is created there); SQLite in a temporary folder when omitted.")
    var database: String?
    @Option(help: "Where the simulated browsers run: process (a process of their own, so this one's CPU is the server's) or in-process (beside the server, as before).")
    var client: BrowsersPlace = .process

    enum BrowsersPlace: String, ExpressibleByArgument, Sendable {
        case process
        case inProcess = "in-process"
    }

    func run() async throws {
        // The server logs as `serve` does by default (a text line a request through TextLogHandler), not through
        // swift-log's StreamLogHandler, which a process that never sets up logging gets; to standard error, where the
        // default handler wrote, so the report on standard output stays readable.
        LoggingSystem.bootstrap { label in TextLogHandler(label: label, level: .info, write: TextLogHandler.standardError) }
        let port = try Self.freePort()
        let (folder, store, app, tenant) = try await Benchmarks.temporaryTenant(
            database: database, network: NetworkPolicy(publicURLs: NetworkPolicy.loopback(scheme: "http", host: "127.0.0.1", port: port)))
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let base = "http://localhost:\(port)"
        // Every simulated browser connects from 127.0.0.1, so the token endpoint's per-address limit (200/s) would
        // measure itself, not the sign-in: it is off here.
        var limits = ServerLimits()
        limits.tokenRequestsPerSecond = 0
        let server = Task { [limits] in try await TesseraServer.run(app: app, host: "127.0.0.1", port: port, tls: nil, limits: limits) }
        defer { server.cancel() }
        try await Self.waitForServer(port: port)

        let setup = try await Setup.make(app: app, tenant: tenant, base: base, users: concurrency)
        say("setup: \(concurrency) users with a software P-256 passkey each; web app \(setup.clientID)")
        // One sign-in, checked end to end, before anything is timed.
        _ = try await HTTPConnection.with(port: port) { try await setup.signIn(user: setup.users[0], over: $0) }
        let conditionalAccess = policies > 0
            ? try await ConditionalAccessLoad.install(policies: policies, app: app, tenant: tenant, host: String(base.dropFirst("http://".count)), setup: setup)
            : nil
        if let conditionalAccess {
            say("setup: \(conditionalAccess.policyIDs.count) Conditional Access policies (disabled until measured), \(conditionalAccess.locations) named locations, each user in \(ConditionalAccessBenchTenant.groupsPerUser) of \(conditionalAccess.groups) groups")
            try await conditionalAccess.set(enabled: true)
            _ = try await HTTPConnection.with(port: port) { try await setup.signIn(user: setup.users[0], over: $0) }
            try await conditionalAccess.set(enabled: false)
        }
        let backend = store.isPostgres ? "PostgreSQL" : "SQLite"
        let browsers = client == .process
            ? try await BrowsersProcess(plan: BrowserPlan(setup: setup, port: port, seconds: seconds, concurrency: concurrency)) : nil
        defer { browsers?.finish() }
        say(browsers == nil ? "browsers: in this process (its CPU is the server's and the browsers')"
                            : "browsers: in a process of their own (this process's CPU is the server's)")
        func cpu() -> Double { TrafficBench.processorSeconds(children: false) }
        var withPolicies: [(http: Double, inProcess: Double)] = []

        var rows: [Round] = []
        for round in 1...max(1, rounds) {
            let verify = try await Benchmarks.measure(seconds: min(seconds, 2), concurrency: concurrency) {
                guard setup.verifyOnce() else { throw ValidationError("in-process verification failed") }
            }
            let http = try await measureHTTP(setup: setup, port: port, browsers: browsers)
            // CPU an operation: the process's CPU over the measurement ÷ (its rate × its wall time).
            var before = cpu(), started = ContinuousClock.now
            let local = try await Benchmarks.measure(seconds: seconds, concurrency: concurrency) {
                try await setup.signIn(user: setup.users[Int.random(in: 0..<setup.users.count)], over: InProcess(app: app, host: "localhost:\(port)"))
            }
            let localSignIns = max(1, local * (ContinuousClock.now - started).seconds)
            let localCPU = cpu() - before
            before = cpu()
            started = ContinuousClock.now
            let sign = try await Benchmarks.measure(seconds: min(seconds, 2), concurrency: concurrency) { try app.signOnce() }
            let signatures = max(1, sign * (ContinuousClock.now - started).seconds)
            let signCPU = cpu() - before
            // One write transaction of the smallest kind (a single-use key), as each step's writes are.
            let tenantID = tenant.tenantId
            let commits = try await Benchmarks.measure(seconds: min(seconds, 2), concurrency: concurrency) {
                let key = "bench:" + Identifier.make()
                _ = try await store.write { tx in try await tx.consumeOnce(tenant: tenantID, key: key, expiresAt: "2999-01-01T00:00:00Z", now: "2000-01-01T00:00:00Z") }
            }
            let row = Round(verify: verify, http: http.rate, inProcess: local, rs256: sign, commits: commits, steps: http.steps, total: http.total,
                            cpu: .init(signIn: http.serverCPU / Double(max(1, http.signIns)) * 1000,
                                       browsers: http.browsersCPU.map { $0 / Double(max(1, http.signIns)) * 1000 },
                                       inProcess: localCPU / localSignIns * 1000, signature: signCPU / signatures * 1000))
            rows.append(row)
            say(String(format: "round %d: sign-ins over HTTP %.0f/s (median %.2f ms, p99 %.2f ms); the same in process %.0f/s; WebAuthn verify %.0f/s; RS256 signatures %.0f/s; %@ write transactions %.0f/s",
                       round, row.http, row.total.median, row.total.p99, row.inProcess, row.verify, row.rs256, backend as NSString, row.commits))
            say(String(format: "  CPU: %.2f ms a sign-in over HTTP in this process (%@); %.2f ms a sign-in in process (no socket); %.3f ms an RS256 signature; 2 × a signature ÷ a sign-in over HTTP %.3f; sign-ins ÷ (RS256/s ÷ 2) %.3f",
                       row.cpu.signIn, (row.cpu.browsers.map { String(format: "the server alone; the browsers' process %.2f ms", $0) } ?? "server and browsers") as NSString,
                       row.cpu.inProcess, row.cpu.signature, row.cpu.ratio, row.http / (row.rs256 / 2)))
            for (name, step) in zip(Setup.stepNames, row.steps) {
                say(String(format: "  %-28@ median %.2f ms, p99 %.2f ms", name as NSString, step.median, step.p99))
            }
            if let conditionalAccess {
                // The same sign-ins with every policy enabled, right after the ones with every policy disabled.
                try await conditionalAccess.set(enabled: true)
                // One sign-in first, so the engine is compiled from the changed policies before anything is timed.
                _ = try await HTTPConnection.with(port: port) { try await setup.signIn(user: setup.users[0], over: $0) }
                let http = try await measureHTTP(setup: setup, port: port, browsers: browsers)
                let local = try await Benchmarks.measure(seconds: seconds, concurrency: concurrency) {
                    try await setup.signIn(user: setup.users[Int.random(in: 0..<setup.users.count)], over: InProcess(app: app, host: "localhost:\(port)"))
                }
                try await conditionalAccess.set(enabled: false)
                withPolicies.append((http.rate, local))
                say(String(format: "  with %d policies enabled: sign-ins over HTTP %.0f/s (%.3f of disabled), in process %.0f/s (%.3f of disabled)",
                           policies, http.rate, http.rate / row.http, local, local / row.inProcess))
                for (name, (on, off)) in zip(Setup.stepNames, zip(http.steps, row.steps)) {
                    say(String(format: "    %-28@ median %.2f ms (disabled %.2f ms)", name as NSString, on.median, off.median))
                }
            }
        }
        func median(_ values: [Double]) -> Double {
            let s = values.sorted()
            return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
        }
        say("")
        say("| measure (\(concurrency) concurrent, median of \(rows.count) rounds) | value |")
        say("|---|---|")
        say(String(format: "| complete passkey sign-ins over HTTP, %@ | %.0f/s |", backend as NSString, median(rows.map(\.http))))
        say(String(format: "| sign-in latency over HTTP, median / p99 | %.2f ms / %.2f ms |", median(rows.map(\.total.median)), median(rows.map(\.total.p99))))
        say(String(format: "| the same four requests in process (no socket) | %.0f/s |", median(rows.map(\.inProcess))))
        say(String(format: "| in-process WebAuthn ES256 verify | %.0f/s |", median(rows.map(\.verify))))
        say(String(format: "| sign-ins / verify | %.3f |", median(rows.map { $0.http / $0.verify })))
        say(String(format: "| RS256 signatures (tokens) | %.0f/s |", median(rows.map(\.rs256))))
        // Two tokens a sign-in (ID and access): half the signing rate is what a sign-in could reach if signing were all it did.
        say(String(format: "| sign-ins / (RS256 signatures / 2), per round | %.3f |", median(rows.map { $0.http / ($0.rs256 / 2) })))
        say(String(format: "| %@ write transactions (one single-use key each) | %.0f/s |", backend as NSString, median(rows.map(\.commits))))
        for (index, name) in Setup.stepNames.enumerated() {
            say(String(format: "| step: %@, median / p99 | %.2f ms / %.2f ms |", name as NSString,
                       median(rows.map { $0.steps[index].median }), median(rows.map { $0.steps[index].p99 })))
        }
        let place = browsers == nil ? "server and browsers in one process" : "the server alone, browsers in a process of their own"
        say(String(format: "| CPU a sign-in over HTTP (%@) | %.2f ms |", place as NSString, median(rows.map(\.cpu.signIn))))
        if browsers != nil { say(String(format: "| CPU a sign-in in the browsers' process | %.2f ms |", median(rows.map { $0.cpu.browsers ?? 0 }))) }
        say(String(format: "| CPU a sign-in in process (no socket) | %.2f ms |", median(rows.map(\.cpu.inProcess))))
        say(String(format: "| CPU an RS256 signature | %.3f ms |", median(rows.map(\.cpu.signature))))
        say(String(format: "| CPU ratio: 2 × a signature ÷ a sign-in over HTTP (%@), per round | %.3f |", place as NSString, median(rows.map(\.cpu.ratio))))
        if !withPolicies.isEmpty {
            say(String(format: "| complete passkey sign-ins over HTTP, %d Conditional Access policies enabled | %.0f/s |", policies, median(withPolicies.map(\.http))))
            say(String(format: "| the same in process, policies enabled | %.0f/s |", median(withPolicies.map(\.inProcess))))
            say(String(format: "| sign-ins over HTTP, enabled / disabled (per round) | %.3f |", median(zip(withPolicies, rows).map { $0.http / $1.http })))
            say(String(format: "| in process, enabled / disabled (per round) | %.3f |", median(zip(withPolicies, rows).map { $0.inProcess / $1.inProcess })))
        }
        server.cancel()
        try await store.shutdown()
    }

    struct Round {
        let verify, http, inProcess, rs256, commits: Double
        let steps: [Percentiles]
        let total: Percentiles
        let cpu: CPU
    }

    /// Milliseconds of this process's utime + stime: a sign-in over HTTP, the browsers' process's a sign-in (when they run
    /// there), a sign-in in process, an RS256 signature.
    struct CPU {
        let signIn: Double
        let browsers: Double?
        let inProcess: Double
        let signature: Double
        /// What a sign-in could cost if its two signatures were all it did, over what it costs.
        var ratio: Double { signIn > 0 ? 2 * signature / signIn : 0 }
    }

    struct Percentiles: Codable, Equatable, Sendable {
        let median, p99: Double
        init(median: Double, p99: Double) {
            self.median = median
            self.p99 = p99
        }
        init(_ samples: [Double]) {
            let s = samples.sorted()
            median = s.isEmpty ? 0 : s[s.count / 2]
            p99 = s.isEmpty ? 0 : s[min(s.count - 1, Int(Double(s.count) * 0.99))]
        }
    }

    /// Sign-ins per second over `concurrency` keep-alive connections, with each step's latency, run by `browsers` (or in
    /// this process), and this process's CPU over the window.
    func measureHTTP(setup: Setup, port: Int, browsers: BrowsersProcess?) async throws
        -> (rate: Double, steps: [Percentiles], total: Percentiles, signIns: Int, serverCPU: Double, browsersCPU: Double?) {
        let before = TrafficBench.processorSeconds(children: false)
        let window = if let browsers { try await browsers.run() } else {
            try await Self.window(setup: setup, port: port, seconds: seconds, concurrency: concurrency)
        }
        let serverCPU = TrafficBench.processorSeconds(children: false) - before
        return (window.rate, window.steps, window.total, window.signIns, serverCPU, window.browsersCPU)
    }

    /// One window of sign-ins: one keep-alive connection for each of the first `concurrency` users, each signing its
    /// user in again and again for `seconds`.
    static func window(setup: Setup, port: Int, seconds: Double, concurrency: Int) async throws -> BrowserWindow {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        let start = ContinuousClock.now
        let results = try await withThrowingTaskGroup(of: [[Double]].self) { group in
            for user in setup.users.prefix(concurrency) {
                group.addTask {
                    try await HTTPConnection.with(port: port) { connection in
                        var samples: [[Double]] = []
                        while ContinuousClock.now < deadline {
                            samples.append(try await setup.signIn(user: user, over: connection))
                        }
                        return samples
                    }
                }
            }
            return try await group.reduce(into: [[Double]]()) { $0 += $1 }
        }
        let elapsed = (ContinuousClock.now - start).seconds
        let steps = (0..<Setup.stepNames.count).map { i in Percentiles(results.map { $0[i] }) }
        return BrowserWindow(signIns: results.count, seconds: elapsed, steps: steps, total: Percentiles(results.map { $0.reduce(0, +) }))
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw ValidationError("no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func waitForServer(port: Int) async throws {
        for _ in 0..<200 {
            if (try? await HTTPConnection.with(port: port) { _ in true }) == true { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ValidationError("the server did not start")
    }
}

/// What one sign-in needs: the tenant, a web app that redeems codes with a secret, and users with software passkeys.
struct Setup: Sendable {
    static let stepNames = ["passkey/options", "passkey (verify, session)", "authorize (code)", "token (code → tokens)"]

    struct User: Sendable {
        let id: String
        let key: P256.Signing.PrivateKey
        let credentialID: [UInt8]
    }

    let tenant: String
    let origin: String
    let rpIdHash: [UInt8]
    let clientID: String
    let clientSecret: String
    var redirectURI = "http://localhost/callback"
    let users: [User]
    let verify: @Sendable () -> Bool

    func verifyOnce() -> Bool { verify() }

    static func make(app: TesseraApp, tenant: ProvisionedTenant, base: String, users count: Int) async throws -> Setup {
        let host = String(base.dropFirst("http://".count))
        let local = InProcess(app: app, host: host)
        let form = "grant_type=client_credentials&client_id=\(tenant.clientId)&client_secret=\(Self.encode(tenant.clientSecret))&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"
        let token = try await local.send("POST", "/\(tenant.tenantId)/oauth2/v2.0/token", query: "", headers: ["content-type": "application/x-www-form-urlencoded"],
                                         body: Array(form.utf8)).json()["access_token"]?.stringValue ?? ""
        let auth = ["authorization": "Bearer \(token)", "content-type": "application/json"]
        func graph(_ method: String, _ path: String, _ body: JSONValue?) async throws -> JSONValue {
            let response = try await local.send(method, "/v1.0/" + path, query: "", headers: auth, body: body?.serializedBytes ?? [])
            guard response.status < 300 else { throw ValidationError("\(method) \(path): \(response.status) \(String(decoding: response.body, as: UTF8.self))") }
            return try response.json()
        }
        let application = try await graph("POST", "applications", ["displayName": "Bench web app", "web": ["redirectUris": ["http://localhost/callback"]]])
        let appID = application["appId"]?.stringValue ?? ""
        let secret = try await graph("POST", "applications/\(application["id"]?.stringValue ?? "")/addPassword", [:])["secretText"]?.stringValue ?? ""
        let servicePrincipal = try await graph("POST", "servicePrincipals", ["appId": .string(appID)])
        // An administrator's consent for everyone, so the sign-ins get a code rather than the consent page.
        let graphSP = try await graph("GET", "servicePrincipals", nil)["value"]?.arrayValue?
            .first { $0["appId"]?.stringValue == GraphPermissions.graphAppId }?["id"]?.stringValue ?? ""
        _ = try await graph("POST", "oauth2PermissionGrants", ["clientId": servicePrincipal["id"] ?? .null, "consentType": "AllPrincipals",
                                                              "resourceId": .string(graphSP), "scope": "openid profile offline_access User.Read"])
        let origin = base
        let rpIdHash = Array(SHA256.hash(data: Array("localhost".utf8)))
        var users: [User] = []
        for i in 0..<count {
            let user = try await graph("POST", "users", [
                "accountEnabled": true, "displayName": .string("Bench user \(i)"), "mailNickname": .string("bench\(i)"),
                "userPrincipalName": .string("bench\(i)@\(tenant.domain)"), "passwordProfile": ["password": "Xy!9Xy!9Xy!9"]])
            let id = user["id"]?.stringValue ?? ""
            let key = P256.Signing.PrivateKey()
            let credentialID = (0..<32).map { _ in UInt8.random(in: 0...255) }
            let options = try await graph("GET", "users/\(id)/authentication/fido2Methods/creationOptions", nil)
            let challenge = options["publicKey"]?["challenge"]?.stringValue ?? ""
            let cose = CBOREncoder.encode(.map([
                .init(.int(1), .int(2)), .init(.int(3), .int(-7)), .init(.int(-1), .int(1)),
                .init(.int(-2), .bytes(Array(key.publicKey.rawRepresentation.prefix(32)))),
                .init(.int(-3), .bytes(Array(key.publicKey.rawRepresentation.suffix(32)))),
            ]))
            let authData = rpIdHash + [0x45, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 16)
                + [UInt8(credentialID.count >> 8), UInt8(credentialID.count & 0xff)] + credentialID + cose
            let attestation = CBOREncoder.encode(.map([
                .init(.text("fmt"), .text("none")), .init(.text("attStmt"), .map([])), .init(.text("authData"), .bytes(authData)),
            ]))
            let clientData = #"{"type":"webauthn.create","challenge":"\#(challenge)","origin":"\#(origin)","crossOrigin":false}"#
            let credential: JSONValue = [
                "id": .string(WebAuthn.Base64URL.encode(credentialID)), "rawId": .string(WebAuthn.Base64URL.encode(credentialID)), "type": "public-key",
                "response": ["clientDataJSON": .string(WebAuthn.Base64URL.encode(Array(clientData.utf8))),
                             "attestationObject": .string(WebAuthn.Base64URL.encode(attestation))],
                "clientExtensionResults": [:],
            ]
            _ = try await graph("POST", "users/\(id)/authentication/fido2Methods", ["displayName": "Bench key", "publicKeyCredential": credential])
            users.append(User(id: id, key: key, credentialID: credentialID))
        }
        // The in-process verify rate: the verifier alone on one of these assertions.
        let first = users[0]
        let challenge = (0..<32).map { _ in UInt8.random(in: 0...255) }
        let assertion = Self.assertion(first, rpIdHash: rpIdHash, origin: origin, challenge: WebAuthn.Base64URL.encode(challenge))
        let response = try AuthenticationResponse(json: assertion.serializedBytes)
        let party = RelyingParty(id: "localhost", origins: [origin])
        let publicKey = try CredentialPublicKey(cose: CBOREncoder.encode(.map([
            .init(.int(1), .int(2)), .init(.int(3), .int(-7)), .init(.int(-1), .int(1)),
            .init(.int(-2), .bytes(Array(first.key.publicKey.rawRepresentation.prefix(32)))),
            .init(.int(-3), .bytes(Array(first.key.publicKey.rawRepresentation.suffix(32)))),
        ])))
        let stored = StoredCredential(id: first.credentialID, publicKey: publicKey, signCount: 0, backupEligible: false, userHandle: Array(first.id.utf8))
        let verify: @Sendable () -> Bool = {
            (try? party.verifyAuthentication(response, challenge: challenge, credential: stored, requireUserVerification: true,
                                             requireUserHandle: true)) != nil
        }
        guard verify() else { throw ValidationError("the software assertion does not verify") }
        return Setup(tenant: tenant.tenantId, origin: origin, rpIdHash: rpIdHash, clientID: appID, clientSecret: secret, users: users, verify: verify)
    }

    /// `navigator.credentials.get()`'s JSON for `user`: user present and verified, counter 0 (as synced passkeys).
    static func assertion(_ user: User, rpIdHash: [UInt8], origin: String, challenge: String) -> JSONValue {
        let authData = rpIdHash + [0x05, 0, 0, 0, 0]
        let clientData = Array(#"{"type":"webauthn.get","challenge":"\#(challenge)","origin":"\#(origin)","crossOrigin":false}"#.utf8)
        let signature = (try? user.key.signature(for: authData + Array(SHA256.hash(data: clientData)))).map { Array($0.derRepresentation) } ?? []
        return [
            "id": .string(WebAuthn.Base64URL.encode(user.credentialID)), "rawId": .string(WebAuthn.Base64URL.encode(user.credentialID)),
            "type": "public-key", "authenticatorAttachment": "platform", "clientExtensionResults": [:],
            "response": ["clientDataJSON": .string(WebAuthn.Base64URL.encode(clientData)), "authenticatorData": .string(WebAuthn.Base64URL.encode(authData)),
                         "signature": .string(WebAuthn.Base64URL.encode(signature)), "userHandle": .string(WebAuthn.Base64URL.encode(Array(user.id.utf8)))],
        ]
    }

    static func encode(_ text: String) -> String { text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text }

    /// One complete sign-in as a browser and a web app's back end would make it; returns each step's milliseconds.
    @discardableResult
    func signIn(user: User, over client: some BenchClient) async throws -> [Double] {
        var timings: [Double] = []
        var clock = ContinuousClock.now
        func lap() {
            let now = ContinuousClock.now
            timings.append((now - clock).seconds * 1000)
            clock = now
        }
        let json = ["content-type": "application/json", "origin": origin]
        let options = try await client.send("POST", "/\(tenant)/login/passkey/options", query: "", headers: json, body: Array("{}".utf8))
        guard options.status == 200, let challenge = try options.json()["challenge"]?.stringValue else { throw ValidationError("options: \(options.status)") }
        lap()
        let credential = Self.assertion(user, rpIdHash: rpIdHash, origin: origin, challenge: challenge)
        let finished = try await client.send("POST", "/\(tenant)/login/passkey", query: "", headers: json, body: credential.serializedBytes)
        guard finished.status == 200, let cookie = finished.header("set-cookie")?.split(separator: ";").first.map(String.init) else {
            throw ValidationError("sign-in: \(finished.status) \(String(decoding: finished.body, as: UTF8.self))")
        }
        lap()
        let verifier = WebAuthn.Base64URL.encode((0..<32).map { _ in UInt8.random(in: 0...255) })
        let challengeS256 = WebAuthn.Base64URL.encode(Array(SHA256.hash(data: Array(verifier.utf8))))
        let query = "client_id=\(clientID)&response_type=code&redirect_uri=\(Self.encode(redirectURI))&scope=openid%20profile%20offline_access%20User.Read"
            + "&state=s&nonce=n&code_challenge=\(challengeS256)&code_challenge_method=S256"
        let authorized = try await client.send("GET", "/\(tenant)/oauth2/v2.0/authorize", query: query, headers: ["cookie": cookie], body: [])
        guard authorized.status == 302, let location = authorized.header("location"),
              let code = URLComponents(string: location)?.queryItems?.first(where: { $0.name == "code" })?.value
        else { throw ValidationError("authorize: \(authorized.status) \(authorized.header("location") ?? "")") }
        lap()
        let form = "grant_type=authorization_code&client_id=\(clientID)&client_secret=\(Self.encode(clientSecret))&code=\(Self.encode(code))"
            + "&redirect_uri=\(Self.encode(redirectURI))&code_verifier=\(verifier)&scope=openid%20profile%20offline_access%20User.Read"
        let tokens = try await client.send("POST", "/\(tenant)/oauth2/v2.0/token", query: "", headers: ["content-type": "application/x-www-form-urlencoded"],
                                           body: Array(form.utf8))
        guard tokens.status == 200, try tokens.json()["access_token"]?.stringValue != nil, try tokens.json()["id_token"] != nil else {
            throw ValidationError("token: \(tokens.status) \(String(decoding: tokens.body, as: UTF8.self))")
        }
        lap()
        return timings
    }
}

/// An answer to one benchmark request.
struct BenchResponse {
    let status: Int
    let headers: [(String, String)]
    let body: [UInt8]
    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name }?.1 }
    func json() throws -> JSONValue { try JSONParser.parse(body) }
}

protocol BenchClient {
    func send(_ method: String, _ path: String, query: String, headers: [String: String], body: [UInt8]) async throws -> BenchResponse
}

/// The same requests straight into `TesseraApp.handle`: what the sign-in costs without HTTP.
struct InProcess: BenchClient {
    let app: TesseraApp
    let host: String
    func send(_ method: String, _ path: String, query: String, headers: [String: String], body: [UInt8]) async throws -> BenchResponse {
        let request = APIRequest(method: method, path: path, query: APIRequest.parseForm(query), headers: headers, body: body, baseURL: "http://\(host)")
        let response = await app.handle(request)
        return BenchResponse(status: response.status, headers: response.headers.map { ($0.name, $0.value) }, body: response.body)
    }
}

/// A keep-alive HTTP/1.1 connection over SwiftNIO: one request at a time, as a browser tab's fetches are.
struct HTTPConnection: BenchClient {
    let outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>
    let port: Int
    private let parts: Parts

    /// The response parts, read in order by one request at a time.
    final class Parts: @unchecked Sendable {
        var iterator: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator
        init(_ iterator: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator) { self.iterator = iterator }
    }

    /// Opens a connection, runs `body` with it, and closes it.
    static func with<T: Sendable>(port: Int, _ body: (HTTPConnection) async throws -> T) async throws -> T {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await body(HTTPConnection(outbound: outbound, port: port, parts: Parts(inbound.makeAsyncIterator())))
        }
    }

    func send(_ method: String, _ path: String, query: String, headers: [String: String], body: [UInt8]) async throws -> BenchResponse {
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: path + (query.isEmpty ? "" : "?" + query))
        head.headers.add(name: "host", value: "localhost:\(port)")
        head.headers.add(name: "content-length", value: "\(body.count)")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        try await outbound.write(.head(head))
        if !body.isEmpty { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
        try await outbound.write(.end(nil))
        var status = 0
        var responseHeaders: [(String, String)] = []
        var responseBody: [UInt8] = []
        while let part = try await parts.iterator.next() {
            switch part {
            case .head(let h):
                status = Int(h.status.code)
                responseHeaders = h.headers.map { ($0.name, $0.value) }
            case .body(var buffer):
                responseBody += buffer.readBytes(length: buffer.readableBytes) ?? []
            case .end:
                return BenchResponse(status: status, headers: responseHeaders, body: responseBody)
            }
        }
        throw ValidationError("the connection closed")
    }
}

/// `signin --policies N`: the Conditional Access benchmark's tenant (groups, named locations, N policies) written
/// through Graph as an administrator would, each benchmark user in 50 of the groups, the policies created disabled and
/// switched between disabled and enabled around each measurement. None of them blocks these users: they sign in with
/// a passkey, from the loopback address, with no User-Agent, to an app the policies treat like any other.
struct ConditionalAccessLoad: Sendable {
    let policyIDs: [String]
    let locations: Int
    let groups: Int
    let graph: @Sendable (String, String, JSONValue?) async throws -> JSONValue

    static func install(policies count: Int, app: TesseraApp, tenant: ProvisionedTenant, host: String, setup: Setup) async throws -> ConditionalAccessLoad {
        let local = InProcess(app: app, host: host)
        let form = "grant_type=client_credentials&client_id=\(tenant.clientId)&client_secret=\(Setup.encode(tenant.clientSecret))&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"
        let token = try await local.send("POST", "/\(tenant.tenantId)/oauth2/v2.0/token", query: "", headers: ["content-type": "application/x-www-form-urlencoded"],
                                         body: Array(form.utf8)).json()["access_token"]?.stringValue ?? ""
        let graph: @Sendable (String, String, JSONValue?) async throws -> JSONValue = { method, path, body in
            let response = try await local.send(method, "/v1.0/" + path, query: "", headers: ["authorization": "Bearer \(token)", "content-type": "application/json"],
                                                body: body?.serializedBytes ?? [])
            guard response.status < 300 else { throw ValidationError("\(method) \(path): \(response.status) \(String(decoding: response.body, as: UTF8.self))") }
            return response.status == 204 ? .null : try response.json()
        }
        var groups: [String] = []
        for index in 0..<ConditionalAccessBenchTenant.groupCount {
            let group = try await graph("POST", "groups", ["displayName": .string("Bench group \(index)"), "mailEnabled": false,
                                                           "mailNickname": .string("benchgroup\(index)"), "securityEnabled": true])
            groups.append(group["id"]?.stringValue ?? "")
        }
        // The tenant's administrator is the emergency-access account the blocking policies exclude (as Entra requires).
        let admin = try await graph("GET", "users", nil)["value"]?.arrayValue?
            .first { $0["userPrincipalName"]?.stringValue?.hasPrefix("admin@") == true }?["id"]?.stringValue
        var tenantPlan = ConditionalAccessBenchTenant(seed: 14, groups: groups, apps: [setup.clientID], breakGlass: admin)
        for user in setup.users {
            var memberOf: Set<String> = []
            while memberOf.count < ConditionalAccessBenchTenant.groupsPerUser { memberOf.insert(groups[tenantPlan.random.next(below: groups.count)]) }
            for group in memberOf.sorted() {
                _ = try await graph("POST", "groups/\(group)/members/$ref", ["@odata.id": .string("https://graph.microsoft.com/v1.0/directoryObjects/\(user.id)")])
            }
        }
        var locationIDs: [String] = []
        for body in tenantPlan.locations {
            locationIDs.append(try await graph("POST", "identity/conditionalAccess/namedLocations", body)["id"]?.stringValue ?? "")
        }
        var policyIDs: [String] = []
        for body in tenantPlan.policies(count: count, locationIDs: locationIDs) {
            policyIDs.append(try await graph("POST", "identity/conditionalAccess/policies", body.setting("state", "disabled"))["id"]?.stringValue ?? "")
        }
        return ConditionalAccessLoad(policyIDs: policyIDs, locations: locationIDs.count, groups: groups.count, graph: graph)
    }

    /// Every policy enabled, or every one disabled (the engine is then not consulted at all).
    func set(enabled: Bool) async throws {
        for id in policyIDs {
            _ = try await graph("PATCH", "identity/conditionalAccess/policies/\(id)", ["state": .string(enabled ? "enabled" : "disabled")])
        }
    }
}
