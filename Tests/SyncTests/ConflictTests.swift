import Foundation
import Testing
import LDAP
import Store
@testable import Sync
import TesseraCore

/// Duplicate attribute resiliency over the life of a synced user, Entra's release of resolved conflicts, and the two
/// quarantine switches, through a file connector.
@Suite("Attribute conflicts: resiliency on every write, release, quarantine switches")
struct ConflictTests {
    @Test("a renamed user keeps its name and error through later deltas; once the other objects let go, the release puts the on-premises values back")
    func resiliencyLastsAndReleases() async throws {
        try await FileConnectorFixture.withTenant(blockSoftMatch: true) { f in
            let squatter = try await f.cloudUser("ada@contoso.test")
            let holder = try await f.cloudUser("holder@contoso.test", proxy: "smtp:shared@contoso.test")
            try f.write(LDIFSyncTests.record("ada", 1), LDIFSyncTests.record("bob", 2, extra: "proxyAddresses: SMTP:shared@contoso.test\nproxyAddresses: smtp:bob@contoso.test"))
            let first = try await f.run()
            #expect(first.added == 2 && first.errors.count == 2 && first.quarantined == 0, "\(first.json)")
            let ada = try #require(try await f.synced(anchor: LDIFSyncTests.guid(1)))
            let renamed = try #require(ada.body["userPrincipalName"]?.stringValue)
            #expect(renamed.hasPrefix("ada+") && renamed.hasSuffix("@contoso.test") && renamed.count == "ada+0000@contoso.test".count)
            let adaError = try #require(ada.body["onPremisesProvisioningErrors"]?.arrayValue?.first)
            #expect(adaError["category"] == "PropertyConflict" && adaError["propertyCausingError"] == "UserPrincipalName"
                    && adaError["value"] == "ada@contoso.test")
            let bob = try #require(try await f.synced(anchor: LDIFSyncTests.guid(2)))
            #expect(bob.body["proxyAddresses"] == ["smtp:bob@contoso.test"])
            #expect(bob.body["onPremisesProvisioningErrors"]?.arrayValue?.first?["value"] == "SMTP:shared@contoso.test")
            let listed = try await f.cycle.errors(tenant: f.tenant.id)
            #expect(listed.count == 2 && listed.allSatisfy { $0["state"] == "conflict" && $0["code"] == "AttributeValueMustBeUnique" }, "\(listed)")

            // A later change to both: they keep the name resiliency gave them and the error's first time, and take the change.
            try f.write(LDIFSyncTests.record("ada", 1, title: "Director"),
                        LDIFSyncTests.record("bob", 2, title: "Director", extra: "proxyAddresses: SMTP:shared@contoso.test\nproxyAddresses: smtp:bob@contoso.test"))
            let second = try await f.run()
            #expect(second.updated == 2 && second.errors.isEmpty && second.status == "success", "\(second.json)")
            let adaAfter = try #require(try await f.synced(anchor: LDIFSyncTests.guid(1)))
            #expect(adaAfter.body["jobTitle"] == "Director" && adaAfter.body["userPrincipalName"] == .string(renamed))
            #expect(adaAfter.body["onPremisesProvisioningErrors"] == ada.body["onPremisesProvisioningErrors"])
            #expect(try await f.cycle.releaseResolvedConflicts(tenant: f.tenant) == 0)

            // The cloud objects let go of the name and the address: the release puts them back and the errors go.
            try await f.directory.delete(tenant: f.tenant.id, id: squatter.id, kind: .user, actor: .system)
            _ = try await f.directory.update(tenant: f.tenant.id, id: holder.id, kind: .user, patch: ["proxyAddresses": []], actor: .system,
                                             allowReadOnly: true)
            #expect(try await f.cycle.releaseResolvedConflicts(tenant: f.tenant) == 2)
            let adaReleased = try #require(try await f.synced(anchor: LDIFSyncTests.guid(1)))
            #expect(adaReleased.id == ada.id && adaReleased.body["userPrincipalName"] == "ada@contoso.test")
            #expect(adaReleased.body["onPremisesProvisioningErrors"] == [])
            let bobReleased = try #require(try await f.synced(anchor: LDIFSyncTests.guid(2)))
            #expect(bobReleased.body["proxyAddresses"] == ["SMTP:shared@contoso.test", "smtp:bob@contoso.test"])
            #expect(try await f.cycle.errors(tenant: f.tenant.id).isEmpty)
            #expect(try await f.cycle.releaseResolvedConflicts(tenant: f.tenant) == 0)
        }
    }

    @Test("new users that share a name in one run are each created once: the first keeps it, the next is renamed")
    func sharedWithinOneRun() async throws {
        try await FileConnectorFixture.withTenant(blockSoftMatch: true) { f in
            let twin = LDIFSyncTests.record("ada", 2).replacingOccurrences(of: "CN=ada,", with: "CN=ada2,")
            try f.write(LDIFSyncTests.record("ada", 1), twin, LDIFSyncTests.record("bob", 3))
            let run = try await f.run()
            #expect(run.added == 3 && run.errors.count == 1 && run.status == "success", "\(run.json)")
            let first = try #require(try await f.synced(anchor: LDIFSyncTests.guid(1)))
            let second = try #require(try await f.synced(anchor: LDIFSyncTests.guid(2)))
            #expect(Set([first.body["userPrincipalName"], second.body["userPrincipalName"]]).contains("ada@contoso.test"))
            #expect([first, second].filter { $0.body["userPrincipalName"]?.stringValue?.hasPrefix("ada+") == true }.count == 1)
            let audit = try await f.store.read { tx in try await tx.changes(tenant: f.tenant.id, kinds: [.user], after: 0, limit: 1000) }
            let bob = try #require(try await f.synced(anchor: LDIFSyncTests.guid(3)))
            for id in [first.id, second.id, bob.id] { #expect(audit.filter { $0.objectId == id && $0.operation == "create" }.count == 1) }
        }
    }

    @Test("a change on-premises into a name another object holds is resolved the same way, not failed")
    func conflictOnUpdate() async throws {
        try await FileConnectorFixture.withTenant(blockSoftMatch: true) { f in
            try await f.cloudUser("taken@contoso.test")
            try f.write(LDIFSyncTests.record("cyd", 3))
            #expect(try await f.run().added == 1)
            try f.write(LDIFSyncTests.record("cyd", 3).replacingOccurrences(of: "userPrincipalName: cyd@contoso.test", with: "userPrincipalName: taken@contoso.test"))
            let run = try await f.run()
            #expect(run.updated == 1 && run.errors.count == 1 && run.errors.first?["code"] == "AttributeValueMustBeUnique", "\(run.json)")
            let cyd = try #require(try await f.synced(anchor: LDIFSyncTests.guid(3)))
            #expect(cyd.body["userPrincipalName"]?.stringValue?.hasPrefix("taken+") == true)
            #expect(cyd.body["onPremisesUserPrincipalName"] == "taken@contoso.test")
            #expect(try await f.user("cyd@contoso.test") == nil)
        }
    }

    @Test("with quarantineUponUpnConflictEnabled and quarantineUponProxyAddressesConflictEnabled a conflict quarantines the user; the release exports it once the conflict is gone")
    func quarantineSwitches() async throws {
        try await FileConnectorFixture.withTenant(blockSoftMatch: true, features: ["quarantineUponUpnConflictEnabled": true, "quarantineUponProxyAddressesConflictEnabled": true]) { f in
            let squatter = try await f.cloudUser("ada@contoso.test")
            let holder = try await f.cloudUser("holder@contoso.test", proxy: "smtp:shared@contoso.test")
            try f.write(LDIFSyncTests.record("ada", 1), LDIFSyncTests.record("bob", 2, extra: "proxyAddresses: SMTP:shared@contoso.test"),
                        LDIFSyncTests.record("cyd", 3))
            let run = try await f.run()
            #expect(run.added == 1 && run.quarantined == 2, "\(run.json)")
            #expect(try await f.synced(anchor: LDIFSyncTests.guid(1)) == nil)
            #expect(try await f.synced(anchor: LDIFSyncTests.guid(2)) == nil)
            let quarantined = try await f.cycle.quarantined(tenant: f.tenant.id)
            #expect(quarantined.count == 2 && quarantined.allSatisfy { $0["code"] == "AttributeValueMustBeUnique" })
            let firstSeen = quarantined.map { $0["occurredDateTime"] }

            // Still in conflict: the release leaves them quarantined, with the time the conflict first occurred.
            #expect(try await f.cycle.releaseResolvedConflicts(tenant: f.tenant) == 0)
            #expect(try await f.cycle.quarantined(tenant: f.tenant.id).map { $0["occurredDateTime"] } == firstSeen)

            try await f.directory.delete(tenant: f.tenant.id, id: squatter.id, kind: .user, actor: .system)
            #expect(try await f.cycle.releaseResolvedConflicts(tenant: f.tenant) == 1)
            #expect(try await f.user("ada@contoso.test")?.body["onPremisesImmutableId"] == .string(LDIFSyncTests.guid(1)))
            #expect(try await f.cycle.quarantined(tenant: f.tenant.id).count == 1)

            try await f.directory.delete(tenant: f.tenant.id, id: holder.id, kind: .user, actor: .system)
            #expect(try await f.cycle.releaseResolvedConflicts(tenant: f.tenant) == 1)
            #expect(try await f.synced(anchor: LDIFSyncTests.guid(2))?.body["proxyAddresses"] == ["SMTP:shared@contoso.test"])
            #expect(try await f.cycle.errors(tenant: f.tenant.id).isEmpty)
        }
    }
}
