import Foundation
import Testing
@testable import Server
@testable import Store
import TesseraCore
import TesseraTesting

/// The deployment's keys at rest: sealed with the key-encryption key (AES-256-GCM, bound to the setting's name), a
/// wrong key refusing to start without touching them, plain keys sealed on the first start with a key.
@Suite("Keys at rest")
struct KeyEncryptionTests {
    static let kek = try! KeyEncryptionKey(base64: "q83vEjRWeJASNFZ4kBI0VniQEjRWeJASNFZ4kBI0Vng=")
    static let otherKek = try! KeyEncryptionKey(base64: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")

    /// A store in a folder of its own, closed and removed afterwards.
    static func withStore(_ body: (SQLDirectoryStore) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-keys-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try await SQLDirectoryStore.open(folder.appendingPathComponent("tessera.sqlite").path)
        do {
            try await body(store)
            try await store.shutdown()
        } catch {
            try? await store.shutdown()
            throw error
        }
    }

    /// The `value` column of a setting's row, as the database holds it.
    static func rawRow(_ store: SQLDirectoryStore, _ secret: DeploymentSecret) async throws -> String {
        let rows = try await store.backend.withReadSession { session in
            try await session.execute("SELECT value FROM settings WHERE tenant = ? AND key = ?", [.text(secret.tenant), .text(secret.key)])
        }
        return try #require(rows.first?.first?.text)
    }

    static func start(_ store: SQLDirectoryStore, _ kek: KeyEncryptionKey?) async throws -> TesseraApp {
        try await TesseraApp.make(store: store, clock: TestClock(), keyEncryption: kek)
    }

    @Test("with a key-encryption key the signing keys and the challenge key are ciphertext in the database, and open again at the next start")
    func sealedAtRest() async throws {
        try await Self.withStore { store in
            let app = try await Self.start(store, Self.kek)
            for secret in DeploymentSecret.all {
                let raw = try await Self.rawRow(store, secret)
                let stored = try JSONParser.parse(raw)
                #expect(stored["alg"] == "A256GCM" && stored["sealed"]?.stringValue != nil, "\(secret.name): \(raw.prefix(40))")
                #expect(!raw.contains("PRIVATE KEY") && !raw.contains("pem") && !raw.contains(app.signingKey.kid))
            }
            let again = try await Self.start(store, Self.kek)
            #expect(again.signingKey.kid == app.signingKey.kid)
            #expect(again.signingKeys.ring.next.kid == app.signingKeys.ring.next.kid)
            #expect(again.passkeyChallenges.mac("probe", [1]) == app.passkeyChallenges.mac("probe", [1]))
        }
    }

    @Test("a wrong key-encryption key, or none, refuses to start and leaves the stored keys as they were")
    func wrongKeyRefuses() async throws {
        try await Self.withStore { store in
            _ = try await Self.start(store, Self.kek)
            let before = try await DeploymentSecret.all.sequentialMap { try await Self.rawRow(store, $0) }
            let wrong = await #expect(throws: KeyEncryptionError.self) { try await Self.start(store, Self.otherKek) }
            #expect(wrong?.description.contains("the key-encryption key does not open the stored keys") == true)
            let none = await #expect(throws: KeyEncryptionError.self) { try await Self.start(store, nil) }
            #expect(none?.description.contains("the stored keys are encrypted") == true)
            #expect(try await DeploymentSecret.all.sequentialMap { try await Self.rawRow(store, $0) } == before)
        }
    }

    @Test("a sealed value is bound to its setting: moved to another setting it does not open")
    func boundToName() throws {
        let sealed = try Self.kek.seal("secret", name: DeploymentSecret.challengeKey.name)
        #expect(try Self.kek.open(sealed, name: DeploymentSecret.challengeKey.name) == "secret")
        #expect(throws: KeyEncryptionError.self) { try Self.kek.open(sealed, name: DeploymentSecret.signingKeys.name) }
        #expect(throws: KeyEncryptionError.self) { try Self.otherKek.open(sealed, name: DeploymentSecret.challengeKey.name) }
        #expect(throws: KeyEncryptionError.self) { try KeyEncryptionKey(base64: "c2hvcnQ=") }
    }

    @Test("plain keys (a deployment started without a key, or a single signing key from before rotation) are sealed at the first start with a key, the same keys, once")
    func plainKeysMigrate() async throws {
        try await Self.withStore { store in
            // A single key as the releases before the key ring stored it.
            try await store.migrate()
            let legacy = try SigningKey.generate()
            try await store.write { tx in try await tx.putSetting(tenant: "_deployment", key: "signingKey", value: legacy.json) }
            let plain = try await Self.start(store, nil)
            #expect(plain.signingKey.kid == legacy.kid)
            #expect(try await Self.rawRow(store, .signingKeys).contains("PRIVATE KEY"))
            #expect(try await Self.rawRow(store, .challengeKey).count < 60)
            // Several nodes started with the key at once: every one gets the same keys, and they end sealed.
            let nodes = try await withThrowingTaskGroup(of: TesseraApp.self) { group in
                for _ in 0..<3 { group.addTask { try await Self.start(store, Self.kek) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            for node in nodes {
                #expect(node.signingKey.kid == legacy.kid)
                #expect(node.signingKeys.ring.next.kid == plain.signingKeys.ring.next.kid)
                #expect(node.passkeyChallenges.mac("probe", [1]) == plain.passkeyChallenges.mac("probe", [1]))
            }
            let sealed = try await DeploymentSecret.all.sequentialMap { try await Self.rawRow(store, $0) }
            #expect(sealed.allSatisfy { $0.contains("\"sealed\"") && !$0.contains("PRIVATE KEY") })
            // Idempotent: a later start with the key rewrites nothing.
            _ = try await Self.start(store, Self.kek)
            #expect(try await DeploymentSecret.all.sequentialMap { try await Self.rawRow(store, $0) } == sealed)
        }
    }

    @Test("rewrap seals the keys under a new key-encryption key: the new one opens them, the old one no longer does")
    func rewrap() async throws {
        try await Self.withStore { store in
            let app = try await Self.start(store, Self.kek)
            #expect(try await DeploymentKeys.rewrap(store: store, old: Self.kek, new: Self.otherKek).count == 2)
            #expect(try await Self.start(store, Self.otherKek).signingKey.kid == app.signingKey.kid)
            await #expect(throws: KeyEncryptionError.self) { try await Self.start(store, Self.kek) }
            // A wrong old key changes nothing.
            await #expect(throws: KeyEncryptionError.self) { try await DeploymentKeys.rewrap(store: store, old: Self.kek, new: nil) }
            _ = try await DeploymentKeys.rewrap(store: store, old: Self.otherKek, new: nil)
            #expect(try await Self.rawRow(store, .signingKeys).contains("PRIVATE KEY"))
            #expect(try await Self.start(store, nil).signingKey.kid == app.signingKey.kid)
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
