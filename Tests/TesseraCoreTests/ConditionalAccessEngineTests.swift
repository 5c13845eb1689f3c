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
                #expect(!result.applied && result.enforcedGrantControls.isEmpty)
            }
        }
    }
}

// MARK: Grant controls and authentication strengths

extension ConditionalAccessEngineTests {
    struct GrantRow: Sendable, CustomStringConvertible {
        var anyOf: Bool
        var multifactorDone: Bool
        var compliant: Bool
        var state: String
        var description: String { "\(anyOf ? "OR" : "AND") mfa:\(multifactorDone) compliant:\(compliant) \(state)" }
    }

    static let grantRows: [GrantRow] = [false, true].flatMap { anyOf in
        [false, true].flatMap { mfa in
            [false, true].flatMap { compliant in
                ["enabled", "enabledForReportingButNotEnforced", "disabled"].map {
                    GrantRow(anyOf: anyOf, multifactorDone: mfa, compliant: compliant, state: $0)
                }
            }
        }
    }

    /// `mfa` and `compliantDevice` under AND and OR: AND needs both, OR either; what is missing is what the decision
    /// asks for; report-only says whether the sign-in would have been interrupted (a prompt) or failed (a device).
    @Test(arguments: grantRows)
    func grantOperatorCombinesControls(_ row: GrantRow) {
        let grant: JSONValue = ["operator": .string(row.anyOf ? "OR" : "AND"), "builtInControls": ["mfa", "compliantDevice"]]
        let engine = Self.engine([Self.policy(state: row.state, grant: grant)])
        let decision = engine.decide(Self.facts {
            $0.methodsUsed = [.init(row.multifactorDone ? .fido2 : .password, at: Self.now)]
            $0.device = DeviceFacts(deviceId: "d1", trustType: "AzureAD", isCompliant: row.compliant)
        })
        let result = decision.policies[0]
        var missing: [ConditionalAccessRequirement] = []
        if !row.multifactorDone { missing.append(.authenticationStrength(.multifactor)) }
        if !row.compliant { missing.append(.compliantDevice) }
        let met = row.anyOf ? missing.count < 2 : missing.isEmpty
        switch row.state {
        case "disabled":
            #expect(result.result == .notEnabled)
            #expect(decision.outcome == .allow)
        case "enabled":
            #expect(result.result == (met ? .success : .failure))
            #expect(decision.status == (met ? "success" : "failure"))
            #expect(result.enforcedGrantControls == ["mfa", "compliantDevice"])
            #expect(decision.outcome == (met ? .allow : .needs([.init(policyID: result.id, anyOf: row.anyOf, requirements: missing)])))
        default:
            let interrupted = row.anyOf || missing == [.authenticationStrength(.multifactor)]
            #expect(result.result == (met ? .reportOnlySuccess : interrupted ? .reportOnlyInterrupted : .reportOnlyFailure))
            #expect(decision.outcome == .allow)
        }
    }

    struct StrengthRow: Sendable, CustomStringConvertible {
        var methods: AuthenticationMethodModes
        var satisfies: Set<String>
        var description: String { "\(methods.combination) satisfies \(satisfies.sorted())" }
    }

    static let mfa = "00000000-0000-0000-0000-000000000002"
    static let passwordless = "00000000-0000-0000-0000-000000000003"
    static let phishingResistant = "00000000-0000-0000-0000-000000000004"

    static let strengthRows: [StrengthRow] = [
        StrengthRow(methods: .fido2, satisfies: [mfa, passwordless, phishingResistant]),  // a passkey, Windows Hello's too
        StrengthRow(methods: .windowsHelloForBusiness, satisfies: [mfa, passwordless, phishingResistant]),
        StrengthRow(methods: .x509CertificateMultiFactor, satisfies: [mfa, passwordless, phishingResistant]),
        StrengthRow(methods: .deviceBasedPush, satisfies: [mfa, passwordless]),
        StrengthRow(methods: .temporaryAccessPassOneTime, satisfies: [mfa]),
        StrengthRow(methods: .temporaryAccessPassMultiUse, satisfies: [mfa]),
        StrengthRow(methods: [.password, .sms], satisfies: [mfa]),
        StrengthRow(methods: [.password, .microsoftAuthenticatorPush], satisfies: [mfa]),
        StrengthRow(methods: .password, satisfies: []),
        StrengthRow(methods: .sms, satisfies: []),
        StrengthRow(methods: .microsoftAuthenticatorPush, satisfies: []),
        StrengthRow(methods: [], satisfies: []),
    ]

