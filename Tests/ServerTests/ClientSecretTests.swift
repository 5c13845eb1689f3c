import Foundation
import Testing
@testable import Server
@testable import Store
import TesseraCore
import TesseraTesting

/// Client secrets at the token endpoint, with their digests in credential records: a secret authenticates from its
/// addPassword until its removePassword (at once, whatever the token endpoint cached), Graph never shows a digest, and
/// an upgraded deployment's secrets keep working.
@Suite("Client secrets in credential records")
struct ClientSecretTests {
    /// An application created through Graph, with its service principal: its object id and app id.
    static func application(_ h: Harness, _ token: String) async throws -> (id: String, appID: String) {
        let app = await h.graph("POST", "applications", token: token, json: ["displayName": "Daemon"])
        let appID = try #require(app.json["appId"]?.stringValue)
        _ = await h.graph("POST", "servicePrincipals", token: token, json: ["appId": .string(appID)])
        return (try #require(app.json["id"]?.stringValue), appID)
    }

    static func basic(_ h: Harness, _ appID: String, _ secret: String) async -> APIResponse {
        let credentials = Data("\(appID):\(secret.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? secret)".utf8)
        return await TokenGrantHardeningTests.post(h, "token", [("grant_type", "client_credentials"),
                                                                ("scope", "https://graph.microsoft.com/.default")],
                                                   headers: ["authorization": "Basic \(credentials.base64EncodedString())"])
    }

    @Test("a secret authenticates (client_secret_post and _basic) until removePassword ends it at once; Graph shows no digest")
    func addAndRemove() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let (id, appID) = try await Self.application(h, admin)
            let added = await h.graph("POST", "applications/\(id)/addPassword", token: admin,
                                      json: ["passwordCredential": ["displayName": "daemon"]])
            let secret = try #require(added.json["secretText"]?.stringValue), keyId = try #require(added.json["keyId"]?.stringValue)
            #expect(!added.text.contains("_hash"))

            #expect(await h.token(clientId: appID, secret: secret).status == 200)
            #expect(await Self.basic(h, appID, secret).status == 200)
            let wrong = await h.token(clientId: appID, secret: String(secret.dropLast()) + (secret.hasSuffix("a") ? "b" : "a"))
            #expect(wrong.status == 401 && wrong.json["error"] == "invalid_client")

            // Graph answers the credential's properties, never a digest, however it is asked.
            for query: [(name: String, value: String)] in [[], [("$select", "passwordCredentials")]] {
                let read = await h.graph("GET", "applications/\(id)", token: admin, query: query)
                #expect(read.status == 200 && read.json["passwordCredentials"]?.arrayValue?.first?["keyId"]?.stringValue == keyId)
                #expect(!read.text.contains("_hash") && !read.text.contains("s1$"))
            }
            // Nor does the stored object.
            let stored = try #require(try await h.app.store.read { tx in try await tx.object(tenant: h.tenant.tenantId, id: id) })
            #expect(stored.body["passwordCredentials"]?.arrayValue?.allSatisfy { $0.objectValue?.keys.contains("_hash") == false } == true)

            let removed = await h.graph("POST", "applications/\(id)/removePassword", token: admin, json: ["keyId": .string(keyId)])
            #expect(removed.status == 204, "\(removed.text)")
            let after = await h.token(clientId: appID, secret: secret)
            #expect(after.status == 401 && after.json["error"] == "invalid_client")
            #expect(await Self.basic(h, appID, secret).status == 401)
        }
    }

    @Test("a secret added to the service principal authenticates as its application, until the service principal's removePassword; never as another application")
    func servicePrincipalSecret() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let (_, appID) = try await Self.application(h, admin)
            let (_, otherAppID) = try await Self.application(h, admin)
            let principals = await h.graph("GET", "servicePrincipals", token: admin, query: [("$filter", "appId eq '\(appID)'")])
            let principal = try #require(principals.json["value"]?.arrayValue?.first?["id"]?.stringValue)
            let added = await h.graph("POST", "servicePrincipals/\(principal)/addPassword", token: admin,
                                      json: ["passwordCredential": ["displayName": "on the principal"]])
            #expect(added.status == 200, "\(added.text)")
            let secret = try #require(added.json["secretText"]?.stringValue), keyId = try #require(added.json["keyId"]?.stringValue)

            #expect(await h.token(clientId: appID, secret: secret).status == 200)
            #expect(await Self.basic(h, appID, secret).status == 200)
            let elsewhere = await h.token(clientId: otherAppID, secret: secret)
            #expect(elsewhere.status == 401 && elsewhere.json["error"] == "invalid_client")

            let removed = await h.graph("POST", "servicePrincipals/\(principal)/removePassword", token: admin, json: ["keyId": .string(keyId)])
            #expect(removed.status == 204, "\(removed.text)")
            let after = await h.token(clientId: appID, secret: secret)
            #expect(after.status == 401 && after.json["error"] == "invalid_client")
        }
    }

    @Test("a secret whose record is gone, or that its application no longer lists, does not authenticate")
    func recordAndListingBothNeeded() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let (id, appID) = try await Self.application(h, admin)
            let first = await h.graph("POST", "applications/\(id)/addPassword", token: admin, json: ["passwordCredential": [:]])
            let second = await h.graph("POST", "applications/\(id)/addPassword", token: admin, json: ["passwordCredential": [:]])
            let listedOnly = try #require(first.json["secretText"]?.stringValue), recordOnly = try #require(second.json["secretText"]?.stringValue)
            let t = h.tenant.tenantId
            // What a recovery of an older copy of the app can leave: an entry whose record is gone (a purge deleted it),
            // and a record of an entry the older copy does not list.
            let firstKey = try #require(first.json["keyId"]?.stringValue), secondKey = try #require(second.json["keyId"]?.stringValue)
            #expect(try await h.app.store.write { tx in try await tx.deleteCredential(tenant: t, kind: .clientSecret, id: firstKey) })
            var older = try #require(try await h.app.store.read { tx in try await tx.object(tenant: t, id: id) })
            let listed = older.body["passwordCredentials"]?.arrayValue ?? []
            older.body["passwordCredentials"] = .array(listed.filter { $0["keyId"]?.stringValue != secondKey })
            let reverted = try await h.app.directory.apply([.revert(older)], tenant: t, actor: .system)
            #expect(reverted.count == 1 && (try? reverted[0].get()) != nil)
            #expect(await h.token(clientId: appID, secret: listedOnly).status == 401)
            #expect(await h.token(clientId: appID, secret: recordOnly).status == 401)
        }
    }

    @Test("after the upgrade, a secret the last release added (its digest in the application) still works, and the app holds none")
    func upgradedSecretStillWorks() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let store = try #require((h.app.store as? InstrumentedStore)?.base as? SQLDirectoryStore)
            let (id, appID) = try await Self.application(h, admin)
            let t = h.tenant.tenantId, keyId = Identifier.make(), secret = Secrets.makeClientSecret()
            // As the last release stored it (DirectoryService.addPassword), with the step not yet run.
            try await store.backend.withWriteSession { session in
                _ = try await session.execute("DELETE FROM schema_migrations WHERE version = ?", [.int(Int64(Migrations.clientSecretStep))])
            }
            try await store.write { tx in
                var object = try #require(try await tx.object(tenant: t, id: id))
                let version = object.version
                object.body["passwordCredentials"] = [[
                    "keyId": .string(keyId), "displayName": "legacy", "hint": .string(String(secret.prefix(3))),
                    "startDateTime": "2026-01-01T00:00:00Z", "endDateTime": "2030-01-01T00:00:00Z", "customKeyIdentifier": nil,
                    "secretText": nil, "_hash": .string(Secrets.digest(secret)),
                ]]
                object.version += 1
                try await tx.update(object, expectedVersion: version)
            }
            try await h.app.store.migrate()

            let issued = await h.token(clientId: appID, secret: secret)
            #expect(issued.status == 200, "\(issued.text)")
            let read = await h.graph("GET", "applications/\(id)", token: admin)
            #expect(read.json["passwordCredentials"]?.arrayValue?.first?["keyId"]?.stringValue == keyId && !read.text.contains("_hash"))
            // And removing it ends it.
            _ = await h.graph("POST", "applications/\(id)/removePassword", token: admin, json: ["keyId": .string(keyId)])
            #expect(await h.token(clientId: appID, secret: secret).status == 401)
        }
    }
}
