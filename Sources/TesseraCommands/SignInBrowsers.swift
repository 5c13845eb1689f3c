import ArgumentParser
import Crypto
import Foundation
import WebAuthn

/// `tessera bench signin`'s simulated browsers in a process of their own (hidden: `bench signin-browsers`), so that the
/// bench process is the server alone and its CPU is the server's, as a deployment's browsers are on other machines.
///
/// The conversation, one JSON object a line: the bench writes a `BrowserPlan` to this process's standard input; it
/// answers `ready`. Then, for each `go` line, it runs one HTTP window (`plan.seconds`, one keep-alive connection a user)
/// and answers a `BrowserWindow`. At the end of its input it exits.
struct SignInBrowsers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signin-browsers", abstract: "bench signin's simulated browsers (started by bench signin).", shouldDisplay: false)

    func run() async throws {
        guard let first = await BrowserLines.standardInput.next() else { throw ValidationError("no plan on standard input") }
        let plan = try BrowserPlan.decode(first)
        let setup = try plan.setup()
        say("ready")
        while let line = await BrowserLines.standardInput.next() {
            guard line == "go" else { throw ValidationError("unexpected line: \(line)") }
            let cpu = TrafficBench.processorSeconds(children: false)
            var window = try await SignInBench.window(setup: setup, port: plan.port, seconds: plan.seconds, concurrency: plan.users.count)
            window.browsersCPU = TrafficBench.processorSeconds(children: false) - cpu
            say(try window.encoded())
        }
    }
}

/// What the browsers' process needs: where the server is, the tenant and web app, and each user's software passkey
/// (its P-256 private key, raw, base64url).
struct BrowserPlan: Codable, Equatable, Sendable {
    struct User: Codable, Equatable, Sendable {
        let id: String
        let privateKey: String
        let credentialID: String
    }

    let port: Int
    let seconds: Double
    let tenant: String
    let origin: String
    let clientID: String
    let clientSecret: String
    let redirectURI: String
    let users: [User]

    init(setup: Setup, port: Int, seconds: Double, concurrency: Int) {
        self.port = port
        self.seconds = seconds
        tenant = setup.tenant
        origin = setup.origin
        clientID = setup.clientID
        clientSecret = setup.clientSecret
        redirectURI = setup.redirectURI
        users = setup.users.prefix(concurrency).map {
            User(id: $0.id, privateKey: WebAuthn.Base64URL.encode($0.key.rawRepresentation), credentialID: WebAuthn.Base64URL.encode($0.credentialID))
        }
    }

    /// One line of JSON.
    func encoded() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    static func decode(_ line: String) throws -> BrowserPlan { try JSONDecoder().decode(BrowserPlan.self, from: Data(line.utf8)) }

    /// The sign-ins' setup on the browsers' side (no in-process verifier: the server's process measures that).
    func setup() throws -> Setup {
        let users = try users.map { user in
            guard let raw = WebAuthn.Base64URL.decode(user.privateKey), let credentialID = WebAuthn.Base64URL.decode(user.credentialID) else {
                throw ValidationError("a user's key or credential id is not base64url")
            }
            return Setup.User(id: user.id, key: try P256.Signing.PrivateKey(rawRepresentation: raw), credentialID: credentialID)
        }
        return Setup(tenant: tenant, origin: origin, rpIdHash: Array(SHA256.hash(data: Array("localhost".utf8))), clientID: clientID,
                     clientSecret: clientSecret, redirectURI: redirectURI, users: users, verify: { false })
    }
}

/// One HTTP window's sign-ins: how many, in how long, each step's latency, and (from the browsers' process) its CPU.
struct BrowserWindow: Codable, Equatable, Sendable {
    var signIns: Int
    var seconds: Double
    var steps: [SignInBench.Percentiles]
    var total: SignInBench.Percentiles
    /// The browsers' process's utime + stime over the window, when they ran in a process of their own.
    var browsersCPU: Double?

    var rate: Double { seconds > 0 ? Double(signIns) / seconds : 0 }

    func encoded() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    static func decode(_ line: String) throws -> BrowserWindow { try JSONDecoder().decode(BrowserWindow.self, from: Data(line.utf8)) }
}

/// The lines of a file descriptor, read on a thread of their own (a blocking read must not hold one of the few threads
/// Swift's concurrency runs tasks on: the server shares them).
final class BrowserLines: @unchecked Sendable {
    static let standardInput = BrowserLines(FileHandle.standardInput)

    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private var ended = false
    private let lock = NSLock()

    init(_ handle: FileHandle) { self.handle = handle }

    /// The next line without its newline, or nil at the end of the input.
    func next() async -> String? {
        await withCheckedContinuation { (continuation: CheckedContinuation<String?, Never>) in
            let thread = Thread { continuation.resume(returning: self.readLine()) }
            thread.start()
        }
    }

    private func readLine() -> String? {
        lock.lock()
        defer { lock.unlock() }
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            if ended {
                guard !buffer.isEmpty else { return nil }
                defer { buffer = [] }
                return String(decoding: buffer, as: UTF8.self)
            }
            let chunk = handle.availableData
            if chunk.isEmpty { ended = true } else { buffer += chunk }
        }
    }
}

/// The browsers' process as the bench sees it: started with the plan, then one window per `run()`.
final class BrowsersProcess: @unchecked Sendable {
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private let lines: BrowserLines

    init(plan: BrowserPlan) async throws {
        process.executableURL = URL(fileURLWithPath: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        process.arguments = ["bench", "signin-browsers"]
        process.standardInput = input
        process.standardOutput = output
        lines = BrowserLines(output.fileHandleForReading)
        try process.run()
        try send(try plan.encoded())
        guard let ready = await lines.next(), ready == "ready" else { throw ValidationError("the browsers' process did not start") }
    }

    private func send(_ line: String) throws {
        try input.fileHandleForWriting.write(contentsOf: Data((line + "\n").utf8))
    }

    /// One HTTP window, run by the browsers' process.
    func run() async throws -> BrowserWindow {
        try send("go")
        guard let line = await lines.next() else { throw ValidationError("the browsers' process ended (its error is above)") }
        return try BrowserWindow.decode(line)
    }

    /// Ends the browsers' process (its input closes) and waits for it.
    func finish() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}
