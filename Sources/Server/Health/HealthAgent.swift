import Foundation
import TesseraCore

/// What a Connect Health agent watches: the sync engine's cycle, or a domain controller.
public enum HealthAgentRole: String, Sendable, CaseIterable {
    case sync
    case adds
}

/// An agent's version, compared part by part (`2.10.0` is newer than `2.9.1`).
public struct HealthAgentVersion: Sendable, Comparable, CustomStringConvertible {
    public let parts: [Int]

    /// The version this build's `tessera health agent` reports.
    public static let current = HealthAgentVersion(parts: [2, 1, 0])
    /// The oldest agent the health listener accepts: older ones are refused with an upgrade message, as Entra's agents
    /// below its floor stop working.
    public static let minimum = HealthAgentVersion(parts: [2, 0, 0])

    init(parts: [Int]) { self.parts = parts }

    /// `major.minor[.patch[.build]]`, each a number of at most six digits.
    public init?(_ text: String) {
        let pieces = text.split(separator: ".", omittingEmptySubsequences: false)
        guard (2...4).contains(pieces.count) else { return nil }
        var parts: [Int] = []
        for piece in pieces {
            guard (1...6).contains(piece.count), piece.allSatisfy(\.isASCII), let value = Int(piece), value >= 0 else { return nil }
            parts.append(value)
        }
        self.parts = parts
    }

    public var description: String { parts.map(String.init).joined(separator: ".") }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        for index in 0..<max(lhs.parts.count, rhs.parts.count) {
            let l = index < lhs.parts.count ? lhs.parts[index] : 0, r = index < rhs.parts.count ? rhs.parts[index] : 0
            if l != r { return l < r }
        }
        return false
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { !(lhs < rhs) && !(rhs < lhs) }
}

/// A registered agent, kept as the tenant setting `health.agent.<id>` (each agent writes only its own record, so
/// agents uploading at once never contend); the tenant's agents are listed in `health.agents`.
struct HealthAgent: Sendable, Equatable {
    var id: String
    var role: HealthAgentRole
    var machineName: String
    var agentVersion: String
    var registeredDateTime: Date
    /// Who registered it (a user principal name or an application's name), for the operator.
    var registeredBy: String
    /// SHA-256 of the client certificate's DER, hex: only this certificate uploads as this agent.
    var certificateThumbprint: String
    var certificateExpirationDateTime: Date
    var lastUploadDateTime: Date?
    /// The newest upload's report (`sync` or `adds` member of the upload), as the agent sent it after validation.
    var lastReport: JSONValue?
    /// Active alerts and resolved ones (kept 30 days, at most 100).
    var alerts: [HealthAlert] = []

    static let indexKey = "health.agents"
    static func key(_ id: String) -> String { "health.agent.\(id)" }

    /// When the agent last said anything: its last upload, else its registration.
    var lastHeard: Date { lastUploadDateTime ?? registeredDateTime }

    var json: JSONValue {
        ["id": .string(id), "role": .string(role.rawValue), "machineName": .string(machineName), "agentVersion": .string(agentVersion),
         "registeredDateTime": .string(Timestamp.format(registeredDateTime)), "registeredBy": .string(registeredBy),
         "certificateThumbprint": .string(certificateThumbprint),
         "certificateExpirationDateTime": .string(Timestamp.format(certificateExpirationDateTime)),
         "lastUploadDateTime": .optional(lastUploadDateTime.map(Timestamp.format)), "lastReport": lastReport ?? .null,
         "alerts": .array(alerts.map(\.json))]
    }

    init(id: String, role: HealthAgentRole, machineName: String, agentVersion: String, registeredDateTime: Date, registeredBy: String,
         certificateThumbprint: String, certificateExpirationDateTime: Date) {
        self.id = id
        self.role = role
        self.machineName = machineName
        self.agentVersion = agentVersion
        self.registeredDateTime = registeredDateTime
        self.registeredBy = registeredBy
        self.certificateThumbprint = certificateThumbprint
        self.certificateExpirationDateTime = certificateExpirationDateTime
    }

