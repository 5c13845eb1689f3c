import Crypto
import Foundation
import TesseraCore

/// Connect Health's alert rules: pure functions of an agent's record, its newest report and the time. A condition a
/// report shows raises its alert; the first report without it resolves the alert. An agent silent for more than two
/// hours has the "Health service data is not up to date" alert, raised at the moment it went silent for that long and
/// resolved by its next upload.
enum HealthAlertRules {
    /// How long an agent may go without uploading.
    static let staleAfter: TimeInterval = 2 * 3600
    /// Resolved alerts are kept this long (and at most `keptResolved` of them).
    static let resolvedRetention: TimeInterval = 30 * 86_400
    static let keptResolved = 100

    enum Kind: String, CaseIterable {
        case staleData = "HealthServiceDataNotUpToDate"
        case deletionThreshold = "ExportStoppedDeletionThresholdExceeded"
        case hardMatchQuarantine = "HardMatchQuarantine"
        case exportErrors = "ExportErrors"
        case domainControllerUnreachable = "DomainControllerUnreachable"

        var level: HealthAlert.Level {
            switch self {
            case .staleData: .warning
            case .deletionThreshold, .hardMatchQuarantine, .exportErrors, .domainControllerUnreachable: .error
            }
        }

        var displayName: String {
            switch self {
            case .staleData: "Health service data is not up to date"
            case .deletionThreshold: "Export to Tessera was stopped. Accidental delete threshold was reached"
            case .hardMatchQuarantine: "Objects were quarantined: a hard match to a cloud-managed account holding a role was blocked"
            case .exportErrors: "Export errors occurred during the sync cycle"
            case .domainControllerUnreachable: "Domain controller is unreachable"
            }
        }

        var remediation: String {
            switch self {
            case .staleData:
                "Check that the agent's machine is running and can reach the health listener over TLS 1.2 or newer, and that its "
                    + "certificate has not expired; the alert clears when the agent reports again."
            case .deletionThreshold:
                "Review the deletions the run held back; if they are intended, approve them once with `tessera sync approve-deletions RUN`."
            case .hardMatchQuarantine:
                "Remove the role from the cloud account (or link the accounts deliberately), then delete the quarantined object with "
                    + "`tessera sync quarantine delete`; the next cycle matches it again."
            case .exportErrors: "List the errors with `tessera sync errors` and correct the objects in Active Directory."
            case .domainControllerUnreachable: "Check that the domain controller is running and answers LDAP from the agent's machine."
            }
        }
    }

    /// The conditions a report shows, each with a description of what was seen.
    static func conditions(_ report: HealthReport) -> [Kind: String] {
        var found: [Kind: String] = [:]
        switch report.content {
        case .sync(let sync):
            if !sync.deletionThresholdStops.isEmpty {
                let runs = sync.deletionThresholdStops.compactMap { $0["runId"]?.stringValue }
                found[.deletionThreshold] = "\(runs.count) sync run(s) stopped at the accidental-deletion threshold: \(runs.joined(separator: ", "))."
            }
            let hardMatch = sync.quarantined.filter { $0.code == "InvalidHardMatch" }
            if !hardMatch.isEmpty {
                found[.hardMatchQuarantine] = "\(hardMatch.count) object(s) quarantined with InvalidHardMatch: "
                    + hardMatch.prefix(5).map(\.distinguishedName).joined(separator: "; ") + (hardMatch.count > 5 ? "; …" : "") + "."
            }
            if !sync.exportErrors.isEmpty {
                found[.exportErrors] = "\(sync.exportErrors.count) object(s) failed to export: "
                    + sync.exportErrors.prefix(5).map { "\($0.distinguishedName) (\($0.code))" }.joined(separator: "; ")
                    + (sync.exportErrors.count > 5 ? "; …" : "") + "."
            }
        case .adds(let dc):
            if !dc.reachable {
                found[.domainControllerUnreachable] = "\(dc.domainController) did not answer: \(dc.error ?? "no reason given")."
            }
        }
        return found
    }

