import ArgumentParser
import Foundation
import TesseraCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Conditional Access decisions per second on one core for a large tenant (issue 14's benchmark): 200 enabled policies
/// of mixed conditions, 50 named locations holding 10,000 CIDR ranges, users in 50 groups each, next to a plain loop
/// that only reads the same facts (the floor). `--decisions N` only decides, counting the heap allocations it makes
/// with glibc's malloc trace.
struct ConditionalAccessBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca", abstract: "Conditional Access decisions per second on one core vs a loop that only reads the facts.")
    @Option(help: "Seconds per measurement.") var seconds: Double = 2
    @Option(help: "Rounds; each measures the floor and the decisions back to back, and medians are reported.") var rounds: Int = 5
    @Option(help: "Enabled policies in the tenant.") var policies: Int = 200
    @Option(help: "Seed of the generated tenant and sign-ins.") var seed: UInt64 = 14
    @Option(help: ArgumentHelp(
        "Only make this many decisions, reusing one decision, untimed, and count the heap allocations they make.",
        discussion: """
            The count uses glibc's malloc trace around the loop (mtrace(3)): run with \
            LD_PRELOAD=/lib/x86_64-linux-gnu/libc_malloc_debug.so.0 MALLOC_TRACE=<file>; without them nothing is counted.
            """))
    var decisions: Int?

    func run() throws {
        var generator = ConditionalAccessBenchTenant(seed: seed)
        let locationIDs = generator.locations.map { _ in generator.random.guid() }
        let locations = zip(generator.locations, locationIDs).map { body, id in body.setting("id", .string(id)) }
        let bodies = generator.policies(count: policies, locationIDs: locationIDs).map { $0.setting("id", .string(generator.random.guid())) }
        let compileStart = ContinuousClock.now
        let engine = ConditionalAccessEngine(policies: bodies, namedLocations: locations)
        let compiled = ContinuousClock.now - compileStart
        let signIns = generator.signIns(count: 64)
        let ranges = generator.locations.reduce(0) { $0 + ($1["ipRanges"]?.arrayValue?.count ?? 0) }
        say(String(format: "tenant (seed %llu): %d enabled policies, %d named locations with %d CIDR ranges, %d groups; %d sign-ins of users in %d groups each, cycled; compiled in %.1f ms",
                   seed, bodies.count, locations.count, ranges, generator.groups.count, signIns.count,
                   ConditionalAccessBenchTenant.groupsPerUser, compiled.seconds * 1000))

        var decision = engine.decide(signIns[0])
        if let decisions {
            var allowed = 0
            let trace = MallocTrace()
            trace.start()
            signIns.withUnsafeBufferPointer { signIns in
                for i in 0..<decisions {
                    engine.decide(signIns[i & 63], into: &decision)
                    if decision.isAllowed { allowed += 1 }
                }
            }
            trace.stop()
            say("\(decisions) decisions, \(allowed) allowed")
            if let count = trace.allocations() {
                say("heap allocations during the \(decisions) decisions: \(count) (\(String(format: "%.4f", Double(count) / Double(max(1, decisions)))) a decision)")
            }
            return
        }
        // What the sign-ins come to, and that the reusing form decides exactly as the convenient one.
        var outcomes: [String: Int] = [:]
        for facts in signIns {
            engine.decide(facts, into: &decision)
            guard decision == engine.decide(facts) else { throw ValidationError("decide(_:into:) and decide(_:) disagree") }
            let applied = decision.policies.filter(\.applied).count
            switch decision.outcome {
            case .allow: outcomes["allow", default: 0] += 1
            case .block: outcomes["block", default: 0] += 1
            case .needs: outcomes["needs", default: 0] += 1
            }
            outcomes["policies applied", default: 0] += applied
        }
        say("outcomes over the \(signIns.count) sign-ins: " + ["allow", "needs", "block"].map { "\($0) \(outcomes[$0, default: 0])" }
            .joined(separator: ", ") + String(format: "; %.1f policies applied per sign-in", Double(outcomes["policies applied", default: 0]) / Double(signIns.count)))

        var rows: [(floor: Double, decisions: Double)] = []
        for round in 1...max(1, rounds) {
            // Both loops read the sign-ins in place, as a caller passes the facts it gathered.
            let floor = signIns.withUnsafeBufferPointer { signIns in
                Self.measure(seconds: seconds) { iterations in
                    var sink = 0
                    for i in 0..<iterations { sink &+= Self.touch(signIns[i & 63]) }
                    return sink
                }
            }
            let decisions = signIns.withUnsafeBufferPointer { signIns in
                Self.measure(seconds: seconds) { iterations in
                    var sink = 0
                    for i in 0..<iterations {
                        engine.decide(signIns[i & 63], into: &decision)
                        sink &+= decision.isAllowed ? 1 : 2
                    }
                    return sink
                }
            }
            rows.append((floor, decisions))
            say(String(format: "round %d: floor (reading the facts) %.0f/s (%.1f ns), decisions %.0f/s (%.1f ns), %.1f× the floor's time",
                       round, floor, 1e9 / floor, decisions, 1e9 / decisions, floor / decisions))
        }
        func median(_ values: [Double]) -> Double {
            let s = values.sorted()
            return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
        }
        let floor = median(rows.map(\.floor)), rate = median(rows.map(\.decisions))
        say("")
        say("| measure (one thread, median of \(rows.count) rounds of \(String(format: "%.1f", seconds)) s) | value |")
        say("|---|---|")
        say(String(format: "| floor: a loop reading the same facts | %.0f/s (%.1f ns each) |", floor, 1e9 / floor))
        say(String(format: "| Conditional Access decisions, %d policies | %.0f/s (%.1f ns each) |", bodies.count, rate, 1e9 / rate))
        say(String(format: "| decision time / floor time | %.2f |", median(rows.map { $0.floor / $0.decisions })))
        say(String(format: "| target | >= 1000000/s (<= 1000 ns) %@ |", (rate >= 1_000_000 ? "met" : "NOT met") as NSString))
    }

    /// What the floor reads of a sign-in: every id, group and role, the address, platform, client, methods and clock.
    @inline(never)
    static func touch(_ facts: SignInFacts) -> Int {
        var sum = facts.tenantID.utf8.count
        if case .user(let id, let groups, let roles, let external) = facts.subject {
            sum &+= id.utf8.count &+ (external == nil ? 0 : 1)
            for group in groups { sum &+= group.utf8.count }
            for role in roles { sum &+= role.utf8.count }
        }
        if case .application(let appID) = facts.target { sum &+= appID.utf8.count }
        sum &+= Int(truncatingIfNeeded: facts.clientIP?.value ?? 0) &+ (facts.platform?.rawValue.utf8.count ?? 0) &+ (facts.country?.utf8.count ?? 0)
        sum &+= facts.clientAppType.rawValue.utf8.count &+ facts.methodsUsed.count &+ Int(facts.now.timeIntervalSince1970)
        return sum
    }

    /// Runs `body` with growing iteration counts until `seconds` have passed; returns iterations per second.
    static func measure(seconds: Double, _ body: (Int) -> Int) -> Double {
        var total = 0, sink = 0, batch = 1024
        let start = ContinuousClock.now
        let deadline = start + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            sink &+= body(batch)
            total += batch
            batch = min(batch * 2, 1 << 20)
        }
        let elapsed = (ContinuousClock.now - start).seconds
        if sink == 42 { say("") }  // keeps the work observable
        return Double(total) / elapsed
    }
}

