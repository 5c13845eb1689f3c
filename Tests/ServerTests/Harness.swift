import Foundation
import Testing
@testable import Server
import Store
import TesseraCore
import TesseraTesting

/// A Tessera driven through `TesseraApp.handle` (no socket), over an SQLite file in a folder of its own, opened
/// as `tessera serve` opens it: one writer and separate read-only readers, so a write inside a read transaction
/// fails here as it would in production (an in-memory database shares one connection and would let it pass).
struct Harness {
    let app: TesseraApp
    let clock: TestClock
    let tenant: ProvisionedTenant
    static let base = "https://tessera.test"

    /// Runs `body` against a fresh Tessera (with `network`'s trusted proxies and `countries` as its IP-to-country
    /// database, none by default, and `keyEncryption` sealing its keys, none by default); afterwards waits for its
    /// background jobs, closes its store and removes its folder, however `body` ends.
    static func run(network: NetworkPolicy = .init(), countries: CountryDatabase = .empty, keyEncryption: KeyEncryptionKey? = nil,
                    _ body: (Harness) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try await SQLDirectoryStore.open(folder.appendingPathComponent("tessera.sqlite").path)
        var app: TesseraApp?
        do {
            let clock = TestClock()
            try await seedSigningKeys(store, now: clock.now)
            app = try await TesseraApp.make(store: store, clock: clock, maxBodyBytes: 64 * 1024, network: network, countries: countries,
                                          keyEncryption: keyEncryption)
            let tenant = try await TenantProvisioner(directory: app!.directory).create(name: "Contoso", domain: "contoso.test")
            try await body(Harness(app: app!, clock: clock, tenant: tenant))
            await app?.jobs.idle()
            try await store.shutdown()
        } catch {
            await app?.jobs.idle()
            try? await store.shutdown()
            throw error
        }
    }

    /// Two RSA keys made once per test process. Making one takes about a quarter of a second in a debug build, and
    /// every harness made two (the ring's current and next): more than half the Swift suite's processor time, which
    /// starved its time-limited tests when the whole suite ran at once.
    private static let signingKeys = Result { (current: try SigningKey.generate(), next: try SigningKey.generate()) }

    /// Stores the shared keys as the deployment's ring, made now, as a second node finds the first one's, so
    /// `TesseraApp.make` loads them instead of making its own. (No test compares keys across harnesses: the tests of
    /// keys made on a first start and of separate deployments make their apps without this.)
    private static func seedSigningKeys(_ store: any DirectoryStore, now: Date) async throws {
        let keys = try signingKeys.get()
        let ring = SigningKeyRing(current: keys.current, next: keys.next, previous: nil, rotatedAt: now)
        try await store.migrate()
        let secret = DeploymentSecret.signingKeys
        try await store.write { tx in try await tx.putSetting(tenant: secret.tenant, key: secret.key, value: ring.json) }
    }

    func send(_ method: String, _ path: String, query: [(name: String, value: String)] = [], headers: [String: String] = [:],
              body: [UInt8] = []) async -> APIResponse {
        await app.handle(APIRequest(method: method, path: path, query: query, headers: headers, body: body, baseURL: Self.base))
    }

    func token(tenant: String? = nil, clientId: String? = nil, secret: String? = nil, scope: String = "https://graph.microsoft.com/.default",
               grant: String = "client_credentials") async -> APIResponse {
        func enc(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? s }
        let form = "grant_type=\(enc(grant))&client_id=\(enc(clientId ?? self.tenant.clientId))&client_secret=\(enc(secret ?? self.tenant.clientSecret))&scope=\(enc(scope))"
        return await send("POST", "/\(tenant ?? self.tenant.tenantId)/oauth2/v2.0/token",
                          headers: ["content-type": "application/x-www-form-urlencoded"], body: Array(form.utf8))
    }

    func accessToken(clientId: String? = nil, secret: String? = nil, tenant: String? = nil) async throws -> String {
        let response = await token(tenant: tenant, clientId: clientId, secret: secret)
        guard response.status == 200, let token = try JSONParser.parse(response.body)["access_token"]?.stringValue else {
            throw DirectoryError.badRequest("token request failed: \(String(decoding: response.body, as: UTF8.self))")
        }
        return token
    }

    /// A client credentials request for the tenant's automation app (with `secret`, its own by default) as if it came
    /// from `address` (what the HTTP edge would have established).
    func clientCredentials(secret: String? = nil, from address: String) async -> APIResponse {
        let form = [("grant_type", "client_credentials"), ("client_id", tenant.clientId), ("client_secret", secret ?? tenant.clientSecret),
                    ("scope", "https://graph.microsoft.com/.default")]
        var request = APIRequest(method: "POST", path: "/\(tenant.tenantId)/oauth2/v2.0/token", query: [],
                                 headers: ["content-type": "application/x-www-form-urlencoded"],
                                 body: Array(AuthorizeEndpoint.encode(form).utf8), baseURL: Self.base)
        request.clientAddress = address
        return await app.handle(request)
    }

    /// A Graph call with a bearer token; JSON bodies are serialised.
    /// A new user of this tenant holding `role` (a template id; none when nil), as the Graph caller it is.
    func caller(named name: String, role: String?) async throws -> Caller {
        let token = try await accessToken()
        let id = try await AdminCenterTests.createUser(self, token, name)
        if let role { try await assign(role: role, to: id) }
        let tenantID = tenant.tenantId
        let user = try #require(try await app.store.read { tx in try await tx.object(tenant: tenantID, id: id) })
        return try await Caller.user(tenant: tenantID, user: user, scopes: nil, app: app)
    }

    /// Assigns the directory role `role` (a template id) to `principal` at the tenant's scope.
    func assign(role: String, to principal: String) async throws {
        let assigned = await graph("POST", "roleManagement/directory/roleAssignments", token: try await accessToken(), json: [
            "principalId": .string(principal), "roleDefinitionId": .string(role), "directoryScopeId": "/"])
        #expect(assigned.status == 201, "\(assigned.text)")
    }

    /// A Graph request made as `caller` (as the admin center makes them), without a token.
    func graph(_ method: String, _ path: String, _ json: JSONValue? = nil, as caller: Caller) async throws -> APIResponse {
        try await GraphAPI(app: app).handle(APIRequest(method: method, path: "/v1.0/" + path, query: [],
                                                       headers: ["content-type": "application/json"],
                                                       body: json?.serializedBytes ?? [], baseURL: Self.base), as: caller)
    }

    func graph(_ method: String, _ path: String, token: String, json: JSONValue? = nil, query: [(name: String, value: String)] = [],
               headers: [String: String] = [:]) async -> APIResponse {
        var all = headers
        all["authorization"] = "Bearer \(token)"
        if json != nil { all["content-type"] = "application/json" }
        return await send(method, "/v1.0/" + path, query: query, headers: all, body: json?.serializedBytes ?? [])
    }
}

extension APIResponse {
    var json: JSONValue { (try? JSONParser.parse(body)) ?? .null }
    var errorCode: String? { json["error"]?["code"]?.stringValue ?? json["error"]?.stringValue }
}
