public import Foundation
public import TesseraCore

/// What a tenant's administrators decided about generative-AI apps: the sanction tag of each (sanctioned,
/// unsanctioned or monitored: Defender for Cloud Apps' three), the custom apps they added and the scores they
/// overrode. One object per tenant (kind `generativeAIAppSettings`); every change is written with its change-log entry in
/// the same transaction, so it is audited (`/auditLogs/directoryAudits`) and moves the tenant's change sequence, which
/// is what the proxy's cached decisions are revalidated against.
public struct AppSanctions: Sendable, Hashable {
    public enum State: String, Sendable, CaseIterable { case none, sanctioned, unsanctioned, monitored }

    static let kind = ObjectKind(rawValue: "generativeAIAppSettings")

    public var sanctions: [String: State] = [:]
    public var customApps: [CustomApp] = []
    /// Score overrides by app id (shipped or custom).
    public var overrides: [String: ScoreOverride] = [:]

    /// Ids are kept lowercase by the store.
    static func id(_ tenant: String) -> String { "\(tenant.lowercased())-generative-ai-app-settings" }

    public init() {}

    init(body: [String: JSONValue]) {
        sanctions = (body["sanctions"]?.objectValue ?? [:]).compactMapValues { $0.stringValue.flatMap(State.init(rawValue:)) }
        customApps = (body["customApps"]?.arrayValue ?? []).compactMap(CustomApp.init(json:))
        overrides = (body["scoreOverrides"]?.objectValue ?? [:]).compactMapValues(ScoreOverride.init(json:))
    }

    var body: [String: JSONValue] {
        ["sanctions": .object(sanctions.mapValues { .string($0.rawValue) }), "customApps": .array(customApps.map(\.json)),
         "scoreOverrides": .object(overrides.mapValues(\.json))]
    }

    /// The tenant's settings (empty when nothing was ever set).
    public static func settings(tenant: String, store: any DirectoryStore) async throws -> AppSanctions {
        let id = id(tenant)
        guard let object = try await store.read({ tx in try await tx.object(tenant: tenant, id: id) }) else { return AppSanctions() }
        return AppSanctions(body: object.body)
    }

    /// The state of every app an administrator has tagged.
    public static func load(tenant: String, store: any DirectoryStore) async throws -> [String: State] {
        try await settings(tenant: tenant, store: store).sanctions
    }

    /// The shipped catalog with the tenant's custom apps added and its overrides applied; a custom app that no longer
    /// fits (a host the shipped catalog took since) is left out rather than failing every lookup.
    public func catalog(shipped: AICatalog, year: Int) -> AICatalog {
        var apps = shipped.apps
        for custom in customApps {
            let candidate = apps + [custom.app]
            if (try? AICatalog(version: shipped.version, apps: candidate, year: year)) != nil { apps = candidate }
        }
        return (try? AICatalog(version: shipped.version, apps: apps, year: year, scoreOverrides: overrides)) ?? shipped
    }

    /// Changes the tenant's settings in one transaction with its change-log entry (`activity`, e.g. "Add generative AI
    /// app"); `change` may throw to refuse, and nothing is written.
    @discardableResult
    public static func update(tenant: String, store: any DirectoryStore, actor: Actor, now: Date, activity: String, target: String,
                              _ change: @escaping @Sendable (inout AppSanctions) throws -> Void) async throws -> AppSanctions {
        let id = id(tenant)
        let record = ChangeRecord(tenant: tenant, objectId: id, kind: kind, operation: "update", activity: activity,
                                  actor: actor.initiatedBy, at: Timestamp.format(now), details: ["displayName": .string(target)])
        return try await store.write { tx in
            let current = try await tx.object(tenant: tenant, id: id)
            var settings = current.map { AppSanctions(body: $0.body) } ?? AppSanctions()
            try change(&settings)
            if var object = current {
                object.body = settings.body
                let version = object.version
                object.version += 1
                try await tx.update(object, expectedVersion: version)
            } else {
                try await tx.insert(StoredObject(tenant: tenant, id: id, kind: kind, body: settings.body))
            }
            try await tx.record(record)
            return settings
        }
    }

    /// Tags one app (`none` removes the tag), audited as "Set generative AI app sanction".
    public static func set(_ state: State, app: String, tenant: String, store: any DirectoryStore, actor: Actor, now: Date) async throws {
        try await update(tenant: tenant, store: store, actor: actor, now: now, activity: "Set generative AI app sanction",
                         target: "\(app): \(state.rawValue)") { settings in
            settings.sanctions[app] = state == .none ? nil : state
        }
    }
}
