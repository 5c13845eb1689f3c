import Crypto
import CryptoExtras
import Foundation
import Logging
import Testing
@testable import Server
@testable import Store
import TesseraCore
import TesseraTesting

/// The release before signing key rings (3271a39) read the deployment's signing key as `SigningKey.load` did then,
/// reproduced here as it was (`git show 3271a39:Sources/Server/Identity/SigningKeys.swift`): the setting's top-level
/// `kid` and `pem`, nil when either is missing; and on first start it stored `{kid, pem}` with `settingOrPut`.
enum ReleaseBeforeRings {
    static func load(store: any DirectoryStore) async throws -> SigningKey? {
        try await store.read { tx in
            guard let value = try await tx.setting(tenant: SigningKey.settingsTenant, key: "signingKey"),
                  let pem = value["pem"]?.stringValue, let kid = value["kid"]?.stringValue
            else { return nil }
            return SigningKey(kid: kid, privateKey: try _RSA.Signing.PrivateKey(pemRepresentation: pem))
        }
    }

    /// Its first start's key, stored as it stored it.
    static func create(store: any DirectoryStore) async throws -> SigningKey {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let kid = Base64URL.encode(Data(SHA256.hash(data: key.publicKey.derRepresentation)).prefix(20))
        _ = try await store.write { tx in
            try await tx.settingOrPut(tenant: SigningKey.settingsTenant, key: "signingKey", value: ["kid": .string(kid), "pem": .string(key.pemRepresentation)])
        }
        return SigningKey(kid: kid, privateKey: key)
    }
}

/// A cluster runs the release before and this one side by side during a rolling upgrade: a node of the release before
/// reads the key ring this one writes and signs with its current key, through rotations; a single key that release
/// left becomes the ring's current key with its kid; and `/readyz` says when a newer build's schema is one this build
/// must not run on.
@Suite("Rolling upgrade: the release before beside this one")
struct RollingUpgradeTests {
    static func sameKey(_ a: SigningKey?, _ b: SigningKey) -> Bool {
        a?.kid == b.kid && a?.publicKey.derRepresentation == b.publicKey.derRepresentation
    }

    @Test("a node of the release before reads the ring this release writes and signs with its current key, before and after rotations")
    func ringReadByTheReleaseBefore() async throws {
        try await KeyRingTests.withTwoStores { a, b in
            let clock = TestClock()
            let node = try await TesseraApp.make(store: a, clock: clock)
            let old = try #require(try await ReleaseBeforeRings.load(store: b))
            #expect(Self.sameKey(old, node.signingKey))
            // What it signs, this release verifies with the ring's current key.
            let digest = SHA256.hash(data: Data("a token's signing input".utf8))
            let signature = try old.privateKey.signature(for: digest, padding: .insecurePKCS1v1_5)
            #expect(try #require(node.signingKeys.ring.key(kid: old.kid)).publicKey.isValidSignature(signature, for: digest, padding: .insecurePKCS1v1_5))
            for _ in 0..<2 {
                let ring = try await DeploymentKeys.rotate(store: a, keyEncryption: nil, now: clock.now)
                #expect(ring.first?.role == "current")
                await node.refreshSigningKeys(force: true)
                #expect(node.signingKey.kid == ring.first?.kid)
                #expect(Self.sameKey(try await ReleaseBeforeRings.load(store: b), node.signingKey), "the top-level key follows the rotation")
            }
        }
    }

    @Test("the single key the release before stored becomes the ring's current key, kid unchanged, still readable by that release")
    func singleKeyUpgraded() async throws {
        try await KeyRingTests.withTwoStores { a, b in
            try await a.migrate()
            let key = try await ReleaseBeforeRings.create(store: b)
            let node = try await TesseraApp.make(store: a, clock: TestClock())
            #expect(Self.sameKey(node.signingKey, key))
            #expect(node.signingKeys.ring.next.kid != key.kid)
            #expect(Self.sameKey(try await ReleaseBeforeRings.load(store: b), key))
        }
    }

    @Test("a ring stored without the top-level key (as written before it was kept there) gets it at the next start")
    func ringWithoutTopLevelKey() async throws {
        try await KeyRingTests.withTwoStores { a, b in
            let clock = TestClock()
            let ring = try await TesseraApp.make(store: a, clock: clock).signingKeys.ring
            let secret = DeploymentSecret.signingKeys
            guard case .object(var stripped) = ring.json else { Issue.record("the ring is not an object"); return }
            stripped["kid"] = nil
            stripped["pem"] = nil
            let written = JSONValue.object(stripped)
            try await a.write { tx in try await tx.putSetting(tenant: secret.tenant, key: secret.key, value: written) }
            #expect(try await ReleaseBeforeRings.load(store: b) == nil)
            let node = try await TesseraApp.make(store: a, clock: clock)
            #expect(node.signingKey.kid == ring.current.kid)
            #expect(Self.sameKey(try await ReleaseBeforeRings.load(store: b), ring.current))
        }
    }

    @Test("a ring sealed with a key-encryption key is unreadable to the release before (turn the key on once every node runs this release)")
    func sealedRingUnreadable() async throws {
        try await KeyRingTests.withTwoStores { a, b in
            let kek = try KeyEncryptionKey(base64: Data(repeating: 7, count: 32).base64EncodedString())
            _ = try await TesseraApp.make(store: a, clock: TestClock(), keyEncryption: kek)
            #expect(try await ReleaseBeforeRings.load(store: b) == nil)
        }
    }

    /// Records a step of a newer build in `store`'s schema, as that build's migration would.
    static func recordNewerStep(_ store: SQLDirectoryStore, _ number: Int, minimumReader: Int?) async throws {
        _ = try await store.backend.withWriteSession {
            try await $0.execute("INSERT INTO schema_migrations (version, summary, minimum_reader) VALUES (?, ?, ?)",
                                 [.int(Int64(number)), .text("a newer release's step"), minimumReader.map { .int(Int64($0)) } ?? .null])
        }
    }

