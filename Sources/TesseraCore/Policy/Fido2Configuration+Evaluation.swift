/// Whether a passkey is acceptable for a user, at registration or at sign-in: a pure function of the policy, the
/// user's memberships and what is known about the passkey.
extension Fido2Configuration {
    /// What the policy needs to know about a passkey.
    public struct PasskeyFacts: Sendable, Hashable {
        public var type: PasskeyKind
        /// Lowercase `8-4-4-4-12`.
        public var aaguid: String
        /// Whether its attestation was verified and chained to a trust anchor (at registration; recorded since as
        /// the method's `attestationLevel`).
        public var attested: Bool
        public init(type: PasskeyKind, aaguid: String, attested: Bool) {
            self.type = type
            self.aaguid = aaguid.lowercased()
            self.attested = attested
        }

        /// Whether the AAGUID is one of Windows Hello's. Any authenticator can send it: without trusted attestation
        /// it is a claim, which may subject a key to Windows Hello's restrictions but never proves it is one.
        public var claimsWindowsHello: Bool { Fido2Configuration.windowsHelloAAGUIDs.contains(aaguid) }

        /// Whether the key is proven to be Windows Hello's: its AAGUID in a trusted attestation.
        public var isWindowsHello: Bool { claimsWindowsHello && attested }
    }

    /// Who the user is, for targeting.
    public struct Subject: Sendable, Hashable {
        public var userID: String
        /// Ids of the groups the user is a member of, directly or transitively.
        public var groupIDs: Set<String>
        public init(userID: String, groupIDs: Set<String>) {
            self.userID = userID
            self.groupIDs = groupIDs
        }
    }

    public enum Phase: String, Sendable, Hashable { case registration, signIn }

    /// The verdict, with a stable reason code for sign-in logs and a message for people.
    public struct Decision: Sendable, Hashable {
        public var allowed: Bool
        /// `allowed`, `fido2Disabled`, `userExcluded`, `userNotInScope`, `passkeyTypeNotAllowed`,
        /// `attestationRequired`, `aaguidNotAllowed`, `aaguidBlocked`, `windowsHelloNotAllowed`.
        public var reason: String
        public var message: String
        /// The profile that allowed it, when allowed.
        public var profileID: String?
    }

    /// Windows Hello's AAGUIDs (hardware, VBS hardware, software): a passkey provider that is accepted only where a
    /// profile allows it explicitly in an enforced allow list, with attestation not enforced (Entra's preview rule).
    public static let windowsHelloAAGUIDs: Set<String> = [
        "08987058-cadc-4b81-b6e1-30de50dcbe96", "9ddd1817-af5a-4672-a2b9-3e3dd95000a9", "6028b017-b1d4-4c02-b4b3-afcdafc96bb2",
    ]

    /// The profiles that apply to a user: those of every include target the user is in, or the reason there are
    /// none (the user is excluded, which wins over inclusion, or not targeted).
    public func profiles(for subject: Subject) -> Result<[PasskeyProfile], DecisionError> {
        func matches(_ id: String, _ type: TargetType) -> Bool {
            switch type {
            case .user: id == subject.userID
            case .group: id == Self.allUsers || subject.groupIDs.contains(id)
            }
        }
        if excludeTargets.contains(where: { matches($0.id, $0.targetType) }) {
            return .failure(DecisionError(reason: "userExcluded", message: "The user is excluded from passkey (FIDO2) sign-in."))
        }
        var ids: [String] = []
        for target in includeTargets where matches(target.id, target.targetType) {
            let named = target.allowedPasskeyProfiles.isEmpty ? [defaultPasskeyProfile].compactMap { $0 } : target.allowedPasskeyProfiles
            for id in named where !ids.contains(id) { ids.append(id) }
        }
        let profiles = ids.compactMap(profile)
        guard !profiles.isEmpty else {
            return .failure(DecisionError(reason: "userNotInScope", message: "No passkey profile applies to the user: passkey (FIDO2) sign-in is not enabled for them."))
        }
        return .success(profiles)
    }

    /// A refusal before any profile is looked at.
    public struct DecisionError: Error, Sendable, Hashable {
        public var reason: String
        public var message: String
    }

    /// Decides whether `passkey` is acceptable for `subject`. Any one of the user's profiles is enough.
    public func evaluate(_ passkey: PasskeyFacts, for subject: Subject, phase: Phase) -> Decision {
        guard state == .enabled else {
            return Decision(allowed: false, reason: "fido2Disabled", message: "Passkey (FIDO2) sign-in is disabled in this tenant.")
        }
        let profiles: [PasskeyProfile]
        switch self.profiles(for: subject) {
        case .failure(let refusal): return Decision(allowed: false, reason: refusal.reason, message: refusal.message)
        case .success(let found): profiles = found
        }
        var first: Decision?
        for profile in profiles {
            let decision = check(passkey, against: profile, phase: phase)
            if decision.allowed { return decision }
            if first == nil { first = decision }
        }
        if profiles.count > 1, var refusal = first {
            refusal.message += " (none of the user's \(profiles.count) passkey profiles allows it)"
            return refusal
        }
        return first!
    }

    /// One profile's verdict.
    func check(_ passkey: PasskeyFacts, against profile: PasskeyProfile, phase: Phase) -> Decision {
        func refuse(_ reason: String, _ message: String) -> Decision {
            Decision(allowed: false, reason: reason, message: "Passkey profile '\(profile.name)': \(message)", profileID: profile.id)
        }
        let attestationEnforced = profile.attestationEnforcement == .registrationOnly || isAttestationEnforced
        let restrictions = profile.keyRestrictions
        // Windows Hello's rule is a restriction, so it applies to a claim as well as to a proven Windows Hello key.
        // Nothing here infers device-bound from the AAGUID: the type is the backup-eligible flag, itself a claim that
        // only enforced attestation backs.
        if passkey.claimsWindowsHello {
            let allowedExplicitly = restrictions.isEnforced && restrictions.enforcementType == .allow && restrictions.aaGuids.contains(passkey.aaguid)
            guard allowedExplicitly && !attestationEnforced else {
                return refuse("windowsHelloNotAllowed",
                              "Windows Hello passkeys are accepted only when a profile lists their AAGUID in an enforced allow list and does not enforce attestation.")
            }
        }
        guard profile.passkeyTypes.contains(passkey.type) else {
            return refuse("passkeyTypeNotAllowed", "\(passkey.type == .synced ? "synced" : "device-bound") passkeys are not allowed.")
        }
        if attestationEnforced && !passkey.attested {
            return refuse("attestationRequired", phase == .registration
                ? "attestation is enforced and this passkey's attestation is missing or does not chain to a trusted root."
                : "attestation is enforced and this passkey was registered without verified attestation.")
        }
        if restrictions.isEnforced {
            let listed = restrictions.aaGuids.contains(passkey.aaguid)
            switch restrictions.enforcementType {
            case .allow where !listed:
                return refuse("aaguidNotAllowed", "authenticator model \(passkey.aaguid) is not in the allow list.")
            case .block where listed:
                return refuse("aaguidBlocked", "authenticator model \(passkey.aaguid) is blocked.")
            default: break
            }
        }
        var message = "Allowed by passkey profile '\(profile.name)'."
        if passkey.claimsWindowsHello && !passkey.isWindowsHello {
            message += " Its Windows Hello AAGUID is the authenticator's claim: without verified attestation the key is not known to be Windows Hello's or bound to a TPM."
        }
        return Decision(allowed: true, reason: "allowed", message: message, profileID: profile.id)
    }
}
