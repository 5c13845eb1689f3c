import Foundation
@testable import Server
import Store
import TesseraCore
import TesseraTesting

/// A Tessera over an in-memory SQLite store, driven through `TesseraApp.handle` (no socket).
struct Harness {
    let app: TesseraApp
    let clock: TestClock
    let tenant: ProvisionedTenant
    static let base = "https://tessera.test"

    /// Runs `body` against a fresh Tessera, closing its store afterwards however `body` ends.
    static func run(_ body: (Harness) async throws -> Void) async throws {
        let store = try await SQLDirectoryStore.open(":memory:")
        do {
            let clock = TestClock()
            let app = try await TesseraApp.make(store: store, clock: clock, maxBodyBytes: 64 * 1024)
            let tenant = try await TenantProvisioner(directory: app.directory).create(name: "Contoso", domain: "contoso.test")
            try await body(Harness(app: app, clock: clock, tenant: tenant))
            try await store.shutdown()
        } catch {
            try? await store.shutdown()
            throw error
        }
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

    /// A Graph call with a bearer token; JSON bodies are serialised.
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
