import Foundation
import Testing
import TesseraCore

/// The Conditional Access decision engine: every condition type × include/exclude × match × state, the grant
/// operators, authentication strengths, Entra's subtleties (exclusions win across users, groups and roles; report-only
/// never enforces; block wins; guests of listed tenants), sign-in frequency, failing closed, and the parts it is built
/// from (IP ranges, device filters, User-Agent platforms).
@Suite struct ConditionalAccessEngineTests {
    static let tenant = "11111111-1111-1111-1111-111111111111"
    static let externalTenant = "22222222-2222-2222-2222-222222222222"
    static let otherTenant = "33333333-3333-3333-3333-333333333333"
    static let alice = "aaaaaaaa-0000-0000-0000-000000000001"
    static let bob = "bbbbbbbb-0000-0000-0000-000000000002"
    static let engineering = "eeeeeeee-0000-0000-0000-000000000003"
    static let globalAdministrator = "62e90394-69f5-4237-9190-012177145e10"
    static let app = "0a0a0a0a-0000-0000-0000-000000000004"
    static let otherApp = "0b0b0b0b-0000-0000-0000-000000000005"
    static let exchangeOnline = "00000002-0000-0ff1-ce00-000000000000"
    static let workload = "5a5a5a5a-0000-0000-0000-000000000006"
    static let otherWorkload = "5b5b5b5b-0000-0000-0000-000000000007"
    static let office = "10c00000-0000-0000-0000-000000000001"
    static let trusted = "10c00000-0000-0000-0000-000000000002"
    static let newZealand = "10c00000-0000-0000-0000-000000000003"
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static let namedLocations: [JSONValue] = [
        ["id": .string(office), "@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Office", "isTrusted": false,
         "ipRanges": [["cidrAddress": "203.0.113.0/24"], ["cidrAddress": "2001:db8::/48"]]],
        ["id": .string(trusted), "@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "HQ", "isTrusted": true,
         "ipRanges": [["cidrAddress": "198.51.100.0/24"]]],
        ["id": .string(newZealand), "@odata.type": "#microsoft.graph.countryNamedLocation", "displayName": "NZ",
         "countriesAndRegions": ["NZ"], "includeUnknownCountriesAndRegions": false],
    ]

    static let block: JSONValue = ["operator": "OR", "builtInControls": ["block"]]

    /// A stored policy body: everyone, every application, blocked, unless told otherwise.
    static func policy(_ id: String = "ca000000-0000-0000-0000-000000000001", state: String = "enabled",
                       conditions: [String: JSONValue] = [:], grant: JSONValue? = block,
                       session: JSONValue? = nil) -> JSONValue {
        var all: [String: JSONValue] = ["users": ["includeUsers": ["All"]], "applications": ["includeApplications": ["All"]]]
        for (key, value) in conditions { all[key] = value }
        var body: [String: JSONValue] = ["id": .string(id), "displayName": .string("Policy \(id.prefix(8))"),
                                         "state": .string(state), "conditions": .object(all)]
        if let grant { body["grantControls"] = grant }
        if let session { body["sessionControls"] = session }
        return .object(body)
    }

    /// Alice, a member in no group, signing in to `app` from a Windows browser at an unlisted US address, with a passkey.
    static func facts(_ change: (inout SignInFacts) -> Void = { _ in }) -> SignInFacts {
        var facts = SignInFacts(
            tenantID: tenant, subject: .user(id: alice, groupIDs: [], roleTemplateIDs: [], external: nil),
            target: .application(appID: app), clientAppType: .browser, platform: .windows,
            clientIP: IPAddress("192.0.2.10"), country: "US", methodsUsed: [.init(.fido2, at: now)], now: now)
        change(&facts)
        return facts
    }

    static func engine(_ policies: [JSONValue], strengths: [AuthenticationStrength] = []) -> ConditionalAccessEngine {
        ConditionalAccessEngine(policies: policies, namedLocations: namedLocations, authenticationStrengths: strengths)
    }

    static func user(_ id: String = alice, groups: Set<String> = [], roles: Set<String> = [],
                     external: SignInFacts.ExternalUserKind? = nil) -> SignInFacts.Subject {
        .user(id: id, groupIDs: groups, roleTemplateIDs: roles, external: external)
    }

    // MARK: Every condition × include/exclude × match × state

    struct Condition: Sendable, CustomStringConvertible {
        var name: String
        var flag: ConditionalAccessConditions
        var include: [String: JSONValue]
        /// Nil where Graph has no exclusion for the condition.
        var exclude: [String: JSONValue]?
        var matching: @Sendable (inout SignInFacts) -> Void
        var other: @Sendable (inout SignInFacts) -> Void
        var description: String { name }
    }