/// glibc's malloc trace (mtrace(3)) around a stretch of code: every `malloc`, `realloc` and `free` of the process is
/// written to the file `MALLOC_TRACE` names, when `libc_malloc_debug.so` is preloaded; otherwise starting and stopping
/// do nothing. Looked up at run time, so nothing links against the debugging library; by version, since libc keeps a
/// do-nothing `mtrace` as the default one.
struct MallocTrace {
    private typealias Switch = @convention(c) () -> Void
    private typealias VersionedLookup = @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>, UnsafePointer<CChar>)
        -> UnsafeMutableRawPointer?
    private let on: Switch?, off: Switch?
    private let file = ProcessInfo.processInfo.environment["MALLOC_TRACE"]

    init() {
        let library = dlopen("libc_malloc_debug.so.0", RTLD_NOW | RTLD_NOLOAD)
        let lookup = dlsym(dlopen(nil, RTLD_NOW), "dlvsym").map { unsafeBitCast($0, to: VersionedLookup.self) }
        func function(_ name: String) -> Switch? {
            guard let library, let lookup, let symbol = lookup(library, name, "GLIBC_2.2.5") else { return nil }
            return unsafeBitCast(symbol, to: Switch.self)
        }
        on = function("mtrace")
        off = function("muntrace")
    }

    func start() { if file != nil { on?() } }
    func stop() { if file != nil { off?() } }

    /// The allocations the trace recorded (`+` lines; a `realloc` is a `<` and a `>`), nil when nothing was traced.
    func allocations() -> Int? {
        guard let file, let text = try? String(contentsOfFile: file, encoding: .utf8), text.hasPrefix("= Start") else { return nil }
        return text.split(separator: "\n").filter { $0.contains(" + ") || $0.contains(" > ") }.count
    }
}

