import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

@Suite("Governance invitations (beta): a tenant invites another of the deployment to govern it")
struct GovernanceInvitationTests {
    @Test("Contoso invites Fabrikam: Microsoft's shape, 30 days, seen by both and audited in both; a third tenant sees nothing; withdrawn from both")
    func inviteListAndDelete() async throws {
        try await Harness.run { h in
            let contoso = try await h.caller(named: "contosoga", role: BuiltInRoles.globalAdministrator)
            let fabrikam = try await TenantGovernanceRelationshipTests.other(h, name: "Fabrikam", domain: "fabrikam.test")
            let northwind = try await TenantGovernanceRelationshipTests.other(h, name: "Northwind", domain: "northwind.test")
            let fab = fabrikam.tenant.tenantId
            try await Self.receiveInvitations(h, fabrikam.globalAdmin)
            let created = try await TenantGovernanceRelationshipTests.call(h, "POST", "governanceInvitations", ["governingTenantId": .string(fab)],
                                                                           as: contoso)
            #expect(created.status == 201, "\(created.text)")
            #expect(created.json["@odata.type"] == "#microsoft.graph.tenantGovernanceServices.governanceInvitation")
            #expect(created.json["governingTenantId"]?.stringValue == fab && created.json["governingTenantName"] == "Fabrikam")
            #expect(created.json["governedTenantId"]?.stringValue == h.tenant.tenantId && created.json["governedTenantName"] == "Contoso")
            let id = try #require(created.json["id"]?.stringValue)
            let start = try #require(created.json["createdDateTime"]?.stringValue.flatMap(Timestamp.parse))
            let end = try #require(created.json["expirationDateTime"]?.stringValue.flatMap(Timestamp.parse))
            #expect(end.timeIntervalSince(start) == 30 * 86_400)

            let received = try await TenantGovernanceRelationshipTests.call(h, "GET", "governanceInvitations", as: fabrikam.globalAdmin)
            #expect(received.json["value"]?.arrayValue?.map { $0["id"]?.stringValue } == [id], "\(received.text)")
            let third = try await TenantGovernanceRelationshipTests.call(h, "GET", "governanceInvitations", as: northwind.globalAdmin)
            #expect(third.json["value"]?.arrayValue?.isEmpty == true)
            #expect(try await TenantGovernanceRelationshipTests.call(h, "GET", "governanceInvitations/\(id)", as: northwind.globalAdmin).status == 404)
            #expect(try await TenantGovernanceRelationshipTests.call(h, "POST", "governanceInvitations", ["governingTenantId": .string(fab)],
                                                                     as: contoso).status == 409)

