import Foundation
import Synchronization
import Testing
@testable import Store
import TesseraCore
import TesseraTesting

/// PostgreSQL's write sessions open their transaction block at the first write, and a create that is its transaction's
/// only write runs alone, as one statement that is also the commit (and checks a user's UPN domain itself), with a
/// trivial statement after it whose answer proves the commit ended: the statements sent are counted, and what each path
/// leaves (or refuses, and leaves nothing of) is checked.
@Suite("PostgreSQL: round trips of a write")
struct PostgresRoundTripTests {
    static let databases = TestDatabases.all.filter { $0.hasPrefix("postgres") }

    /// The statements a store sent, as they were sent.
    final class StatementLog: Sendable {
        private let lines = Mutex<[String]>([])
        func append(_ sql: String) { lines.withLock { $0.append(sql) } }
        /// The statements since the last call, trimmed.
        func take() -> [String] {
            lines.withLock { log in
                defer { log = [] }
                return log.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            }
        }
    }

    /// A migrated store whose statements are written down, with a fresh tenant.
    static func withCountedStore(_ url: String, maxConnections: Int = 16,
                                 _ body: (SQLDirectoryStore, DirectoryService, ProvisionedTenant, StatementLog) async throws -> Void) async throws {
        let sent = StatementLog()
        let store = SQLDirectoryStore(backend: try PostgresBackend(url: url, maxConnections: maxConnections, observe: { sql in sent.append(sql) }))
        do {
            try await store.migrate()
            let directory = DirectoryService(store: store, clock: TestClock())
            let tenant = try await TenantProvisioner(directory: directory).create(
                name: "Round trips", domain: "r\(UUID().uuidString.prefix(8).lowercased()).test")
            _ = sent.take()
            try await body(store, directory, tenant, sent)
            try await store.shutdown()
        } catch {
            try? await store.shutdown()
            throw error
        }
    }

    @Test("a user's create is two statements: the create, which checks the UPN's domain, and the proof that its commit ended, with no BEGIN or COMMIT", arguments: databases)
    func createAlone(_ url: String) async throws {
        try await Self.withCountedStore(url) { store, directory, tenant, sent in
            let before = try await store.read { try await $0.latestSequence(tenant: tenant.tenantId) }
            _ = sent.take()
            let ada = try await directory.makeUser(tenant, "Ada", extra: ["mail": .string("ada@\(tenant.domain)")])
            let statements = sent.take()
            #expect(statements.count == 2)
            #expect(statements.first?.hasPrefix("WITH r AS") == true && statements.first?.contains("k AS (INSERT") == true)
            #expect(statements.last == "SELECT 1")
            #expect(!statements.contains("BEGIN") && !statements.contains("COMMIT"))
            // All of it was saved: the object and its digest, both keys, the change-log row with the next sequence number.
            let (object, holders, changes) = try await store.read { tx in
                (try await tx.object(tenant: tenant.tenantId, id: ada.id),
                 try await tx.holders(tenant: tenant.tenantId, of: [UniqueKey("userPrincipalName", "ada@\(tenant.domain)"),
                                                                     UniqueKey("proxyAddresses", "SMTP:ada@\(tenant.domain)")]),
                 try await tx.changes(tenant: tenant.tenantId, kinds: nil, after: before, limit: 10))
            }
            #expect(object == ada)
            #expect(holders.count == 2 && holders.values.allSatisfy { $0 == ada.id })
            #expect(changes.map(\.seq) == [before + 1] && changes.first?.objectId == ada.id && changes.first?.operation == "create")
            let digests = try await store.read { try await $0.objectDigests(tenant: tenant.tenantId, kinds: [.user]) }
            let stored = try await store.backend.withReadSession { session in
                try await session.execute("SELECT encode(sha256(convert_to(body::text, 'UTF8')), 'hex') FROM objects WHERE tenant = ? AND id = ?",
                                          [.text(tenant.tenantId), .text(ada.id)])
            }
            #expect(digests.first { $0.id == ada.id }?.digest == stored.first?.first?.text)
        }
    }

