public import Foundation
public import TesseraCore
import SwiftASN1
import X509

/// Connect Health's records: agent registration (a certificate from the tenant's health CA), uploads (validated,
/// turned into alerts) and the lists the API, the admin center and `tessera health alerts` show.
public struct HealthService: Sendable {
    let store: any DirectoryStore
    let directory: DirectoryService
    let clock: any TimeSource

    public init(directory: DirectoryService, clock: any TimeSource) {
        self.store = directory.store
        self.directory = directory
        self.clock = clock
    }

    /// Who may register and remove agents (Entra: a Global Administrator or a Hybrid Identity Administrator).
    static let managers: Set<String> = [BuiltInRoles.globalAdministrator, BuiltInRoles.hybridIdentityAdministrator]
    /// Who may read agents and alerts.
    static let readers: Set<String> = managers.union([BuiltInRoles.globalReader, BuiltInRoles.securityReader])

    /// The directory roles the caller holds: a user's, or those assigned to an application's service principal.
    func roles(of caller: Caller) async throws -> Set<String> {
        if caller.userID != nil { return caller.directoryRoles }
        return try await directory.directoryRoles(tenant: caller.tenant, principal: caller.actor.id)
    }

    func require(_ caller: Caller, oneOf wanted: Set<String>, to action: String) async throws {
        guard !(try await roles(of: caller)).isDisjoint(with: wanted) else {
            let names = wanted.compactMap { BuiltInRoles.byTemplateId($0)?.displayName }.sorted().joined(separator: ", ")
            throw DirectoryError(.accessDenied, "Insufficient privileges to \(action): the caller must hold one of these roles: \(names).")
        }
    }

    // MARK: Registration

