import Foundation
import TesseraTesting
import Testing

@testable import Kerberos

/// The env file of the domain controller for live tests, if there is one.
let liveDomainControllerEnvironment: String? =
    ProcessInfo.processInfo.environment["TESSERA_TEST_AD_ENV"].flatMap { $0.isEmpty ? nil : $0 }

/// Fresh tickets from the running Samba DC that TESSERA_TEST_AD_ENV names (scripts/ad-up's env file): a computer
/// account takes a ticket for a service account of its own through MIT's GSSAPI (scripts/kerberos-fixtures --dc,
/// which deletes the accounts afterwards); the validator accepts it, reads the computer's SID from the PAC, and
/// MIT's initiator accepts the validator's mutual-authentication reply.
@Suite(.enabled(if: liveDomainControllerEnvironment != nil, "TESSERA_TEST_AD_ENV is not set"), .serialized)
struct LiveKerberosTests {
    static var environment: String? { liveDomainControllerEnvironment }

    struct Capture {
        let folder: URL
        let metadata: [String: Any]

        func token(_ name: String) throws -> [UInt8] {
            let text = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
            return [UInt8](try #require(Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines))))
        }
        var keys: ServiceKeys {
            get throws { try ServiceKeys(keytab: Data(contentsOf: folder.appendingPathComponent("service.keytab"))) }
        }
        func string(_ key: String) throws -> String { try #require(metadata[key] as? String) }
        /// When the script took the tickets (its fixtures.json): the instant they are validated at, so the test
        /// depends on the KDC's timestamps, not on when it runs.
        var capturedAt: Date {
            get throws { Date(timeIntervalSince1970: TimeInterval(try #require(metadata["capturedAt"] as? Int))) }
        }
    }

    /// Runs scripts/kerberos-fixtures --dc, answers its mutual-authentication context with `answer` (the reply
    /// token for its SPNEGO token), and returns what it wrote once it has finished.
    static func capture(answer: ([UInt8], Capture) async throws -> [UInt8]) async throws -> Capture {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-kerberos-\(UUID().uuidString)")
        let log = folder.deletingLastPathComponent().appendingPathComponent(folder.lastPathComponent + ".log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        // Not Foundation's `Process`, whose `run()` crashed the test process (ChildProcess.start says why).
        let process = try ChildProcess.start(root.appendingPathComponent("scripts/kerberos-fixtures").path,
                                             ["--dc", try #require(environment), folder.path], errorsTo: log.path)
        let token = folder.appendingPathComponent("mutual-token.b64")
        let deadline = ContinuousClock.now + .seconds(120)
        while !FileManager.default.fileExists(atPath: token.path), process.isRunning, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        func failure() -> KerberosError {
            let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            return KerberosError.malformed("scripts/kerberos-fixtures failed: \(output)")
        }
        guard FileManager.default.fileExists(atPath: token.path) else {
            process.terminate()
            throw failure()
        }
        let metadata = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("fixtures.json")))
        let capture = Capture(folder: folder, metadata: try #require(metadata as? [String: Any]))
        let reply = try await answer(try capture.token("mutual-token.b64"), capture)
        try Data(reply).base64EncodedString().write(
            to: folder.appendingPathComponent("mutual-reply.b64"), atomically: true, encoding: .utf8)
        // Polled, not `waitUntilExit()`, which would hold one of the few threads every test's tasks run on.
        while process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        guard process.succeeded == true else { throw failure() }
        return capture
    }

    func validator(_ capture: Capture, spn key: String = "servicePrincipal") throws -> APRequestValidator {
        APRequestValidator(
            servicePrincipal: PrincipalName(try capture.string(key)), realm: try capture.string("realm"),
            keys: try capture.keys, replayCache: InMemoryReplayCache())
    }

    @Test func aFreshComputerTicketFromSambaValidatesAndMITAcceptsOurMutualAuthenticationReply() async throws {
        let capture = try await Self.capture { token, capture in
            let accepted = try await validator(capture).validate(token, now: try capture.capturedAt)
            return try #require(accepted.replyToken)
        }
        defer { try? FileManager.default.removeItem(at: capture.folder) }
        // MIT's initiator took our AP-REP (in a SPNEGO NegTokenResp) and completed the context with mutual
        // authentication.
        let mutual = try String(contentsOf: capture.folder.appendingPathComponent("mutual.txt"), encoding: .utf8)
        #expect(mutual.trimmingCharacters(in: .whitespacesAndNewlines) == "complete=True mutual=True")

        let service = try validator(capture)
        let token = try capture.token("ws01-spnego.b64")
        let accepted = try await service.validate(token, now: try capture.capturedAt)
        #expect(accepted.client.description == (try capture.string("client")))
        let domainSid = try SecurityIdentifier(
            bytes: [UInt8](try #require(Data(base64Encoded: try capture.string("domainSidBase64")))))
        #expect(accepted.pac.logonInfo.domainSid == domainSid)
        #expect(accepted.pac.logonInfo.userSid == domainSid.appending(accepted.pac.logonInfo.userId))
        #expect(accepted.pac.logonInfo.primaryGroupId == 515)

        await #expect(throws: KerberosError(.replay, "")) { try await service.validate(token, now: try capture.capturedAt) }
        let rc4 = try self.validator(capture, spn: "rc4ServicePrincipal")
        await #expect(throws: KerberosError(.unsupportedEncryptionType, "")) {
            try await rc4.validate(try capture.token("ws01-rc4.b64"), now: try capture.capturedAt)
        }
    }
}
