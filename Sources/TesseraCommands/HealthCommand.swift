import ArgumentParser
import Foundation
import LDAP
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Server
import Store
import Sync
import TesseraCore

/// `tessera health`: Connect Health — the agent that reports sync and domain controller health over mutual TLS, and
/// the alerts its reports raise.
struct HealthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health", abstract: "Connect Health: health agents and their alerts.", subcommands: [Agent.self, Alerts.self])

    enum Role: String, CaseIterable, ExpressibleByArgument {
        case sync, adds
    }

    struct Agent: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register a health agent (once) and upload its reports over mutual TLS every --interval minutes.",
            discussion: """
            The first run registers with a Global Administrator's or Hybrid Identity Administrator's access token (--token or \
            --token-file), receives a client certificate from the tenant's health CA and keeps it in --state; later runs need no token.
            sync: reports the sync cycle's runs, export errors, quarantined objects and deletion-threshold stops from --data/--database.
            adds: reports a domain controller's reachability and LDAP bind and search latency (--ldap-url, --bind-dn, \
            --bind-password-file, --base-dn).
            """)
        @Option(help: "What the agent watches: sync or adds.") var role: Role
        @Option(help: "Tessera's URL, e.g. https://login.contoso.com (registration).") var server: String
        @Option(help: "An access token for registration (or --token-file).") var token: String?
        @Option(help: "A file holding the access token for registration.") var tokenFile: String?
        @Option(help: "PEM certificates to trust for Tessera's server certificate (default: the system's).") var caFile: String?
        @Option(help: "Folder for the agent's key, certificate and registration.") var state: String = "./tessera-health-agent"
        @Option(help: "Minutes between uploads.") var interval: Int = 30
        @Flag(help: "Upload once and exit (non-zero when the upload is refused).") var once = false
        @Option(help: "The health listener's upload URL (default: the one registration returned).") var uploadUrl: String?
        @OptionGroup var storage: StorageOptions
        @Option(help: "sync: tenant id or domain (default: the only tenant).") var tenant: String?
        @Option(help: "adds: the domain controller, ldaps://host or ldap://host (StartTLS).") var ldapUrl: String?
        @Option(help: "adds: the account to bind as.") var bindDn: String?
        @Option(help: "adds: a file holding the bind password.") var bindPasswordFile: String?
        @Option(help: "adds: the naming context to search.") var baseDn: String?
        @Option(help: "adds: PEM certificates to trust for the domain controller.") var ldapCaFile: String?

        func validate() throws {
            guard (1...1440).contains(interval) else { throw ValidationError("--interval must be 1 to 1440 minutes") }
            if role == .adds, ldapUrl == nil || bindDn == nil || bindPasswordFile == nil || baseDn == nil {
                throw ValidationError("an adds agent needs --ldap-url, --bind-dn, --bind-password-file and --base-dn")
            }
        }

        func run() async throws {
            let registration = try await registered()
            let url = uploadUrl ?? registration.uploadURL
            guard let url else {
                throw AgentFailure("the server published no health listener: start it with serve --health-listen, or pass --upload-url")
            }
            while true {
                do {
                    try await upload(to: url, registration)
                } catch let failure as AgentFailure where failure.final {
                    throw failure
                } catch {
                    // A server or domain controller that is down now may be back at the next interval.
                    if once { throw error }
                    say("upload failed: \(error)")
                }
                if once { return }
                try await Task.sleep(for: .seconds(interval * 60))
            }
        }

        func upload(to url: String, _ registration: Registration) async throws {
            let report = try await collect()
            let response = try await HTTPS.send("POST", url: url, body: report.serializedBytes, tls: try uploadTLS(registration))
            let answer = (try? JSONParser.parse(response.body)) ?? .null
            guard response.status == 200 else {
                // An agent below the minimum version, or one whose registration is gone, cannot go on.
                throw AgentFailure("upload refused (\(response.status)): \(answer["error"]?["message"]?.stringValue ?? "no answer")",
                                   final: response.status == 426 || response.status == 401)
            }
            say("uploaded to \(url): \(answer["activeAlerts"]?.intValue ?? 0) active alert(s)"
                + (answer["alerts"]?.arrayValue ?? []).compactMap(\.stringValue).map { "\n  \($0)" }.joined())
        }

        // MARK: Registration

        struct Registration {
            var id: String
            var role: String
            var uploadURL: String?
            var keyPath: String
            var certificatePath: String
        }

        /// The agent's registration, made now when --state holds none.
        func registered() async throws -> Registration {
            let fm = FileManager.default
            try fm.createDirectory(atPath: state, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let file = state + "/agent.json", keyPath = state + "/agent-key.pem", certificatePath = state + "/agent.pem"
            if let data = fm.contents(atPath: file), let json = try? JSONParser.parse(Array(data)), let id = json["id"]?.stringValue {
                guard json["role"]?.stringValue == role.rawValue else {
                    let other = json["role"]?.stringValue ?? ""
                    throw ValidationError("\(state) holds a \(other) agent; use another --state for a \(role.rawValue) agent")
                }
                return Registration(id: id, role: role.rawValue, uploadURL: json["uploadUrl"]?.stringValue, keyPath: keyPath,
                                    certificatePath: certificatePath)
            }
            let bearer: String
            if let token { bearer = token } else if let tokenFile, let text = try? String(contentsOfFile: tokenFile, encoding: .utf8) {
                bearer = text.trimmingCharacters(in: .whitespacesAndNewlines)
            } else {
                throw ValidationError(
                    "the agent is not registered yet: pass --token or --token-file (a Global or Hybrid Identity Administrator's access token)")
            }
            let machine = ProcessInfo.processInfo.hostName
            let key = try HealthAgentKey.make(machineName: machine)
            let body: JSONValue = ["role": .string(role.rawValue), "machineName": .string(machine),
                                   "agentVersion": .string(HealthAgentVersion.current.description),
                                   "certificateSigningRequest": .string(key.certificateSigningRequestPEM)]
            let base = server.hasSuffix("/") ? String(server.dropLast()) : server
            let response = try await HTTPS.send("POST", url: base + "/beta/connectHealth/agents",
                                                headers: [("Authorization", "Bearer \(bearer)"), ("Content-Type", "application/json")],
                                                body: body.serializedBytes, tls: try serverTLS())
            let answer = (try? JSONParser.parse(response.body)) ?? .null
            guard response.status == 201, let id = answer["id"]?.stringValue, let certificate = answer["certificate"]?.stringValue else {
                throw AgentFailure("registration refused (\(response.status)): \(answer["error"]?["message"]?.stringValue ?? "no answer")")
            }
            try write(key.privateKeyPEM, to: keyPath, mode: 0o600)
            try write(certificate, to: certificatePath, mode: 0o644)
            let record: JSONValue = ["id": .string(id), "role": .string(role.rawValue), "uploadUrl": answer["uploadUrl"] ?? .null]
            try write(record.serialized, to: file, mode: 0o600)
            say("registered \(role.rawValue) agent \(id) as \(machine)")
            return Registration(id: id, role: role.rawValue, uploadURL: answer["uploadUrl"]?.stringValue, keyPath: keyPath,
                                certificatePath: certificatePath)
        }

        func write(_ text: String, to path: String, mode: Int) throws {
            guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: mode]) else {
                throw AgentFailure("cannot write \(path)")
            }
        }

        func serverTLS() throws -> TLSConfiguration {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.minimumTLSVersion = .tlsv12
            if let caFile { configuration.trustRoots = .file(caFile) }
            return configuration
        }

        func uploadTLS(_ registration: Registration) throws -> TLSConfiguration {
            var configuration = try serverTLS()
            configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(registration.certificatePath).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: registration.keyPath, format: .pem))
            return configuration
        }

        // MARK: Reports

        func collect() async throws -> JSONValue {
            switch role {
            case .sync: return ["agentVersion": .string(HealthAgentVersion.current.description), "sync": try await syncHealth()]
            case .adds: return ["agentVersion": .string(HealthAgentVersion.current.description), "adds": await domainControllerHealth()]
            }
        }

        /// The sync engine's state as the data folder (or database) holds it: recent runs, export errors, quarantine,
        /// runs stopped at the deletion threshold whose deletions still wait for approval.
        func syncHealth() async throws -> JSONValue {
            try await storage.withStore { store in
                let tenant = try await StorageOptions.tenants(store, named: self.tenant)[0]
                let settings = try await SyncSettings.load(tenant: tenant.id, store: store)
                let issues = try await SyncCycle(directory: DirectoryService(store: store)).errors(tenant: tenant.id)
                func issue(_ entry: JSONValue) -> JSONValue {
                    ["distinguishedName": entry["distinguishedName"] ?? .null, "code": entry["code"] ?? .null, "message": entry["message"] ?? .null]
                }
                let runs = settings.runs.suffix(50).map { run -> JSONValue in
                    var kept: [String: JSONValue] = [:]
                    for key in ["id", "connector", "at", "status", "imported", "added", "updated", "deleted", "quarantined"] { kept[key] = run[key] }
                    kept["errors"] = .int(Int64(run["errors"]?.arrayValue?.count ?? 0))
                    return .object(kept)
                }
                let stops = settings.runs.filter { $0["status"] == "stopped-deletion-threshold-exceeded" }.map { run -> JSONValue in
                    ["runId": run["id"] ?? .null, "connector": run["connector"] ?? .null, "at": run["at"] ?? .null,
                     "pendingDeletions": .int(Int64(run["pendingDeletions"]?.arrayValue?.count ?? 0))]
                }
                return ["runs": .array(Array(runs)),
                        "exportErrors": .array(issues.filter { $0["state"] == "error" }.prefix(1000).map(issue)),
                        "quarantined": .array(issues.filter { $0["state"] == "quarantined" }.prefix(1000).map(issue)),
                        "deletionThresholdStops": .array(stops)]
            }
        }

        /// Connects to the domain controller, binds and reads its naming context, timing the bind and the search.
        func domainControllerHealth() async -> JSONValue {
            guard let ldapUrl, let bindDn, let bindPasswordFile, let baseDn else { return .null }
            var result: JSONValue = ["domainController": .string(ldapUrl), "reachable": false]
            do {
                let password = try String(contentsOfFile: bindPasswordFile, encoding: .utf8).trimmingCharacters(in: .newlines)
                let mode: LDAPTLS.Mode = ldapUrl.lowercased().hasPrefix("ldaps://") ? .ldaps : .startTLS
                let connection = try await LDAPConnection.connect(url: ldapUrl, tls: LDAPTLS(mode: mode, caFile: ldapCaFile), timeout: .seconds(15))
                let (bind, search) = try await connection.closing { connection in
                    let clock = ContinuousClock()
                    let bind = try await clock.measure { try await connection.bind(dn: bindDn, password: password) }
                    let search = try await clock.measure {
                        _ = try await connection.search(base: baseDn, scope: .base, filter: "(objectClass=*)", attributes: ["distinguishedName"])
                    }
                    return (bind, search)
                }
                result["reachable"] = true
                result["bindMilliseconds"] = .double(Self.milliseconds(bind))
                result["searchMilliseconds"] = .double(Self.milliseconds(search))
            } catch {
                result["error"] = .string(String(describing: error).prefix(500).description)
            }
            return result
        }

        static func milliseconds(_ duration: Duration) -> Double {
            Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
        }
    }

    struct Alerts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List Connect Health alerts (active first, newest first).")
        @OptionGroup var storage: StorageOptions
        @Option(help: "Tenant id or domain (default: the only tenant).") var tenant: String?
        @Flag(help: "Only active alerts.") var active = false
        @Flag(help: "Print JSON.") var json = false
        /// Interop tests read alerts at a running debug server's moved clock.
        @OptionGroup var clockOptions: ClockOptions
        var clock: any TimeSource { clockOptions.clock }

        func run() async throws {
            try await storage.withStore { store in
                let tenant = try await StorageOptions.tenants(store, named: self.tenant)[0]
                let health = HealthService(directory: DirectoryService(store: store), clock: clock)
                let alerts = try await health.alerts(tenant: tenant.id, activeOnly: active)
                if json {
                    say(JSONValue.array(alerts).serialized)
                } else if alerts.isEmpty {
                    say("no health alerts")
                } else {
                    for alert in alerts {
                        let resolved = alert["resolvedDate"]?.stringValue.map { " → resolved \($0)" } ?? ""
                        say("\(alert["state"]?.stringValue ?? "")  \(alert["level"]?.stringValue ?? "")  \(alert["displayName"]?.stringValue ?? "")\n"
                            + "    \(alert["monitorRoleType"]?.stringValue ?? "") on \(alert["machineName"]?.stringValue ?? ""), "
                            + "since \(alert["createdDate"]?.stringValue ?? "")\(resolved)\n"
                            + "    \(alert["description"]?.stringValue ?? "")")
                    }
                }
            }
        }
    }
}

