import Foundation
import Testing
@testable import Store
import TesseraCore
import TesseraTesting

/// Migration 18's property indexes, each partial over the kinds `ObjectQuery.propertyIndexKinds` names: every query
/// shape that narrows or orders by an indexed property, for every kind its index covers, walks that index (not the
/// kind's objects, not the table) on SQLite and PostgreSQL; objects of other kinds hold no entry and are still found;
/// and a database with step 2's indexes over every object is converted. Step 19's filter-only indexes hold only objects with
/// a value: filters on a value still walk them, and every filter and order (NULLs included) answers as the objects say.
@Suite("Property indexes per kind")
struct PropertyIndexTests {
    /// The query shapes Graph lists, the admin center and the store's own lookups send for `property` on `kind`.
    static func shapes(_ tenant: String, _ property: String, _ kind: ObjectKind) -> [(String, ObjectQuery)] {
        let path = PropertyPath([property])
        let ascending = [OrderByItem(path: path, descending: false)], descending = [OrderByItem(path: path, descending: true)]
        // As the Lister sends a filter without $orderby: ordered by the property it narrows by, one row more than the page.
        func listed(_ filter: FilterExpression) -> ObjectQuery {
            ObjectQuery(tenant: tenant, kinds: [kind], filter: filter, orderBy: ascending, limit: 101)
        }
        func page(_ order: [OrderByItem]) -> ObjectQuery {
            var query = ObjectQuery(tenant: tenant, kinds: [kind], orderBy: order, limit: 101)
            query.after = KeysetPosition(values: ["m-value"], id: "00000000-0000-4000-8000-000000000000")
            return query
        }
        var shapes: [(String, ObjectQuery)] = [
            ("eq", listed(.compare(path, .eq, .string("Value-7")))),
            ("eq, one by id (a lookup)", ObjectQuery(tenant: tenant, kinds: [kind], filter: .compare(path, .eq, .string("Value-7")), limit: 1)),
            ("startswith", listed(.startsWith(path, "Value-1"))),
            ("in", listed(.in(path, [.string("Value-3"), .string("value-4"), .string("VALUE-5")]))),
            ("ge", listed(.compare(path, .ge, .string("Value-5")))),
            ("eq and a filter on another property", listed(.and(.compare(path, .eq, .string("Value-7")),
                                                                .compare(PropertyPath(["accountEnabled"]), .eq, .bool(true))))),
            ("count of eq", listed(.compare(path, .eq, .string("Value-7")))),
        ]
        // Step 19's indexes hold only objects with a value: an order by the property alone cannot walk them (Graph does not
        // order by these properties); `valuedAnswers` checks it still answers.
        if !Migrations.valuedPropertyIndexProperties.contains(property) {
            shapes += [
                ("orderby, first page", ObjectQuery(tenant: tenant, kinds: [kind], orderBy: ascending, limit: 101)),
                ("orderby, a later page", page(ascending)),
                ("orderby desc, a later page", page(descending)),
            ]
        }
        return shapes
    }

    /// The database's plan for `translated`, one line a step. On PostgreSQL sequential scans are priced out (a test's
    /// table is small enough to read whole, which a real one is not), so the plan shows which index it would walk; for a
    /// page in the property's order (`ordered`) sorts are priced out too: a test tenant's hundred-odd objects of a kind
    /// can be fetched through another partial index over the kind and sorted for less than the ordered walk costs (the
    /// planner chose that in a fresh-clone run, its statistics of the shared table moved by the suites beside it), which
    /// a real tenant's thousands cannot.
    static func plan(_ store: SQLDirectoryStore, _ translated: QueryTranslator.Translated, ordered: Bool = false) async throws -> [String] {
        try await store.backend.withWriteSession { session in
            guard store.backend.dialect.isPostgres else {
                return try await session.execute("EXPLAIN QUERY PLAN " + translated.sql, translated.binds).compactMap { $0.last?.text }
            }
            _ = try await session.execute("SET enable_seqscan = off", [])
            if ordered { _ = try await session.execute("SET enable_sort = off", []) }
            func reset() async {
                // The pool's connection goes back as it came.
                _ = try? await session.execute("RESET enable_seqscan", [])
                if ordered { _ = try? await session.execute("RESET enable_sort", []) }
            }
            do {
                let lines = try await session.execute("EXPLAIN " + translated.sql, translated.binds).compactMap { $0.first?.text }
                await reset()
                return lines
            } catch {
                await reset()
                throw error
            }
        }
    }

