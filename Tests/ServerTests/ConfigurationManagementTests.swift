import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

/// Tenant Configuration Management over Graph v1.0 (`/admin/configurationManagement`), as Microsoft documents it.
@Suite("Tenant configuration management: snapshots, monitors, results and drifts")
struct ConfigurationManagementTests {
    static let root = "admin/configurationManagement"
    static let policies = "identity/conditionalAccess/policies"
    static let fido2 = "policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2"

    static let policy: JSONValue = [
        "displayName": "Require MFA for admins", "state": "enabledForReportingButNotEnforced",
        "conditions": ["users": ["includeRoles": [.string(BuiltInRoles.globalAdministrator)]], "applications": ["includeApplications": ["All"]],
                       "clientAppTypes": ["all"]],
        "grantControls": ["operator": "OR", "builtInControls": ["mfa"]],
    ]

    /// Microsoft's example of a monitor, over the resources Tessera has: a Conditional Access policy and the FIDO2 method.
    static let monitor: JSONValue = [
        "displayName": "Demo Monitor", "description": "This is a Demo Monitor",
        "baseline": [
            "displayName": "Demo Baseline", "description": "Conditional Access and passkeys",
            "resources": [
                ["displayName": "Admin MFA policy", "resourceType": "microsoft.entra.conditionalAccessPolicy",
                 "properties": ["DisplayName": "Require MFA for admins", "State": "enabledForReportingButNotEnforced", "BuiltInControls": ["mfa"],
                                "Ensure": "Present"]],
                ["displayName": "Passkeys", "resourceType": "microsoft.entra.authenticationMethodPolicyFido2",
                 "properties": ["Id": "Fido2", "State": "enabled", "IsSelfServiceRegistrationAllowed": true]],
            ],
        ],
    ]

    /// A Graph request as `caller`, with a refusal rendered as the HTTP edge renders it.
    static func call(_ h: Harness, _ method: String, _ path: String, _ json: JSONValue? = nil, as caller: Caller) async throws -> APIResponse {
        do {
            return try await h.graph(method, path, json, as: caller)
        } catch let error as DirectoryError {
            return .error(error)
        }
    }

    static func admin(_ h: Harness) async throws -> Caller {
        try await h.caller(named: "configadmin", role: BuiltInRoles.globalAdministrator)
    }

    @Test("createSnapshot answers 200 with a notStarted job; the job succeeds and its resourceLocation holds the resources in Microsoft's names")
    func snapshotJob() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let created = await h.graph("POST", Self.policies, token: token, json: Self.policy)
            #expect(created.status == 201, "\(created.text)")
            let admin = try await Self.admin(h)
            let started = try await Self.call(h, "POST", "\(Self.root)/configurationSnapshots/createSnapshot", [
                "displayName": "Snapshot Demo", "description": "This is Snapshot Description",
                "resources": ["microsoft.entra.conditionalaccesspolicy", "microsoft.entra.authenticationMethodPolicy"]], as: admin)
            #expect(started.status == 200, "\(started.text)")
            #expect(started.json["status"] == "notStarted" && started.json["completedDateTime"] == "0001-01-01T00:00:00Z")
            #expect(started.json["resources"] == ["microsoft.entra.conditionalaccesspolicy", "microsoft.entra.authenticationmethodpolicy"])
            #expect(started.json["createdBy"]?["user"]?["displayName"] == "configadmin" && started.json["tenantId"] == .string(h.tenant.tenantId))
            let id = try #require(started.json["id"]?.stringValue)
            await h.app.jobs.idle()