    /// Each built-in strength required by a policy (Microsoft's ids) against the methods a session used.
    @Test(arguments: strengthRows, [mfa, passwordless, phishingResistant])
    func builtInAuthenticationStrengthsAcceptTheirCombinations(_ row: StrengthRow, strength: String) {
        let grant: JSONValue = ["operator": "OR", "authenticationStrength": ["id": .string(strength)]]
        let decision = Self.engine([Self.policy(grant: grant)]).decide(Self.facts {
            $0.methodsUsed = row.methods.isEmpty ? [] : [.init(row.methods, at: Self.now)]
        })
        let expected = AuthenticationStrength.builtIns[strength]!
        #expect(decision.policies[0].enforcedGrantControls == ["authenticationStrength"])
        if row.satisfies.contains(strength) {
            #expect(decision.outcome == .allow)
            #expect(decision.policies[0].result == .success)
        } else {
            #expect(decision.outcome == .needs([.init(policyID: decision.policies[0].id, anyOf: true,
                                                      requirements: [.authenticationStrength(expected)])]))
        }
    }

    /// A custom strength from the tenant is honoured; one the engine does not know can never be met, so the policy
    /// blocks rather than lets the sign-in through.
    @Test func customStrengthsAreHonouredAndUnknownOnesFailClosed() {
        let custom = AuthenticationStrength(id: "c0570000-0000-0000-0000-000000000001", displayName: "Passkey or TAP",
                                            allowedCombinations: [.fido2, .temporaryAccessPassOneTime])
        let grant: JSONValue = ["operator": "OR", "authenticationStrength": ["id": .string(custom.id)]]
        let tap = Self.facts { $0.methodsUsed = [.init(.temporaryAccessPassOneTime, at: Self.now)] }
        let sms = Self.facts { $0.methodsUsed = [.init([.password, .sms], at: Self.now)] }
        #expect(Self.engine([Self.policy(grant: grant)], strengths: [custom]).decide(tap).outcome == .allow)
        #expect(Self.engine([Self.policy(grant: grant)], strengths: [custom]).decide(sms).outcome
                == .needs([.init(policyID: "ca000000-0000-0000-0000-000000000001", anyOf: true,
                                 requirements: [.authenticationStrength(custom)])]))
        let unknown = Self.engine([Self.policy(grant: grant)]).decide(tap)
        #expect(unknown.outcome == .block(policyIDs: ["ca000000-0000-0000-0000-000000000001"]))
        #expect(unknown.policies[0].unmetRequirements == [.unsupported("authenticationStrength \(custom.id)")])
    }

    /// A custom strength as Graph stores it, limited by a `fido2CombinationConfiguration` to one passkey model: that
    /// model satisfies it, another passkey does not; a configuration the engine does not know makes it unreadable.
    @Test func aStrengthsAllowedAAGUIDsLimitWhichPasskeysCount() throws {
        let yubiKey = "CB69481E-8FF7-4039-93EC-0A2729A154A8"
        let body: JSONValue = [
            "id": "c0570000-0000-0000-0000-000000000002", "displayName": "Security keys only",
            "allowedCombinations": ["fido2", "password,hardwareOath"],
            "combinationConfigurations": [["@odata.type": "#microsoft.graph.fido2CombinationConfiguration",
                                           "appliesToCombinations": ["fido2"], "allowedAAGUIDs": [.string(yubiKey)]]],
        ]
        let strength = try #require(AuthenticationStrength(body: body))
        #expect(strength.allowedCombinations == [.fido2, [.password, .hardwareOath]])
        let grant: JSONValue = ["operator": "OR", "authenticationStrength": ["id": .string(strength.id)]]
        let engine = Self.engine([Self.policy(grant: grant)], strengths: [strength])
        let listed = Self.facts { $0.methodsUsed = [.init(.fido2, at: Self.now, aaguid: yubiKey)] }
        let other = Self.facts { $0.methodsUsed = [.init(.fido2, at: Self.now, aaguid: "08987058-cadc-4b81-b6e1-30de50dcbe96")] }
        #expect(engine.decide(listed).outcome == .allow)
        #expect(engine.decide(other).outcome == .needs([.init(policyID: "ca000000-0000-0000-0000-000000000001", anyOf: true,
                                                              requirements: [.authenticationStrength(strength)])]))
        var x509 = body
        x509["combinationConfigurations"] = [["@odata.type": "#microsoft.graph.x509CertificateCombinationConfiguration",
                                              "appliesToCombinations": ["x509CertificateMultiFactor"]]]
        #expect(AuthenticationStrength(body: x509) == nil)
        var unknownMethod = body
        unknownMethod["allowedCombinations"] = ["fido2,carrierPigeon"]
        #expect(AuthenticationStrength(body: unknownMethod) == nil)
    }

    /// A policy demanding phishing resistance for every app: a TAP session is asked for a passkey at the app, but
    /// registering security information (the user action, not an app) is not subject to it, so the TAP can enrol one.
    @Test func aTemporaryAccessPassCanOnlyRegisterAPasskeyUnderPhishingResistance() {
        let grant: JSONValue = ["operator": "OR", "authenticationStrength": ["id": .string(Self.phishingResistant)]]
        let engine = Self.engine([Self.policy(grant: grant)])
        let tap: (inout SignInFacts) -> Void = { $0.methodsUsed = [.init(.temporaryAccessPassOneTime, at: Self.now)] }
        #expect(engine.decide(Self.facts(tap)).outcome == .needs([.init(
            policyID: "ca000000-0000-0000-0000-000000000001", anyOf: true,
            requirements: [.authenticationStrength(.phishingResistant)])]))
        let registering = engine.decide(Self.facts {
            tap(&$0)
            $0.target = .userAction(.registerSecurityInformation)
        })
        #expect(registering.outcome == .allow)
        #expect(registering.policies[0].result == .notApplied)
        #expect(registering.policies[0].conditionsNotSatisfied == .userActions)
        #expect(engine.decide(Self.facts()).outcome == .allow)  // a passkey
    }

    /// `domainJoinedDevice` asks for a hybrid joined device (trust type ServerAD); controls Tessera cannot satisfy
    /// (an approved client app, terms of use) never count as met: alone they block, beside another under OR they drop out.
    @Test func deviceControlsAndUnsupportedControls() {
        let hybrid = Self.engine([Self.policy(grant: ["operator": "AND", "builtInControls": ["domainJoinedDevice"]])])
        #expect(hybrid.decide(Self.facts { $0.device = DeviceFacts(deviceId: "d", trustType: "ServerAD") }).outcome == .allow)
        #expect(hybrid.decide(Self.facts { $0.device = DeviceFacts(deviceId: "d", trustType: "AzureAD") }).outcome
                == .needs([.init(policyID: "ca000000-0000-0000-0000-000000000001", anyOf: false, requirements: [.hybridJoinedDevice])]))
        let approved = Self.engine([Self.policy(grant: ["operator": "AND", "builtInControls": ["mfa", "approvedApplication"]])])
        #expect(approved.decide(Self.facts()).outcome == .block(policyIDs: ["ca000000-0000-0000-0000-000000000001"]))
        let either = Self.engine([Self.policy(grant: ["operator": "OR", "builtInControls": ["mfa", "approvedApplication"]])])
        #expect(either.decide(Self.facts()).outcome == .allow)
        #expect(either.decide(Self.facts { $0.methodsUsed = [.init(.password, at: Self.now)] }).outcome
                == .needs([.init(policyID: "ca000000-0000-0000-0000-000000000001", anyOf: true,
                                 requirements: [.authenticationStrength(.multifactor)])]))
        let terms = Self.engine([Self.policy(grant: ["operator": "OR", "termsOfUse": ["tou-1"]])])
        #expect(terms.decide(Self.facts()).outcome == .block(policyIDs: ["ca000000-0000-0000-0000-000000000001"]))
    }
}

