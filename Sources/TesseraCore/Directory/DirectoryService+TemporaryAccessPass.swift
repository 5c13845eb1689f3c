public import Foundation

/// Temporary Access Pass: a time-limited passcode, one-time or multi-use, that lets a user sign in once to
/// register a passkey. Kept as a Graph object linked from the user; the passcode's salted digest and whether a one-time
/// pass was used are a ``TemporaryAccessPassRecord`` in the credential store, under the object's id.
extension ObjectKind {
    /// Graph's `temporaryAccessPassAuthenticationMethod`.
    public static let temporaryAccessPass = ObjectKind(rawValue: "temporaryAccessPassAuthenticationMethod")
}

extension DirectoryService {
    public static let temporaryAccessPassRelation = "temporaryAccessPassMethods"
    /// Graph's bounds for `lifetimeInMinutes` (10 minutes to 30 days) and Entra's default.
    public static let temporaryAccessPassLifetimes = 10...43_200
    public static let defaultTemporaryAccessPassLifetime = 60

    /// An unambiguous alphabet (no 0/O, 1/l/I) for passcodes people type.
    static let passcodeAlphabet = Array("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789")

    /// Creates a user's Temporary Access Pass; returns the stored method and the passcode, shown this once.
    /// A user has at most one: a new pass replaces the one the user has, as Microsoft documents for Graph.
    public func createTemporaryAccessPass(tenant: String, userID: String, startDateTime: Date? = nil,
                                          lifetimeInMinutes: Int = DirectoryService.defaultTemporaryAccessPassLifetime,
                                          isUsableOnce: Bool = false, actor: Actor) async throws -> (method: StoredObject, passcode: String) {
        guard Self.temporaryAccessPassLifetimes.contains(lifetimeInMinutes) else {
            throw DirectoryError.badRequest("lifetimeInMinutes must be between 10 and 43200 (30 days).")
        }
        var generator = SystemRandomNumberGenerator()
        let passcode = String((0..<12).map { _ in Self.passcodeAlphabet[Int(generator.next(upperBound: UInt(Self.passcodeAlphabet.count)))] })
        let now = self.now
        let start = startDateTime.map(Timestamp.format) ?? now
        let ends = (Timestamp.parse(start) ?? clock.now).addingTimeInterval(TimeInterval(lifetimeInMinutes) * 60)
        let method: StoredObject = try await write(tenant) { tx in
            guard let user = try await tx.object(tenant: tenant, id: userID), user.kind == .user, user.deletedAt == nil else {
                throw DirectoryError.notFound(userID)
            }
            for old in try await tx.targets(tenant: tenant, source: userID, relation: Self.temporaryAccessPassRelation) {
                try await tx.purge(tenant: tenant, id: old)
                try await tx.deleteCredential(tenant: tenant, kind: TemporaryAccessPassRecord.kind, id: old)
                try await tx.record(ChangeRecord(
                    tenant: tenant, objectId: userID, kind: .user, operation: "unlink", activity: "Admin deleted temporary access pass method for user",
                    actor: actor.initiatedBy, at: now,
                    details: ["displayName": .optional(user.body["displayName"]?.stringValue), "method": "TemporaryAccessPass", "targetId": .string(old)]))
            }
            let id = Identifier.make()
            let object = StoredObject(tenant: tenant, id: id, kind: .temporaryAccessPass, body: [
                "id": .string(id), "createdDateTime": .string(now), "startDateTime": .string(start),
                "lifetimeInMinutes": .int(Int64(lifetimeInMinutes)), "isUsableOnce": .bool(isUsableOnce), "_userId": .string(userID),
            ])
            try await tx.insert(object)
            try await tx.insertCredential(TemporaryAccessPassRecord(id: id, userID: userID, digest: Secrets.digest(passcode), expires: ends),
                                          tenant: tenant)
            try await tx.link(tenant: tenant, source: userID, relation: Self.temporaryAccessPassRelation, target: id)
            try await tx.record(ChangeRecord(
                tenant: tenant, objectId: userID, kind: .user, operation: "link", activity: "Admin registered temporary access pass method for user",
                actor: actor.initiatedBy, at: now,
                details: ["displayName": .optional(user.body["displayName"]?.stringValue), "method": "TemporaryAccessPass", "targetId": .string(id)]))
            return object
        }
        return (method, passcode)
    }

    /// The user's Temporary Access Pass, if any, and whether it was used (a one-time pass).
    public func temporaryAccessPass(tenant: String, userID: String) async throws -> (method: StoredObject, used: Bool)? {
        try await store.read { tx in
            let ids = try await tx.targets(tenant: tenant, source: userID, relation: Self.temporaryAccessPassRelation)
            guard let method = try await tx.objects(tenant: tenant, ids: ids).first(where: { $0.kind == .temporaryAccessPass }) else { return nil }
            let record = try await tx.credential(TemporaryAccessPassRecord.self, tenant: tenant, id: method.id)
            return (method, record?.state == .used)
        }
    }

    /// Why a pass can or cannot be used now: Graph's `methodUsabilityReason`.
    public func temporaryAccessPassUsability(_ method: StoredObject, used: Bool) -> (isUsable: Bool, reason: String) {
        let body = method.body
        guard let start = body["startDateTime"]?.stringValue.flatMap(Timestamp.parse),
              let minutes = body["lifetimeInMinutes"]?.intValue else { return (false, "Expired") }
        let now = clock.now
        if used { return (false, "OneTimeUsed") }
        if now < start { return (false, "NotYetValid") }
        if now >= start.addingTimeInterval(TimeInterval(minutes) * 60) { return (false, "Expired") }
        return (true, "EnabledByPolicy")
    }

    /// Checks a passcode for a user and, for a one-time pass, spends it in the same transaction, so two
    /// concurrent sign-ins cannot both use it. Compared in constant time.
    public func redeemTemporaryAccessPass(tenant: String, userID: String, passcode: String) async throws -> Bool {
        let now = self.now
        return try await write(tenant) { tx in
            let ids = try await tx.targets(tenant: tenant, source: userID, relation: Self.temporaryAccessPassRelation)
            guard let method = try await tx.objects(tenant: tenant, ids: ids).first(where: { $0.kind == .temporaryAccessPass }),
                  var record = try await tx.credential(TemporaryAccessPassRecord.self, tenant: tenant, id: method.id),
                  record.userID == userID, Secrets.matches(passcode, digest: record.digest),
                  self.temporaryAccessPassUsability(method, used: record.state == .used).isUsable
            else { return false }
            if method.body["isUsableOnce"]?.boolValue == true {
                record.state = .used
                // Of two sign-ins with one one-time pass at once, the second finds it used.
                guard try await tx.replaceCredential(record, tenant: tenant, ifStateIs: .unused) else { return false }
                try await tx.record(ChangeRecord(
                    tenant: tenant, objectId: userID, kind: .user, operation: "update", activity: "Temporary access pass used",
                    actor: ["user": ["id": .string(userID)]], at: now, details: ["method": "TemporaryAccessPass", "targetId": .string(method.id)]))
            }
            return true
        }
    }

    /// Deletes the user's Temporary Access Pass.
    public func deleteTemporaryAccessPass(tenant: String, userID: String, methodID: String, actor: Actor) async throws {
        try await deleteAuthenticationMethod(tenant: tenant, userID: userID, methodID: methodID, kind: .temporaryAccessPass,
                                             activity: "Admin deleted temporary access pass method for user",
                                             method: "TemporaryAccessPass", actor: actor)
    }
}
