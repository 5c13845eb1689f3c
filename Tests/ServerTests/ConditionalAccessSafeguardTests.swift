import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

/// Entra's lock-out safeguard: an enabled policy that would block every Global Administrator, or the administrator
/// writing it from where they are, is refused with a Graph error that says who, and nothing is written.
@Suite("Conditional Access: the lock-out safeguard")
struct ConditionalAccessSafeguardTests {
    static func blockEveryone(state: String = "enabled", excludeUsers: [String] = [], excludeRoles: [String] = [],
                              locations: JSONValue? = nil) -> JSONValue {
        var conditions: [String: JSONValue] = [
            "users": ["includeUsers": ["All"], "excludeUsers": .strings(excludeUsers), "excludeRoles": .strings(excludeRoles)],
            "applications": ["includeApplications": ["All"]],
        ]
        if let locations { conditions["locations"] = locations }
        return ["displayName": "Block everyone", "state": .string(state), "conditions": .object(conditions),
                "grantControls": ["operator": "OR", "builtInControls": ["block"]]]
    }

    @Test("a block of every Global Administrator is refused unless one is excluded, by user or by role; report-only is not a lock-out")
    func everyGlobalAdministrator() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let policies = ConditionalAccessTests.policies
            let upn = try #require(await h.graph("GET", "users/\(h.tenant.adminUserId)", token: admin).json["userPrincipalName"]?.stringValue)
            let refused = await h.graph("POST", policies, token: admin, json: Self.blockEveryone())
            #expect(refused.status == 400 && refused.json["error"]?["code"] == "Request_BadRequest", "\(refused.text)")
            #expect(refused.json["error"]?["message"]?.stringValue?.contains(upn) == true, "\(refused.text)")
            // Only from outside the office: still every administrator, whenever they are elsewhere.
            let office = try await ConditionalAccessTests.office(h, admin)
            let elsewhere = await h.graph("POST", policies, token: admin, json: Self.blockEveryone(
                locations: ["includeLocations": ["All"], "excludeLocations": [.string(office)]]))
            #expect(elsewhere.status == 400, "\(elsewhere.text)")
            #expect(await h.graph("GET", policies, token: admin).json["value"]?.arrayValue?.isEmpty == true)
            // Excluding one administrator, or the role, or only reporting: accepted.
            #expect(await h.graph("POST", policies, token: admin, json: Self.blockEveryone(excludeUsers: [h.tenant.adminUserId])).status == 201)
            #expect(await h.graph("POST", policies, token: admin, json: Self.blockEveryone(excludeRoles: [BuiltInRoles.globalAdministrator])).status == 201)
            let reporting = await h.graph("POST", policies, token: admin, json: Self.blockEveryone(state: "enabledForReportingButNotEnforced"))
            #expect(reporting.status == 201)
            // Turning the report-only one on is the same lock-out: refused, and it stays report-only.
            let id = try #require(reporting.json["id"]?.stringValue)
            let enabling = await h.graph("PATCH", "\(policies)/\(id)", token: admin, json: ["state": "enabled"])
            #expect(enabling.status == 400, "\(enabling.text)")
            #expect(await h.graph("GET", "\(policies)/\(id)", token: admin).json["state"] == "enabledForReportingButNotEnforced")
            // A second Global Administrator left out of the policy is enough.
            let second = try await AdminCenterTests.createUser(h, admin, "breakglass")
            try await h.assign(role: BuiltInRoles.globalAdministrator, to: second)
            #expect(await h.graph("PATCH", "\(policies)/\(id)", token: admin,
                                  json: ["conditions": ["users": ["excludeUsers": [.string(second)]]]]).status == 204)
            #expect(await h.graph("PATCH", "\(policies)/\(id)", token: admin, json: ["state": "enabled"]).status == 204)
        }
    }

    @Test("a policy that would block the administrator writing it, from where they are now, is refused; from the office it is not")
    func theCaller() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let office = try await ConditionalAccessTests.office(h, admin)
            let second = try await AdminCenterTests.createUser(h, admin, "breakglass")
            try await h.assign(role: BuiltInRoles.globalAdministrator, to: second)
            let tenant = try #require(try await h.app.tenantRecord(h.tenant.tenantId))
            let user = try #require(try await h.app.activeUser(tenant: tenant.id, id: h.tenant.adminUserId))
            let caller = try await Caller.user(tenant: tenant.id, user: user, scopes: nil, app: h.app)
            let candidate = try #require(Self.blockEveryone(excludeUsers: [second],
                                                            locations: ["includeLocations": ["All"], "excludeLocations": [.string(office)]]).objectValue)
            func request(from address: String) -> APIRequest {
                var request = APIRequest(method: "POST", path: "/v1.0/\(ConditionalAccessTests.policies)", query: [], headers: [:], body: [],
                                         baseURL: Harness.base)
                request.clientAddress = address
                return request
            }
            let safeguard = ConditionalAccessSafeguard(app: h.app, tenant: tenant)
            await #expect(throws: DirectoryError.self) {
                try await safeguard.check(candidate, caller: caller, request: request(from: "198.51.100.50"))
            }
            try await safeguard.check(candidate, caller: caller, request: request(from: "203.0.113.50"))
        }
    }
}
