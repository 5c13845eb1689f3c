import Foundation
import Testing
import TesseraCore

/// Session controls the application or a proxy carries out (app-enforced restrictions, Defender for Cloud Apps,
/// continuous access evaluation): a policy with only these is a valid policy that changes no decision, and names them.
@Suite("Conditional Access: session controls enforced elsewhere")
struct ConditionalAccessSessionControlTests {
    static let facts = SignInFacts(tenantID: "t", subject: .user(id: "u1", groupIDs: [], roleTemplateIDs: [], external: nil),
                                   target: .application(appID: "00000003-0000-0ff1-ce00-000000000000"), now: Date(timeIntervalSince1970: 1_800_000_000))

    @Test("a policy with only app-enforced restrictions or Cloud App Security applies, succeeds and names the control; it never fails closed",
          arguments: [
              (["applicationEnforcedRestrictions": ["isEnabled": true]] as JSONValue, "ApplicationEnforcedRestrictions"),
              (["cloudAppSecurity": ["isEnabled": true, "cloudAppSecurityType": "monitorOnly"]] as JSONValue, "CloudAppSecurity"),
              (["continuousAccessEvaluation": ["mode": "strictEnforcement"]] as JSONValue, "ContinuousAccessEvaluation"),
          ])
    func enforcedElsewhere(session: JSONValue, name: String) {
        let policy: JSONValue = [
            "id": "p1", "displayName": "SharePoint: limited access", "state": "enabled",
            "conditions": ["users": ["includeUsers": ["All"], "excludeUsers": ["u2"]],
                           "applications": ["includeApplications": ["Office365"]]],
            "grantControls": nil, "sessionControls": session,
        ]
        let engine = ConditionalAccessEngine(policies: [policy], namedLocations: [])
        let decision = engine.decide(Self.facts)
        #expect(decision.outcome == .allow)
        #expect(decision.policies.first?.result == .success && decision.policies.first?.failedClosedBecause == nil)
        #expect(decision.policies.first?.enforcedSessionControls == [name])
        // The excluded user is not touched at all.
        var excluded = Self.facts
        excluded.subject = .user(id: "u2", groupIDs: [], roleTemplateIDs: [], external: nil)
        #expect(engine.decide(excluded).policies.first?.result == .notApplied)
    }

    @Test("a policy with no control at all still fails closed and says why")
    func noControls() {
        let policy: JSONValue = ["id": "p2", "displayName": "Nothing", "state": "enabled",
                                 "conditions": ["users": ["includeUsers": ["All"]], "applications": ["includeApplications": ["All"]]]]
        let decision = ConditionalAccessEngine(policies: [policy], namedLocations: []).decide(Self.facts)
        #expect(decision.policies.first?.failedClosedBecause != nil)
        #expect(decision.outcome != .allow)
    }
}
