import Foundation
import Testing
import TesseraCore

/// Passkey profiles: evaluation over every combination of passkey type, attestation, key restrictions,
/// targeting and exclusion, in both phases; then Entra's rules for changing the configuration, and migration.
@Suite struct PasskeyPolicyTests {
    typealias Config = Fido2Configuration
    static let listed = "cb69481e-8ff7-4039-93ec-0a2729a154a8"     // a YubiKey 5 AAGUID
    static let unlisted = "ee882879-721c-4913-9775-3dfcce97072a"
    static let windowsHello = "08987058-cadc-4b81-b6e1-30de50dcbe96"
    static let engineering = "group-engineering"
    static let contractors = "group-contractors"

    enum Restriction: CaseIterable { case none, allow, block }
    enum Targeting: CaseIterable { case allUsers, memberOfTarget, notTargeted }

    struct Case: CustomStringConvertible, Sendable {
        var type: PasskeyKind
        var attested: Bool
        var aaguidListed: Bool
        var restriction: Restriction
        var profileTypes: Set<PasskeyKind>
        var attestationEnforced: Bool
        var targeting: Targeting
        var excluded: Bool
        var phase: Config.Phase
        var description: String {
            "\(type) attested:\(attested) listed:\(aaguidListed) \(restriction) profile:\(profileTypes.map(\.rawValue).sorted()) enforce:\(attestationEnforced) \(targeting) excluded:\(excluded) \(phase)"
        }
    }

