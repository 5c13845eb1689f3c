import Foundation
import Testing
@testable import Store
import TesseraCore
import TesseraTesting

@Suite("Directory store and service")
struct DirectoryStoreTests {
    @Test("a duplicate userPrincipalName is refused with Graph's message", arguments: TestDatabases.all)
    func duplicateUPN(_ database: String) async throws {
        try await withTenant(database) { _, directory, tenant in
            _ = try await directory.makeUser(tenant, "Ada")
            await #expect(throws: DirectoryError.duplicate("userPrincipalName")) {
                _ = try await directory.makeUser(tenant, "ADA")
            }
        }
    }

    @Test("the object holding a unique key is read in one step, as holder and object read it in two", arguments: TestDatabases.all)
    func objectHoldingKey(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let ada = try await directory.makeUser(tenant, "Ada")
            let other = try await directory.makeUser(tenant, "Grace")
            let upn = UniqueKey("userPrincipalName", "ADA@\(tenant.domain)")
            let read = try await store.read { tx in
                (try await tx.object(tenant: tenant.tenantId, holding: upn), try await tx.holder(tenant: tenant.tenantId, key: upn))
            }
            #expect(read.0?.id == ada.id && read.0?.body["displayName"] == "Ada" && read.1 == ada.id)
            #expect(try await store.read { tx in try await tx.object(tenant: tenant.tenantId, holding: UniqueKey("userPrincipalName", "nobody@x.test")) } == nil)
            // Another tenant's key is not this tenant's.
            let elsewhere = try await TenantProvisioner(directory: directory).create(name: "Fabrikam", domain: "f\(UUID().uuidString.prefix(8).lowercased()).test")
            #expect(try await store.read { tx in try await tx.object(tenant: elsewhere.tenantId, holding: upn) } == nil)
            // A renamed user no longer holds the old name; the new one leads to it.
            _ = try await directory.update(tenant: tenant.tenantId, id: ada.id, kind: .user,
                                           patch: ["userPrincipalName": .string("lovelace@\(tenant.domain)")], actor: .system)
            let after = try await store.read { tx in
                (try await tx.object(tenant: tenant.tenantId, holding: upn),
                 try await tx.object(tenant: tenant.tenantId, holding: UniqueKey("userPrincipalName", "lovelace@\(tenant.domain)")))
            }
            #expect(after.0 == nil && after.1?.id == ada.id && after.1?.id != other.id)
        }
    }

    @Test("concurrent creations of one UPN: exactly one wins", arguments: TestDatabases.all)
    func concurrentDuplicates(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let results = await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<12 {
                    group.addTask { (try? await directory.makeUser(tenant, "Racer")) != nil }
                }
                return await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(results.filter { $0 }.count == 1)
            let count = try await store.read { tx in
                try await tx.count(ObjectQuery(tenant: tenant.tenantId, kinds: [.user],
                                               filter: .compare(PropertyPath(["displayName"]), .eq, .string("Racer"))))
            }
            #expect(count == 1)
        }
    }

    @Test("concurrent claims of one proxy address by different users: exactly one wins", arguments: TestDatabases.all)
    func concurrentProxyAddresses(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let results = await withTaskGroup(of: Bool.self) { group in
                for i in 0..<12 {
                    group.addTask {
                        (try? await directory.makeUser(tenant, "Claimant \(i)", extra: ["mail": .string("contested@\(tenant.domain)")])) != nil
                    }
                }
                return await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(results.filter { $0 }.count == 1)
            let holders = try await store.read { tx in
                try await tx.query(ObjectQuery(tenant: tenant.tenantId, kinds: [.user],
                                               filter: try FilterParser.parse("proxyAddresses/any(p:p eq 'smtp:contested@\(tenant.domain)')")))
            }
            #expect(holders.count == 1)
        }
    }

    @Test("a failed write leaves nothing half-written", arguments: TestDatabases.all)
    func rollback(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            _ = try await directory.makeUser(tenant, "Owner", extra: ["mail": .string("shared@\(tenant.domain)")])
            let before = try await store.read { tx in try await tx.latestSequence(tenant: tenant.tenantId) }
            // The second user claims its UPN first, then fails on the proxy address: the UPN must not stay claimed.
            await #expect(throws: DirectoryError.self) {
                _ = try await directory.makeUser(tenant, "Second", extra: ["mail": .string("shared@\(tenant.domain)")])
            }
            let (holder, after) = try await store.read { tx in
                (try await tx.holder(tenant: tenant.tenantId, key: UniqueKey("userPrincipalName", "second@\(tenant.domain)")),
                 try await tx.latestSequence(tenant: tenant.tenantId))
            }
            #expect(holder == nil)
            #expect(after == before)
            _ = try await directory.makeUser(tenant, "Second")
        }
    }

    @Test("createMany writes all of its objects or, when one fails, none", arguments: TestDatabases.all)
    func createManyAllOrNothing(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            func body(_ name: String) -> [String: JSONValue] {
                ["accountEnabled": true, "displayName": .string(name), "mailNickname": .string(name), "userPrincipalName": .string("\(name)@\(tenant.domain)"),
                 "passwordProfile": ["password": "Str0ng!Passw0rd"]]
            }
            let before = try await store.read { tx in try await tx.latestSequence(tenant: tenant.tenantId) }
            await #expect(throws: DirectoryError.duplicate("userPrincipalName")) {
                _ = try await directory.createMany(tenant: tenant.tenantId, kind: .user, bodies: [body("one"), body("two"), body("ONE")], actor: .system)
            }
            let (holder, after) = try await store.read { tx in
                (try await tx.holder(tenant: tenant.tenantId, key: UniqueKey("userPrincipalName", "two@\(tenant.domain)")),
                 try await tx.latestSequence(tenant: tenant.tenantId))
            }
            #expect(holder == nil && after == before)
            let created = try await directory.createMany(tenant: tenant.tenantId, kind: .user, bodies: [body("one"), body("two")], actor: .system)
            #expect(created.count == 2 && Set(created.map(\.id)).count == 2)
            let changes = try await store.read { tx in try await tx.changes(tenant: tenant.tenantId, kinds: [.user], after: before, limit: 10) }
            #expect(changes.map(\.objectId) == created.map(\.id) && changes.allSatisfy { $0.operation == "create" })
        }
    }

    @Test("filters translate to SQL that finds the right objects", arguments: TestDatabases.all)
    func filters(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            _ = try await directory.makeUser(tenant, "Alice Adams", extra: ["jobTitle": "Engineer", "mail": .string("alice@\(tenant.domain)")])
            _ = try await directory.makeUser(tenant, "Bob Brown", extra: ["jobTitle": "Designer", "accountEnabled": false])
            _ = try await directory.makeUser(tenant, "Alan Turing", extra: ["jobTitle": "Engineer"])
            let cases: [(String, Set<String>)] = [
                ("startswith(displayName,'al')", ["Alice Adams", "Alan Turing"]),
                ("displayName eq 'BOB BROWN'", ["Bob Brown"]),
                ("jobTitle eq 'Engineer' and not(startswith(displayName,'Alan'))", ["Alice Adams"]),
                ("jobTitle in ('Designer','Nobody')", ["Bob Brown"]),
                ("accountEnabled eq false", ["Bob Brown"]),
                ("proxyAddresses/any(p:p eq 'SMTP:ALICE@\(tenant.domain)')", ["Alice Adams"]),
                ("proxyAddresses/any(p:startswith(p,'smtp:'))", ["Alice Adams"]),
                ("endswith(userPrincipalName,'turing@\(tenant.domain)')", ["Alan Turing"]),
                ("jobTitle ne 'Engineer' and startswith(displayName,'B')", ["Bob Brown"]),
                ("jobTitle eq null and startswith(displayName,'A')", []),
            ]
            for (text, expected) in cases {
                let filter = try FilterParser.parse(text)
                let names = try await store.read { tx in
                    try await tx.query(ObjectQuery(tenant: tenant.tenantId, kinds: [.user], filter: filter))
                }.compactMap { $0.body["displayName"]?.stringValue }
                #expect(Set(names) == expected, "\(text)")
            }
        }
    }

    @Test("a projection reads just the named properties, as JSON of the right types", arguments: TestDatabases.all)
    func projection(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let user = try await directory.makeUser(tenant, "Projected", extra: ["mail": .string("p@\(tenant.domain)"), "accountEnabled": false])
            var query = ObjectQuery(tenant: tenant.tenantId, kinds: [.user], scope: .ids([user.id]))
            query.projection = ["displayName", "proxyAddresses", "accountEnabled", "jobTitle"]
            let frozen = query
            let found = try #require(try await store.read { tx in try await tx.query(frozen) }.first)
            #expect(found.id == user.id)
            #expect(found.body == [
                "displayName": "Projected", "proxyAddresses": [.string("SMTP:p@\(tenant.domain)")], "accountEnabled": false, "jobTitle": nil,
            ])
            query.projection = ["displayName'); DROP TABLE objects; --"]
            let hostile = query
            await #expect(throws: DirectoryError.self) { _ = try await store.read { tx in try await tx.query(hostile) } }
        }
    }

    @Test("keyset and offset paging visit every object once", arguments: TestDatabases.all)
    func paging(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            for i in 0..<7 { _ = try await directory.makeUser(tenant, "Pager \(i)") }
            var seen: [String] = []
            var after: String?
            repeat {
                let page = try await store.read { [after] tx in
                    try await tx.query(ObjectQuery(tenant: tenant.tenantId, kinds: [.user], limit: 3, afterId: after))
                }
                seen += page.map(\.id)
                after = page.count == 3 ? page.last?.id : nil
            } while after != nil
            #expect(seen.count == 8 && Set(seen).count == 8)
            let sorted = try await store.read { tx in
                try await tx.query(ObjectQuery(tenant: tenant.tenantId, kinds: [.user],
                                               orderBy: [OrderByItem(path: PropertyPath(["displayName"]), descending: true)], limit: 2, offset: 1))
            }
            // Descending: "Tessera Administrator" comes first and is skipped by the offset.
            #expect(sorted.map { $0.body["displayName"]?.stringValue } == ["Pager 6", "Pager 5"])
        }
    }

    @Test("delete, restore and purge follow Entra's soft-delete model", arguments: TestDatabases.all)
    func softDelete(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let user = try await directory.makeUser(tenant, "Temp")
            try await directory.delete(tenant: tenant.tenantId, id: user.id, kind: .user, actor: .system)
            // The UPN is free while the user is deleted …
            let again = try await directory.makeUser(tenant, "Temp")
            // … so restoring the first one conflicts until the second is gone.
            await #expect(throws: DirectoryError.duplicate("userPrincipalName")) {
                _ = try await directory.restore(tenant: tenant.tenantId, id: user.id, actor: .system)
            }
            try await directory.delete(tenant: tenant.tenantId, id: again.id, kind: .user, actor: .system)
            try await directory.purgeDeleted(tenant: tenant.tenantId, id: again.id, actor: .system)
            let restored = try await directory.restore(tenant: tenant.tenantId, id: user.id, actor: .system)
            #expect(restored.deletedAt == nil && restored.id == user.id)
            let gone = try await store.read { tx in try await tx.object(tenant: tenant.tenantId, id: again.id) }
            #expect(gone == nil)
        }
    }

    @Test("every write lands in the change log, in order", arguments: TestDatabases.all)
    func changeLog(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let start = try await store.read { tx in try await tx.latestSequence(tenant: tenant.tenantId) }
            let user = try await directory.makeUser(tenant, "Logged")
            _ = try await directory.update(tenant: tenant.tenantId, id: user.id, kind: .user, patch: ["jobTitle": "Chef"], actor: .system)
            try await directory.delete(tenant: tenant.tenantId, id: user.id, kind: .user, actor: .system)
            let changes = try await store.read { tx in try await tx.changes(tenant: tenant.tenantId, kinds: [.user], after: start, limit: 10) }
            #expect(changes.map(\.operation) == ["create", "update", "delete"])
            #expect(changes.map(\.activity) == ["Add user", "Update user", "Delete user"])
            #expect(changes[1].details["modifiedProperties"]?.arrayValue?.first?["newValue"] == .string("\"Chef\""))
            #expect(zip(changes, changes.dropFirst()).allSatisfy { $0.seq < $1.seq })
        }
    }

    @Test("group membership links, transitive views and duplicates", arguments: TestDatabases.all)
    func links(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let user = try await directory.makeUser(tenant, "Member")
            func group(_ name: String) async throws -> StoredObject {
                try await directory.create(tenant: tenant.tenantId, kind: .group, body: [
                    "displayName": .string(name), "mailEnabled": false, "mailNickname": .string(name), "securityEnabled": true,
                ], actor: .system)
            }
            let inner = try await group("Inner"), outer = try await group("Outer")
            try await directory.addLink(tenant: tenant.tenantId, source: inner.id, relation: "members", target: user.id, actor: .system)
            try await directory.addLink(tenant: tenant.tenantId, source: outer.id, relation: "members", target: inner.id, actor: .system)
            await #expect(throws: DirectoryError.self) {
                try await directory.addLink(tenant: tenant.tenantId, source: outer.id, relation: "members", target: inner.id, actor: .system)
            }
            let (groups, members) = try await store.read { tx in
                (try await directory.transitiveGroups(tenant: tenant.tenantId, of: user.id, tx: tx),
                 try await directory.transitiveMembers(tenant: tenant.tenantId, of: outer.id, tx: tx))
            }
            #expect(Set(groups) == [inner.id, outer.id])
            #expect(Set(members) == [inner.id, user.id])
        }
    }

    @Test("single-use keys are accepted once", arguments: TestDatabases.all)
    func singleUse(_ database: String) async throws {
        try await withTenant(database) { store, _, tenant in
            let first = try await store.write { tx in
                try await tx.consumeOnce(tenant: tenant.tenantId, key: "k", expiresAt: "2999-01-01T00:00:00Z", now: "2026-01-01T00:00:00Z")
            }
            let second = try await store.write { tx in
                try await tx.consumeOnce(tenant: tenant.tenantId, key: "k", expiresAt: "2999-01-01T00:00:00Z", now: "2026-01-01T00:00:00Z")
            }
            #expect(first && !second)
        }
    }

    @Test("tenants are isolated", arguments: TestDatabases.all)
    func isolation(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let other = try await TenantProvisioner(directory: directory).create(name: "Other", domain: "o\(UUID().uuidString.prefix(8).lowercased()).test")
            let user = try await directory.makeUser(tenant, "Private")
            let seen = try await store.read { tx in try await tx.object(tenant: other.tenantId, id: user.id) }
            #expect(seen == nil)
            await #expect(throws: DirectoryError.self) {
                _ = try await directory.update(tenant: other.tenantId, id: user.id, kind: nil, patch: ["jobTitle": "x"], actor: .system)
            }
        }
    }
}

