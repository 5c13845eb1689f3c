import Foundation
import Store
import Testing
import TesseraCore
import TesseraTesting
@testable import InternetAccess

/// A tenant on an in-memory store with three users, one of them synced from AD (with a sAMAccountName).
struct ImportFixture {
    let store: SQLDirectoryStore
    let directory: DirectoryService
    let clock: TestClock
    let tenant: String
    let users: UserAttribution

    static func run(_ body: (ImportFixture) async throws -> Void) async throws {
        let store = try await SQLDirectoryStore.open(":memory:")
        try await store.migrate()
        let clock = TestClock()
        let directory = DirectoryService(store: store, clock: clock)
        let tenant = try await TenantProvisioner(directory: directory).create(name: "Contoso", domain: "contoso.test").tenantId
        for (name, sam) in [("alice", nil), ("bob", "bob.smith"), ("carol", "carol")] as [(String, String?)] {
            var body: [String: JSONValue] = ["userPrincipalName": .string("\(name)@contoso.test"), "displayName": .string(name),
                                             "accountEnabled": true, "mailNickname": .string(name)]
            if let sam { body["onPremisesSamAccountName"] = .string(sam) }
            let user = StoredObject(tenant: tenant, id: Identifier.make(), kind: .user, body: body)
            try await store.write { tx in
                try await tx.insert(user)
            }
        }
        let users = try await UserAttribution.load(tenant: tenant, store: store)
        do {
            try await body(ImportFixture(store: store, directory: directory, clock: clock, tenant: tenant, users: users))
        } catch {
            try? await store.shutdown()
            throw error
        }
        try await store.shutdown()
    }

    /// Imports `text` as a log of `format`, through a pipe.
    func importLog(_ text: String, _ format: LogFormat, mapping: CSVMapping? = nil) async throws -> (TrafficImporter.Summary, [Int]) {
        let catalog = try AICatalog.bundled(year: 2026)
        let importer = TrafficImporter(catalog: catalog, tenant: tenant, format: format, mapping: mapping)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-log-\(UUID().uuidString)")
        try Data(text.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let fd = open(file.path, O_RDONLY)
        defer { close(fd) }
        let reported = LinesHeard()
        let summary = try await importer.run(fd: fd, store: store, users: users, now: clock.now) { reported.add($0.line) }
        return (summary, reported.lines)
    }
}

final class LinesHeard: @unchecked Sendable {
    private let lock = NSLock()
    private var heard: [Int] = []
    func add(_ n: Int) { lock.withLock { heard.append(n) } }
    var lines: [Int] { lock.withLock { heard } }
}

/// The same morning's traffic as a Squid proxy and a CEF-speaking firewall log it (the proof).
enum SampleLogs {
    /// 2026-12-06T09:00:00Z onwards (the test clock starts after it).
    static func squid(start: Int) -> String {
        """
        \(start).100    245 10.0.0.5 TCP_TUNNEL/200 5230 CONNECT api.openai.com:443 alice@contoso.test HIER_DIRECT/104.18.7.192 -
        \(start + 60).200   1020 10.0.0.6 TCP_MISS/200 48210 POST http://chat.deepseek.com/api/v0/chat/completion CONTOSO\\bob.smith HIER_DIRECT/1.2.3.4 application/json
        \(start + 61).000     12 10.0.0.6 TCP_MISS/200 900 GET http://www.example.com/ CONTOSO\\bob.smith HIER_DIRECT/93.184.215.14 text/html
        this line is not squid
        \(start + 120).500     80 10.0.0.7 TCP_TUNNEL/200 7000 CONNECT claude.ai:443 carol HIER_DIRECT/160.79.104.10 -
        \(start + 180).000     33 10.0.0.9 TCP_DENIED/403 3900 CONNECT poe.com:443 mallory HIER_NONE/- text/html
        \(start + 181).000     33 10.0.0.9 TCP_MISS/200 12x GET http://poe.com/ mallory HIER_NONE/- text/html

        """
    }

