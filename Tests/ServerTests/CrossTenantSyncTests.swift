import Foundation
import Testing
@testable import Server
import Store
import Sync
import TesseraCore
import TesseraTesting

@Suite("Cross-tenant synchronization: Contoso (source) pushes users and security groups into Fabrikam (target) through an Azure2Azure job")
struct CrossTenantSyncTests {
    struct World {
        let h: Harness
        let target: ProvisionedTenant
        let sourceToken: String
        let targetToken: String
        let servicePrincipal: String
        let appRoleID: String
        let job: String
        var source: String { h.tenant.tenantId }
        var jobPath: String { "servicePrincipals/\(servicePrincipal)/synchronization/jobs/\(job)" }

        func users(in tenant: String) async throws -> [StoredObject] {
            try await h.app.store.read { tx in try await tx.query(ObjectQuery(tenant: tenant, kinds: [.user])) }
        }

        /// Fabrikam's users that came from Contoso, by their home (Contoso) id.
        func synced() async throws -> [String: StoredObject] {
            var out: [String: StoredObject] = [:]
            for user in try await users(in: target.tenantId) {
                guard let identity = user.body["identities"]?.arrayValue?.first, identity["issuer"]?.stringValue?.contains(source) == true,
                      let home = identity["issuerAssignedId"]?.stringValue else { continue }
                out[home] = user
            }
            return out
        }

        func assign(_ principal: String) async throws {
            let assigned = await h.graph("POST", "servicePrincipals/\(servicePrincipal)/appRoleAssignedTo", token: sourceToken, json: [
                "principalId": .string(principal), "resourceId": .string(servicePrincipal), "appRoleId": .string(appRoleID)])
            #expect(assigned.status == 201, "\(assigned.text)")
        }

        func start() async throws -> JSONValue {
            let started = await h.graph("POST", "\(jobPath)/start", token: sourceToken)
            #expect(started.status == 204, "\(started.text)")
            return await h.graph("GET", jobPath, token: sourceToken).json
        }

        /// Every provisioning log entry matching `filter`, following the pages.
        func provisioning(_ filter: String) async -> [JSONValue] {
            var out: [JSONValue] = [], query = [("$filter", filter), ("$top", "999")]
            while true {
                let page = await h.graph("GET", "auditLogs/provisioning", token: sourceToken, query: query).json
                out += page["value"]?.arrayValue ?? []
                guard let next = page["@odata.nextLink"]?.stringValue, let token = URLComponents(string: next)?.queryItems?
                    .first(where: { $0.name == "$skiptoken" })?.value else { return out }
                query = [("$filter", filter), ("$top", "999"), ("$skiptoken", token)]
            }
        }
    }