/// A deterministic (seeded) large tenant for Conditional Access benchmarks: groups, applications, named locations and
/// policies of every kind a real tenant mixes, built so that none of them blocks a user signing in with a passkey
/// from the loopback address without a User-Agent (the passkey sign-in benchmark's users); the sign-ins it makes for
/// the decision benchmark come from everywhere and get every outcome.
struct ConditionalAccessBenchTenant {
    static let groupCount = 400
    static let groupsPerUser = 50
    static let ipLocations = 45
    static let countryLocations = 5
    static let cidrRanges = 10_000
    static let roles = [BuiltInRoles.globalAdministrator, BuiltInRoles.userAdministrator, BuiltInRoles.securityAdministrator,
                        BuiltInRoles.applicationAdministrator, BuiltInRoles.conditionalAccessAdministrator]
    static let countries = ["US", "CA", "GB", "DE", "FR", "NZ", "AU", "JP", "BR", "IN", "ZA", "NG", "RU", "CN", "KP", "IR"]

    var random: SeededRandom
    /// The tenant's group ids; the first is the emergency-access group every blocking policy excludes.
    var groups: [String]
    /// Applications the policies name (callers may put their own first).
    var apps: [String]
    /// The emergency-access (break-glass) account every blocking policy excludes, a Global Administrator.
    var breakGlass: String
    /// Named location bodies without ids: the IP locations first (the first three trusted), then the country ones.
    var locations: [JSONValue]
    /// Ranges of the IP locations, by location, to place sign-ins inside them.
    private var cidrs: [[String]] = []

    init(seed: UInt64, groups: [String]? = nil, apps: [String] = [], breakGlass: String? = nil) {
        random = SeededRandom(seed: seed)
        self.groups = groups ?? []
        self.apps = apps
        self.breakGlass = breakGlass ?? ""
        locations = []
        if groups == nil { self.groups = (0..<Self.groupCount).map { _ in random.guid() } }
        if breakGlass == nil { self.breakGlass = random.guid() }
        while self.apps.count < 20 { self.apps.append(random.guid()) }
        for index in 0..<Self.ipLocations {
            let count = Self.cidrRanges / Self.ipLocations + (index < Self.cidrRanges % Self.ipLocations ? 1 : 0)
            let ranges = (0..<count).map { _ in random.next(below: 10) == 0 ? random.ipv6Range() : random.ipv4Range() }
            cidrs.append(ranges)
            locations.append([
                "@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": .string("Network \(index + 1)"),
                "isTrusted": .bool(index < 3), "ipRanges": .array(ranges.map { ["cidrAddress": .string($0)] }),
            ])
        }
        for index in 0..<Self.countryLocations {
            let codes = (0..<3).map { _ in Self.countries[random.next(below: Self.countries.count)] }
            locations.append([
                "@odata.type": "#microsoft.graph.countryNamedLocation", "displayName": .string("Countries \(index + 1)"),
                "countriesAndRegions": .array(Array(Set(codes)).sorted().map { .string($0) }),
                "includeUnknownCountriesAndRegions": .bool(index == 0),
            ])
        }
    }

