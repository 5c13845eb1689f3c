import Foundation
import Testing
@testable import Store
import TesseraCore
import TesseraTesting

/// Sign-in records filtered over their arrays of objects, as the admin center's per-policy view and Graph callers ask
/// (`appliedConditionalAccessPolicies/any(p:p/id eq '…')`), in SQL on SQLite and PostgreSQL alike.
@Suite("Sign-in records filtered over arrays of objects")
struct SignInFilterTests {
    @Test("any and all over appliedConditionalAccessPolicies find the sign-ins a policy applied to, and with which result",
          arguments: TestDatabases.all)
    func appliedPolicies(_ database: String) async throws {
        try await withTenant(database) { _, directory, tenant in
            let a = "6a1f0c3e-0000-4000-8000-00000000000a", b = "6a1f0c3e-0000-4000-8000-00000000000b"
            func record(_ user: String, _ status: String, _ results: [(String, String)]) async throws {
                try await directory.recordSignIn(tenant: tenant.tenantId, entry: [
                    "userPrincipalName": .string(user), "conditionalAccessStatus": .string(status),
                    "appliedConditionalAccessPolicies": .array(results.map { id, result in
                        ["id": .string(id), "displayName": "Policy", "result": .string(result),
                         "enforcedGrantControls": ["Mfa"], "enforcedSessionControls": []]
                    })])
            }
            try await record("impacted", "success", [(a, "reportOnlyFailure"), (b, "success")])
            try await record("passed", "notApplied", [(a, "reportOnlySuccess")])
            try await record("blocked", "failure", [(b, "failure")])
            try await record("none", "notApplied", [])
            let cases: [(String, Set<String>)] = [
                ("appliedConditionalAccessPolicies/any(p:p/id eq '\(a)')", ["impacted", "passed"]),
                ("appliedConditionalAccessPolicies/any(p:p/id eq '\(a.uppercased())')", ["impacted", "passed"]),
                ("appliedConditionalAccessPolicies/any(p:p/id eq '\(a)' and p/result in ('reportOnlyFailure','failure'))", ["impacted"]),
                ("appliedConditionalAccessPolicies/any(p:p/result eq 'failure')", ["blocked"]),
                ("appliedConditionalAccessPolicies/all(p:p/result ne 'failure')", ["impacted", "passed", "none"]),
                ("appliedConditionalAccessPolicies/any()", ["impacted", "passed", "blocked"]),
                ("conditionalAccessStatus eq 'failure' or appliedConditionalAccessPolicies/any(p:p/id eq '\(a)' and p/result eq 'reportOnlySuccess')",
                 ["blocked", "passed"]),
            ]
            for (text, expected) in cases {
                let found = try await directory.signIns(tenant: tenant.tenantId, filter: try FilterParser.parse(text), limit: 50, offset: 0)
                #expect(Set(found.compactMap { $0.body["userPrincipalName"]?.stringValue }) == expected, "\(text)")
            }
        }
    }
}