            let withdrawn = try await TenantGovernanceRelationshipTests.call(h, "DELETE", "governanceInvitations/\(id)", as: fabrikam.globalAdmin)
            #expect(withdrawn.status == 204, "\(withdrawn.text)")
            for caller in [contoso, fabrikam.globalAdmin] {
                #expect(try await TenantGovernanceRelationshipTests.call(h, "GET", "governanceInvitations/\(id)", as: caller).status == 404)
            }
            let fabToken = try await h.accessToken(clientId: fabrikam.tenant.clientId, secret: fabrikam.tenant.clientSecret, tenant: fab)
            for token in [try await h.accessToken(), fabToken] {
                let audit = await h.graph("GET", "auditLogs/directoryAudits", token: token).json["value"]?.arrayValue ?? []
                #expect(audit.contains { $0["activityDisplayName"] == "Create governance invitation" }
                    && audit.contains { $0["activityDisplayName"] == "Delete governance invitation" })
            }
        }
    }

    /// The tenant of `admin` (its Global Administrator) lets other tenants send it governance invitations.
    static func receiveInvitations(_ h: Harness, _ admin: Caller) async throws {
        let changed = try await TenantGovernanceRelationshipTests.call(h, "PATCH", "settings", ["canReceiveInvitations": true], as: admin)
        #expect(changed.status == 200 && changed.json["canReceiveInvitations"] == true, "\(changed.text)")
    }

    @Test("settings as Microsoft documents them: canReceiveInvitations false until set, then invitations are received; isRelatedTenantsEnabled always true; read-only and unknown properties refused; a Global Reader reads, a User Administrator does not")
    func settings() async throws {
        try await Harness.run { h in
            let contoso = try await h.caller(named: "contosoga", role: BuiltInRoles.globalAdministrator)
            let fabrikam = try await TenantGovernanceRelationshipTests.other(h, name: "Fabrikam", domain: "fabrikam.test")
            let initial = try await TenantGovernanceRelationshipTests.call(h, "GET", "settings", as: fabrikam.globalAdmin)
            #expect(initial.status == 200 && initial.json["@odata.type"] == "#microsoft.graph.tenantGovernanceServices.tenantGovernanceSetting", "\(initial.text)")
            #expect(initial.json["canReceiveInvitations"] == false && initial.json["isRelatedTenantsEnabled"] == true)
            let refused = try await TenantGovernanceRelationshipTests.call(h, "POST", "governanceInvitations",
                                                                           ["governingTenantId": .string(fabrikam.tenant.tenantId)], as: contoso)
            #expect(refused.status == 403 && refused.text.contains("canReceiveInvitations"), "\(refused.text)")
            #expect(try await TenantGovernanceRelationshipTests.call(h, "GET", "governanceInvitations", as: fabrikam.globalAdmin).json["value"] == [])

            try await Self.receiveInvitations(h, fabrikam.globalAdmin)
            #expect(try await TenantGovernanceRelationshipTests.call(h, "GET", "settings", as: fabrikam.globalAdmin).json["canReceiveInvitations"] == true)
            #expect(try await TenantGovernanceRelationshipTests.call(h, "POST", "governanceInvitations",
                                                                     ["governingTenantId": .string(fabrikam.tenant.tenantId)], as: contoso).status == 201)
            let fabToken = try await h.accessToken(clientId: fabrikam.tenant.clientId, secret: fabrikam.tenant.clientSecret, tenant: fabrikam.tenant.tenantId)
            let audit = await h.graph("GET", "auditLogs/directoryAudits", token: fabToken).json["value"]?.arrayValue ?? []
            #expect(audit.contains { $0["activityDisplayName"] == "Update tenant governance settings" })

            #expect(try await TenantGovernanceRelationshipTests.call(h, "POST", "settings/enableRelatedTenants", as: contoso).status == 204)
            for body: JSONValue in [["isRelatedTenantsEnabled": false], ["canReceiveInvitations": "yes"], ["other": true], [:]] {
                #expect(try await TenantGovernanceRelationshipTests.call(h, "PATCH", "settings", body, as: contoso).status == 400, "\(body)")
            }
            let reader = try await h.caller(named: "reader", role: BuiltInRoles.globalReader)
            #expect(try await TenantGovernanceRelationshipTests.call(h, "GET", "settings", as: reader).status == 200)
            #expect(try await TenantGovernanceRelationshipTests.call(h, "PATCH", "settings", ["canReceiveInvitations": true], as: reader).status == 403)
            let userAdmin = try await h.caller(named: "useradmin", role: BuiltInRoles.userAdministrator)
            #expect(try await TenantGovernanceRelationshipTests.call(h, "GET", "settings", as: userAdmin).status == 403)
        }
    }

    @Test("refused: itself, a tenant not of this deployment, an unknown property, no id; a User Administrator", arguments: [
        "self", "unknown", "property", "missing", "role",
    ])
    func refusals(_ scenario: String) async throws {
        try await Harness.run { h in
            let admin = try await h.caller(named: "contosoga", role: BuiltInRoles.globalAdministrator)
            let fabrikam = try await TenantGovernanceRelationshipTests.other(h, name: "Fabrikam", domain: "fabrikam.test")
            let caller = scenario == "role" ? try await h.caller(named: "useradmin", role: BuiltInRoles.userAdministrator) : admin
            let body: JSONValue = switch scenario {
            case "self": ["governingTenantId": .string(h.tenant.tenantId)]
            case "unknown": ["governingTenantId": .string(Identifier.make())]
            case "property": ["governingTenantId": .string(fabrikam.tenant.tenantId), "governedTenantId": .string(h.tenant.tenantId)]
            case "missing": [:]
            default: ["governingTenantId": .string(fabrikam.tenant.tenantId)]
            }
            let refused = try await TenantGovernanceRelationshipTests.call(h, "POST", "governanceInvitations", body, as: caller)
            #expect(refused.status == (scenario == "role" ? 403 : 400), "\(refused.text)")
            let none = try await TenantGovernanceRelationshipTests.call(h, "GET", "governanceInvitations", as: fabrikam.globalAdmin)
            #expect(none.json["value"]?.arrayValue?.isEmpty == true)
        }
    }
}

@Suite("Tenant governance and users of another deployment")
struct GovernanceRemoteGuestTests {
    @Test("a guest signed in by an identity provider never gets a governing tenant's roles, even when its token names that tenant and an administrator in the group")
    func remoteGuestIsNotAGoverningAdministrator() async throws {
        try await Harness.run { h in
            let w = try await TenantGovernanceAccessTests.world(h)
            let fabrikam = w.fabrikam.tenant.tenantId
            let actor = Actor(kind: .user, id: Identifier.make(), displayName: "Inviter")
            // A provider whose issuer names Fabrikam's id, for another deployment's users.
            let provider = try await h.app.directory.createIdentityProvider(tenant: h.tenant.tenantId, body: [
                "displayName": "Look-alike", "clientId": "client", "issuer": .string("https://idp.remote.test/\(fabrikam)/v2.0"),
                "wellKnownEndpoint": .string("https://idp.remote.test/\(fabrikam)/v2.0/.well-known/openid-configuration"),
                "scope": "openid", "domains": ["remote.test"], "clientAuthentication": ["clientSecret": "s"]], actor: actor, sealing: h.app.keySealing)
            let contoso = try #require(try await h.app.tenantRecord(h.tenant.tenantId))
            let invitation = try await h.app.directory.invite(tenant: contoso, request: try InvitationRequest(body: [
                "invitedUserEmailAddress": "mallory@remote.test", "inviteRedirectUrl": "https://myapps.test/"]), provider: provider, actor: actor)
            // Its token claims Fabrikam's tenant and Alice, who is in the governance template's group.
            try await h.app.directory.redeem(tenant: contoso.id, invitation: invitation.id, issuer: provider.issuer, subject: w.alice,
                                             homeTenantID: fabrikam, actor: actor)
            #expect(try await GovernedAccess(app: h.app).grant(tenant: contoso.id, user: invitation.userID) == nil)
            let user = try #require(try await h.app.store.read { tx in try await tx.object(tenant: contoso.id, id: invitation.userID) })
            let caller = try await Caller.user(tenant: contoso.id, user: user, scopes: nil, app: h.app)
            #expect(caller.roles == RolePermissions.memberDefaults)
        }
    }
}
