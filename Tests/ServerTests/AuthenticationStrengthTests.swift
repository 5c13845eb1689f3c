import Backup
import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

@Suite("Authentication strength policies over Graph, and Conditional Access policies that require a custom one")
struct AuthenticationStrengthTests {
    static let policies = "identity/conditionalAccess/authenticationStrength/policies"
    static let alias = "policies/authenticationStrengthPolicies"
    static let yubiKey5 = "cb69481e-8ff7-4039-93ec-0a2729a154a8"
    static let otherKey = "ee882879-721c-4913-9775-3dfcce97072a"

    static func create(_ h: Harness, _ token: String, _ name: String, _ combinations: [String]) async throws -> String {
        let created = await h.graph("POST", policies, token: token, json: [
            "displayName": .string(name), "allowedCombinations": .array(combinations.map(JSONValue.string))])
        #expect(created.status == 201, "\(created.text)")
        return try #require(created.json["id"]?.stringValue)
    }

    static func caPolicy(_ name: String, strength: String, state: String = "enabled") -> JSONValue {
        ["displayName": .string(name), "state": .string(state),
         "conditions": ["users": ["includeUsers": ["All"]], "applications": ["includeApplications": ["All"]]],
         "grantControls": ["operator": "OR", "authenticationStrength": ["id": .string(strength)]]]
    }

