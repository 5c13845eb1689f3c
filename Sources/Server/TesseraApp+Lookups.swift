import TesseraCore

/// Lookups the identity platform makes on almost every request.
extension TesseraApp {
    /// The application registration with this `appId` (client id), unless deleted.
    ///
    /// A sign-in asks for its application four or five times (authorize, the code, Conditional Access, the tokens), so
    /// an application read is kept as the tenant record is (`TenantCache`): while this process has committed no write
    /// to the tenant, and for at most `TenantCache.maxAge`, which bounds how long a change made on another node takes
    /// to be seen here. A client id that names nothing is not kept (guessing ids cannot fill the table).
    func application(tenant: String, appID: String) async throws -> StoredObject? {
        try await applicationCache.value("\(tenant)|\(appID)", tenant: tenant, generations: directory.generations) {
            let found = try await store.read { tx in try await tx.object(tenant: tenant, holding: UniqueKey("appId", appID)) }
            return found?.deletedAt == nil ? found : nil
        }
    }

    /// The user, if they exist, are not deleted and may sign in.
    func activeUser(tenant: String, id: String) async throws -> StoredObject? {
        let user = try await store.read { tx in try await tx.object(tenant: tenant, id: id) }
        return user.flatMap { $0.kind == .user && Self.mayUseSignIn($0) ? $0 : nil }
    }

    /// Whether a user is not deleted and may sign in.
    static func mayUseSignIn(_ user: StoredObject) -> Bool {
        user.deletedAt == nil && user.body["accountEnabled"]?.boolValue != false
    }

    /// The user object with this id (deleted or disabled included; nil when there is none or it is not a user), for the
    /// sign-in path: a sign-in reads its user at the passkey, at `/authorize` (the session, cross-tenant access) and at
    /// the token endpoint, so it is kept as applications are: while this process has committed no write to the tenant
    /// (disabling or deleting a user is one), and for at most `TenantCache.maxAge` (a change made on another node).
    func signInUser(tenant: String, id: String) async throws -> StoredObject? {
        try await userCache.value("\(tenant)|\(id.lowercased())", tenant: tenant, generations: directory.generations) {
            let found = try await store.read { tx in try await tx.object(tenant: tenant, id: id) }
            return found?.kind == .user ? found : nil
        }
    }

    /// ``signInUser(tenant:id:)`` if they are not deleted and may sign in (``activeUser(tenant:id:)`` from the cache).
    func activeSignInUser(tenant: String, id: String) async throws -> StoredObject? {
        try await signInUser(tenant: tenant, id: id).flatMap { Self.mayUseSignIn($0) ? $0 : nil }
    }
}

/// What the identity platform reads from a tenant's directory on every sign-in, kept under the same rule as
/// `TenantCache`'s records: an entry holds while this process has committed no write to its tenant since it was
/// read, and for at most `TenantCache.maxAge`.
final class SignInCache<Value: Sendable>: Sendable {
    struct Entry: Sendable {
        let value: Value
        let generation: UInt64
        let readAt: ContinuousClock.Instant
    }

    private let entries = BoundedTable<Entry>()

    func value(_ key: String, tenant: String, generations: TenantGenerations,
               now: ContinuousClock.Instant = .now) -> Value? {
        guard let entry = entries[key], now - entry.readAt < TenantCache.maxAge,
              generations.current(tenant) == entry.generation
        else { return nil }
        return entry.value
    }

    func store(_ value: Value, key: String, generation: UInt64, readAt: ContinuousClock.Instant) {
        entries.set(Entry(value: value, generation: generation, readAt: readAt), for: key)
    }

    /// The entry for `key`, or what `read` finds, kept when it finds something (what names nothing is not kept, so
    /// guessing keys cannot fill the table). The generation and time are noted before reading, so a write that races
    /// the read leaves the entry stale.
    func value(_ key: String, tenant: String, generations: TenantGenerations,
               reading read: () async throws -> Value?) async throws -> Value? {
        if let cached = value(key, tenant: tenant, generations: generations) { return cached }
        let generation = generations.current(tenant), readAt = ContinuousClock.now
        guard let found = try await read() else { return nil }
        store(found, key: key, generation: generation, readAt: readAt)
        return found
    }
}