    @Test("every create run alone is one prepared statement whatever its keys: one text, prepared once on the connection, executed with PostgreSQL's generic plan (not planned again)",
          arguments: databases)
    func createPrepared(_ url: String) async throws {
        // One connection, so that the statements PostgreSQL holds for it can be read.
        try await Self.withCountedStore(url, maxConnections: 1) { store, directory, tenant, sent in
            var texts: Set<String> = []
            var made: [String] = []
            for i in 0..<8 {
                // Users with one key (the UPN) and with two (and a proxy address), and a group with none.
                if i == 7 {
                    made.append(try await directory.create(tenant: tenant.tenantId, kind: .group, body: [
                        "displayName": "Plain", "mailEnabled": false, "mailNickname": "plain", "securityEnabled": true], actor: .system).id)
                } else {
                    made.append(try await directory.makeUser(tenant, "User\(i)",
                                                             extra: i.isMultiple(of: 2) ? ["mail": .string("user\(i)@\(tenant.domain)")] : [:]).id)
                }
                let statements = sent.take()
                #expect(statements.count == 2 && statements.last == "SELECT 1")
                if let first = statements.first { texts.insert(first) }
            }
            #expect(texts.count == 1 && texts.first?.hasPrefix("WITH r AS") == true)
            let held = try await store.backend.withReadSession { session in
                try await session.execute("SELECT count(*), max(generic_plans) FROM pg_prepared_statements WHERE statement LIKE 'WITH r AS%'", [])
            }
            #expect(held.first?.first?.int == 1)
            // PostgreSQL plans a prepared statement's first five executions for their values, then keeps a generic plan.
            #expect((held.first?.last?.int ?? 0) >= 1)
            let ids = made
            #expect(try await store.read { try await $0.objects(tenant: tenant.tenantId, ids: ids) }.count == 8)
        }
    }

    @Test("a create whose statement failed to prepare on its connection (no objects table on the search path) does not leave that connection refusing every create: it is closed and the next create prepares again",
          arguments: databases)
    func failedPreparationDiscardsConnection(_ url: String) async throws {
        try await Self.withCountedStore(url) { kept, _, tenant, _ in
            // A store whose one connection has not prepared the create yet.
            let store = SQLDirectoryStore(backend: try PostgresBackend(url: url, maxConnections: 1))
            let t = tenant.tenantId
            // A create run alone, with nothing read before it: its statement is the first to reach PostgreSQL.
            func create(_ name: String) async throws -> StoredObject {
                let object = StoredObject(tenant: t, id: UUID().uuidString.lowercased(), kind: .user, body: ["displayName": .string(name)])
                try await store.write { tx in
                    try await tx.create(object, keys: [UniqueKey("userPrincipalName", "\(name)@\(tenant.domain)")],
                                        change: ChangeRecord(tenant: t, objectId: object.id, kind: .user, operation: "create",
                                                             activity: "Add user", actor: .null, at: "2026-01-01T00:00:00Z"))
                }
                return object
            }
            // The pool's one connection: PostgreSQL finds none of Tessera's tables when it parses the create.
            _ = try await store.backend.withReadSession { try await $0.execute("SET search_path TO tessera_nowhere", []) }
            await #expect(throws: (any Error).self) { _ = try await create("lost") }
            // PostgresNIO keeps the failed preparation by name for the connection's life: once the search path is back, a
            // connection kept would still refuse every create. The pool may lend the closing connection once more (a
            // retryable refusal); it then makes a new one.
            var made: StoredObject?
            for _ in 0..<50 where made == nil {
                do {
                    _ = try await store.backend.withReadSession { try await $0.execute("RESET search_path", []) }
                    made = try await create("found")
                } catch {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            try await store.shutdown()
            let found = try #require(made)
            #expect(try await kept.read { try await $0.object(tenant: t, id: found.id) } == found)
        }
    }

    @Test("a user's create in a domain that is not verified is refused by its one statement, and only then is the domain read to explain it",
          arguments: databases)
    func createRefusedByDomain(_ url: String) async throws {
        try await Self.withCountedStore(url) { store, directory, tenant, sent in
            _ = try await directory.create(tenant: tenant.tenantId, kind: .domain, body: ["id": "fabrikam.test"], actor: .system,
                                           id: "fabrikam.test")
            let before = try await store.read { try await $0.latestSequence(tenant: tenant.tenantId) }
            _ = sent.take()
            await #expect(throws: DirectoryError.badRequest(
                "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization.")) {
                _ = try await directory.create(tenant: tenant.tenantId, kind: .user, body: [
                    "accountEnabled": true, "displayName": "Ann", "mailNickname": "ann", "userPrincipalName": "ann@fabrikam.test",
                    "passwordProfile": ["password": "Str0ng!Passw0rd"]], actor: .system)
            }
            let statements = sent.take()
            #expect(statements.count == 2 && statements.first?.hasPrefix("WITH r AS") == true && statements.last?.hasPrefix("SELECT") == true)
            #expect(!statements.contains("SELECT 1") && !statements.contains("BEGIN") && !statements.contains("COMMIT"))
            #expect(try await store.read { try await $0.latestSequence(tenant: tenant.tenantId) } == before)
            #expect(try await store.read { try await $0.holder(tenant: tenant.tenantId, key: UniqueKey("userPrincipalName", "ann@fabrikam.test")) } == nil)
        }
    }

