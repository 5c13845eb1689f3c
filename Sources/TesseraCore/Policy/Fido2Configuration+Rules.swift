/// Entra's rules for the FIDO2 configuration and its passkey profiles, and the migration of legacy settings.
extension Fido2Configuration {
    /// A configuration with no profiles (legacy settings) gets a default profile made from them: `deviceBound`
    /// when attestation was enforced, else `deviceBound,synced`; key restrictions kept. Targets without profiles
    /// get the default one. A configuration that has profiles is returned as it is.
    public func migrated() -> Fido2Configuration {
        guard passkeyProfiles.isEmpty else { return self }
        var next = self
        next.passkeyProfiles = [PasskeyProfile(
            id: Self.defaultProfileID, name: "Default passkey profile",
            passkeyTypes: isAttestationEnforced ? [.deviceBound] : [.deviceBound, .synced],
            attestationEnforcement: isAttestationEnforced ? .registrationOnly : .disabled,
            keyRestrictions: keyRestrictions)]
        next.defaultPasskeyProfile = Self.defaultProfileID
        next.includeTargets = includeTargets.map { target in
            var target = target
            if target.allowedPasskeyProfiles.isEmpty { target.allowedPasskeyProfiles = [Self.defaultProfileID] }
            return target
        }
        return next
    }

    /// Checks the configuration a PATCH would produce against the one it replaces; throws Graph's 400 for the
    /// first rule broken, so nothing is half-written.
    public func validate(replacing previous: Fido2Configuration) throws(DirectoryError) {
        guard passkeyProfiles.count <= Self.maxProfiles else {
            throw Self.fail("A tenant can have at most \(Self.maxProfiles) passkey profiles, including the default profile; this request has \(passkeyProfiles.count).")
        }
        var ids = Set<String>(), names = Set<String>()
        for profile in passkeyProfiles {
            guard ids.insert(profile.id).inserted else { throw Self.fail("Passkey profile id '\(profile.id)' is used twice.") }
            guard names.insert(profile.name.lowercased()).inserted else { throw Self.fail("Passkey profile name '\(profile.name)' is used twice.") }
            if profile.passkeyTypes.contains(.synced) && (profile.attestationEnforcement == .registrationOnly || isAttestationEnforced) {
                throw Self.fail("Passkey profile '\(profile.name)' allows synced passkeys and enforces attestation; synced passkeys are allowed only when attestation is not enforced.")
            }
        }
        if !passkeyProfiles.isEmpty {
            guard let defaultID = defaultPasskeyProfile, ids.contains(defaultID) else {
                throw Self.fail("'defaultPasskeyProfile' must name one of the passkey profiles.")
            }
        }
        if let previousDefault = previous.defaultPasskeyProfile, previous.profile(previousDefault) != nil, !ids.contains(previousDefault) {
            throw Self.fail("The default passkey profile '\(previous.profile(previousDefault)!.name)' cannot be deleted.")
        }
        for removed in previous.passkeyProfiles where !ids.contains(removed.id) {
            // Removing a profile and its assignments in the same request is fine; leaving it assigned is not.
            if includeTargets.contains(where: { $0.allowedPasskeyProfiles.contains(removed.id) }) {
                throw Self.fail("Passkey profile '\(removed.name)' is assigned to a target and cannot be deleted; remove it from the targets first.")
            }
        }
        for target in includeTargets {
            for id in target.allowedPasskeyProfiles where !ids.contains(id) {
                throw Self.fail("Target '\(target.id)' names passkey profile '\(id)', which does not exist.")
            }
        }
        var targetIDs = Set<String>()
        for target in includeTargets where !targetIDs.insert(target.id.lowercased()).inserted {
            throw Self.fail("Target '\(target.id)' is included twice.")
        }
        let size = json.serializedBytes.count
        guard size <= Self.maxPolicyBytes else {
            throw Self.fail("The authentication methods policy would be \(size) bytes; the limit is \(Self.maxPolicyBytes) (20 KB).")
        }
    }
}
