/// The OpenID Connect providers a tenant trusts for B2B collaboration with users of another deployment
/// (`/identity/identityProviders`): each holds its issuer and its domains as unique keys, so an address has one way
/// home; writes are audited with Entra's activity names, the client secret never in the record. The client secret is
/// never in the provider's object either: it is kept in ``IdentityProviderSecrets``, written in the transaction that
/// writes the object, with `sealing` (the app's key-encryption key).
extension DirectoryService {
    /// Every provider of the tenant, by display name.
    public func identityProviders(tenant: String) async throws -> [OpenIDIdentityProvider] {
        let rows = try await store.read { tx in try await tx.query(ObjectQuery(tenant: tenant, kinds: [.oidcIdentityProvider])) }
        return try rows.filter { $0.deletedAt == nil }.map { try OpenIDIdentityProvider(stored: $0.body) }
            .sorted { ($0.displayName.lowercased(), $0.id) < ($1.displayName.lowercased(), $1.id) }
    }

    /// One provider; 404 when the tenant has none by that id.
    public func identityProvider(tenant: String, id: String) async throws -> OpenIDIdentityProvider {
        let stored = try await store.read { tx in try await tx.object(tenant: tenant, id: id.lowercased()) }
        guard let stored, stored.kind == .oidcIdentityProvider else { throw DirectoryError.notFound(id) }
        return try OpenIDIdentityProvider(stored: stored.body)
    }

    /// The provider that signs in users of `domain`, if the tenant has one.
    public func identityProvider(tenant: String, domain: String) async throws -> OpenIDIdentityProvider? {
        let stored = try await store.read { tx -> StoredObject? in
            guard let id = try await tx.holder(tenant: tenant, key: UniqueKey("oidcProviderDomain", domain.lowercased())) else { return nil }
            return try await tx.object(tenant: tenant, id: id)
        }
        return try stored.map { try OpenIDIdentityProvider(stored: $0.body) }
    }

    /// The client secret of provider `id`, to redeem a code at its token endpoint: 404 when the tenant has no such
    /// provider, nil when it keeps no secret for it (none was moved for it from an older release's object; a PATCH
    /// gives it again).
    public func identityProviderClientSecret(tenant: String, id: String, sealing: KeySealing) async throws -> String? {
        try await store.read { tx in
            guard let stored = try await tx.object(tenant: tenant, id: id.lowercased()), stored.kind == .oidcIdentityProvider,
                  stored.deletedAt == nil else {
                throw DirectoryError.notFound(id)
            }
            // A node of the release before (beside this one during a rolling upgrade) writes the secret into the
            // object's body, as that release did: such a secret is newer than the setting's, which this release writes
            // only together with an object that has none.
            if let legacy = stored.body[OpenIDIdentityProvider.legacySecretMember]?.stringValue, !legacy.isEmpty { return legacy }
            return try await IdentityProviderSecrets.secret(tenant: tenant, provider: stored.id, sealing: sealing, in: tx)
        }
    }

    /// Creates a provider from Graph's body; 409 when its issuer or one of its domains is another provider's.
    public func createIdentityProvider(tenant: String, body: [String: JSONValue], actor: Actor, sealing: KeySealing) async throws
        -> OpenIDIdentityProvider {
        let provider = try OpenIDIdentityProvider(body: body, id: Identifier.make())
        let now = self.now
        try await write(tenant) { tx in
            try await Self.claimProviderKeys(tenant: tenant, provider: provider, tx: tx)
            try await tx.insert(StoredObject(tenant: tenant, id: provider.id, kind: .oidcIdentityProvider, body: provider.stored))
            try await IdentityProviderSecrets.put(provider.clientSecret, tenant: tenant, provider: provider.id, sealing: sealing, in: tx)
            try await tx.record(ChangeRecord(tenant: tenant, objectId: provider.id, kind: .oidcIdentityProvider, operation: "create",
                                             activity: "Add identity provider", actor: actor.initiatedBy, at: now,
                                             details: ["displayName": .string(provider.displayName)]))
        }
        return provider
    }

    /// PATCH: the members given replace the stored ones (the secret only when `clientAuthentication` is given).
    public func updateIdentityProvider(tenant: String, id: String, patch: [String: JSONValue], actor: Actor, sealing: KeySealing) async throws {
        let now = self.now
        try await write(tenant) { tx in
            guard let current = try await tx.object(tenant: tenant, id: id.lowercased()), current.kind == .oidcIdentityProvider else {
                throw DirectoryError.notFound(id)
            }
            let before = try OpenIDIdentityProvider(stored: current.body)
            if let given = patch["id"], given.stringValue?.lowercased() != before.id { throw DirectoryError.badRequest("Property 'id' cannot be changed.") }
            let after = try OpenIDIdentityProvider(body: patch, patching: before, id: before.id)
            try await tx.release(tenant: tenant, object: before.id, keys: before.keys)
            try await Self.claimProviderKeys(tenant: tenant, provider: after, tx: tx)
            try await tx.put(StoredObject(tenant: tenant, id: before.id, kind: .oidcIdentityProvider, body: after.stored), over: current)
            // A secret a node of the release before wrote into the body (a rolling upgrade) moves to the setting
            // when the PATCH gives none, since the object is written again without it.
            let legacy = current.body[OpenIDIdentityProvider.legacySecretMember]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
            if let secret = after.clientSecret ?? legacy {
                try await IdentityProviderSecrets.put(secret, tenant: tenant, provider: before.id, sealing: sealing, in: tx)
            }
            // The secret is never in the audit trail: compared as Graph shows the provider (masked).
            try await tx.record(ChangeRecord(tenant: tenant, objectId: before.id, kind: .oidcIdentityProvider, operation: "update",
                                             activity: "Update identity provider", actor: actor.initiatedBy, at: now,
                                             details: ["displayName": .string(after.displayName),
                                                       "modifiedProperties": .array(Self.modified(before.graph, after.graph))]))
        }
    }

    /// Deletes a provider and its client secret.
    public func deleteIdentityProvider(tenant: String, id: String, actor: Actor, sealing: KeySealing) async throws {
        let now = self.now
        try await write(tenant) { tx in
            guard let current = try await tx.object(tenant: tenant, id: id.lowercased()), current.kind == .oidcIdentityProvider else {
                throw DirectoryError.notFound(id)
            }
            try await tx.purge(tenant: tenant, id: current.id)
            try await IdentityProviderSecrets.put(nil, tenant: tenant, provider: current.id, sealing: sealing, in: tx)
            try await tx.record(ChangeRecord(tenant: tenant, objectId: current.id, kind: .oidcIdentityProvider, operation: "delete",
                                             activity: "Delete identity provider", actor: actor.initiatedBy, at: now,
                                             details: ["displayName": current.body["displayName"] ?? nil]))
        }
    }

    static func claimProviderKeys(tenant: String, provider: OpenIDIdentityProvider, tx: any DirectoryTransaction) async throws {
        for key in provider.keys {
            if let holder = try await tx.holder(tenant: tenant, key: key), holder != provider.id {
                let what = key.name == "oidcProviderIssuer" ? "issuer '\(provider.issuer)'" : "domain '\(key.value)'"
                throw DirectoryError(.conflict, "Another identity provider of this tenant already has the \(what).")
            }
        }
        // A domain of the tenant itself stays its own users'.
        for domain in provider.domains where try await tx.object(tenant: tenant, id: domain)?.kind == .domain {
            throw DirectoryError.badRequest("'\(domain)' is a domain of this tenant; its users sign in here.")
        }
        try await tx.claim(tenant: tenant, object: provider.id, keys: provider.keys)
    }
}
