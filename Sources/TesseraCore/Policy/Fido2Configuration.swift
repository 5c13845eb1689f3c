/// The FIDO2 (passkey) part of a tenant's authentication methods policy: Graph's
/// `fido2AuthenticationMethodConfiguration`, with its passkey profiles (`../reference` §1.1–1.2).
public struct Fido2Configuration: Sendable, Hashable {
    public var state: State
    public var isSelfServiceRegistrationAllowed: Bool
    /// Deprecated in Graph in favour of each profile's `attestationEnforcement`; still honoured: when true, every
    /// profile requires attestation.
    public var isAttestationEnforced: Bool
    /// The legacy, policy-wide key restrictions; profiles carry their own since the migration.
    public var keyRestrictions: KeyRestrictions
    public var includeTargets: [IncludeTarget]
    public var excludeTargets: [ExcludeTarget]
    public var defaultPasskeyProfile: String?
    public var passkeyProfiles: [PasskeyProfile]

    public enum State: String, Sendable, Hashable { case enabled, disabled }

    /// Graph's `fido2KeyRestrictions`: an allow or block list of AAGUIDs.
    public struct KeyRestrictions: Sendable, Hashable {
        public var isEnforced: Bool
        public var enforcementType: EnforcementType
        /// Lowercase `8-4-4-4-12`.
        public var aaGuids: [String]
        public enum EnforcementType: String, Sendable, Hashable { case allow, block }
        public init(isEnforced: Bool = false, enforcementType: EnforcementType = .allow, aaGuids: [String] = []) {
            self.isEnforced = isEnforced
            self.enforcementType = enforcementType
            self.aaGuids = aaGuids
        }
    }

    /// `passkeyAuthenticationMethodTarget`: a group (or `all_users`) and the profiles that apply to it.
    public struct IncludeTarget: Sendable, Hashable {
        public var id: String
        public var targetType: TargetType
        public var isRegistrationRequired: Bool
        /// Profile ids; empty means the default profile.
        public var allowedPasskeyProfiles: [String]
        public init(id: String, targetType: TargetType = .group, isRegistrationRequired: Bool = false, allowedPasskeyProfiles: [String] = []) {
            self.id = id
            self.targetType = targetType
            self.isRegistrationRequired = isRegistrationRequired
            self.allowedPasskeyProfiles = allowedPasskeyProfiles
        }
    }

    /// `excludeTarget`: a group or user the method does not apply to. Exclusion wins over inclusion.
    public struct ExcludeTarget: Sendable, Hashable {
        public var id: String
        public var targetType: TargetType
        public init(id: String, targetType: TargetType = .group) {
            self.id = id
            self.targetType = targetType
        }
    }

    public enum TargetType: String, Sendable, Hashable { case user, group }

    /// The target id Graph uses for every user of the tenant.
    public static let allUsers = "all_users"
    /// The id of the profile the migration creates.
    public static let defaultProfileID = "00000000-0000-0000-0000-000000000001"
    /// Graph's limits on passkey profiles and on the whole policy.
    public static let maxProfiles = 3
    public static let maxPolicyBytes = 20 * 1024

    public init(state: State = .enabled, isSelfServiceRegistrationAllowed: Bool = true, isAttestationEnforced: Bool = false,
                keyRestrictions: KeyRestrictions = KeyRestrictions(), includeTargets: [IncludeTarget] = [],
                excludeTargets: [ExcludeTarget] = [], defaultPasskeyProfile: String? = nil, passkeyProfiles: [PasskeyProfile] = []) {
        self.state = state
        self.isSelfServiceRegistrationAllowed = isSelfServiceRegistrationAllowed
        self.isAttestationEnforced = isAttestationEnforced
        self.keyRestrictions = keyRestrictions
        self.includeTargets = includeTargets
        self.excludeTargets = excludeTargets
        self.defaultPasskeyProfile = defaultPasskeyProfile
        self.passkeyProfiles = passkeyProfiles
    }

    /// A new tenant's configuration: passkeys on for everyone, under a default profile that accepts device-bound
    /// and synced passkeys without attestation (Entra's migrated default for a tenant that did not enforce it).
    public static var tenantDefault: Fido2Configuration {
        Fido2Configuration(includeTargets: [IncludeTarget(id: allUsers)]).migrated()
    }

    /// The profile with this id.
    public func profile(_ id: String) -> PasskeyProfile? { passkeyProfiles.first { $0.id == id } }
}

/// Graph's `passkeyProfile`: which passkeys a set of users may register and use.
public struct PasskeyProfile: Sendable, Hashable {
    public var id: String
    public var name: String
    public var passkeyTypes: Set<PasskeyKind>
    public var attestationEnforcement: AttestationEnforcement
    public var keyRestrictions: Fido2Configuration.KeyRestrictions

    public enum AttestationEnforcement: String, Sendable, Hashable { case disabled, registrationOnly }

    public init(id: String, name: String, passkeyTypes: Set<PasskeyKind> = [.deviceBound, .synced],
                attestationEnforcement: AttestationEnforcement = .disabled,
                keyRestrictions: Fido2Configuration.KeyRestrictions = .init()) {
        self.id = id
        self.name = name
        self.passkeyTypes = passkeyTypes
        self.attestationEnforcement = attestationEnforcement
        self.keyRestrictions = keyRestrictions
    }
}

/// A passkey's type: `passkeyType` on a user's method, one flag of a profile's `passkeyTypes`.
public enum PasskeyKind: String, Sendable, Hashable, CaseIterable {
    case deviceBound, synced
}
