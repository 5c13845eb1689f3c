import Foundation
import Testing
import WebAuthn
import SwiftASN1
import X509

/// Attestation formats against real published statements: each is valid as published, and changing one thing
/// the statement binds makes it fail with the format's own code.
@Suite struct AttestationTests {
    /// Registers `vector` after `change` has altered its response.
    static func verify(_ path: String, requireTrust: Bool = false, party: RelyingParty? = nil,
                       _ change: (inout RegistrationResponse) -> Void = { _ in }) async throws -> VerifiedRegistration {
        let vector = Vector.named(path)
        var response = try RegistrationResponse(json: vector.responseJSON)
        change(&response)
        let rp: RelyingParty
        if let party { rp = party } else { rp = try await vector.relyingParty() }
        return try await rp.verifyRegistration(response, challenge: vector.challenge,
                                               requireUserVerification: vector.requireUserVerification,
                                               requireTrustedAttestation: requireTrust)
    }

    static func code(_ path: String, requireTrust: Bool = false, party: RelyingParty? = nil,
                     _ change: (inout RegistrationResponse) -> Void = { _ in }) async -> WebAuthnError.Code? {
        do {
            _ = try await verify(path, requireTrust: requireTrust, party: party, change)
            return nil
        } catch {
            return (error as? WebAuthnError)?.code
        }
    }

    /// A member added to clientDataJSON: type, challenge and origin stay valid, but its hash changes.
    static func extendClientData(_ response: inout RegistrationResponse) {
        response.clientDataJSON.removeLast()
        response.clientDataJSON += Array(",\"extra\":1}".utf8)
    }

    /// Rewrites one member of the attestation statement.
    static func editStatement(_ response: inout RegistrationResponse, _ edit: (inout [CBORValue.Pair]) -> Void) {
        let object = try! CBORDecoder().decode(response.attestationObject)
        var pairs = object.mapValue!
        let index = pairs.firstIndex { $0.key == .text("attStmt") }!
        var statement = pairs[index].value.mapValue!
        edit(&statement)
        pairs[index].value = .map(statement)
        response.attestationObject = CBOREncoder.encode(.map(pairs))
    }

    static func replaceBytes(_ key: String, in response: inout RegistrationResponse, _ change: (inout [UInt8]) -> Void) {
        editStatement(&response) { statement in
            let index = statement.firstIndex { $0.key == .text(key) }!
            var bytes = statement[index].value.bytesValue!
            change(&bytes)
            statement[index].value = .bytes(bytes)
        }
    }

    struct Binding: CustomStringConvertible, Sendable {
        let path: String
        let format: String
        let type: AttestationType
        let codeWhenClientDataChanges: WebAuthnError.Code
        var description: String { path }
    }

    static let bindings: [Binding] = [
        Binding(path: "published/tpm-rs256-surface-pro-4-py-webauthn.json", format: "tpm", type: .attCA, codeWhenClientDataChanges: .attestationTPMCertInfo),
        Binding(path: "published/tpm-es256-webauthn-io-py-webauthn.json", format: "tpm", type: .attCA, codeWhenClientDataChanges: .attestationTPMCertInfo),
        Binding(path: "published/android-key-pixel-8a-py-webauthn.json", format: "android-key", type: .basic, codeWhenClientDataChanges: .attestationSignature),
        Binding(path: "published/android-key-pixel-root5-py-webauthn.json", format: "android-key", type: .basic, codeWhenClientDataChanges: .attestationSignature),
        Binding(path: "published/android-safetynet-py-webauthn.json", format: "android-safetynet", type: .basic, codeWhenClientDataChanges: .attestationNonceMismatch),
        Binding(path: "published/apple-anonymous-py-webauthn.json", format: "apple", type: .anonCA, codeWhenClientDataChanges: .attestationNonceMismatch),
        Binding(path: "published/packed-es256-yubikey-py-webauthn.json", format: "packed", type: .basic, codeWhenClientDataChanges: .attestationSignature),
        Binding(path: "published/fido-u2f-yubikey-py-webauthn.json", format: "fido-u2f", type: .basic, codeWhenClientDataChanges: .attestationSignature),
    ]

    @Test(arguments: bindings)
    func aPublishedStatementVerifiesAndChainsToItsRoot(_ binding: Binding) async throws {
        let result = try await Self.verify(binding.path, requireTrust: true)
        #expect(result.format == binding.format && result.attestationType == binding.type && result.attestationTrusted)
        #expect(!result.attestationCertificates.isEmpty)
    }