    /// The agent's alerts once a report arrived at `now`: a condition it shows stays or becomes active, an active
    /// alert whose condition is gone is resolved, and an agent that had been silent too long gets its stale alert
    /// recorded, raised when it went stale and resolved now.
    static func afterUpload(_ agent: HealthAgent, report: HealthReport, now: Date) -> [HealthAlert] {
        var alerts = agent.alerts
        if let stale = staleAlert(agent, now: now) {
            var resolved = stale
            resolved.state = .resolved
            resolved.resolvedDate = now
            resolved.lastUpdated = now
            alerts.append(resolved)
        }
        let conditions = conditions(report)
        for index in alerts.indices where alerts[index].state == .active {
            guard let kind = Kind(rawValue: alerts[index].shortName) else { continue }
            if let description = conditions[kind] {
                alerts[index].description = description
            } else {
                alerts[index].state = .resolved
                alerts[index].resolvedDate = now
            }
            alerts[index].lastUpdated = now
        }
        for kind in Kind.allCases {
            let isActive = alerts.contains { $0.shortName == kind.rawValue && $0.state == .active }
            guard let description = conditions[kind], !isActive else { continue }
            alerts.append(make(kind, agent: agent, description: description, raisedAt: now))
        }
        return prune(alerts, now: now)
    }

    /// The alerts as they stand at `now`: the stored ones, and the stale alert while the agent stays silent.
    static func current(_ agent: HealthAgent, now: Date) -> [HealthAlert] {
        agent.alerts + (staleAlert(agent, now: now).map { [$0] } ?? [])
    }

    /// The active stale alert at `now`, when the agent has said nothing for more than `staleAfter`.
    static func staleAlert(_ agent: HealthAgent, now: Date) -> HealthAlert? {
        let since = agent.lastHeard
        guard now.timeIntervalSince(since) > staleAfter else { return nil }
        let raised = since.addingTimeInterval(staleAfter)
        let hours = Int(now.timeIntervalSince(since) / 3600)
        return make(.staleData, agent: agent, description: "The \(agent.role.rawValue) agent on \(agent.machineName) has sent no data since "
                        + "\(Timestamp.formatted(since)) (\(hours) hour(s)).", raisedAt: raised, updated: now)
    }

    static func make(_ kind: Kind, agent: HealthAgent, description: String, raisedAt: Date, updated: Date? = nil) -> HealthAlert {
        HealthAlert(alertId: alertID(agent: agent.id, kind: kind, raisedAt: raisedAt), shortName: kind.rawValue, level: kind.level,
                    state: .active, displayName: kind.displayName, description: description, remediation: kind.remediation,
                    createdDate: raisedAt, lastUpdated: updated ?? raisedAt)
    }

    /// A stable id (the same on every read and on every node): a UUID made from the agent, the rule and the instant
    /// the alert was raised.
    static func alertID(agent: String, kind: Kind, raisedAt: Date) -> String {
        var bytes = Array(SHA256.hash(data: Data("\(agent)|\(kind.rawValue)|\(Int64(raisedAt.timeIntervalSince1970))".utf8)).prefix(16))
        bytes[6] = (bytes[6] & 0x0F) | 0x80  // version 8: a name-based UUID of our own hashing (RFC 9562 §5.8)
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        let hex = bytes.map { String(format: "%02x", $0) }.joined()
        let i = hex.startIndex
        func part(_ from: Int, _ to: Int) -> Substring { hex[hex.index(i, offsetBy: from)..<hex.index(i, offsetBy: to)] }
        return "\(part(0, 8))-\(part(8, 12))-\(part(12, 16))-\(part(16, 20))-\(part(20, 32))"
    }

    /// Drops resolved alerts past their retention, and the oldest beyond `keptResolved`.
    static func prune(_ alerts: [HealthAlert], now: Date) -> [HealthAlert] {
        let active = alerts.filter { $0.state == .active }
        let resolved = alerts.filter { $0.state != .active && now.timeIntervalSince($0.resolvedDate ?? $0.lastUpdated) <= resolvedRetention }
        return active + resolved.suffix(keptResolved)
    }
}

extension Timestamp {
    /// `2026-12-06 07:00 UTC`, for messages.
    static func formatted(_ date: Date) -> String {
        let text = format(date)
        return String(text.prefix(16)).replacingOccurrences(of: "T", with: " ") + " UTC"
    }
}
