import Crypto
import Testing
import TesseraTesting
import WebAuthn

/// One test per verification step: a valid ceremony with exactly one thing changed must fail at that step, with
/// that step's code.
@Suite struct CeremonyStepTests {
    static let party = RelyingParty(id: "example.org", origins: ["https://example.org", "https://login.example.org"])
    static let challenge = SoftAuthenticator.Ceremony().challenge

    struct Case: CustomStringConvertible, Sendable {
        let description: String
        let code: WebAuthnError.Code
        let change: @Sendable (inout SoftAuthenticator.Ceremony) -> Void
        var requireUserVerification = true
        init(_ description: String, _ code: WebAuthnError.Code, requireUserVerification: Bool = true,
             _ change: @escaping @Sendable (inout SoftAuthenticator.Ceremony) -> Void) {
            self.description = description
            self.code = code
            self.requireUserVerification = requireUserVerification
            self.change = change
        }
    }

    static let sharedCases: [Case] = [
        Case("clientData type", .clientDataType) { $0.type = "payment.get" },
        Case("challenge", .clientDataChallenge) { $0.challenge = Array("another challenge of 16+ bytes".utf8) },
        Case("origin with a suffix", .clientDataOrigin) { $0.origin = "https://example.org.evil.com" },
        Case("origin with a prefix", .clientDataOrigin) { $0.origin = "https://evil.example.org" },
        Case("origin on another port", .clientDataOrigin) { $0.origin = "https://example.org:8443" },
        Case("origin with a path", .clientDataOrigin) { $0.origin = "https://example.org/" },
        Case("cross-origin iframe", .clientDataCrossOrigin) { $0.crossOrigin = true },
        Case("top origin", .clientDataTopOrigin) { $0.topOrigin = "https://embedder.example" },
        Case("token binding present", .clientDataTokenBinding) { $0.tokenBinding = "present" },
        Case("clientDataJSON not JSON", .clientDataMalformed) { $0.extraClientData = ",}" },
        Case("rpIdHash of another RP", .authDataRPIDHash) { $0.rpIDForHash = "evil.example" },
        Case("user not present", .authDataUserNotPresent) { $0.flags = [.userVerified] },
        Case("user not verified", .authDataUserNotVerified) { $0.flags = [.userPresent] },
        Case("backup state without eligibility", .authDataBackupStateWithoutEligibility) { $0.flags = [.userPresent, .userVerified, .backupState] },
        Case("trailing bytes after authenticator data", .authDataMalformed) { $0.authDataSuffix = [0x00] },
        Case("id and rawId differ", .credentialIdMismatch) { $0.id = Base64URL.encode([UInt8](repeating: 0xC2, count: 32)) },
        Case("credential type", .responseType) { $0.responseType = "password" },
    ]

    static let registrationCases: [Case] = sharedCases + [
        Case("registration without attested credential data", .authDataAttestedCredentialMissing) { $0.attested = false },
        Case("attested credential data cut short", .credentialPublicKeyMalformed) { $0.coseKey = [0xA5, 0x01] },
        Case("credential id of 1024 bytes", .credentialIdTooLong) {
            let long = [UInt8](repeating: 9, count: 1024)
            $0.credentialID = long; $0.rawID = long
        },
        Case("authData credential id differs from rawId", .credentialIdMismatch) { $0.credentialID = [UInt8](repeating: 0xC3, count: 32) },
        Case("COSE key not canonical", .credentialPublicKeyMalformed) {
            // kty and alg swapped: the same key, out of CTAP2's canonical order.
            $0.coseKey = [0xA2, 0x03, 0x26, 0x01, 0x02]
        },
        Case("COSE key with an unknown key type", .credentialPublicKeyUnsupported) {
            $0.coseKey = CBOREncoder.encode(.map([.init(.int(1), .int(4)), .init(.int(3), .int(-7))]))
        },
        Case("COSE curve and algorithm disagree", .credentialPublicKeyMalformed) {
            $0.coseKey = CBOREncoder.encode(.map([.init(.int(1), .int(2)), .init(.int(3), .int(-35)), .init(.int(-1), .int(1)),
                                                  .init(.int(-2), .bytes([UInt8](repeating: 1, count: 32))), .init(.int(-3), .bytes([UInt8](repeating: 1, count: 32)))]))
        },
        Case("unknown attestation format", .attestationUnsupportedFormat) { $0.format = "x-custom" },
        Case("none with a statement", .attestationStatementMalformed) { $0.statement = .map([.init(.text("sig"), .bytes([1]))]) },
        Case("packed self signature", .attestationSignature) { $0.packedSelf = true; $0.corruptSignature = true },
        Case("packed without sig", .attestationStatementMalformed) { $0.format = "packed"; $0.statement = .map([.init(.text("alg"), .int(-7))]) },
        Case("packed self with another algorithm", .attestationAlgorithmMismatch) {
            $0.format = "packed"; $0.statement = .map([.init(.text("alg"), .int(-257)), .init(.text("sig"), .bytes([1, 2, 3]))])
        },
        Case("fido-u2f without a certificate", .attestationStatementMalformed) {
            $0.format = "fido-u2f"; $0.statement = .map([.init(.text("sig"), .bytes([1]))])
        },
        Case("x5c entry not a certificate", .attestationCertificateMalformed) {
            $0.format = "packed"
            $0.statement = .map([.init(.text("alg"), .int(-7)), .init(.text("sig"), .bytes([1])), .init(.text("x5c"), .array([.bytes([0x30, 0x00])]))])
        },
    ]

