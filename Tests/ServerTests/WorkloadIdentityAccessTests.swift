import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

/// Conditional Access for workload identities at the token endpoint: a policy that names a service principal and a
/// location decides its client credentials requests; report-only and disabled policies never refuse.
@Suite("Conditional Access for workload identities at /token")
struct WorkloadIdentityAccessTests {
    @Test("a service principal outside its allowed range gets AADSTS53003; inside, or when the policy only reports, a token")
    func outsideTheRange() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let office = try await ConditionalAccessTests.office(h, admin)  // 203.0.113.0/24 and 2001:db8::/48
            let sp = await h.graph("GET", "servicePrincipals", token: admin, query: [("$filter", "appId eq '\(h.tenant.clientId)'")])
            let spID = try #require(sp.json["value"]?.arrayValue?.first?["id"]?.stringValue)
            func token(from address: String) async -> APIResponse { await h.clientCredentials(from: address) }
            let created = await h.graph("POST", ConditionalAccessTests.policies, token: admin, json: [
                "displayName": "The automation app only from the office", "state": "enabledForReportingButNotEnforced",
                "conditions": [
                    "users": ["includeUsers": ["None"]],
                    "clientApplications": ["includeServicePrincipals": [.string(spID)]],
                    "applications": ["includeApplications": ["All"]],
                    "locations": ["includeLocations": ["All"], "excludeLocations": [.string(office)]],
                ],
                "grantControls": ["operator": "OR", "builtInControls": ["block"]]])
            #expect(created.status == 201, "\(created.text)")
            let policyID = try #require(created.json["id"]?.stringValue)
            // Report-only: logged, never enforced.
            #expect(await token(from: "198.51.100.7").status == 200)
            _ = await h.graph("PATCH", "\(ConditionalAccessTests.policies)/\(policyID)", token: admin, json: ["state": "enabled"])
            let outside = await token(from: "198.51.100.7")
            #expect(outside.status == 400 && outside.json["error"] == "invalid_grant")
            #expect(outside.json["error_codes"]?.arrayValue?.first?.intValue == 53003)
            #expect(await token(from: "203.0.113.9").status == 200)
            #expect(await token(from: "2001:db8::5").status == 200)
            // The policy names this service principal only: a user's sign-in and other apps are not its business.
            _ = await h.graph("PATCH", "\(ConditionalAccessTests.policies)/\(policyID)", token: admin, json: ["state": "disabled"])
            #expect(await token(from: "198.51.100.7").status == 200)
        }
    }
}