// MARK: Entra's subtleties

extension ConditionalAccessEngineTests {
    struct ExclusionRow: Sendable, CustomStringConvertible {
        var include: [String: JSONValue]
        var exclude: [String: JSONValue]
        var label: String
        var description: String { label }
    }

    static let exclusionRows: [ExclusionRow] = {
        let by: [(String, String, String)] = [("user", "Users", alice), ("group", "Groups", engineering),
                                              ("role", "Roles", globalAdministrator)]
        return by.flatMap { included in
            by.filter { $0.0 != included.0 }.map { excluded in
                ExclusionRow(include: ["include\(included.1)": [.string(included.2)]],
                             exclude: ["exclude\(excluded.1)": [.string(excluded.2)]],
                             label: "included by \(included.0), excluded by \(excluded.0)")
            }
        }
    }()

    /// Alice is in Engineering and a Global Administrator: whichever of the three includes her, an exclusion by any
    /// other wins.
    @Test(arguments: exclusionRows)
    func exclusionBeatsInclusionAcrossUsersGroupsAndRoles(_ row: ExclusionRow) {
        var users = row.include
        let alice = Self.facts { $0.subject = Self.user(groups: [Self.engineering], roles: [Self.globalAdministrator]) }
        let included = Self.engine([Self.policy(conditions: ["users": .object(users)])]).decide(alice)
        #expect(included.outcome == .block(policyIDs: ["ca000000-0000-0000-0000-000000000001"]))
        for (key, value) in row.exclude { users[key] = value }
        let excluded = Self.engine([Self.policy(conditions: ["users": .object(users)])]).decide(alice)
        #expect(excluded.outcome == .allow)
        #expect(excluded.policies[0].result == .notApplied)
        #expect(excluded.policies[0].conditionsNotSatisfied == .users)
    }

    /// A user in more groups than the policies name, and policies naming more groups than the user is in: membership
    /// is found either way, for inclusion and for exclusion.
    @Test(arguments: [2, 50])
    func groupMembershipIsFoundWhicheverSideIsLarger(userGroups: Int) {
        let groups = (0..<userGroups).map { String(format: "9a000000-0000-0000-0000-%012d", $0) }
        let named = (0..<10).map { String(format: "9b000000-0000-0000-0000-%012d", $0) } + [groups[1]]
        let including = Self.policy("ca000000-0000-0000-0000-000000000010",
                                    conditions: ["users": ["includeGroups": .strings(named)]])
        let excluding = Self.policy("ca000000-0000-0000-0000-000000000011", conditions: [
            "users": ["includeUsers": ["All"], "excludeGroups": .strings(Array(named.suffix(1)))]])
        let elsewhere = Self.policy("ca000000-0000-0000-0000-000000000012",
                                    conditions: ["users": ["includeGroups": .strings(Array(named.prefix(10)))]])
        let decision = Self.engine([including, excluding, elsewhere])
            .decide(Self.facts { $0.subject = Self.user(groups: Set(groups)) })
        #expect(decision.policies.map(\.result) == [.failure, .notApplied, .notApplied])
    }