    /// Every combination: passkey type × attested × listed × restriction (2 × 2 × 2 × 3), the profile's types and
    /// attestation (4 that Entra lets you save: synced never with attestation enforced), targeting × excluded ×
    /// phase (3 × 2 × 2): 1,152 cases.
    static let cases: [Case] = {
        var all: [Case] = []
        let typeSets: [Set<PasskeyKind>] = [[.deviceBound], [.synced], [.deviceBound, .synced]]
        for type in PasskeyKind.allCases {
            for attested in [false, true] {
                for listed in [false, true] {
                    for restriction in Restriction.allCases {
                        for types in typeSets {
                            for enforced in [false, true] where !(enforced && types.contains(.synced)) {
                                for targeting in Targeting.allCases {
                                    for excluded in [false, true] {
                                        for phase in [Config.Phase.registration, .signIn] {
                                            all.append(Case(type: type, attested: attested, aaguidListed: listed, restriction: restriction,
                                                            profileTypes: types, attestationEnforced: enforced, targeting: targeting,
                                                            excluded: excluded, phase: phase))
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return all
    }()

    static func configuration(for c: Case) -> Config {
        let restrictions: Config.KeyRestrictions = switch c.restriction {
        case .none: .init()
        case .allow: .init(isEnforced: true, enforcementType: .allow, aaGuids: [listed])
        case .block: .init(isEnforced: true, enforcementType: .block, aaGuids: [listed])
        }
        let profile = PasskeyProfile(id: Config.defaultProfileID, name: "Default passkey profile", passkeyTypes: c.profileTypes,
                                     attestationEnforcement: c.attestationEnforced ? .registrationOnly : .disabled, keyRestrictions: restrictions)
        let target = c.targeting == .allUsers ? Config.allUsers : engineering
        return Config(includeTargets: [.init(id: target, allowedPasskeyProfiles: [profile.id])],
                      excludeTargets: [.init(id: contractors)], defaultPasskeyProfile: profile.id, passkeyProfiles: [profile])
    }

    /// The rules, stated once, independently of the implementation's order of checks.
    static func expectedReasons(_ c: Case) -> Set<String> {
        if c.excluded { return ["userExcluded"] }
        if c.targeting == .notTargeted { return ["userNotInScope"] }
        var reasons: Set<String> = []
        if !c.profileTypes.contains(c.type) { reasons.insert("passkeyTypeNotAllowed") }
        if c.attestationEnforced && !c.attested { reasons.insert("attestationRequired") }
        if c.restriction == .allow && !c.aaguidListed { reasons.insert("aaguidNotAllowed") }
        if c.restriction == .block && c.aaguidListed { reasons.insert("aaguidBlocked") }
        return reasons.isEmpty ? ["allowed"] : reasons
    }

    @Test(arguments: cases)
    func evaluationFollowsTheRules(_ c: Case) {
        let config = Self.configuration(for: c)
        var groups: Set<String> = c.targeting == .memberOfTarget ? [Self.engineering] : []
        if c.excluded { groups.insert(Self.contractors) }
        let decision = config.evaluate(.init(type: c.type, aaguid: c.aaguidListed ? Self.listed : Self.unlisted, attested: c.attested),
                                       for: .init(userID: "user-1", groupIDs: groups), phase: c.phase)
        let expected = Self.expectedReasons(c)
        #expect(expected.contains(decision.reason), "got \(decision.reason): \(decision.message)")
        #expect(decision.allowed == (expected == ["allowed"]))
    }

    @Test func aUserInSeveralProfilesNeedsToSatisfyAnyOne() {
        let strict = PasskeyProfile(id: "00000000-0000-0000-0000-000000000002", name: "Admins", passkeyTypes: [.deviceBound],
                                    attestationEnforcement: .registrationOnly)
        var config = Config.tenantDefault
        config.passkeyProfiles.append(strict)
        config.includeTargets = [.init(id: Self.engineering, allowedPasskeyProfiles: [strict.id]),
                                 .init(id: "group-staff", allowedPasskeyProfiles: [Config.defaultProfileID])]
        let synced = Config.PasskeyFacts(type: .synced, aaguid: Self.unlisted, attested: false)
        let both = Config.Subject(userID: "u", groupIDs: [Self.engineering, "group-staff"])
        #expect(config.evaluate(synced, for: both, phase: .signIn).profileID == Config.defaultProfileID)
        let onlyStrict = Config.Subject(userID: "u", groupIDs: [Self.engineering])
        #expect(config.evaluate(synced, for: onlyStrict, phase: .signIn).reason == "passkeyTypeNotAllowed")
    }

    @Test func switchingSyncedOffRefusesSyncedPasskeysAlreadyRegistered() {
        var config = Config.tenantDefault
        let synced = Config.PasskeyFacts(type: .synced, aaguid: Self.unlisted, attested: false)
        let user = Config.Subject(userID: "u", groupIDs: [])
        #expect(config.evaluate(synced, for: user, phase: .signIn).allowed)
        config.passkeyProfiles[0].passkeyTypes = [.deviceBound]
        let decision = config.evaluate(synced, for: user, phase: .signIn)
        #expect(!decision.allowed && decision.reason == "passkeyTypeNotAllowed")
        #expect(decision.message.contains("synced"))
    }

    @Test(arguments: [
        // (allow list holds it, restrictions enforced, attestation enforced) → accepted?
        (true, true, false, true), (false, true, false, false), (true, false, false, false), (true, true, true, false),
    ])
    func windowsHelloNeedsAnExplicitAllowListWithoutAttestation(_ listed: Bool, _ enforced: Bool, _ attestation: Bool, _ accepted: Bool) {
        var config = Config.tenantDefault
        config.passkeyProfiles[0].passkeyTypes = [.deviceBound]
        config.passkeyProfiles[0].attestationEnforcement = attestation ? .registrationOnly : .disabled
        config.passkeyProfiles[0].keyRestrictions = .init(isEnforced: enforced, enforcementType: .allow,
                                                          aaGuids: listed ? [Self.windowsHello] : [Self.listed])
        let hello = Config.PasskeyFacts(type: .deviceBound, aaguid: Self.windowsHello, attested: true)
        let decision = config.evaluate(hello, for: .init(userID: "u", groupIDs: []), phase: .registration)
        #expect(decision.allowed == accepted, "\(decision.reason)")
        if !accepted { #expect(decision.reason == "windowsHelloNotAllowed") }
    }

    @Test func theDeprecatedAttestationFlagIsHonoured() {
        var config = Config.tenantDefault
        config.passkeyProfiles[0].passkeyTypes = [.deviceBound]
        config.isAttestationEnforced = true
        let unattested = Config.PasskeyFacts(type: .deviceBound, aaguid: Self.unlisted, attested: false)
        #expect(config.evaluate(unattested, for: .init(userID: "u", groupIDs: []), phase: .registration).reason == "attestationRequired")
    }

    @Test func aDisabledMethodAndAUserTargetAreHonoured() {
        var config = Config.tenantDefault
        let key = Config.PasskeyFacts(type: .deviceBound, aaguid: Self.unlisted, attested: false)
        config.includeTargets = [.init(id: "user-7", targetType: .user)]
        #expect(config.evaluate(key, for: .init(userID: "user-7", groupIDs: []), phase: .signIn).allowed)
        #expect(config.evaluate(key, for: .init(userID: "user-8", groupIDs: []), phase: .signIn).reason == "userNotInScope")
        config.state = .disabled
        #expect(config.evaluate(key, for: .init(userID: "user-7", groupIDs: []), phase: .signIn).reason == "fido2Disabled")
    }

    // MARK: - Entra's rules for changes

    static func refusal(_ next: Config, replacing previous: Config = .tenantDefault) -> String? {
        do {
            try next.validate(replacing: previous)
            return nil
        } catch {
            return error.message
        }
    }

    static func profile(_ n: Int, types: Set<PasskeyKind> = [.deviceBound]) -> PasskeyProfile {
        PasskeyProfile(id: "00000000-0000-0000-0000-00000000000\(n)", name: "Profile \(n)", passkeyTypes: types)
    }

    @Test func atMostThreeProfilesIncludingTheDefault() {
        var config = Config.tenantDefault
        config.passkeyProfiles += [Self.profile(2), Self.profile(3)]
        #expect(Self.refusal(config) == nil)
        config.passkeyProfiles.append(Self.profile(4))
        #expect(Self.refusal(config)?.contains("at most 3") == true)
    }

    @Test func theDefaultProfileCannotBeDeleted() {
        var config = Config.tenantDefault
        config.passkeyProfiles = [Self.profile(2)]
        config.defaultPasskeyProfile = Self.profile(2).id
        config.includeTargets = [.init(id: Config.allUsers, allowedPasskeyProfiles: [Self.profile(2).id])]
        #expect(Self.refusal(config)?.contains("cannot be deleted") == true)
    }

    @Test func anAssignedProfileCannotBeDeleted() {
        var previous = Config.tenantDefault
        previous.passkeyProfiles.append(Self.profile(2))
        previous.includeTargets.append(.init(id: Self.engineering, allowedPasskeyProfiles: [Self.profile(2).id]))
        var next = previous
        next.passkeyProfiles.removeLast()
        #expect(Self.refusal(next, replacing: previous)?.contains("assigned") == true)
        next.includeTargets.removeLast()
        #expect(Self.refusal(next, replacing: previous) == nil)
    }

    @Test func syncedPasskeysOnlyWithoutAttestation() {
        var config = Config.tenantDefault
        config.passkeyProfiles[0].attestationEnforcement = .registrationOnly
        #expect(Self.refusal(config)?.contains("synced passkeys are allowed only when attestation is not enforced") == true)
        config.passkeyProfiles[0].passkeyTypes = [.deviceBound]
        #expect(Self.refusal(config) == nil)
    }

    @Test func targetsMayNameOnlyExistingProfilesAndThePolicyStaysUnder20KB() {
        var config = Config.tenantDefault
        config.includeTargets.append(.init(id: Self.engineering, allowedPasskeyProfiles: ["00000000-0000-0000-0000-00000000000f"]))
        #expect(Self.refusal(config)?.contains("does not exist") == true)
        config = Config.tenantDefault
        config.passkeyProfiles[0].keyRestrictions = .init(isEnforced: true, enforcementType: .block,
            aaGuids: (0..<600).map { String(format: "%08x-0000-4000-8000-000000000000", $0) })
        #expect(Self.refusal(config)?.contains("20 KB") == true)
    }

    @Test(arguments: [(false, "deviceBound,synced", "disabled"), (true, "deviceBound", "registrationOnly")])
    func legacySettingsMigrateToADefaultProfile(_ enforced: Bool, _ types: String, _ enforcement: String) throws {
        let legacy = try Config(stored: [
            "state": "enabled", "isSelfServiceRegistrationAllowed": true, "isAttestationEnforced": .bool(enforced),
            "keyRestrictions": ["isEnforced": true, "enforcementType": "block", "aaGuids": [.string(Self.listed)]],
            "includeTargets": [["id": "all_users", "targetType": "group", "isRegistrationRequired": false]],
        ])
        let migrated = legacy.migrated()
        let profile = try #require(migrated.passkeyProfiles.first)
        #expect(migrated.passkeyProfiles.count == 1 && migrated.defaultPasskeyProfile == profile.id)
        #expect(migrated.json["passkeyProfiles"]?.arrayValue?.first?["passkeyTypes"]?.stringValue == types)
        #expect(profile.attestationEnforcement.rawValue == enforcement)
        #expect(profile.keyRestrictions == legacy.keyRestrictions)
        #expect(migrated.includeTargets[0].allowedPasskeyProfiles == [profile.id])
        #expect(migrated.migrated() == migrated)
    }

    @Test(arguments: [
        ["passkeyProfiles": [["name": "x", "passkeyTypes": "cloud"]]] as [String: JSONValue],
        ["passkeyProfiles": [["name": "", "passkeyTypes": "synced"]]],
        ["passkeyProfiles": [["name": "x", "passkeyTypes": "synced", "attestationEnforcement": "always"]]],
        ["keyRestrictions": ["isEnforced": true, "enforcementType": "allow", "aaGuids": ["not-a-guid"]]],
        ["state": "on"], ["isAttestationEnforced": "yes"], ["includeTargets": [["targetType": "group"]]],
        ["includeTargets": [["id": "g", "targetType": "device"]]], ["color": "blue"],
    ])
    func malformedPatchesAreRefused(_ patch: [String: JSONValue]) {
        #expect(throws: DirectoryError.self) { try Config.tenantDefault.patched(with: patch) }
    }
}