    /// Whether every read of the objects table in `plan` walks `index`, and at least one does.
    static func walks(_ plan: [String], _ index: String, postgres: Bool) -> Bool {
        if postgres {
            let text = plan.joined(separator: "\n").lowercased()
            return text.contains(index.lowercased()) && !text.contains("seq scan on objects") && !text.contains("objects_by_kind")
                && !text.contains("objects_pkey")
        }
        let reads = plan.filter { $0.hasPrefix("SCAN objects") || $0.hasPrefix("SEARCH objects") }
        return !reads.isEmpty && reads.allSatisfy { $0.contains("INDEX \(index) ") || $0.hasSuffix("INDEX \(index)") }
    }

    /// Objects of every covered kind with every indexed property (values `Value-0` … with case varied, some without),
    /// so that PostgreSQL's statistics see a table like a tenant's.
    static func fill(_ store: SQLDirectoryStore, _ tenant: String, count: Int) async throws {
        let kinds = Set(ObjectQuery.propertyIndexKinds.values.flatMap { $0 })
        try await store.write { tx in
            for kind in kinds.sorted(by: { $0.rawValue < $1.rawValue }) {
                for n in 0..<count {
                    let id = Identifier.make()
                    var body: [String: JSONValue] = ["id": .string(id)]
                    for property in ObjectQuery.indexedProperties where ObjectQuery.propertyIndexKinds[property]?.contains(kind) == true && n % 10 != 9 {
                        body[property] = .string((n % 2 == 0 ? "Value-" : "VALUE-") + String(n))
                    }
                    try await tx.insert(StoredObject(tenant: tenant, id: id, kind: kind, body: body))
                }
            }
        }
        if store.backend.dialect.isPostgres { _ = try await StagingStoreTests.raw(store, "ANALYZE objects") }
    }

    /// The property indexes as the database holds them: name (as written) → definition.
    static func definitions(_ store: SQLDirectoryStore) async throws -> [String: String] {
        let sql = store.backend.dialect.isPostgres
            ? "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'objects'"
            : "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'objects' AND sql IS NOT NULL"
        let rows = try await StagingStoreTests.raw(store, sql)
        var out: [String: String] = [:]
        for property in ObjectQuery.indexedProperties {
            let name = "objects_by_\(property)"
            out[property] = rows.first { $0[0].text?.lowercased() == name.lowercased() }.flatMap { $0[1].text }
        }
        return out
    }

    /// Whether `definition` is a partial index over exactly the kinds its property's index covers, and (step 19) for a
    /// filter-only property only over objects with a value.
    static func coversExactly(_ definition: String?, _ property: String) -> Bool {
        guard let definition, let condition = definition.range(of: " WHERE ").map({ String(definition[$0.upperBound...]) }) else { return false }
        let kinds = ObjectQuery.propertyIndexKinds[property] ?? []
        return !kinds.isEmpty && kinds.allSatisfy { condition.contains("'\($0.rawValue)'") }
            && condition.components(separatedBy: "kind =").count - 1 == kinds.count
            && condition.uppercased().contains("IS NOT NULL") == Migrations.valuedPropertyIndexProperties.contains(property)
    }

    @Test("every indexed property's index covers named kinds, and every kind it names is one the code defines")
    func table() {
        #expect(Set(ObjectQuery.propertyIndexKinds.keys) == Set(ObjectQuery.indexedProperties))
        #expect(ObjectQuery.propertyIndexKinds["appId"] == [.application, .servicePrincipal])
        #expect(ObjectQuery.propertyIndexKinds["deviceId"] == [.device])
        #expect(ObjectQuery.propertyIndexKinds.values.allSatisfy { !$0.isEmpty })
        // Kinds nobody lists by these properties hold no entry in any of them.
        for kind in [ObjectKind.appRoleAssignment, .roleAssignment, .conditionalAccessPolicy, .fido2Method, .oauth2PermissionGrant] {
            #expect(!ObjectQuery.propertyIndexKinds.values.contains { $0.contains(kind) }, "\(kind)")
        }
        // Users hold no appId or deviceId entry; sign-in records hold one entry (the user principal name), not twelve.
        #expect(ObjectQuery.propertyIndexKinds.filter { $0.value.contains(.user) }.count == 10)
        #expect(ObjectQuery.propertyIndexKinds.filter { $0.value.contains(.signIn) }.keys.sorted() == ["userPrincipalName"])
        // Every statement of the step names the kinds literally: no quote can come from a kind's name.
        for kind in ObjectQuery.propertyIndexKinds.values.flatMap({ $0 }) {
            #expect(kind.rawValue.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) }, "\(kind)")
        }
    }

