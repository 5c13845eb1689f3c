import Testing
import TesseraCore

/// A Windows Hello AAGUID is what an authenticator says it is. The policy may hold a claimant to Windows Hello's
/// restrictions, but never treats a key as Windows Hello, or as device-bound, because of the AAGUID alone.
@Suite struct PasskeyClaimTests {
    typealias Config = Fido2Configuration
    static let windowsHello = "08987058-cadc-4b81-b6e1-30de50dcbe96"
    static let user = Config.Subject(userID: "u", groupIDs: [])

    /// A profile that lets Windows Hello in the way Entra's preview asks: listed in an enforced allow list, attestation
    /// not enforced.
    static func allowingWindowsHello(types: Set<PasskeyKind>) -> Config {
        var config = Config.tenantDefault
        config.passkeyProfiles[0].passkeyTypes = types
        config.passkeyProfiles[0].keyRestrictions = .init(isEnforced: true, enforcementType: .allow, aaGuids: [Self.windowsHello])
        return config
    }

    @Test func aClaimIsNotProof() {
        let claimed = Config.PasskeyFacts(type: .deviceBound, aaguid: Self.windowsHello, attested: false)
        #expect(claimed.claimsWindowsHello && !claimed.isWindowsHello)
        let proven = Config.PasskeyFacts(type: .deviceBound, aaguid: Self.windowsHello.uppercased(), attested: true)
        #expect(proven.claimsWindowsHello && proven.isWindowsHello)
        #expect(!Config.PasskeyFacts(type: .deviceBound, aaguid: "cb69481e-8ff7-4039-93ec-0a2729a154a8", attested: true).claimsWindowsHello)
    }

    @Test func anUnattestedWindowsHelloKeyIsAcceptedAsAClaimAndSaysSo() {
        let config = Self.allowingWindowsHello(types: [.deviceBound])
        let claimed = Config.PasskeyFacts(type: .deviceBound, aaguid: Self.windowsHello, attested: false)
        let decision = config.evaluate(claimed, for: Self.user, phase: .registration)
        #expect(decision.allowed)
        #expect(decision.message.contains("Windows Hello AAGUID is the authenticator's claim"), "\(decision.message)")
        let proven = Config.PasskeyFacts(type: .deviceBound, aaguid: Self.windowsHello, attested: true)
        #expect(!config.evaluate(proven, for: Self.user, phase: .registration).message.contains("claim"))
    }

    @Test func aWindowsHelloAAGUIDDoesNotMakeASyncedKeyDeviceBound() {
        // Windows Hello's passkeys are device-bound; one that claims its AAGUID and sets backup eligibility is synced.
        let config = Self.allowingWindowsHello(types: [.deviceBound])
        for phase in [Config.Phase.registration, .signIn] {
            let decision = config.evaluate(.init(type: .synced, aaguid: Self.windowsHello, attested: false), for: Self.user, phase: phase)
            #expect(!decision.allowed && decision.reason == "passkeyTypeNotAllowed", "\(decision.reason)")
        }
    }

    @Test func aClaimStillMeetsWindowsHellosRestrictions() {
        // Without an allow list naming it, a key claiming Windows Hello is refused as Windows Hello: a claim can make
        // the policy stricter, never looser.
        var config = Config.tenantDefault
        config.passkeyProfiles[0].passkeyTypes = [.deviceBound, .synced]
        let decision = config.evaluate(.init(type: .deviceBound, aaguid: Self.windowsHello, attested: false), for: Self.user, phase: .registration)
        #expect(!decision.allowed && decision.reason == "windowsHelloNotAllowed")
    }
}
