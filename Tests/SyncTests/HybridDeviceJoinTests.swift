import Foundation
import Testing
import LDAP
import Store
@testable import Sync
import TesseraCore

/// A computer that joined through Kerberos already has its device (the device registration service made it, with the
/// computer's objectGUID as deviceId, or at least its SID): sync joins that device instead of creating a second, and a
/// computer disabled or deleted in AD disables or removes it on the next delta. Against the running Samba DC. The time
/// limit only catches a hang, as SyncLiveTests' does (the same fixture): a case took more than 2 minutes beside the
/// other suites on a loaded 2-core machine.
@Suite(.enabled(if: DomainController.fromEnvironment != nil), .serialized, .timeLimit(.minutes(10)))
struct HybridDeviceJoinTests {
    static let registrationService = Actor(kind: .application, id: "01cb2876-7ebd-4aa4-9cc9-d28bd4d359a9",
                                           displayName: "Device Registration Service", appId: "01cb2876-7ebd-4aa4-9cc9-d28bd4d359a9")

    @Test(arguments: ["deviceId", "onPremisesSecurityIdentifier"])
    func syncJoinsTheDeviceAComputerRegisteredThenDisablesAndRemovesIt(by key: String) async throws {
        try await SyncFixture.run { f in
            let dn = "CN=WSJ\(f.ou.hashValue & 0xfff),\(f.ou)"
            try await f.ldap.add(dn: dn, [("objectClass", [Array("computer".utf8)]), ("sAMAccountName", [Array("WSJ\(f.ou.hashValue & 0xffff)$".utf8)]),
                                          ("userAccountControl", [Array("4096".utf8)])])
            let entry = try #require(try await f.ldap.search(base: dn, scope: .base, filter: "(objectClass=*)",
                                                             attributes: ["objectGUID", "objectSid"]).entries.first)
            let guid = try #require(entry.values("objectGUID").first)
            let sid = try #require(entry.values("objectSid").first.flatMap(SyncCycle.sidString))
            let registered = try await f.directory.create(tenant: f.tenant.id, kind: .device, body: [
                "displayName": "WSJ", "deviceId": .string(key == "deviceId" ? SyncCycle.guidString(guid) : UUID().uuidString.lowercased()),
                "operatingSystem": "Windows", "operatingSystemVersion": "10.0.26100.6584", "trustType": "ServerAd",
                "profileType": "RegisteredDevice", "onPremisesSecurityIdentifier": .string(sid), "accountEnabled": true,
                "alternativeSecurityIds": [["type": 2, "identityProvider": .null, "key": "WAA1ADAAOQA6AA=="]],
            ], actor: Self.registrationService, allowReadOnly: true)

            let run = try await f.runOnce()
            #expect(run.added == 0 && run.updated == 1, "\(run.json)")
            var devices = try await f.store.read { tx in try await tx.query(ObjectQuery(tenant: f.tenant.id, kinds: [.device])) }
            #expect(devices.count == 1)
            #expect(devices.first?.id == registered.id)
            #expect(devices.first?.body["onPremisesSyncEnabled"] == true)
            #expect(devices.first?.body["alternativeSecurityIds"] == registered.body["alternativeSecurityIds"], "the certificate stays")

            try await f.ldap.modify(dn: dn, [LDAPModification(.replace, "userAccountControl", [Array("4098".utf8)])])
            #expect(try await f.runOnce().updated == 1)
            devices = try await f.store.read { tx in try await tx.query(ObjectQuery(tenant: f.tenant.id, kinds: [.device])) }
            #expect(devices.first?.body["accountEnabled"] == false)

            try await f.ldap.delete(dn: dn)
            #expect(try await f.runOnce().deleted == 1)
            #expect(try await f.store.read { tx in try await tx.query(ObjectQuery(tenant: f.tenant.id, kinds: [.device])) }.isEmpty)
        }
    }
}
