import ArgumentParser
import Foundation
import InternetAccess
import Store
import TesseraCore

/// The log formats `tessera traffic import` reads (not the server's `--log-format`).
typealias TrafficLogFormat = InternetAccess.LogFormat

/// `tessera traffic`: shadow-AI discovery from the logs of proxies and firewalls Tessera does not run (issue 17).
struct TrafficCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "traffic", abstract: "Discover generative-AI apps in proxy and firewall logs.",
        subcommands: [Import.self, Report.self, TrafficBench.self])

    /// The shipped catalog, refused with the entry and line if it has errors.
    static func catalog() throws -> AICatalog {
        do { return try AICatalog.bundled(year: Calendar(identifier: .gregorian).component(.year, from: Date())) } catch {
            throw ValidationError(error.description)
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import a log: requests to catalog apps become traffic records (GET /beta/networkAccess/logs/traffic).",
            discussion: """
            Streams the file (constant memory). Lines that do not parse are reported on standard error with their number \
            and counted; the import goes on. Requests older than 30 days are not recorded; records past 30 days are purged. \
            Zscaler NSS feeds: use --format csv with a mapping naming the feed's columns (see the README).
            """)
        @OptionGroup var storage: StorageOptions
        @Option(help: "Tenant id or domain (default: the only tenant).") var tenant: String?
        @Option(help: "squid, w3c, cef, leef or csv.") var format: String
        @Option(help: "For csv: a JSON file naming the columns.") var mapping: String?
        @Flag(help: "Print the summary as JSON.") var json = false
        @Argument(help: "The log file, or - for standard input.") var file: String

        func run() async throws {
            guard let logFormat = TrafficLogFormat(rawValue: format) else {
                throw ValidationError("--format is one of \(TrafficLogFormat.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            var csv: CSVMapping?
            if let mapping {
                guard let data = FileManager.default.contents(atPath: mapping) else { throw ValidationError("cannot read \(mapping)") }
                do { csv = try CSVMapping.load(data) } catch { throw ValidationError(error.description) }
            }
            let catalog = try TrafficCommand.catalog()
            let fd = file == "-" ? STDIN_FILENO : open(file, O_RDONLY)
            guard fd >= 0 else { throw ValidationError("cannot open \(file): \(String(cString: strerror(errno)))") }
            defer { if fd != STDIN_FILENO { close(fd) } }
            try await storage.withStore { store in
                guard let tenant = try await StorageOptions.tenants(store, named: tenant).first else { return }
                let users = try await UserAttribution.load(tenant: tenant.id, store: store)
                // The tenant's catalog: its custom apps are discovered too, with its score overrides.
                let tenantCatalog = try await AppSanctions.settings(tenant: tenant.id, store: store)
                    .catalog(shipped: catalog, year: Calendar(identifier: .gregorian).component(.year, from: Date()))
                let importer = TrafficImporter(catalog: tenantCatalog, tenant: tenant.id, format: logFormat, mapping: csv)
                let started = ContinuousClock.now
                let summary: TrafficImporter.Summary
                do {
                    summary = try await importer.run(fd: fd, store: store, users: users, now: Date()) { bad in
                        FileHandle.standardError.write(Data("\(file):\(bad.line): \(bad.reason)\n".utf8))
                    }
                } catch let error as ImportError { throw ValidationError(error.description) }
                let purged = try await TrafficLog.purgeExpired(tenant: tenant.id, store: store, now: Date())
                let seconds = (ContinuousClock.now - started) / .seconds(1)
                if json {
                    say(TrafficCommand.json(summary, purged: purged, seconds: seconds).serialized)
                } else {
                    say(String(format: "%d lines (%.1f MB) in %.2f s: %d requests, %d to AI apps recorded (%d attributed to users), %d past retention, %d skipped, %d malformed; %d expired records purged",
                               summary.lines, Double(summary.bytes) / 1e6, seconds, summary.requests, summary.recorded, summary.attributed,
                               summary.expired, summary.skipped, summary.malformed, purged))
                    for (app, count) in summary.apps.sorted(by: { $0.value > $1.value }) { say("  \(app): \(count)") }
                }
            }
        }
    }

    static func json(_ s: TrafficImporter.Summary, purged: Int, seconds: Double) -> JSONValue {
        [
            "lines": .int(Int64(s.lines)), "bytes": .int(s.bytes), "requests": .int(Int64(s.requests)), "recorded": .int(Int64(s.recorded)),
            "attributed": .int(Int64(s.attributed)), "expired": .int(Int64(s.expired)), "skipped": .int(Int64(s.skipped)),
            "malformed": .int(Int64(s.malformed)), "purged": .int(Int64(purged)), "seconds": .double(seconds),
            "malformedLines": .array(s.malformedSamples.map { ["line": .int(Int64($0.line)), "reason": .string($0.reason)] }),
            "apps": .object(s.apps.mapValues { .int(Int64($0)) }),
        ]
    }

    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The generative-AI apps in the traffic records: users, requests, bytes, first/last seen, daily trend; riskiest first.")
        @OptionGroup var storage: StorageOptions
        @Option(help: "Tenant id or domain (default: the only tenant).") var tenant: String?
        @Option(help: "List the users of this app (its catalog id) instead.") var app: String?
        @Flag(help: "Print JSON (the shape of GET /beta/networkAccess/reports/generativeAIApps).") var json = false

        func run() async throws {
            try await storage.withStore { store in
                guard let tenant = try await StorageOptions.tenants(store, named: tenant).first else { return }
                if let app {
                    let users = try await DiscoveryReport.users(of: app, tenant: tenant.id, store: store)
                    if json { say(JSONValue.object(["value": .array(users.map(\.json))]).serialized); return }
                    for u in users { say("\(u.user)  \(u.requests) requests  \(u.prompts) prompts  \(u.sentBytes)/\(u.receivedBytes) bytes  \(u.firstSeen) – \(u.lastSeen)") }
                    return
                }
                let report = try await DiscoveryReport.build(tenant: tenant.id, store: store)
                if json { say(report.json.serialized); return }
                say("risk  app                                  users  requests  prompts  sent/received bytes  first seen – last seen")
                for a in report.apps {
                    let name = a.name.count >= 36 ? String(a.name.prefix(35)) + " " : a.name.padding(toLength: 36, withPad: " ", startingAt: 0)
                    say(String(format: "%4d  %@ %6d  %8d  %7d  %@  %@ – %@", a.riskScore, name as NSString, a.users.count, a.requests, a.prompts,
                               "\(a.sentBytes)/\(a.receivedBytes)" as NSString, a.firstSeen as NSString, a.lastSeen as NSString))
                }
            }
        }
    }
}

