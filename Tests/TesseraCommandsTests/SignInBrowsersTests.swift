import Crypto
import Foundation
import Testing
@testable import TesseraCommands

/// `bench signin`'s browsers in a process of their own: the plan the bench hands them (users with their passkeys'
/// private keys) and the window they hand back, each as one line of JSON, and the line reader between the two.
@Suite struct SignInBrowsersTests {
    static func setup(users: Int) -> Setup {
        let users = (0..<users).map { i in
            Setup.User(id: "user-\(i)", key: P256.Signing.PrivateKey(), credentialID: (0..<32).map { UInt8(($0 + i) % 256) })
        }
        return Setup(tenant: "tenant-1", origin: "http://localhost:8080", rpIdHash: Array(SHA256.hash(data: Array("localhost".utf8))),
                     clientID: "client-1", clientSecret: "a secret/with+characters=", users: users, verify: { true })
    }

    @Test func planCarriesTheUsersPasskeysAcrossOneLine() throws {
        let setup = Self.setup(users: 3)
        let plan = BrowserPlan(setup: setup, port: 4321, seconds: 2.5, concurrency: 2)
        let line = try plan.encoded()
        #expect(!line.contains("\n"))
        let decoded = try BrowserPlan.decode(line)
        #expect(decoded == plan)
        #expect(decoded.port == 4321 && decoded.seconds == 2.5 && decoded.users.count == 2)

        let rebuilt = try decoded.setup()
        #expect(rebuilt.tenant == "tenant-1" && rebuilt.origin == "http://localhost:8080")
        #expect(rebuilt.clientID == "client-1" && rebuilt.clientSecret == "a secret/with+characters=")
        #expect(rebuilt.redirectURI == setup.redirectURI)
        #expect(rebuilt.rpIdHash == setup.rpIdHash)
        #expect(rebuilt.users.map(\.id) == ["user-0", "user-1"])
        for (original, copy) in zip(setup.users, rebuilt.users) {
            #expect(copy.credentialID == original.credentialID)
            #expect(copy.key.publicKey.rawRepresentation == original.key.publicKey.rawRepresentation)
            // The copy signs what the server verifies with the registered (original) public key.
            let signature = try copy.key.signature(for: Array("challenge".utf8))
            #expect(original.key.publicKey.isValidSignature(signature, for: Array("challenge".utf8)))
        }
    }

    @Test func planWithAKeyThatIsNotBase64URLIsRefused() throws {
        var object = try #require(JSONSerialization.jsonObject(with: Data(BrowserPlan(setup: Self.setup(users: 1), port: 1, seconds: 1, concurrency: 1).encoded().utf8)) as? [String: Any])
        object["users"] = [["id": "u", "privateKey": "not base64url!", "credentialID": "AAAA"]]
        let line = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        #expect(throws: (any Error).self) { try BrowserPlan.decode(line).setup() }
    }

    @Test func windowRoundTripsWithAndWithoutTheBrowsersCPU() throws {
        let steps = [SignInBench.Percentiles(median: 0.5, p99: 2.25), SignInBench.Percentiles(median: 1.5, p99: 3)]
        var window = BrowserWindow(signIns: 900, seconds: 3.0, steps: steps, total: .init(median: 2, p99: 5.25))
        #expect(window.rate == 300)
        #expect(try BrowserWindow.decode(window.encoded()) == window)
        #expect(try BrowserWindow.decode(window.encoded()).browsersCPU == nil)
        window.browsersCPU = 1.75
        let line = try window.encoded()
        #expect(!line.contains("\n"))
        #expect(try BrowserWindow.decode(line) == window)
        #expect(try BrowserWindow.decode(line).browsersCPU == 1.75)
        #expect(throws: (any Error).self) { try BrowserWindow.decode("ready") }
    }

    @Test func linesAreReadOneAtATimeAndTheLastWithoutANewline() async throws {
        let pipe = Pipe()
        let lines = BrowserLines(pipe.fileHandleForReading)
        try pipe.fileHandleForWriting.write(contentsOf: Data("ready\n{\"a\":1}\n".utf8))
        #expect(await lines.next() == "ready")
        #expect(await lines.next() == "{\"a\":1}")
        try pipe.fileHandleForWriting.write(contentsOf: Data("go\nlast".utf8))
        try pipe.fileHandleForWriting.close()
        #expect(await lines.next() == "go")
        #expect(await lines.next() == "last")
        #expect(await lines.next() == nil)
    }
}
