import Foundation
import Testing
import LDAP
@testable import Store
@testable import Sync
import TesseraCore

@Suite("Staging: streamed imports and deltas that read what changed")
struct StagingTests {
    /// Random objectGUIDs, as AD's are: the store compares anchors without case, so GUIDs that differ in a few bits
    /// could collide in their Base64.
    static let guids = (0..<12_001).map { _ in withUnsafeBytes(of: UUID().uuid) { Data($0) } }
    static func guid(_ n: Int) -> Data { guids[n % guids.count] }

    static func user(_ n: Int, title: String = "Engineer") -> String {
        """
        dn: CN=u\(n),OU=Staff,DC=corp,DC=example,DC=test
        objectClass: user
        objectGUID:: \(guid(n).base64EncodedString())
        sAMAccountName: u\(n)
        userPrincipalName: u\(n)@contoso.test
        displayName: User \(n)
        title: \(title)
        userAccountControl: 512
        """
    }

    static func group(_ name: String, _ n: Int, members: [Int]) -> String {
        ([
            "dn: CN=\(name),OU=Staff,DC=corp,DC=example,DC=test", "objectClass: group", "objectGUID:: \(guid(n).base64EncodedString())",
            "sAMAccountName: \(name)", "groupType: -2147483646",
        ] + members.map { "member: CN=u\($0),OU=Staff,DC=corp,DC=example,DC=test" }).joined(separator: "\n")
    }

    /// A DirSync delta as the export receives it: the changed users' new titles.
    static func delta(_ cycle: SyncCycle, _ f: FileConnectorFixture, changes: [Int]) async throws -> SyncRun {
        let settings = try await SyncSettings.load(tenant: f.tenant.id, store: f.store)
        let connector = try #require(settings.connectors.first)
        var run = SyncRun(id: Identifier.make(), connector: connector.name, at: "")
        let entries = try LDIF.parse(changes.map { Self.user($0, title: "Director") }.joined(separator: "\n\n"))
        var state = try await cycle.beginExport(tenant: f.tenant, connector: connector, settings: settings)
        try await cycle.exportPage(entries, state: &state, run: &run)
        try await cycle.finishExport(&state, run: &run)
        return run
    }

