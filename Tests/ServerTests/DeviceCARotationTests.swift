import Crypto
import Foundation
import InternetAccess
import Testing
@testable import Server
@testable import Store
import TenantPKI
import TesseraCore
import TesseraTesting
import X509

/// A tenant's device CA rotated and its previous one retired (`tessera device ca rotate|retire|status`) with two nodes
/// on one database (PostgreSQL when the test command provides one, else one SQLite file): the new CA sealed with the
/// key-encryption key, what one node does seen by the other at its next check, with no restart and no cache.
@Suite("Device CA rotation across nodes")
struct DeviceCARotationTests {
    static let kek = KeyEncryptionTests.kek

    /// A device registered on `app`: its certificate from the tenant's current device CA (as the registration service
    /// issues it), listed in its `alternativeSecurityIds`.
    static func register(_ app: TesseraApp, tenant: String) async throws -> (key: P256.Signing.PrivateKey, certificate: Certificate, deviceID: String) {
        let key = P256.Signing.PrivateKey(), deviceID = UUID().uuidString.lowercased()
        let authority = try await DeviceCertificateAuthority.loadOrCreate(tenant: tenant, store: app.store, sealing: app.keySealing, now: app.clock.now)
        let certificate = try authority.issue(for: try DeviceRegistrationTests.csr(key), deviceID: deviceID, now: app.clock.now)
        let thumbprint = Insecure.SHA1.hash(data: try certificate.derBytes).map { String(format: "%02X", $0) }.joined()
        _ = try await app.directory.create(tenant: tenant, kind: .device, body: [
            "displayName": "WS", "deviceId": .string(deviceID), "operatingSystem": "Windows", "operatingSystemVersion": "10.0.26100",
            "accountEnabled": true, "trustType": "ServerAd", "profileType": "RegisteredDevice",
            "alternativeSecurityIds": [try DeviceRegistration.alternativeSecurityID(certificate, thumbprint: thumbprint)],
        ], actor: DeviceRegistration.actor, allowReadOnly: true)
        return (key, certificate, deviceID)
    }

    /// The device `certificate` proves on `app` (throws its refusal).
    static func check(_ app: TesseraApp, _ certificate: Certificate, tenant: String) async throws -> String? {
        try await DeviceAuthentication.device(presenting: certificate, tenant: tenant, store: app.store, sealing: app.keySealing, now: app.clock.now)
            .body["deviceId"]?.stringValue
    }

    @Test("rotated on one node: the other accepts both CAs' certificates and issues from the new one; the new CA's key is sealed; retired by thumbprint, the old CA's certificates are refused there with the reason")
    func rotationAcrossNodes() async throws {
        try await KeyRingTests.withTwoStores { storeA, storeB in
            let clock = TestClock()
            let nodeA = try await TenantKeyEncryptionTests.start(storeA, Self.kek, clock: clock)
            let nodeB = try await TenantKeyEncryptionTests.start(storeB, Self.kek, clock: clock)
            let tenant = try await TenantProvisioner(directory: nodeA.directory).create(name: "Contoso", domain: "contoso.test").tenantId
            let caSetting = SealedSetting(tenant: tenant, key: DeviceCertificateAuthority.kind.settingKey)

            // Nothing to rotate before a device registers.
            await #expect(throws: DeviceCertificateAuthorities.Refusal.self) {
                try await DeviceCertificateAuthorities.rotate(tenant: tenant, store: storeA, keyEncryption: Self.kek, now: clock.now)
            }
            let first = try await Self.register(nodeA, tenant: tenant)
            #expect(try await Self.check(nodeB, first.certificate, tenant: tenant) == first.deviceID)
            let firstRow = try await KeyEncryptionTests.rawRow(storeA, caSetting)

            // A key-encryption key that does not open the CA rotates nothing.
            await #expect(throws: KeyEncryptionError.self) {
                try await DeviceCertificateAuthorities.rotate(tenant: tenant, store: storeA, keyEncryption: KeyEncryptionTests.otherKek, now: clock.now)
            }
            #expect(try await KeyEncryptionTests.rawRow(storeA, caSetting) == firstRow)

            clock.advance(3600)
            let rotated = try await DeviceCertificateAuthorities.rotate(tenant: tenant, store: storeA, keyEncryption: Self.kek, now: clock.now)
            #expect(rotated.map(\.role) == ["current", "previous"])
            let caRow = try await KeyEncryptionTests.rawRow(storeA, caSetting)
            #expect(caRow != firstRow && TenantKeyEncryptionTests.isSealed(caRow), "the new CA's key is sealed: \(caRow.prefix(60))")
            let rotationRow = try await KeyEncryptionTests.rawRow(storeA, SealedSetting(tenant: tenant, key: DeviceCertificateAuthority.rotationKey))
            #expect(!rotationRow.contains("PRIVATE KEY"), "the previous CA's key is not kept")