    static let conditionTypes: [Condition] = [
        Condition(name: "user", flag: .users,
                  include: ["users": ["includeUsers": [.string(alice)]]],
                  exclude: ["users": ["includeUsers": ["All"], "excludeUsers": [.string(alice)]]],
                  matching: { _ in }, other: { $0.subject = user(bob) }),
        Condition(name: "group", flag: .users,
                  include: ["users": ["includeGroups": [.string(engineering)]]],
                  exclude: ["users": ["includeUsers": ["All"], "excludeGroups": [.string(engineering)]]],
                  matching: { $0.subject = user(groups: [engineering]) }, other: { _ in }),
        Condition(name: "role", flag: .users,
                  include: ["users": ["includeRoles": [.string(globalAdministrator)]]],
                  exclude: ["users": ["includeUsers": ["All"], "excludeRoles": [.string(globalAdministrator)]]],
                  matching: { $0.subject = user(roles: [globalAdministrator]) }, other: { _ in }),
        Condition(name: "guest of a listed tenant", flag: .users,
                  include: ["users": ["includeGuestsOrExternalUsers": [
                      "guestOrExternalUserTypes": "b2bCollaborationGuest,b2bCollaborationMember",
                      "externalTenants": ["@odata.type": "#microsoft.graph.conditionalAccessEnumeratedExternalTenants",
                                          "membershipKind": "enumerated", "members": [.string(externalTenant)]]]]],
                  exclude: ["users": ["includeUsers": ["All"], "excludeGuestsOrExternalUsers": [
                      "guestOrExternalUserTypes": "b2bCollaborationGuest",
                      "externalTenants": ["membershipKind": "enumerated", "members": [.string(externalTenant)]]]]],
                  matching: {
                      $0.subject = user(external: .init(userType: "Guest", homeTenantID: externalTenant, tenantID: tenant))
                  },
                  other: {
                      $0.subject = user(external: .init(userType: "Guest", homeTenantID: otherTenant, tenantID: tenant))
                  }),
        Condition(name: "legacy GuestsOrExternalUsers keyword", flag: .users,
                  include: ["users": ["includeUsers": ["GuestsOrExternalUsers"]]],
                  exclude: ["users": ["includeUsers": ["All"], "excludeUsers": ["GuestsOrExternalUsers"]]],
                  matching: { $0.subject = user(external: .init(userType: "Guest", homeTenantID: nil, tenantID: tenant)) },
                  other: { _ in }),
        Condition(name: "service principal", flag: .workloadIdentities,
                  include: ["users": ["includeUsers": ["None"]],
                            "clientApplications": ["includeServicePrincipals": [.string(workload)]]],
                  exclude: ["users": ["includeUsers": ["None"]],
                            "clientApplications": ["includeServicePrincipals": ["ServicePrincipalsInMyTenant"],
                                                   "excludeServicePrincipals": [.string(workload)]]],
                  matching: { $0.subject = .servicePrincipal(id: workload) },
                  other: { $0.subject = .servicePrincipal(id: otherWorkload) }),
        Condition(name: "application", flag: .application,
                  include: ["applications": ["includeApplications": [.string(app)]]],
                  exclude: ["applications": ["includeApplications": ["All"], "excludeApplications": [.string(app)]]],
                  matching: { _ in }, other: { $0.target = .application(appID: otherApp) }),
        Condition(name: "Office365 keyword", flag: .application,
                  include: ["applications": ["includeApplications": ["Office365"]]],
                  exclude: ["applications": ["includeApplications": ["All"], "excludeApplications": ["Office365"]]],
                  matching: { $0.target = .application(appID: exchangeOnline) }, other: { _ in }),
        Condition(name: "user action", flag: .userActions,
                  include: ["applications": ["includeUserActions": ["urn:user:registersecurityinfo"]]], exclude: nil,
                  matching: { $0.target = .userAction(.registerSecurityInformation) },
                  other: { $0.target = .userAction(.registerOrJoinDevices) }),
        Condition(name: "authentication context", flag: .authenticationContext,
                  include: ["applications": ["includeAuthenticationContextClassReferences": ["c1"]]], exclude: nil,
                  matching: { $0.authenticationContexts = ["c1"] }, other: { $0.authenticationContexts = ["c2"] }),
        Condition(name: "platform", flag: .devicePlatform,
                  include: ["platforms": ["includePlatforms": ["android"]]],
                  exclude: ["platforms": ["includePlatforms": ["all"], "excludePlatforms": ["android"]]],
                  matching: { $0.platform = DevicePlatform(userAgent: "Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/120.0") },
                  other: { $0.platform = DevicePlatform(userAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)") }),
        Condition(name: "IPv4 named location", flag: .location,
                  include: ["locations": ["includeLocations": [.string(office)]]],
                  exclude: ["locations": ["includeLocations": ["All"], "excludeLocations": [.string(office)]]],
                  matching: { $0.clientIP = IPAddress("203.0.113.77") }, other: { _ in }),
        Condition(name: "IPv6 named location", flag: .location,
                  include: ["locations": ["includeLocations": [.string(office)]]],
                  exclude: ["locations": ["includeLocations": ["All"], "excludeLocations": [.string(office)]]],
                  matching: { $0.clientIP = IPAddress("2001:db8:0:ffff::1") }, other: { $0.clientIP = IPAddress("2001:db9::1") }),
        Condition(name: "trusted locations", flag: .location,
                  include: ["locations": ["includeLocations": ["AllTrusted"]]],
                  exclude: ["locations": ["includeLocations": ["All"], "excludeLocations": ["AllTrusted"]]],
                  matching: { $0.clientIP = IPAddress("198.51.100.9") }, other: { $0.clientIP = IPAddress("203.0.113.9") }),
        Condition(name: "country location", flag: .location,
                  include: ["locations": ["includeLocations": [.string(newZealand)]]],
                  exclude: ["locations": ["includeLocations": ["All"], "excludeLocations": [.string(newZealand)]]],
                  matching: { $0.country = "NZ" }, other: { $0.country = nil }),
        Condition(name: "client app type", flag: .clientApps,
                  include: ["clientAppTypes": ["exchangeActiveSync", "other"]], exclude: nil,
                  matching: { $0.clientAppType = .exchangeActiveSync }, other: { _ in }),
        Condition(name: "device filter", flag: .devices,
                  include: ["devices": ["deviceFilter": ["mode": "include", "rule": "device.trustType -eq \"ServerAD\""]]],
                  exclude: ["devices": ["deviceFilter": ["mode": "exclude", "rule": "device.trustType -eq \"ServerAD\""]]],
                  matching: { $0.device = DeviceFacts(deviceId: "d1", trustType: "ServerAD") },
                  other: { $0.device = DeviceFacts(deviceId: "d1", trustType: "AzureAD") }),
        Condition(name: "user risk", flag: .userRisk,
                  include: ["userRiskLevels": ["high"]], exclude: nil,
                  matching: { $0.userRisk = .high }, other: { $0.userRisk = .low }),
        Condition(name: "sign-in risk", flag: .signInRisk,
                  include: ["signInRiskLevels": ["medium", "high"]], exclude: nil,
                  matching: { $0.signInRisk = .medium }, other: { _ in }),
        Condition(name: "insider risk", flag: .insiderRisk,
                  include: ["insiderRiskLevels": "elevated"], exclude: nil,
                  matching: { $0.insiderRisk = "elevated" }, other: { $0.insiderRisk = "minor" }),
        Condition(name: "authentication flow", flag: .authenticationFlow,
                  include: ["authenticationFlows": ["transferMethods": "deviceCodeFlow"]], exclude: nil,
                  matching: { $0.transferMethod = "deviceCodeFlow" }, other: { _ in }),
    ]

    enum Scope: String, Sendable { case include, exclude }

    struct ConditionRow: Sendable, CustomStringConvertible {
        var condition: Condition
        var scope: Scope
        var factsMatch: Bool
        var state: String
        var description: String { "\(condition) \(scope) match:\(factsMatch) \(state)" }
    }

    static let conditionRows: [ConditionRow] = conditionTypes.flatMap { condition in
        [Scope.include, .exclude].filter { $0 == .include || condition.exclude != nil }.flatMap { scope in
            [true, false].flatMap { factsMatch in
                ["enabled", "enabledForReportingButNotEnforced", "disabled"].map {
                    ConditionRow(condition: condition, scope: scope, factsMatch: factsMatch, state: $0)
                }
            }
        }
    }

    @Test(arguments: conditionRows)
    func eachConditionIncludesExcludesAndHonoursTheState(_ row: ConditionRow) {
        let conditions = row.scope == .include ? row.condition.include : row.condition.exclude!
        let engine = Self.engine([Self.policy(state: row.state, conditions: conditions)])
        let facts = Self.facts(row.factsMatch ? row.condition.matching : row.condition.other)
        let decision = engine.decide(facts)
        let applies = (row.scope == .include) == row.factsMatch
        let result = decision.policies[0]
        switch row.state {
        case "disabled":
            #expect(result.result == .notEnabled)
            #expect(decision.outcome == .allow)
        case "enabled":
            #expect(result.result == (applies ? .failure : .notApplied))
            #expect(decision.outcome == (applies ? .block(policyIDs: [result.id]) : .allow))
            #expect(decision.status == (applies ? "failure" : "notApplied"))
        default:
            #expect(result.result == (applies ? .reportOnlyFailure : .reportOnlyNotApplied))
            #expect(decision.outcome == .allow)
            #expect(decision.status == "notApplied")
        }
        if row.state != "disabled" {
            if applies {
                #expect(result.conditionsSatisfied.contains(row.condition.flag))
                #expect(result.conditionsNotSatisfied.isEmpty)
                #expect(result.enforcedGrantControls == ["block"])
            } else {
                #expect(result.conditionsNotSatisfied.contains(row.condition.flag))
            }
        }
    }
}