    /// `count` enabled policies cycling through ten kinds, with seeded targets. `locationIDs` are the ids the named
    /// locations were stored under, in `locations`' order.
    mutating func policies(count: Int, locationIDs: [String]) -> [JSONValue] {
        let ipLocations = Array(locationIDs.prefix(Self.ipLocations))
        // Country locations that cannot take an unknown country, so a sign-in with no country is not blocked.
        let countryLocations = Array(locationIDs.suffix(Self.countryLocations).dropFirst())
        let emergency = groups[0]
        let breakGlass: JSONValue = [.string(self.breakGlass)]
        func some(_ list: [String], _ n: Int) -> [JSONValue] {
            Array(Set((0..<n).map { _ in list[random.next(below: list.count)] })).sorted().map { .string($0) }
        }
        func groupsOf(_ n: Int) -> [JSONValue] { some(Array(groups.dropFirst()), n) }
        let mfa: JSONValue = ["operator": "OR", "builtInControls": ["mfa"]]
        let block: JSONValue = ["operator": "OR", "builtInControls": ["block"]]
        let phishingResistant: JSONValue = ["operator": "AND", "authenticationStrength": ["id": "00000000-0000-0000-0000-000000000004"]]
        return (0..<count).map { index in
            var users: [String: JSONValue] = ["includeUsers": ["All"]]
            var applications: [String: JSONValue] = ["includeApplications": ["All"]]
            var conditions: [String: JSONValue] = ["clientAppTypes": ["all"]]
            var grant: JSONValue? = nil
            var session: JSONValue? = nil
            let kind: String
            switch index % 10 {
            case 0:
                kind = "MFA for groups"
                users = ["includeGroups": .array(groupsOf(3)), "excludeGroups": .array(groupsOf(1))]
                grant = mfa
            case 1:
                kind = "phishing-resistant MFA for administrators"
                users = ["includeRoles": .array(some(Self.roles, 2)), "excludeGroups": [.string(emergency)]]
                grant = phishingResistant
            case 2:
                kind = "block apps from networks"
                users = ["includeUsers": ["All"], "excludeUsers": breakGlass, "excludeGroups": [.string(emergency)]]
                applications = ["includeApplications": .array(some(apps, 3))]
                conditions["locations"] = ["includeLocations": .array(some(ipLocations, 3)), "excludeLocations": ["AllTrusted"]]
                grant = block
            case 3:
                kind = "block legacy authentication"
                users = ["includeUsers": ["All"], "excludeUsers": breakGlass, "excludeGroups": [.string(emergency)]]
                conditions["clientAppTypes"] = ["exchangeActiveSync", "other"]
                grant = block
            case 4:
                kind = "compliant device or MFA on phones"
                users = ["includeGroups": .array(groupsOf(5))]
                conditions["platforms"] = ["includePlatforms": ["android", "iOS"], "excludePlatforms": ["windowsPhone"]]
                grant = ["operator": "OR", "builtInControls": ["compliantDevice", "mfa"]]
            case 5:
                kind = "block risky sign-ins"
                users = ["includeUsers": ["All"], "excludeUsers": breakGlass, "excludeGroups": [.string(emergency)]]
                conditions["signInRiskLevels"] = ["high"]
                conditions["userRiskLevels"] = ["high", "medium"]
                grant = block
            case 6:
                kind = "sign-in frequency for Office 365"
                users = ["includeUsers": ["All"], "excludeRoles": .array(some(Self.roles, 1))]
                applications = ["includeApplications": ["Office365"], "excludeApplications": .array(some(apps, 1))]
                session = ["signInFrequency": ["value": 12, "type": "hours", "isEnabled": true]]
            case 7:
                kind = "block countries"
                users = ["includeGroups": .array(groupsOf(2)), "excludeUsers": breakGlass, "excludeGroups": [.string(emergency)]]
                conditions["locations"] = ["includeLocations": .array(some(countryLocations, 1))]
                grant = block
            case 8:
                kind = "MFA on unmanaged devices"
                users = ["includeUsers": ["All"], "excludeGroups": .array(groupsOf(2))]
                applications = ["includeApplications": .array(some(apps, 4))]
                conditions["devices"] = ["deviceFilter": ["mode": "exclude", "rule": "device.trustType -eq \"ServerAD\" -or device.isCompliant -eq \"True\""]]
                grant = mfa
            default:
                kind = "no persistent browser outside trusted networks"
                users = ["includeGroups": .array(groupsOf(2))]
                conditions["locations"] = ["includeLocations": ["All"], "excludeLocations": ["AllTrusted"]]
                conditions["platforms"] = ["includePlatforms": ["all"], "excludePlatforms": ["iOS"]]
                session = ["persistentBrowser": ["mode": "never", "isEnabled": true]]
            }
            conditions["users"] = .object(users)
            conditions["applications"] = .object(applications)
            var body: [String: JSONValue] = ["displayName": .string("\(kind) \(index + 1)"), "state": "enabled",
                                             "conditions": .object(conditions)]
            if let grant { body["grantControls"] = grant }
            if let session { body["sessionControls"] = session }
            return .object(body)
        }
    }