@Suite("Deleted-item retention")
struct RetentionTests {
    @Test("objects deleted more than 30 days ago are purged; recent ones stay restorable", arguments: TestDatabases.all)
    func purgesExpired(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            // Deleted "31 days ago" by a directory whose clock ran a month behind.
            let past = DirectoryService(store: store, clock: TestClock(start: TestClock.start.addingTimeInterval(-31 * 86_400)))
            let old = try await past.makeUser(tenant, "Old")
            try await past.delete(tenant: tenant.tenantId, id: old.id, kind: .user, actor: .system)
            let recent = try await directory.makeUser(tenant, "Recent")
            try await directory.delete(tenant: tenant.tenantId, id: recent.id, kind: .user, actor: .system)
            #expect(try await directory.purgeExpiredDeletedItems(tenant: tenant.tenantId) == 1)
            let (oldGone, recentKept) = try await store.read { tx in
                (try await tx.object(tenant: tenant.tenantId, id: old.id), try await tx.object(tenant: tenant.tenantId, id: recent.id))
            }
            #expect(oldGone == nil)
            #expect(recentKept?.deletedAt != nil)
            await #expect(throws: DirectoryError.self) { _ = try await past.restore(tenant: tenant.tenantId, id: old.id, actor: .system) }
            _ = try await directory.restore(tenant: tenant.tenantId, id: recent.id, actor: .system)
        }
    }
}
