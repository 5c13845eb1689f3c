import Foundation
import TesseraCore

/// One upload from an agent, validated: `{"agentVersion", "sync": {…}}` from a sync agent or `{"agentVersion",
/// "adds": {…}}` from a domain controller agent. Anything else is refused whole, so nothing half-read is stored.
///
/// `sync`: `runs` (the cycle's runs, newest last: `id`, `connector`, `at`, `status`, counts), `exportErrors` and
/// `quarantined` (objects with `distinguishedName`, `code`, `message`), `deletionThresholdStops` (runs stopped at the
/// accidental-deletion threshold whose deletions await approval: `runId`, `connector`, `at`, `pendingDeletions`).
/// `adds`: `domainController`, `reachable`, `bindMilliseconds`, `searchMilliseconds`, `error`.
struct HealthReport: Sendable, Equatable {
    struct ObjectIssue: Sendable, Equatable {
        var distinguishedName: String
        var code: String
        var message: String
    }

    struct SyncHealth: Sendable, Equatable {
        var runs: [JSONValue] = []
        var exportErrors: [ObjectIssue] = []
        var quarantined: [ObjectIssue] = []
        var deletionThresholdStops: [JSONValue] = []
    }

    struct DomainControllerHealth: Sendable, Equatable {
        var domainController: String
        var reachable: Bool
        var bindMilliseconds: Double?
        var searchMilliseconds: Double?
        var error: String?
    }

    enum Content: Sendable, Equatable {
        case sync(SyncHealth)
        case adds(DomainControllerHealth)
    }

    var agentVersion: HealthAgentVersion
    var content: Content

    static let maxItems = 1000
    static let maxText = 2048

    /// Parses and checks an upload body for an agent of `role`. Throws `HealthError` naming the first problem.
    static func parse(_ body: [UInt8], role: HealthAgentRole) throws(HealthError) -> HealthReport {
        let json: JSONValue
        do { json = try JSONParser.parse(body, maxDepth: 8) } catch { throw .badRequest("The upload is not valid JSON.") }
        guard let object = json.objectValue else { throw .badRequest("The upload must be a JSON object.") }
        for key in object.keys where !["agentVersion", "collectedDateTime", "sync", "adds"].contains(key) {
            throw .badRequest("Unknown member '\(key)' in the upload.")
        }
        guard let text = object["agentVersion"]?.stringValue else { throw .badRequest("The upload has no agentVersion.") }
        guard let version = HealthAgentVersion(text) else { throw .badRequest("agentVersion '\(text.prefix(40))' is not a version such as 2.1.0.") }
        let other: HealthAgentRole = role == .sync ? .adds : .sync
        guard object[other.rawValue] == nil else {
            throw .badRequest("This agent is registered for the role '\(role.rawValue)' and cannot upload '\(other.rawValue)' data.")
        }
        guard let content = object[role.rawValue]?.objectValue else { throw .badRequest("The upload has no '\(role.rawValue)' object.") }
        switch role {
        case .sync: return HealthReport(agentVersion: version, content: .sync(try syncHealth(content)))
        case .adds: return HealthReport(agentVersion: version, content: .adds(try domainControllerHealth(content)))
        }
    }

    static func syncHealth(_ object: [String: JSONValue]) throws(HealthError) -> SyncHealth {
        for key in object.keys where !["runs", "exportErrors", "quarantined", "deletionThresholdStops"].contains(key) {
            throw .badRequest("Unknown member 'sync.\(key)' in the upload.")
        }
        var health = SyncHealth()
        health.runs = try records(object["runs"], "sync.runs", strings: ["id", "connector", "at", "status"],
                                  counts: ["imported", "added", "updated", "deleted", "quarantined", "errors"])
        health.deletionThresholdStops = try records(object["deletionThresholdStops"], "sync.deletionThresholdStops",
                                                    strings: ["runId", "connector", "at"], counts: ["pendingDeletions"])
        health.exportErrors = try issues(object["exportErrors"], "sync.exportErrors")
        health.quarantined = try issues(object["quarantined"], "sync.quarantined")
        return health
    }