            // Node B, running all along: the first device still authenticates there, and registrations there use the new CA.
            #expect(try await Self.check(nodeB, first.certificate, tenant: tenant) == first.deviceID)
            let second = try await Self.register(nodeB, tenant: tenant)
            #expect(second.certificate.issuer == first.certificate.issuer && second.certificate.signature != first.certificate.signature)
            let current = try #require(try await DeviceCertificateAuthority.load(tenant: tenant, store: storeB, sealing: nodeB.keySealing)).certificate
            #expect(current.publicKey.isValidSignature(second.certificate.signature, for: second.certificate))
            #expect(!current.publicKey.isValidSignature(first.certificate.signature, for: first.certificate))
            #expect(try await Self.check(nodeA, second.certificate, tenant: tenant) == second.deviceID)
            // The proxy's gatekeeper on node B finds the tenant and the device for both.
            let gate = NetworkAccessGatekeeper(app: nodeB, catalog: try AICatalog.bundled(year: 2026), issuerBase: Harness.base)
            for device in [first, second] {
                guard case .success(let found) = try await gate.presentedDevice(try device.certificate.derBytes) else {
                    Issue.record("the gatekeeper refused \(device.deviceID)")
                    continue
                }
                #expect(found.tenant.id == tenant && found.object.body["deviceId"]?.stringValue == device.deviceID)
            }

            // Rotated again: three CAs, the first device's still accepted.
            clock.advance(3600)
            let twice = try await DeviceCertificateAuthorities.rotate(tenant: tenant, store: storeB, keyEncryption: Self.kek, now: clock.now)
            #expect(twice.map(\.role) == ["current", "previous", "previous"])
            #expect(try await Self.check(nodeA, first.certificate, tenant: tenant) == first.deviceID)
            let listed = try await DeviceCertificateAuthorities.list(tenant: tenant, store: storeA, keyEncryption: Self.kek)
            #expect(listed.map(\.thumbprint) == twice.map(\.thumbprint))

            // Only the oldest CA retired (by its thumbprint, as `status` prints it): the first device refused on node B,
            // the second (of the CA between) still accepted.
            clock.advance(60)
            let oldest = try #require(twice.last?.thumbprint)
            let retired = try await DeviceCertificateAuthorities.retire(tenant: tenant, store: storeA, now: clock.now, thumbprint: oldest.lowercased())
            #expect(retired.map(\.role) == ["previous", "retired"])
            let message = "The device certificate was issued by this tenant's previous device certificate authority, retired on "
                + "\(Timestamp.format(clock.now)): the device must register again for a certificate from the current one."
            await #expect(throws: DeviceAuthentication.Refusal(message: message)) { try await Self.check(nodeB, first.certificate, tenant: tenant) }
            #expect(try await Self.check(nodeB, second.certificate, tenant: tenant) == second.deviceID)
            guard case .failure(let refusal) = try await gate.presentedDevice(try first.certificate.derBytes),
                  case .deviceNotAccepted(let refusedTenant, let device, let reason) = refusal.admission
            else {
                Issue.record("the gatekeeper accepted a retired CA's certificate")
                return
            }
            #expect(refusedTenant == tenant && device.deviceId == first.deviceID && reason == message)
            // Nothing more to retire by that thumbprint; the rest retired without one.
            await #expect(throws: DeviceCertificateAuthorities.Refusal.self) {
                try await DeviceCertificateAuthorities.retire(tenant: tenant, store: storeB, now: clock.now, thumbprint: oldest)
            }
            let all = try await DeviceCertificateAuthorities.retire(tenant: tenant, store: storeB, now: clock.now, thumbprint: nil)
            #expect(all.map(\.role) == ["retired", "retired"])
            await #expect(throws: DeviceAuthentication.Refusal.self) { try await Self.check(nodeA, second.certificate, tenant: tenant) }
            // Once every certificate a previous CA could have issued has expired, it is dropped at the next rotation.
            clock.advance(DeviceCertificateAuthority.deviceCertificateLifetime + 86_400)
            let later = try await DeviceCertificateAuthorities.rotate(tenant: tenant, store: storeA, keyEncryption: Self.kek, now: clock.now)
            #expect(later.map(\.role) == ["current", "previous"])
        }
    }
}