    /// A report-only block is logged as `reportOnlyFailure` and enforces nothing, while an enforced policy beside it
    /// still does; an enforced block wins over every other requirement.
    @Test func reportOnlyBlockNeverEnforcesAndBlockWins() {
        let mfaPolicy = Self.policy("ca000000-0000-0000-0000-00000000000a", grant: ["operator": "OR", "builtInControls": ["mfa"]])
        let reportOnlyBlock = Self.policy("ca000000-0000-0000-0000-00000000000b", state: "enabledForReportingButNotEnforced")
        let password = Self.facts { $0.methodsUsed = [.init(.password, at: Self.now)] }
        let reported = Self.engine([reportOnlyBlock, mfaPolicy]).decide(password)
        #expect(reported.policies.map(\.result) == [.reportOnlyFailure, .failure])
        #expect(reported.outcome == .needs([.init(policyID: "ca000000-0000-0000-0000-00000000000a", anyOf: true,
                                                  requirements: [.authenticationStrength(.multifactor)])]))
        #expect(Self.engine([reportOnlyBlock]).decide(password).outcome == .allow)
        let enforcedBlock = Self.policy("ca000000-0000-0000-0000-00000000000c")
        let blocked = Self.engine([mfaPolicy, enforcedBlock]).decide(password)
        #expect(blocked.outcome == .block(policyIDs: ["ca000000-0000-0000-0000-00000000000c"]))
        #expect(blocked.status == "failure")
    }

    struct GuestRow: Sendable, CustomStringConvertible {
        var userType: String
        var homeTenant: String?
        var applies: Bool
        var description: String { "\(userType) from \(homeTenant ?? "this tenant") applies:\(applies)" }
    }

    /// A policy for B2B collaboration guests of one listed tenant: it applies to a guest from that tenant only, not to a
    /// guest from another, a B2B member, an internal guest or a member.
    @Test(arguments: [
        GuestRow(userType: "Guest", homeTenant: externalTenant, applies: true),
        GuestRow(userType: "Guest", homeTenant: otherTenant, applies: false),
        GuestRow(userType: "Member", homeTenant: externalTenant, applies: false),
        GuestRow(userType: "Guest", homeTenant: nil, applies: false),
        GuestRow(userType: "Guest", homeTenant: tenant, applies: false),
        GuestRow(userType: "Member", homeTenant: nil, applies: false),
    ])
    func aGuestOfAListedExternalTenant(_ row: GuestRow) {
        let users: JSONValue = ["includeGuestsOrExternalUsers": [
            "guestOrExternalUserTypes": "b2bCollaborationGuest",
            "externalTenants": ["membershipKind": "enumerated", "members": [.string(Self.externalTenant)]]]]
        let external = SignInFacts.ExternalUserKind(userType: row.userType, homeTenantID: row.homeTenant, tenantID: Self.tenant)
        let decision = Self.engine([Self.policy(conditions: ["users": users])])
            .decide(Self.facts { $0.subject = Self.user(external: external) })
        #expect(decision.policies[0].result == (row.applies ? .failure : .notApplied))
    }

    /// An internal guest is one whatever the tenant list says; `membershipKind: all` takes guests from any tenant.
    @Test func internalGuestsIgnoreTheTenantListAndAllTenantsTakesAnyTenant() {
        let listed: JSONValue = ["includeGuestsOrExternalUsers": [
            "guestOrExternalUserTypes": "internalGuest,b2bCollaborationGuest",
            "externalTenants": ["membershipKind": "enumerated", "members": [.string(Self.externalTenant)]]]]
        let internalGuest = Self.facts { $0.subject = Self.user(external: .init(type: .internalGuest, homeTenantID: nil)) }
        #expect(Self.engine([Self.policy(conditions: ["users": listed])]).decide(internalGuest).policies[0].result == .failure)
        let anyTenant: JSONValue = ["includeGuestsOrExternalUsers": [
            "guestOrExternalUserTypes": "b2bCollaborationGuest", "externalTenants": ["membershipKind": "all"]]]
        let guest = Self.facts { $0.subject = Self.user(external: .init(type: .b2bCollaborationGuest, homeTenantID: Self.otherTenant)) }
        #expect(Self.engine([Self.policy(conditions: ["users": anyTenant])]).decide(guest).policies[0].result == .failure)
    }

    /// Sign-in frequency of one hour: a passkey used 30 minutes ago is fresh, one used two hours ago asks for a new
    /// sign-in; `everyTime` asks unless the last authentication is within Entra's five minutes.
    @Test(arguments: [(1_800.0, "hours", false), (7_200.0, "hours", true), (7_200.0, "everyTime", true),
                      (120.0, "everyTime", false), (90_000.0, "days", true), (80_000.0, "days", false)])
    func signInFrequencyAsksForANewSignIn(age: Double, unit: String, expectsPrompt: Bool) {
        let frequency: JSONValue = unit == "everyTime"
            ? ["isEnabled": true, "frequencyInterval": "everyTime", "authenticationType": "primaryAndSecondaryAuthentication"]
            : ["isEnabled": true, "frequencyInterval": "timeBased", "type": .string(unit), "value": 1]
        let engine = Self.engine([Self.policy(grant: nil, session: ["signInFrequency": frequency])])
        let decision = engine.decide(Self.facts { $0.methodsUsed = [.init(.fido2, at: Self.now.addingTimeInterval(-age))] })
        #expect(decision.policies[0].enforcedSessionControls == ["SignInFrequency"])
        #expect(decision.outcome == (expectsPrompt
            ? .needs([.init(policyID: "ca000000-0000-0000-0000-000000000001", anyOf: false, requirements: [.reauthentication])])
            : .allow))
    }

    /// A persistent browser session control is reported on the decision when its policy applies and is met.
    @Test func persistentBrowserModeIsReported() {
        let session: JSONValue = ["persistentBrowser": ["isEnabled": true, "mode": "never"]]
        let onlyAlice: [String: JSONValue] = ["users": ["includeUsers": [.string(Self.alice)]]]
        let engine = Self.engine([Self.policy(conditions: onlyAlice, grant: nil, session: session)])
        #expect(engine.decide(Self.facts()).persistentBrowser == "never")
        #expect(engine.decide(Self.facts()).policies[0].enforcedSessionControls == ["PersistentBrowserSessionMode"])
        #expect(engine.decide(Self.facts { $0.subject = Self.user(Self.bob) }).persistentBrowser == nil)
    }

    /// Conditional Access for workload identities: a service principal outside its allowed range is blocked; a policy
    /// for users never applies to one, nor one for workload identities to a user.
    @Test func workloadIdentityPolicyBlocksOutsideTheAllowedRange() {
        let policy = Self.policy(conditions: [
            "users": ["includeUsers": ["None"]],
            "clientApplications": ["includeServicePrincipals": [.string(Self.workload)]],
            "locations": ["includeLocations": ["All"], "excludeLocations": [.string(Self.office)]],
        ])
        let engine = Self.engine([policy, Self.policy("ca000000-0000-0000-0000-00000000000d",
                                                      grant: ["operator": "OR", "builtInControls": ["mfa"]])])
        let outside = engine.decide(Self.facts { $0.subject = .servicePrincipal(id: Self.workload); $0.methodsUsed = [] })
        #expect(outside.outcome == .block(policyIDs: ["ca000000-0000-0000-0000-000000000001"]))
        #expect(outside.policies[1].result == .notApplied)
        #expect(outside.policies[1].conditionsNotSatisfied.contains(.workloadIdentities))
        let inside = engine.decide(Self.facts {
            $0.subject = .servicePrincipal(id: Self.workload)
            $0.clientIP = IPAddress("203.0.113.20")
        })
        #expect(inside.outcome == .allow)
        #expect(engine.decide(Self.facts()).policies[0].result == .notApplied)
    }
}

