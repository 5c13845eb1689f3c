import Foundation
import Testing
@testable import Store
import TesseraCore
import TesseraTesting

/// The write statements that PostgreSQL runs merged (the change log's sequence and row, a single-use key and its sweep,
/// many keys in one claim, a purge) and the keys compared as written: the same outcomes on every database.
@Suite("Write path: merged statements and case-sensitive keys")
struct WritePathTests {
    static func raw(_ store: SQLDirectoryStore, _ sql: String, _ binds: [SQLValue] = []) async throws -> [[SQLValue]] {
        try await store.backend.withWriteSession { session in try await session.execute(sql, binds) }
    }

    @Test("onPremisesImmutableId anchors that differ only in case belong to two users; the same anchor again is refused",
          arguments: TestDatabases.all)
    func anchorsAreCaseSensitive(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            // Two objectGUIDs whose base64 differs only in case.
            let upper = try await directory.makeUser(tenant, "Upper", extra: ["onPremisesImmutableId": "QUJDRA=="])
            let lower = try await directory.makeUser(tenant, "Lower", extra: ["onPremisesImmutableId": "qujdra=="])
            let holders = try await store.read { tx in
                (try await tx.holder(tenant: tenant.tenantId, key: UniqueKey("onPremisesImmutableId", "QUJDRA==")),
                 try await tx.holder(tenant: tenant.tenantId, key: UniqueKey("onPremisesImmutableId", "qujdra==")),
                 try await tx.holder(tenant: tenant.tenantId, key: UniqueKey("onPremisesImmutableId", "QujdRA==")))
            }
            #expect(holders.0 == upper.id && holders.1 == lower.id && holders.2 == nil)
            await #expect(throws: DirectoryError.duplicate("onPremisesImmutableId")) {
                try await directory.makeUser(tenant, "Again", extra: ["onPremisesImmutableId": "QUJDRA=="])
            }
            // Other keys still fold case.
            await #expect(throws: DirectoryError.duplicate("userPrincipalName")) { try await directory.makeUser(tenant, "UPPER") }
        }
    }

    @Test("the migration gives lowercased anchor keys their holder's case back", arguments: TestDatabases.all)
    func migrationRestoresAnchorCase(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let user = try await directory.makeUser(tenant, "Synced", extra: ["onPremisesImmutableId": "AbCdEf09+/=="])
            let other = try await directory.makeUser(tenant, "Cloud")
            // As the store held it before the migration: lowercased, and the step not yet run.
            _ = try await Self.raw(store, "UPDATE unique_keys SET value = ? WHERE tenant = ? AND name = 'onPremisesImmutableId'",
                                   [.text("abcdef09+/=="), .text(tenant.tenantId)])
            _ = try await Self.raw(store, "DELETE FROM schema_migrations WHERE version = 9")
            try await store.migrate()
            let (restored, folded) = try await store.read { tx in
                (try await tx.holder(tenant: tenant.tenantId, key: UniqueKey("onPremisesImmutableId", "AbCdEf09+/==")),
                 try await tx.holder(tenant: tenant.tenantId, key: UniqueKey("onPremisesImmutableId", "abcdef09+/==")))
            }
            #expect(restored == user.id && folded == nil)
            // Keys of other names are untouched.
            let keys = try await Self.raw(store, "SELECT name, value FROM unique_keys WHERE tenant = ? AND object = ?",
                                          [.text(tenant.tenantId), .text(other.id)])
            #expect(keys == [[.text("userPrincipalName"), .text("cloud@\(tenant.domain)")]])
        }
    }

    @Test("a single-use key is refused while it lives and taken again once expired; the same statement sweeps expired keys",
          arguments: TestDatabases.all)
    func singleUseKeysExpire(_ database: String) async throws {
        try await withTenant(database) { store, _, tenant in
            let t = tenant.tenantId
            func consume(_ key: String, expires: String, now: String) async throws -> Bool {
                try await store.write { tx in try await tx.consumeOnce(tenant: t, key: key, expiresAt: expires, now: now) }
            }
            #expect(try await consume("a", expires: "2026-01-01T00:10:00Z", now: "2026-01-01T00:00:00Z"))
            #expect(try await consume("b", expires: "2026-01-01T00:05:00Z", now: "2026-01-01T00:00:00Z"))
            #expect(try await !consume("a", expires: "2026-01-01T00:20:00Z", now: "2026-01-01T00:09:59Z"))
            // After both expired: "a" is taken again (with its new expiry) and "b", expired, is swept by the same write.
            #expect(try await consume("a", expires: "2026-01-01T00:30:00Z", now: "2026-01-01T00:10:01Z"))
            let left = try await Self.raw(store, "SELECT key, expires_at FROM single_use WHERE tenant = ? ORDER BY key", [.text(t)])
            #expect(left == [[.text("a"), .text("2026-01-01T00:30:00Z")]])
            #expect(try await !consume("a", expires: "2026-01-01T00:40:00Z", now: "2026-01-01T00:29:59Z"))
        }
    }

    @Test("many keys in one claim: the holder may claim again, the first taken key in the caller's order is the error, and a refused claim leaves none",
          arguments: TestDatabases.all)
    func claimManyKeys(_ database: String) async throws {
        try await withTenant(database) { store, _, tenant in
            let t = tenant.tenantId
            let keys = (0..<7).map { UniqueKey("proxyAddresses", "smtp:k\($0)@x.test") }
            let name = UniqueKey("userPrincipalName", "one@x.test"), free = UniqueKey("userPrincipalName", "k2@x.test")
            try await store.write { tx in try await tx.claim(tenant: t, object: "one", keys: Array(keys[0..<4]) + [name]) }
            // Again, with one of them twice and in other case: no error.
            try await store.write { tx in
                try await tx.claim(tenant: t, object: "one", keys: [keys[3], UniqueKey("proxyAddresses", "SMTP:K0@X.TEST"), keys[0]])
            }
            // Two keys of "one" are in the way: the error is the first of them in the order given.
            for (claimed, expected) in [([keys[6], free, keys[2], name, keys[1]], "proxyAddresses"), ([keys[5], free, name, keys[2]], "userPrincipalName")] {
                let error = await #expect(throws: DirectoryError.self) {
                    try await store.write { tx in try await tx.claim(tenant: t, object: "two", keys: claimed) }
                }
                #expect(error == DirectoryError.duplicate(expected))
            }
            // Nothing of the refused claims stayed, the free key included.
            let held = try await Self.raw(store, "SELECT object FROM unique_keys WHERE tenant = ? AND value LIKE ?", [.text(t), .text("%@x.test")])
            #expect(held.map { $0[0].text ?? "" } == ["one", "one", "one", "one", "one"])
            // Released in one statement, only those this object holds.
            try await store.write { tx in try await tx.release(tenant: t, object: "two", keys: [keys[0]]) }
            try await store.write { tx in try await tx.release(tenant: t, object: "one", keys: [keys[0], keys[1], keys[5], name]) }
            let after = try await store.read { tx in
                var found: [String] = []
                for key in keys + [name, free] { if let holder = try await tx.holder(tenant: t, key: key) { found.append(holder) } }
                return found
            }
            #expect(after == ["one", "one"])
        }
    }

    @Test("writers claiming the same keys in opposite orders: one of each pair wins, none deadlocks", arguments: TestDatabases.all)
    func oppositeOrders(_ database: String) async throws {
        try await withTenant(database) { store, _, tenant in
            let t = tenant.tenantId
            let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
                for pair in 0..<8 {
                    let x = UniqueKey("proxyAddresses", "smtp:x\(pair)@x.test"), y = UniqueKey("proxyAddresses", "smtp:y\(pair)@x.test")
                    for (side, order) in [[x, y], [y, x]].enumerated() {
                        group.addTask {
                            do {
                                try await store.write { tx in try await tx.claim(tenant: t, object: "p\(pair)s\(side)", keys: order) }
                                return true
                            } catch let error as DirectoryError {
                                #expect(error == DirectoryError.duplicate("proxyAddresses"))
                                return false
                            }
                        }
                    }
                }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 }.count == 8)
        }
    }

    @Test("sign-ins with one passkey at once: without a counter each is accepted and nothing rewritten, with counters none is a conflict and the highest stays",
          arguments: TestDatabases.all)
    func concurrentPasskeyCounters(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let t = tenant.tenantId
            for counted in [false, true] {
                let id = Identifier.make()
                try await store.write { tx in
                    try await tx.insert(StoredObject(tenant: t, id: id, kind: .fido2Method, body: ["id": .string(id), "_signCount": 0]))
                }
                let accepted = try await withThrowingTaskGroup(of: Bool.self) { group in
                    for n in 1...16 {
                        group.addTask {
                            try await directory.updateFido2Usage(tenant: t, methodID: id, signCount: counted ? UInt32(n) : 0, backupState: false)
                        }
                    }
                    return try await group.reduce(into: [Bool]()) { $0.append($1) }
                }
                let stored = try await store.read { tx in try await tx.object(tenant: t, id: id) }
                if counted {
                    #expect(accepted.contains(true) && stored?.body["_signCount"]?.intValue == 16)
                } else {
                    // A passkey without a counter is not rewritten at each sign-in (its counter and backup state
                    // unchanged): all sixteen accepted, none a conflict, the object as it was.
                    #expect(accepted == Array(repeating: true, count: 16) && stored?.version == 1)
                }
            }
        }
    }

    @Test("PostgreSQL placeholders are numbered outside quoted text only, whatever characters surround them")
    func placeholders() {
        #expect(PostgresSession.numberPlaceholders("SELECT ?, '?', 'it''s ?', body #>> '{é}' = ?, 'naïve ?' || ?")
                == "SELECT $1, '?', 'it''s ?', body #>> '{é}' = $2, 'naïve ?' || $3")
        #expect(PostgresSession.numberPlaceholders(Self.many) == (1...12).map { "$\($0)" }.joined(separator: ","))
    }

    static let many = Array(repeating: "?", count: 12).joined(separator: ",")

    @Test("a purge removes the object, its links both ways and its keys, and nothing of other objects", arguments: TestDatabases.all)
    func purgeRemovesEverything(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let t = tenant.tenantId
            let gone = try await directory.makeUser(tenant, "Gone")
            let kept = try await directory.makeUser(tenant, "Kept")
            let group = try await directory.create(tenant: t, kind: .group, body: [
                "displayName": "G", "mailEnabled": false, "mailNickname": "g", "securityEnabled": true,
            ], actor: .system)
            for user in [gone, kept] {
                _ = try await store.write { tx in try await tx.link(tenant: t, source: group.id, relation: "members", target: user.id) }
            }
            _ = try await store.write { tx in try await tx.link(tenant: t, source: gone.id, relation: "manager", target: kept.id) }
            try await store.write { tx in try await tx.purge(tenant: t, id: gone.id) }
            let (object, members, goneKey, keptKey, manager) = try await store.read { tx in
                (try await tx.object(tenant: t, id: gone.id),
                 try await tx.targets(tenant: t, source: group.id, relation: "members"),
                 try await tx.holder(tenant: t, key: UniqueKey("userPrincipalName", "gone@\(tenant.domain)")),
                 try await tx.holder(tenant: t, key: UniqueKey("userPrincipalName", "kept@\(tenant.domain)")),
                 try await tx.targets(tenant: t, source: gone.id, relation: "manager"))
            }
            #expect(object == nil && goneKey == nil && manager.isEmpty)
            #expect(members == [kept.id] && keptKey == kept.id)
        }
    }
}