    /// Sign-ins from all over: users in `groupsPerUser` groups (some holding roles), addresses inside the named
    /// locations or not, every platform and client type, passkey or password, of different ages.
    mutating func signIns(count: Int, now: Date = Date(timeIntervalSince1970: 1_800_000_000)) -> [SignInFacts] {
        let platforms: [DevicePlatform?] = [.windows, .macOS, .iOS, .android, .linux, nil]
        let clients: [ClientAppType] = [.browser, .browser, .browser, .mobileAppsAndDesktopClients, .mobileAppsAndDesktopClients, .exchangeActiveSync]
        return (0..<count).map { _ in
            var memberOf: Set<String> = []
            while memberOf.count < Self.groupsPerUser { memberOf.insert(groups[random.next(below: groups.count)]) }
            let roles: Set<String> = random.next(below: 10) == 0 ? [Self.roles[random.next(below: Self.roles.count)]] : []
            let address: IPAddress?
            if random.next(below: 3) == 0 {
                let list = cidrs[random.next(below: cidrs.count)]
                address = random.address(in: list[random.next(below: list.count)])
            } else {
                address = IPAddress(value: IPAddress.mappedIPv4PrefixValue | UInt128(random.next(below: 1 << 32)))
            }
            let passkey = random.next(below: 4) != 0
            let age = Double(random.next(below: 20 * 3600))
            return SignInFacts(
                tenantID: "b0000000-0000-0000-0000-00000000000e",
                subject: .user(id: random.guid(), groupIDs: memberOf, roleTemplateIDs: roles, external: nil),
                target: .application(appID: random.next(below: 5) == 0 ? "00000002-0000-0ff1-ce00-000000000000" : apps[random.next(below: apps.count)]),
                clientAppType: clients[random.next(below: clients.count)], platform: platforms[random.next(below: platforms.count)],
                clientIP: address, country: Self.countries[random.next(below: Self.countries.count)],
                device: random.next(below: 3) == 0 ? DeviceFacts(deviceId: random.guid(), trustType: "AzureAd", isCompliant: random.next(below: 2) == 0) : nil,
                userRisk: random.next(below: 20) == 0 ? .high : .none,
                methodsUsed: [.init(passkey ? .fido2 : .password, at: now.addingTimeInterval(-age))], now: now)
        }
    }
}

/// A benchmark's draws from its seeded generator, so its tenant is the same on every machine.
extension SeededRandom {
    mutating func next(below bound: Int) -> Int { Int(next() % UInt64(bound)) }

    mutating func guid() -> String {
        let a = next(), b = next()
        let hex = String(format: "%016llx%016llx", a, b)
        let c = Array(hex)
        return String(c[0..<8]) + "-" + String(c[8..<12]) + "-" + String(c[12..<16]) + "-" + String(c[16..<20]) + "-" + String(c[20..<32])
    }

    /// A public IPv4 range (never loopback or private, so the loopback sign-ins of the passkey benchmark are outside).
    mutating func ipv4Range() -> String {
        var first = 0
        repeat { first = 1 + next(below: 223) } while first == 10 || first == 127 || first == 172 || first == 192
        let prefix = 16 + next(below: 13)
        let value = UInt32(first) << 24 | UInt32(truncatingIfNeeded: next()) & 0x00ff_ffff
        let masked = value & ~(UInt32.max >> UInt32(prefix))
        return "\(masked >> 24).\(masked >> 16 & 0xff).\(masked >> 8 & 0xff).\(masked & 0xff)/\(prefix)"
    }

    mutating func ipv6Range() -> String {
        let words = (0..<3).map { _ in String(next() & 0xffff, radix: 16) }
        return "2001:\(words[0]):\(words[1]):\(words[2])::/\(48 + next(below: 17))"
    }

    /// An address inside a CIDR range.
    mutating func address(in cidr: String) -> IPAddress? {
        guard let range = IPAddressRange(cidr: cidr) else { return nil }
        let span = range.last.value - range.first.value
        let offset = span == .max ? UInt128(next()) : UInt128(next()) % (span + 1)
        return IPAddress(value: range.first.value + offset)
    }
}

extension IPAddress {
    /// `::ffff:0:0`, the block IPv4 addresses are mapped into.
    static let mappedIPv4PrefixValue: UInt128 = 0xffff << 32
}

extension JSONValue {
    /// The object with `key` set.
    func setting(_ key: String, _ value: JSONValue) -> JSONValue {
        guard var object = objectValue else { return self }
        object[key] = value
        return .object(object)
    }
}
