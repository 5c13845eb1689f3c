import Foundation
import Testing

@testable import Kerberos

/// The env file of the domain controller for live tests, if there is one.
let liveDomainControllerEnvironment: String? =
    ProcessInfo.processInfo.environment["TESSERA_TEST_AD_ENV"].flatMap { $0.isEmpty ? nil : $0 }

/// Fresh tickets from the running Samba DC that TESSERA_TEST_AD_ENV names (scripts/ad-up's env file): a computer
/// account takes a ticket for a service account of its own through MIT's GSSAPI (scripts/kerberos-fixtures --dc,
/// which deletes the accounts afterwards), and the validator accepts it and reads the computer's SID from the PAC.
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
    }

    static func capture() throws -> Capture {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-kerberos-\(UUID().uuidString)")
        let process = Process()
        process.executableURL = root.appendingPathComponent("scripts/kerberos-fixtures")
        process.arguments = ["--dc", try #require(environment), folder.path]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let output = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw KerberosError.malformed("scripts/kerberos-fixtures failed: \(String(decoding: output, as: UTF8.self))")
        }
        let metadata = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("fixtures.json")))
        return Capture(folder: folder, metadata: try #require(metadata as? [String: Any]))
    }

    @Test func aFreshComputerTicketFromSambaValidatesAndCarriesTheComputersSID() async throws {
        let capture = try Self.capture()
        defer { try? FileManager.default.removeItem(at: capture.folder) }
        let validator = APRequestValidator(
            servicePrincipal: PrincipalName(try capture.string("servicePrincipal")), realm: try capture.string("realm"),
            keys: try capture.keys, replayCache: InMemoryReplayCache())
        let token = try capture.token("ws01-spnego.b64")
        let accepted = try await validator.validate(token, now: Date())
        #expect(accepted.client.description == (try capture.string("client")))
        let domainSid = try SecurityIdentifier(
            bytes: [UInt8](try #require(Data(base64Encoded: try capture.string("domainSidBase64")))))
        #expect(accepted.pac.logonInfo.domainSid == domainSid)
        #expect(accepted.pac.logonInfo.userSid == domainSid.appending(accepted.pac.logonInfo.userId))
        #expect(accepted.pac.logonInfo.primaryGroupId == 515)
        #expect(accepted.replyToken != nil)

        await #expect(throws: KerberosError(.replay, "")) { try await validator.validate(token, now: Date()) }
        let rc4 = APRequestValidator(
            servicePrincipal: PrincipalName(try capture.string("rc4ServicePrincipal")), realm: try capture.string("realm"),
            keys: try capture.keys, replayCache: InMemoryReplayCache())
        await #expect(throws: KerberosError(.unsupportedEncryptionType, "")) {
            try await rc4.validate(try capture.token("ws01-rc4.b64"), now: Date())
        }
    }
}
