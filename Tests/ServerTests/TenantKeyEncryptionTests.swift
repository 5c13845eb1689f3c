import Foundation
import Testing
@testable import Server
@testable import Store
import InternetAccess
import SwiftASN1
import TesseraCore
import TesseraTesting
import X509

/// Every tenant's keys at rest (issue 22): the device, health agents' and TLS inspection CAs and hybrid join's Kerberos
/// service keys sealed with the same key-encryption key as the deployment's own, bound to their tenant and setting;
/// plain ones sealed at the first start with a key, a wrong key refused with nothing changed, `tessera keys rewrap`
/// and `list` covering them all. On PostgreSQL when the test command provides one (two nodes on one database).
@Suite("Tenant keys at rest")
struct TenantKeyEncryptionTests {
    static let kek = KeyEncryptionTests.kek, otherKek = KeyEncryptionTests.otherKek

    static func start(_ store: SQLDirectoryStore, _ kek: KeyEncryptionKey?, clock: TestClock = TestClock()) async throws -> TesseraApp {
        try await TesseraApp.make(store: store, clock: clock, keyEncryption: kek)
    }

    /// The store under a harness's app.
    static func sqlStore(_ app: TesseraApp) throws -> SQLDirectoryStore {
        try #require((app.store as? InstrumentedStore)?.base as? SQLDirectoryStore)
    }

    /// A Kerberos domain with made-up keys (what `hybrid kerberos enable` records).
    static func domain(now: Date) -> KerberosDomain {
        KerberosDomain(realm: "CORP.EXAMPLE.TEST", domainDN: "DC=corp,DC=example,DC=test", host: "login.corp.example.test",
                       accountName: "tessera-adrs", accountDN: "CN=tessera-adrs,CN=Users,DC=corp,DC=example,DC=test",
                       scpDN: "CN=62a0ff2e-97b9-4513-943f-0d221bd30080,CN=Device Registration Configuration,CN=Services,CN=Configuration,DC=corp,DC=example,DC=test",
                       connector: "corp", created: now,
                       keys: [KerberosDomain.KeyVersion(version: 2, created: now, aes256: Array(repeating: 0xA7, count: 32), aes128: Array(repeating: 0x5C, count: 16))])
    }

    /// Base64 of the made-up AES-256 key, as a plain row holds it.
    static let kerberosKeyText = Data(Array(repeating: UInt8(0xA7), count: 32)).base64EncodedString()

    /// The made-up client secret of the tenant's identity provider.
    static let providerSecret = "provider-secret-T8v"

    /// Whether a raw row is a sealed value with no key material in it.
    static func isSealed(_ raw: String) -> Bool {
        raw.contains("\"sealed\"") && raw.contains("A256GCM") && !raw.contains("PRIVATE KEY") && !raw.contains("CERTIFICATE")
            && !raw.contains(kerberosKeyText) && !raw.contains("CORP.EXAMPLE.TEST") && !raw.contains(providerSecret)
    }

    /// Every key setting of `tenant`, as the store holds them.
    static func rows(_ store: SQLDirectoryStore, tenant: String) async throws -> [String] {
        var rows: [String] = []
        for key in SealedSetting.tenantKeys { rows.append(try await KeyEncryptionTests.rawRow(store, SealedSetting(tenant: tenant, key: key))) }
        return rows
    }

    /// Makes every kind of tenant key for `tenant` with `app`'s sealing: the three CAs, a pending inspection CA rotation,
    /// an identity provider's client secret, a Kerberos domain.
    static func makeKeys(_ app: TesseraApp, tenant: String) async throws {
        let store = app.store, sealing = app.keySealing, now = app.clock.now
        _ = try await DeviceCertificateAuthority.loadOrCreate(tenant: tenant, store: store, sealing: sealing, now: now)
        _ = try await HealthCertificateAuthority.loadOrCreate(tenant: tenant, store: store, sealing: sealing, now: now)
        try await InspectionCertificateAuthority.rotate(tenant: tenant, store: store, sealing: sealing, now: now, overlap: 86_400)
        _ = try await app.directory.createIdentityProvider(tenant: tenant, body: try #require(IdentityProviderSecretTests.provider(secret: providerSecret).objectValue),
                                                           actor: .system, sealing: sealing)
        try await domain(now: now).save(tenant: tenant, store: store, sealing: sealing)
    }