/// `tessera traffic bench`: log import speed (MB/s on one core) for Squid and CEF logs generated deterministically,
/// next to mawk counting the fields of the same file in the same run. Each is timed by the clock and by the processor
/// time it used (user and system): on a shared machine the clock also counts the time others' work took the core, so
/// the per-core rate (MB per processor second) is the steadier comparison.
struct TrafficBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measure log import MB/s per core for Squid and CEF logs next to mawk counting fields.")
    @Option(help: "Size of each generated log, in MB.") var megabytes: Int = 128
    @Option(help: "Rounds; medians are reported.") var rounds: Int = 5
    @Option(help: "Folder for the generated logs (default: a temporary one, removed after).") var directory: String?

    func run() async throws {
        let catalog = try TrafficCommand.catalog()
        let folder = directory ?? NSTemporaryDirectory() + "tessera-traffic-bench-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { if directory == nil { try? FileManager.default.removeItem(atPath: folder) } }
        let mawk = ["/usr/bin/mawk", "/bin/mawk"].first { FileManager.default.isExecutableFile(atPath: $0) }
        if mawk == nil { say("mawk is not installed (apt-get install mawk): no comparison") }
        say("load average at the start: \(Self.loadAverage())")
        say("| log (\(megabytes) MB, median of \(rounds)) | tessera import (parse, match, attribute) | mawk '{ n += NF }' | ratio | "
            + "tessera per processor second | mawk per processor second | ratio | with records written (SQLite in memory) |")
        say("|---|---|---|---|---|---|---|---|")
        for format in [TrafficLogFormat.squid, .cef] {
            let path = "\(folder)/\(format.rawValue).log"
            let bytes = try LogGenerator.write(format: format, to: path, bytes: megabytes << 20)
            let users = UserAttribution(users: (0..<LogGenerator.users).map {
                (UserAttribution.User(id: "u\($0)", userPrincipalName: "user\($0)@contoso.test"), "user\($0)")
            })
            var ours: [Double] = [], theirs: [Double] = [], oursCPU: [Double] = [], theirsCPU: [Double] = []
            var recorded = 0
            for _ in 0..<rounds {
                let importer = TrafficImporter(catalog: catalog, tenant: "bench", format: format)
                let fd = open(path, O_RDONLY)
                let start = ContinuousClock.now, cpu = Self.processorSeconds(children: false)
                let summary = try await importer.run(fd: fd, store: nil, users: users, now: LogGenerator.end)
                ours.append((ContinuousClock.now - start) / .seconds(1))
                oursCPU.append(Self.processorSeconds(children: false) - cpu)
                close(fd)
                recorded = summary.recorded
                if let mawk {
                    let (wall, cpu) = try Self.time(mawk, ["{ n += NF } END { print n }", path])
                    theirs.append(wall)
                    theirsCPU.append(cpu)
                }
            }
            // Once with the records written, to show what the store adds.
            let store = try await SQLDirectoryStore.open(":memory:")
            try await store.migrate()
            let fd = open(path, O_RDONLY)
            let start = ContinuousClock.now
            _ = try await TrafficImporter(catalog: catalog, tenant: "bench", format: format).run(fd: fd, store: store, users: users, now: LogGenerator.end)
            let withStore = (ContinuousClock.now - start) / .seconds(1)
            close(fd)
            try await store.shutdown()
            let mb = Double(bytes) / 1e6
            func rates(_ ours: [Double], _ theirs: [Double]) -> String {
                let o = mb / Self.median(ours), t = theirs.isEmpty ? nil : mb / Self.median(theirs)
                return String(format: "%.0f MB/s | %@ | %@", o, (t.map { String(format: "%.0f MB/s", $0) } ?? "–") as NSString,
                              (t.map { String(format: "%.1f×", o / $0) } ?? "–") as NSString)
            }
            say(String(format: "| %@ (%d AI records) | %@ | %@ | %.0f MB/s |", format.rawValue as NSString, recorded,
                       rates(ours, theirs) as NSString, rates(oursCPU, theirsCPU) as NSString, mb / withStore))
        }
        say("load average at the end: \(Self.loadAverage())")
    }

    static func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

    /// The 1-, 5- and 15-minute load averages: the machine's other work, which the rates depend on.
    static func loadAverage() -> String {
        var loads = [0.0, 0.0, 0.0]
        guard getloadavg(&loads, 3) == 3 else { return "unknown" }
        return loads.map { String(format: "%.2f", $0) }.joined(separator: " ")
    }

    /// User and system processor seconds of this process, or of its children waited for.
    static func processorSeconds(children: Bool) -> Double {
        var usage = rusage()
        #if canImport(Glibc)
        getrusage(__rusage_who_t((children ? RUSAGE_CHILDREN : RUSAGE_SELF).rawValue), &usage)
        #else
        getrusage(children ? RUSAGE_CHILDREN : RUSAGE_SELF, &usage)
        #endif
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    /// A tool's run: its clock time and its processor time.
    static func time(_ tool: String, _ arguments: [String]) throws -> (wall: Double, processor: Double) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        let start = ContinuousClock.now, cpu = processorSeconds(children: true)
        try process.run()
        process.waitUntilExit()
        return ((ContinuousClock.now - start) / .seconds(1), processorSeconds(children: true) - cpu)
    }
}

