import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

/// Connect Health: registration by role, the certificate issued, upload validation, the version floor, and alerts
/// raised and resolved from uploads and from silence (the harness's clock moved).
@Suite struct HealthTests {
    static func registration(role: String = "sync", machine: String = "sync01.corp.example.test", version: String = "2.1.0",
                             csr: String? = nil) throws -> JSONValue {
        ["role": .string(role), "machineName": .string(machine), "agentVersion": .string(version),
         "certificateSigningRequest": .string(try csr ?? HealthAgentKey.make(machineName: machine).certificateSigningRequestPEM)]
    }

    static func beta(_ h: Harness, _ method: String, _ path: String, _ json: JSONValue? = nil, token: String) async -> APIResponse {
        var headers = ["authorization": "Bearer \(token)"]
        if json != nil { headers["content-type"] = "application/json" }
        return await h.send(method, "/beta/connectHealth/" + path, headers: headers, body: json?.serializedBytes ?? [])
    }

    /// A request made as `caller` (as the admin center makes them), its error rendered as the app's edge renders it.
    static func beta(_ h: Harness, _ method: String, _ path: String, _ json: JSONValue? = nil, as caller: Caller) async throws -> APIResponse {
        do {
            return try await GraphAPI(app: h.app).handle(APIRequest(method: method, path: "/beta/connectHealth/" + path, query: [],
                                                                    headers: ["content-type": "application/json"], body: json?.serializedBytes ?? [],
                                                                    baseURL: Harness.base), as: caller)
        } catch let error as DirectoryError {
            return .error(error)
        }
    }

    /// A registered agent of `role` and the thumbprint of the certificate it was given.
    static func register(_ h: Harness, role: String = "sync") async throws -> (id: String, thumbprint: String) {
        let admin = try await h.caller(named: "hia\(role)", role: BuiltInRoles.hybridIdentityAdministrator)
        let response = try await beta(h, "POST", "agents", try registration(role: role), as: admin)
        #expect(response.status == 201, "\(response.text)")
        let certificate = try HealthCertificateAuthority.certificate(pem: try #require(response.json["certificate"]?.stringValue))
        return (try #require(response.json["id"]?.stringValue), try HealthCertificateAuthority.thumbprint(certificate))
    }

    static func upload(_ h: Harness, _ agent: (id: String, thumbprint: String), _ body: JSONValue) async throws -> JSONValue {
        try await HealthService(directory: h.app.directory, clock: h.app.clock)
            .receive(tenant: h.tenant.tenantId, agent: agent.id, thumbprint: agent.thumbprint, body: body.serializedBytes)
    }

    static func alerts(_ h: Harness, activeOnly: Bool = false) async throws -> [JSONValue] {
        try await HealthService(directory: h.app.directory, clock: h.app.clock).alerts(tenant: h.tenant.tenantId, activeOnly: activeOnly)
    }

    static let clean: JSONValue = ["agentVersion": "2.1.0", "sync": ["runs": [["id": "r1", "connector": "corp", "at": "2026-12-01T00:00:00Z", "status": "success"]]]]

    @Test("only a Global Administrator or a Hybrid Identity Administrator registers an agent, a user or a service principal holding the role")
    func registrationIsRoleChecked() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            // The automation app has Directory.ReadWrite.All but no directory role.
            let refused = await Self.beta(h, "POST", "agents", try Self.registration(), token: token)
            #expect(refused.status == 403 && refused.errorCode == "Authorization_RequestDenied", "\(refused.text)")
            let userAdmin = try await h.caller(named: "ua", role: BuiltInRoles.userAdministrator)
            #expect(try await Self.beta(h, "POST", "agents", try Self.registration(), as: userAdmin).status == 403)
            let reader = try await h.caller(named: "gr", role: BuiltInRoles.globalReader)
            #expect(try await Self.beta(h, "POST", "agents", try Self.registration(), as: reader).status == 403)
            #expect(try await Self.beta(h, "GET", "agents", as: reader).status == 200)
            #expect(try await Self.beta(h, "GET", "alerts", as: userAdmin).status == 403)

            let hybrid = try await h.caller(named: "hia", role: BuiltInRoles.hybridIdentityAdministrator)
            let made = try await Self.beta(h, "POST", "agents", try Self.registration(), as: hybrid)
            #expect(made.status == 201, "\(made.text)")
            #expect(made.json["certificate"]?.stringValue?.contains("BEGIN CERTIFICATE") == true)
            #expect(made.json["caCertificate"]?.stringValue?.contains("BEGIN CERTIFICATE") == true)

            // A service principal given the Global Administrator role registers with its own token.
            let sp = try #require(await h.graph("GET", "servicePrincipals(appId='\(h.tenant.clientId)')", token: token).json["id"]?.stringValue)
            try await h.assign(role: BuiltInRoles.globalAdministrator, to: sp)
            let byApp = await Self.beta(h, "POST", "agents", try Self.registration(role: "adds", machine: "dc01"), token: try await h.accessToken())
            #expect(byApp.status == 201, "\(byApp.text)")
            let listed = try await Self.beta(h, "GET", "agents", as: reader).json["value"]?.arrayValue ?? []
            #expect(listed.compactMap { $0["machineName"]?.stringValue } == ["sync01.corp.example.test", "dc01"])
            #expect(listed.allSatisfy { $0["certificate"] == nil && $0["alerts"] == nil })
            let audits = await h.graph("GET", "auditLogs/directoryAudits", token: token).json["value"]?.arrayValue ?? []
            #expect(audits.filter { $0["activityDisplayName"] == "Register health agent" }.count == 2)
        }
    }

