import Foundation
import Kerberos
import LDAP
import Sync
import Testing
import TesseraCore
import TesseraTesting

@testable import Server

/// `tessera hybrid kerberos enable|rotate|status|disable` against the running Samba DC that TESSERA_TEST_AD_ENV names:
/// the service account and SCP appear in AD as Entra's set-up makes them, and the keys Tessera derived are the keys
/// the KDC holds (`samba-tool domain exportkeytab` of the account, compared byte for byte and by version).
@Suite(.enabled(if: LiveDomain.fromEnvironment != nil, "TESSERA_TEST_AD_ENV is not set"), .serialized, .timeLimit(.minutes(10)))
struct DeviceKerberosSetupLiveTests {
    @Test func enableRotateStatusAndDisableKeepTesserasKeysEqualToTheKDCs() async throws {
        let dc = try #require(LiveDomain.fromEnvironment)
        try await Harness.run { harness in
            let connector = try await dc.connector(tenant: harness.tenant.tenantId, store: harness.app.store)
            defer { try? FileManager.default.removeItem(atPath: connector.bindPasswordFile) }
            let tenant = try #require(try await harness.app.store.read { tx in try await tx.tenant(harness.tenant.tenantId) })
            let setup = HybridKerberosSetup(store: harness.app.store, sealing: harness.app.keySealing, clock: harness.clock)
            let host = "tessera-\(UUID().uuidString.prefix(6).lowercased()).corp.example.test"
            try await dc.removeStaleServiceConnectionPoint()

            let domain = try await setup.enable(tenant: tenant, connector: connector, host: host, publicURL: "https://\(host)")
            do {
                #expect(domain.realm == dc.realm)
                #expect(domain.servicePrincipal == "adrs/\(host)")
                let ldap = try await connector.connect()
                let account = try #require(try await ldap.search(base: domain.accountDN, scope: .base, filter: "(objectClass=user)",
                                                                 attributes: ["servicePrincipalName", "msDS-SupportedEncryptionTypes",
                                                                              "userAccountControl"]).entries.first)
                #expect(account.strings("servicePrincipalName") == ["adrs/\(host)"])
                #expect(account.string("msDS-SupportedEncryptionTypes") == "24")
                #expect(account.string("userAccountControl") == "66048")
                let scp = try #require(try await ldap.search(base: domain.scpDN, scope: .base, filter: "(objectClass=serviceConnectionPoint)",
                                                             attributes: ["keywords", "serviceBindingInformation"]).entries.first)
                #expect(Set(scp.strings("keywords")) == ["azureADId:\(tenant.id)", "azureADName:\(tenant.domain)"])
                #expect(scp.strings("serviceBindingInformation") == ["https://\(host)/EnrollmentServer/\(tenant.id)"])
                await ldap.close()
                try await dc.expectKDCKeys(domain)
                await #expect(throws: HybridKerberosError.self) {
                    try await setup.enable(tenant: tenant, connector: connector, host: host, publicURL: "https://\(host)")
                }

                var status = try await setup.status(tenant: tenant, connector: connector)
                #expect(status.inSync && status.directoryKeyVersion == domain.keyVersion)

                let rotated = try await setup.rotate(tenant: tenant, connector: connector, grace: 3600)
                #expect(rotated.keyVersion == domain.keyVersion + 1)
                #expect(rotated.keys.map(\.version) == [domain.keyVersion + 1, domain.keyVersion])
                #expect(rotated.keys[1].retiresAt == harness.clock.now.addingTimeInterval(3600))
                try await dc.expectKDCKeys(rotated)
                status = try await setup.status(tenant: tenant, connector: connector)
                #expect(status.inSync)

                // A password set in AD behind Tessera's back: the versions differ (KeyVersion ahead of CloudKeyVersion).
                try await dc.sambaTool(["user", "setpassword", domain.accountName, "--newpassword=Aa1!\(UUID().uuidString)"])
                status = try await setup.status(tenant: tenant, connector: connector)
                #expect(!status.inSync && status.directoryKeyVersion == rotated.keyVersion + 1)
            } catch {
                _ = try? await setup.disable(tenant: tenant, connector: connector)
                throw error
            }

            _ = try await setup.disable(tenant: tenant, connector: connector)
            #expect(try await KerberosDomain.load(tenant: tenant.id, store: harness.app.store, sealing: harness.app.keySealing) == nil)
            let ldap = try await connector.connect()
            for dn in [domain.accountDN, domain.scpDN] {
                await #expect(throws: LDAPError.self) { try await ldap.search(base: dn, scope: .base, filter: "(objectClass=*)") }
            }
            await ldap.close()
        }
    }
}

