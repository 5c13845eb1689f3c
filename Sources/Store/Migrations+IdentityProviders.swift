import TesseraCore

/// OpenID Connect identity providers' client secrets leave their Graph objects: releases before this step kept each
/// in plain text as `_clientSecret` in the `oidcIdentityProvider` object's body, beside Graph's properties and never
/// sealed with the key-encryption key. Each
/// moves to its tenant's ``IdentityProviderSecrets`` setting, and the object is written again without it (its stored
/// digest and version follow, as for any update). The setting is written plain here (a migration has no key-encryption
/// key); the start that follows seals it with the tenant's other keys when the deployment has one
/// (`KeySealing.sealTenantKeys`). The step runs once, in the migration's transaction (nodes starting at once migrate
/// one at a time).
extension Migrations {
    static func moveIdentityProviderSecrets(_ session: any SQLSession, _ d: SQLDialect) async throws {
        let tx = SQLTransaction(session: session, dialect: d)
        let member = OpenIDIdentityProvider.legacySecretMember
        let tenants = try await session.execute("SELECT id FROM tenants", []).compactMap { $0.first?.text }
        for tenant in tenants {
            var moved: [String: JSONValue] = [:]
            var after = ""
            while true {
                let page = try await session.execute(
                    "SELECT id, kind, \(d.bodyText), version, deleted_at FROM objects WHERE tenant = ? AND kind = ? AND id > ? ORDER BY id LIMIT 500",
                    [.text(tenant), .text(ObjectKind.oidcIdentityProvider.rawValue), .text(after)])
                for row in page {
                    let object = try SQLTransaction.decode(row, tenant: tenant)
                    after = object.id
                    guard let legacy = object.body[member] else { continue }
                    if let secret = legacy.stringValue, !secret.isEmpty { moved[object.id] = .string(secret) }
                    var stripped = object
                    stripped.body.removeValue(forKey: member)
                    stripped.version = object.version + 1
                    try await tx.update(stripped, expectedVersion: object.version)
                }
                if page.count < 500 { break }
            }
            guard !moved.isEmpty else { continue }
            let key = IdentityProviderSecrets.settingKey
            var secrets: [String: JSONValue] = [:]
            if let existing = try await tx.setting(tenant: tenant, key: key), existing != .null {
                // Only this build writes the setting, after this step: one sealed already cannot be merged into here.
                guard !KeyEncryptionKey.isSealed(existing), let object = existing.objectValue else {
                    throw StoreError(message: "\(tenant)/\(key) is sealed already: the identity providers' secrets cannot be moved into it.")
                }
                secrets = object
            }
            // A secret the setting holds already is the newer one.
            secrets.merge(moved) { current, _ in current }
            try await tx.putSetting(tenant: tenant, key: key, value: .object(secrets))
        }
    }
}