    @Test("a write session that only reads sends no BEGIN or COMMIT; one that writes opens its block at the first write",
          arguments: databases)
    func blockOpensAtFirstWrite(_ url: String) async throws {
        try await Self.withCountedStore(url) { store, directory, tenant, sent in
            _ = try await store.write { tx in try await tx.object(tenant: tenant.tenantId, id: tenant.domain) }
            #expect(sent.take().count == 1)
            try await store.write { tx in
                _ = try await tx.latestSequence(tenant: tenant.tenantId)
                try await tx.putSetting(tenant: tenant.tenantId, key: "round-trips", value: "one")
            }
            let statements = sent.take()
            #expect(statements.count == 4 && statements[1] == "BEGIN" && statements[3] == "COMMIT")
            #expect(try await store.read { try await $0.setting(tenant: tenant.tenantId, key: "round-trips") } == "one")
            // A body that throws after a write rolls the block back.
            struct Refused: Error {}
            await #expect(throws: Refused.self) {
                try await store.write { tx in
                    try await tx.putSetting(tenant: tenant.tenantId, key: "round-trips", value: "two")
                    throw Refused()
                }
            }
            #expect(sent.take().last == "ROLLBACK")
            #expect(try await store.read { try await $0.setting(tenant: tenant.tenantId, key: "round-trips") } == "one")
        }
    }

    @Test("a create followed by more writes runs inside the block, and a group's members bound in its create are linked",
          arguments: databases)
    func createThenMore(_ url: String) async throws {
        try await Self.withCountedStore(url) { store, directory, tenant, sent in
            let ada = try await directory.makeUser(tenant, "Ada")
            _ = sent.take()
            let group = try await directory.create(tenant: tenant.tenantId, kind: .group, body: [
                "displayName": "Engineers", "mailEnabled": false, "mailNickname": "engineers", "securityEnabled": true,
                "members@odata.bind": .array([.string("https://graph.microsoft.com/v1.0/directoryObjects/\(ada.id)")]),
            ], actor: .system)
            let statements = sent.take()
            #expect(statements.contains("BEGIN") && statements.last == "COMMIT")
            #expect(!statements.contains { $0.hasPrefix("WITH k AS") || $0.hasPrefix("WITH o AS") })
            #expect(try await store.read { try await $0.targets(tenant: tenant.tenantId, source: group.id, relation: "members") } == [ada.id])
            // Many creates in one transaction, the same way.
            let many = try await directory.createMany(tenant: tenant.tenantId, kind: .group, bodies: (0..<3).map {
                ["displayName": .string("G\($0)"), "mailEnabled": false, "mailNickname": .string("g\($0)"), "securityEnabled": true]
            }, actor: .system)
            #expect(try await store.read { try await $0.objects(tenant: tenant.tenantId, ids: many.map(\.id)) }.count == 3)
        }
    }

    @Test("a create refused alone leaves nothing: a key another object holds, an id already taken, a tenant that is not there",
          arguments: databases)
    func refusedAloneLeavesNothing(_ url: String) async throws {
        try await Self.withCountedStore(url) { store, directory, tenant, _ in
            let t = tenant.tenantId
            let owner = try await directory.makeUser(tenant, "Owner", extra: ["mail": .string("shared@\(tenant.domain)")])
            let before = try await store.read { try await $0.latestSequence(tenant: t) }
            // The UPN (first in the caller's order) is free and the proxy address is another user's: the error names the held key.
            await #expect(throws: DirectoryError.duplicate("proxyAddresses")) {
                _ = try await directory.makeUser(tenant, "Second", extra: ["mail": .string("shared@\(tenant.domain)")])
            }
            await #expect(throws: DirectoryError.duplicate("userPrincipalName")) { _ = try await directory.makeUser(tenant, "OWNER") }
            // The same id again, with a key of its own that is free.
            let again = StoredObject(tenant: t, id: owner.id, kind: .user, body: ["displayName": "Again"])
            let change = ChangeRecord(tenant: t, objectId: owner.id, kind: .user, operation: "create", activity: "Add user",
                                      actor: .null, at: "2026-01-01T00:00:00Z")
            await #expect(throws: DirectoryError.badRequest("An object with the id '\(owner.id)' already exists.")) {
                try await store.write { tx in try await tx.create(again, keys: [UniqueKey("userPrincipalName", "again@\(tenant.domain)")], change: change) }
            }
            // A tenant that does not exist: its key and object are not saved either.
            let stray = StoredObject(tenant: "no-such-tenant", id: UUID().uuidString.lowercased(), kind: .user, body: ["displayName": "Stray"])
            await #expect(throws: DirectoryError.notFound("no-such-tenant")) {
                try await store.write { tx in
                    try await tx.create(stray, keys: [UniqueKey("userPrincipalName", "stray@x.test")],
                                        change: ChangeRecord(tenant: "no-such-tenant", objectId: stray.id, kind: .user, operation: "create",
                                                             activity: "Add user", actor: .null, at: "2026-01-01T00:00:00Z"))
                }
            }
            let left = try await store.backend.withReadSession { session in
                try await session.execute(
                    "SELECT (SELECT count(*) FROM unique_keys WHERE tenant = ? AND value IN (?, ?)) + (SELECT count(*) FROM unique_keys WHERE tenant = 'no-such-tenant') + (SELECT count(*) FROM objects WHERE tenant = 'no-such-tenant')",
                    [.text(t), .text("second@\(tenant.domain)"), .text("again@\(tenant.domain)")])
            }
            #expect(left.first?.first?.int == 0)
            #expect(try await store.read { try await $0.latestSequence(tenant: t) } == before)
            #expect(try await store.read { try await $0.object(tenant: t, id: owner.id) } == owner)
        }
    }

    @Test("creates racing renames in transaction blocks for the same names: one holder each, no deadlock", arguments: databases)
    func createsRaceRenames(_ url: String) async throws {
        try await Self.withCountedStore(url) { store, directory, tenant, _ in
            let t = tenant.tenantId
            var renamed: [StoredObject] = []
            for i in 0..<8 { renamed.append(try await directory.makeUser(tenant, "Old\(i)", extra: ["mail": .string("old\(i)@\(tenant.domain)")])) }
            let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
                for (i, user) in renamed.enumerated() {
                    let upn = "new\(i)@\(tenant.domain)"
                    group.addTask {
                        do {
                            // Releases and claims keys, updates, records: four writes in a block.
                            _ = try await directory.update(tenant: t, id: user.id, kind: .user, patch: [
                                "userPrincipalName": .string(upn), "mail": .string("new\(i)@\(tenant.domain)"),
                                "proxyAddresses": .array([.string("SMTP:new\(i)@\(tenant.domain)")]),
                            ], actor: .system)
                            return true
                        } catch let error as DirectoryError where error == .duplicate("userPrincipalName") || error == .duplicate("proxyAddresses") {
                            return false
                        }
                    }
                    group.addTask {
                        do {
                            _ = try await directory.makeUser(tenant, "New\(i)", extra: ["mail": .string("new\(i)@\(tenant.domain)")])
                            return true
                        } catch let error as DirectoryError where error == .duplicate("userPrincipalName") || error == .duplicate("proxyAddresses") {
                            return false
                        }
                    }
                }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 }.count == 8)
            for i in 0..<8 {
                let holders = try await store.read { tx in
                    try await tx.holders(tenant: t, of: [UniqueKey("userPrincipalName", "new\(i)@\(tenant.domain)"),
                                                         UniqueKey("proxyAddresses", "smtp:new\(i)@\(tenant.domain)")])
                }
                #expect(holders.count == 2 && Set(holders.values).count == 1)
            }
        }
    }

    @Test("only a SELECT with no locking clause, advisory lock or sequence call runs outside the block")
    func plainReads() {
        #expect(PostgresWriteSession.isPlainRead("SELECT id FROM objects WHERE tenant = ?"))
        #expect(PostgresWriteSession.isPlainRead("  \n select 1"))
        for sql in ["SELECT pg_advisory_xact_lock(1)", "SELECT id FROM tenants WHERE id = ? FOR UPDATE", "SELECT 1 FROM t FOR SHARE",
                    "SELECT nextval('s')", "SELECT set_config('a', 'b', true)",
                    "WITH x AS (DELETE FROM t RETURNING 1) SELECT * FROM x", "INSERT INTO t VALUES (1)", "UPDATE t SET a = 1", "BEGIN"] {
            #expect(!PostgresWriteSession.isPlainRead(sql), "\(sql)")
        }
    }
}