    init?(_ json: JSONValue) {
        guard let id = json["id"]?.stringValue, let role = json["role"]?.stringValue.flatMap(HealthAgentRole.init),
              let machine = json["machineName"]?.stringValue, let version = json["agentVersion"]?.stringValue,
              let registered = json["registeredDateTime"]?.stringValue.flatMap(Timestamp.parse),
              let thumbprint = json["certificateThumbprint"]?.stringValue,
              let expires = json["certificateExpirationDateTime"]?.stringValue.flatMap(Timestamp.parse) else { return nil }
        self.init(id: id, role: role, machineName: machine, agentVersion: version, registeredDateTime: registered,
                  registeredBy: json["registeredBy"]?.stringValue ?? "", certificateThumbprint: thumbprint, certificateExpirationDateTime: expires)
        lastUploadDateTime = json["lastUploadDateTime"]?.stringValue.flatMap(Timestamp.parse)
        lastReport = json["lastReport"].flatMap { $0.isNull ? nil : $0 }
        alerts = json["alerts"]?.arrayValue?.compactMap(HealthAlert.init) ?? []
    }

    /// The agent as the API shows it (`GET /beta/connectHealth/agents`), with its health at `now`.
    func rendered(now: Date) -> JSONValue {
        let active = HealthAlertRules.current(self, now: now).filter { $0.state == .active }
        let health = active.contains { $0.level == .error } ? "Error" : active.isEmpty ? "Healthy" : "Warning"
        var body = json
        body["alerts"] = nil
        body["health"] = .string(health)
        body["activeAlerts"] = .int(Int64(active.count))
        return body
    }
}

/// An alert, in the shape of Entra Connect Health's (`alertId`, `level`, `state`, `shortName`, `displayName`,
/// `description`, `remediation`, `createdDate`, `resolvedDate`, `lastUpdated`, `monitorRoleType`).
struct HealthAlert: Sendable, Equatable {
    enum Level: String, Sendable { case warning = "Warning", error = "Error" }
    enum State: String, Sendable {
        case active = "Active"
        /// Resolved by the agent's own report (Entra: `ResolvedByPositiveResult`).
        case resolved = "ResolvedByPositiveResult"
    }

    var alertId: String
    /// Which rule raised it (`HealthAlertRules.Kind`); at most one active alert per agent and kind.
    var shortName: String
    var level: Level
    var state: State
    var displayName: String
    var description: String
    var remediation: String
    var createdDate: Date
    var resolvedDate: Date?
    var lastUpdated: Date

    var json: JSONValue {
        ["alertId": .string(alertId), "shortName": .string(shortName), "level": .string(level.rawValue), "state": .string(state.rawValue),
         "displayName": .string(displayName), "description": .string(description), "remediation": .string(remediation),
         "createdDate": .string(Timestamp.format(createdDate)), "resolvedDate": .optional(resolvedDate.map(Timestamp.format)),
         "lastUpdated": .string(Timestamp.format(lastUpdated))]
    }

    init(alertId: String, shortName: String, level: Level, state: State, displayName: String, description: String, remediation: String,
         createdDate: Date, resolvedDate: Date? = nil, lastUpdated: Date) {
        self.alertId = alertId
        self.shortName = shortName
        self.level = level
        self.state = state
        self.displayName = displayName
        self.description = description
        self.remediation = remediation
        self.createdDate = createdDate
        self.resolvedDate = resolvedDate
        self.lastUpdated = lastUpdated
    }

    init?(_ json: JSONValue) {
        guard let id = json["alertId"]?.stringValue, let short = json["shortName"]?.stringValue,
              let level = json["level"]?.stringValue.flatMap(Level.init), let state = json["state"]?.stringValue.flatMap(State.init),
              let created = json["createdDate"]?.stringValue.flatMap(Timestamp.parse),
              let updated = json["lastUpdated"]?.stringValue.flatMap(Timestamp.parse) else { return nil }
        self.init(alertId: id, shortName: short, level: level, state: state, displayName: json["displayName"]?.stringValue ?? "",
                  description: json["description"]?.stringValue ?? "", remediation: json["remediation"]?.stringValue ?? "",
                  createdDate: created, resolvedDate: json["resolvedDate"]?.stringValue.flatMap(Timestamp.parse), lastUpdated: updated)
    }

    /// The alert as the API lists it, with the agent it concerns.
    func rendered(agent: HealthAgent) -> JSONValue {
        var body = json
        body["serviceMemberId"] = .string(agent.id)
        body["machineName"] = .string(agent.machineName)
        body["monitorRoleType"] = .string(agent.role == .sync ? "AadSyncService" : "AdDomainService")
        return body
    }
}