// MARK: Failing closed

extension ConditionalAccessEngineTests {
    /// A condition the engine cannot read (a named location that is gone, a device filter outside the grammar, an
    /// unknown platform) makes the policy fail for the sign-ins it would otherwise apply to, saying why; it still does
    /// not apply to a user it excludes.
    @Test(arguments: [
        ["locations": ["includeLocations": ["10c00000-0000-0000-0000-0000000000ff"]]],
        ["devices": ["deviceFilter": ["mode": "include", "rule": "device.colour -eq \"blue\""]]],
        ["devices": ["deviceFilter": ["mode": "include", "rule": "device.trustType -eq \"ServerAD"]]],
        ["platforms": ["includePlatforms": ["amiga"]]],
    ] as [[String: JSONValue]])
    func anUnreadableConditionFailsClosed(_ conditions: [String: JSONValue]) {
        var all = conditions
        all["users"] = ["includeUsers": ["All"], "excludeUsers": [.string(Self.bob)]]
        let policy = Self.policy(conditions: all, grant: ["operator": "OR", "builtInControls": ["mfa"]])
        let decision = Self.engine([policy]).decide(Self.facts())
        #expect(decision.outcome == .block(policyIDs: ["ca000000-0000-0000-0000-000000000001"]))
        #expect(decision.policies[0].result == .failure)
        #expect(decision.policies[0].failedClosedBecause?.hasPrefix("The policy cannot be evaluated") == true)
        #expect(Self.engine([policy]).decide(Self.facts { $0.subject = Self.user(Self.bob) }).outcome == .allow)
        let reportOnly = Self.policy(state: "enabledForReportingButNotEnforced", conditions: all)
        #expect(Self.engine([reportOnly]).decide(Self.facts()).policies[0].result == .reportOnlyFailure)
        #expect(Self.engine([reportOnly]).decide(Self.facts()).outcome == .allow)
    }

    /// A trusted named location that cannot be read (a range that is not CIDR) leaves `AllTrusted` unknown: a policy
    /// excluding trusted locations fails closed rather than treating every address as untrusted, or trusted.
    @Test func anUnreadableTrustedLocationMakesAllTrustedUnknown() {
        let broken: JSONValue = ["id": "10c00000-0000-0000-0000-0000000000aa", "@odata.type": "#microsoft.graph.ipNamedLocation",
                                 "isTrusted": true, "ipRanges": [["cidrAddress": "198.51.100.0/40"]]]
        let policy = Self.policy(conditions: ["locations": ["includeLocations": ["All"], "excludeLocations": ["AllTrusted"]]])
        let engine = ConditionalAccessEngine(policies: [policy], namedLocations: Self.namedLocations + [broken])
        let decision = engine.decide(Self.facts { $0.clientIP = IPAddress("198.51.100.9") })
        #expect(decision.outcome == .block(policyIDs: ["ca000000-0000-0000-0000-000000000001"]))
        #expect(decision.policies[0].failedClosedBecause?.contains("trusted named location") == true)
        let readable = Self.engine([policy]).decide(Self.facts { $0.clientIP = IPAddress("198.51.100.9") })
        #expect(readable.outcome == .allow)
    }

    /// A policy that cannot be read at all (an unknown state, no conditions, a bad operator) fails every sign-in.
    @Test(arguments: [
        ["id": "ca000000-0000-0000-0000-000000000001", "displayName": "x", "state": "maybe",
         "conditions": ["users": ["includeUsers": ["None"]]], "grantControls": ["operator": "OR", "builtInControls": ["mfa"]]],
        ["id": "ca000000-0000-0000-0000-000000000001", "displayName": "x", "state": "enabled",
         "grantControls": ["operator": "OR", "builtInControls": ["mfa"]]],
        ["id": "ca000000-0000-0000-0000-000000000001", "displayName": "x", "state": "enabled",
         "conditions": ["users": ["includeUsers": ["None"]]], "grantControls": ["operator": "XOR", "builtInControls": ["mfa"]]],
    ] as [JSONValue])
    func anUnreadablePolicyFailsEverySignIn(_ body: JSONValue) {
        let decision = Self.engine([body]).decide(Self.facts())
        #expect(decision.outcome == .block(policyIDs: ["ca000000-0000-0000-0000-000000000001"]))
        #expect(decision.policies[0].failedClosedBecause != nil)
    }
}

// MARK: The parts

extension ConditionalAccessEngineTests {
    @Test(arguments: [
        ("203.0.113.0/24", "203.0.113.0", true), ("203.0.113.0/24", "203.0.113.255", true),
        ("203.0.113.0/24", "203.0.114.0", false), ("203.0.113.9/24", "203.0.113.200", true),
        ("10.0.0.0/8", "::ffff:10.1.2.3", true), ("0.0.0.0/0", "8.8.8.8", true), ("0.0.0.0/0", "2001:db8::1", false),
        ("2001:db8::/32", "2001:db8:ffff::1", true), ("2001:db8::/32", "2001:db9::", false),
        ("::/0", "2001:db8::1", true), ("2001:db8::1/128", "2001:db8::1", true), ("2001:db8::1/128", "2001:db8::2", false),
    ])
    func cidrRangesContainTheirAddresses(cidr: String, address: String, contained: Bool) throws {
        let range = try #require(IPAddressRange(cidr: cidr))
        let ip = try #require(IPAddress(address))
        #expect(range.contains(ip) == contained)
        #expect(IPAddressRangeSet([range]).contains(ip) == contained)
    }

