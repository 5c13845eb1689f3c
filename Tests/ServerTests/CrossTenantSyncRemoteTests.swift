import Foundation
import Testing
@testable import Server
import Store
import Sync
import TesseraCore
import TesseraTesting

@Suite("Cross-tenant synchronization between two deployments: Northwind (deployment B) pushes over HTTPS into Contoso (deployment A) with the credential Contoso granted it")
struct CrossTenantSyncRemoteTests {
    static let targetBase = "https://target.test"

    /// Runs `body` with the target deployment (the harness, Contoso) and a source deployment whose network reaches the
    /// target only.
    static func run(_ body: (_ target: Harness, _ source: Harness) async throws -> Void) async throws {
        try await Harness.run { target in
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-test-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let store = try await SQLDirectoryStore.open(folder.appendingPathComponent("tessera.sqlite").path)
            do {
                let app = try await TesseraApp.make(store: store, clock: target.clock, maxBodyBytes: 64 * 1024,
                                                    outbound: LoopbackHTTP(app: target.app, base: targetBase))
                let tenant = try await TenantProvisioner(directory: app.directory).create(name: "Northwind", domain: "northwind.test")
                try await body(target, Harness(app: app, clock: target.clock, tenant: tenant))
                await app.jobs.idle()
                try await store.shutdown()
            } catch {
                try? await store.shutdown()
                throw error
            }
        }
    }

    @Test("users and a group arrive through the target's endpoint; a missing, wrong or another source's credential is refused and writes nothing")
    func pushesOverHTTPS() async throws {
        try await Self.run { a, b in
            let contoso = a.tenant.tenantId, northwind = b.tenant.tenantId
            let targetToken = try await a.accessToken()
            #expect(await a.graph("POST", "policies/crossTenantAccessPolicy/partners", token: targetToken, json: ["tenantId": .string(northwind)]).status == 201)
            #expect(await a.graph("PUT", "policies/crossTenantAccessPolicy/partners/\(northwind)/identitySynchronization", token: targetToken,
                                  json: ["userSyncInbound": ["isSyncAllowed": true]]).status == 204)
            let grants = CrossTenantSyncGrants(store: a.app.store)
            let (_, credential) = try await grants.grant(tenant: contoso, source: northwind, now: a.clock.now)
            #expect(try await grants.list(tenant: contoso).allSatisfy { !String(describing: $0).contains(credential.split(separator: ".")[1]) })

