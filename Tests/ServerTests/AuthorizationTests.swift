import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

@Suite("Identity platform and authorisation")
struct AuthorizationTests {
    @Test("client credentials issue an RS256 token with Entra's claims")
    func issuesToken() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let jwt = try #require(JWT.decode(token))
            #expect(jwt.header["alg"] == "RS256")
            #expect(jwt.verify(with: h.app.signingKey.publicKey))
            #expect(jwt.claims["tid"]?.stringValue == h.tenant.tenantId)
            #expect(jwt.claims["iss"]?.stringValue == "\(Harness.base)/\(h.tenant.tenantId)/v2.0")
            #expect(jwt.claims["appid"]?.stringValue == h.tenant.clientId)
            #expect(jwt.claims["roles"]?.arrayValue?.count == TenantProvisioner.bootstrapPermissions.count)
        }
    }

    @Test("the token endpoint refuses what Entra refuses", arguments: [
        ("wrong-secret", "invalid_client", 401), ("bad-scope", "invalid_scope", 400), ("bad-grant", "unsupported_grant_type", 400),
        ("unknown-client", "unauthorized_client", 400), ("unknown-tenant", "invalid_tenant", 400),
    ])
    func tokenErrors(_ scenario: String, _ error: String, _ status: Int) async throws {
        try await Harness.run { h in
            let response: APIResponse = switch scenario {
            case "wrong-secret": await h.token(secret: "nope")
            case "bad-scope": await h.token(scope: "User.Read")
            case "bad-grant": await h.token(grant: "password")
            case "unknown-client": await h.token(clientId: Identifier.make())
            default: await h.token(tenant: "nowhere.test")
            }
            #expect(response.status == status)
            #expect(response.json["error"]?.stringValue == error)
            #expect(!String(decoding: response.body, as: UTF8.self).contains(h.tenant.clientSecret))
        }
    }

    @Test("Graph refuses missing, forged and expired tokens with 401 and WWW-Authenticate")
    func refusesBadTokens() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            var parts = token.split(separator: ".").map(String.init)
            parts[1] = Base64URL.encode(Data(#"{"tid":"x","roles":["Directory.ReadWrite.All"]}"#.utf8))
            for bad in ["", "garbage", parts.joined(separator: ".")] {
                let response = await h.graph("GET", "users", token: bad)
                #expect(response.status == 401)
                #expect(response.errorCode == "InvalidAuthenticationToken")
                #expect(response.headers.contains { $0.name == "WWW-Authenticate" })
            }
            h.clock.advance(2 * 3600)
            #expect(await h.graph("GET", "users", token: token).status == 401)
        }
    }

    @Test("a token without the permission gets 403 Authorization_RequestDenied")
    func enforcesPermissions() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let app = await h.graph("POST", "applications", token: admin, json: ["displayName": "Reader"])
            let appId = try #require(app.json["appId"]?.stringValue), appObjectId = try #require(app.json["id"]?.stringValue)
            let sp = await h.graph("POST", "servicePrincipals", token: admin, json: ["appId": .string(appId)])
            let spId = try #require(sp.json["id"]?.stringValue)
            let graphSp = await h.graph("GET", "servicePrincipals", token: admin,
                                        query: [("$filter", "appId eq '\(GraphPermissions.graphAppId)'")])
            let graphSpId = try #require(graphSp.json["value"]?.arrayValue?.first?["id"]?.stringValue)
            let grant = await h.graph("POST", "servicePrincipals/\(spId)/appRoleAssignments", token: admin, json: [
                "principalId": .string(spId), "resourceId": .string(graphSpId),
                "appRoleId": .string(try #require(GraphPermissions.byValue("User.Read.All")).id)])
            #expect(grant.status == 201)
            let secret = await h.graph("POST", "applications/\(appObjectId)/addPassword", token: admin, json: ["passwordCredential": ["displayName": "t"]])
            let reader = try await h.accessToken(clientId: appId, secret: try #require(secret.json["secretText"]?.stringValue))
            #expect(await h.graph("GET", "users", token: reader).status == 200)
            let denied = await h.graph("POST", "users", token: reader, json: ["displayName": "x"])
            #expect(denied.status == 403)
            #expect(denied.errorCode == "Authorization_RequestDenied")
            #expect(await h.graph("GET", "groups", token: reader).status == 403)
        }
    }

    @Test("a removed secret and a revoked permission stop working at the next token request, despite the token cache")
    func revocationReachesTokenIssuance() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let appObject = try #require(await h.graph("GET", "applications", token: admin,
                                                       query: [("$filter", "appId eq '\(h.tenant.clientId)'")]).json["value"]?.arrayValue?.first)
            let appObjectId = try #require(appObject["id"]?.stringValue)
            let added = await h.graph("POST", "applications/\(appObjectId)/addPassword", token: admin, json: ["passwordCredential": ["displayName": "second"]])
            let second = try #require(added.json["secretText"]?.stringValue), keyId = try #require(added.json["keyId"]?.stringValue)
            #expect(await h.token(secret: second).status == 200)  // now cached
            #expect(await h.graph("POST", "applications/\(appObjectId)/removePassword", token: admin, json: ["keyId": .string(keyId)]).status == 204)
            let refused = await h.token(secret: second)
            #expect(refused.status == 401)
            #expect(refused.json["error"]?.stringValue == "invalid_client")

            // Revoke AuditLog.Read.All: the next token no longer carries the role.
            let sp = try #require(await h.graph("GET", "servicePrincipals", token: admin,
                                                query: [("$filter", "appId eq '\(h.tenant.clientId)'")]).json["value"]?.arrayValue?.first?["id"]?.stringValue)
            let auditRole = try #require(GraphPermissions.byValue("AuditLog.Read.All")).id
            let assignments = await h.graph("GET", "servicePrincipals/\(sp)/appRoleAssignments", token: admin)
            let assignment = try #require(assignments.json["value"]?.arrayValue?.first { $0["appRoleId"]?.stringValue == auditRole }?["id"]?.stringValue)
            #expect(await h.graph("DELETE", "servicePrincipals/\(sp)/appRoleAssignments/\(assignment)", token: admin).status == 204)
            let roles = try #require(JWT.decode(try await h.accessToken())).claims["roles"]?.arrayValue?.compactMap(\.stringValue) ?? []
            #expect(!roles.contains("AuditLog.Read.All"))
            #expect(roles.contains("User.ReadWrite.All"))
        }
    }

    @Test("a token from one tenant never reads another tenant's objects")
    func tenantIsolation() async throws {
        try await Harness.run { h in
            let other = try await TenantProvisioner(directory: h.app.directory).create(name: "Fabrikam", domain: "fabrikam.test")
            let otherToken = try await h.accessToken(clientId: other.clientId, secret: other.clientSecret, tenant: other.tenantId)
            let adminId = try await h.app.store.read { tx in
                try await tx.holder(tenant: h.tenant.tenantId, key: UniqueKey("userPrincipalName", h.tenant.adminUserPrincipalName))
            }
            let response = await h.graph("GET", "users/\(try #require(adminId))", token: otherToken)
            #expect(response.status == 404)
            let list = await h.graph("GET", "users", token: otherToken)
            #expect(list.json["value"]?.arrayValue?.allSatisfy { $0["userPrincipalName"]?.stringValue?.hasSuffix("@fabrikam.test") == true } == true)
            // A secret of one tenant's app does not work at another tenant's token endpoint.
            #expect(await h.token(tenant: other.tenantId).status != 200)
        }
    }
}