    @Test(arguments: registrationCases)
    func registrationFailsAtTheStepThatWasChanged(_ test: Case) async {
        let authenticator = SoftAuthenticator()
        var ceremony = SoftAuthenticator.Ceremony()
        test.change(&ceremony)
        await #expect {
            try await Self.party.verifyRegistration(authenticator.register(ceremony), challenge: Self.challenge,
                                                    requireUserVerification: test.requireUserVerification)
        } throws: { error in
            #expect((error as? WebAuthnError)?.code == test.code, "\(error)")
            return true
        }
    }

    @Test func theUnchangedRegistrationVerifies() async throws {
        let authenticator = SoftAuthenticator()
        let result = try await Self.party.verifyRegistration(authenticator.register(), challenge: Self.challenge, requireUserVerification: true)
        #expect(result.format == "none" && result.attestationType == .none && !result.attestationTrusted)
        #expect(result.passkeyType == .deviceBound && result.userVerified && result.signCount == 1)
        #expect(result.publicKey.cose == authenticator.coseKey)
        var selfAttested = SoftAuthenticator.Ceremony()
        selfAttested.packedSelf = true
        selfAttested.flags = [.userPresent, .userVerified, .backupEligible, .backupState]
        let packed = try await Self.party.verifyRegistration(authenticator.register(selfAttested), challenge: Self.challenge, requireUserVerification: true)
        #expect(packed.attestationType == .self && packed.passkeyType == .synced && packed.backupState)
    }

    @Test func aSecondAllowedOriginIsAccepted() async throws {
        var ceremony = SoftAuthenticator.Ceremony()
        ceremony.origin = "https://login.example.org"
        _ = try await Self.party.verifyRegistration(SoftAuthenticator().register(ceremony), challenge: Self.challenge, requireUserVerification: true)
    }

    @Test func crossOriginIsAcceptedOnlyFromAnAllowedTopOrigin() async throws {
        let party = RelyingParty(id: "example.org", origins: ["https://example.org"], allowedTopOrigins: ["https://portal.example"])
        var ceremony = SoftAuthenticator.Ceremony()
        ceremony.crossOrigin = true
        ceremony.topOrigin = "https://portal.example"
        _ = try await party.verifyRegistration(SoftAuthenticator().register(ceremony), challenge: Self.challenge, requireUserVerification: true)
        ceremony.topOrigin = "https://other.example"
        await #expect { try await party.verifyRegistration(SoftAuthenticator().register(ceremony), challenge: Self.challenge, requireUserVerification: true) }
            throws: { ($0 as? WebAuthnError)?.code == .clientDataTopOrigin }
    }

    @Test func anAlgorithmOutsideTheAllowedListIsRefused() async {
        let party = RelyingParty(id: "example.org", origins: ["https://example.org"], allowedAlgorithms: [.eddsa])
        await #expect { try await party.verifyRegistration(SoftAuthenticator().register(), challenge: Self.challenge, requireUserVerification: true) }
            throws: { ($0 as? WebAuthnError)?.code == .credentialAlgorithmNotAllowed }
    }

    @Test func untrustedAttestationIsRefusedWhenTrustIsRequired() async {
        var ceremony = SoftAuthenticator.Ceremony()
        ceremony.packedSelf = true
        await #expect {
            try await Self.party.verifyRegistration(SoftAuthenticator().register(ceremony), challenge: Self.challenge,
                                                    requireUserVerification: true, requireTrustedAttestation: true)
        } throws: { ($0 as? WebAuthnError)?.code == .attestationUntrusted }
    }

    static let authenticationCases: [Case] = sharedCases + [
        Case("signature", .assertionSignature) { $0.corruptSignature = true },
        Case("a counter that did not increase", .assertionPossibleClone) { $0.signCount = 5 },
        Case("a counter that went back", .assertionPossibleClone) { $0.signCount = 4 },
        Case("a counter that went to zero", .assertionPossibleClone) { $0.signCount = 0 },
        Case("backup eligibility appeared", .authDataBackupEligibilityChanged) { $0.flags = [.userPresent, .userVerified, .backupEligible] },
        Case("another user handle", .assertionUserHandleMismatch) { $0.userHandle = .some([9, 9]) },
        Case("another credential", .credentialIdMismatch) {
            let other = [UInt8](repeating: 0xC2, count: 32)
            $0.rawID = other
        },
        Case("attested credential data in an assertion", .authDataMalformed) { $0.flags = [.userPresent, .userVerified, .attestedCredentialData] },
    ]

    @Test(arguments: authenticationCases)
    func authenticationFailsAtTheStepThatWasChanged(_ test: Case) throws {
        let authenticator = SoftAuthenticator()
        var ceremony = SoftAuthenticator.Ceremony()
        ceremony.signCount = 6
        test.change(&ceremony)
        let stored = try authenticator.stored(signCount: 5)
        #expect {
            try Self.party.verifyAuthentication(authenticator.authenticate(ceremony), challenge: Self.challenge, credential: stored,
                                                requireUserVerification: test.requireUserVerification)
        } throws: { error in
            #expect((error as? WebAuthnError)?.code == test.code, "\(error)")
            return true
        }
    }

    @Test func theUnchangedAssertionVerifiesAndReportsTheNewCounter() throws {
        let authenticator = SoftAuthenticator()
        var ceremony = SoftAuthenticator.Ceremony()
        ceremony.signCount = 6
        let result = try Self.party.verifyAuthentication(authenticator.authenticate(ceremony), challenge: Self.challenge,
                                                         credential: try authenticator.stored(signCount: 5), requireUserVerification: true)
        #expect(result.newSignCount == 6 && !result.backupState && !result.backupEligible && result.userVerified)
    }

    @Test func alwaysZeroCountersAreFine() throws {
        let authenticator = SoftAuthenticator()
        var ceremony = SoftAuthenticator.Ceremony()
        ceremony.signCount = 0
        ceremony.flags = [.userPresent, .userVerified, .backupEligible, .backupState]
        let result = try Self.party.verifyAuthentication(authenticator.authenticate(ceremony), challenge: Self.challenge,
                                                         credential: try authenticator.stored(signCount: 0, backupEligible: true),
                                                         requireUserVerification: true)
        #expect(result.newSignCount == 0 && result.backupState)
    }

    @Test func userVerificationIsCheckedOnlyWhenRequired() throws {
        let authenticator = SoftAuthenticator()
        var ceremony = SoftAuthenticator.Ceremony()
        ceremony.flags = [.userPresent]
        ceremony.signCount = 6
        let result = try Self.party.verifyAuthentication(authenticator.authenticate(ceremony), challenge: Self.challenge,
                                                         credential: try authenticator.stored(signCount: 5), requireUserVerification: false)
        #expect(!result.userVerified)
    }

    @Test func aDiscoverableSignInNeedsTheUserHandle() throws {
        let authenticator = SoftAuthenticator()
        var ceremony = SoftAuthenticator.Ceremony()
        ceremony.signCount = 6
        ceremony.userHandle = .some(nil)
        let response = authenticator.authenticate(ceremony)
        let stored = try authenticator.stored(signCount: 5)
        // With allowCredentials (a username was given) a missing handle is fine; without, it is refused.
        _ = try Self.party.verifyAuthentication(response, challenge: Self.challenge, credential: stored, requireUserVerification: true)
        #expect {
            try Self.party.verifyAuthentication(response, challenge: Self.challenge, credential: stored,
                                                requireUserVerification: true, requireUserHandle: true)
        } throws: { ($0 as? WebAuthnError)?.code == .assertionUserHandleMissing }
    }
}