    /// Two tenants, the target allowing (or not) the source to synchronize into it, and a configured job in the source.
    static func world(_ h: Harness, allowInbound: Bool = true, secrets: [(String, String)] = []) async throws -> World {
        let target = try await TenantProvisioner(directory: h.app.directory).create(name: "Fabrikam", domain: "fabrikam.test")
        let targetToken = try await h.accessToken(clientId: target.clientId, secret: target.clientSecret, tenant: target.tenantId)
        let sourceToken = try await h.accessToken()
        let source = h.tenant.tenantId
        // Target: a partner configuration for Contoso, sync allowed, automatic redemption inbound (Microsoft's steps 2 and 3).
        #expect(await h.graph("POST", "policies/crossTenantAccessPolicy/partners", token: targetToken, json: ["tenantId": .string(source)]).status == 201)
        if allowInbound {
            let put = await h.graph("PUT", "policies/crossTenantAccessPolicy/partners/\(source)/identitySynchronization", token: targetToken,
                                    json: ["displayName": "Contoso", "userSyncInbound": ["isSyncAllowed": true]])
            #expect(put.status == 204, "\(put.text)")
        }
        #expect(await h.graph("PATCH", "policies/crossTenantAccessPolicy/partners/\(source)", token: targetToken,
                              json: ["automaticUserConsentSettings": ["inboundAllowed": true]]).status == 204)
        // Source: automatic redemption outbound, the configuration application, a job and its secrets (steps 5 to 9).
        #expect(await h.graph("POST", "policies/crossTenantAccessPolicy/partners", token: sourceToken,
                              json: ["tenantId": .string(target.tenantId)]).status == 201)
        #expect(await h.graph("PATCH", "policies/crossTenantAccessPolicy/partners/\(target.tenantId)", token: sourceToken,
                              json: ["automaticUserConsentSettings": ["outboundAllowed": true]]).status == 204)
        let made = await h.graph("POST", "applicationTemplates/518e5f48-1fc8-4c48-9387-9fdf28b0dfe7/instantiate", token: sourceToken,
                                 json: ["displayName": "Fabrikam"])
        #expect(made.status == 201, "\(made.text)")
        let sp = try #require(made.json["servicePrincipal"]?["id"]?.stringValue)
        let role = try #require(made.json["servicePrincipal"]?["appRoles"]?.arrayValue?.first?["id"]?.stringValue)
        #expect(made.json["servicePrincipal"]?["appRoleAssignmentRequired"] == true)
        let job = await h.graph("POST", "servicePrincipals/\(sp)/synchronization/jobs", token: sourceToken, json: ["templateId": "Azure2Azure"])
        #expect(job.status == 201, "\(job.text)")
        #expect(job.json["schedule"]?["state"] == "Disabled" && job.json["status"]?["code"] == "Paused")
        let pairs = [("AuthenticationType", "SyncPolicy"), ("CompanyId", target.tenantId), ("SyncAll", "false")] + secrets
        let saved = await h.graph("PUT", "servicePrincipals/\(sp)/synchronization/secrets", token: sourceToken, json: [
            "value": .array(pairs.map { ["key": .string($0.0), "value": .string($0.1)] })])
        #expect(saved.status == 204, "\(saved.text)")
        return World(h: h, target: target, sourceToken: sourceToken, targetToken: targetToken, servicePrincipal: sp, appRoleID: role,
                     job: try #require(job.json["id"]?.stringValue))
    }

    /// `users` users in `groups` security groups of the source (the users split evenly), written in batches.
    static func populate(_ h: Harness, users: Int, groups: Int) async throws -> (users: [String], groups: [String: [String]]) {
        let tenant = h.tenant.tenantId
        var userIDs: [String] = []
        for start in stride(from: 0, to: users, by: 250) {
            let writes: [DirectoryWrite] = (start..<min(start + 250, users)).map { i in
                .create(.user, body: ["accountEnabled": true, "displayName": .string("User \(i)"), "mailNickname": .string("user\(i)"),
                                      "userPrincipalName": .string("user\(i)@\(h.tenant.domain)"), "department": .string(i % 2 == 0 ? "Sales" : "Research"),
                                      "passwordProfile": ["password": "Xy!9aaaaaaaa"]])
            }
            for result in try await h.app.directory.apply(writes, tenant: tenant, actor: .system) { userIDs.append(try result.get().id) }
        }
        var groupIDs: [String: [String]] = [:]
        let created = try await h.app.directory.apply((0..<groups).map { g in
            .create(.group, body: ["displayName": .string("Team \(g)"), "mailEnabled": false, "securityEnabled": true, "mailNickname": .string("team\(g)")])
        }, tenant: tenant, actor: .system).map { try $0.get().id }
        let per = users / max(groups, 1)
        for (g, group) in created.enumerated() {
            let members = Array(userIDs[(g * per)..<min((g + 1) * per, userIDs.count)])
            _ = try await h.app.directory.apply(members.map { .link(source: group, relation: "members", target: $0) }, tenant: tenant, actor: .system)
            groupIDs[group] = members
        }
        return (userIDs, groupIDs)
    }

    @Test("1,000 users in 50 assigned groups arrive as linked B2B members with their groups; renames, a disable, removals and home deletions follow on the next run")
    func syncsThenFollowsChanges() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            let (users, groups) = try await Self.populate(h, users: 1_000, groups: 50)
            for group in groups.keys.sorted() { try await w.assign(group) }
            let job = try await w.start()
            #expect(job["schedule"]?["state"] == "Active" && job["status"]?["code"] == "Active", "\(job)")
            #expect(job["status"]?["lastExecution"]?["state"] == "Succeeded")
            #expect(job["status"]?["synchronizedEntryCountByType"]?.arrayValue?.first?["value"] == 1000)
            var synced = try await w.synced()
            #expect(synced.count == 1_000)
            let first = try #require(synced[users[0]])
            #expect(first.body["userType"] == "Member" && first.body["externalUserState"] == "Accepted")
            #expect(first.body["userPrincipalName"] == "user0_contoso.test#EXT#@fabrikam.test" && first.body["displayName"] == "User 0")
            // Linked as B2B sign-in links them: Fabrikam's user for Contoso's user0.
            #expect(try await h.app.directory.externalUser(tenant: w.target.tenantId, homeTenant: w.source, homeUser: users[0]) == first.id)
            #expect(try await CrossTenantSignIn(app: h.app).link(tenant: w.target.tenantId, user: first)?.homeUserID == users[0])
            // Signed in at home (Contoso's passkey session), user0 signs in to Fabrikam as its synced user, as B2B guests do.
            let (_, setCookie) = try await SignInSessions(app: h.app).start(tenant: w.source, userID: users[0], amr: ["fido", "mfa"], baseURL: Harness.base)
            let next = "/\(w.target.tenantId)/oauth2/v2.0/authorize?client_id=app"
            let signIn = await h.send("GET", "/\(w.target.tenantId)/b2b/signin", query: [("home", w.source), ("continue", next)],
                                      headers: ["cookie": String(setCookie.split(separator: ";")[0])])
            #expect(signIn.status == 302 && signIn.headers.first { $0.name == "Location" }?.value == next, "\(signIn.text)")
            #expect(signIn.headers.contains { $0.name == "Set-Cookie" })
            // Groups: 50 security groups in Fabrikam, each with its 20 synced members.
            let targetGroups = try await h.app.store.read { tx in try await tx.query(ObjectQuery(tenant: w.target.tenantId, kinds: [.group])) }
            #expect(targetGroups.count == 50)
            let team0 = try #require(targetGroups.first { $0.body["displayName"] == "Team 0" })
            #expect(team0.body["securityEnabled"] == true && team0.body["mailEnabled"] == false)
            let members = try await h.app.store.read { tx in try await tx.targets(tenant: w.target.tenantId, source: team0.id, relation: "members") }
            let firstGroup = try #require(groups.first { $0.value.contains(users[0]) })
            #expect(Set(members) == Set(firstGroup.value.compactMap { synced[$0]?.id }))
            #expect(await w.provisioning("provisioningAction eq 'create'").count == 1_050)

            // Changes at home: ten renamed, one disabled, five out of their group (so out of scope), five deleted.
            let token = w.sourceToken
            for user in users[0..<10] { #expect(await h.graph("PATCH", "users/\(user)", token: token, json: ["displayName": "Renamed"]).status == 204) }
            #expect(await h.graph("PATCH", "users/\(users[10])", token: token, json: ["accountEnabled": false]).status == 204)
            for user in users[20..<25] {
                let group = try #require(groups.first { $0.value.contains(user) }?.key)
                #expect(await h.graph("DELETE", "groups/\(group)/members/\(user)/$ref", token: token).status == 204)
            }
            for user in users[40..<45] { #expect(await h.graph("DELETE", "users/\(user)", token: token).status == 204) }
            let restarted = await h.graph("POST", "\(w.jobPath)/restart", token: token, json: ["criteria": ["resetScope": "Full"]])
            #expect(restarted.status == 204, "\(restarted.text)")
            synced = try await w.synced()
            #expect(synced[users[3]]?.body["displayName"] == "Renamed")
            #expect(synced[users[10]]?.body["accountEnabled"] == false)
            #expect(synced.count == 990)
            let deleted = try await h.app.store.read { tx in
                try await tx.query(ObjectQuery(tenant: w.target.tenantId, kinds: [.user], deleted: true))
            }
            #expect(deleted.count == 10)  // soft: in Fabrikam's deleted items
            let after = try await h.app.store.read { tx in try await tx.targets(tenant: w.target.tenantId, source: team0.id, relation: "members") }
            #expect(Set(after) == Set(firstGroup.value.compactMap { synced[$0]?.id }))
            let deletions = await w.provisioning("provisioningAction eq 'delete'")
            #expect(deletions.count == 10 && deletions.allSatisfy { $0["provisioningStatusInfo"]?["status"] == "success" })
            #expect(await w.provisioning("provisioningAction eq 'update'").count >= 11)
            // A third run with nothing changed writes nothing.
            let before = try await h.app.store.read { tx in try await tx.latestSequence(tenant: w.target.tenantId) }
            _ = try await CrossTenantSyncRunner(app: h.app, baseURL: Harness.base)
                .run(.init(tenant: try #require(try await h.app.tenantRecord(w.source)), servicePrincipalID: w.servicePrincipal, jobID: w.job))
            let later = try await h.app.store.read { tx in try await tx.latestSequence(tenant: w.target.tenantId) }
            #expect(later == before + 1)  // the run's own audit record only
        }
    }

    @Test("a target that does not allow inbound synchronization gets nothing; the job is quarantined and the provisioning log says why, for 30 days")
    func refusedWithoutInboundPolicy() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h, allowInbound: false)
            let (_, groups) = try await Self.populate(h, users: 20, groups: 2)
            for group in groups.keys { try await w.assign(group) }
            let before = try await w.users(in: w.target.tenantId).count
            let job = try await w.start()
            #expect(try await w.users(in: w.target.tenantId).count == before)
            #expect(try await h.app.store.read { tx in try await tx.query(ObjectQuery(tenant: w.target.tenantId, kinds: [.group])) }.isEmpty)
            #expect(job["status"]?["code"] == "Quarantine")
            #expect(job["status"]?["quarantine"]?["error"]?["code"] == "AzureDirectoryB2BManagementPolicyCheckFailure")
            #expect(job["status"]?["lastExecution"]?["state"] == "Failed")
            let failures = await w.provisioning("provisioningStatusInfo/status eq 'failure'")
            #expect(failures.count == 22)
            #expect(failures.first?["provisioningStatusInfo"]?["errorInformation"]?["errorCode"] == "AzureDirectoryB2BManagementPolicyCheckFailure")
            // validateCredentials says the same before any run.
            let validated = await h.graph("POST", "servicePrincipals/\(w.servicePrincipal)/synchronization/jobs/validateCredentials", token: w.sourceToken,
                                          json: ["useSavedCredentials": true, "templateId": "Azure2Azure"])
            #expect(validated.status == 400 && validated.text.contains("does not allow user synchronization"))
            // The provisioning log is kept 30 days (as Entra keeps it): the hourly housekeeping drops older entries.
            func entriesAfterSweep(advancingDays days: Double) async throws -> Int {
                h.clock.advance(days * 86_400)
                #expect(await RetentionService(app: h.app).sweep().isEmpty)
                let log = await h.graph("GET", "auditLogs/provisioning", token: try await h.accessToken(), query: [("$top", "999")])
                #expect(log.status == 200, "\(log.text)")
                return log.json["value"]?.arrayValue?.count ?? -1
            }
            #expect(try await entriesAfterSweep(advancingDays: 29) == 22)
            #expect(try await entriesAfterSweep(advancingDays: 2) == 0)
        }
    }

    @Test("the scoping filter and the userType mapping: only Sales users, as guests; provision on demand of one user")
    func scopingFilterGuestMappingAndOnDemand() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            let (users, groups) = try await Self.populate(h, users: 10, groups: 1)
            try await w.assign(try #require(groups.keys.first))
            var schema = await h.graph("GET", "\(w.jobPath)/schema", token: w.sourceToken).json
            #expect(schema["synchronizationRules"]?.arrayValue?.first?["name"] == "USER_INBOUND_USER")
            let ruleID = try #require(schema["synchronizationRules"]?.arrayValue?.first?["id"]?.stringValue)
            // Change the user mapping's scope and userType constant, as one edits the schema read back.
            guard case .object(var root) = schema, case .array(var rules)? = root["synchronizationRules"], case .object(var rule) = rules[0],
                  case .array(var mappings)? = rule["objectMappings"], case .object(var userMapping) = mappings[0],
                  case .array(var attributes)? = userMapping["attributeMappings"] else { Issue.record("schema shape"); return }
            userMapping["scope"] = ["groups": [["name": "Sales", "clauses": [["operatorName": "EQUALS", "sourceOperandName": "department",
                                                                                "targetOperand": ["values": ["Sales"]]]]]]]
            attributes = attributes.map { $0["targetAttributeName"] == "userType" ? ["targetAttributeName": "userType",
                                                                                      "source": ["type": "Constant", "name": "Guest", "expression": "\"Guest\""]] : $0 }
            userMapping["attributeMappings"] = .array(attributes)
            mappings[0] = .object(userMapping); rule["objectMappings"] = .array(mappings); rules[0] = .object(rule); root["synchronizationRules"] = .array(rules)
            schema = .object(root)
            let put = await h.graph("PUT", "\(w.jobPath)/schema", token: w.sourceToken, json: schema)
            #expect(put.status == 204, "\(put.text)")
            // An operator Tessera does not evaluate is refused, and the schema stays.
            var bad = userMapping
            bad["scope"] = ["groups": [["clauses": [["operatorName": "REGEX MATCH", "sourceOperandName": "department", "targetOperand": ["values": ["S.*"]]]]]]]
            mappings[0] = .object(bad); rule["objectMappings"] = .array(mappings); rules[0] = .object(rule); root["synchronizationRules"] = .array(rules)
            let refused = await h.graph("PUT", "\(w.jobPath)/schema", token: w.sourceToken, json: .object(root))
            #expect(refused.status == 400 && refused.errorCode == "Request_BadRequest")

            // On demand: a Sales user (users[0]) arrives as a guest; a Research one (users[1]) is out of scope.
            let demand = await h.graph("POST", "\(w.jobPath)/provisionOnDemand", token: w.sourceToken, json: [
                "parameters": [["ruleId": .string(ruleID), "subjects": [["objectId": .string(users[0]), "objectTypeName": "User"],
                                                                       ["objectId": .string(users[1]), "objectTypeName": "User"]]]]])
            #expect(demand.status == 200, "\(demand.text)")
            #expect(demand.json["key"] == "Microsoft.Identity.Health.CPP.Common.DataContracts.SyncFabric.StatusInfo")
            var synced = try await w.synced()
            #expect(synced.count == 1 && synced[users[0]]?.body["userType"] == "Guest")
            _ = try await w.start()
            synced = try await w.synced()
            #expect(Set(synced.keys) == Set(users.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)))
        }
    }

    @Test("accidental deletions: a run past the threshold deletes nothing and quarantines the job (TooManyDeletes) until restarted with ForceDeletes")
    func deletionThreshold() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h, secrets: [("SyncNotificationSettings", #"{"Enabled":false,"DeleteThresholdEnabled":true,"DeleteThresholdValue":3}"#)])
            let (users, groups) = try await Self.populate(h, users: 10, groups: 1)
            let group = try #require(groups.keys.first)
            try await w.assign(group)
            _ = try await w.start()
            #expect(try await w.synced().count == 10)
            for user in users[0..<5] { #expect(await h.graph("DELETE", "users/\(user)", token: w.sourceToken).status == 204) }
            #expect(await h.graph("POST", "\(w.jobPath)/restart", token: w.sourceToken, json: ["criteria": ["resetScope": "Full"]]).status == 204)
            let held = await h.graph("GET", w.jobPath, token: w.sourceToken).json
            #expect(held["status"]?["code"] == "Quarantine" && held["status"]?["quarantine"]?["reason"] == "TooManyDeletes", "\(held)")
            #expect(try await w.synced().count == 10)
            #expect(await h.graph("POST", "\(w.jobPath)/restart", token: w.sourceToken, json: ["criteria": ["resetScope": "Full, ForceDeletes"]]).status == 204)
            #expect(try await w.synced().count == 5)
            #expect(await h.graph("GET", w.jobPath, token: w.sourceToken).json["status"]?["code"] == "Active")
        }
    }

    @Test("serve's scheduler runs an active job once its 40 minutes have passed, once per cluster: a second node in the same slot does not")
    func scheduledOncePerCluster() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            let (users, groups) = try await Self.populate(h, users: 4, groups: 1)
            try await w.assign(try #require(groups.keys.first))
            _ = try await w.start()
            #expect(try await w.synced().count == 4)
            #expect(await h.graph("PATCH", "users/\(users[0])", token: w.sourceToken, json: ["displayName": "Later"]).status == 204)
            let node1 = CrossTenantSyncService(app: h.app), node2 = CrossTenantSyncService(app: h.app)
            await node1.cycle()
            #expect(try await w.synced()[users[0]]?.body["displayName"] == "User 0")  // not due yet
            h.clock.advance(40 * 60)
            let failures = await node1.cycle() + node2.cycle()
            #expect(failures.isEmpty)
            #expect(try await w.synced()[users[0]]?.body["displayName"] == "Later")
            #expect(await w.provisioning("provisioningAction eq 'update'").count == 1)  // one node ran it
            // A paused job is left alone.
            #expect(await h.graph("POST", "\(w.jobPath)/pause", token: w.sourceToken).status == 204)
            #expect(await h.graph("PATCH", "users/\(users[1])", token: w.sourceToken, json: ["displayName": "Paused"]).status == 204)
            h.clock.advance(80 * 60)
            await node2.cycle()
            #expect(try await w.synced()[users[1]]?.body["displayName"] == "User 1")
        }
    }

    @Test("a job only takes Azure2Azure on a configuration application; unknown secrets and another tenant's caller are refused")
    func badInputIsRefused() async throws {
        try await Harness.run { h in
            let w = try await Self.world(h)
            let other = await h.graph("POST", "servicePrincipals/\(w.servicePrincipal)/synchronization/jobs", token: w.sourceToken, json: ["templateId": "scim"])
            #expect(other.status == 400 && other.errorCode == "Request_BadRequest")
            let secret = await h.graph("PUT", "servicePrincipals/\(w.servicePrincipal)/synchronization/secrets", token: w.sourceToken,
                                       json: ["value": [["key": "Password", "value": "x"]]])
            #expect(secret.status == 400 && secret.text.contains("Password"))
            // Fabrikam's token does not reach Contoso's service principal, let alone its jobs.
            let foreign = await h.graph("GET", "servicePrincipals/\(w.servicePrincipal)/synchronization/jobs", token: w.targetToken)
            #expect(foreign.status == 404)
            let graphSP = try #require(await h.graph("GET", "servicePrincipals", token: w.sourceToken,
                                                     query: [("$filter", "displayName eq 'Microsoft Graph'")]).json["value"]?.arrayValue?.first?["id"]?.stringValue)
            let plain = await h.graph("POST", "servicePrincipals/\(graphSP)/synchronization/jobs", token: w.sourceToken, json: ["templateId": "Azure2Azure"])
            #expect(plain.status == 400 && plain.text.contains("cross-tenant synchronization configuration"))
        }
    }
}