    @Test("the built-ins are listed with Microsoft's ids, names and combinations, filter by policyType, and refuse every write")
    func builtIns() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let list = await h.graph("GET", Self.policies, token: token)
            #expect(list.status == 200, "\(list.text)")
            let values = list.json["value"]?.arrayValue ?? []
            #expect(values.map { $0["id"] } == ["00000000-0000-0000-0000-000000000002", "00000000-0000-0000-0000-000000000003",
                                                "00000000-0000-0000-0000-000000000004"])
            #expect(values.allSatisfy { $0["policyType"] == "builtIn" && $0["requirementsSatisfied"] == "mfa" })
            #expect(values[2]["displayName"] == "Phishing-resistant MFA")
            #expect(values[2]["allowedCombinations"] == ["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor"])
            #expect(values[0]["allowedCombinations"]?.arrayValue?.contains("password,softwareOath") == true)
            #expect(values[0]["description"] == "Combinations of methods that satisfy strong authentication, such as a password + SMS")
            #expect(values[0]["combinationConfigurations"] == [])
            // The same collection at /policies/authenticationStrengthPolicies.
            let alias = await h.graph("GET", "\(Self.alias)/00000000-0000-0000-0000-000000000004", token: token)
            #expect(alias.status == 200 && alias.json["displayName"] == "Phishing-resistant MFA", "\(alias.text)")
            #expect(alias.json["@odata.context"]?.stringValue?.hasSuffix("#policies/authenticationStrengthPolicies/$entity") == true)

            _ = try await Self.create(h, token, "Keys only", ["fido2"])
            let builtInOnly = await h.graph("GET", Self.policies, token: token, query: [("$filter", "policyType eq 'builtIn'")])
            #expect(builtInOnly.json["value"]?.arrayValue?.count == 3, "\(builtInOnly.text)")
            let customOnly = await h.graph("GET", Self.alias, token: token, query: [("$filter", "policyType eq 'custom'"), ("$select", "displayName")])
            #expect(customOnly.json["value"]?.arrayValue?.map { $0["displayName"] } == ["Keys only"], "\(customOnly.text)")
            let count = await h.graph("GET", "\(Self.policies)/$count", token: token, query: [("$filter", "policyType eq 'custom'")])
            #expect(count.status == 200 && count.text == "1", "\(count.text)")

            let builtIn = "\(Self.policies)/00000000-0000-0000-0000-000000000003"
            for (method, path, body) in [("PATCH", builtIn, ["displayName": "Mine"] as JSONValue), ("DELETE", builtIn, nil),
                                         ("POST", "\(builtIn)/updateAllowedCombinations", ["allowedCombinations": ["fido2"]]),
                                         ("POST", "\(builtIn)/combinationConfigurations",
                                          ["@odata.type": "#microsoft.graph.fido2CombinationConfiguration", "appliesToCombinations": ["fido2"],
                                           "allowedAAGUIDs": [.string(Self.yubiKey5)]])] {
                let refused = await h.graph(method, path, token: token, json: body)
                #expect(refused.status == 400 && refused.errorCode == "Request_BadRequest", "\(method) \(path): \(refused.text)")
                #expect(refused.text.contains("uilt-in authentication strength"), "\(refused.text)")
            }
            #expect(await h.graph("GET", builtIn, token: token).json["displayName"] == "Passwordless MFA")

            let modes = await h.graph("GET", "identity/conditionalAccess/authenticationStrength/authenticationMethodModes", token: token)
            let fido2 = modes.json["value"]?.arrayValue?.first { $0["id"] == "fido2" }
            #expect(fido2?["displayName"] == "FIDO2 Security Key" && fido2?["authenticationMethod"] == "fido2", "\(modes.text)")
            let combinations = await h.graph("GET", "identity/conditionalAccess/authenticationStrength/combinations", token: token)
            #expect(combinations.json["value"]?.arrayValue?.count == 22 && combinations.json["value"]?.arrayValue?.contains("password,sms") == true)
            let root = await h.graph("GET", "identity/conditionalAccess/authenticationStrength", token: token)
            #expect(root.status == 200 && root.json["combinations"] == combinations.json["value"], "\(root.text)")
        }
    }

    @Test("a custom strength is created, read, renamed, its combinations changed by the action, deleted; each audited")
    func lifecycle() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            // Microsoft's example body: combinations in any order and spacing.
            let created = await h.graph("POST", Self.alias, token: token, json: [
                "@odata.type": "#microsoft.graph.authenticationStrengthPolicy", "displayName": "Contoso authentication level",
                "description": "The only authentication level allowed to access our secret apps",
                "allowedCombinations": ["password, hardwareOath", "sms, password"]])
            #expect(created.status == 201, "\(created.text)")
            let id = try #require(created.json["id"]?.stringValue)
            #expect(created.json["policyType"] == "custom" && created.json["requirementsSatisfied"] == "mfa")
            #expect(created.json["allowedCombinations"] == ["password,hardwareOath", "password,sms"])
            #expect(created.json["createdDateTime"]?.stringValue == Timestamp.format(h.clock.now))
            #expect(created.json["combinationConfigurations"] == [])

            #expect(await h.graph("PATCH", "\(Self.policies)/\(id)", token: token, json: [
                "@odata.type": "#microsoft.graph.authenticationStrengthPolicy", "displayName": "FIDO2 only",
                "description": "An auth strength allowing only FIDO2 security keys."]).status == 204)
            let changeCombinations = await h.graph("PATCH", "\(Self.policies)/\(id)", token: token, json: ["allowedCombinations": ["fido2"]])
            #expect(changeCombinations.status == 400 && changeCombinations.text.contains("updateAllowedCombinations"))
            let readOnly = await h.graph("PATCH", "\(Self.policies)/\(id)", token: token, json: ["policyType": "builtIn"])
            #expect(readOnly.status == 400, "\(readOnly.text)")

            let updated = await h.graph("POST", "\(Self.policies)/\(id)/updateAllowedCombinations", token: token,
                                        json: ["allowedCombinations": ["fido2", "password"]])
            #expect(updated.status == 200, "\(updated.text)")
            #expect(updated.json["previousCombinations"] == ["password,hardwareOath", "password,sms"])
            #expect(updated.json["currentCombinations"] == ["fido2", "password"])
            #expect(updated.json["conditionalAccessReferences"] == [] && updated.json["additionalInformation"] == .null)
            let read = await h.graph("GET", "\(Self.alias)/\(id)", token: token)
            #expect(read.json["displayName"] == "FIDO2 only" && read.json["allowedCombinations"] == ["fido2", "password"])
            #expect(read.json["requirementsSatisfied"] == "none", "a password alone is one factor")

            // Names are unique among the tenant's strengths, the built-ins' included.
            for name in ["fido2 ONLY", "Phishing-resistant MFA"] {
                let duplicate = await h.graph("POST", Self.policies, token: token, json: ["displayName": .string(name), "allowedCombinations": ["fido2"]])
                #expect(duplicate.status == 400 && duplicate.text.contains("already exists"), "\(duplicate.text)")
            }

            // Microsoft's delete example: DELETE …/policies/authenticationStrengthPolicies/{id}/$ref.
            #expect(await h.graph("DELETE", "\(Self.alias)/\(id)/$ref", token: token).status == 204)
            #expect(await h.graph("GET", "\(Self.policies)/\(id)", token: token).status == 404)
            #expect(await h.graph("DELETE", "\(Self.policies)/\(id)", token: token).status == 404)

            let audit = await h.graph("GET", "auditLogs/directoryAudits", token: token).json["value"]?.arrayValue ?? []
            let strengthAudits = audit.filter { $0["activityDisplayName"]?.stringValue?.hasSuffix("authentication strength policy") == true }
            #expect(Set(strengthAudits.compactMap { $0["activityDisplayName"]?.stringValue })
                    == ["Add authentication strength policy", "Update authentication strength policy", "Delete authentication strength policy"])
            #expect(strengthAudits.allSatisfy { $0["category"] == "Policy" })
        }
    }

    @Test("bad bodies are refused with Graph errors and nothing is written")
    func badInput() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            func refused(_ body: JSONValue, _ message: String) async {
                let response = await h.graph("POST", Self.policies, token: token, json: body)
                #expect(response.status == 400 && response.errorCode == "Request_BadRequest", "\(response.text)")
                #expect(response.text.contains(message), "\(response.text)")
            }
            await refused(["displayName": "Pigeon", "allowedCombinations": ["password,pigeon"]], "pigeon")
            await refused(["displayName": "Two weak", "allowedCombinations": ["sms,voice"]], "not one an authentication strength may allow")
            await refused(["displayName": "Nothing", "allowedCombinations": []], "allowedCombinations' is required")
            await refused(["displayName": "Not strings", "allowedCombinations": [7]], "allowedCombinations")
            await refused(["allowedCombinations": ["fido2"]], "displayName")
            await refused(["displayName": "  ", "allowedCombinations": ["fido2"]], "displayName")
            await refused(["displayName": "Built", "policyType": "builtIn", "allowedCombinations": ["fido2"]], "custom")
            await refused(["displayName": "Mine", "requirementsSatisfied": "mfa", "allowedCombinations": ["fido2"]], "read-only")
            await refused(["displayName": "Odd", "allowedCombinations": ["fido2"], "colour": "blue"], "colour")
            await refused(["displayName": "Bad key", "allowedCombinations": ["fido2"],
                           "combinationConfigurations": [["@odata.type": "#microsoft.graph.fido2CombinationConfiguration",
                                                          "appliesToCombinations": ["fido2"], "allowedAAGUIDs": ["not-a-guid"]]]], "AAGUID")
            let list = await h.graph("GET", Self.policies, token: token)
            #expect(list.json["value"]?.arrayValue?.count == 3, "nothing written: \(list.text)")
            let audit = await h.graph("GET", "auditLogs/directoryAudits", token: token).json["value"]?.arrayValue ?? []
            #expect(!audit.contains { $0["activityDisplayName"] == "Add authentication strength policy" })
        }
    }

    @Test("a tenant holds at most 15 custom strengths; the 16th is refused; another tenant sees none of them")
    func limitAndIsolation() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            for n in 1...15 { _ = try await Self.create(h, token, "Strength \(n)", ["fido2"]) }
            let sixteenth = await h.graph("POST", Self.policies, token: token, json: ["displayName": "Strength 16", "allowedCombinations": ["fido2"]])
            #expect(sixteenth.status == 400 && sixteenth.text.contains("(15)"), "\(sixteenth.text)")
            #expect(await h.graph("GET", Self.policies, token: token).json["value"]?.arrayValue?.count == 18)

            let other = try await TenantProvisioner(directory: h.app.directory).create(name: "Fabrikam", domain: "fabrikam.test")
            let theirs = try await h.accessToken(clientId: other.clientId, secret: other.clientSecret, tenant: other.tenantId)
            #expect(await h.graph("GET", Self.policies, token: theirs).json["value"]?.arrayValue?.count == 3)
            let mine = try #require(await h.graph("GET", Self.policies, token: token).json["value"]?.arrayValue?.last?["id"]?.stringValue)
            #expect(await h.graph("GET", "\(Self.policies)/\(mine)", token: theirs).status == 404)
            #expect(await h.graph("DELETE", "\(Self.policies)/\(mine)", token: theirs).status == 404)
            // Their first custom strength is allowed: the limit is per tenant.
            _ = try await Self.create(h, theirs, "Strength 1", ["fido2"])
        }
    }

    @Test("a Conditional Access policy may require a custom strength, shows it as it is now, and keeps it from being deleted")
    func inUse() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let strength = try await Self.create(h, token, "Keys", ["fido2", "windowsHelloForBusiness"])
            let missing = await h.graph("POST", ConditionalAccessTests.policies, token: token, json: Self.caPolicy("Ghost", strength: Identifier.make()))
            #expect(missing.status == 400 && missing.text.contains("authenticationStrength"), "\(missing.text)")

            let created = await h.graph("POST", ConditionalAccessTests.policies, token: token, json: Self.caPolicy("Keys for all", strength: strength))
            #expect(created.status == 201, "\(created.text)")
            let policyID = try #require(created.json["id"]?.stringValue)
            #expect(created.json["grantControls"]?["authenticationStrength"]?["displayName"] == "Keys")
            #expect(created.json["grantControls"]?["authenticationStrength"]?["allowedCombinations"] == ["fido2", "windowsHelloForBusiness"])

            let inUse = await h.graph("DELETE", "\(Self.policies)/\(strength)", token: token)
            #expect(inUse.status == 400 && inUse.text.contains("is used by the Conditional Access policy 'Keys for all'"), "\(inUse.text)")

            // The policy shows the strength as it is now, after a rename and a change of combinations.
            #expect(await h.graph("PATCH", "\(Self.policies)/\(strength)", token: token, json: ["displayName": "Security keys"]).status == 204)
            let lowered = await h.graph("POST", "\(Self.policies)/\(strength)/updateAllowedCombinations", token: token,
                                        json: ["allowedCombinations": ["fido2", "password,sms"]])
            #expect(lowered.json["conditionalAccessReferences"] == [.string(policyID)], "\(lowered.text)")
            #expect(lowered.json["additionalInformation"]?.stringValue?.contains("lowered the security") == true)
            let shown = await h.graph("GET", "\(ConditionalAccessTests.policies)/\(policyID)", token: token).json["grantControls"]?["authenticationStrength"]
            #expect(shown?["displayName"] == "Security keys" && shown?["allowedCombinations"] == ["fido2", "password,sms"], "\(String(describing: shown))")
            // A later change to the policy keeps the strength (its shown members are not a request to change it).
            #expect(await h.graph("PATCH", "\(ConditionalAccessTests.policies)/\(policyID)", token: token, json: ["state": "disabled"]).status == 204)

            let usage = await h.graph("GET", "\(Self.policies)/\(strength)/usage()", token: token)
            #expect(usage.status == 200, "\(usage.text)")
            #expect(usage.json["none"]?.arrayValue?.map { $0["id"] } == [.string(policyID)] && usage.json["mfa"] == [])

            // Deleted, the policy could be restored: still in use. Purged, it is not.
            #expect(await h.graph("DELETE", "\(ConditionalAccessTests.policies)/\(policyID)", token: token).status == 204)
            let stillUsed = await h.graph("DELETE", "\(Self.policies)/\(strength)", token: token)
            #expect(stillUsed.status == 400 && stillUsed.text.contains("(in deleted items)"), "\(stillUsed.text)")
            #expect(await h.graph("DELETE", "identity/conditionalAccess/deletedItems/policies/\(policyID)", token: token).status == 204)
            #expect(await h.graph("DELETE", "\(Self.policies)/\(strength)", token: token).status == 204)
        }
    }

    @Test("a strength a policy needs an MFA claim from cannot be lowered to one factor")
    func mfaClaimKept() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let strength = try await Self.create(h, token, "Strong", ["fido2", "password,softwareOath"])
            guard case .object(var body) = Self.caPolicy("Risky users change their password", strength: strength) else { return }
            body["grantControls"] = ["operator": "AND", "builtInControls": ["passwordChange"], "authenticationStrength": ["id": .string(strength)]]
            let created = await h.graph("POST", ConditionalAccessTests.policies, token: token, json: .object(body))
            #expect(created.status == 201, "\(created.text)")
            let usage = await h.graph("GET", "\(Self.policies)/\(strength)/microsoft.graph.usage()", token: token)
            #expect(usage.json["mfa"]?.arrayValue?.count == 1 && usage.json["none"] == [], "\(usage.text)")
            let weaker = await h.graph("POST", "\(Self.policies)/\(strength)/updateAllowedCombinations", token: token,
                                       json: ["allowedCombinations": ["fido2", "password"]])
            #expect(weaker.status == 400 && weaker.text.contains("needs multifactor authentication"), "\(weaker.text)")
            #expect(await h.graph("GET", "\(Self.policies)/\(strength)", token: token).json["allowedCombinations"] == ["fido2", "password,softwareOath"])
        }
    }

    @Test("combination configurations: FIDO2 AAGUIDs on a strength allowing fido2, validated, changed and removed")
    func combinationConfigurations() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let strength = try await Self.create(h, token, "Keys", ["fido2"])
            let path = "\(Self.policies)/\(strength)/combinationConfigurations"
            let body: JSONValue = ["@odata.type": "#microsoft.graph.fido2CombinationConfiguration",
                                   "allowedAAGUIDs": [.string(Self.yubiKey5.uppercased())], "appliesToCombinations": ["fido2"]]
            let created = await h.graph("POST", path, token: token, json: body)
            #expect(created.status == 201, "\(created.text)")
            let id = try #require(created.json["id"]?.stringValue)
            #expect(created.json["allowedAAGUIDs"] == [.string(Self.yubiKey5)] && created.json["@odata.type"] == "#microsoft.graph.fido2CombinationConfiguration")
            #expect(await h.graph("GET", "\(path)/\(id)", token: token).json["appliesToCombinations"] == ["fido2"])
            #expect(await h.graph("GET", path, token: token).json["value"]?.arrayValue?.count == 1)
            #expect(await h.graph("GET", "\(Self.policies)/\(strength)", token: token).json["combinationConfigurations"]?.arrayValue?.count == 1)

            func refused(_ method: String, _ at: String, _ json: JSONValue, _ message: String) async {
                let response = await h.graph(method, at, token: token, json: json)
                #expect(response.status == 400, "\(response.text)")
                #expect(response.text.contains(message), "\(response.text)")
            }
            await refused("POST", path, body, "already has a combination configuration")
            await refused("PATCH", "\(path)/\(id)", ["allowedAAGUIDs": ["yubikey"]], "AAGUID")
            await refused("PATCH", "\(path)/\(id)", ["allowedAAGUIDs": []], "allowedAAGUIDs")
            await refused("PATCH", "\(path)/\(id)", ["appliesToCombinations": ["password"]], "applies to [\\\"fido2\\\"] only")
            await refused("POST", "\(Self.policies)/\(strength)/updateAllowedCombinations", ["allowedCombinations": ["windowsHelloForBusiness"]],
                          "cannot be removed while a combination configuration applies to it")
            let noFido = try await Self.create(h, token, "Hello", ["windowsHelloForBusiness"])
            await refused("POST", "\(Self.policies)/\(noFido)/combinationConfigurations", body, "do not include fido2")
            await refused("POST", "\(Self.policies)/\(noFido)/combinationConfigurations",
                          ["@odata.type": "#microsoft.graph.x509CertificateCombinationConfiguration", "appliesToCombinations": ["x509CertificateMultiFactor"]],
                          "only fido2CombinationConfiguration")

            #expect(await h.graph("PATCH", "\(path)/\(id)", token: token,
                                  json: ["allowedAAGUIDs": [.string(Self.yubiKey5), .string(Self.otherKey)]]).status == 204)
            #expect(await h.graph("GET", "\(path)/\(id)", token: token).json["allowedAAGUIDs"] == [.string(Self.yubiKey5), .string(Self.otherKey)])
            #expect(await h.graph("DELETE", "\(path)/\(id)", token: token).status == 204)
            #expect(await h.graph("GET", "\(path)/\(id)", token: token).status == 404)
            #expect(await h.graph("GET", path, token: token).json["value"] == [])
        }
    }

    @Test("a policy requiring a custom strength is enforced by the gate's engine: its combinations and its AAGUIDs")
    func enforced() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let strength = try await Self.create(h, token, "YubiKey 5 only", ["fido2"])
            _ = await h.graph("POST", "\(Self.policies)/\(strength)/combinationConfigurations", token: token, json: [
                "@odata.type": "#microsoft.graph.fido2CombinationConfiguration", "allowedAAGUIDs": [.string(Self.yubiKey5)],
                "appliesToCombinations": ["fido2"]])
            let created = await h.graph("POST", ConditionalAccessTests.policies, token: token, json: Self.caPolicy("Keys for all", strength: strength))
            #expect(created.status == 201, "\(created.text)")
            let tenantID = h.tenant.tenantId
            let tenant = try #require(try await h.app.store.read { tx in try await tx.tenant(tenantID) })
            let engine = try await h.app.conditionalAccess.engine(for: tenant, store: h.app.store)
            func decide(_ methods: [SignInFacts.MethodUse]) -> ConditionalAccessDecision.Outcome {
                engine.decide(SignInFacts(tenantID: tenantID, subject: .user(id: h.tenant.adminUserId, groupIDs: [], roleTemplateIDs: [], external: nil),
                                          target: .application(appID: Identifier.make()), methodsUsed: methods, now: h.clock.now)).outcome
            }
            #expect(decide([.init(.fido2, at: h.clock.now, aaguid: Self.yubiKey5)]) == .allow)
            let expected = AuthenticationStrength(id: strength, displayName: "YubiKey 5 only", allowedCombinations: [.fido2],
                                                  fido2AllowedAAGUIDs: [Self.yubiKey5])
            for methods: [SignInFacts.MethodUse] in [[.init(.fido2, at: h.clock.now, aaguid: Self.otherKey)],
                                                     [.init(.temporaryAccessPassOneTime, at: h.clock.now)], []] {
                guard case .needs(let sets) = decide(methods) else {
                    Issue.record("\(methods) should not satisfy the strength")
                    continue
                }
                #expect(sets.flatMap(\.requirements) == [.authenticationStrength(expected)])
            }

            // A change to the strength reaches the engine at the next decision: any passkey once the AAGUID list goes.
            let configurations = await h.graph("GET", "\(Self.policies)/\(strength)/combinationConfigurations", token: token)
            let configuration = try #require(configurations.json["value"]?.arrayValue?.first?["id"]?.stringValue)
            #expect(await h.graph("DELETE", "\(Self.policies)/\(strength)/combinationConfigurations/\(configuration)", token: token).status == 204)
            let moved = try #require(try await h.app.store.read { tx in try await tx.tenant(tenantID) })
            let recompiled = try await h.app.conditionalAccess.engine(for: moved, store: h.app.store)
            let otherKey = recompiled.decide(SignInFacts(
                tenantID: tenantID, subject: .user(id: h.tenant.adminUserId, groupIDs: [], roleTemplateIDs: [], external: nil),
                target: .application(appID: Identifier.make()), methodsUsed: [.init(.fido2, at: h.clock.now, aaguid: Self.otherKey)], now: h.clock.now))
            #expect(otherKey.outcome == .allow)
        }
    }

    @Test("at /authorize a custom strength admits a passkey of an allowed model and refuses another model's")
    func enforcedAtSignIn() async throws {
        try await Harness.run { h in
            let admin = try await h.accessToken()
            let s = try await InteractiveAccessTests.setup(h, admin)
            let strength = try await Self.create(h, admin, "YubiKey 5 only", ["fido2"])
            _ = await h.graph("POST", "\(Self.policies)/\(strength)/combinationConfigurations", token: admin, json: [
                "@odata.type": "#microsoft.graph.fido2CombinationConfiguration", "allowedAAGUIDs": [.string(Self.yubiKey5)],
                "appliesToCombinations": ["fido2"]])
            let created = await h.graph("POST", ConditionalAccessTests.policies, token: admin, json: [
                "displayName": "Payroll: company keys", "state": "enabled",
                "conditions": ["users": ["includeUsers": ["All"]], "applications": ["includeApplications": [.string(s.appID)]]],
                "grantControls": ["operator": "OR", "authenticationStrength": ["id": .string(strength)]]])
            #expect(created.status == 201, "\(created.text)")
            func session(aaguid: String) async throws -> InteractiveAccessTests.Setup {
                let (_, setCookie) = try await SignInSessions(app: h.app).start(tenant: h.tenant.tenantId, userID: h.tenant.adminUserId,
                                                                                amr: ["fido", "mfa"], aaguid: aaguid, baseURL: Harness.base)
                return InteractiveAccessTests.Setup(appID: s.appID, groupID: s.groupID, office: s.office,
                                                    cookie: String(setCookie.split(separator: ";")[0]))
            }
            let allowed = await InteractiveAccessTests.authorize(h, try await session(aaguid: Self.yubiKey5), from: "198.51.100.4")
            #expect(InteractiveAccessTests.location(allowed)?.hasPrefix(InteractiveAccessTests.web + "?code=") == true, "\(allowed.text)")
            let refused = await InteractiveAccessTests.authorize(h, try await session(aaguid: Self.otherKey), from: "198.51.100.4")
            #expect(refused.status == 403 && refused.text.contains("AADSTS53003"), "\(refused.status) \(refused.text)")
        }
    }

    @Test("custom strengths are in every snapshot: a renamed one is put back, a deleted one created again, an added one removed")
    func backupAndRecovery() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let renamed = try await Self.create(h, token, "Keys", ["fido2"])
            let deleted = try await Self.create(h, token, "Hello", ["windowsHelloForBusiness"])
            let snapshot = try await h.app.backup.snapshot(tenant: h.tenant.tenantId)
            #expect(await h.graph("PATCH", "\(Self.policies)/\(renamed)", token: token, json: ["displayName": "Any passkey"]).status == 204)
            #expect(await h.graph("DELETE", "\(Self.policies)/\(deleted)", token: token).status == 204)
            let added = try await Self.create(h, token, "Texts", ["password,sms"])

            let report = try await h.app.backup.difference(tenant: h.tenant.tenantId, from: snapshot.id, to: nil)
            let actions = Dictionary(uniqueKeysWithValues: report.changes.filter { $0.kind == .authenticationStrengthPolicy }.map { ($0.id, $0.action) })
            #expect(actions == [renamed: .update, deleted: .recreate, added: .softDelete], "\(report.changes)")
            #expect(DifferenceReport.entityTypeName(.authenticationStrengthPolicy) == "authenticationStrengthPolicy")

            let (_, outcomes, _) = try await h.app.backup.recover(tenant: h.tenant.tenantId, snapshot: snapshot.id,
                                                                   filter: .entityTypes(["authenticationstrengthpolicy"]),
                                                                   directory: h.app.directory, actor: .system)
            #expect(outcomes.count == 3 && outcomes.allSatisfy { $0.failure == nil }, "\(outcomes)")
            #expect(await h.graph("GET", "\(Self.policies)/\(renamed)", token: token).json["displayName"] == "Keys")
            #expect(await h.graph("GET", "\(Self.policies)/\(deleted)", token: token).json["allowedCombinations"] == ["windowsHelloForBusiness"])
            #expect(await h.graph("GET", "\(Self.policies)/\(added)", token: token).status == 404)
        }
    }

    @Test("Conditional Access and Security Administrators change strengths; a Security Reader reads them only")
    func roles() async throws {
        try await Harness.run { h in
            let body: JSONValue = ["displayName": "Keys", "allowedCombinations": ["fido2"]]
            let reader = try await h.caller(named: "reader", role: BuiltInRoles.securityReader)
            #expect(try await h.graph("GET", Self.policies, as: reader).json["value"]?.arrayValue?.count == 3)
            await #expect(throws: DirectoryError.self) { try await h.graph("POST", Self.policies, body, as: reader) }
            let policyAdmin = try await h.caller(named: "policyadmin", role: BuiltInRoles.authenticationPolicyAdministrator)
            await #expect(throws: DirectoryError.self) { try await h.graph("POST", Self.policies, body, as: policyAdmin) }
            let caAdmin = try await h.caller(named: "caadmin", role: BuiltInRoles.conditionalAccessAdministrator)
            #expect(try await h.graph("POST", Self.policies, body, as: caAdmin).status == 201)
            let securityAdmin = try await h.caller(named: "secadmin", role: BuiltInRoles.securityAdministrator)
            #expect(try await h.graph("POST", Self.policies, ["displayName": "Hello", "allowedCombinations": ["windowsHelloForBusiness"]],
                                   as: securityAdmin).status == 201)
        }
    }
}
