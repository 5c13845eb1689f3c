import TesseraCore

/// Lookups the identity platform makes on almost every request.
extension TesseraApp {
    /// The application registration with this `appId` (client id), unless deleted.
    func application(tenant: String, appID: String) async throws -> StoredObject? {
        let found = try await store.read { tx -> StoredObject? in
            guard let id = try await tx.holder(tenant: tenant, key: UniqueKey("appId", appID)) else { return nil }
            return try await tx.object(tenant: tenant, id: id)
        }
        return found?.deletedAt == nil ? found : nil
    }

    /// The user, if they exist, are not deleted and may sign in.
    func activeUser(tenant: String, id: String) async throws -> StoredObject? {
        let user = try await store.read { tx in try await tx.object(tenant: tenant, id: id) }
        guard let user, user.kind == .user, user.deletedAt == nil, user.body["accountEnabled"]?.boolValue != false else { return nil }
        return user
    }
}