    static func cef(start: Int) -> String {
        let ms = start * 1000
        return """
        <134>Dec  6 09:00:00 fw01 CEF:0|Contoso|Firewall|1.0|web|Allowed|3|rt=\(ms + 100) src=10.0.0.5 dhost=api.openai.com dpt=443 suser=alice@contoso.test out=900 in=5230 act=allow
        <134>Dec  6 09:01:00 fw01 CEF:0|Contoso|Firewall|1.0|web|Allowed|3|rt=\(ms + 60_200) src=10.0.0.6 dhost=chat.deepseek.com request=https://chat.deepseek.com/api/v0/chat/completion requestMethod=POST suser=CONTOSO\\\\bob.smith out=1500 in=48210 act=allow
        <134>Dec  6 09:01:01 fw01 CEF:0|Contoso|Firewall|1.0|web|Allowed|3|rt=\(ms + 61_000) src=10.0.0.6 dhost=www.example.com suser=bob.smith act=allow
        <134>Dec  6 09:01:02 fw01 CEF:0|Contoso|Firewall|1.0|web|Broken
        <134>Dec  6 09:02:00 fw01 CEF:0|Contoso|Firewall|1.0|web|Allowed|3|rt=\(ms + 120_500) src=10.0.0.7 dhost=claude.ai dpt=443 suser=carol in=7000 act=allow
        <134>Dec  6 09:03:00 fw01 CEF:0|Contoso|Firewall|1.0|web|Blocked|3|rt=\(ms + 180_000) src=10.0.0.9 dhost=poe.com dpt=443 suser=mallory act=blocked

        """
    }
}

@Suite("Traffic import")
struct ImportTests {
    static func start(_ f: ImportFixture) -> Int { Int(f.clock.now.timeIntervalSince1970) - 3600 }

    @Test("a Squid log and a CEF log of the same traffic discover the same apps, users and verdicts")
    func squidAndCEFAgree() async throws {
        var found: [[String]] = []
        for format in [LogFormat.squid, .cef] {
            try await ImportFixture.run { f in
                let text = format == .squid ? SampleLogs.squid(start: Self.start(f)) : SampleLogs.cef(start: Self.start(f))
                let (summary, reported) = try await f.importLog(text, format)
                #expect(summary.recorded == 4, "\(format)")
                #expect(summary.attributed == 3, "\(format)")
                #expect(summary.requests == (format == .squid ? 5 : 5), "\(format)")
                #expect(reported == (format == .squid ? [4, 7] : [4]), "\(format)")
                #expect(summary.malformedSamples.first?.line == 4)
                let report = try await DiscoveryReport.build(tenant: f.tenant, store: f.store)
                found.append(report.apps.map { "\($0.appId):\($0.users.sorted().joined(separator: "+")):\($0.blocked)" })
                let records = try await TrafficLog.list(tenant: f.tenant, store: f.store, filter: nil, limit: 10)
                let deepseek = try #require(records.first { $0.body["destinationFQDN"] == "chat.deepseek.com" })
                #expect(deepseek.body["userPrincipalName"] == "bob@contoso.test")
                #expect(deepseek.body["cloudApplicationMetadata"]?["activity"] == "prompt")
                #expect(deepseek.body["cloudApplicationMetadata"]?["cloudApplicationCatalogId"] == "deepseek-chat")
                #expect(deepseek.body["httpMethod"] == "post")
                #expect(deepseek.body["receivedBytes"] == 48210)
                // Records are listed newest first.
                #expect(records.first?.body["destinationFQDN"] == "poe.com")
                #expect(records.first?.body["action"] == "block")
                #expect(records.first?.body["userPrincipalName"] == .null)
                #expect(records.first?.body["cloudApplicationMetadata"]?["loginUser"] == "mallory")
            }
        }
        #expect(found.count == 2)
        #expect(found[0] == found[1])
        // Riskiest first: DeepSeek and Poe (no certifications, training on prompts) before OpenAI's API.
        #expect(found[0].last?.hasPrefix("openai-api") == true || found[0].last?.hasPrefix("anthropic-claude") == true)
        #expect(Set(found[0].map { String($0.split(separator: ":")[0]) }) == ["openai-api", "deepseek-chat", "anthropic-claude", "poe"])
    }