/// Deterministic proxy logs: one line a request, 500 users, mostly ordinary sites and about 3% to catalog apps.
enum LogGenerator {
    static let users = 500
    static let end = Date(timeIntervalSince1970: 1_765_015_200 + 86_400)
    static let aiTargets = [("api.openai.com", "/v1/chat/completions"), ("chatgpt.com", "/backend-api/conversation"),
                            ("claude.ai", "/api/organizations/1/completion"), ("api.anthropic.com", "/v1/messages"),
                            ("chat.deepseek.com", "/api/v0/chat/completion"), ("gemini.google.com", "/app"),
                            ("generativelanguage.googleapis.com", "/v1beta/models/gemini-2.0-flash:generateContent"),
                            ("poe.com", "/"), ("www.perplexity.ai", "/search"), ("api.githubcopilot.com", "/chat/completions")]


    /// Writes about `bytes` bytes of `format` lines to `path`; returns the size written.
    static func write(format: TrafficLogFormat, to path: String, bytes: Int) throws -> Int {
        guard FileManager.default.createFile(atPath: path, contents: nil) else { throw ValidationError("cannot write \(path)") }
        guard let handle = FileHandle(forWritingAtPath: path) else { throw ValidationError("cannot write \(path)") }
        defer { try? handle.close() }
        var random = SeededRandom(seed: format == .squid ? 1 : 2)
        var written = 0, buffer = ""
        var t = 1_765_015_200_000
        while written < bytes {
            t += random.next(below: 20)
            let user = "user\(random.next(below: users))"
            let ip = "10.0.\(random.next(below: 8)).\(random.next(below: 250) + 1)"
            let ai = random.next(below: 100) < 3
            let (host, path) = ai ? aiTargets[random.next(below: aiTargets.count)] : ("www.site\(random.next(below: 5000)).example", "/page/\(random.next(below: 100000))")
            let connect = random.next(below: 4) != 0
            let received = random.next(below: 60_000) + 200, sent = random.next(below: 4_000) + 100
            let line: String
            switch format {
            case .cef:
                line = "<134>Dec  6 10:00:00 fw01 CEF:0|Contoso|Proxy|1.0|web|Allowed|3|rt=\(t) src=\(ip) spt=\(40000 + random.next(below: 20000)) dhost=\(host) dpt=443 request=https://\(host)\(path) requestMethod=\(connect ? "CONNECT" : "GET") suser=\(user) out=\(sent) in=\(received) act=allow\n"
            default:
                let target = connect ? "\(host):443" : "http://\(host)\(path)"
                line = "\(t / 1000).\(String(t % 1000 + 1000).dropFirst()) \(String(repeating: " ", count: 3))\(random.next(below: 2000)) \(ip) TCP_\(connect ? "TUNNEL" : "MISS")/200 \(received) \(connect ? "CONNECT" : "GET") \(target) \(user) HIER_DIRECT/93.184.\(random.next(below: 250)).\(random.next(below: 250)) \(connect ? "-" : "text/html")\n"
            }
            buffer += line
            if buffer.utf8.count >= 1 << 20 {
                handle.write(Data(buffer.utf8)); written += buffer.utf8.count; buffer = ""
            }
        }
        if !buffer.isEmpty { handle.write(Data(buffer.utf8)); written += buffer.utf8.count }
        return written
    }
}