            let sourceToken = try await b.accessToken()
            let made = await b.graph("POST", "applicationTemplates/518e5f48-1fc8-4c48-9387-9fdf28b0dfe7/instantiate", token: sourceToken,
                                     json: ["displayName": "Contoso"])
            let sp = try #require(made.json["servicePrincipal"]?["id"]?.stringValue)
            let role = try #require(made.json["servicePrincipal"]?["appRoles"]?.arrayValue?.first?["id"]?.stringValue)
            let job = try #require(await b.graph("POST", "servicePrincipals/\(sp)/synchronization/jobs", token: sourceToken,
                                                 json: ["templateId": "Azure2Azure"]).json["id"]?.stringValue)
            func secrets(_ token: String) async -> APIResponse {
                await b.graph("PUT", "servicePrincipals/\(sp)/synchronization/secrets", token: sourceToken, json: ["value": [
                    ["key": "CompanyId", "value": .string(contoso)], ["key": "BaseAddress", "value": .string(Self.targetBase)],
                    ["key": "SecretToken", "value": .string(token)]]])
            }
            let (users, groups) = try await CrossTenantSyncTests.populate(b, users: 30, groups: 1)
            let group = try #require(groups.keys.first)
            #expect(await b.graph("POST", "servicePrincipals/\(sp)/appRoleAssignedTo", token: sourceToken, json: [
                "principalId": .string(group), "resourceId": .string(sp), "appRoleId": .string(role)]).status == 201)
            let path = "servicePrincipals/\(sp)/synchronization/jobs/\(job)"
            let before = try await a.app.store.read { tx in try await tx.latestSequence(tenant: contoso) }

            // A credential Contoso never granted: the target refuses, the job is quarantined, nothing is written.
            #expect(await secrets("\(UUID().uuidString.lowercased()).not-a-secret").status == 204)
            #expect(await b.graph("POST", "\(path)/start", token: sourceToken).status == 204)
            let refused = await b.graph("GET", path, token: sourceToken).json
            #expect(refused["status"]?["quarantine"]?["error"]?["code"] == "CredentialsInvalid", "\(refused)")
            #expect(try await a.app.store.read { tx in try await tx.latestSequence(tenant: contoso) } == before)

            // The granted one: 30 users and the group, linked to their Northwind users.
            #expect(await secrets(credential).status == 204)
            #expect(await b.graph("POST", "\(path)/restart", token: sourceToken, json: ["criteria": ["resetScope": "Full"]]).status == 204)
            let job2 = await b.graph("GET", path, token: sourceToken).json
            #expect(job2["status"]?["code"] == "Active" && job2["status"]?["lastExecution"]?["state"] == "Succeeded", "\(job2)")
            let guest = try #require(try await a.app.directory.externalUser(tenant: contoso, homeTenant: northwind, homeUser: users[0]))
            let user = try #require(try await a.app.store.read { tx in try await tx.object(tenant: contoso, id: guest) })
            #expect(user.body["userPrincipalName"] == "user0_northwind.test#EXT#@contoso.test")
            #expect(user.body["identities"]?.arrayValue?.first?["issuer"]?.stringValue == "\(Harness.base)/\(northwind)/v2.0")
            let targetGroup = try #require(try await a.app.store.read { tx in
                try await tx.query(ObjectQuery(tenant: contoso, kinds: [.group], filter: .compare(PropertyPath(["displayName"]), .eq, .string("Team 0"))))
            }.first)
            #expect(try await a.app.store.read { tx in try await tx.targets(tenant: contoso, source: targetGroup.id, relation: "members") }.count == 30)
            let logs = await b.graph("GET", "auditLogs/provisioning", token: sourceToken, query: [("$filter", "provisioningAction eq 'create'")])
            #expect(logs.json["value"]?.arrayValue?.count == 31)

            // The endpoint itself: no credential, and a credential granted to another tenant used for Northwind's batch.
            let batch = CrossTenantSyncBatch(runID: "r", jobID: job, sourceTenantID: northwind, sourceIssuer: "x", automaticConsentOutbound: false,
                                             users: [.init(id: UUID().uuidString, userPrincipalName: "mallory@northwind.test", displayName: "Mallory")],
                                             isLast: true, isFull: false)
            let body = Array(try JSONEncoder().encode(batch))
            let anonymous = await a.send("POST", "/\(contoso)/crossTenantSynchronization/batches", body: body)
            #expect(anonymous.status == 401)
            let (_, others) = try await grants.grant(tenant: contoso, source: UUID().uuidString, now: a.clock.now)
            let wrong = await a.send("POST", "/\(contoso)/crossTenantSynchronization/batches", headers: ["authorization": "Bearer \(others)"], body: body)
            #expect(wrong.status == 403 && wrong.errorCode == "Authorization_RequestDenied")
            #expect(try await a.app.store.read { tx in try await tx.query(ObjectQuery(tenant: contoso, kinds: [.user],
                filter: .compare(PropertyPath(["displayName"]), .eq, .string("Mallory")))) }.isEmpty)
        }
    }

    @Test("a source guessing at a credential is locked out for that grant from its address, then throttled; the holder, elsewhere, is not")
    func credentialGuessingIsThrottled() async throws {
        try await Harness.run { a in
            let contoso = a.tenant.tenantId, source = UUID().uuidString
            let (grant, credential) = try await CrossTenantSyncGrants(store: a.app.store).grant(tenant: contoso, source: source, now: a.clock.now)
            let batch = CrossTenantSyncBatch(runID: "r", jobID: "j", sourceTenantID: source, sourceIssuer: "x", automaticConsentOutbound: false,
                                             users: [], isLast: true, isFull: false)
            let body = Array(try JSONEncoder().encode(batch))
            func push(_ credential: String, from address: String) async -> APIResponse {
                var request = APIRequest(method: "POST", path: "/\(contoso)/crossTenantSynchronization/batches", query: [],
                                         headers: ["authorization": "Bearer \(credential)"], body: body, baseURL: Harness.base)
                request.clientAddress = address
                return await a.app.handle(request)
            }
            let threshold = a.app.throttle.settings.lockoutThreshold
            for _ in 0..<threshold {
                #expect(await push("\(grant.id).wrong-secret", from: "198.51.100.7").status == 401)
            }
            // Locked for this grant from that address: even the right secret is not compared now.
            let locked = await push(credential, from: "198.51.100.7")
            #expect(locked.status == 429)
            #expect(locked.headers.contains { $0.0 == "Retry-After" && (Int($0.1) ?? 0) > 0 })
            // The holder, from its own address, still gets through authentication (the batch itself is then judged by
            // Contoso's cross-tenant access settings, which do not allow this source to synchronize).
            let holder = await push(credential, from: "203.0.113.9")
            #expect(holder.status != 401 && holder.status != 429, "\(String(decoding: holder.body, as: UTF8.self))")
            // Guessing at other grants from the first address empties its bucket: then everything from it waits.
            for _ in 0..<Int(a.app.throttle.settings.sourceBurst) { _ = await push("\(UUID().uuidString).x", from: "198.51.100.7") }
            #expect(await push(credential, from: "198.51.100.7").status == 429)
        }
    }
}