    @Test("a delta reads the staged objects it names and no others, at 200 staged users as at 2,500")
    func deltaCost() async throws {
        for size in [200, 2_500] {
            try await FileConnectorFixture.withTenant { f in
                try f.write((0..<size).map { Self.user($0) }.joined(separator: "\n\n"))
                let initial = try await f.run()
                #expect(initial.added == size && initial.status == "success", "\(initial.json)")
                let changed = [3, 50, 150, 199]
                let run = try await Self.delta(f.cycle, f, changes: changed)
                #expect(run.updated == changed.count && run.errors.isEmpty, "\(run.json)")
                #expect(run.stagedRead == changed.count)
                for n in changed { #expect(try await f.user("u\(n)@contoso.test")?.body["jobTitle"] == "Director") }
                #expect(try await f.user("u4@contoso.test")?.body["jobTitle"] == "Engineer")
            }
        }
    }

    @Test("a full import is read a page at a time; what it did not name is deleted once it has all been read; members resolve by DN")
    func pagedFullImport() async throws {
        let size = SyncCycle.pageSize * 2 + 10
        try await FileConnectorFixture.withTenant { f in
            // The group comes first: its members are created pages later, and it gets them at the end.
            let members = [0, 1, size - 1]
            try f.write(([Self.group("team", 12_000, members: members)] + (0..<size).map { Self.user($0) }).joined(separator: "\n\n"))
            let first = try await f.run()
            #expect(first.added == size + 1 && first.imported == size + 1 && first.status == "success", "\(first.json)")
            let team = try #require(try await f.store.read { tx in
                try await tx.query(ObjectQuery(tenant: f.tenant.id, kinds: [.group],
                                               filter: .compare(PropertyPath(["displayName"]), .eq, .string("team")))).first
            })
            let memberIDs = try await f.store.read { tx in try await tx.targets(tenant: f.tenant.id, source: team.id, relation: "members") }
            var expected: Set<String> = []
            for n in members { expected.insert(try #require(try await f.user("u\(n)@contoso.test")).id) }
            #expect(Set(memberIDs) == expected)

            // The second run names all but one user: that one goes, after the last page.
            try f.write(([Self.group("team", 12_000, members: members)] + (0..<size).filter { $0 != 7 }.map { Self.user($0) })
                .joined(separator: "\n\n"))
            let second = try await f.run()
            #expect(second.deleted == 1 && second.added == 0 && second.status == "success", "\(second.json)")
            #expect(try await f.user("u7@contoso.test") == nil)
            #expect(try await f.user("u8@contoso.test") != nil)
        }
    }

    @Test("a staging area kept in the Graph table (before migration 10) is moved to its own: the next run creates nothing twice and groups get their members")
    func migratedStagingArea() async throws {
        try await FileConnectorFixture.withTenant { f in
            let records = [Self.group("team", 12_000, members: [1, 2])] + (0..<4).map { Self.user($0) }
            try f.write(records.joined(separator: "\n\n"))
            _ = try await f.run()
            // As an earlier version kept it: each staged object a `syncObject` of the Graph table, its join and DN as links.
            let tenant = f.tenant.id
            let staged = try await f.store.read { tx in try await tx.stagedObjects(tenant: tenant, connector: nil, states: nil, afterId: nil, limit: nil) }
            #expect(staged.count == 5)
            try await f.store.write { tx in
                for object in staged {
                    var body = object.details
                    body["connector"] = .string(object.connector)
                    body["dn"] = .string(object.dn)
                    body["state"] = .string(object.state)
                    body["cloudId"] = .optional(object.cloudID)
                    try await tx.insert(StoredObject(tenant: tenant, id: object.id, kind: .syncObject, body: body))
                    if let cloud = object.cloudID { try await tx.link(tenant: tenant, source: object.id, relation: "syncJoin", target: cloud) }
                    try await tx.link(tenant: tenant, source: "syncdn:file:\(object.dn.lowercased())", relation: "syncDN", target: object.id)
                }
                try await tx.removeStaged(tenant: tenant, ids: staged.map(\.id))
            }
            _ = try await f.store.backend.withWriteSession { session in try await session.execute("DELETE FROM schema_migrations WHERE version = 10", []) }
            try await f.store.migrate()
            let moved = try await f.store.read { tx in try await tx.stagedObjects(tenant: tenant, connector: nil, states: nil, afterId: nil, limit: nil) }
            #expect(moved == staged)

            try f.write(([Self.group("team", 12_000, members: [1, 2, 3])] + (0..<4).map { Self.user($0) }).joined(separator: "\n\n"))
            let usersBefore = try await f.store.read { tx in try await tx.count(ObjectQuery(tenant: tenant, kinds: [.user])) }
            let run = try await f.run()
            #expect(run.status == "success" && run.errors.isEmpty && run.added == 0 && run.deleted == 0, "\(run.json)")
            #expect(try await f.store.read { tx in try await tx.count(ObjectQuery(tenant: tenant, kinds: [.user])) } == usersBefore)
            let team = try #require(try await f.store.read { tx in
                try await tx.query(ObjectQuery(tenant: tenant, kinds: [.group], filter: .compare(PropertyPath(["displayName"]), .eq, .string("team")))).first
            })
            let members = try await f.store.read { tx in try await tx.targets(tenant: tenant, source: team.id, relation: "members") }
            var expected: Set<String> = []
            for n in [1, 2, 3] { expected.insert(try #require(try await f.user("u\(n)@contoso.test")).id) }
            #expect(Set(members) == expected)
        }
    }

    @Test("the LDIF reader streams a file larger than its block, folded lines and records across block edges included")
    func streamingReader() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-\(UUID().uuidString).ldif")
        defer { try? FileManager.default.removeItem(at: file) }
        let long = String(repeating: "x", count: 150)
        // Each record has a folded description, so block edges fall inside folded lines as well as between records.
        let records = (0..<12_000).map { n in
            "dn: CN=u\(n),DC=x\r\nobjectGUID:: \(Self.guid(n).base64EncodedString())\r\ndescription: \(long)\r\n  \(n)\r\ncn: u\(n)"
        }
        let text = "version: 1\n# generated\n" + records.joined(separator: "\n\n") + "\n"
        #expect(text.utf8.count > 2 * LDIF.Reader.blockSize)
        try text.write(to: file, atomically: true, encoding: .utf8)
        var reader = try LDIF.Reader(path: file.path)
        var count = 0
        while let entry = try reader.next() {
            #expect(entry.dn == "CN=u\(count),DC=x")
            #expect(entry.string("description") == "\(long) \(count)")
            #expect(entry.values("objectGUID").first.map { Data($0) } == Self.guid(count))
            count += 1
        }
        #expect(count == records.count)
        #expect(try LDIF.parse(text).count == records.count)
    }
}
