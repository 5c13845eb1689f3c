import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

/// Conditional Access What If (`POST /identity/conditionalAccess/evaluate`) as Microsoft documents it, answered by the
/// engine real sign-ins ask.
@Suite("Conditional Access What If: Graph's evaluate action")
struct WhatIfTests {
    static let evaluate = "identity/conditionalAccess/evaluate"
    static let sharePoint = "00000003-0000-0ff1-ce00-000000000000"

    static func create(_ h: Harness, _ token: String, _ policy: JSONValue) async throws -> String {
        let created = await h.graph("POST", ConditionalAccessTests.policies, token: token, json: policy)
        #expect(created.status == 201, "\(created.text)")
        return try #require(created.json["id"]?.stringValue)
    }

    static func userSignIn(_ userID: String, app: String = sharePoint, conditions: JSONValue = [:], onlyApplied: Bool = false) -> JSONValue {
        ["signInIdentity": ["@odata.type": "#microsoft.graph.userSignIn", "userId": .string(userID)],
         "signInContext": ["@odata.type": "#microsoft.graph.applicationContext", "includeApplications": [.string(app)]],
         "signInConditions": conditions, "appliedPoliciesOnly": .bool(onlyApplied)]
    }

    /// Each policy's answer by display name: (policyApplies, analysisReasons).
    static func answers(_ response: APIResponse) -> [String: (Bool?, String?)] {
        Dictionary((response.json["value"]?.arrayValue ?? []).map {
            ($0["displayName"]?.stringValue ?? "", ($0["policyApplies"]?.boolValue, $0["analysisReasons"]?.stringValue))
        }, uniquingKeysWith: { a, _ in a })
    }