    /// Registers an agent from `{"role", "machineName", "agentVersion", "certificateSigningRequest"}` (a PEM CSR) and
    /// returns it with its client certificate and the CA that issued it. Nothing is stored unless all of it is valid.
    func register(_ body: JSONValue, as caller: Caller, uploadURL: String?, sealing: KeySealing) async throws -> JSONValue {
        try await require(caller, oneOf: Self.managers, to: "register a health agent")
        guard let object = body.objectValue else { throw DirectoryError.badRequest("The body must be a JSON object.") }
        for key in object.keys where !["role", "machineName", "agentVersion", "certificateSigningRequest"].contains(key) {
            throw DirectoryError.badRequest("Unknown property '\(key)'.")
        }
        guard let role = object["role"]?.stringValue.flatMap(HealthAgentRole.init) else {
            throw DirectoryError.badRequest("role must be one of: \(HealthAgentRole.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        guard let machine = object["machineName"]?.stringValue, (1...255).contains(machine.count),
              machine.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else {
            throw DirectoryError.badRequest("machineName must be 1 to 255 printable characters.")
        }
        guard let versionText = object["agentVersion"]?.stringValue, let version = HealthAgentVersion(versionText) else {
            throw DirectoryError.badRequest("agentVersion must be a version such as \(HealthAgentVersion.current).")
        }
        if version < HealthAgentVersion.minimum { throw HealthError.agentTooOld(version) }
        guard let pem = object["certificateSigningRequest"]?.stringValue, pem.utf8.count <= 16 * 1024,
              let request = try? CertificateSigningRequest(pemEncoded: pem) else {
            throw DirectoryError.badRequest("certificateSigningRequest must be a PEM certificate signing request.")
        }
        let now = clock.now
        let tenant = caller.tenant
        let ca = try await HealthCertificateAuthority.loadOrCreate(tenant: tenant, store: store, sealing: sealing, now: now)
        let id = Identifier.make()
        let certificate = try ca.issue(request, tenant: tenant, agent: id, machineName: machine, now: now)
        let agent = HealthAgent(id: id, role: role, machineName: machine, agentVersion: version.description, registeredDateTime: now,
                                registeredBy: caller.actor.userPrincipalName ?? caller.actor.displayName,
                                certificateThumbprint: try HealthCertificateAuthority.thumbprint(certificate),
                                certificateExpirationDateTime: certificate.notValidAfter)
        try await store.write { tx in
            var index = try await tx.setting(tenant: tenant, key: HealthAgent.indexKey)?.arrayValue ?? []
            index.append(.string(id))
            try await tx.putSetting(tenant: tenant, key: HealthAgent.indexKey, value: .array(index))
            try await tx.putSetting(tenant: tenant, key: HealthAgent.key(id), value: agent.json)
        }
        try await directory.recordEvent(tenant: tenant, objectId: id, kind: .healthAgent, activity: "Register health agent",
                                        actor: caller.actor, details: ["displayName": .string(machine), "role": .string(role.rawValue)])
        var response = agent.rendered(now: now)
        response["certificate"] = .string(try certificate.serializeAsPEM().pemString)
        response["caCertificate"] = .string(try ca.certificate.serializeAsPEM().pemString)
        response["uploadUrl"] = .optional(uploadURL)
        return response
    }

    /// Removes an agent: its certificate no longer uploads.
    func unregister(_ id: String, as caller: Caller) async throws {
        try await require(caller, oneOf: Self.managers, to: "remove a health agent")
        let tenant = caller.tenant
        let removed = try await store.write { tx -> String? in
            var index = try await tx.setting(tenant: tenant, key: HealthAgent.indexKey)?.arrayValue ?? []
            guard let position = index.firstIndex(of: .string(id.lowercased())) else { return nil }
            index.remove(at: position)
            let machine = try await tx.setting(tenant: tenant, key: HealthAgent.key(id.lowercased()))?["machineName"]?.stringValue
            try await tx.putSetting(tenant: tenant, key: HealthAgent.indexKey, value: .array(index))
            try await tx.putSetting(tenant: tenant, key: HealthAgent.key(id.lowercased()), value: .null)
            return machine ?? ""
        }
        guard let removed else { throw DirectoryError.notFound(id) }
        try await directory.recordEvent(tenant: tenant, objectId: id.lowercased(), kind: .healthAgent, activity: "Remove health agent",
                                        actor: caller.actor, details: ["displayName": .string(removed)])
    }

    // MARK: Uploads

    /// Takes an upload from the agent a verified client certificate names. The agent must still be registered with
    /// that very certificate; the report is checked whole, then stored with the alerts it raises and resolves.
    func receive(tenant: String, agent id: String, thumbprint: String, body: [UInt8]) async throws -> JSONValue {
        guard let agent = try await agent(tenant: tenant, id: id), agent.certificateThumbprint == thumbprint else {
            throw HealthError.unauthorized("This certificate belongs to no registered health agent: register the agent again.")
        }
        let report = try HealthReport.parse(body, role: agent.role)
        if report.agentVersion < HealthAgentVersion.minimum { throw HealthError.agentTooOld(report.agentVersion) }
        let now = clock.now
        let updated = try await store.write { tx -> HealthAgent? in
            guard let stored = try await tx.setting(tenant: tenant, key: HealthAgent.key(id)).flatMap(HealthAgent.init) else { return nil }
            var agent = stored
            agent.alerts = HealthAlertRules.afterUpload(stored, report: report, now: now)
            agent.lastUploadDateTime = now
            agent.lastReport = report.json
            agent.agentVersion = report.agentVersion.description
            try await tx.putSetting(tenant: tenant, key: HealthAgent.key(id), value: agent.json)
            return agent
        }
        guard let updated else { throw HealthError.unauthorized("This certificate belongs to no registered health agent: register the agent again.") }
        let active = updated.alerts.filter { $0.state == .active }
        return ["receivedDateTime": .string(Timestamp.format(now)), "activeAlerts": .int(Int64(active.count)),
                "alerts": .array(active.map { .string($0.displayName) })]
    }

    // MARK: The listener's address

    static let listenerKey = "health.listener"

    /// Where agents upload: the health listener's URL, published by the node that runs it (`serve --health-listen`).
    func uploadURL() async throws -> String? {
        try await store.read { tx in try await tx.setting(tenant: SigningKey.settingsTenant, key: Self.listenerKey) }?["uploadUrl"]?.stringValue
    }

    func publish(uploadURL: String) async throws {
        try await store.write { tx in
            try await tx.putSetting(tenant: SigningKey.settingsTenant, key: Self.listenerKey, value: ["uploadUrl": .string(uploadURL)])
        }
    }

    // MARK: Reading

    func agent(tenant: String, id: String) async throws -> HealthAgent? {
        try await store.read { tx in try await tx.setting(tenant: tenant, key: HealthAgent.key(id.lowercased())) }.flatMap(HealthAgent.init)
    }

    /// The tenant's agents, in the order they registered.
    public func agents(tenant: String) async throws -> [HealthAgentSummary] {
        let records = try await store.read { tx in
            var out: [JSONValue] = []
            for id in try await tx.setting(tenant: tenant, key: HealthAgent.indexKey)?.arrayValue?.compactMap(\.stringValue) ?? [] {
                if let record = try await tx.setting(tenant: tenant, key: HealthAgent.key(id)) { out.append(record) }
            }
            return out
        }
        return records.compactMap(HealthAgent.init).map { HealthAgentSummary(agent: $0) }
    }

    /// Every agent's alerts as they stand now (the stale alert of a silent agent included), newest first; only
    /// active ones when `activeOnly`.
    public func alerts(tenant: String, activeOnly: Bool = false) async throws -> [JSONValue] {
        let now = clock.now
        var all: [(HealthAlert, HealthAgent)] = []
        for summary in try await agents(tenant: tenant) {
            for alert in HealthAlertRules.current(summary.agent, now: now) where !activeOnly || alert.state == .active {
                all.append((alert, summary.agent))
            }
        }
        return all.sorted { ($0.0.state == .active ? 1 : 0, $0.0.createdDate) > ($1.0.state == .active ? 1 : 0, $1.0.createdDate) }
            .map { $0.0.rendered(agent: $0.1) }
    }
}

/// An agent as lists show it.
public struct HealthAgentSummary: Sendable {
    let agent: HealthAgent
    public var id: String { agent.id }
    /// The agent as the API renders it at `now` (its health and number of active alerts included).
    public func json(now: Date) -> JSONValue { agent.rendered(now: now) }
}

extension ObjectKind {
    /// A Connect Health agent, as the audit log names what registration and removal acted on.
    static let healthAgent = ObjectKind(rawValue: "healthAgent")
}