    /// What the keys are, to compare across starts and rewraps: each CA's certificate, the provider secrets and the Kerberos keys.
    static func fingerprint(_ app: TesseraApp, tenant: String) async throws -> [String] {
        let store = app.store, sealing = app.keySealing, now = app.clock.now
        let device = try #require(try await DeviceCertificateAuthority.load(tenant: tenant, store: store, sealing: sealing))
        let health = try #require(try await HealthCertificateAuthority.load(tenant: tenant, store: store, sealing: sealing))
        let inspection = try await InspectionCertificateAuthority.current(tenant: tenant, store: store, sealing: sealing, now: now)
        let kerberos = try #require(try await KerberosDomain.load(tenant: tenant, store: store, sealing: sealing))
        let providers = try #require(try await store.read { tx in try await sealing.read(IdentityProviderSecrets.setting(tenant: tenant), in: tx) })
        #expect(providers.objectValue?.values.map(\.stringValue) == [providerSecret])
        return [try device.certificate.serializeAsPEM().pemString, try health.certificate.serializeAsPEM().pemString,
                try inspection.pem, providers.serialized, Data(kerberos.keys[0].aes256).base64EncodedString()]
    }

    @Test("hybrid join with a key-encryption key: the Kerberos service keys and the device CA are ciphertext in the database, a computer's ticket validates with the sealed keys and the certificate the sealed CA issues signs the device in")
    func hybridJoinWithSealedKeys() async throws {
        try await DeviceRegistrationTests.run(keyEncryption: Self.kek) { harness, fixture in
            let store = try Self.sqlStore(harness.app), tenant = harness.tenant.tenantId
            let kerberosRow = try await KeyEncryptionTests.rawRow(store, SealedSetting(tenant: tenant, key: KerberosDomain.settingKey))
            let fixtureKey = try #require(try fixture.domain(created: harness.clock.now).keys.first?.aes256)
            #expect(Self.isSealed(kerberosRow) && !kerberosRow.contains(Data(fixtureKey).base64EncodedString()), "\(kerberosRow.prefix(60))")
            // The SPNEGO ticket is decrypted with the sealed service keys; the device gets a certificate from the sealed CA.
            let device = try await DeviceIdentityTests.enroll(harness, fixture)
            let caRow = try await KeyEncryptionTests.rawRow(store, SealedSetting(tenant: tenant, key: "deviceCertificateAuthority"))
            #expect(Self.isSealed(caRow), "\(caRow.prefix(60))")
            #expect(await DeviceIdentityTests.signIn(harness, try DeviceIdentityTests.assertion(harness, device)).status == 200)
            // The health agents' CA too.
            _ = try await HealthCertificateAuthority.loadOrCreate(tenant: tenant, store: harness.app.store, sealing: harness.app.keySealing,
                                                                  now: harness.clock.now)
            #expect(Self.isSealed(try await KeyEncryptionTests.rawRow(store, SealedSetting(tenant: tenant, key: "health.ca"))))
        }
    }

