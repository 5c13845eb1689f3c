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
                try await DeviceCertificateAuthorities.rotate(tenant: tenant, store: storeA, keyEncryption: Self.kek, now: clock.now, actor: .system)
            }
            let first = try await Self.register(nodeA, tenant: tenant)
            #expect(try await Self.check(nodeB, first.certificate, tenant: tenant) == first.deviceID)
            let firstRow = try await KeyEncryptionTests.rawRow(storeA, caSetting)

            // A key-encryption key that does not open the CA rotates nothing.
            await #expect(throws: KeyEncryptionError.self) {
                try await DeviceCertificateAuthorities.rotate(tenant: tenant, store: storeA, keyEncryption: KeyEncryptionTests.otherKek, now: clock.now, actor: .system)
            }
            #expect(try await KeyEncryptionTests.rawRow(storeA, caSetting) == firstRow)

            clock.advance(3600)
            let rotated = try await DeviceCertificateAuthorities.rotate(tenant: tenant, store: storeA, keyEncryption: Self.kek, now: clock.now, actor: .system)
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
            let twice = try await DeviceCertificateAuthorities.rotate(tenant: tenant, store: storeB, keyEncryption: Self.kek, now: clock.now, actor: .system)
            #expect(twice.map(\.role) == ["current", "previous", "previous"])
            #expect(try await Self.check(nodeA, first.certificate, tenant: tenant) == first.deviceID)
            let listed = try await DeviceCertificateAuthorities.list(tenant: tenant, store: storeA, keyEncryption: Self.kek)
            #expect(listed.map(\.thumbprint) == twice.map(\.thumbprint))

            // Only the oldest CA retired (by its thumbprint, as `status` prints it): the first device refused on node B,
            // the second (of the CA between) still accepted.
            clock.advance(60)
            let oldest = try #require(twice.last?.thumbprint)
            let retired = try await DeviceCertificateAuthorities.retire(tenant: tenant, store: storeA, now: clock.now, thumbprint: oldest.lowercased(), actor: .system)
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
                try await DeviceCertificateAuthorities.retire(tenant: tenant, store: storeB, now: clock.now, thumbprint: oldest, actor: .system)
            }
            let all = try await DeviceCertificateAuthorities.retire(tenant: tenant, store: storeB, now: clock.now, thumbprint: nil, actor: .system)
            #expect(all.map(\.role) == ["retired", "retired"])
            await #expect(throws: DeviceAuthentication.Refusal.self) { try await Self.check(nodeA, second.certificate, tenant: tenant) }
            // Once every certificate a previous CA could have issued has expired, it is dropped at the next rotation.
            clock.advance(DeviceCertificateAuthority.deviceCertificateLifetime + 86_400)
            let later = try await DeviceCertificateAuthorities.rotate(tenant: tenant, store: storeA, keyEncryption: Self.kek, now: clock.now, actor: .system)
            #expect(later.map(\.role) == ["current", "previous"])
        }
    }

    /// Both databases: the SQLite file always, PostgreSQL when the test command provides one.
    static var databases: [String] {
        ["sqlite file"] + [ProcessInfo.processInfo.environment["TESSERA_TEST_POSTGRES_URL"]].compactMap { $0 }.filter { !$0.isEmpty }
    }

    /// An administrator of the audit entries.
    static func admin(_ name: String) -> Actor {
        Actor(kind: .user, id: Identifier.make(), displayName: name, userPrincipalName: "\(name.lowercased())@contoso.test")
    }

    /// The tenant's audit entries of device CA rotations or retirements (`activity`), oldest first.
    static func audits(_ store: SQLDirectoryStore, _ tenant: String, _ activity: String) async throws -> [ChangeRecord] {
        try await store.read { tx in try await tx.changes(tenant: tenant, kinds: [DeviceCertificateAuthority.auditKind], after: 0, limit: 1000) }
            .filter { $0.activity == activity }
    }

    @Test("two rotations at once on two nodes keep both new CAs, and a rotation beside a retirement keeps the rotated CA and the retirement (one waits for the other)",
          arguments: Self.databases)
    func concurrentRotations(database: String) async throws {
        try await SharedDatabase.withTwoStores(database) { storeA, storeB in
            let clock = TestClock()
            let node = try await TenantKeyEncryptionTests.start(storeA, Self.kek, clock: clock)
            let tenant = try await TenantProvisioner(directory: node.directory).create(name: "Contoso", domain: "contoso.test").tenantId
            let first = try await Self.register(node, tenant: tenant)
            var count = 1
            for round in 0..<4 {
                clock.advance(60)
                let now = clock.now
                async let onA = DeviceCertificateAuthorities.rotate(tenant: tenant, store: storeA, keyEncryption: Self.kek, now: now, actor: Self.admin("A"))
                async let onB = DeviceCertificateAuthorities.rotate(tenant: tenant, store: storeB, keyEncryption: Self.kek, now: now, actor: Self.admin("B"))
                _ = try await (onA, onB)
                count += 2
                let listed = try await DeviceCertificateAuthorities.list(tenant: tenant, store: storeB, keyEncryption: Self.kek)
                #expect(listed.count == count && Set(listed.map(\.thumbprint)).count == count, "round \(round): \(listed.map(\.role))")
                #expect(listed.map(\.role) == ["current"] + Array(repeating: "previous", count: count - 1), "round \(round)")
                // Every CA a rotation made (its audit entry names it) is still there: none was overwritten by the other.
                let made = try await Self.audits(storeA, tenant, "Rotate device certificate authority").map { $0.objectId.uppercased() }
                #expect(made.count == 2 * (round + 1) && Set(made).isSubset(of: listed.map(\.thumbprint)), "round \(round)")
            }
            #expect(try await Self.check(node, first.certificate, tenant: tenant) == first.deviceID)

            // A rotation on one node while the other retires every previous CA: whichever went first, the retirement holds
            // for every CA that was previous before, and the CA the rotation replaced is kept (previous, or retired too).
            for round in 0..<3 {
                // One rotation first, so the retirement has a previous CA to retire whichever goes first.
                clock.advance(60)
                _ = try await DeviceCertificateAuthorities.rotate(tenant: tenant, store: storeA, keyEncryption: Self.kek, now: clock.now, actor: Self.admin("A"))
                clock.advance(60)
                let now = clock.now
                let before = try await DeviceCertificateAuthorities.list(tenant: tenant, store: storeA, keyEncryption: Self.kek)
                let replaced = before[0].thumbprint, previous = before.filter { $0.role == "previous" }.map(\.thumbprint)
                async let rotation = DeviceCertificateAuthorities.rotate(tenant: tenant, store: storeA, keyEncryption: Self.kek, now: now, actor: Self.admin("A"))
                async let retirement = DeviceCertificateAuthorities.retire(tenant: tenant, store: storeB, now: now, thumbprint: nil, actor: Self.admin("B"))
                _ = try await (rotation, retirement)
                let after = try await DeviceCertificateAuthorities.list(tenant: tenant, store: storeB, keyEncryption: Self.kek)
                #expect(after.count == before.count + 1, "round \(round): \(after.map(\.role))")
                let roles = Dictionary(after.map { ($0.thumbprint, $0.role) }, uniquingKeysWith: { $1 })
                #expect(previous.allSatisfy { roles[$0] == "retired" }, "round \(round): a retirement was lost: \(after.map(\.role))")
                #expect(["previous", "retired"].contains(roles[replaced]), "round \(round): the replaced CA was lost: \(after.map(\.role))")
            }
            await #expect(throws: DeviceAuthentication.Refusal.self) { try await Self.check(node, first.certificate, tenant: tenant) }
        }
    }

    @Test("a rotation and a retirement are in the directory audit with who, what (the CAs by thumbprint) and when, and no key; a refused retirement is not")
    func audited() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let tenant = h.tenant.tenantId, adele = Self.admin("Adele")
            _ = try await Self.register(h.app, tenant: tenant)
            h.clock.advance(60)
            let rotatedAt = h.clock.now
            let rotated = try await DeviceCertificateAuthority.rotate(tenant: tenant, store: h.app.store, sealing: h.app.keySealing, now: rotatedAt, actor: adele)
            let (new, old) = (try rotated[0].thumbprint, try rotated[1].thumbprint)
            h.clock.advance(60)
            let retiredAt = h.clock.now
            _ = try await DeviceCertificateAuthority.retire(tenant: tenant, store: h.app.store, now: retiredAt, thumbprint: nil, actor: adele)
            await #expect(throws: DeviceCertificateAuthority.RotationError.self) {
                try await DeviceCertificateAuthority.retire(tenant: tenant, store: h.app.store, now: retiredAt, thumbprint: nil, actor: adele)
            }

            func entries(_ activity: String) async -> [JSONValue] {
                await h.graph("GET", "auditLogs/directoryAudits", token: token, query: [("$filter", "activityDisplayName eq '\(activity)'")])
                    .json["value"]?.arrayValue ?? []
            }
            let rotation = await entries("Rotate device certificate authority"), retirement = await entries("Retire device certificate authority")
            #expect(rotation.count == 1 && retirement.count == 1, "\(rotation) \(retirement)")
            for (entry, at, target) in [(rotation.first, rotatedAt, new), (retirement.first, retiredAt, old)] {
                #expect(entry?["activityDateTime"]?.stringValue == Timestamp.format(at))
                #expect(entry?["initiatedBy"]?["user"]?["userPrincipalName"]?.stringValue == "adele@contoso.test")
                #expect(entry?["initiatedBy"]?["user"]?["id"]?.stringValue == adele.id)
                #expect(entry?["targetResources"]?.arrayValue?.first?["id"]?.stringValue?.uppercased() == target)
                #expect(entry?["targetResources"]?.arrayValue?.first?["type"]?.stringValue == "DeviceCertificateAuthority")
                #expect(entry?["result"]?.stringValue == "success" && entry?["operationType"]?.stringValue == "Update")
                let text = entry?.serialized ?? ""
                #expect(!text.contains("PRIVATE KEY") && !text.contains("BEGIN") && !text.contains("sealed"), "no key material: \(text)")
            }
            let changed = rotation.first?["targetResources"]?.arrayValue?.first?["modifiedProperties"]?.arrayValue?.first
            #expect(changed?["displayName"]?.stringValue == "thumbprint")
            #expect(changed?["oldValue"]?.stringValue == "\"\(old)\"" && changed?["newValue"]?.stringValue == "\"\(new)\"")
            let retiredProperty = retirement.first?["targetResources"]?.arrayValue?.first?["modifiedProperties"]?.arrayValue?.first
            #expect(retiredProperty?["displayName"]?.stringValue == "retiredAt" && retiredProperty?["newValue"]?.stringValue == "\"\(Timestamp.format(retiredAt))\"")
        }
    }
}