    @Test("Microsoft's first example: the request as documented gets the documented shape, policies applying with notSet")
    func documentedExample() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let user = try await AdminCenterTests.createUser(h, token, "whatif")
            let excluded = try await AdminCenterTests.createUser(h, token, "excluded")
            _ = try await Self.create(h, token, [
                "displayName": "All users except au1_Office 365_No conditions_Session control application enforced restrictions",
                "state": "enabledForReportingButNotEnforced",
                "conditions": ["clientAppTypes": ["all"], "applications": ["includeApplications": ["Office365"]],
                               "users": ["includeUsers": ["All"], "excludeUsers": [.string(excluded)]]],
                // Microsoft's example has an app-enforced-restrictions session control, which the engine cannot evaluate
                // (it would fail closed); a sign-in frequency is a session control it reads.
                "sessionControls": ["signInFrequency": ["value": 4, "type": "hours", "isEnabled": true]]])
            _ = try await Self.create(h, token, [
                "displayName": "All Users except au1_All resources_user risk H_Password change", "state": "enabledForReportingButNotEnforced",
                "conditions": ["userRiskLevels": ["high"], "clientAppTypes": ["all"], "applications": ["includeApplications": ["All"]],
                               "users": ["includeUsers": ["All"], "excludeUsers": [.string(excluded)]]],
                "grantControls": ["operator": "AND", "builtInControls": ["mfa", "passwordChange"]]])
            _ = try await Self.create(h, token, [
                "displayName": "iOS only", "state": "enabled",
                "conditions": ["platforms": ["includePlatforms": ["iOS"]], "applications": ["includeApplications": ["All"]],
                               "users": ["includeUsers": ["All"], "excludeUsers": [.string(h.tenant.adminUserId)]]],
                "grantControls": ["operator": "OR", "builtInControls": ["block"]]])
            // Microsoft's request, word for word but for the user's id.
            let request: JSONValue = [
                "signInIdentity": ["@odata.type": "#microsoft.graph.userSignIn", "userId": .string(user)],
                "signInContext": ["@odata.type": "#microsoft.graph.applicationContext",
                                  "includeApplications": ["00000003-0000-0ff1-ce00-000000000000"]],
                "signInConditions": [
                    "devicePlatform": "android", "clientAppType": "browser", "signInRiskLevel": "high", "userRiskLevel": "high",
                    "country": "US", "ipAddress": "40.77.182.32", "insiderRiskLevel": "elevated",
                    "authenticationFlow": ["transferMethod": "deviceCodeFlow"], "deviceInfo": ["isCompliant": true]],
                "appliedPoliciesOnly": true]
            let response = await h.graph("POST", Self.evaluate, token: token, json: request)
            #expect(response.status == 200, "\(response.text)")
            #expect(response.json["@odata.context"]?.stringValue == "\(Harness.base)/v1.0/$metadata#Collection(microsoft.graph.whatIfAnalysisResult)")
            let value = try #require(response.json["value"]?.arrayValue)
            #expect(value.count == 2)
            for result in value {
                #expect(result["policyApplies"] == true && result["analysisReasons"] == "notSet")
                #expect(result["state"] == "enabledForReportingButNotEnforced")
                #expect(result["id"]?.stringValue != nil && result["createdDateTime"]?.stringValue != nil)
                #expect(result["conditions"]?["users"]?["includeUsers"] == ["All"])
            }
            let office = try #require(value.first { $0["displayName"]?.stringValue?.hasPrefix("All users except au1_Office") == true })
            #expect(office["conditions"]?["applications"]?["includeApplications"] == ["Office365"])
            #expect(office["sessionControls"]?["signInFrequency"]?["value"] == 4)
            // Every policy, with why the others do not apply, when not only the applied ones are asked for.
            var all = request
            all["appliedPoliciesOnly"] = false
            let every = Self.answers(await h.graph("POST", Self.evaluate, token: token, json: all))
            #expect(every.count == 3)
            #expect(every["iOS only"]! == (false, "devicePlatform"))
            // The excluded user: exclusions win.
            var other = request
            other["signInIdentity"] = ["@odata.type": "#microsoft.graph.userSignIn", "userId": .string(excluded)]
            let forExcluded = await h.graph("POST", Self.evaluate, token: token, json: other)
            #expect(forExcluded.json["value"]?.arrayValue?.isEmpty == true, "\(forExcluded.text)")
        }
    }

    @Test("each condition a sign-in misses is named, several at once comma-joined, and a disabled policy is policyNotEnabled")
    func reasons() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let user = try await AdminCenterTests.createUser(h, token, "reasons")
            let office = try await ConditionalAccessTests.office(h, token)  // 203.0.113.0/24, trusted
            let everyone: JSONValue = ["includeUsers": ["All"], "excludeUsers": [.string(h.tenant.adminUserId)]]
            let allApps: JSONValue = ["includeApplications": ["All"]]
            let mfa: JSONValue = ["operator": "OR", "builtInControls": ["mfa"]]
            func policy(_ name: String, _ conditions: [String: JSONValue], state: String = "enabled") -> JSONValue {
                var all: [String: JSONValue] = ["users": everyone, "applications": allApps]
                all.merge(conditions) { _, new in new }
                return ["displayName": .string(name), "state": .string(state), "conditions": .object(all), "grantControls": mfa]
            }
            for body in [
                policy("Another user", ["users": ["includeUsers": [.string(h.tenant.adminUserId)]]]),
                policy("Another application", ["applications": ["includeApplications": ["00000002-0000-0ff1-ce00-000000000000"]]]),
                policy("Outside the office", ["locations": ["includeLocations": ["All"], "excludeLocations": [.string(office)]]]),
                policy("Windows", ["platforms": ["includePlatforms": ["windows"]]]),
                policy("Desktop clients", ["clientAppTypes": ["mobileAppsAndDesktopClients"]]),
                policy("Risky users", ["userRiskLevels": ["high"]]),
                policy("Risky sign-ins", ["signInRiskLevels": ["medium", "high"]]),
                policy("Windows outside the office", ["platforms": ["includePlatforms": ["windows"]],
                                                      "locations": ["includeLocations": ["All"], "excludeLocations": [.string(office)]]]),
                policy("Switched off", [:], state: "disabled"),
                policy("Report-only, everyone", [:], state: "enabledForReportingButNotEnforced"),
            ] { _ = try await Self.create(h, token, body) }
            let response = await h.graph("POST", Self.evaluate, token: token, json: Self.userSignIn(user, conditions: [
                "ipAddress": "203.0.113.40", "devicePlatform": "macOS", "clientAppType": "browser"]))
            #expect(response.status == 200, "\(response.text)")
            let answers = Self.answers(response)
            let expected: [String: (Bool, String)] = [
                "Another user": (false, "users"), "Another application": (false, "application"), "Outside the office": (false, "location"),
                "Windows": (false, "devicePlatform"), "Desktop clients": (false, "clientApps"), "Risky users": (false, "userRisk"),
                "Risky sign-ins": (false, "signInRisk"), "Windows outside the office": (false, "devicePlatform,location"),
                "Switched off": (false, "policyNotEnabled"), "Report-only, everyone": (true, "notSet"),
            ]
            #expect(answers.count == expected.count)
            for (name, answer) in expected { #expect(answers[name]! == answer, "\(name): \(String(describing: answers[name]))") }
            // From outside the office on Windows with risk, what kept them from applying is gone.
            let risky = Self.answers(await h.graph("POST", Self.evaluate, token: token, json: Self.userSignIn(user, conditions: [
                "ipAddress": "198.51.100.9", "devicePlatform": "windows", "userRiskLevel": "high", "signInRiskLevel": "medium"],
                onlyApplied: true)))
            #expect(Set(risky.keys) == ["Outside the office", "Windows", "Risky users", "Risky sign-ins", "Windows outside the office",
                                        "Report-only, everyone"])
        }
    }

    @Test("a country named location applies to the country the question gives, and not without one")
    func country() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let user = try await AdminCenterTests.createUser(h, token, "traveller")
            let location = await h.graph("POST", ConditionalAccessTests.locations, token: token, json: [
                "@odata.type": "#microsoft.graph.countryNamedLocation", "displayName": "New Zealand", "countriesAndRegions": ["NZ"]])
            let locationID = try #require(location.json["id"]?.stringValue)
            _ = try await Self.create(h, token, [
                "displayName": "From New Zealand", "state": "enabled",
                "conditions": ["users": ["includeUsers": [.string(user)]], "applications": ["includeApplications": ["All"]],
                               "locations": ["includeLocations": [.string(locationID)]]],
                "grantControls": ["operator": "OR", "builtInControls": ["mfa"]]])
            func ask(_ conditions: JSONValue) async -> (Bool?, String?)? {
                let response = await h.graph("POST", Self.evaluate, token: token, json: Self.userSignIn(user, conditions: conditions))
                return Self.answers(response)["From New Zealand"]
            }
            #expect(await ask(["country": "nz", "ipAddress": "192.0.2.1"])! == (true, "notSet"))
            #expect(await ask(["country": "AU"])! == (false, "location"))
            #expect(await ask([:])! == (false, "location"))
        }
    }

    @Test("without a country, the address's country counts, as at sign-in: for a user and for a service principal")
    func countryOfTheAddress() async throws {
        try await Harness.run(countries: try CountryDatabaseFixture.load()) { h in
            let token = try await h.accessToken()
            let user = try await AdminCenterTests.createUser(h, token, "dutch")
            let sp = await h.graph("GET", "servicePrincipals", token: token, query: [("$filter", "appId eq '\(h.tenant.clientId)'")])
            let spID = try #require(sp.json["value"]?.arrayValue?.first?["id"]?.stringValue)
            let location = await h.graph("POST", ConditionalAccessTests.locations, token: token, json: [
                "@odata.type": "#microsoft.graph.countryNamedLocation", "displayName": "Netherlands", "countriesAndRegions": ["NL"]])
            let locationID = try #require(location.json["id"]?.stringValue)
            _ = try await Self.create(h, token, [
                "displayName": "From the Netherlands", "state": "enabledForReportingButNotEnforced",
                "conditions": ["users": ["includeUsers": [.string(user)]], "clientApplications": ["includeServicePrincipals": [.string(spID)]],
                               "applications": ["includeApplications": ["All"]], "locations": ["includeLocations": [.string(locationID)]]],
                "grantControls": ["operator": "OR", "builtInControls": ["block"]]])
            func ask(_ identity: JSONValue, _ conditions: JSONValue) async -> (Bool?, String?)? {
                let response = await h.graph("POST", Self.evaluate, token: token, json: [
                    "signInIdentity": identity, "signInConditions": conditions,
                    "signInContext": ["@odata.type": "#microsoft.graph.applicationContext", "includeApplications": [.string(Self.sharePoint)]]])
                return Self.answers(response)["From the Netherlands"]
            }
            let asUser: JSONValue = ["@odata.type": "#microsoft.graph.userSignIn", "userId": .string(user)]
            let asService: JSONValue = ["@odata.type": "#microsoft.graph.servicePrincipalSignIn", "servicePrincipalId": .string(spID)]
            for identity in [asUser, asService] {
                #expect(await ask(identity, ["ipAddress": "193.0.0.10"])! == (true, "notSet"))  // RIPE NCC, Amsterdam
                #expect(await ask(identity, ["ipAddress": "8.8.8.8"])! == (false, "location"))
                #expect(await ask(identity, ["ipAddress": "8.8.8.8", "country": "NL"])! == (true, "notSet"))
            }
        }
    }

    @Test("an external user of a kind and home tenant, with or without an object here, is answered as one")
    func externalUsers() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let partner = "3f1a6c2e-0000-4000-8000-0000000000aa"
            let member = try await AdminCenterTests.createUser(h, token, "member")
            _ = try await Self.create(h, token, [
                "displayName": "Partner guests", "state": "enabled",
                "conditions": ["users": ["includeGuestsOrExternalUsers": [
                    "guestOrExternalUserTypes": "b2bCollaborationGuest",
                    "externalTenants": ["@odata.type": "#microsoft.graph.conditionalAccessEnumeratedExternalTenants",
                                        "membershipKind": "enumerated", "members": [.string(partner)]]]],
                               "applications": ["includeApplications": ["All"]]],
                "grantControls": ["operator": "OR", "builtInControls": ["mfa"]]])
            func ask(_ identity: JSONValue) async -> (Bool?, String?)? {
                let response = await h.graph("POST", Self.evaluate, token: token, json: [
                    "signInIdentity": identity, "signInConditions": [:],
                    "signInContext": ["@odata.type": "#microsoft.graph.applicationContext", "includeApplications": [.string(Self.sharePoint)]]])
                #expect(response.status == 200, "\(response.text)")
                return Self.answers(response)["Partner guests"]
            }
            let guest: JSONValue = ["@odata.type": "#microsoft.graph.userSignIn", "externalTenantId": .string(partner),
                                    "externalUserType": "b2bCollaborationGuest"]
            #expect(await ask(guest)! == (true, "notSet"))
            #expect(await ask(["@odata.type": "#microsoft.graph.userSignIn", "externalTenantId": "3f1a6c2e-0000-4000-8000-0000000000bb",
                               "externalUserType": "b2bCollaborationGuest"])! == (false, "users"))
            // A member of this tenant asked about as the partner's guest, and as itself.
            #expect(await ask(["@odata.type": "#microsoft.graph.userSignIn", "userId": .string(member), "externalTenantId": .string(partner),
                               "externalUserType": "b2bCollaborationGuest"])! == (true, "notSet"))
            #expect(await ask(["@odata.type": "#microsoft.graph.userSignIn", "userId": .string(member)])! == (false, "users"))
        }
    }

    @Test("several applications: a policy applies when it applies to any of them, else every reason it had")
    func severalApplications() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let user = try await AdminCenterTests.createUser(h, token, "several")
            let exchange = "00000002-0000-0ff1-ce00-000000000000", teams = "cc15fd57-2c6c-4117-a88c-83b1d56b4bbe"
            _ = try await Self.create(h, token, [
                "displayName": "Exchange on Windows", "state": "enabled",
                "conditions": ["users": ["includeUsers": [.string(user)]], "applications": ["includeApplications": [.string(exchange)]],
                               "platforms": ["includePlatforms": ["windows"]]],
                "grantControls": ["operator": "OR", "builtInControls": ["mfa"]]])
            func ask(_ apps: [String], platform: String) async -> (Bool?, String?)? {
                Self.answers(await h.graph("POST", Self.evaluate, token: token, json: [
                    "signInIdentity": ["@odata.type": "#microsoft.graph.userSignIn", "userId": .string(user)],
                    "signInContext": ["@odata.type": "#microsoft.graph.applicationContext", "includeApplications": .strings(apps)],
                    "signInConditions": ["devicePlatform": .string(platform)]]))["Exchange on Windows"]
            }
            #expect(await ask([Self.sharePoint, exchange], platform: "windows")! == (true, "notSet"))
            #expect(await ask([Self.sharePoint, teams], platform: "windows")! == (false, "application"))
            #expect(await ask([Self.sharePoint, exchange], platform: "linux")! == (false, "application,devicePlatform"))
            #expect(await ask([exchange, Self.sharePoint], platform: "linux")! == (false, "application,devicePlatform"))
        }
    }

    @Test("a device filter, an authentication flow and insider risk are matched from deviceInfo, authenticationFlow and insiderRiskLevel")
    func devicesFlowsAndInsiderRisk() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let user = try await AdminCenterTests.createUser(h, token, "devices")
            let mfa: JSONValue = ["operator": "OR", "builtInControls": ["mfa"]]
            func policy(_ name: String, _ conditions: [String: JSONValue]) -> JSONValue {
                var all: [String: JSONValue] = ["users": ["includeUsers": [.string(user)]], "applications": ["includeApplications": ["All"]]]
                all.merge(conditions) { _, new in new }
                return ["displayName": .string(name), "state": "enabled", "conditions": .object(all), "grantControls": mfa]
            }
            for body in [
                policy("Hybrid joined devices", ["devices": ["deviceFilter": ["mode": "include", "rule": "device.trustType -eq \"ServerAD\""]]]),
                policy("Device code flow", ["authenticationFlows": ["transferMethods": "deviceCodeFlow"]]),
                policy("Elevated insiders", ["insiderRiskLevels": "elevated"]),
            ] { _ = try await Self.create(h, token, body) }
            let plain = Self.answers(await h.graph("POST", Self.evaluate, token: token, json: Self.userSignIn(user)))
            #expect(plain["Hybrid joined devices"]! == (false, "devices"))
            #expect(plain["Device code flow"]! == (false, "authenticationFlow"))
            #expect(plain["Elevated insiders"]! == (false, "insiderRisk"))
            let matching = Self.answers(await h.graph("POST", Self.evaluate, token: token, json: Self.userSignIn(user, conditions: [
                "deviceInfo": ["deviceId": "5f3e7a1c-0000-4000-8000-000000000001", "trustType": "ServerAD", "isCompliant": true],
                "authenticationFlow": ["transferMethod": "deviceCodeFlow"], "insiderRiskLevel": "elevated"])))
            for name in ["Hybrid joined devices", "Device code flow", "Elevated insiders"] { #expect(matching[name]! == (true, "notSet"), "\(name)") }
        }
    }

    @Test("user actions and authentication contexts are their own targets")
    func userActionsAndContexts() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let user = try await AdminCenterTests.createUser(h, token, "actions")
            let everyone: JSONValue = ["includeUsers": ["All"], "excludeUsers": [.string(h.tenant.adminUserId)]]
            let strength: JSONValue = ["operator": "OR", "authenticationStrength": ["id": "00000000-0000-0000-0000-000000000002"]]
            _ = try await Self.create(h, token, [
                "displayName": "Register security info", "state": "enabled", "grantControls": strength,
                "conditions": ["users": everyone, "applications": ["includeUserActions": ["urn:user:registersecurityinfo"]]]])
            _ = try await Self.create(h, token, [
                "displayName": "Sensitive files", "state": "enabled", "grantControls": strength,
                "conditions": ["users": everyone, "applications": ["includeAuthenticationContextClassReferences": ["c1", "c37"]]]])
            _ = try await Self.create(h, token, ["displayName": "Everything", "state": "enabled", "grantControls": strength,
                                                 "conditions": ["users": everyone, "applications": ["includeApplications": ["All"]]]])
            func ask(_ context: JSONValue) async -> [String: (Bool?, String?)] {
                let response = await h.graph("POST", Self.evaluate, token: token, json: [
                    "signInIdentity": ["@odata.type": "#microsoft.graph.userSignIn", "userId": .string(user)],
                    "signInContext": context, "signInConditions": [:]])
                #expect(response.status == 200, "\(response.text)")
                return Self.answers(response)
            }
            let action = await ask(["@odata.type": "#microsoft.graph.userActionContext", "userAction": "registerSecurityInformation"])
            #expect(action["Register security info"]! == (true, "notSet"))
            #expect(action["Sensitive files"]?.0 == false && action["Everything"]?.0 == false)
            let data = await ask(["@odata.type": "#microsoft.graph.authContext", "authenticationContextValue": "c37"])
            #expect(data["Sensitive files"]! == (true, "notSet"))
            #expect(data["Everything"]! == (false, "authenticationContext"))
            #expect(data["Register security info"]?.0 == false)
            let app = await ask(["@odata.type": "#microsoft.graph.applicationContext", "includeApplications": [.string(Self.sharePoint)]])
            #expect(app["Everything"]! == (true, "notSet"))
            #expect(app["Register security info"]! == (false, "userActions"))
            #expect(app["Sensitive files"]! == (false, "authenticationContext"))
        }
    }

    @Test("a service principal is answered as the token endpoint decides its client credentials")
    func servicePrincipal() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let office = try await ConditionalAccessTests.office(h, token)
            let sp = await h.graph("GET", "servicePrincipals", token: token, query: [("$filter", "appId eq '\(h.tenant.clientId)'")])
            let spID = try #require(sp.json["value"]?.arrayValue?.first?["id"]?.stringValue)
            _ = try await Self.create(h, token, [
                "displayName": "Automation only from the office", "state": "enabled",
                "conditions": ["users": ["includeUsers": ["None"]], "clientApplications": ["includeServicePrincipals": [.string(spID)]],
                               "applications": ["includeApplications": ["All"]],
                               "locations": ["includeLocations": ["All"], "excludeLocations": [.string(office)]]],
                "grantControls": ["operator": "OR", "builtInControls": ["block"]]])
            _ = try await Self.create(h, token, [
                "displayName": "Users only", "state": "enabled",
                "conditions": ["users": ["includeUsers": ["All"], "excludeUsers": [.string(h.tenant.adminUserId)]],
                               "applications": ["includeApplications": ["All"]]],
                "grantControls": ["operator": "OR", "builtInControls": ["mfa"]]])
            func ask(from address: String) async -> [String: (Bool?, String?)] {
                // Microsoft's fourth example, with this tenant's service principal and an address.
                let response = await h.graph("POST", Self.evaluate, token: token, json: [
                    "signInIdentity": ["@odata.type": "#microsoft.graph.servicePrincipalSignIn", "servicePrincipalId": .string(spID)],
                    "signInContext": ["@odata.type": "#microsoft.graph.applicationContext", "includeApplications": [.string(Self.sharePoint)]],
                    "signInConditions": ["servicePrincipalRiskLevel": "high", "country": "CA", "ipAddress": .string(address)]])
                #expect(response.status == 200, "\(response.text)")
                return Self.answers(response)
            }
            let outside = await ask(from: "198.51.100.7")
            #expect(outside["Automation only from the office"]! == (true, "notSet"))
            #expect(outside["Users only"]! == (false, "workloadIdentities"))
            #expect(await h.clientCredentials(from: "198.51.100.7").status == 400)
            let inside = await ask(from: "203.0.113.5")
            #expect(inside["Automation only from the office"]! == (false, "location"))
            #expect(await h.clientCredentials(from: "203.0.113.5").status == 200)
        }
    }

    @Test("the answer for a user is the decision the gate makes for the same sign-in")
    func sameAsTheGate() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let user = try await AdminCenterTests.createUser(h, token, "gate")
            let group = await h.graph("POST", "groups", token: token, json: [
                "displayName": "Outer", "mailEnabled": false, "mailNickname": "outer", "securityEnabled": true])
            let inner = await h.graph("POST", "groups", token: token, json: [
                "displayName": "Inner", "mailEnabled": false, "mailNickname": "inner", "securityEnabled": true])
            let outerID = try #require(group.json["id"]?.stringValue), innerID = try #require(inner.json["id"]?.stringValue)
            // Transitive: the user is in Inner, Inner in Outer; the policy names Outer.
            for (parent, child) in [(outerID, innerID), (innerID, user)] {
                let added = await h.graph("POST", "groups/\(parent)/members/$ref", token: token,
                                          json: ["@odata.id": .string("\(Harness.base)/v1.0/directoryObjects/\(child)")])
                #expect(added.status == 204, "\(added.text)")
            }
            let office = try await ConditionalAccessTests.office(h, token)
            for (name, platform) in [("Outer group, Linux, outside", "linux"), ("Outer group, Windows, outside", "windows")] {
                _ = try await Self.create(h, token, [
                    "displayName": .string(name), "state": "enabled",
                    "conditions": ["users": ["includeGroups": [.string(outerID)]], "applications": ["includeApplications": ["All"]],
                                   "platforms": ["includePlatforms": [.string(platform)]],
                                   "locations": ["includeLocations": ["All"], "excludeLocations": [.string(office)]]],
                    "grantControls": ["operator": "OR", "builtInControls": ["block"]]])
            }
            let tenant = try #require(try await h.app.tenantRecord(h.tenant.tenantId))
            let engine = try await h.app.conditionalAccess.engine(for: tenant, store: h.app.store)
            for address in ["198.51.100.1", "203.0.113.1"] {
                let facts = try await h.app.conditionalAccess.userFacts(
                    app: h.app, tenant: tenant, userID: user, clientID: Self.sharePoint, amr: ["fido"],
                    authTime: Int64(h.clock.now.timeIntervalSince1970), clientAddress: address,
                    userAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36")
                let real = engine.decide(facts).policies.map { ($0.displayName, $0.applied) }
                let whatIf = Self.answers(await h.graph("POST", Self.evaluate, token: token, json: Self.userSignIn(
                    user, conditions: ["ipAddress": .string(address), "devicePlatform": "linux", "clientAppType": "browser"])))
                #expect(real.count == whatIf.count)
                for (name, applied) in real { #expect(whatIf[name]?.0 == applied, "\(name) from \(address)") }
                #expect(real.contains { $0.1 } == (address == "198.51.100.1"))
            }
        }
    }

    @Test("What If agrees with a real interactive sign-in at /authorize: blocked where the policy applies, a code where it does not")
    func sameAsAuthorize() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let s = try await InteractiveAccessTests.setup(h, admin)  // the administrator in Finance, a passkey session
            _ = try await Self.create(h, admin, [
                "displayName": "Finance only from the office", "state": "enabled",
                "conditions": ["users": ["includeGroups": [.string(s.groupID)]], "applications": ["includeApplications": [.string(s.appID)]],
                               "locations": ["includeLocations": ["All"], "excludeLocations": [.string(s.office)]]],
                "grantControls": ["operator": "OR", "builtInControls": ["block"]]])
            for (address, blocked) in [("198.51.100.4", true), ("203.0.113.77", false)] {
                let signIn = await InteractiveAccessTests.authorize(h, s, from: address)
                #expect((signIn.status == 403) == blocked, "\(address): \(signIn.status)")
                let whatIf = Self.answers(await h.graph("POST", Self.evaluate, token: admin, json: Self.userSignIn(
                    h.tenant.adminUserId, app: s.appID, conditions: ["ipAddress": .string(address), "devicePlatform": "windows"])))
                #expect(whatIf["Finance only from the office"]! == (blocked, blocked ? "notSet" : "location"), "\(address)")
            }
        }
    }

    @Test("a policy the engine cannot read applies (it fails closed) with invalidPolicy; a disabled one is policyNotEnabled")
    func failedClosed() throws {
        let unreadable: JSONValue = ["id": "b7c0f8a2-0000-4000-8000-000000000001", "displayName": "Unreadable", "state": "sometimes",
                                     "conditions": ["users": ["includeUsers": ["None"]], "applications": ["includeApplications": ["None"]]],
                                     "grantControls": ["operator": "OR", "builtInControls": ["mfa"]]]
        var disabled = unreadable
        disabled["id"] = "b7c0f8a2-0000-4000-8000-000000000002"
        disabled["state"] = "disabled"
        let engine = ConditionalAccessEngine(policies: [unreadable, disabled], namedLocations: [])
        let question = try WhatIfQuestion(body: Self.userSignIn("b7c0f8a2-0000-4000-8000-0000000000ff").objectValue ?? [:])
        let user = SignInFacts.Subject.user(id: "b7c0f8a2-0000-4000-8000-0000000000ff", groupIDs: [], roleTemplateIDs: [], external: nil)
        let facts = SignInFacts(tenantID: "t", subject: user,
                                target: .application(appID: Self.sharePoint), now: Date(timeIntervalSince1970: 1_800_000_000))
        let answers = WhatIfAnswer.combine([engine.decide(facts).policies], question: question)
        #expect(answers.map(\.applies) == [true, false])
        #expect(answers.map(\.serializedReasons) == ["invalidPolicy", "policyNotEnabled"])
    }

    /// A question that is wrong in one place: `section`'s `key` (or the whole section when nil) set to `value` (or
    /// removed when nil), and the message Graph's 400 carries.
    struct BadQuestion: Sendable, CustomTestStringConvertible {
        let testDescription: String
        let section: String, key: String?, value: JSONValue?, message: String
        init(_ what: String, _ section: String, _ key: String?, _ value: JSONValue?, _ message: String) {
            (testDescription, self.section, self.key, self.value, self.message) = (what, section, key, value, message)
        }

        func applied(to question: JSONValue) -> JSONValue {
            var question = question
            if let key { question[section]?[key] = value } else { question[section] = value }
            return question
        }
    }

    static let unknownID: JSONValue = "6f0b5d2e-0000-4000-8000-000000000001"
    static let badQuestions: [BadQuestion] = [
        .init("an unknown parameter", "evaluateAll", nil, true, "not a valid parameter for the operation 'evaluate'"),
        .init("an unknown condition", "signInConditions", "browser", "Edge", "Property 'browser' does not exist"),
        .init("a platform no single sign-in has", "signInConditions", "devicePlatform", "all",
              "Invalid value 'all' for property 'signInConditions.devicePlatform'"),
        .init("a client app no single sign-in has", "signInConditions", "clientAppType", "easSupported", "signInConditions.clientAppType"),
        .init("a hidden risk", "signInConditions", "signInRiskLevel", "hidden", "signInConditions.signInRiskLevel"),
        .init("an address that is none", "signInConditions", "ipAddress", "10.0.0.300", "signInConditions.ipAddress"),
        .init("a country that is none", "signInConditions", "country", "NZL", "two-letter ISO 3166"),
        .init("a risk of the wrong type", "signInConditions", "userRiskLevel", 3, "expected a string"),
        .init("a device of the wrong type", "signInConditions", "deviceInfo", "compliant", "expected an object"),
        .init("an unknown device property", "signInConditions", "deviceInfo", ["colour": "red"], "Property 'colour' does not exist"),
        .init("no conditions", "signInConditions", nil, nil, "Property 'signInConditions' is required"),
        .init("no identity", "signInIdentity", nil, nil, "Property 'signInIdentity' is required"),
        .init("an identity type that is none", "signInIdentity", nil, ["@odata.type": "#microsoft.graph.deviceSignIn", "deviceId": "x"],
              "Invalid @odata.type '#microsoft.graph.deviceSignIn'"),
        .init("an identity that is not a GUID", "signInIdentity", "servicePrincipalId", "automation", "expected a GUID"),
        .init("an unknown service principal", "signInIdentity", "servicePrincipalId", unknownID, "no service principal"),
        .init("an unknown user", "signInIdentity", nil, ["@odata.type": "#microsoft.graph.userSignIn", "userId": unknownID], "no user"),
        .init("no application", "signInContext", "includeApplications", [], "1 to 20 application ids"),
        .init("an application that is not an id", "signInContext", "includeApplications", ["Office365"], "application ids (GUIDs)"),
        .init("an authentication context that is none", "signInContext", nil,
              ["@odata.type": "#microsoft.graph.authContext", "authenticationContextValue": "c100"], "c1 to c99"),
        .init("a user action that is none", "signInContext", nil,
              ["@odata.type": "#microsoft.graph.userActionContext", "userAction": "unknownFutureValue"], "signInContext.userAction"),
        .init("not only applied policies, but a string", "appliedPoliciesOnly", nil, "yes", "expected a boolean"),
    ]

    @Test("bad questions get Graph's 400, with what is wrong", arguments: badQuestions)
    func badInput(_ bad: BadQuestion) async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let sp = await h.graph("GET", "servicePrincipals", token: token, query: [("$filter", "appId eq '\(h.tenant.clientId)'")])
            let spID = try #require(sp.json["value"]?.arrayValue?.first?["id"]?.stringValue)
            let good: JSONValue = [
                "signInIdentity": ["@odata.type": "#microsoft.graph.servicePrincipalSignIn", "servicePrincipalId": .string(spID)],
                "signInContext": ["@odata.type": "#microsoft.graph.applicationContext", "includeApplications": [.string(Self.sharePoint)]],
                "signInConditions": ["ipAddress": "203.0.113.1"]]
            #expect(await h.graph("POST", Self.evaluate, token: token, json: good).status == 200)
            let response = await h.graph("POST", Self.evaluate, token: token, json: bad.applied(to: good))
            #expect(response.status == 400 && response.errorCode == "Request_BadRequest", "\(response.text)")
            #expect(response.json["error"]?["message"]?.stringValue?.contains(bad.message) == true, "\(response.text)")
        }
    }

    @Test("a body that is not JSON is Graph's 400")
    func notJSON() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let response = await h.send("POST", "/v1.0/\(Self.evaluate)", headers: ["authorization": "Bearer \(token)",
                                                                                  "content-type": "application/json"],
                                        body: Array(#"{"signInIdentity":"#.utf8))
            #expect(response.status == 400 && response.errorCode == "Request_BadRequest")
            #expect(response.json["error"]?["message"]?.stringValue?.hasPrefix("Unable to read JSON request payload") == true)
        }
    }

    @Test("only a caller that may read Conditional Access policies may ask; others get 403, and GET is not the action")
    func permission() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let user = try await AdminCenterTests.createUser(h, admin, "asked")
            func appToken(_ permission: String) async throws -> String {
                let app = await h.graph("POST", "applications", token: admin, json: ["displayName": .string(permission)])
                let appId = try #require(app.json["appId"]?.stringValue), objectID = try #require(app.json["id"]?.stringValue)
                let sp = await h.graph("POST", "servicePrincipals", token: admin, json: ["appId": .string(appId)])
                let spID = try #require(sp.json["id"]?.stringValue)
                let graph = await h.graph("GET", "servicePrincipals", token: admin, query: [("$filter", "appId eq '\(GraphPermissions.graphAppId)'")])
                let graphID = try #require(graph.json["value"]?.arrayValue?.first?["id"]?.stringValue)
                let grant = await h.graph("POST", "servicePrincipals/\(spID)/appRoleAssignments", token: admin, json: [
                    "principalId": .string(spID), "resourceId": .string(graphID),
                    "appRoleId": .string(try #require(GraphPermissions.byValue(permission)).id)])
                #expect(grant.status == 201)
                let secret = await h.graph("POST", "applications/\(objectID)/addPassword", token: admin,
                                           json: ["passwordCredential": ["displayName": "t"]])
                return try await h.accessToken(clientId: appId, secret: try #require(secret.json["secretText"]?.stringValue))
            }
            let question = Self.userSignIn(user)
            let denied = await h.graph("POST", Self.evaluate, token: try await appToken("User.Read.All"), json: question)
            #expect(denied.status == 403 && denied.errorCode == "Authorization_RequestDenied", "\(denied.text)")
            #expect(denied.json["error"]?["message"]?.stringValue?.isEmpty == false)
            let reader = await h.graph("POST", Self.evaluate, token: try await appToken("Policy.Read.ConditionalAccess"), json: question)
            #expect(reader.status == 200, "\(reader.text)")
            #expect(await h.graph("GET", Self.evaluate, token: admin).status == 405)
        }
    }
}
