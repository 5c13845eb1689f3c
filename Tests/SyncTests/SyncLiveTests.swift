import Foundation
import Testing
import LDAP
import Store
@testable import Sync
import TesseraCore
import TesseraTesting

/// A tenant on an in-memory store, a connector to the test domain controller scoped to an OU of its own, and an
/// LDAP connection to fill that OU.
struct SyncFixture {
    let store: SQLDirectoryStore
    let directory: DirectoryService
    let tenant: TenantRecord
    let provisioned: ProvisionedTenant
    let cycle: SyncCycle
    let ldap: LDAPConnection
    let ou: String
    let dc: DomainController

    static func run(_ body: (SyncFixture) async throws -> Void) async throws {
        let dc = try #require(DomainController.fromEnvironment)
        let start = try await SyncTestTenant.make()
        let store = start.store, clock = start.clock, directory = start.directory, provisioned = start.provisioned, tenant = start.tenant
        let ldap = try await dc.connect()
        let ou = "OU=Sync\(UUID().uuidString.prefix(8)),\(dc.base)"
        try await ldap.add(dn: ou, [("objectClass", [Array("organizationalUnit".utf8)])])
        let passwordFile = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-sync-\(UUID().uuidString)").path
        try Data(dc.password.utf8).write(to: URL(fileURLWithPath: passwordFile))
        var settings = SyncSettings()
        settings.connectors = [SyncConnector(name: "corp", ldapURL: dc.ldap, bindDN: dc.bindDN, bindPasswordFile: passwordFile, baseDN: ou, caFile: dc.caFile)]
        try await settings.save(tenant: tenant.id, store: store)
        let fixture = SyncFixture(store: store, directory: directory, tenant: tenant, provisioned: provisioned,
                                  cycle: SyncCycle(directory: directory, clock: clock), ldap: ldap, ou: ou, dc: dc)
        do {
            try await body(fixture)
        } catch {
            await fixture.cleanUp(passwordFile)
            throw error
        }
        await fixture.cleanUp(passwordFile)
    }

    func cleanUp(_ passwordFile: String) async {
        if let all = try? await ldap.search(base: ou, filter: "(objectClass=user)", attributes: ["cn"]) {
            for entry in all.entries { try? await ldap.delete(dn: entry.dn) }
        }
        if let ous = try? await ldap.search(base: ou, filter: "(objectClass=organizationalUnit)", attributes: ["ou"]) {
            for entry in ous.entries.sorted(by: { $0.dn.count > $1.dn.count }) { try? await ldap.delete(dn: entry.dn) }
        }
        await ldap.close()
        try? FileManager.default.removeItem(atPath: passwordFile)
        try? await store.shutdown()
    }

    @discardableResult
    func addUser(_ name: String, in parent: String? = nil, extra: [(String, [[UInt8]])] = [], enabled: Bool = true) async throws -> String {
        let dn = "CN=\(name),\(parent ?? ou)"
        try await ldap.add(dn: dn, [
            ("objectClass", [Array("user".utf8)]), ("sAMAccountName", [Array("\(name)-\(ou.hashValue & 0xffff)".prefix(20).utf8)]),
            ("userPrincipalName", [Array("\(name)@contoso.test".utf8)]), ("displayName", [Array(name.capitalized.utf8)]),
            ("userAccountControl", [Array((enabled ? "544" : "546").utf8)]),
        ] + extra)
        return dn
    }

    func cloudUser(upn: String) async throws -> StoredObject? {
        let tenant = tenant.id
        return try await store.read { tx in
            guard let id = try await tx.holder(tenant: tenant, key: UniqueKey("userPrincipalName", upn)) else { return nil }
            return try await tx.object(tenant: tenant, id: id)
        }
    }

    func runOnce(full: Bool = false) async throws -> SyncRun {
        try #require(try await cycle.run(tenant: tenant, full: full).first)
    }
}

@Suite("Directory sync from a real Samba AD domain controller", .enabled(if: DomainController.fromEnvironment != nil), .serialized,
       .timeLimit(.minutes(10)))
