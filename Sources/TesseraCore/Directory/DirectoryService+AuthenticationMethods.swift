/// Users' authentication methods (passkeys so far), kept as objects linked from their user so that they are in
/// the change log, and so that a credential id can be registered only once in a tenant (WebAuthn §7.1 step 27).
extension ObjectKind {
    /// A user's passkey: Graph's `fido2AuthenticationMethod`.
    public static let fido2Method = ObjectKind(rawValue: "fido2AuthenticationMethod")
}

extension DirectoryService {
    /// The relation from a user to their passkeys.
    public static let fido2MethodsRelation = "fido2Methods"
    /// Every relation from a user to objects that exist only for that user and are purged with them (their sessions,
    /// refresh tokens and device codes are credential records, deleted by user).
    public static var userOwnedRelations: [String] {
        [fido2MethodsRelation, temporaryAccessPassRelation]
    }

    /// Stores a verified passkey for a user. `body` is the Graph JSON plus private `_`-prefixed members (public key,
    /// counter, flags); `credentialKey` is the credential id in lowercase hex, unique in the tenant.
    public func addFido2Method(tenant: String, userID: String, body: [String: JSONValue], credentialKey: String,
                               actor: Actor) async throws -> StoredObject {
        let now = self.now
        return try await write(tenant) { tx in
            guard let user = try await tx.object(tenant: tenant, id: userID), user.kind == .user, user.deletedAt == nil else {
                throw DirectoryError.notFound(userID)
            }
            let id = Identifier.make()
            var fields = body
            fields["id"] = .string(id)
            fields["createdDateTime"] = .string(now)
            fields["_userId"] = .string(userID)
            let object = StoredObject(tenant: tenant, id: id, kind: .fido2Method, body: fields)
            do {
                try await tx.claim(tenant: tenant, object: id, keys: [UniqueKey("fido2CredentialId", credentialKey)])
            } catch {
                throw DirectoryError.badRequest("This passkey is already registered in the tenant.")
            }
            try await tx.insert(object)
            try await tx.link(tenant: tenant, source: userID, relation: Self.fido2MethodsRelation, target: id)
            try await tx.record(ChangeRecord(
                tenant: tenant, objectId: userID, kind: .user, operation: "link", activity: "Admin registered security info",
                actor: actor.initiatedBy, at: now,
                details: ["displayName": .optional(user.body["displayName"]?.stringValue), "method": "Fido2",
                          "targetId": .string(id), "aaGuid": .optional(body["aaGuid"]?.stringValue)]))
            return object
        }
    }

    /// A user's passkeys, oldest first.
    public func fido2Methods(tenant: String, userID: String) async throws -> [StoredObject] {
        try await store.read { tx in
            let ids = try await tx.targets(tenant: tenant, source: userID, relation: Self.fido2MethodsRelation)
            return try await tx.objects(tenant: tenant, ids: ids).filter { $0.kind == .fido2Method }
                .sorted { ($0.body["createdDateTime"]?.stringValue ?? "") < ($1.body["createdDateTime"]?.stringValue ?? "") }
        }
    }

    /// Removes a user's passkey for good (Graph has no recycle bin for methods).
    public func deleteFido2Method(tenant: String, userID: String, methodID: String, actor: Actor) async throws {
        try await deleteAuthenticationMethod(tenant: tenant, userID: userID, methodID: methodID, kind: .fido2Method,
                                             activity: "Admin deleted security info", method: "Fido2", actor: actor)
    }

    /// Removes one of a user's authentication methods of `kind` and records it against the user.
    func deleteAuthenticationMethod(tenant: String, userID: String, methodID: String, kind: ObjectKind, activity: String,
                                    method name: String, actor: Actor) async throws {
        let now = self.now
        try await write(tenant) { tx in
            guard let method = try await tx.object(tenant: tenant, id: methodID), method.kind == kind,
                  method.body["_userId"]?.stringValue == userID
            else { throw DirectoryError.notFound(methodID) }
            try await tx.purge(tenant: tenant, id: methodID)
            try await tx.deleteCredential(tenant: tenant, kind: TemporaryAccessPassRecord.kind, id: methodID)
            let user = try await tx.object(tenant: tenant, id: userID)
            try await tx.record(ChangeRecord(
                tenant: tenant, objectId: userID, kind: .user, operation: "unlink", activity: activity, actor: actor.initiatedBy, at: now,
                details: ["displayName": .optional(user?.body["displayName"]?.stringValue), "method": .string(name), "targetId": .string(methodID)]))
        }
    }
}

extension DirectoryService {
    /// After a verified assertion: stores the new signature counter, the backup state and when it was last used.
    /// Returns false, changing nothing, when a concurrent sign-in already moved the counter to or past this one
    /// (two assertions with the same counter: one of them is from a clone).
    public func updateFido2Usage(tenant: String, methodID: String, signCount: UInt32, backupState: Bool) async throws -> Bool {
        try await store.write { tx in
            try await updateFido2Usage(tenant: tenant, methodID: methodID, signCount: signCount, backupState: backupState, tx: tx)
        }
    }

    /// The same, inside the caller's transaction (a sign-in commits its challenge, counter and session together).
    ///
    /// The compare-and-set is on the counter, not on the object's version: when another sign-in with the same passkey
    /// commits first (PostgreSQL runs them side by side; SQLite's one writer never does), the passkey is read again and
    /// this counter compared with the one that sign-in stored, so a passkey without a counter (0, as synced passkeys
    /// report) signs in everywhere at once, and a counter that is now behind is reported as behind, not as a conflict.
    /// Such a passkey is not written at all while its backup state stays as stored: nothing about it changed (each use
    /// is in the sign-in log), so its sign-ins write no Graph object.
    public func updateFido2Usage(tenant: String, methodID: String, signCount: UInt32, backupState: Bool,
                                 tx: any DirectoryTransaction) async throws -> Bool {
        let now = self.now
        for _ in 0..<16 {
            guard var method = try await tx.object(tenant: tenant, id: methodID), method.kind == .fido2Method else {
                throw DirectoryError.notFound(methodID)
            }
            let current = method.body["_signCount"]?.intValue ?? 0
            guard (signCount == 0 && current == 0) || Int64(signCount) > current else { return false }
            if signCount == 0, (method.body["_backupState"]?.boolValue ?? false) == backupState { return true }
            let version = method.version
            method.body["_signCount"] = .int(Int64(signCount))
            method.body["_backupState"] = .bool(backupState)
            method.body["_lastUsedDateTime"] = .string(now)
            method.version = version + 1
            do {
                try await tx.update(method, expectedVersion: version)
                return true
            } catch let error as DirectoryError where error.code == .conflict {
                continue  // another sign-in committed first: compare with what it stored
            }
        }
        throw DirectoryError(.conflict, "The passkey was used by many sign-ins at once; sign in again.")
    }
}
