/// The client secrets of a tenant's OpenID Connect identity providers, out of the Graph objects table: one setting of
/// the tenant (`identityProviderSecrets`), a JSON object from each provider's id to its secret, sealed with the
/// key-encryption key when there is one (``KeySealing``, bound to the tenant and the setting's name), like the tenant's
/// CA and Kerberos keys. It is therefore in no backup snapshot, difference report or Graph read, and the keys' start
/// check, sealing at start and `tessera keys rewrap|list` cover it.
///
/// Every change is a read-modify-write of the whole setting with its row locked (``DirectoryWriter/lockedSetting(tenant:key:creatingWith:)``),
/// in the transaction that writes the provider's object, so that two providers written at once both keep their secret
/// and a provider and its secret come and go together.
public enum IdentityProviderSecrets {
    /// The tenant setting that holds them.
    public static let settingKey = "identityProviderSecrets"

    public static func setting(tenant: String) -> SealedSetting { SealedSetting(tenant: tenant, key: settingKey) }

    /// The secret of provider `id`, nil when the tenant keeps none for it.
    public static func secret(tenant: String, provider id: String, sealing: KeySealing, in tx: any DirectoryReader) async throws -> String? {
        try await sealing.read(setting(tenant: tenant), in: tx)?[id]?.stringValue
    }

    /// Stores `secret` as provider `id`'s (nil: removes it), inside the transaction that writes the provider.
    public static func put(_ secret: String?, tenant: String, provider id: String, sealing: KeySealing, in tx: any DirectoryWriter) async throws {
        let setting = setting(tenant: tenant)
        let locked = secret == nil ? try await tx.lockedSetting(tenant: tenant, key: settingKey)
                                   : try await tx.lockedSetting(tenant: tenant, key: settingKey, creatingWith: .object([:]))
        guard let stored = locked, stored != .null else { return }
        var secrets = try sealing.open(stored, setting).objectValue ?? [:]
        guard secrets[id]?.stringValue != secret else { return }
        secrets[id] = secret.map(JSONValue.string)
        try await sealing.write(.object(secrets), setting, in: tx)
    }
}