    @Test("tenant keys made without a key-encryption key are sealed at the first start with one, the same keys, once, by several nodes at once; a key that does not open them, or none, refuses to start and changes nothing")
    func plainTenantKeysMigrate() async throws {
        try await KeyRingTests.withTwoStores { first, second in
            let plainApp = try await Self.start(first, nil)
            let tenant = try await TenantProvisioner(directory: plainApp.directory).create(name: "Contoso", domain: "contoso.test").tenantId
            try await Self.makeKeys(plainApp, tenant: tenant)
            let plainRows = try await Self.rows(first, tenant: tenant)
            #expect(plainRows.allSatisfy { !$0.contains("\"sealed\"") })
            #expect(plainRows.filter { $0.contains("PRIVATE KEY") }.count == 4 && plainRows.last?.contains(Self.kerberosKeyText) == true)
            let keys = try await Self.fingerprint(plainApp, tenant: tenant)
            #expect(try await DeploymentKeys.atRest(store: first).allSatisfy { !$0.sealed })

            // Two nodes start with the key at once: both start, every key ends sealed, and the keys are the same.
            let nodes = try await withThrowingTaskGroup(of: TesseraApp.self) { group in
                for store in [first, second] { group.addTask { try await Self.start(store, Self.kek) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let sealedRows = try await Self.rows(first, tenant: tenant)
            #expect(sealedRows.allSatisfy(Self.isSealed), "\(sealedRows.map { $0.prefix(40) })")
            for node in nodes { #expect(try await Self.fingerprint(node, tenant: tenant) == keys) }
            let atRest = try await DeploymentKeys.atRest(store: first)
            #expect(atRest.allSatisfy(\.sealed) && Set(atRest.map(\.name)).isSuperset(of: SealedSetting.tenantKeys.map { "\(tenant)/\($0)" }))
            // Idempotent: another start with the key rewrites nothing.
            _ = try await Self.start(second, Self.kek)
            #expect(try await Self.rows(first, tenant: tenant) == sealedRows)

            // A tenant key sealed under another key (the deployment's open): refused at start, nothing changed.
            let stranger = try await TenantProvisioner(directory: plainApp.directory).create(name: "Fabrikam", domain: "fabrikam.test").tenantId
            let strangerKey = SealedSetting(tenant: stranger, key: KerberosDomain.settingKey)
            let foreign = try KeySealing(keyEncryption: Self.otherKek).seal(Self.domain(now: plainApp.clock.now).json, strangerKey)
            try await first.write { tx in try await tx.putSetting(tenant: strangerKey.tenant, key: strangerKey.key, value: foreign) }
            let before = try await Self.rows(first, tenant: tenant)
            let wrong = await #expect(throws: KeyEncryptionError.self) { try await Self.start(second, Self.kek) }
            #expect(wrong?.description.contains("does not open the stored keys (\(strangerKey.name))") == true)
            await #expect(throws: KeyEncryptionError.self) { try await Self.start(second, nil) }
            #expect(try await Self.rows(first, tenant: tenant) == before)
            #expect(try JSONParser.parse(try await KeyEncryptionTests.rawRow(first, strangerKey)) == foreign)
            // Nor does the sealing move between tenants: Contoso's Kerberos keys copied to Fabrikam do not open there.
            try await first.write { tx in try await tx.putSetting(tenant: stranger, key: KerberosDomain.settingKey, value: try JSONParser.parse(try #require(before.last))) }
            await #expect(throws: KeyEncryptionError.self) { try await Self.start(second, Self.kek) }
        }
    }

    @Test("rewrap seals every tenant's keys under the new key-encryption key in one transaction; a wrong old key changes nothing")
    func rewrapCoversTenantKeys() async throws {
        try await KeyRingTests.withTwoStores { store, _ in
            let app = try await Self.start(store, Self.kek)
            var tenants: [String] = []
            for (name, domain) in [("Contoso", "contoso.test"), ("Fabrikam", "fabrikam.test")] {
                let tenant = try await TenantProvisioner(directory: app.directory).create(name: name, domain: domain).tenantId
                try await Self.makeKeys(app, tenant: tenant)
                tenants.append(tenant)
            }
            let keys = try await tenants.sequentialMap { try await Self.fingerprint(app, tenant: $0) }
            let sealed = try await tenants.sequentialMap { try await Self.rows(store, tenant: $0) }
            let deployment = try await SealedSetting.all.sequentialMap { try await KeyEncryptionTests.rawRow(store, $0) }
            // One tenant key the old key does not open (sealed under another): refused, and nothing rewritten, not even
            // the keys the transaction had rewrapped before it (the deployment's come first).
            let northwind = try await TenantProvisioner(directory: app.directory).create(name: "Northwind", domain: "northwind.test").tenantId
            let foreign = SealedSetting(tenant: northwind, key: KerberosDomain.settingKey)
            let foreignValue = try KeySealing(keyEncryption: Self.otherKek).seal(Self.domain(now: app.clock.now).json, foreign)
            try await store.write { tx in try await tx.putSetting(tenant: foreign.tenant, key: foreign.key, value: foreignValue) }
            await #expect(throws: KeyEncryptionError.self) { try await DeploymentKeys.rewrap(store: store, old: Self.kek, new: Self.otherKek) }
            #expect(try await tenants.sequentialMap { try await Self.rows(store, tenant: $0) } == sealed)
            #expect(try await SealedSetting.all.sequentialMap { try await KeyEncryptionTests.rawRow(store, $0) } == deployment)
            try await store.write { tx in try await tx.putSetting(tenant: foreign.tenant, key: foreign.key, value: .null) }

            let names = try await DeploymentKeys.rewrap(store: store, old: Self.kek, new: Self.otherKek)
            #expect(names.count == 2 + tenants.count * SealedSetting.tenantKeys.count)
            let rewrapped = try await tenants.sequentialMap { try await Self.rows(store, tenant: $0) }
            #expect(rewrapped.flatMap { $0 }.allSatisfy(Self.isSealed) && rewrapped != sealed)
            let moved = try await Self.start(store, Self.otherKek)
            #expect(try await tenants.sequentialMap { try await Self.fingerprint(moved, tenant: $0) } == keys)
            await #expect(throws: KeyEncryptionError.self) { try await Self.start(store, Self.kek) }

            // Back to plain: every key readable without a key-encryption key.
            _ = try await DeploymentKeys.rewrap(store: store, old: Self.otherKek, new: nil)
            #expect(try await tenants.sequentialMap { try await Self.rows(store, tenant: $0) }.flatMap { $0 }.allSatisfy { !$0.contains("\"sealed\"") })
            #expect(try await tenants.sequentialMap { try await Self.fingerprint(try await Self.start(store, nil), tenant: $0) } == keys)
        }
    }
}

fileprivate extension Array {
    /// The results of `transform` on each element, in order, one after another.
    func sequentialMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for element in self { out.append(try await transform(element)) }
        return out
    }
}