    static func domainControllerHealth(_ object: [String: JSONValue]) throws(HealthError) -> DomainControllerHealth {
        for key in object.keys where !["domainController", "reachable", "bindMilliseconds", "searchMilliseconds", "error"].contains(key) {
            throw .badRequest("Unknown member 'adds.\(key)' in the upload.")
        }
        guard let dc = object["domainController"]?.stringValue, !dc.isEmpty, dc.count <= 255 else {
            throw .badRequest("adds.domainController must be a name of 1 to 255 characters.")
        }
        guard let reachable = object["reachable"]?.boolValue else { throw .badRequest("adds.reachable must be true or false.") }
        func milliseconds(_ name: String) throws(HealthError) -> Double? {
            guard let value = object[name], !value.isNull else { return nil }
            guard let number = value.doubleValue, number.isFinite, (0...3_600_000).contains(number) else {
                throw .badRequest("adds.\(name) must be a number of milliseconds from 0 to 3600000.")
            }
            return number
        }
        let bind = try milliseconds("bindMilliseconds"), search = try milliseconds("searchMilliseconds")
        if reachable, bind == nil || search == nil {
            throw .badRequest("A reachable domain controller's report needs bindMilliseconds and searchMilliseconds.")
        }
        let error = object["error"]?.stringValue
        guard (error?.count ?? 0) <= maxText else { throw .badRequest("adds.error is longer than \(maxText) characters.") }
        return DomainControllerHealth(domainController: dc, reachable: reachable, bindMilliseconds: bind, searchMilliseconds: search, error: error)
    }

    /// A list of flat records keeping only the named string and count members (each checked).
    static func records(_ value: JSONValue?, _ name: String, strings: [String], counts: [String]) throws(HealthError) -> [JSONValue] {
        guard let value, !value.isNull else { return [] }
        guard let items = value.arrayValue else { throw .badRequest("\(name) must be an array.") }
        guard items.count <= maxItems else { throw .badRequest("\(name) holds more than \(maxItems) entries.") }
        var out: [JSONValue] = []
        for (index, item) in items.enumerated() {
            guard let object = item.objectValue else { throw .badRequest("\(name)[\(index)] must be an object.") }
            var kept: [String: JSONValue] = [:]
            for key in strings {
                guard let member = object[key], !member.isNull else { continue }
                guard let text = member.stringValue, text.count <= maxText else {
                    throw .badRequest("\(name)[\(index)].\(key) must be a string of at most \(maxText) characters.")
                }
                kept[key] = .string(text)
            }
            for key in counts {
                guard let member = object[key], !member.isNull else { continue }
                guard let count = member.intValue, count >= 0 else { throw .badRequest("\(name)[\(index)].\(key) must be a count.") }
                kept[key] = .int(count)
            }
            out.append(.object(kept))
        }
        return out
    }

    static func issues(_ value: JSONValue?, _ name: String) throws(HealthError) -> [ObjectIssue] {
        try records(value, name, strings: ["distinguishedName", "code", "message"], counts: []).map {
            ObjectIssue(distinguishedName: $0["distinguishedName"]?.stringValue ?? "", code: $0["code"]?.stringValue ?? "",
                        message: $0["message"]?.stringValue ?? "")
        }
    }

    /// The report as it is kept (the agent's `lastReport`).
    var json: JSONValue {
        switch content {
        case .sync(let sync):
            func issue(_ i: ObjectIssue) -> JSONValue {
                ["distinguishedName": .string(i.distinguishedName), "code": .string(i.code), "message": .string(i.message)]
            }
            return ["sync": ["runs": .array(sync.runs), "exportErrors": .array(sync.exportErrors.map(issue)),
                             "quarantined": .array(sync.quarantined.map(issue)), "deletionThresholdStops": .array(sync.deletionThresholdStops)]]
        case .adds(let dc):
            return ["adds": ["domainController": .string(dc.domainController), "reachable": .bool(dc.reachable),
                             "bindMilliseconds": dc.bindMilliseconds.map(JSONValue.double) ?? .null,
                             "searchMilliseconds": dc.searchMilliseconds.map(JSONValue.double) ?? .null, "error": .optional(dc.error)]]
        }
    }
}

/// Why the health listener refused an upload: a Graph-shaped error with its HTTP status.
struct HealthError: Error, Sendable, Equatable {
    let status: Int
    let code: String
    let message: String

    static func badRequest(_ message: String) -> HealthError { HealthError(status: 400, code: "Request_BadRequest", message: message) }
    static func unauthorized(_ message: String) -> HealthError { HealthError(status: 401, code: "InvalidAuthenticationToken", message: message) }

    /// 426 Upgrade Required: the agent is older than the floor.
    static func agentTooOld(_ version: HealthAgentVersion) -> HealthError {
        HealthError(status: 426, code: "AgentVersionNotSupported",
                    message: "Health agent \(version) is older than the minimum supported version \(HealthAgentVersion.minimum). Upgrade the agent: "
                        + "agents below the minimum version no longer send data.")
    }

    var body: JSONValue { ["error": ["code": .string(code), "message": .string(message)]] }
}