    @Test(arguments: ["203.0.113.0", "203.0.113.0/33", "2001:db8::/129", "203.0.113.0/-1", "203.0.113/24", "x/8", "1.2.3.4/ 8", ""])
    func malformedCidrIsRefused(_ text: String) {
        #expect(IPAddressRange(cidr: text) == nil)
    }

    @Test func aRangeSetMergesOverlapsAndFindsEveryRange() throws {
        let set = IPAddressRangeSet(["10.0.0.0/24", "10.0.1.0/24", "10.0.0.128/25", "192.168.0.0/16", "2001:db8::/64"]
            .compactMap { IPAddressRange(cidr: $0) })
        #expect(set.ranges.count == 3)
        for (address, expected) in [("10.0.1.255", true), ("10.0.2.0", false), ("192.168.200.1", true), ("9.255.255.255", false),
                                    ("2001:db8::ffff", true), ("2001:db8:0:1::", false)] {
            #expect(set.contains(try #require(IPAddress(address))) == expected, "\(address)")
        }
    }

    static let device = DeviceFacts(deviceId: "4B0F2C4E-1111-2222-3333-444455556666", displayName: "Finance-Laptop-07",
                                    trustType: "ServerAD", isCompliant: true, operatingSystem: "Windows",
                                    other: [.extensionAttribute1: "Finance", .model: "Surface Pro 9"])

    @Test(arguments: [
        ("device.trustType -eq \"ServerAD\"", true, false),
        ("device.trustType -ne \"ServerAD\"", false, true),
        ("device.isCompliant -eq True", true, false),
        ("device.displayName -startsWith \"finance-\"", true, false),
        ("device.displayName -notStartsWith \"Finance-\"", false, true),
        ("device.displayName -endsWith \"-07\"", true, false),
        ("device.displayName -notEndsWith \"-07\"", false, true),
        ("device.model -contains \"Surface\"", true, false),
        ("device.model -notContains \"Surface\"", false, true),
        ("device.extensionAttribute1 -in [\"HR\", \"Finance\"]", true, false),
        ("device.extensionAttribute1 -notIn [\"HR\", \"Finance\"]", false, true),
        ("device.operatingSystem -eq \"Windows\" -and device.isCompliant -eq False", false, false),
        ("device.operatingSystem -eq \"iOS\" -or device.extensionAttribute1 -eq \"finance\"", true, false),
        ("(device.operatingSystem -eq \"iOS\" -or device.model -contains \"Pro\") -and device.trustType -eq \"ServerAD\"", true, false),
        ("device.operatingSystem -eq \"iOS\" -or device.model -contains \"Pro\" -and device.trustType -eq \"AzureAD\"", false, false),
        ("DEVICE.DEVICEID -EQ \"4b0f2c4e-1111-2222-3333-444455556666\"", true, false),
    ])
    func deviceFiltersFollowEntrasGrammar(rule: String, registered: Bool, unregistered: Bool) throws {
        let filter = try DeviceFilter(rule: rule)
        #expect(filter.matches(Self.device) == registered)
        #expect(filter.matches(nil) == unregistered)
    }

    @Test(arguments: ["device.colour -eq \"x\"", "device.model -like \"x\"", "device.model -eq \"x", "device.model -eq x",
                      "(device.model -eq \"x\"", "device.model -eq \"x\" -and", "device.model -in []", ""])
    func malformedDeviceFiltersAreRefused(_ rule: String) {
        #expect(throws: DeviceFilter.ParseError.self) { try DeviceFilter(rule: rule) }
    }

    @Test(arguments: [
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36", DevicePlatform.windows),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 Version/17.1 Safari/605.1.15", .macOS),
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36", .linux),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36", .android),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148", .iOS),
        ("Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148", .iOS),
        ("Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) Edge/15.15063", .windowsPhone),
    ] as [(String, DevicePlatform)])
    func platformsAreReadFromUserAgents(userAgent: String, platform: DevicePlatform) {
        #expect(DevicePlatform(userAgent: userAgent) == platform)
    }

    @Test func anUnrecognisedUserAgentHasNoPlatformAndMatchesOnlyAnyPlatform() {
        #expect(DevicePlatform(userAgent: "python-requests/2.31") == nil)
        #expect(DevicePlatform(userAgent: "Mozilla/5.0 (X11; CrOS x86_64 15633.69.0) AppleWebKit/537.36 Chrome/119.0") == nil)
        let any = Self.engine([Self.policy(conditions: ["platforms": ["includePlatforms": ["all"]]])])
        let windows = Self.engine([Self.policy(conditions: ["platforms": ["includePlatforms": ["windows"]]])])
        #expect(any.decide(Self.facts { $0.platform = nil }).policies[0].result == .failure)
        #expect(windows.decide(Self.facts { $0.platform = nil }).policies[0].result == .notApplied)
    }
}

// MARK: Many policies at once, and a decision reused from sign-in to sign-in

extension ConditionalAccessEngineTests {
    static func policyID(_ n: Int) -> String { String(format: "ca%06x-0000-0000-0000-000000000000", n) }