    @Test("requests older than 30 days are not recorded, and records past 30 days are purged")
    func retention() async throws {
        try await ImportFixture.run { f in
            let old = Int(f.clock.now.timeIntervalSince1970) - 31 * 86_400
            let (summary, _) = try await f.importLog(SampleLogs.squid(start: old), .squid)
            #expect(summary.recorded == 0)
            #expect(summary.expired == 4)
            _ = try await f.importLog(SampleLogs.squid(start: Self.start(f)), .squid)
            f.clock.advance(29 * 86_400)
            #expect(try await TrafficLog.purgeExpired(tenant: f.tenant, store: f.store, now: f.clock.now) == 0)
            f.clock.advance(2 * 86_400)
            #expect(try await TrafficLog.purgeExpired(tenant: f.tenant, store: f.store, now: f.clock.now) == 4)
            #expect(try await TrafficLog.list(tenant: f.tenant, store: f.store, filter: nil, limit: 10).isEmpty)
        }
    }

    @Test("the report counts users, requests, bytes, first and last seen and a daily trend; users drill down per app")
    func report() async throws {
        try await ImportFixture.run { f in
            let start = Self.start(f)
            let extra = "\(start + 300).000 5 10.0.0.5 TCP_MISS/200 100 POST http://api.openai.com/v1/chat/completions alice@contoso.test HIER_DIRECT/1.1.1.1 -\n"
            _ = try await f.importLog(SampleLogs.squid(start: start) + extra, .squid)
            let report = try await DiscoveryReport.build(tenant: f.tenant, store: f.store)
            let openAI = try #require(report.apps.first { $0.appId == "openai-api" })
            #expect(openAI.requests == 2)
            #expect(openAI.prompts == 1)
            #expect(openAI.users == ["alice@contoso.test"])
            #expect(openAI.receivedBytes == 5330)
            #expect(openAI.firstSeen == Timestamp.format(Date(timeIntervalSince1970: Double(start))))
            #expect(openAI.lastSeen == Timestamp.format(Date(timeIntervalSince1970: Double(start + 300))))
            #expect(report.daily.reduce(0) { $0 + $1.requests } == 5)
            #expect(report.apps.map(\.riskScore) == report.apps.map(\.riskScore).sorted())
            let users = try await DiscoveryReport.users(of: "openai-api", tenant: f.tenant, store: f.store)
            #expect(users.map(\.user) == ["alice@contoso.test"])
            #expect(users.first?.requests == 2)
            #expect(users.first?.userId != nil)
            let json = report.json
            #expect(json["value"]?.arrayValue?.count == 4)
        }
    }

    @Test("users are matched by UPN or sAMAccountName (alone, DOMAIN\\name, name@other), any case; ambiguous names are not")
    func attribution() {
        let a = UserAttribution.User(id: "1", userPrincipalName: "alice@contoso.test")
        let b = UserAttribution.User(id: "2", userPrincipalName: "bob@contoso.test")
        let c = UserAttribution.User(id: "3", userPrincipalName: "bob2@fabrikam.test")
        let users = UserAttribution(users: [(a, "asmith"), (b, "bob"), (c, "bob")])
        #expect(users.user(named: "ALICE@contoso.test") == a)
        #expect(users.user(named: "asmith") == a)
        #expect(users.user(named: "CONTOSO\\ASmith") == a)
        #expect(users.user(named: "asmith@corp.contoso.local") == a)
        #expect(users.user(named: "bob") == nil)
        #expect(users.user(named: "bob@contoso.test") == b)
        #expect(users.user(named: "nobody") == nil)
    }

    @Test("lines are read across chunk boundaries; a line longer than a chunk is reported and skipped")
    func lineReader() throws {
        let long = String(repeating: "x", count: 100)
        let text = "one\r\ntwo\n\(long)\nthree\nfour"
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        _ = text.withCString { write(fds[1], $0, strlen($0)) }
        close(fds[1])
        defer { close(fds[0]) }
        let reader = LineReader(fd: fds[0], chunkSize: 16)
        var lines: [String] = [], truncated: [Int] = []
        while try reader.readChunk({ line, n, cut in
            if cut { truncated.append(n) } else { lines.append(String(decoding: UnsafeBufferPointer(line), as: UTF8.self)) }
        }) {}
        #expect(lines == ["one", "two", "three", "four"])
        #expect(truncated == [3])
        #expect(reader.bytesRead == Int64(text.utf8.count))
    }
}
