import InternetAccess
import TenantPKI
public import TesseraCore

// The key-encryption key and the sealing itself (`KeyEncryptionKey`, `KeySealing`) are TesseraCore's, so the proxy's
// inspection CA (InternetAccess) and the tenants' CAs (TenantPKI) seal theirs the same way. What is Server's here: which
// settings hold keys, the check and migration at start, and `tessera keys rewrap|list` over all of them.

/// One of the deployment's secrets kept as a setting.
typealias DeploymentSecret = SealedSetting
/// How the deployment's secrets are read and written (the app's ``KeySealing``).
typealias DeploymentSecrets = KeySealing

extension SealedSetting {
    /// The token-signing key ring.
    static let signingKeys = SealedSetting(tenant: SigningKey.settingsTenant, key: "signingKey")
    /// The key that MACs passkey challenges (see `PasskeyChallenges`).
    static let challengeKey = SealedSetting(tenant: "", key: "challengeKey")
    /// Every secret a deployment makes on its first start.
    static let all = [signingKeys, challengeKey]

    /// The tenant settings that hold private keys or secrets: the device and health agents' CAs, the TLS inspection CA
    /// and its pending rotation's next CA, the identity providers' client secrets, the Kerberos service keys of hybrid
    /// join (every key version).
    static let tenantKeys = [DeviceCertificateAuthority.kind.settingKey, HealthCertificateAuthority.kind.settingKey]
        + InspectionCertificateAuthority.sealedSettingKeys + [IdentityProviderSecrets.settingKey, KerberosDomain.settingKey]

    /// Every tenant's settings that may hold a key.
    static func everyTenantKey(in tx: any DirectoryReader) async throws -> [SealedSetting] {
        (try await tx.tenants()).flatMap { tenant in tenantKeys.map { SealedSetting(tenant: tenant.id, key: $0) } }
    }

    /// Every setting that may hold a key: the deployment's, then each tenant's, for `tessera keys rewrap|list`.
    static func everyKey(in tx: any DirectoryReader) async throws -> [SealedSetting] {
        all + (try await everyTenantKey(in: tx))
    }
}

extension KeySealing {
    /// Checks every tenant's stored keys at start and seals the plain ones when there is a key-encryption key (keys made
    /// before it was given; idempotent, and a key another node changed meanwhile is left as that node wrote it). A key
    /// sealed under another key-encryption key, or sealed while none is given, throws before anything is changed.
    func sealTenantKeys(store: any DirectoryStore) async throws {
        let stored = try await store.read { tx in
            // One query a kind of key, not one a tenant and kind: every start pays this.
            var stored: [(SealedSetting, JSONValue)] = []
            for key in SealedSetting.tenantKeys {
                for (tenant, value) in try await tx.settings(key: key) where value != .null { stored.append((SealedSetting(tenant: tenant, key: key), value)) }
            }
            return stored
        }
        var plain: [(SealedSetting, JSONValue)] = []
        for (setting, value) in stored {
            _ = try open(value, setting)
            if !KeyEncryptionKey.isSealed(value) { plain.append((setting, value)) }
        }
        guard keyEncryption != nil, !plain.isEmpty else { return }
        let sealed = try plain.map { ($0.0, $0.1, try seal($0.1, $0.0)) }
        try await store.write { tx in
            for (setting, observed, replacement) in sealed {
                // Locked, so a rotation committing meanwhile is not overwritten with the old key, sealed (it waits, or is read).
                guard try await tx.lockedSetting(tenant: setting.tenant, key: setting.key) == observed else { continue }
                try await tx.putSetting(tenant: setting.tenant, key: setting.key, value: replacement)
            }
        }
    }

    /// Seals every stored key (the deployment's and every tenant's) stored under `old` (nil: stored plain) under `new`
    /// (nil: stores them plain), in one transaction; returns the names rewritten. Throws, changing nothing, when `old`
    /// does not open one.
    static func rewrap(store: any DirectoryStore, old: KeyEncryptionKey?, new: KeyEncryptionKey?) async throws -> [String] {
        let from = KeySealing(keyEncryption: old), to = KeySealing(keyEncryption: new)
        return try await store.write { tx in
            var names: [String] = []
            for setting in try await SealedSetting.everyKey(in: tx) {
                guard let stored = try await tx.lockedSetting(tenant: setting.tenant, key: setting.key), stored != .null else { continue }
                if !KeyEncryptionKey.isSealed(stored), old != nil { throw KeyEncryptionError("\(setting.name) is stored unencrypted: rewrap it without --old-key-file") }
                try await tx.putSetting(tenant: setting.tenant, key: setting.key, value: try to.seal(try from.open(stored, setting), setting))
                names.append(setting.name)
            }
            return names
        }
    }
}

extension TesseraApp {
    /// How this node seals the keys it keeps in the store (with the key-encryption key it started with, if any).
    public var keySealing: KeySealing { signingKeys.secrets }
}

extension DeploymentKeys {
    /// A stored key as `tessera keys list` shows it: its setting's name and whether it is sealed (never the key).
    public struct AtRest: Sendable {
        public let name: String
        public let sealed: Bool
    }

    /// Every stored key, the deployment's and every tenant's, and whether each is sealed.
    public static func atRest(store: any DirectoryStore) async throws -> [AtRest] {
        try await store.read { tx in
            var keys: [AtRest] = []
            for setting in try await SealedSetting.everyKey(in: tx) {
                guard let stored = try await tx.setting(tenant: setting.tenant, key: setting.key), stored != .null else { continue }
                keys.append(AtRest(name: setting.name, sealed: KeyEncryptionKey.isSealed(stored)))
            }
            return keys
        }
    }
}