    /// Every policy of the condition and grant tables with its own id, plus session controls, a policy that fails
    /// closed and an unreadable one: more than 64, so the engine's policy sets span several words.
    static let everyPolicy: [JSONValue] = {
        var bodies: [JSONValue] = []
        for row in conditionRows where row.factsMatch {
            let conditions = row.scope == .include ? row.condition.include : row.condition.exclude!
            bodies.append(policy(policyID(bodies.count), state: row.state, conditions: conditions))
        }
        for row in grantRows where !row.multifactorDone && !row.compliant {
            let grant: JSONValue = ["operator": .string(row.anyOf ? "OR" : "AND"), "builtInControls": ["mfa", "compliantDevice"]]
            bodies.append(policy(policyID(bodies.count), state: row.state, grant: grant))
            let strength: JSONValue = ["operator": .string(row.anyOf ? "OR" : "AND"), "builtInControls": ["approvedApplication"],
                                       "authenticationStrength": ["id": "00000000-0000-0000-0000-000000000004"]]
            bodies.append(policy(policyID(bodies.count), state: row.state, grant: strength))
        }
        let hourly: JSONValue = ["signInFrequency": ["isEnabled": true, "type": "hours", "value": 1],
                                 "persistentBrowser": ["isEnabled": true, "mode": "never"]]
        bodies.append(policy(policyID(bodies.count), grant: nil, session: hourly))
        bodies.append(policy(policyID(bodies.count), conditions: ["locations": ["includeLocations": ["10c00000-0000-0000-0000-0000000000ff"]]]))
        bodies.append(["id": .string(policyID(bodies.count)), "displayName": "Unreadable", "state": "enabled"])
        return bodies
    }()

    /// Sign-ins that match and miss each condition, and some with weaker or older methods.
    static let everySignIn: [SignInFacts] = conditionTypes.flatMap { [facts($0.matching), facts($0.other)] } + [
        facts { $0.methodsUsed = [.init(.password, at: now)] },
        facts { $0.methodsUsed = [.init(.fido2, at: now.addingTimeInterval(-7_200))] },
        facts { $0.device = DeviceFacts(deviceId: "d2", trustType: "AzureAD", isCompliant: true); $0.methodsUsed = [] },
        facts { $0.subject = .servicePrincipal(id: workload); $0.clientIP = IPAddress("203.0.113.5") },
    ]