struct SyncLiveTests {
    @Test("users in OUs sync in; a change, a move, a disable and a delete arrive on the next delta; synced properties are read-only")
    func initialAndDelta() async throws {
        try await SyncFixture.run { f in
            let sub = "OU=Engineering,\(f.ou)"
            try await f.ldap.add(dn: sub, [("objectClass", [Array("organizationalUnit".utf8)])])
            for i in 0..<12 { try await f.addUser("user\(i)", in: i % 2 == 0 ? f.ou : sub, extra: [("title", [Array("Engineer".utf8)])]) }
            let first = try await f.runOnce()
            #expect(first.status == "success" && first.added == 12 && first.quarantined == 0, "\(first.json)")
            let user3 = try #require(try await f.cloudUser(upn: "user3@contoso.test"))
            #expect(user3.body["onPremisesSyncEnabled"] == true && user3.body["jobTitle"] == "Engineer")
            #expect(user3.body["onPremisesDistinguishedName"]?.stringValue?.hasPrefix("CN=user3,OU=Engineering") == true)
            #expect(user3.body["onPremisesImmutableId"]?.stringValue.flatMap { Data(base64Encoded: $0) }?.count == 16)
            #expect(user3.body["onPremisesSecurityIdentifier"]?.stringValue?.hasPrefix("S-1-5-21-") == true)

            try await f.ldap.modify(dn: "CN=user0,\(f.ou)", [LDAPModification(.replace, "title", [Array("Director".utf8)])])
            try await f.ldap.modifyDN(dn: "CN=user2,\(f.ou)", newRDN: "CN=user2", newSuperior: sub)
            try await f.ldap.modify(dn: "CN=user4,\(f.ou)", [LDAPModification(.replace, "userAccountControl", [Array("546".utf8)])])
            try await f.ldap.delete(dn: "CN=user6,\(f.ou)")
            let delta = try await f.runOnce()
            #expect(delta.status == "success" && !delta.full && delta.updated == 3 && delta.deleted == 1 && delta.added == 0, "\(delta.json)")
            #expect(try await f.cloudUser(upn: "user0@contoso.test")?.body["jobTitle"] == "Director")
            #expect(try await f.cloudUser(upn: "user2@contoso.test")?.body["onPremisesDistinguishedName"]?.stringValue?.contains("OU=Engineering") == true)
            #expect(try await f.cloudUser(upn: "user4@contoso.test")?.body["accountEnabled"] == false)
            #expect(try await f.cloudUser(upn: "user6@contoso.test") == nil)  // soft-deleted: its name is free again

            // Graph callers cannot change what sync owns.
            await #expect(throws: DirectoryError.self) {
                _ = try await f.directory.update(tenant: f.tenant.id, id: user3.id, kind: .user, patch: ["jobTitle": "Hacker"], actor: .system)
            }
            // Nothing changed: nothing to do.
            let idle = try await f.runOnce()
            #expect(idle.added == 0 && idle.updated == 0 && idle.deleted == 0)

            // The staging area lost (say, a crash after the export and before it was saved): a full run joins each
            // user again by its anchor, creating nothing twice.
            let tenant = f.tenant.id
            try await f.store.write { tx in
                let staged = try await tx.stagedObjects(tenant: tenant, connector: nil, states: nil, afterId: nil, limit: nil)
                try await tx.removeStaged(tenant: tenant, ids: staged.map(\.id))
            }
            var settings = try await SyncSettings.load(tenant: tenant, store: f.store)
            settings.connectors[0].cookie = nil
            try await settings.save(tenant: tenant, store: f.store)
            let before = try await f.store.read { tx in try await tx.count(ObjectQuery(tenant: tenant, kinds: [.user])) }
            let rejoined = try await f.runOnce()
            #expect(rejoined.full && rejoined.added == 0 && rejoined.quarantined == 0, "\(rejoined.json)")
            #expect(try await f.store.read { tx in try await tx.count(ObjectQuery(tenant: tenant, kinds: [.user])) } == before)
            #expect(try await f.runOnce().added == 0)
        }
    }

    @Test("the takeover attack is quarantined while the rest of the run syncs; removing the role and deleting the quarantined object completes the match")
    func takeoverAndRemediation() async throws {
        try await SyncFixture.run { f in
            // The cloud Global Administrator has an immutable id (as a cloud account that was once synced keeps).
            let admin = try #require(try await f.cloudUser(upn: f.provisioned.adminUserPrincipalName))
            let anchorBytes = (0..<16).map { _ in UInt8.random(in: 0...255) }
            let anchor = Data(anchorBytes).base64EncodedString()
            _ = try await f.directory.update(tenant: f.tenant.id, id: admin.id, kind: .user, patch: ["onPremisesImmutableId": .string(anchor)], actor: .system)
            // An attacker with write access to AD sets a new user's ms-DS-ConsistencyGuid to that anchor.
            try await f.addUser("mallory", extra: [("mS-DS-ConsistencyGuid", [anchorBytes])])
            for i in 0..<3 { try await f.addUser("staff\(i)") }
            let run = try await f.runOnce()
            #expect(run.quarantined == 1 && run.added == 3, "\(run.json)")
            let error = try #require(run.errors.first)
            #expect(error["code"] == "InvalidHardMatch" && error["sourceAnchor"] == .string(anchor))
            let adminAfter = try #require(try await f.cloudUser(upn: f.provisioned.adminUserPrincipalName))
            #expect(adminAfter.body["onPremisesSyncEnabled"] == nil && adminAfter.version == admin.version + 1)  // untouched by sync
            let quarantined = try await f.cycle.quarantined(tenant: f.tenant.id)
            #expect(quarantined.count == 1)
            let audit = try await f.store.read { tx in try await tx.changes(tenant: f.tenant.id, kinds: nil, after: 0, limit: 1000) }
            #expect(audit.contains { $0.activity == "Quarantine on-premises object (InvalidHardMatch)" })
            #expect(try await f.cycle.privilegedSyncedAccounts(tenant: f.tenant.id).isEmpty)

            // The next delta leaves it in quarantine.
            #expect(try await f.runOnce().quarantined == 0)
            #expect(try await f.cycle.quarantined(tenant: f.tenant.id).count == 1)

            // Remediation, as Entra documents it: remove the role, delete the quarantined object, run again.
            let assignments = try await f.store.read { tx in try await tx.query(ObjectQuery(tenant: f.tenant.id, kinds: [.roleAssignment])) }
            for assignment in assignments where assignment.body["principalId"] == .string(admin.id) {
                try await f.directory.delete(tenant: f.tenant.id, id: assignment.id, kind: .roleAssignment, actor: .system)
            }
            let id = try #require(quarantined.first?["id"]?.stringValue)
            try await f.cycle.deleteQuarantined(tenant: f.tenant.id, id: id)
            let remedied = try await f.runOnce()
            #expect(remedied.full && remedied.quarantined == 0 && remedied.updated >= 1, "\(remedied.json)")
            let matched = try #require(try await f.store.read { tx in try await tx.object(tenant: f.tenant.id, id: admin.id) })
            #expect(matched.body["onPremisesSyncEnabled"] == true && matched.body["onPremisesImmutableId"] == .string(anchor))
        }
    }

    @Test("groups sync with their members; a membership change and a deleted group arrive on the next delta")
    func groups() async throws {
        try await SyncFixture.run { f in
            var users: [String] = []
            for i in 0..<4 { users.append(try await f.addUser("member\(i)")) }
            func addGroup(_ name: String, _ members: [String]) async throws -> String {
                let dn = "CN=\(name),\(f.ou)"
                try await f.ldap.add(dn: dn, [("objectClass", [Array("group".utf8)]), ("sAMAccountName", [Array("\(name)-\(f.ou.hashValue & 0xffff)".utf8)]),
                                              ("description", [Array("The \(name) team".utf8)])] + (members.isEmpty ? [] : [("member", members.map { Array($0.utf8) })]))
                return dn
            }
            let pilots = try await addGroup("pilots", Array(users.prefix(2)))
            let crew = try await addGroup("crew", [users[3]])
            let first = try await f.runOnce()
            #expect(first.added == 6 && first.status == "success", "\(first.json)")
            func cloudGroup(_ name: String) async throws -> StoredObject? {
                let found = try await f.store.read { tx in
                    try await tx.query(ObjectQuery(tenant: f.tenant.id, kinds: [.group], filter: .compare(PropertyPath(["displayName"]), .eq, .string(name))))
                }
                return found.first
            }
            func members(_ name: String) async throws -> Set<String> {
                guard let group = try await cloudGroup(name) else { return [] }
                let ids = try await f.store.read { tx in try await tx.targets(tenant: f.tenant.id, source: group.id, relation: "members") }
                var names: Set<String> = []
                for id in ids {
                    if let user = try await f.store.read({ tx in try await tx.object(tenant: f.tenant.id, id: id) }) {
                        names.insert(user.body["displayName"]?.stringValue ?? "")
                    }
                }
                return names
            }
            let group = try #require(try await cloudGroup("pilots"))
            #expect(group.body["onPremisesSyncEnabled"] == true && group.body["securityEnabled"] == true && group.body["description"] == "The pilots team")
            #expect(group.body["onPremisesSecurityIdentifier"]?.stringValue?.hasPrefix("S-1-5-21-") == true)
            #expect(try await members("pilots") == ["Member0", "Member1"])
            try await f.ldap.modify(dn: pilots, [LDAPModification(.add, "member", [Array(users[2].utf8)]),
                                                 LDAPModification(.delete, "member", [Array(users[0].utf8)])])
            try await f.ldap.delete(dn: crew)
            let delta = try await f.runOnce()
            #expect(delta.deleted == 1, "\(delta.json)")
            #expect(try await members("pilots") == ["Member1", "Member2"])
            // Graph callers cannot change a synced group's members.
            let member3 = try #require(try await f.cloudUser(upn: "member3@contoso.test"))
            await #expect(throws: DirectoryError.self) {
                try await f.directory.addLink(tenant: f.tenant.id, source: group.id, relation: "members", target: member3.id, actor: .system)
            }
            #expect(try await cloudGroup("crew") == nil)
            let deleted = try await f.store.read { tx in try await tx.query(ObjectQuery(tenant: f.tenant.id, kinds: [.group], deleted: true)) }
            #expect(deleted.map { $0.body["displayName"] } == ["crew"])
        }
    }

    @Test("with writeback on, each synced user's objectGUID goes to ms-DS-ConsistencyGuid, and the anchor stays the same")
    func anchorWriteback() async throws {
        try await SyncFixture.run { f in
            var settings = try await SyncSettings.load(tenant: f.tenant.id, store: f.store)
            settings.connectors[0].writeBackAnchor = true
            try await settings.save(tenant: f.tenant.id, store: f.store)
            let dn = try await f.addUser("anchored")
            let first = try await f.runOnce()
            #expect(first.added == 1 && first.errors.isEmpty, "\(first.json)")
            let entry = try #require(try await f.ldap.search(base: dn, scope: .base, filter: "(objectClass=*)",
                                                             attributes: ["objectGUID", "mS-DS-ConsistencyGuid"]).entries.first)
            #expect(entry.values("mS-DS-ConsistencyGuid").first == entry.values("objectGUID").first)
            let anchor = try #require(try await f.cloudUser(upn: "anchored@contoso.test")?.body["onPremisesImmutableId"])
            let next = try await f.runOnce()
            #expect(next.quarantined == 0 && next.added == 0)
            #expect(try await f.cloudUser(upn: "anchored@contoso.test")?.body["onPremisesImmutableId"] == anchor)
        }
    }

    @Test("a user moved out of scope is soft-deleted; moved back, the same cloud user is restored")
    func outOfScopeAndBack() async throws {
        try await SyncFixture.run { f in
            let dn = try await f.addUser("wanderer")
            #expect(try await f.runOnce().added == 1)
            let original = try #require(try await f.cloudUser(upn: "wanderer@contoso.test"))
            let outside = "OU=Outside\(UUID().uuidString.prefix(6)),\(f.dc.base)"
            try await f.ldap.add(dn: outside, [("objectClass", [Array("organizationalUnit".utf8)])])
            try await f.ldap.modifyDN(dn: dn, newRDN: "CN=wanderer", newSuperior: outside)
            #expect(try await f.runOnce().deleted == 1)
            #expect(try await f.cloudUser(upn: "wanderer@contoso.test") == nil)
            try await f.ldap.modifyDN(dn: "CN=wanderer,\(outside)", newRDN: "CN=wanderer", newSuperior: f.ou)
            try await f.ldap.delete(dn: outside)
            let back = try await f.runOnce()
            #expect(back.added == 0 && back.quarantined == 0, "\(back.json)")
            #expect(try await f.cloudUser(upn: "wanderer@contoso.test")?.id == original.id, "\(back.json)")
        }
    }

    @Test("a computer becomes a hybrid joined device whose deviceId is its objectGUID; its deletion removes the device")
    func computers() async throws {
        try await SyncFixture.run { f in
            let dn = "CN=WS01,\(f.ou)"
            try await f.ldap.add(dn: dn, [("objectClass", [Array("computer".utf8)]), ("sAMAccountName", [Array("WS\(f.ou.hashValue & 0xffff)$".utf8)]),
                                          ("userAccountControl", [Array("4096".utf8)]), ("operatingSystem", [Array("Windows 11 Enterprise".utf8)]),
                                          ("operatingSystemVersion", [Array("10.0 (26100)".utf8)])])
            let guid = try #require(try await f.ldap.search(base: dn, scope: .base, filter: "(objectClass=*)", attributes: ["objectGUID"]).entries.first?.values("objectGUID").first)
            let run = try await f.runOnce()
            #expect(run.added == 1, "\(run.json)")
            let devices = try await f.store.read { tx in try await tx.query(ObjectQuery(tenant: f.tenant.id, kinds: [.device])) }
            let device = try #require(devices.first)
            #expect(device.body["deviceId"] == .string(SyncCycle.guidString(guid)) && device.body["trustType"] == "ServerAd")
            #expect(device.body["operatingSystem"] == "Windows 11 Enterprise" && device.body["onPremisesSyncEnabled"] == true)
            // Windows shows the GUID with its first three fields byte-swapped.
            let expected = UUID(uuid: (guid[3], guid[2], guid[1], guid[0], guid[5], guid[4], guid[7], guid[6], guid[8], guid[9], guid[10], guid[11], guid[12], guid[13], guid[14], guid[15]))
            #expect(device.body["deviceId"]?.stringValue == expected.uuidString.lowercased())
            try await f.ldap.delete(dn: dn)
            #expect(try await f.runOnce().deleted == 1)
            #expect(try await f.store.read { tx in try await tx.query(ObjectQuery(tenant: f.tenant.id, kinds: [.device])) }.isEmpty)
        }
    }

    @Test("deleting more users than the threshold stops before deleting anything; an approval deletes them once")
    func deletionThreshold() async throws {
        try await SyncFixture.run { f in
            var settings = try await SyncSettings.load(tenant: f.tenant.id, store: f.store)
            settings.deletionThreshold = 5
            try await settings.save(tenant: f.tenant.id, store: f.store)
            var dns: [String] = []
            for i in 0..<10 { dns.append(try await f.addUser("temp\(i)")) }
            #expect(try await f.runOnce().added == 10)
            for dn in dns.prefix(8) { try await f.ldap.delete(dn: dn) }
            let stopped = try await f.runOnce()
            #expect(stopped.status == "stopped-deletion-threshold-exceeded" && stopped.deleted == 0 && stopped.pendingDeletions.count == 8)
            #expect(try await f.cloudUser(upn: "temp0@contoso.test") != nil)
            #expect(try await f.cycle.approveDeletions(tenant: f.tenant, run: stopped.id) == 8)
            #expect(try await f.cloudUser(upn: "temp0@contoso.test") == nil)
            #expect(try await f.cloudUser(upn: "temp9@contoso.test") != nil)
            await #expect(throws: DirectoryError.self) { try await f.cycle.approveDeletions(tenant: f.tenant, run: stopped.id) }
        }
    }
}