            let job = try await Self.call(h, "GET", "\(Self.root)/configurationSnapshotJobs/\(id)", as: admin)
            #expect(job.json["status"] == "succeeded", "\(job.text)")
            let location = try #require(job.json["resourceLocation"]?.stringValue)
            #expect(location.hasPrefix("\(Harness.base)/v1.0/\(Self.root)/configurationSnapshots('") && location.hasSuffix("')"))
            let snapshot = try await Self.call(h, "GET", String(location.dropFirst("\(Harness.base)/v1.0/".count)), as: admin)
            let snapshotID = try #require(snapshot.json["id"]?.stringValue)
            #expect(snapshot.status == 200 && snapshot.json["displayName"] == "Snapshot Demo", "\(snapshot.text)")
            let resources = snapshot.json["resources"]?.arrayValue ?? []
            let policy = try #require(resources.first { $0["resourceType"] == "microsoft.entra.conditionalaccesspolicy" })
            #expect(policy["displayName"] == "Require MFA for admins")
            #expect(policy["properties"]?["State"] == "enabledForReportingButNotEnforced")
            #expect(policy["properties"]?["IncludeRoles"] == [.string(BuiltInRoles.globalAdministrator)])
            #expect(policy["properties"]?["GrantControlOperator"] == "OR" && policy["properties"]?["BuiltInControls"] == ["mfa"])
            #expect(resources.contains { $0["resourceType"] == "microsoft.entra.authenticationmethodpolicy" && $0["properties"]?["PolicyVersion"] == "1.5" })