    /// Each policy gets the same result, reasons and missing controls among 90 others as on its own: the policy sets
    /// that decide all of them at once keep every policy to itself.
    @Test func eachPolicyIsDecidedAmongManyAsOnItsOwn() {
        let together = Self.engine(Self.everyPolicy)
        let alone = Self.everyPolicy.map { Self.engine([$0]) }
        #expect(Self.everyPolicy.count > 64)
        for facts in Self.everySignIn {
            let decision = together.decide(facts)
            let results = decision.policies
            for (index, engine) in alone.enumerated() {
                let expected = engine.decide(facts).policies[0], actual = results[index]
                #expect(actual.id == expected.id)
                #expect(actual.result == expected.result, "\(actual.id)")
                #expect(actual.conditionsSatisfied == expected.conditionsSatisfied, "\(actual.id)")
                #expect(actual.conditionsNotSatisfied == expected.conditionsNotSatisfied, "\(actual.id)")
                #expect(actual.applied == expected.applied, "\(actual.id)")
                #expect(actual.unmetRequirements == expected.unmetRequirements, "\(actual.id)")
                #expect(actual.failedClosedBecause == expected.failedClosedBecause, "\(actual.id)")
            }
            let blocked = alone.map { $0.decide(facts) }.compactMap { decision -> [String]? in
                if case .block(let ids) = decision.outcome { ids } else { nil }
            }.flatMap { $0 }
            if blocked.isEmpty {
                #expect(!{ if case .block = decision.outcome { true } else { false } }())
            } else if case .user = facts.subject {
                #expect(decision.outcome == .block(policyIDs: blocked))
            }
            #expect(decision.status == (results.contains { $0.result == .failure } ? "failure"
                : results.contains { $0.result == .success } ? "success" : "notApplied"))
        }
    }

    /// `decide(_:into:)` reusing one decision, across sign-ins and engines of different sizes, decides exactly as
    /// `decide(_:)` does.
    @Test func decidingIntoAReusedDecisionIsTheSameAsAFreshOne() {
        let engines = [Self.engine(Self.everyPolicy), Self.engine(Array(Self.everyPolicy.prefix(3))), Self.engine([])]
        var reused = ConditionalAccessDecision()
        #expect(reused.outcome == .allow && reused.policies.isEmpty && reused.status == "notApplied")
        for engine in engines + engines.reversed() {
            for facts in Self.everySignIn + Self.everySignIn.reversed() {
                engine.decide(facts, into: &reused)
                let fresh = engine.decide(facts)
                #expect(reused == fresh)
                #expect(reused.outcome == fresh.outcome && reused.status == fresh.status)
                #expect(reused.persistentBrowser == fresh.persistentBrowser && reused.isAllowed == (fresh.outcome == .allow))
            }
        }
    }

    /// A decision reused for the next sign-in keeps nothing of the previous one (results, reasons, missing controls,
    /// the block, the browser mode), and a copy taken before is not changed by the reuse.
    @Test func aReusedDecisionKeepsNothingOfThePreviousSignIn() {
        let blockEngineering = Self.policy("ca000000-0000-0000-0000-0000000000e1",
                                           conditions: ["users": ["includeGroups": [.string(Self.engineering)]]])
        let mfaAndBrowser = Self.policy("ca000000-0000-0000-0000-0000000000e2", grant: ["operator": "OR", "builtInControls": ["mfa"]],
                                        session: ["persistentBrowser": ["isEnabled": true, "mode": "never"]])
        let engine = Self.engine([blockEngineering, mfaAndBrowser])
        let blocked = Self.facts { $0.subject = Self.user(groups: [Self.engineering]); $0.methodsUsed = [.init(.password, at: Self.now)] }
        let allowed = Self.facts { $0.subject = Self.user(Self.bob) }

        var decision = ConditionalAccessDecision()
        engine.decide(blocked, into: &decision)
        let first = decision
        #expect(decision.outcome == .block(policyIDs: ["ca000000-0000-0000-0000-0000000000e1"]))
        #expect(decision.policies.map(\.result) == [.failure, .failure])
        #expect(decision.policies[1].unmetRequirements == [.authenticationStrength(.multifactor)])
        #expect(decision.persistentBrowser == nil)

        engine.decide(allowed, into: &decision)
        #expect(decision.outcome == .allow && decision.isAllowed && decision.status == "success")
        #expect(decision.policies.map(\.result) == [.notApplied, .success])
        #expect(decision.policies[0].conditionsNotSatisfied == .users && decision.policies[0].conditionsSatisfied.contains(.application))
        #expect(decision.policies[1].unmetRequirements.isEmpty && decision.policies[1].applied)
        #expect(decision.persistentBrowser == "never")
        #expect(first == engine.decide(blocked))

        engine.decide(blocked, into: &decision)
        #expect(decision == first)
        #expect(decision.persistentBrowser == nil && decision.status == "failure")
    }

    /// 150 policies, each for its own group, every other one excluding a VIP group: a user's groups pick exactly
    /// theirs, whether the user or the policies name more groups.
    @Test(arguments: [0, 400])
    func groupsPickTheirPoliciesAmongMany(unrelatedGroups: Int) {
        let group = { (n: Int) in String(format: "9c000000-0000-0000-0000-%012d", n) }
        let vip = "9d000000-0000-0000-0000-000000000001"
        let policies = (0..<150).map { k in
            var users: [String: JSONValue] = ["includeGroups": [.string(group(k))]]
            if k % 2 == 0 { users["excludeGroups"] = [.string(vip)] }
            return Self.policy(Self.policyID(k), conditions: ["users": .object(users)])
        }
        let memberOf = Set([group(5), group(70), group(149), vip] + (0..<unrelatedGroups).map { group(1_000 + $0) })
        let decision = Self.engine(policies).decide(Self.facts { $0.subject = Self.user(groups: memberOf) })
        #expect(decision.outcome == .block(policyIDs: [Self.policyID(5), Self.policyID(149)]))
        let results = decision.policies.map(\.result)
        #expect(results.indices.filter { results[$0] == .failure } == [5, 149])
        #expect(decision.policies[70].conditionsNotSatisfied == .users)
    }

    /// Named locations that overlap (a network inside another, a trusted one inside both, IPv6 inside IPv6): every
    /// location holding the address counts, exclusions win, and the edges of each range are exact.
    @Test(arguments: [
        ("10.2.0.1", [true, false, false]), ("10.1.0.1", [false, false, false]), ("10.1.2.3", [false, true, false]),
        ("10.255.255.255", [true, false, false]), ("11.0.0.0", [false, false, false]), ("10.1.255.255", [false, false, false]),
        ("10.2.0.0", [true, false, false]), ("2001:db8:1::5", [false, false, true]), ("2001:db8:2::5", [false, false, false]),
        ("9.255.255.255", [false, false, false]),
    ])
    func overlappingNamedLocationsAreAllFound(address: String, applies: [Bool]) {
        let ids = (1...5).map { String(format: "10d00000-0000-0000-0000-%012d", $0) }
        let cidrs = ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "2001:db8::/32", "2001:db8:1::/48"]
        let locations: [JSONValue] = zip(ids, cidrs).enumerated().map { index, pair in
            ["id": .string(pair.0), "@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": .string("L\(index)"),
             "isTrusted": .bool(index == 2), "ipRanges": [["cidrAddress": .string(pair.1)]]]
        }
        let policies = [
            Self.policy(Self.policyID(0), conditions: ["locations": ["includeLocations": [.string(ids[0])], "excludeLocations": [.string(ids[1])]]]),
            Self.policy(Self.policyID(1), conditions: ["locations": ["includeLocations": ["AllTrusted"]]]),
            Self.policy(Self.policyID(2), conditions: ["locations": ["includeLocations": [.string(ids[4])]]]),
        ]
        let engine = ConditionalAccessEngine(policies: policies, namedLocations: locations)
        let decision = engine.decide(Self.facts { $0.clientIP = IPAddress(address) })
        #expect(decision.policies.map(\.applied) == applies)
    }
}

extension ConditionalAccessEngineTests {
    /// Ids are looked up by their bytes whatever their length (empty, shorter than a word, a GUID, longer, not ASCII):
    /// each user gets exactly the policy that names them, and an id one byte off gets none.
    @Test func idsOfEveryLengthAreFoundByTheirBytes() {
        let ids = (0...40).map { String(repeating: "x", count: $0) + (($0 % 3 == 0) ? "" : "é") } + [Self.alice, Self.bob + "0"]
        let policies = ids.enumerated().map { index, id in
            Self.policy(Self.policyID(index), conditions: ["users": ["includeUsers": [.string(id)]]])
        }
        let engine = Self.engine(policies)
        for (index, id) in ids.enumerated() {
            let decision = engine.decide(Self.facts { $0.subject = .user(id: id, groupIDs: [], roleTemplateIDs: [], external: nil) })
            #expect(decision.outcome == .block(policyIDs: [Self.policyID(index)]), "\(id.utf8.count) bytes")
            let nearly = engine.decide(Self.facts { $0.subject = .user(id: id + "y", groupIDs: [], roleTemplateIDs: [], external: nil) })
            #expect(nearly.outcome == .allow, "\(id.utf8.count + 1) bytes")
        }
    }
}