/// Why the agent stopped: a refusal or a network failure, printed as `Error: …` without the usage text a
/// command-line mistake gets.
struct AgentFailure: Error, CustomStringConvertible {
    let description: String
    /// Retrying cannot help (the agent is too old, or its registration is gone): a running agent stops.
    var final = false
    init(_ description: String, final: Bool = false) {
        self.description = description
        self.final = final
    }
}

/// One HTTPS request over its own connection (SwiftNIO and swift-nio-ssl, so a client certificate can be presented):
/// what the health agent needs, and no more.
enum HTTPS {
    struct Response {
        var status: Int
        var body: [UInt8]
    }

    static func send(_ method: String, url text: String, headers: [(String, String)] = [("Content-Type", "application/json")],
                     body: [UInt8], tls: TLSConfiguration) async throws -> Response {
        guard let url = URL(string: text), url.scheme == "https", let host = url.host else { throw AgentFailure("\(text) is not an https:// URL") }
        let port = url.port ?? 443
        let context = try NIOSSLContext(configuration: tls)
        let name = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        let serverName = name.contains(":") || name.split(separator: ".").allSatisfy({ Int($0) != nil }) ? nil : name
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(15))
            .connect(host: name, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: serverName))
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            let path = url.path.isEmpty ? "/" : url.path
            var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: path + (url.query.map { "?" + $0 } ?? ""))
            head.headers.add(name: "Host", value: url.port.map { "\(host):\($0)" } ?? host)
            head.headers.add(name: "Content-Length", value: "\(body.count)")
            head.headers.add(name: "Connection", value: "close")
            for (name, value) in headers { head.headers.add(name: name, value: value) }
            try await outbound.write(.head(head))
            if !body.isEmpty { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
            try await outbound.write(.end(nil))
            var response = Response(status: 0, body: [])
            for try await part in inbound {
                switch part {
                case .head(let h): response.status = Int(h.status.code)
                case .body(var buffer): response.body += buffer.readBytes(length: buffer.readableBytes) ?? []
                case .end: return response
                }
            }
            throw AgentFailure("\(text): the connection closed before the response ended")
        }
    }
}

extension Serve {
    /// The health listener `--health-listen HOST:PORT` asks for (none without it), serving the deployment's
    /// certificate: the organisation's (`--tls-cert`, `served`, reloaded with the main listener's), else the data
    /// folder's local one (made now when `--http` left it unmade). A malformed address stops `serve` at start.
    func healthListener(app: TesseraApp, tls: TLSMaterial?, served: ServerTLS? = nil, names: [String]) throws -> [HealthListener] {
        guard let healthListen else { return [] }
        guard let colon = healthListen.lastIndex(of: ":"), let port = Int(healthListen[healthListen.index(after: colon)...]),
              (0...65_535).contains(port), colon > healthListen.startIndex else {
            throw ValidationError("--health-listen \(healthListen) is not HOST:PORT")
        }
        let host = String(healthListen[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        if let served {
            return [HealthListener(app: app, host: host, port: port, served: served) { url in say("Health agents upload to \(url)") }]
        }
        let material = try tls ?? TLSMaterial.loadOrCreate(directory: storage.data + "/tls", hosts: [self.host, host] + names)
        return [HealthListener(app: app, host: host, port: port, tls: material) { url in say("Health agents upload to \(url)") }]
    }
}