    @Test("the certificate names its tenant and agent, chains to the tenant's health CA and no other, and carries only the agent's key")
    func certificateChainsToTheTenantsCA() async throws {
        try await Harness.run { h in
            let admin = try await h.caller(named: "ga", role: BuiltInRoles.globalAdministrator)
            let key = try HealthAgentKey.make(machineName: "sync01")
            let made = try await Self.beta(h, "POST", "agents", try Self.registration(csr: key.certificateSigningRequestPEM), as: admin)
            let certificate = try HealthCertificateAuthority.certificate(pem: try #require(made.json["certificate"]?.stringValue))
            let identity = try #require(HealthCertificateAuthority.agentIdentity(certificate))
            #expect(identity.tenant == h.tenant.tenantId && identity.agent == made.json["id"]?.stringValue)
            let ca = try #require(try await HealthCertificateAuthority.load(tenant: h.tenant.tenantId, store: h.app.store, sealing: h.app.keySealing))
            #expect(await ca.verify(certificate, now: h.clock.now))
            #expect(!(await ca.verify(certificate, now: h.clock.now.addingTimeInterval(HealthCertificateAuthority.certificateLifetime + 86_400))))
            // Another tenant's CA does not accept it.
            let other = try await HealthCertificateAuthority.loadOrCreate(tenant: "00000000-0000-0000-0000-0000000000aa", store: h.app.store, sealing: h.app.keySealing, now: h.clock.now)
            #expect(!(await other.verify(certificate, now: h.clock.now)))
        }
    }

    @Test("bad registrations are refused with Graph's error and nothing is stored",
          arguments: [
            (["role": "ad-fs"], 400, "role must be one of"),
            (["machineName": ""], 400, "machineName"),
            (["agentVersion": "two"], 400, "agentVersion"),
            (["agentVersion": "1.9.9"], 426, "older than the minimum supported version"),
            (["certificateSigningRequest": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----"], 400, "certificateSigningRequest"),
            (["extra": "x"], 400, "Unknown property"),
          ] as [([String: String], Int, String)])
    func badRegistrations(change: [String: String], status: Int, message: String) async throws {
        try await Harness.run { h in
            let admin = try await h.caller(named: "ga", role: BuiltInRoles.globalAdministrator)
            var body = try Self.registration()
            for (key, value) in change { body[key] = .string(value) }
            let response = try await Self.beta(h, "POST", "agents", body, as: admin)
            #expect(response.status == status && response.text.contains(message), "\(response.text)")
            #expect(try await HealthService(directory: h.app.directory, clock: h.clock).agents(tenant: h.tenant.tenantId).isEmpty)
        }
    }

    @Test("a signing request whose signature was not made by its key is refused")
    func forgedSigningRequest() async throws {
        try await Harness.run { h in
            let admin = try await h.caller(named: "ga", role: BuiltInRoles.globalAdministrator)
            let pem = try HealthAgentKey.make(machineName: "sync01").certificateSigningRequestPEM
            // Flip one byte of the DER near its end: inside the signature.
            let base64 = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
            var der = try #require(Data(base64Encoded: base64))
            der[der.count - 5] ^= 0x01
            let forged = "-----BEGIN CERTIFICATE REQUEST-----\n\(der.base64EncodedString(options: .lineLength64Characters))\n-----END CERTIFICATE REQUEST-----"
            let response = try await Self.beta(h, "POST", "agents", try Self.registration(csr: forged), as: admin)
            #expect(response.status == 400 && response.text.contains("does not verify"), "\(response.text)")
        }
    }

    @Test("uploads are checked whole", arguments: [
        (#"[]"#, "must be a JSON object"),
        (#"{"sync": {}}"#, "no agentVersion"),
        (#"{"agentVersion": "2.1", "adds": {"domainController": "dc", "reachable": false}}"#, "cannot upload 'adds'"),
        (#"{"agentVersion": "2.1", "sync": {"runs": {}}}"#, "sync.runs must be an array"),
        (#"{"agentVersion": "2.1", "sync": {"runs": [{"imported": -1}]}}"#, "sync.runs[0].imported must be a count"),
        (#"{"agentVersion": "2.1", "sync": {"exportErrors": [{"code": 7}]}}"#, "sync.exportErrors[0].code must be a string"),
        (#"{"agentVersion": "2.1", "sync": {"runz": []}}"#, "Unknown member 'sync.runz'"),
        (#"{"agentVersion": "2.1", "sync": {}, "secret": 1}"#, "Unknown member 'secret'"),
        (#"{"agentVersion": "2.1.x", "sync": {}}"#, "is not a version"),
    ])
    func uploadValidation(body: String, message: String) throws {
        let error = #expect(throws: HealthError.self) { try HealthReport.parse(Array(body.utf8), role: .sync) }
        #expect(error?.status == 400 && error?.message.contains(message) == true, "\(error?.message ?? "")")
    }

    @Test("a domain controller report needs latencies when reachable, within bounds")
    func domainControllerReports() throws {
        let ok = try HealthReport.parse(Array(#"{"agentVersion":"2.1.0","adds":{"domainController":"ldaps://dc01","reachable":true,"bindMilliseconds":3.5,"searchMilliseconds":1}}"#.utf8), role: .adds)
        #expect(ok.content == .adds(.init(domainController: "ldaps://dc01", reachable: true, bindMilliseconds: 3.5, searchMilliseconds: 1, error: nil)))
        #expect(throws: HealthError.self) {
            try HealthReport.parse(Array(#"{"agentVersion":"2.1.0","adds":{"domainController":"dc01","reachable":true}}"#.utf8), role: .adds)
        }
        #expect(throws: HealthError.self) {
            try HealthReport.parse(Array(#"{"agentVersion":"2.1.0","adds":{"domainController":"dc01","reachable":true,"bindMilliseconds":-1,"searchMilliseconds":1}}"#.utf8), role: .adds)
        }
    }

    @Test("versions compare part by part, and agents below the floor are refused with an upgrade message", arguments: [
        ("2.0.0", "2.0", false), ("2.10.0", "2.9.1", true), ("1.99", "2.0.0", false), ("2.0.1", "2.0.0.9", true),
    ])
    func versions(a: String, b: String, newer: Bool) throws {
        let left = try #require(HealthAgentVersion(a)), right = try #require(HealthAgentVersion(b))
        #expect((left > right) == newer)
    }

    @Test("an upload from an agent older than the minimum version is refused with 426 and stores nothing")
    func versionFloor() async throws {
        try await Harness.run { h in
            let agent = try await Self.register(h)
            var old = Self.clean
            old["agentVersion"] = "1.9.9"
            await #expect(throws: HealthError.agentTooOld(HealthAgentVersion("1.9.9")!)) { try await Self.upload(h, agent, old) }
            #expect(try await HealthService(directory: h.app.directory, clock: h.clock).agent(tenant: h.tenant.tenantId, id: agent.id)?.lastUploadDateTime == nil)
            #expect(HealthError.agentTooOld(HealthAgentVersion("1.9.9")!).status == 426)
        }
    }

    @Test("only the certificate an agent was registered with uploads as that agent, and not once the agent is removed")
    func certificateBinding() async throws {
        try await Harness.run { h in
            let agent = try await Self.register(h)
            await #expect(throws: HealthError.self) { try await Self.upload(h, (agent.id, String(repeating: "0", count: 64)), Self.clean) }
            _ = try await Self.upload(h, agent, Self.clean)
            let admin = try await h.caller(named: "ga", role: BuiltInRoles.globalAdministrator)
            #expect(try await Self.beta(h, "DELETE", "agents/\(agent.id)", as: admin).status == 204)
            await #expect(throws: HealthError.self) { try await Self.upload(h, agent, Self.clean) }
        }
    }

    @Test("sync uploads raise the deletion threshold, hard-match quarantine and export error alerts, and a clean upload resolves them")
    func syncAlerts() async throws {
        try await Harness.run { h in
            let agent = try await Self.register(h)
            let troubled: JSONValue = ["agentVersion": "2.1.0", "sync": [
                "runs": [["id": "r2", "connector": "corp", "at": "2026-12-01T00:30:00Z", "status": "stopped-deletion-threshold-exceeded"]],
                "deletionThresholdStops": [["runId": "r2", "connector": "corp", "pendingDeletions": 600]],
                "quarantined": [["distinguishedName": "CN=mallory,OU=Staff", "code": "InvalidHardMatch", "message": "takeover"]],
                "exportErrors": [["distinguishedName": "CN=bob,OU=Staff", "code": "Request_BadRequest", "message": "bad"]]]]
            let answer = try await Self.upload(h, agent, troubled)
            #expect(answer["activeAlerts"] == 3)
            let raised = try await Self.alerts(h, activeOnly: true)
            #expect(Set(raised.compactMap { $0["shortName"]?.stringValue })
                    == ["ExportStoppedDeletionThresholdExceeded", "HardMatchQuarantine", "ExportErrors"])
            #expect(raised.allSatisfy { $0["level"] == "Error" && $0["monitorRoleType"] == "AadSyncService" && $0["serviceMemberId"]?.stringValue == agent.id })
            #expect(raised.contains { $0["description"]?.stringValue?.contains("CN=mallory,OU=Staff") == true })

            // The same conditions again: the alerts stay, not duplicated.
            h.clock.advance(600)
            _ = try await Self.upload(h, agent, troubled)
            #expect(try await Self.alerts(h).count == 3)

            h.clock.advance(600)
            #expect(try await Self.upload(h, agent, Self.clean)["activeAlerts"] == 0)
            let after = try await Self.alerts(h)
            #expect(after.count == 3 && after.allSatisfy { $0["state"] == "ResolvedByPositiveResult" })
            #expect(after.allSatisfy { $0["resolvedDate"]?.stringValue == Timestamp.format(h.clock.now) })
        }
    }

    @Test("an agent silent for more than two hours has 'Health service data is not up to date', raised when it went stale; its next upload resolves it")
    func staleAlert() async throws {
        try await Harness.run { h in
            let agent = try await Self.register(h)
            _ = try await Self.upload(h, agent, Self.clean)
            let lastUpload = h.clock.now
            h.clock.advance(2 * 3600)
            #expect(try await Self.alerts(h).isEmpty)  // exactly two hours: not yet
            h.clock.advance(1)
            let stale = try #require(try await Self.alerts(h, activeOnly: true).first)
            #expect(stale["displayName"] == "Health service data is not up to date" && stale["level"] == "Warning")
            #expect(stale["createdDate"]?.stringValue == Timestamp.format(lastUpload.addingTimeInterval(2 * 3600)))
            // The same alert (same id) on every read while the agent stays silent.
            h.clock.advance(3600)
            #expect(try await Self.alerts(h, activeOnly: true).first?["alertId"] == stale["alertId"])
            let reader = try await h.caller(named: "gr", role: BuiltInRoles.globalReader)
            let agents = try await Self.beta(h, "GET", "agents", as: reader).json["value"]?.arrayValue ?? []
            #expect(agents.first?["health"] == "Warning" && agents.first?["activeAlerts"] == 1)

            _ = try await Self.upload(h, agent, Self.clean)
            #expect(try await Self.alerts(h, activeOnly: true).isEmpty)
            let resolved = try #require(try await Self.alerts(h).first)
            #expect(resolved["alertId"] == stale["alertId"] && resolved["state"] == "ResolvedByPositiveResult")
            #expect(resolved["resolvedDate"]?.stringValue == Timestamp.format(h.clock.now))
        }
    }

    @Test("the admin center's Connect Health page lists agents and alerts, escaped, for readers only")
    func healthPage() async throws {
        try await Harness.run { h in
            let admin = try await h.caller(named: "ga", role: BuiltInRoles.globalAdministrator)
            let made = try await Self.beta(h, "POST", "agents", try Self.registration(role: "adds", machine: "<script>dc01</script>"), as: admin)
            let agent = (try #require(made.json["id"]?.stringValue),
                         try HealthCertificateAuthority.thumbprint(try HealthCertificateAuthority.certificate(pem: try #require(made.json["certificate"]?.stringValue))))
            _ = try await Self.upload(h, agent, ["agentVersion": "2.1.0", "adds": ["domainController": "ldap://dc01", "reachable": false,
                                                                                   "error": "connection refused"]])
            let browser = try await AdminCenterTests.Browser.signIn(h, userID: h.tenant.adminUserId)
            let page = await browser.get("/health")
            #expect(page.status == 200)
            #expect(page.text.contains("&lt;script&gt;dc01&lt;/script&gt;") && !page.text.contains("<script>dc01"))
            #expect(page.text.contains("Domain controller is unreachable") && page.text.contains("connection refused"))

            let token = try await h.accessToken()
            let userAdmin = try await AdminCenterTests.createUser(h, token, "ua")
            try await h.assign(role: BuiltInRoles.userAdministrator, to: userAdmin)
            #expect(await (try await AdminCenterTests.Browser.signIn(h, userID: userAdmin)).get("/health").status == 403)
        }
    }
}
