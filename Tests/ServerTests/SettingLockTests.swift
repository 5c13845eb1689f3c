import Foundation
import Testing
@testable import Server
@testable import Store
import InternetAccess
import TesseraCore
import TesseraTesting

/// Read-modify-writes of key settings that two nodes make at once, each reading its setting with the row locked
/// (``DirectoryWriter/lockedSetting(tenant:key:)``): the sealing of a plain key, a TLS inspection CA rotation and a
/// signing key rotation. Each race is made certain, not left to timing: a third transaction rewrites the setting and
/// holds its row until the others have read and are waiting to write (on PostgreSQL, read unlocked, both then write over
/// what the other wrote); SQLite has one writer, so there they run one after the other anyway.
@Suite("Key settings read locked")
struct SettingLockTests {
    static let kek = KeyEncryptionTests.kek

    /// Both databases: the SQLite file always, PostgreSQL when the test command provides one.
    static var databases: [String] { DeviceCARotationTests.databases }

    /// Runs `during` while a write transaction on `store` that rewrote the setting (`value`, else as it is) holds its row
    /// — another node's write of it (its sealing at start, say) slow to commit — and lets it commit `hold` after `during`
    /// began, by when what `during` started has read the setting and waits to write or to lock it.
    static func whileRewriteHeld<T: Sendable>(_ store: any DirectoryStore, tenant: String, key: String, value: JSONValue? = nil,
                                              hold: Duration = .milliseconds(500),
                                              during: @escaping @Sendable () async throws -> T) async throws -> T {
        let (written, wrote) = AsyncStream<Void>.makeStream()
        let (release, letGo) = AsyncStream<Void>.makeStream()
        let holder = Task {
            defer { wrote.finish() }
            try await store.write { tx in
                var rewritten = value
                if rewritten == nil { rewritten = try await tx.setting(tenant: tenant, key: key) }
                try await tx.putSetting(tenant: tenant, key: key, value: try #require(rewritten))
                wrote.yield()
                for await _ in release { break }
            }
        }
        for await _ in written { break }
        let started = Task { try await during() }
        try await Task.sleep(for: hold)
        letGo.yield()
        try await holder.value
        return try await started.value
    }

    @Test("a plain key sealed by one node while another rewrites it keeps the other node's value (not the old one, sealed)",
          arguments: Self.databases)
    func sealingKeepsAConcurrentWrite(database: String) async throws {
        try await SharedDatabase.withTwoStores(database) { storeA, storeB in
            let setting = SealedSetting(tenant: "contoso", key: InspectionCertificateAuthority.sealedSettingKeys[0])
            let old: JSONValue = ["key": "old"], rotated: JSONValue = ["key": "rotated"]
            try await storeA.write { tx in try await tx.putSetting(tenant: setting.tenant, key: setting.key, value: old) }
            // Node B rotates it (a new plain value) while node A, started with a key-encryption key, seals the old one.
            let sealing = KeySealing(keyEncryption: Self.kek)
            let seen = try await Self.whileRewriteHeld(storeB, tenant: setting.tenant, key: setting.key, value: rotated) {
                try await sealing.load(setting, store: storeA)
            }
            #expect(seen == rotated)
            let stored = try #require(try await storeB.read { tx in try await tx.setting(tenant: setting.tenant, key: setting.key) })
            #expect(try sealing.open(stored, setting) == rotated, "the rotation was overwritten with the old value, sealed")
            // Sealed at the next start.
            #expect(try await sealing.load(setting, store: storeA) == rotated)
            #expect(KeyEncryptionKey.isSealed(try #require(try await storeB.read { tx in try await tx.setting(tenant: setting.tenant, key: setting.key) })))
        }
    }

    @Test("two TLS inspection CA rotations at once on two nodes: one is made, the other refused as pending (its next CA never replaces the first's)",
          arguments: Self.databases)
    func inspectionCARotationsAtOnce(database: String) async throws {
        try await SharedDatabase.withTwoStores(database) { storeA, storeB in
            let tenant = try await TenantProvisioner(directory: DirectoryService(store: storeA, clock: TestClock()))
                .create(name: "Contoso", domain: "contoso.test").tenantId
            let sealing = KeySealing(keyEncryption: Self.kek), day: TimeInterval = 86_400
            let t0 = TestClock().now
            // A rotation made and carried out, so the rotation setting exists (the old CA still published).
            _ = try await InspectionCertificateAuthority.rotate(tenant: tenant, store: storeA, sealing: sealing, now: t0, overlap: day)
            _ = try await InspectionCertificateAuthority.current(tenant: tenant, store: storeA, sealing: sealing, now: t0 + 2 * day)
            let now = t0 + 3 * day
            let outcomes = try await Self.whileRewriteHeld(storeB, tenant: tenant, key: InspectionCertificateAuthority.sealedSettingKeys[1]) {
                async let onA = Self.outcome { try await InspectionCertificateAuthority.rotate(tenant: tenant, store: storeA, sealing: sealing, now: now, overlap: day) }
                async let onB = Self.outcome { try await InspectionCertificateAuthority.rotate(tenant: tenant, store: storeB, sealing: sealing, now: now, overlap: day) }
                return await [onA, onB]
            }
            let made = outcomes.compactMap { try? $0.get() }
            #expect(made.count == 1, "both rotations were made: the first one's next CA was replaced by the second's")
            #expect(outcomes.contains { if case .failure(let error) = $0 { error is InspectionCertificateAuthority.RotationError } else { false } })
            let published = try await InspectionCertificateAuthority.current(tenant: tenant, store: storeB, sealing: sealing, now: now).published
            #expect(made.first?.published == published, "the CAs the rotation told clients to trust are the ones published")
        }
    }

    @Test("two signing key rotations by hand at once on two nodes are made one after the other: each one's next key stays published",
          arguments: Self.databases)
    func signingKeyRotationsAtOnce(database: String) async throws {
        try await SharedDatabase.withTwoStores(database) { storeA, storeB in
            let secrets = DeploymentSecrets(keyEncryption: Self.kek), clock = TestClock()
            let before = try await SigningKeyRing.loadOrCreate(store: storeA, secrets: secrets, now: clock.now)
            for round in 0..<2 {
                clock.advance(60)
                let now = clock.now, keyA = try SigningKey.generate(), keyB = try SigningKey.generate()
                let secret = DeploymentSecret.signingKeys
                let (ringA, ringB) = try await Self.whileRewriteHeld(storeB, tenant: secret.tenant, key: secret.key) {
                    async let onA = SigningKeyRing.rotate(store: storeA, secrets: secrets, now: now, newNext: keyA)
                    async let onB = SigningKeyRing.rotate(store: storeB, secrets: secrets, now: now, newNext: keyB)
                    return try await (onA.ring, onB.ring)
                }
                let stored = try await SigningKeyRing.loadOrCreate(store: storeB, secrets: secrets, now: now)
                let published = Set(stored.published.map(\.kid))
                #expect(published.contains(keyA.kid) && published.contains(keyB.kid),
                        "round \(round): a rotation's next key was lost (\(ringA.next.kid), \(ringB.next.kid); stored \(stored.published.map(\.kid)))")
                // Two rotations: the first one's new next key signs, the second one's is next.
                #expect([keyA.kid, keyB.kid].contains(stored.current.kid) && stored.previous != nil, "round \(round)")
            }
            #expect(try await SigningKeyRing.loadOrCreate(store: storeA, secrets: secrets, now: clock.now).current.kid != before.current.kid)
        }
    }

    /// What `body` returned or threw.
    static func outcome<T: Sendable>(_ body: () async throws -> T) async -> Result<T, any Error> {
        do { return .success(try await body()) } catch { return .failure(error) }
    }
}