    /// The databases a rolling upgrade is checked on: an SQLite file (one node's data folder) and, when
    /// TESSERA_TEST_POSTGRES_URL names a server, PostgreSQL (the database a cluster's nodes share).
    static var databases: [String] {
        var databases = ["sqlite file"]
        if let url = ProcessInfo.processInfo.environment["TESSERA_TEST_POSTGRES_URL"], !url.isEmpty { databases.append(url) }
        return databases
    }

    static func raw(_ store: SQLDirectoryStore, _ sql: String) async throws {
        _ = try await store.backend.withWriteSession { try await $0.execute(sql, []) }
    }

    @Test("/readyz: ready on a newer build's schema that only added; 503 saying so when its step needs a newer reader",
          arguments: Self.databases)
    func readinessOnANewerSchema(_ database: String) async throws {
        try await SharedDatabase.withTwoStores(database) { store, _ in
            // The schema's verdict is what is tested, not the 2-second answer limit (a loaded machine's PostgreSQL took
            // longer and the node was reported unready for that).
            let readiness = Readiness(store: store, logger: Logger(label: "test"), timeout: .seconds(60))
            let latest = SQLDirectoryStore.migrationSteps.count
            try await Self.recordNewerStep(store, latest + 1, minimumReader: nil)
            let compatible = await ReadinessTests.get(readiness)
            #expect(compatible.status == 200, "\(compatible.text)")
            try await Self.recordNewerStep(store, latest + 2, minimumReader: latest + 2)
            let newer = await ReadinessTests.get(readiness)
            #expect(newer.status == 503 && newer.errorCode == "ServiceUnavailable", "\(newer.text)")
            let message = newer.json["error"]?["message"]?.stringValue ?? ""
            #expect(message.contains("newer than this Tessera") && message.contains("step \(latest + 2)"), "\(message)")
        }
    }

    /// A node of the next release beside one of this build on one database, the next release played by a node of this
    /// build on the schema that release's migration leaves (a column and a table added, its step recorded as only
    /// adding), with rows carrying its column. The release before itself is not built here: that is a second full
    /// build (`scripts/check-rolling-upgrade` runs it by hand on SQLite).
    @Test("this build beside the next release on one database: it starts on that release's added schema, both sign with one key, accept each other's tokens and read each other's writes; a contracting step stops it",
          arguments: Self.databases)
    func besideTheNextRelease(_ database: String) async throws {
        try await SharedDatabase.withTwoStores(database) { upgraded, old in
            let clock = TestClock()
            let next = try await TesseraApp.make(store: upgraded, clock: clock)
            let latest = SQLDirectoryStore.migrationSteps.count
            // The next release's migration: expand only.
            try await Self.raw(upgraded, "ALTER TABLE objects ADD COLUMN next_release_note TEXT")
            try await Self.raw(upgraded, "CREATE TABLE next_release_things (id TEXT PRIMARY KEY, body TEXT NOT NULL)")
            try await Self.recordNewerStep(upgraded, latest + 1, minimumReader: nil)
            // A node of this build (re)starting meanwhile, as `serve` does: migrate (nothing to apply), then the key ring.
            let this = try await TesseraApp.make(store: old, clock: clock)
            #expect(try await old.pendingMigrations().isEmpty)
            #expect(this.signingKey.kid == next.signingKey.kid, "one key ring, one current key")
            let tenant = try await TenantProvisioner(directory: next.directory).create(name: "Contoso", domain: "contoso.test")
            let onNext = Harness(app: next, clock: clock, tenant: tenant), onThis = Harness(app: this, clock: clock, tenant: tenant)
            let fromNext = try await onNext.accessToken(), fromThis = try await onThis.accessToken()
            for token in [fromNext, fromThis] {
                #expect(await onNext.graph("GET", "users", token: token).status == 200)
                #expect(await onThis.graph("GET", "users", token: token).status == 200)
            }
            for (writer, reader, token, name) in [(onThis, onNext, fromThis, "this"), (onNext, onThis, fromNext, "next")] {
                let created = await writer.graph("POST", "groups", token: token, json: [
                    "displayName": .string("written by \(name)"), "mailEnabled": false, "mailNickname": .string(name), "securityEnabled": true,
                ])
                #expect(created.status == 201, "\(created.text)")
                let id = try #require(created.json["id"]?.stringValue)
                // The next release fills its column on what it writes; this build reads the rows all the same.
                try await Self.raw(upgraded, "UPDATE objects SET next_release_note = 'kept by the next release'")
                let read = await reader.graph("GET", "groups/\(id)", token: token)
                #expect(read.status == 200 && read.json["displayName"]?.stringValue == "written by \(name)", "\(read.text)")
                let updated = await reader.graph("PATCH", "groups/\(id)", token: token, json: ["description": "edited by the other node"])
                #expect(updated.status == 204, "\(updated.text)")
                #expect(await writer.graph("GET", "groups/\(id)", token: token).json["description"]?.stringValue == "edited by the other node")
            }
            #expect(await ReadinessTests.get(Readiness(store: old, logger: Logger(label: "test"))).status == 200)

            // The release after that contracts (drops what this build reads): a node of this build must stop.
            try await Self.recordNewerStep(upgraded, latest + 2, minimumReader: latest + 1)
            let readiness = await ReadinessTests.get(Readiness(store: old, logger: Logger(label: "test")))
            #expect(readiness.status == 503, "\(readiness.text)")
            await #expect(throws: SchemaNewerThanBuild.self) { _ = try await TesseraApp.make(store: old, clock: clock) }
        }
    }
}
