import Foundation
import Testing
@testable import Store
import TesseraCore
import TesseraTesting

@Suite("Directory service batches (apply)")
struct BatchWriteTests {
    static func user(_ name: String, _ tenant: ProvisionedTenant, extra: [String: JSONValue] = [:]) -> DirectoryWrite {
        var body: [String: JSONValue] = [
            "accountEnabled": true, "displayName": .string(name), "mailNickname": .string(name),
            "userPrincipalName": .string("\(name)@\(tenant.domain)"), "passwordProfile": ["password": "Str0ng!Passw0rd"],
        ]
        for (key, value) in extra { body[key] = value }
        return .create(.user, body: body)
    }

    static func changes(_ store: SQLDirectoryStore, _ tenant: ProvisionedTenant, after seq: Int64) async throws -> [ChangeRecord] {
        try await store.read { tx in try await tx.changes(tenant: tenant.tenantId, kinds: nil, after: seq, limit: 1_000) }
    }

    @Test("a duplicate in the middle of a batch fails alone and leaves no key, no object and no change-log (audit) row",
          arguments: TestDatabases.all)
    func duplicateFailsAlone(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let before = try await store.read { tx in try await tx.latestSequence(tenant: tenant.tenantId) }
            let domain = tenant.domain
            let results = try await directory.apply([
                Self.user("one", tenant, extra: ["mail": .string("one@\(domain)")]),
                Self.user("two", tenant),
                // Its own UPN is free and claimed first; its address is the first user's: the UPN must not stay claimed.
                Self.user("three", tenant, extra: ["mail": .string("ONE@\(domain)")]),
                // The same UPN as the first, in other case.
                Self.user("ONE", tenant),
                Self.user("four", tenant),
            ], tenant: tenant.tenantId, actor: .system)
            #expect(results.count == 5)
            #expect(results.map { (try? $0.get()) != nil } == [true, true, false, false, true])
            #expect(throws: DirectoryError.duplicate("proxyAddresses")) { try results[2].get() }
            #expect(throws: DirectoryError.duplicate("userPrincipalName")) { try results[3].get() }
            let (threeKey, threeObjects) = try await store.read { tx in
                (try await tx.holder(tenant: tenant.tenantId, key: UniqueKey("userPrincipalName", "three@\(domain)")),
                 try await tx.count(ObjectQuery(tenant: tenant.tenantId, kinds: [.user],
                                                filter: .compare(PropertyPath(["displayName"]), .eq, .string("three")))))
            }
            #expect(threeKey == nil && threeObjects == 0)
            let created = results.compactMap { try? $0.get() }
            let log = try await Self.changes(store, tenant, after: before)
            #expect(log.map(\.objectId) == created.map(\.id))
            #expect(log.allSatisfy { $0.operation == "create" && $0.activity == "Add user" })
            // The refused ones can be created once their values are their own.
            _ = try await directory.makeUser(tenant, "three")
        }
    }

    @Test("a write whose link fails is undone whole: the object, its keys and its change-log row", arguments: TestDatabases.all)
    func failingLinkUndoesItsCreate(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let before = try await store.read { tx in try await tx.latestSequence(tenant: tenant.tenantId) }
            let missing = Identifier.make()
            let results = try await directory.apply([
                Self.user("boss", tenant),
                Self.user("orphan", tenant, extra: ["manager@odata.bind": .string("https://graph.microsoft.com/v1.0/users/\(missing)")]),
            ], tenant: tenant.tenantId, actor: .system)
            #expect(throws: DirectoryError.notFound(missing)) { try results[1].get() }
            let boss = try results[0].get()
            let holder = try await store.read { tx in
                try await tx.holder(tenant: tenant.tenantId, key: UniqueKey("userPrincipalName", "orphan@\(tenant.domain)"))
            }
            #expect(holder == nil)
            #expect(try await Self.changes(store, tenant, after: before).map(\.objectId) == [boss.id])
        }
    }

    @Test("creates, updates and links in one batch see the writes before them; a stale or repeated write fails alone",
          arguments: TestDatabases.all)
    func mixedWrites(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let existing = try await directory.makeUser(tenant, "Existing")
            let group = try await directory.create(tenant: tenant.tenantId, kind: .group, body: [
                "displayName": "Team", "mailEnabled": false, "mailNickname": "team", "securityEnabled": true], actor: .system)
            let before = try await store.read { tx in try await tx.latestSequence(tenant: tenant.tenantId) }
            let newcomer = Identifier.make()
            let results = try await directory.apply([
                .create(.user, body: [
                    "accountEnabled": true, "displayName": "Newcomer", "mailNickname": "newcomer",
                    "userPrincipalName": .string("newcomer@\(tenant.domain)"), "passwordProfile": ["password": "Str0ng!Passw0rd"],
                ], id: newcomer),
                .link(source: group.id, relation: "members", target: newcomer),
                .link(source: group.id, relation: "members", target: existing.id),
                .link(source: group.id, relation: "members", target: newcomer),
                .update(id: existing.id, kind: .user, patch: ["jobTitle": "Engineer"], ifMatch: existing.version),
                .update(id: existing.id, kind: .user, patch: ["jobTitle": "Manager"], ifMatch: existing.version),
                .update(id: existing.id, kind: .user, patch: ["userPrincipalName": .string("newcomer@\(tenant.domain)")]),
            ], tenant: tenant.tenantId, actor: .system)
            #expect(results.map { (try? $0.get()) != nil } == [true, true, true, false, true, false, false])
            #expect(try results[0].get().id == newcomer)
            #expect(throws: DirectoryError.self) { try results[3].get() }
            #expect((try? results[5].get()) == nil)
            if case .failure(let stale) = results[5] { #expect(stale.code == .preconditionFailed) }
            #expect(throws: DirectoryError.duplicate("userPrincipalName")) { try results[6].get() }
            let (members, stored) = try await store.read { tx in
                (Set(try await tx.targets(tenant: tenant.tenantId, source: group.id, relation: "members")),
                 try await tx.object(tenant: tenant.tenantId, id: existing.id))
            }
            #expect(members == [newcomer, existing.id])
            #expect(stored?.body["jobTitle"] == "Engineer" && stored?.version == existing.version + 1)
            #expect(stored?.body["userPrincipalName"]?.stringValue == "existing@\(tenant.domain)")
            let log = try await Self.changes(store, tenant, after: before)
            #expect(log.map(\.operation) == ["create", "link", "link", "update"])
        }
    }

    @Test("batches racing for one name: exactly one holds it, and every other write of both commits", arguments: TestDatabases.all)
    func concurrentBatches(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let before = try await store.read { tx in try await tx.latestSequence(tenant: tenant.tenantId) }
            // The contested name comes first, so on PostgreSQL the loser may meet it only when its checked write is
            // played (the winner not yet committed at its check): its batch then runs again write by write.
            let outcomes = try await withThrowingTaskGroup(of: [Bool].self) { group in
                for racer in 0..<6 {
                    group.addTask {
                        try await directory.apply([Self.user("contested", tenant)] + (0..<5).map { Self.user("r\(racer)u\($0)", tenant) },
                                                  tenant: tenant.tenantId, actor: .system).map { (try? $0.get()) != nil }
                    }
                }
                return try await group.reduce(into: [[Bool]]()) { $0.append($1) }
            }
            #expect(outcomes.filter { $0[0] }.count == 1)
            #expect(outcomes.allSatisfy { $0.dropFirst().allSatisfy { $0 } })
            let users = try await store.read { tx in
                try await tx.count(ObjectQuery(tenant: tenant.tenantId, kinds: [.user],
                                               filter: .compare(PropertyPath(["displayName"]), .eq, .string("contested"))))
            }
            #expect(users == 1)
            #expect(try await Self.changes(store, tenant, after: before).count == 1 + 6 * 5)
        }
    }
}
