public import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A throwaway PostgreSQL primary and its streaming-replication standby on free loopback ports, started by
/// `scripts/pg-pair-up` in a folder of its own for one failover test, acted on by `scripts/pg-pair-ctl` and removed by
/// `scripts/pg-pair-down`. The servers are real PostgreSQL: the test command installs PostgreSQL 15 for its own server.
public final class PostgresPair: Sendable {
    public let folder: URL
    public let primaryPort: Int
    public let standbyPort: Int
    public let database = "tessera_failover"

    /// Whether this machine has a PostgreSQL server to start (the test command always does: it starts one itself).
    public static var available: Bool {
        FileManager.default.fileExists(atPath: "/usr/lib/postgresql") && ProcessInfo.processInfo.environment["TESSERA_TEST_POSTGRES_URL"]?.isEmpty == false
    }

    private init(folder: URL, primaryPort: Int, standbyPort: Int) {
        self.folder = folder
        self.primaryPort = primaryPort
        self.standbyPort = standbyPort
    }

    /// Starts a pair; with `sync` a commit waits for the standby too (`synchronous_standby_names`).
    public static func start(sync: Bool) async throws -> PostgresPair {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-pair-\(UUID().uuidString.prefix(8))")
        let ports = try freePorts(2)
        let pair = PostgresPair(folder: folder, primaryPort: ports[0], standbyPort: ports[1])
        do {
            try await script("pg-pair-up", (sync ? ["--sync"] : []) + [folder.path, String(ports[0]), String(ports[1]), pair.database])
        } catch {
            await pair.down()
            throw error
        }
        return pair
    }

    /// Both servers in the URL's order, the router choosing the one that takes writes.
    public var url: String {
        "postgres://postgres@127.0.0.1:\(primaryPort),127.0.0.1:\(standbyPort)/\(database)?target_session_attrs=read-write&sslmode=disable"
    }

    /// The URL of one server alone (for looking at it from the side).
    public func url(port: Int) -> String {
        "postgres://postgres@127.0.0.1:\(port)/\(database)?sslmode=disable"
    }

    /// The primary dies at once, as a crash would (no checkpoint, no goodbye to clients).
    public func stopPrimary() async throws { try await Self.script("pg-pair-ctl", [folder.path, "stop-primary"]) }

    /// The standby stops (a fast shutdown); with a synchronous pair, commits on the primary then wait for it.
    public func stopStandby() async throws { try await Self.script("pg-pair-ctl", [folder.path, "stop-standby"]) }

    /// The standby becomes the primary; returns once it takes writes.
    public func promote() async throws { try await Self.script("pg-pair-ctl", [folder.path, "promote"]) }

    /// The server that is down is made a streaming standby of the one that is up (a fresh copy, as `pg_rewind` would
    /// leave it), so the pair can fail over again the other way.
    public func rejoin() async throws { try await Self.script("pg-pair-ctl", [folder.path, "rejoin"]) }

    /// Runs `sql` on one server with psql; its output, one row a line.
    public func psql(port: Int, _ sql: String) async throws -> String {
        try await Self.run(Self.binary("psql"), ["-q", "-X", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", String(port),
                                                 "-U", "postgres", "-d", database, "-c", sql])
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Stops both servers and removes the folder.
    public func down() async {
        _ = try? await Self.script("pg-pair-down", [folder.path])
    }

    // MARK: Running the scripts

    public struct Failed: Error, CustomStringConvertible {
        public let description: String
    }

    static var scripts: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts")
    }

    static func binary(_ name: String) -> String {
        let debian = "/usr/lib/postgresql/15/bin/\(name)"
        if FileManager.default.isExecutableFile(atPath: debian) { return debian }
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        for version in versions.sorted().reversed() where FileManager.default.isExecutableFile(atPath: "/usr/lib/postgresql/\(version)/bin/\(name)") {
            return "/usr/lib/postgresql/\(version)/bin/\(name)"
        }
        return "/usr/bin/\(name)"
    }

    @discardableResult
    static func script(_ name: String, _ arguments: [String]) async throws -> String {
        try await run(scripts.appendingPathComponent(name).path, arguments)
    }

    /// Runs a program and returns its standard output (see `ChildProcess.run`).
    static func run(_ path: String, _ arguments: [String]) async throws -> String {
        do {
            return try await ChildProcess.run(path, arguments)
        } catch let failure as ChildProcess.Failed {
            throw Failed(description: failure.description)
        }
    }

    /// Loopback ports nothing listens on now (the kernel's choice for port 0, each socket held until all are chosen).
    static func freePorts(_ count: Int) throws -> [Int] {
        var sockets: [Int32] = []
        defer { for socket in sockets { close(socket) } }
        var ports: [Int] = []
        for _ in 0..<count {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw Failed(description: "no socket") }
            sockets.append(fd)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = 0
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
            guard bound == 0 else { throw Failed(description: "bind failed") }
            let named = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
            guard named == 0 else { throw Failed(description: "getsockname failed") }
            ports.append(Int(UInt16(bigEndian: address.sin_port)))
        }
        return ports
    }
}