            let jobs = try await Self.call(h, "GET", "\(Self.root)/configurationSnapshotJobs", as: admin)
            #expect(jobs.json["value"]?.arrayValue?.map { $0["id"] } == [.string(id)])
            // Deleting the job removes its snapshot.
            #expect(try await Self.call(h, "DELETE", "\(Self.root)/configurationSnapshotJobs/\(id)", as: admin).status == 204)
            #expect(try await Self.call(h, "GET", "\(Self.root)/configurationSnapshots/\(snapshotID)", as: admin).status == 404)
        }
    }

    @Test("a monitor over a Conditional Access policy and the FIDO2 method reports the changed properties at its next run and marks them fixed when they are put back")
    func driftIsReportedAndFixed() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let policyID = try #require(await h.graph("POST", Self.policies, token: token, json: Self.policy).json["id"]?.stringValue)
            let admin = try await Self.admin(h)
            let created = try await Self.call(h, "POST", "\(Self.root)/configurationMonitors", Self.monitor, as: admin)
            #expect(created.status == 201, "\(created.text)")
            #expect(created.json["status"] == "active" && created.json["mode"] == "monitorOnly" && created.json["monitorRunFrequencyInHours"] == 6)
            #expect(created.json["baseline"] == nil && created.json["parameters"] == [:])
            let monitorID = try #require(created.json["id"]?.stringValue)
            let baseline = try await Self.call(h, "GET", "\(Self.root)/configurationMonitors/\(monitorID)/baseline", as: admin)
            #expect(baseline.json["displayName"] == "Demo Baseline" && baseline.json["resources"]?.arrayValue?.count == 2, "\(baseline.text)")

            // Not before the next six-hour slot.
            let monitors = ConfigurationMonitors(app: h.app)
            #expect(await monitors.runDue().isEmpty)

            #expect(await h.graph("PATCH", "\(Self.policies)/\(policyID)", token: token, json: ["state": "disabled"]).status == 204)
            #expect(await h.graph("PATCH", Self.fido2, token: token, json: [
                "@odata.type": "#microsoft.graph.fido2AuthenticationMethodConfiguration", "isSelfServiceRegistrationAllowed": false]).status == 204)
            h.clock.advance(toNext: 6 * 3600, plus: 60)
            let first = await monitors.runDue()
            #expect(first.count == 1 && first.first?.body["driftsCount"] == 2 && first.first?.body["runStatus"] == "successful")
            // Once a slot, however often the scheduler looks.
            #expect(await monitors.runDue().isEmpty)

            let drifts = try await Self.call(h, "GET", "\(Self.root)/configurationDrifts", as: admin)
            let values = drifts.json["value"]?.arrayValue ?? []
            #expect(values.count == 2 && values.allSatisfy { $0["status"] == "active" && $0["monitorId"] == .string(monitorID) }, "\(drifts.text)")
            let policyDrift = try #require(values.first { $0["resourceType"] == "microsoft.entra.conditionalaccesspolicy" })
            #expect(policyDrift["baselineResourceDisplayName"] == "Admin MFA policy")
            #expect(policyDrift["driftedProperties"] == [["propertyName": "State", "currentValue": "disabled", "desiredValue": "enabledForReportingButNotEnforced"]])
            #expect(policyDrift["resourceInstanceIdentifier"]?["Id"] == .string(policyID))
            let fidoDrift = try #require(values.first { $0["resourceType"] == "microsoft.entra.authenticationmethodpolicyfido2" })
            #expect(fidoDrift["driftedProperties"] == [["propertyName": "IsSelfServiceRegistrationAllowed", "currentValue": false, "desiredValue": true]])

            // The policy put back: its drift is fixed at the next run, the FIDO2 drift stays active.
            #expect(await h.graph("PATCH", "\(Self.policies)/\(policyID)", token: try await h.accessToken(), json: ["state": "enabledForReportingButNotEnforced"]).status == 204)
            h.clock.advance(toNext: 6 * 3600, plus: 60)
            let second = await monitors.runDue()
            #expect(second.first?.body["driftsCount"] == 1)
            let after = try await Self.call(h, "GET", "\(Self.root)/configurationDrifts/\(try #require(policyDrift["id"]?.stringValue))", as: admin)
            #expect(after.json["status"] == "fixed", "\(after.text)")
            #expect(try await Self.call(h, "GET", "\(Self.root)/configurationDrifts/\(try #require(fidoDrift["id"]?.stringValue))", as: admin)
                .json["status"] == "active")
            let results = try await Self.call(h, "GET", "\(Self.root)/configurationMonitoringResults", as: admin)
            #expect(results.json["value"]?.arrayValue?.map { $0["driftsCount"] } == [2, 1], "\(results.text)")

            // Deleting the monitor takes its results and drifts with it.
            #expect(try await Self.call(h, "DELETE", "\(Self.root)/configurationMonitors/\(monitorID)", as: admin).status == 204)
            #expect(try await Self.call(h, "GET", "\(Self.root)/configurationDrifts", as: admin).json["value"] == [])
            #expect(try await Self.call(h, "GET", "\(Self.root)/configurationMonitoringResults", as: admin).json["value"] == [])
        }
    }

    @Test("a snapshot job a stopped server left running is taken again at start, once")
    func interruptedSnapshotJobResumes() async throws {
        try await Harness.run { h in
            let admin = try await Self.admin(h)
            let started = try await Self.call(h, "POST", "\(Self.root)/configurationSnapshots/createSnapshot",
                                              ["displayName": "Before the crash", "resources": ["microsoft.entra.authenticationMethodPolicy"]], as: admin)
            let id = try #require(started.json["id"]?.stringValue)
            await h.app.jobs.idle()
            // As a server that stopped mid-job leaves it: running, its snapshot not written.
            let monitors = ConfigurationMonitors(app: h.app)
            let job = try await monitors.one(tenant: h.tenant.tenantId, kind: ConfigurationMonitors.snapshotJobKind, id: id)
            let snapshotID = try #require(job.body["_snapshotId"]?.stringValue)
            try await h.app.store.write { tx in try await tx.purge(tenant: job.tenant, id: snapshotID) }
            try await monitors.update(tenant: job.tenant, id: id) { body in
                body["status"] = "running"
                body["resourceLocation"] = ""
            }
            await monitors.resumeInterrupted()
            let resumed = try await Self.call(h, "GET", "\(Self.root)/configurationSnapshotJobs/\(id)", as: admin)
            #expect(resumed.json["status"] == "succeeded", "\(resumed.text)")
            #expect(try await Self.call(h, "GET", "\(Self.root)/configurationSnapshots/\(snapshotID)", as: admin).json["displayName"] == "Before the crash")
            // A second node's sweep finds nothing left to do.
            await monitors.resumeInterrupted()
            #expect(try await Self.call(h, "GET", "\(Self.root)/configurationSnapshotJobs/\(id)", as: admin).json["status"] == "succeeded")
        }
    }

    @Test("PATCH changes a monitor's name and baseline; the next run compares against the new baseline")
    func patchChangesTheBaseline() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            _ = await h.graph("POST", Self.policies, token: token, json: Self.policy)
            let admin = try await Self.admin(h)
            let monitorID = try #require(try await Self.call(h, "POST", "\(Self.root)/configurationMonitors", Self.monitor, as: admin).json["id"]?.stringValue)
            let patched = try await Self.call(h, "PATCH", "\(Self.root)/configurationMonitors/\(monitorID)", [
                "displayName": "Renamed monitor",
                "baseline": ["displayName": "Strict", "resources": [
                    ["displayName": "Admin MFA policy", "resourceType": "microsoft.entra.conditionalAccessPolicy",
                     "properties": ["DisplayName": "Require MFA for admins", "State": "enabled"]]]]], as: admin)
            #expect(patched.status == 204, "\(patched.text)")
            let read = try await Self.call(h, "GET", "\(Self.root)/configurationMonitors/\(monitorID)", as: admin)
            #expect(read.json["displayName"] == "Renamed monitor" && read.json["lastModifiedBy"]?["user"]?["displayName"] == "configadmin")
            h.clock.advance(toNext: 6 * 3600, plus: 60)
            let result = await ConfigurationMonitors(app: h.app).runDue()
            #expect(result.first?.body["driftsCount"] == 1)
        }
    }

    struct BadRequest: Sendable, CustomTestStringConvertible {
        let name: String
        let method: String
        let path: String
        let body: JSONValue
        let message: String
        var testDescription: String { name }
    }

    static let badRequests: [BadRequest] = [
        BadRequest(name: "a snapshot of an unsupported resource type", method: "POST", path: "configurationSnapshots/createSnapshot",
                   body: ["displayName": "S", "resources": ["microsoft.exchange.sharedmailbox"]], message: "is not supported"),
        BadRequest(name: "a snapshot without resources", method: "POST", path: "configurationSnapshots/createSnapshot",
                   body: ["displayName": "S", "resources": []], message: "at least one resource type"),
        BadRequest(name: "a snapshot without a name", method: "POST", path: "configurationSnapshots/createSnapshot",
                   body: ["resources": ["microsoft.entra.user"]], message: "'displayName' is required"),
        BadRequest(name: "a snapshot naming a type twice", method: "POST", path: "configurationSnapshots/createSnapshot",
                   body: ["displayName": "S", "resources": ["microsoft.entra.user", "MICROSOFT.ENTRA.USER"]], message: "twice"),
        BadRequest(name: "a monitor running every 12 hours", method: "POST", path: "configurationMonitors",
                   body: ["displayName": "M", "monitorRunFrequencyInHours": 12, "baseline": monitor["baseline"] ?? .null], message: "can only be 6"),
        BadRequest(name: "a monitor without a baseline", method: "POST", path: "configurationMonitors",
                   body: ["displayName": "M"], message: "'baseline' is required"),
        BadRequest(name: "a monitor setting its status", method: "POST", path: "configurationMonitors",
                   body: ["displayName": "M", "status": "inactive", "baseline": monitor["baseline"] ?? .null], message: "is read-only"),
        BadRequest(name: "a monitor over a property the type lacks", method: "POST", path: "configurationMonitors",
                   body: ["displayName": "M", "baseline": ["displayName": "B", "resources": [
                       ["displayName": "R", "resourceType": "microsoft.entra.user", "properties": ["UserPrincipalName": "a@contoso.test", "Shoe": 9]]]]],
                   message: "'Shoe' is not a property of microsoft.entra.user"),
    ]

    @Test("bad input is Graph's 400 and writes nothing", arguments: badRequests)
    func refusesBadInput(_ c: BadRequest) async throws {
        try await Harness.run { h in
            let admin = try await Self.admin(h)
            let response = try await Self.call(h, c.method, "\(Self.root)/\(c.path)", c.body, as: admin)
            #expect(response.status == 400 && response.errorCode == "Request_BadRequest" && response.text.contains(c.message), "\(response.text)")
            for collection in ["configurationMonitors", "configurationSnapshotJobs"] {
                #expect(try await Self.call(h, "GET", "\(Self.root)/\(collection)", as: admin).json["value"] == [])
            }
        }
    }

    @Test("a tenant has at most 30 monitors, and monitors at most 800 resources a day")
    func limits() async throws {
        try await Harness.run { h in
            let admin = try await Self.admin(h)
            for index in 0..<30 {
                var body = Self.monitor
                if case .object(var object) = body { object["displayName"] = .string("Monitor \(index)"); body = .object(object) }
                #expect(try await Self.call(h, "POST", "\(Self.root)/configurationMonitors", body, as: admin).status == 201)
            }
            let refused = try await Self.call(h, "POST", "\(Self.root)/configurationMonitors", Self.monitor, as: admin)
            #expect(refused.status == 400 && refused.text.contains("30 configuration monitors"), "\(refused.text)")
        }
        try await Harness.run { h in
            let admin = try await Self.admin(h)
            let resources: [JSONValue] = (0..<201).map { index in
                ["displayName": .string("User \(index)"), "resourceType": "microsoft.entra.user",
                 "properties": ["UserPrincipalName": .string("u\(index)@contoso.test"), "AccountEnabled": true]]
            }
            let refused = try await Self.call(h, "POST", "\(Self.root)/configurationMonitors", [
                "displayName": "Everyone", "baseline": ["displayName": "B", "resources": .array(resources)]], as: admin)
            #expect(refused.status == 400 && refused.text.contains("804 resources a day"), "\(refused.text)")
        }
    }

    @Test("ConfigurationMonitoring.Read.All reads and cannot write; without either permission nothing is read; Global Reader reads")
    func permissions() async throws {
        try await Harness.run { h in
            // The automation app holds neither permission until it is granted one.
            let token = try await h.accessToken()
            let denied = await h.graph("GET", "\(Self.root)/configurationMonitors", token: token)
            #expect(denied.status == 403 && denied.errorCode == "Authorization_RequestDenied", "\(denied.text)")

            let reader = try await h.caller(named: "reader", role: BuiltInRoles.globalReader)
            #expect(try await Self.call(h, "GET", "\(Self.root)/configurationMonitors", as: reader).status == 200)
            let write = try await Self.call(h, "POST", "\(Self.root)/configurationMonitors", Self.monitor, as: reader)
            #expect(write.status == 403, "\(write.text)")
            let snapshot = try await Self.call(h, "POST", "\(Self.root)/configurationSnapshots/createSnapshot",
                                             ["displayName": "S", "resources": ["microsoft.entra.user"]], as: reader)
            #expect(snapshot.status == 403)
            let plain = try await h.caller(named: "plain", role: nil)
            #expect(try await Self.call(h, "GET", "\(Self.root)/configurationDrifts", as: plain).status == 403)
        }
    }

    @Test("a tenant sees only its own monitors and drifts")
    func tenantsAreApart() async throws {
        try await Harness.run { h in
            let admin = try await Self.admin(h)
            let monitorID = try #require(try await Self.call(h, "POST", "\(Self.root)/configurationMonitors", Self.monitor, as: admin).json["id"]?.stringValue)
            let other = try await TenantProvisioner(directory: h.app.directory).create(name: "Fabrikam", domain: "fabrikam.test")
            let otherToken = try await h.accessToken(clientId: other.clientId, secret: other.clientSecret, tenant: other.tenantId)
            let created = await h.graph("POST", "users", token: otherToken, json: [
                "accountEnabled": true, "displayName": "Fab admin", "mailNickname": "fab", "userPrincipalName": "fab@fabrikam.test",
                "passwordProfile": ["password": "Xy!9aaaaaaaa"]])
            let otherUserID = try #require(created.json["id"]?.stringValue, "\(created.text)")
            #expect(await h.graph("POST", "roleManagement/directory/roleAssignments", token: otherToken, json: [
                "principalId": .string(otherUserID), "roleDefinitionId": .string(BuiltInRoles.globalAdministrator), "directoryScopeId": "/"]).status == 201)
            let tenantID = other.tenantId
            let otherUser = try #require(try await h.app.store.read { tx in try await tx.object(tenant: tenantID, id: otherUserID) })
            let otherAdmin = try await Caller.user(tenant: other.tenantId, user: otherUser, scopes: nil, app: h.app)
            #expect(try await Self.call(h, "GET", "\(Self.root)/configurationMonitors/\(monitorID)", as: otherAdmin).status == 404)
            #expect(try await Self.call(h, "GET", "\(Self.root)/configurationMonitors", as: otherAdmin).json["value"] == [])
            #expect(try await Self.call(h, "DELETE", "\(Self.root)/configurationMonitors/\(monitorID)", as: otherAdmin).status == 404)
        }
    }
}