    @Test("eq, startswith, in, orderby and its later pages walk the property's partial index for every kind it covers",
          arguments: TestDatabases.all)
    func plans(_ database: String) async throws {
        try await withTenant(database) { store, _, tenant in
            let t = tenant.tenantId, postgres = store.backend.dialect.isPostgres
            try await Self.fill(store, t, count: postgres ? 400 : 20)
            let definitions = try await Self.definitions(store)
            let translator = QueryTranslator(dialect: store.backend.dialect)
            for property in ObjectQuery.indexedProperties {
                #expect(Self.coversExactly(definitions[property], property), "\(property): \(definitions[property] ?? "no index")")
                for kind in ObjectQuery.propertyIndexKinds[property] ?? [] {
                    for (shape, query) in Self.shapes(t, property, kind) {
                        let translated = shape.hasPrefix("count") ? try translator.count(query) : try translator.select(query, columns: "id")
                        let plan = try await Self.plan(store, translated, ordered: shape.hasPrefix("orderby"))
                        #expect(Self.walks(plan, "objects_by_\(property)", postgres: postgres), "\(property) on \(kind), \(shape): \(plan)")
                    }
                }
            }
        }
    }

    @Test("the answers are the same for covered kinds and for kinds the index leaves out", arguments: TestDatabases.all)
    func answers(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let t = tenant.tenantId
            let ada = try await directory.makeUser(tenant, "Ada Lovelace", extra: ["jobTitle": "Engineer", "employeeId": "E-1"])
            let alan = try await directory.makeUser(tenant, "Alan Turing", extra: ["jobTitle": "engineer"])
            let grace = try await directory.makeUser(tenant, "Grace Hopper", extra: ["jobTitle": "Admiral"])
            // Kinds no property index covers: a policy with a display name, a sign-in record with an app id.
            let policy = Identifier.make(), signIn = Identifier.make(), device = Identifier.make()
            try await store.write { tx in
                try await tx.insert(StoredObject(tenant: t, id: policy, kind: .conditionalAccessPolicy,
                                                 body: ["id": .string(policy), "displayName": "Ada's policy", "state": "enabled"]))
                try await tx.insert(StoredObject(tenant: t, id: signIn, kind: .signIn,
                                                 body: ["id": .string(signIn), "appId": "AB-12", "userPrincipalName": "Ada@x.test"]))
                try await tx.insert(StoredObject(tenant: t, id: device, kind: .device,
                                                 body: ["id": .string(device), "deviceId": "D-9", "displayName": "Ada's laptop"]))
            }
            func ids(_ kind: ObjectKind, _ filter: FilterExpression?, order: String? = nil) async throws -> [String] {
                let query = ObjectQuery(tenant: t, kinds: [kind], filter: filter,
                                        orderBy: order.map { [OrderByItem(path: PropertyPath([$0]), descending: false)] } ?? [])
                return try await store.read { tx in try await tx.query(query) }.map(\.id)
            }
            let title = PropertyPath(["jobTitle"]), name = PropertyPath(["displayName"])
            #expect(Set(try await ids(.user, .compare(title, .eq, .string("ENGINEER")))) == [ada.id, alan.id])
            #expect(try await ids(.user, .startsWith(name, "ada"), order: "displayName") == [ada.id])
            #expect(try await ids(.user, .in(PropertyPath(["employeeId"]), [.string("e-1"), .string("E-2")])) == [ada.id])
            #expect(try await ids(.user, nil, order: "displayName").filter { [ada.id, alan.id, grace.id].contains($0) } == [ada.id, alan.id, grace.id])
            #expect(try await ids(.conditionalAccessPolicy, .startsWith(name, "ADA")) == [policy])
            #expect(try await ids(.signIn, .compare(PropertyPath(["appId"]), .eq, .string("ab-12"))) == [signIn])
            #expect(try await ids(.signIn, .compare(PropertyPath(["userPrincipalName"]), .eq, .string("ada@X.test"))) == [signIn])
            #expect(try await ids(.device, .compare(PropertyPath(["deviceId"]), .eq, .string("d-9"))) == [device])
            #expect(try await ids(.device, .startsWith(name, "ada's")) == [device])
            // A kind that is not a plain name is bound, not written into the SQL, and matches nothing here.
            #expect(try await ids(ObjectKind(rawValue: "user' OR '1'='1"), nil).isEmpty)
            #expect(try await store.read { tx in try await tx.count(ObjectQuery(tenant: t, kinds: [.user, .device], filter: .startsWith(name, "ada"))) } == 2)
        }
    }

    @Test("step 19: the filter-only indexes leave out objects without a value; every filter and order still answers as the objects do",
          arguments: TestDatabases.all)
    func valuedAnswers(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let t = tenant.tenantId, postgres = store.backend.dialect.isPostgres
            // Values with case varied, a JSON null, and missing (nil): each property of each user, shifted per property.
            let values: [JSONValue?] = ["Sales", "sales-East", nil, "R&D", .null, "zeta", nil, "SALES-west"]
            var users: [StoredObject] = []
            for n in 0..<values.count {
                var extra: [String: JSONValue] = [:]
                for (offset, property) in Migrations.valuedPropertyIndexProperties.sorted().enumerated() {
                    if let value = values[(n + offset) % values.count] { extra[property] = value }
                }
                users.append(try await directory.makeUser(tenant, "Person \(n)", extra: extra))
            }
            let mine = Set(users.map(\.id))
            let translator = QueryTranslator(dialect: store.backend.dialect)
            for property in Migrations.valuedPropertyIndexProperties.sorted() {
                let path = PropertyPath([property])
                let filters: [FilterExpression] = [
                    .compare(path, .eq, .string("sales")), .compare(path, .eq, .null), .compare(path, .ne, .string("sales")),
                    .compare(path, .ne, .null), .startsWith(path, "SAL"), .in(path, [.string("r&d"), .string("Zeta")]),
                    .compare(path, .ge, .string("s")), .compare(path, .lt, .string("s")), .not(.compare(path, .eq, .string("sales"))),
                    .or(.compare(path, .eq, .string("zeta")), .compare(path, .eq, .null)),
                    .and(.startsWith(path, "s"), .compare(path, .ne, .string("sales-east"))),
                ]
                for filter in filters {
                    let query = ObjectQuery(tenant: t, kinds: [.user], filter: filter)
                    let found = Set(try await store.read { tx in try await tx.query(query) }.map(\.id)).intersection(mine)
                    // A JSON null is no value, as the store reads it (`eq null` finds it).
                    let expected = Set(users.filter { filter.matches(.object($0.body.filter { $0.value != .null })) }.map(\.id))
                    #expect(found == expected, "\(property): \(filter)")
                }
                // An eq on a value walks the index, which holds exactly the users with a value.
                let eq = ObjectQuery(tenant: t, kinds: [.user], filter: .compare(path, .eq, .string("sales")))
                #expect(Self.walks(try await Self.plan(store, try translator.select(eq, columns: "id")), "objects_by_\(property)", postgres: postgres))
                // Ordered, whole and page by page (keyset, two a page, as Graph's $skiptoken pages): every user once, in order,
                // those without a value where the database sorts NULL (SQLite first ascending, PostgreSQL last).
                for descending in [false, true] {
                    let order = [OrderByItem(path: path, descending: descending)]
                    let whole = try await store.read { tx in try await tx.query(ObjectQuery(tenant: t, kinds: [.user], orderBy: order)) }
                        .map(\.id).filter { mine.contains($0) }
                    func key(_ user: StoredObject) -> String? { user.body[property]?.stringValue?.lowercased() }
                    let expected = users.sorted { a, b in
                        let (x, y) = (key(a), key(b))
                        if x == y { return a.id < b.id }
                        guard let x else { return postgres == descending }
                        guard let y else { return postgres != descending }
                        return descending ? x > y : x < y
                    }.map(\.id)
                    #expect(whole == expected, "\(property) ordered\(descending ? " desc" : "")")
                    var paged: [String] = [], query = ObjectQuery(tenant: t, kinds: [.user], orderBy: order, limit: 2)
                    while paged.count <= 100 {
                        let page = try await store.read { [query] tx in try await tx.query(query) }
                        guard let last = page.last else { break }
                        paged += page.map(\.id)
                        query.after = KeysetPosition(values: [last.body[property]?.stringValue], id: last.id)
                    }
                    #expect(paged.filter { mine.contains($0) } == expected, "\(property) paged\(descending ? " desc" : "")")
                }
            }
        }
    }

    @Test("a database with step 2's indexes over every object gets steps 18 and 19 pending, alone, and is converted; answers unchanged",
          arguments: TestDatabases.all)
    func converts(_ database: String) async throws {
        try await CredentialMigrationTests.withOwnDatabase(database) { store in
            try await store.migrate()
            let directory = DirectoryService(store: store, clock: TestClock())
            let tenant = try await TenantProvisioner(directory: directory).create(name: "Upgrade", domain: "upgrade.test")
            let t = tenant.tenantId
            for n in 0..<12 { _ = try await directory.makeUser(tenant, "Person \(n)", extra: ["department": .string(n % 3 == 0 ? "Sales" : "R&D")]) }
            for n in 0..<3 { _ = try await directory.makeUser(tenant, "Nobody \(n)") }
            try await Self.fill(store, t, count: 5)
            // The schema as step 17 left it: step 2's indexes, one entry for every object.
            let steps = [Migrations.propertyIndexStep, Migrations.valuedPropertyIndexStep]
            let dialect = store.backend.dialect
            let second = try #require(Migrations.steps(dialect).first { $0.0 == 2 }?.1)
            try await store.backend.withWriteSession { session in
                for property in ObjectQuery.indexedProperties { _ = try await session.execute("DROP INDEX objects_by_\(property)", []) }
                for statement in second { _ = try await session.execute(statement, []) }
                for step in steps { _ = try await session.execute("DELETE FROM schema_migrations WHERE version = ?", [.int(Int64(step))]) }
            }
            let old = try await Self.definitions(store)
            #expect(old.count == 12 && old.values.allSatisfy { !$0.contains(" WHERE ") }, "\(old)")
            let department = PropertyPath(["department"])
            let queries = [
                ObjectQuery(tenant: t, kinds: [.user], filter: .compare(department, .eq, .string("sales")),
                            orderBy: [OrderByItem(path: department, descending: false)]),
                ObjectQuery(tenant: t, kinds: [.user], orderBy: [OrderByItem(path: PropertyPath(["displayName"]), descending: true)], limit: 7),
                ObjectQuery(tenant: t, kinds: [.application], filter: .startsWith(PropertyPath(["appId"]), "value-1")),
                ObjectQuery(tenant: t, kinds: [.signIn], filter: .compare(PropertyPath(["userPrincipalName"]), .eq, .string("value-2"))),
                // Step 19's department index holds no entry for the objects without one: these still find them.
                ObjectQuery(tenant: t, kinds: [.user], filter: .compare(department, .eq, .null)),
                ObjectQuery(tenant: t, kinds: [.user], filter: .compare(department, .ne, .string("Sales")),
                            orderBy: [OrderByItem(path: department, descending: true)]),
                ObjectQuery(tenant: t, kinds: [.user], orderBy: [OrderByItem(path: department, descending: false)]),
            ]
            var before: [[String]] = []
            for query in queries { before.append(try await store.read { tx in try await tx.query(query) }.map(\.id)) }
            #expect(before[0].count == 4 && before[1].count == 7 && !before[2].isEmpty && before[3].count == 1)
            #expect(before[4].count >= 3 && before[5].count == before[4].count + 13 && before[6].count == before[5].count + 4)

            let status = try await store.schemaStatus()
            #expect(status.pending.map(\.number) == steps && status.blocking.isEmpty)
            #expect(try await store.applyMigrations().map(\.number) == steps)
            #expect(try await store.pendingMigrations().isEmpty)
            let new = try await Self.definitions(store)
            for property in ObjectQuery.indexedProperties {
                #expect(Self.coversExactly(new[property], property), "\(property): \(new[property] ?? "no index")")
            }
            for (query, ids) in zip(queries, before) {
                #expect(try await store.read { tx in try await tx.query(query) }.map(\.id) == ids)
            }
            // The step only replaces indexes: nothing a build of the release before reads is gone.
            #expect(steps.allSatisfy { step in Migrations.catalog.first { $0.number == step }?.minimumReader == nil })
        }
    }
}