/// The Samba DC of TESSERA_TEST_AD_ENV (scripts/ad-up's env file), for the live device tests.
struct LiveDomain {
    var values: [String: String]

    static var fromEnvironment: LiveDomain? {
        guard let path = ProcessInfo.processInfo.environment["TESSERA_TEST_AD_ENV"], !path.isEmpty,
              let text = try? String(contentsOfFile: path, encoding: .utf8)
        else { return nil }
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            var value = String(line[line.index(after: eq)...])
            if value.hasPrefix("'"), value.hasSuffix("'") { value = String(value.dropFirst().dropLast()) }
            values[String(line[..<eq])] = value
        }
        return values["AD_LDAPS_URI"] == nil ? nil : LiveDomain(values: values)
    }

    var realm: String { values["AD_REALM"] ?? "" }
    var base: String { values["AD_BASE_DN"] ?? "" }

    /// An LDAPS connector to the DC saved as the tenant's sync connector `corp` (its password in a file of its own).
    func connector(tenant: String, store: any DirectoryStore) async throws -> SyncConnector {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-dc-\(UUID().uuidString)").path
        try Data((values["AD_BIND_PASSWORD"] ?? "").utf8).write(to: URL(fileURLWithPath: file))
        let connector = SyncConnector(name: "corp", ldapURL: values["AD_LDAPS_URI"] ?? "", bindDN: values["AD_BIND_DN"] ?? "",
                                      bindPasswordFile: file, baseDN: base, caFile: values["AD_CA_FILE"])
        var settings = try await SyncSettings.load(tenant: tenant, store: store)
        settings.connectors = [connector]
        try await settings.save(tenant: tenant, store: store)
        return connector
    }

    /// An SCP left by a run that died before its disable would make enable refuse (rightly): remove it first.
    func removeStaleServiceConnectionPoint() async throws {
        let ldap = try await LDAPConnection.connect(url: values["AD_LDAPS_URI"] ?? "", tls: LDAPTLS(mode: .ldaps, caFile: values["AD_CA_FILE"]))
        try await ldap.bind(dn: values["AD_BIND_DN"] ?? "", password: values["AD_BIND_PASSWORD"] ?? "")
        try? await ldap.delete(dn: "CN=\(HybridKerberosSetup.scpName),CN=Device Registration Configuration,CN=Services,CN=Configuration,\(base)")
        await ldap.close()
    }

    @discardableResult
    func sambaTool(_ arguments: [String]) async throws -> String {
        try await ChildProcess.run("/usr/bin/samba-tool", arguments + ["-s", values["AD_CONF"] ?? ""])
    }

    /// The KDC's keys of the domain's service account (its keytab, exported by samba-tool) equal Tessera's current ones.
    func expectKDCKeys(_ domain: KerberosDomain) async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-drs-\(UUID().uuidString).keytab").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        try await sambaTool(["domain", "exportkeytab", file, "--principal=\(domain.accountName)"])
        let kdc = try ServiceKeys(keytab: Data(contentsOf: URL(fileURLWithPath: file))).keys
        let ours = try domain.serviceKeys(at: domain.keys[0].created).keys.filter { $0.version == domain.keyVersion }
        #expect(ours.count == 2)
        for key in ours {
            let match = kdc.first { $0.encryptionType == key.encryptionType }
            #expect(match?.version == key.version, "kvno of \(key.encryptionType)")
            #expect(match?.keyBytes == key.keyBytes, "the \(key.encryptionType) key Tessera derived is the KDC's")
        }
    }
}
