import Backup
import Foundation
import Testing
@testable import Server
@testable import Store
import TesseraCore
import TesseraTesting

/// An OpenID Connect identity provider's client secret never sits in its Graph object: it is kept in the tenant's
/// `identityProviderSecrets` setting, sealed with the key-encryption key, written and removed with the object; an older
/// release's object that still holds `_clientSecret` has it moved there by migration step 16. On SQLite and PostgreSQL
/// when the test command provides one.
@Suite("Identity providers' client secrets out of their objects")
struct IdentityProviderSecretTests {
    static let kek = KeyEncryptionTests.kek
    static var databases: [String] { DeviceCARotationTests.databases }

    /// Graph's body for a provider of `domain`'s users with `secret`.
    static func provider(secret: String, domain: String = "partner.test") -> JSONValue {
        let issuer = "https://idp.\(domain)/v2.0"
        return ["@odata.type": "#microsoft.graph.oidcIdentityProvider", "displayName": .string("Partner \(domain)"), "clientId": "tessera-b2b",
                "issuer": .string(issuer), "wellKnownEndpoint": .string("\(issuer)/.well-known/openid-configuration"), "responseType": "code",
                "scope": "openid profile email", "domains": [.string(domain)],
                "clientAuthentication": ["@odata.type": "#microsoft.graph.oidcClientSecretAuthentication", "clientSecret": .string(secret)]]
    }