    @Test(arguments: bindings)
    func theStatementIsBoundToThisCeremony(_ binding: Binding) async {
        #expect(await Self.code(binding.path, Self.extendClientData) == binding.codeWhenClientDataChanges)
    }

    @Test(arguments: bindings)
    func anotherRootIsNotTrusted(_ binding: Binding) async throws {
        let vector = Vector.named(binding.path)
        let other = try Certificate(pemEncoded: String(contentsOf: Vector.folder.deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("interop/webauthn/testpki/attestation-root.pem"), encoding: .utf8))
        let time = vector.verificationTime
        let party = RelyingParty(id: vector.input["rpId"] as! String, origins: vector.input["origins"] as! [String],
                                 trustAnchors: [other], clock: { time })
        let result = try await Self.verify(binding.path, party: party)
        #expect(!result.attestationTrusted)
        #expect(await Self.code(binding.path, requireTrust: true, party: party) == .attestationUntrusted)
    }

    @Test func aTPMStatementMustCertifyTheCredentialKey() async {
        let path = "published/tpm-rs256-surface-pro-4-py-webauthn.json"
        #expect(await Self.code(path) { Self.replaceBytes("pubArea", in: &$0) { $0[$0.count - 1] ^= 1 } } == .attestationTPMPubArea)
        #expect(await Self.code(path) { Self.replaceBytes("certInfo", in: &$0) { $0[0] ^= 1 } } == .attestationTPMCertInfo)
        #expect(await Self.code(path) { Self.replaceBytes("certInfo", in: &$0) { $0[$0.count - 40] ^= 1 } } == .attestationTPMCertInfo)
        #expect(await Self.code(path) { Self.replaceBytes("sig", in: &$0) { $0[10] ^= 1 } } == .attestationSignature)
        #expect(await Self.code(path) { Self.replaceBytes("pubArea", in: &$0) { $0 += [0] } } == .attestationTPMPubArea)
        #expect(await Self.code(path) { response in
            Self.editStatement(&response) { $0 = $0.map { $0.key == .text("ver") ? .init($0.key, .text("1.2")) : $0 } }
        } == .attestationStatementMalformed)
    }

    @Test func anExpiredChainIsNotTrusted() async throws {
        let vector = Vector.named("published/tpm-rs256-surface-pro-4-py-webauthn.json")
        let anchors = try (vector.input["trustAnchors"] as! [String]).map { try Certificate(pemEncoded: $0) }
        let later = Date(timeIntervalSince1970: 1_900_000_000) // 2030: the AIK certificate has expired
        let party = RelyingParty(id: vector.input["rpId"] as! String, origins: vector.input["origins"] as! [String],
                                 trustAnchors: anchors, clock: { later })
        let result = try await Self.verify(vector.path, party: party)
        #expect(result.format == "tpm" && !result.attestationTrusted)
    }

    @Test func aStaleSafetyNetResponseIsRefused() async throws {
        let vector = Vector.named("published/android-safetynet-py-webauthn.json")
        let late = vector.verificationTime.addingTimeInterval(120)
        let anchors = try (vector.input["trustAnchors"] as! [String]).map { try Certificate(pemEncoded: $0) }
        let party = RelyingParty(id: vector.input["rpId"] as! String, origins: vector.input["origins"] as! [String],
                                 trustAnchors: anchors, clock: { late })
        #expect(await Self.code(vector.path, party: party) == .attestationSafetyNetTimestamp)
    }

    @Test func windowsHelloAndSyncedProvidersHaveNames() {
        #expect(KnownAuthenticators.windowsHello.count == 3)
        for aaguid in ["08987058-cadc-4b81-b6e1-30de50dcbe96", "9ddd1817-af5a-4672-a2b9-3e3dd95000a9", "6028b017-b1d4-4c02-b4b3-afcdafc96bb2"] {
            #expect(KnownAuthenticators.isWindowsHello(AAGUID(aaguid)!))
        }
        #expect(KnownAuthenticators.name(of: AAGUID("fbfc3007-154e-4ecc-8c0b-6e020557d7bd")!, metadata: nil) == "iCloud Keychain")
        #expect(!KnownAuthenticators.isWindowsHello(.zero))
    }

    @Test func aWindowsHelloTPMRegistrationIsNamed() async throws {
        let result = try await Self.verify("published/tpm-rs256-lenovo-carbon-x1-py-webauthn.json")
        #expect(result.authenticatorName?.hasPrefix("Windows Hello") == true)
        #expect(result.passkeyType == .deviceBound)
    }
}
