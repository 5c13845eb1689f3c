/// What cross-tenant synchronization writes in a target tenant besides ordinary objects: the B2B users it provisions,
/// each created together with its link to the home tenant's user (the link B2B sign-in follows), and links for B2B
/// users it takes over (invited ones, matched by their home identity).
extension DirectoryService {
    /// A B2B user to provision for `homeUserID` of `homeTenantID`.
    public struct SyncedExternalUser: Sendable {
        /// The Graph body of the user in the target tenant.
        public var body: [String: JSONValue]
        public var homeTenantID: String
        public var homeUserID: String
        /// What the link records instead of an invitation: the synchronization job.
        public var origin: String

        public init(body: [String: JSONValue], homeTenantID: String, homeUserID: String, origin: String) {
            self.body = body
            self.homeTenantID = homeTenantID
            self.homeUserID = homeUserID
            self.origin = origin
        }
    }

    /// Creates each user with its home link in one transaction for the lot; when one is refused, each is created in a
    /// transaction of its own, so a refused user is reported in its place and the others are written. Audited as
    /// ordinary creates, under `actor`.
    public func createSyncedExternalUsers(tenant: String, users: [SyncedExternalUser], actor: Actor) async throws
        -> [Result<StoredObject, DirectoryError>] {
        guard !users.isEmpty else { return [] }
        // The bodies are built by synchronization, not given by a caller: checked by the user rules at insert.
        let now = self.now
        let planned = users.map { (user: $0, id: Identifier.make()) }
        do {
            return try await write(tenant) { tx in
                var out: [Result<StoredObject, DirectoryError>] = []
                for plan in planned { out.append(.success(try await Self.insertSynced(plan.user, id: plan.id, tenant: tenant, actor: actor, now: now, tx: tx))) }
                return out
            }
        } catch is DirectoryError {
            var out: [Result<StoredObject, DirectoryError>] = []
            for plan in planned {
                do {
                    out.append(.success(try await write(tenant) { tx in
                        try await Self.insertSynced(plan.user, id: plan.id, tenant: tenant, actor: actor, now: now, tx: tx)
                    }))
                } catch let error as DirectoryError {
                    out.append(.failure(error))
                }
            }
            return out
        }
    }

    static func insertSynced(_ user: SyncedExternalUser, id: String, tenant: String, actor: Actor, now: String,
                             tx: any DirectoryTransaction) async throws -> StoredObject {
        let object = try await insert(kind: .user, body: user.body, id: id, tenant: tenant, actor: actor, now: now, allowReadOnly: true, tx: tx)
        try await putLink(guest: id, homeTenant: user.homeTenantID, homeUser: user.homeUserID, origin: user.origin, tenant: tenant, now: now, tx: tx)
        return object
    }

    /// Links an existing user of `tenant` (a B2B user sync takes over) to its home identity, unless it is linked already.
    /// A link held by a user since deleted goes. Refused (409) when another live user holds that home identity.
    public func linkSyncedExternalUser(tenant: String, guestID: String, homeTenantID: String, homeUserID: String, origin: String) async throws {
        let now = self.now
        try await write(tenant) { tx in
            try await Self.putLink(guest: guestID, homeTenant: homeTenantID, homeUser: homeUserID, origin: origin, tenant: tenant, now: now, tx: tx)
        }
    }

    static func putLink(guest: String, homeTenant: String, homeUser: String, origin: String, tenant: String, now: String,
                        tx: any DirectoryTransaction) async throws {
        let key = ExternalUserLink.key(homeTenant: homeTenant.lowercased(), homeUser: homeUser.lowercased())
        let linkID = ExternalUserLink.objectID(guest: guest)
        if let holder = try await tx.holder(tenant: tenant, key: key) {
            if holder == linkID { return }
            let earlier = try await tx.object(tenant: tenant, id: holder).flatMap { ExternalUserLink(stored: $0.body) }
            if let earlier, try await tx.object(tenant: tenant, id: earlier.guestID)?.deletedAt == nil {
                throw DirectoryError(.conflict, "Another user of this tenant is already linked to that home account.")
            }
            try await tx.purge(tenant: tenant, id: holder)
        }
        if try await tx.object(tenant: tenant, id: linkID) != nil { try await tx.purge(tenant: tenant, id: linkID) }
        let link = ExternalUserLink(guestID: guest, homeTenantID: homeTenant, homeUserID: homeUser, invitationID: origin, redeemedDateTime: now)
        try await tx.claim(tenant: tenant, object: linkID, keys: [key])
        try await tx.insert(StoredObject(tenant: tenant, id: linkID, kind: .externalUserLink, body: link.stored))
    }

    /// The user of `tenant` linked to `homeUser` of `homeTenant` (by an invitation or by synchronization), read in `tx`.
    public static func externalUser(tenant: String, homeTenant: String, homeUser: String, tx: any DirectoryReader) async throws -> String? {
        guard let linkID = try await tx.holder(tenant: tenant, key: ExternalUserLink.key(homeTenant: homeTenant.lowercased(),
                                                                                          homeUser: homeUser.lowercased())),
              let link = try await tx.object(tenant: tenant, id: linkID).flatMap({ ExternalUserLink(stored: $0.body) }) else { return nil }
        return link.guestID
    }
}
