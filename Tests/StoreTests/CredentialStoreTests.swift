import Foundation
import Testing
@testable import Store
import TesseraCore
import TesseraTesting

/// The credential store: sign-in sessions, refresh tokens and device codes as typed records in a table of their own,
/// on SQLite in memory, an SQLite file and PostgreSQL.
@Suite("Credential records")
struct CredentialStoreTests {
    static let start = Date(timeIntervalSince1970: 1_800_000_000)

    static func token(_ user: String, family: String? = nil, code: String? = nil, expires: Date = start.addingTimeInterval(3600))
        -> RefreshTokenRecord {
        let id = Identifier.make()
        return RefreshTokenRecord(
            id: id, digest: Secrets.digest("secret-\(id)"),
            grant: SignInGrant(userID: user, clientID: Identifier.make(), redirectURI: "https://app.test/", scope: "openid offline_access",
                               sessionID: Identifier.make(), authTime: 1_800_000_000, amr: ["fido", "mfa"], aaguid: nil, acrs: ["c1"]),
            confidential: false, familyID: family ?? id, issuedForCode: code, expires: expires)
    }

    @Test("a record reads back as it was written, by id, handle, user and family, and never as another kind", arguments: TestDatabases.all)
    func roundTrip(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let t = tenant.tenantId, user = try await directory.makeUser(tenant, "Ada").id
            let first = Self.token(user, code: Secrets.fingerprint("code-1"))
            let second = Self.token(user, family: first.familyID)
            let session = SignInSessionRecord(id: Identifier.make(), userID: user, authTime: 1_800_000_000, amr: ["fido"],
                                              aaguid: "08987058-cadc-4b81-b6e1-30de50dcbe96", expires: Self.start.addingTimeInterval(60))
            try await store.write { tx in
                try await tx.insertCredential(first, tenant: t)
                try await tx.insertCredential(second, tenant: t)
                try await tx.insertCredential(session, tenant: t)
            }
            try await store.read { tx in
                #expect(try await tx.credential(RefreshTokenRecord.self, tenant: t, id: first.id) == first)
                #expect(try await tx.credential(RefreshTokenRecord.self, tenant: t, handle: Secrets.fingerprint("code-1")) == first)
                #expect(try await tx.credential(SignInSessionRecord.self, tenant: t, id: session.id) == session)
                let mine = try await tx.credentials(RefreshTokenRecord.self, tenant: t, userID: user).map(\.id)
                #expect(mine.sorted() == [first.id, second.id].sorted())
                #expect(try await tx.credentialRows(tenant: t, kind: .refreshToken, family: first.familyID).count == 2)
                // A session's id is not a refresh token's, and another tenant sees nothing.
                #expect(try await tx.credential(RefreshTokenRecord.self, tenant: t, id: session.id) == nil)
                #expect(try await tx.credential(RefreshTokenRecord.self, tenant: Identifier.make(), id: first.id) == nil)
                // Stored as typed columns beside the record's own JSON, which holds no `_`-member.
                let row = try #require(try await tx.credentialRow(tenant: t, kind: .refreshToken, id: first.id))
                #expect(row.userID == user && row.family == first.familyID && row.state == "unused" && !row.payload.contains("\"_"))
            }
        }
    }

    @Test("of twelve concurrent spends of one refresh token exactly one succeeds", arguments: TestDatabases.all)
    func concurrentSpend(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let t = tenant.tenantId, user = try await directory.makeUser(tenant, "Ada").id
            let token = Self.token(user)
            try await store.write { tx in try await tx.insertCredential(token, tenant: t) }
            let spent = await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<12 {
                    group.addTask {
                        (try? await store.write { tx -> Bool in
                            guard var record = try await tx.credential(RefreshTokenRecord.self, tenant: t, id: token.id),
                                  record.state == .unused else { return false }
                            record.state = .used
                            return try await tx.replaceCredential(record, tenant: t, ifStateIs: .unused)
                        }) ?? false
                    }
                }
                return await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
            }
            #expect(spent == 1)
            #expect(try await store.read { tx in try await tx.credential(RefreshTokenRecord.self, tenant: t, id: token.id) }?.state == .used)
        }
    }

    @Test("a device code is approved once: of concurrent approvals by two users the first stands", arguments: TestDatabases.all)
    func concurrentApprovals(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let t = tenant.tenantId
            let users = [try await directory.makeUser(tenant, "Ada").id, try await directory.makeUser(tenant, "Grace").id]
            let code = DeviceCodeRecord(id: Identifier.make(), digest: Secrets.digest("s"), userCode: "BCDFGHJKL", clientID: "c", scope: "openid",
                                        expires: Self.start.addingTimeInterval(900))
            try await store.write { tx in try await tx.insertCredential(code, tenant: t) }
            let approved = await withTaskGroup(of: Bool.self) { group in
                for i in 0..<8 {
                    group.addTask {
                        var approval = code
                        approval.state = .approved
                        approval.approval = .init(userID: users[i % 2], sessionID: Identifier.make(), authTime: 1, amr: ["fido"], aaguid: nil)
                        let record = approval
                        return (try? await store.write { tx in try await tx.replaceCredential(record, tenant: t, ifStateIs: .pending) }) ?? false
                    }
                }
                return await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
            }
            #expect(approved == 1)
            let stored = try #require(try await store.read { tx in try await tx.credential(DeviceCodeRecord.self, tenant: t, handle: "BCDFGHJKL") })
            let owner = try #require(stored.approval?.userID)
            #expect(stored.state == .approved && users.contains(owner))
            // The owner column follows the approval: revoking the approver's records takes the code.
            #expect(try await store.write { tx in try await tx.deleteCredentials(tenant: t, userID: owner, kinds: nil) } == 1)
        }
    }

    @Test("a user code is held by one live device code of the tenant", arguments: TestDatabases.all)
    func duplicateHandle(_ database: String) async throws {
        try await withTenant(database) { store, _, tenant in
            let t = tenant.tenantId
            @Sendable func code() -> DeviceCodeRecord {
                DeviceCodeRecord(id: Identifier.make(), digest: Secrets.digest("s"), userCode: "MNPQRSTVW", clientID: "c", scope: "openid",
                                 expires: Self.start.addingTimeInterval(900))
            }
            let first = code()
            try await store.write { tx in try await tx.insertCredential(first, tenant: t) }
            await #expect(throws: DirectoryError.duplicate("handle")) {
                try await store.write { tx in try await tx.insertCredential(code(), tenant: t) }
            }
            var taken = code()
            taken.id = first.id
            taken.userCode = "XZ2345678"
            let sameID = taken
            await #expect(throws: DirectoryError.duplicate("id")) {
                try await store.write { tx in try await tx.insertCredential(sameID, tenant: t) }
            }
            // The refused inserts left nothing behind; the handle is free again once its holder goes.
            #expect(try await store.read { tx in try await tx.credential(DeviceCodeRecord.self, tenant: t, handle: "XZ2345678") } == nil)
            #expect(try await store.write { tx in try await tx.deleteCredential(tenant: t, kind: .deviceCode, id: first.id) })
            try await store.write { tx in try await tx.insertCredential(code(), tenant: t) }
        }
    }

    @Test("records go by family, by user (every kind) and by expiry, and only those", arguments: TestDatabases.all)
    func deletions(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let t = tenant.tenantId
            let ada = try await directory.makeUser(tenant, "Ada").id, grace = try await directory.makeUser(tenant, "Grace").id
            let family = Self.token(ada), sibling = Self.token(ada, family: family.familyID), other = Self.token(ada)
            let expired = Self.token(grace, expires: Self.start.addingTimeInterval(-1)), live = Self.token(grace)
            let session = SignInSessionRecord(id: Identifier.make(), userID: ada, authTime: 1, amr: [], aaguid: nil,
                                              expires: Self.start.addingTimeInterval(60))
            try await store.write { tx in
                for token in [family, sibling, other, expired, live] { try await tx.insertCredential(token, tenant: t) }
                try await tx.insertCredential(session, tenant: t)
            }
            #expect(try await store.write { tx in try await tx.deleteCredentials(tenant: t, kind: .refreshToken, family: family.familyID) } == 2)
            #expect(try await store.purgeExpiredCredentials(tenant: t, now: Self.start, batch: 1) == 1)
            try await store.read { tx throws -> Void in
                #expect(try await tx.credentials(RefreshTokenRecord.self, tenant: t, userID: grace).map(\.id) == [live.id])
                #expect(try await tx.credentials(RefreshTokenRecord.self, tenant: t, userID: ada).map(\.id) == [other.id])
            }
            #expect(try await store.write { tx in try await tx.deleteCredentials(tenant: t, userID: ada, kinds: nil) } == 2)
            #expect(try await store.read { tx in try await tx.credential(SignInSessionRecord.self, tenant: t, id: session.id) } == nil)
            #expect(try await store.read { tx in try await tx.credential(RefreshTokenRecord.self, tenant: t, id: live.id) } == live)
        }
    }

    @Test("a one-time Temporary Access Pass tried eight times at once works once; its Graph object holds no digest",
          arguments: TestDatabases.all)
    func temporaryAccessPass(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let t = tenant.tenantId, user = try await directory.makeUser(tenant, "Ada").id
            let (method, passcode) = try await directory.createTemporaryAccessPass(tenant: t, userID: user, isUsableOnce: true, actor: .system)
            #expect(method.body.keys.allSatisfy { !["_digest", "_used"].contains($0) })
            let stored = try #require(try await store.read { tx in try await tx.object(tenant: t, id: method.id) })
            #expect(stored.body["_digest"] == nil && stored.body["_used"] == nil)
            let record = try #require(try await store.read { tx in
                try await tx.credential(TemporaryAccessPassRecord.self, tenant: t, id: method.id)
            })
            #expect(record.userID == user && record.state == .unused && Secrets.matches(passcode, digest: record.digest))
            #expect(try await !directory.redeemTemporaryAccessPass(tenant: t, userID: user, passcode: passcode.lowercased()))
            let worked = await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<8 {
                    group.addTask { (try? await directory.redeemTemporaryAccessPass(tenant: t, userID: user, passcode: passcode)) ?? false }
                }
                return await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
            }
            #expect(worked == 1)
            let after = try #require(try await directory.temporaryAccessPass(tenant: t, userID: user))
            #expect(after.used && directory.temporaryAccessPassUsability(after.method, used: after.used).reason == "OneTimeUsed")
            // Deleting the pass deletes its record.
            try await directory.deleteTemporaryAccessPass(tenant: t, userID: user, methodID: method.id, actor: .system)
            #expect(try await store.read { tx in try await tx.credential(TemporaryAccessPassRecord.self, tenant: t, id: method.id) } == nil)
        }
    }

    @Test("a user purged for good takes their sessions and tokens along", arguments: TestDatabases.all)
    func purgedUser(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let t = tenant.tenantId, user = try await directory.makeUser(tenant, "Ada").id
            let token = Self.token(user)
            try await store.write { tx in try await tx.insertCredential(token, tenant: t) }
            try await directory.delete(tenant: t, id: user, kind: .user, actor: .system)
            try await directory.purgeDeleted(tenant: t, id: user, actor: .system)
            #expect(try await store.read { tx in try await tx.credential(RefreshTokenRecord.self, tenant: t, id: token.id) } == nil)
        }
    }
}