    /// An object as the store holds it: its body's text, its stored digest and its version.
    static func rawObject(_ store: SQLDirectoryStore, tenant: String, id: String) async throws -> (body: String, digest: String, version: Int64) {
        let rows = try await store.backend.withReadSession { session in
            try await session.execute("SELECT \(store.backend.dialect.bodyText), digest, version FROM objects WHERE tenant = ? AND id = ?",
                                      [.text(tenant), .text(id)])
        }
        let row = try #require(rows.first)
        return (try #require(row[0].text), try #require(row[1].text), try #require(row[2].int))
    }

    /// The tenant's provider secrets setting as the store holds it, nil when there is none.
    static func rawSecrets(_ store: SQLDirectoryStore, tenant: String) async throws -> String? {
        try await store.backend.withReadSession { session in
            try await session.execute("SELECT value FROM settings WHERE tenant = ? AND key = ?", [.text(tenant), .text(IdentityProviderSecrets.settingKey)])
        }.first?.first?.text
    }

    /// The secrets the setting holds, opened with `sealing`.
    static func secrets(_ store: SQLDirectoryStore, tenant: String, sealing: KeySealing) async throws -> [String: JSONValue] {
        try await store.read { tx in try await sealing.read(IdentityProviderSecrets.setting(tenant: tenant), in: tx) }?.objectValue ?? [:]
    }

    /// A harness over `store`, started with `kek`, and a Global Administrator of its tenant.
    static func start(_ store: SQLDirectoryStore, kek: KeyEncryptionKey?, _ body: (Harness, Caller) async throws -> Void) async throws {
        let clock = TestClock()
        let app = try await TesseraApp.make(store: store, clock: clock, keyEncryption: kek)
        // Fabrikam: `CrossDeploymentB2BTests.caller` makes its administrator there.
        let tenant = try await TenantProvisioner(directory: app.directory).create(name: "Fabrikam", domain: "fabrikam.test")
        let h = Harness(app: app, clock: clock, tenant: tenant)
        let admin = try await CrossDeploymentB2BTests.caller(h, try await h.accessToken(), "idp-admin", role: BuiltInRoles.globalAdministrator)
        do { try await body(h, admin) } catch {
            await app.jobs.idle()
            throw error
        }
        await app.jobs.idle()
    }

    @Test("Graph's writes: the object holds no secret (its digest its body's), the tenant setting holds it sealed to the tenant; Graph shows '*****'; PATCH replaces it, DELETE removes it; a snapshot holds none",
          arguments: Self.databases)
    func graphWrites(database: String) async throws {
        try await SharedDatabase.withTwoStores(database) { store, _ in
            try await Self.start(store, kek: Self.kek) { h, admin in
                let t = h.tenant.tenantId, sealing = h.app.keySealing
                let created = try await h.graph("POST", "identity/identityProviders", Self.provider(secret: "first-secret-Q7x"), as: admin)
                #expect(created.status == 201, "\(created.text)")
                let id = try #require(created.json["id"]?.stringValue)
                #expect(created.json["clientAuthentication"]?["clientSecret"] == "*****" && !created.text.contains("first-secret-Q7x"))

                let object = try await Self.rawObject(store, tenant: t, id: id)
                #expect(object.body.contains("idp.partner.test") && !object.body.contains("_clientSecret") && !object.body.contains("first-secret-Q7x"))
                #expect(object.digest == Secrets.fingerprint(object.body))
                let raw = try #require(try await Self.rawSecrets(store, tenant: t))
                #expect(raw.contains("\"sealed\"") && raw.contains("A256GCM") && !raw.contains("first-secret-Q7x") && !raw.contains(id), "\(raw)")
                #expect(try await Self.secrets(store, tenant: t, sealing: sealing) == [id: "first-secret-Q7x"])
                // Bound to the tenant: the sealed value does not open as another tenant's.
                #expect(throws: KeyEncryptionError.self) { try sealing.open(try JSONParser.parse(raw), IdentityProviderSecrets.setting(tenant: "contoso")) }
                #expect(try await h.app.directory.identityProviderClientSecret(tenant: t, id: id, sealing: sealing) == "first-secret-Q7x")

                // A second provider keeps the first one's secret beside its own.
                let other = try await h.graph("POST", "identity/identityProviders", Self.provider(secret: "other-secret-M2k", domain: "other.test"), as: admin)
                let otherID = try #require(other.json["id"]?.stringValue)
                #expect(try await Self.secrets(store, tenant: t, sealing: sealing) == [id: "first-secret-Q7x", otherID: "other-secret-M2k"])

                // A PATCH without the secret keeps it; one with it replaces it, in the object's transaction, sealed.
                #expect(try await h.graph("PATCH", "identity/identityProviders/\(id)", ["displayName": "Partner A"], as: admin).status == 204)
                #expect(try await h.app.directory.identityProviderClientSecret(tenant: t, id: id, sealing: sealing) == "first-secret-Q7x")
                let patched = try await h.graph("PATCH", "identity/identityProviders/\(id)",
                                                ["clientAuthentication": ["@odata.type": "#microsoft.graph.oidcClientSecretAuthentication",
                                                                          "clientSecret": "second-secret-Z3p"]], as: admin)
                #expect(patched.status == 204, "\(patched.text)")
                #expect(try await h.app.directory.identityProviderClientSecret(tenant: t, id: id, sealing: sealing) == "second-secret-Z3p")
                let rewritten = try #require(try await Self.rawSecrets(store, tenant: t))
                #expect(KeyEncryptionKey.isSealed(try JSONParser.parse(rewritten)) && !rewritten.contains("second-secret-Z3p"))
                let after = try await Self.rawObject(store, tenant: t, id: id)
                #expect(after.body.contains("Partner A") && !after.body.contains("second-secret-Z3p") && !after.body.contains("_clientSecret"))
                let read = try await h.graph("GET", "identity/identityProviders/\(id)", as: admin)
                #expect(read.json["clientAuthentication"]?["clientSecret"] == "*****" && !read.text.contains("secret-"), "\(read.text)")
                let listed = try await h.graph("GET", "identity/identityProviders", as: admin)
                #expect(listed.json["value"]?.arrayValue?.count == 2 && !listed.text.contains("secret-"))

                // A snapshot (and the state it is compared with) holds no secret.
                let snapshot = try await h.app.backup.snapshot(tenant: t)
                #expect(snapshot.objectCount > 0)
                let packs = try await store.backend.withReadSession { session in
                    try await session.execute("SELECT body FROM backup_packs WHERE tenant = ?", [.text(t)])
                }.compactMap { $0.first?.text }
                #expect(!packs.isEmpty && packs.allSatisfy { !$0.contains("secret-") && !$0.contains("_clientSecret") })
                let (_, bodies) = try await h.app.backup.liveState(tenant: t)
                #expect(bodies.values.allSatisfy { !$0.contains("secret-") })

                // DELETE takes the secret with the object; the other provider's stays.
                #expect(try await h.graph("DELETE", "identity/identityProviders/\(id)", as: admin).status == 204)
                #expect(try await Self.secrets(store, tenant: t, sealing: sealing) == [otherID: "other-secret-M2k"])
                await #expect(throws: DirectoryError.self) { try await h.app.directory.identityProviderClientSecret(tenant: t, id: id, sealing: sealing) }
                #expect(try await h.graph("DELETE", "identity/identityProviders/\(otherID)", as: admin).status == 204)
                #expect(try await Self.secrets(store, tenant: t, sealing: sealing).isEmpty)
            }
        }
    }

    @Test("a sign-in through the provider redeems the code with the secret its tenant keeps sealed: a wrong one PATCHed in is refused by the provider, the right one PATCHed back signs in")
    func signInSendsTheKeptSecret() async throws {
        try await Harness.run { a in
            // Deployment B (Fabrikam, which trusts deployment A) with a key-encryption key, its network reaching A only.
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-test-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let store = try await SQLDirectoryStore.open(folder.appendingPathComponent("tessera.sqlite").path)
            do {
                let app = try await TesseraApp.make(store: store, clock: a.clock, maxBodyBytes: 64 * 1024,
                                                    outbound: LoopbackHTTP(app: a.app, base: CrossDeploymentB2BTests.World.home), keyEncryption: Self.kek)
                let tenant = try await TenantProvisioner(directory: app.directory).create(name: "Fabrikam", domain: "fabrikam.test")
                let w = try await CrossDeploymentB2BTests.world(a, Harness(app: app, clock: a.clock, tenant: tenant))
                let created = try await w.createProvider()
                let id = try #require(created.json["id"]?.stringValue, "\(created.text)")
                let raw = try #require(try await Self.rawSecrets(store, tenant: w.fabrikam))
                #expect(KeyEncryptionKey.isSealed(try JSONParser.parse(raw)) && !raw.contains(w.clientSecret))
                #expect(!(try await Self.rawObject(store, tenant: w.fabrikam, id: id)).body.contains(w.clientSecret))

                func secret(_ value: String) async -> APIResponse {
                    await w.beta("PATCH", "identity/identityProviders/\(id)", [
                        "clientAuthentication": ["@odata.type": "#microsoft.graph.oidcClientSecretAuthentication", "clientSecret": .string(value)]])
                }
                #expect(await secret("not-the-secret").status == 204)
                let invitation = await w.invite()
                #expect(invitation.status == 201, "\(invitation.text)")
                let refused = try await w.redeem(invitation)
                #expect(refused.status == 403 && refused.text.contains("AADSTS50107") && refused.text.contains("invalid_client"), "\(refused.text)")
                #expect(await secret(w.clientSecret).status == 204)
                let redeemed = try await w.redeem(invitation)
                #expect(redeemed.status == 302 && AuthorizeTests.location(redeemed) == "https://myapps.fabrikam.test/", "\(redeemed.text)")
                let signedIn = try await w.signIn()
                #expect(signedIn.status == 302 && AuthorizeTests.location(signedIn)?.hasPrefix(AuthorizeTests.spa + "?code=") == true, "\(signedIn.text)")
                await app.jobs.idle()
                try await store.shutdown()
            } catch {
                try? await store.shutdown()
                throw error
            }
        }
    }

    @Test("providers created and deleted at once on two nodes keep every other provider's secret (the setting is read and written with its row locked)",
          arguments: Self.databases)
    func concurrentWritesOnTwoNodes(database: String) async throws {
        try await SharedDatabase.withTwoStores(database) { storeA, storeB in
            let nodeA = try await TesseraApp.make(store: storeA, clock: TestClock(), keyEncryption: Self.kek)
            let nodeB = try await TesseraApp.make(store: storeB, clock: TestClock(), keyEncryption: Self.kek)
            let tenant = try await TenantProvisioner(directory: nodeA.directory).create(name: "Contoso", domain: "contoso.test").tenantId
            @Sendable func create(_ node: TesseraApp, _ domain: String) async throws -> String {
                try await node.directory.createIdentityProvider(tenant: tenant, body: try #require(Self.provider(secret: "secret-\(domain)", domain: domain).objectValue),
                                                                actor: .system, sealing: node.keySealing).id
            }
            var kept: [String: JSONValue] = [:]
            for round in 0..<4 {
                async let onA = create(nodeA, "a\(round).test")
                async let onB = create(nodeB, "b\(round).test")
                let (a, b) = try await (onA, onB)
                kept[a] = .string("secret-a\(round).test")
                kept[b] = .string("secret-b\(round).test")
            }
            #expect(try await Self.secrets(storeA, tenant: tenant, sealing: nodeA.keySealing) == kept)
            // Two deletions at once, one on each node: each takes its own secret only.
            let gone = Array(kept.keys.sorted().prefix(2))
            async let deleteA: Void = nodeA.directory.deleteIdentityProvider(tenant: tenant, id: gone[0], actor: .system, sealing: nodeA.keySealing)
            async let deleteB: Void = nodeB.directory.deleteIdentityProvider(tenant: tenant, id: gone[1], actor: .system, sealing: nodeB.keySealing)
            _ = try await (deleteA, deleteB)
            for id in gone { kept[id] = nil }
            #expect(try await Self.secrets(storeB, tenant: tenant, sealing: nodeB.keySealing) == kept)
            await nodeA.jobs.idle()
            await nodeB.jobs.idle()
        }
    }

    @Test("a rolling upgrade: a secret a node of the release before writes into the provider's object after migration 16 is the one used, and a PATCH without a secret moves it to the sealed setting",
          arguments: Self.databases)
    func secretFromTheReleaseBefore(database: String) async throws {
        try await SharedDatabase.withTwoStores(database) { store, _ in
            try await Self.start(store, kek: Self.kek) { h, admin in
                let t = h.tenant.tenantId, sealing = h.app.keySealing
                let created = try await h.graph("POST", "identity/identityProviders", Self.provider(secret: "setting-secret-P2v"), as: admin)
                let id = try #require(created.json["id"]?.stringValue)
                // What the release before does on a PATCH of the secret: the object again, the secret in its body.
                try await store.write { tx in
                    var object = try #require(try await tx.object(tenant: t, id: id))
                    let version = object.version
                    object.body[OpenIDIdentityProvider.legacySecretMember] = "older-node-secret-W5k"
                    object.version += 1
                    try await tx.update(object, expectedVersion: version)
                }
                #expect(try await h.app.directory.identityProviderClientSecret(tenant: t, id: id, sealing: sealing) == "older-node-secret-W5k")
                // A PATCH here without a secret writes the object without it and keeps that secret, sealed.
                let patched = try await h.graph("PATCH", "identity/identityProviders/\(id)", ["displayName": "Partner renamed"], as: admin)
                #expect(patched.status == 204)
                let object = try await Self.rawObject(store, tenant: t, id: id)
                #expect(!object.body.contains("_clientSecret") && !object.body.contains("older-node-secret-W5k"))
                let raw = try #require(try await Self.rawSecrets(store, tenant: t))
                #expect(KeyEncryptionKey.isSealed(try JSONParser.parse(raw)) && !raw.contains("older-node-secret-W5k"))
                #expect(try await h.app.directory.identityProviderClientSecret(tenant: t, id: id, sealing: sealing) == "older-node-secret-W5k")
            }
        }
    }

    @Test("without a key-encryption key the setting is plain, and the first start with one seals it (the same secrets)",
          arguments: Self.databases)
    func sealedAtStart(database: String) async throws {
        try await SharedDatabase.withTwoStores(database) { store, second in
            var tenant = "", id = ""
            try await Self.start(store, kek: nil) { h, admin in
                tenant = h.tenant.tenantId
                let created = try await h.graph("POST", "identity/identityProviders", Self.provider(secret: "plain-secret-H4w"), as: admin)
                id = try #require(created.json["id"]?.stringValue)
                let raw = try #require(try await Self.rawSecrets(store, tenant: tenant))
                #expect(!KeyEncryptionKey.isSealed(try JSONParser.parse(raw)) && raw.contains("plain-secret-H4w"))
                #expect(!(try await Self.rawObject(store, tenant: tenant, id: id)).body.contains("plain-secret-H4w"))
            }
            let sealed = try await TesseraApp.make(store: second, clock: TestClock(), keyEncryption: Self.kek)
            let raw = try #require(try await Self.rawSecrets(store, tenant: tenant))
            #expect(KeyEncryptionKey.isSealed(try JSONParser.parse(raw)) && !raw.contains("plain-secret-H4w"))
            #expect(try await sealed.directory.identityProviderClientSecret(tenant: tenant, id: id, sealing: sealed.keySealing) == "plain-secret-H4w")
            #expect(try await DeploymentKeys.atRest(store: store).contains { $0.name == "\(tenant)/\(IdentityProviderSecrets.settingKey)" && $0.sealed })
            await sealed.jobs.idle()
        }
    }

    @Test("migration 16: an older release's `_clientSecret` moves from each provider's object to its tenant's setting (the object written again, its digest and version following), sealed at the first start with a key-encryption key, by two nodes at once; again changes nothing",
          arguments: Self.databases)
    func migrationMovesLegacySecrets(database: String) async throws {
        try await SharedDatabase.withTwoStores(database) { store, second in
            let app = try await TesseraApp.make(store: store, clock: TestClock(), keyEncryption: nil)
            let directory = app.directory, plain = app.keySealing
            var legacy: [(tenant: String, id: String, secret: String)] = []
            for (name, domain) in [("Contoso", "contoso.test"), ("Fabrikam", "fabrikam.test")] {
                let tenant = try await TenantProvisioner(directory: directory).create(name: name, domain: domain).tenantId
                for (index, partner) in ["partner.test", "other.test"].enumerated() where name == "Contoso" || index == 0 {
                    let secret = "legacy-\(name)-\(index)-K9d"
                    let provider = try await directory.createIdentityProvider(
                        tenant: tenant, body: try #require(Self.provider(secret: secret, domain: partner).objectValue), actor: .system, sealing: plain)
                    legacy.append((tenant, provider.id, secret))
                }
            }
            // As the last release stored them: the secret in the object's body, no setting, step 16 not applied.
            let old = legacy
            try await store.write { tx in
                for (tenant, id, secret) in old {
                    var object = try #require(try await tx.object(tenant: tenant, id: id))
                    let version = object.version
                    object.body[OpenIDIdentityProvider.legacySecretMember] = .string(secret)
                    object.version += 1
                    try await tx.update(object, expectedVersion: version)
                }
            }
            try await store.backend.withWriteSession { session in
                _ = try await session.execute("DELETE FROM settings WHERE key = ?", [.text(IdentityProviderSecrets.settingKey)])
                _ = try await session.execute("DELETE FROM schema_migrations WHERE version = ?", [.int(Int64(Migrations.identityProviderSecretStep))])
            }
            var versions: [String: Int64] = [:]
            for (tenant, id, secret) in legacy {
                let old = try await Self.rawObject(store, tenant: tenant, id: id)
                #expect(old.body.contains(secret))
                versions[id] = old.version
            }
            await app.jobs.idle()

            // Two nodes start at once with a key-encryption key: the step runs once, then the setting is sealed.
            let nodes = try await withThrowingTaskGroup(of: TesseraApp.self) { group in
                for node in [store, second] { group.addTask { try await TesseraApp.make(store: node, clock: TestClock(), keyEncryption: Self.kek) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            var rows: [String] = []
            for (tenant, id, secret) in legacy {
                let object = try await Self.rawObject(store, tenant: tenant, id: id)
                #expect(!object.body.contains("_clientSecret") && !object.body.contains(secret) && object.body.contains("\"issuer\""))
                #expect(object.digest == Secrets.fingerprint(object.body) && object.version == versions[id].map { $0 + 1 })
                let raw = try #require(try await Self.rawSecrets(store, tenant: tenant))
                #expect(KeyEncryptionKey.isSealed(try JSONParser.parse(raw)) && !raw.contains(secret))
                for node in nodes {
                    #expect(try await node.directory.identityProviderClientSecret(tenant: tenant, id: id, sealing: node.keySealing) == secret)
                }
                rows += [object.body, object.digest, raw]
            }
            let opened = try await Self.secrets(store, tenant: legacy[0].tenant, sealing: nodes[0].keySealing)
            #expect(opened.count == 2 && opened[legacy[1].id]?.stringValue == legacy[1].secret)
            let recorded = try await store.backend.withReadSession { session in
                try await session.execute("SELECT minimum_reader FROM schema_migrations WHERE version = ?", [.int(Int64(Migrations.identityProviderSecretStep))])
            }
            // No minimum reader: the release before keeps running beside this one (a rolling upgrade).
            #expect(recorded.count == 1 && recorded.first?.first?.int == nil)

            // Idempotent: migrating and starting again rewrites nothing.
            try await store.migrate()
            let again = try await TesseraApp.make(store: second, clock: TestClock(), keyEncryption: Self.kek)
            var rowsAgain: [String] = []
            for (tenant, id, _) in legacy {
                let object = try await Self.rawObject(store, tenant: tenant, id: id)
                rowsAgain += [object.body, object.digest, try #require(try await Self.rawSecrets(store, tenant: tenant))]
            }
            #expect(rowsAgain == rows)
            for node in nodes + [again] { await node.jobs.idle() }
        }
    }
}
