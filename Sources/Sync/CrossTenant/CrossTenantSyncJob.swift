import Foundation
public import TesseraCore

/// A source tenant's synchronization configuration: per service principal (a cross-tenant synchronization
/// configuration application), its saved secrets and its jobs. Kept as the tenant setting `synchronization`.
public struct SynchronizationSettings: Codable, Sendable {
    public var servicePrincipals: [String: ServicePrincipalSynchronization] = [:]

    public init() {}

    static let key = "synchronization"

    public static func load(tenant: String, store: any DirectoryStore) async throws -> SynchronizationSettings {
        guard let json = try await store.read({ tx in try await tx.setting(tenant: tenant, key: key) }) else { return SynchronizationSettings() }
        return try JSONDecoder().decode(SynchronizationSettings.self, from: Data(json.serializedBytes))
    }

    /// Writes these settings whole, over whatever is stored. A change of the stored settings is an
    /// ``update(tenant:store:_:)``, which cannot undo another node's change made meanwhile.
    public func save(tenant: String, store: any DirectoryStore) async throws {
        let value = try stored
        try await store.write { tx in try await tx.putSetting(tenant: tenant, key: Self.key, value: value) }
    }

    /// The settings as the `synchronization` setting stores them.
    var stored: JSONValue {
        get throws { try JSONParser.parse(Array(try JSONEncoder().encode(self))) }
    }

    /// Changes the stored settings as a read-modify-write in one write transaction, the setting read with its row locked
    /// until the commit (``DirectoryWriter/lockedSetting(tenant:key:)``; a tenant with none yet gets empty settings to lock):
    /// of two changes at once on two nodes (a Graph call changing a job or the secrets, a run writing back its outcome or
    /// handing the run back) the second reads what the first wrote, so neither undoes the other. `change` may throw to
    /// change nothing.
    public static func update<T: Sendable>(tenant: String, store: any DirectoryStore,
                                           _ change: @Sendable (inout SynchronizationSettings) throws -> T) async throws -> T {
        try await store.write { tx in
            let json = try await tx.lockedSetting(tenant: tenant, key: key, creatingWith: try SynchronizationSettings().stored)
            var settings = try JSONDecoder().decode(SynchronizationSettings.self, from: Data(json.serializedBytes))
            let result = try change(&settings)
            try await tx.putSetting(tenant: tenant, key: key, value: try settings.stored)
            return result
        }
    }

    /// Every job with its service principal.
    public var jobs: [CrossTenantSyncJob] { servicePrincipals.values.flatMap(\.jobs).sorted { $0.id < $1.id } }
}

/// One service principal's `synchronization`: the secrets `PUT …/synchronization/secrets` saved and its jobs.
public struct ServicePrincipalSynchronization: Codable, Sendable {
    /// `synchronizationSecretKeyStringValuePair` values by key (`CompanyId`, `AuthenticationType`, `SyncAll`,
    /// `SyncNotificationSettings`, and, for a target on another deployment, `BaseAddress` and `SecretToken`).
    public var secrets: [String: String] = [:]
    public var jobs: [CrossTenantSyncJob] = []

    public init() {}

    /// The target tenant (`CompanyId`).
    public var targetTenantID: String? { secrets["CompanyId"]?.lowercased() }
    /// `SyncAll`: every member user and security group, rather than those assigned to the application.
    public var syncAll: Bool { secrets["SyncAll"]?.lowercased() == "true" }
    /// Accidental deletions prevention from `SyncNotificationSettings` (`DeleteThresholdEnabled`, `DeleteThresholdValue`).
    public var deleteThreshold: Int? {
        guard let text = secrets["SyncNotificationSettings"], let json = try? JSONParser.parse(text),
              json["DeleteThresholdEnabled"]?.boolValue == true || json["DeleteThresholdEnabled"]?.stringValue?.lowercased() == "true" else { return nil }
        return json["DeleteThresholdValue"]?.intValue.map(Int.init) ?? json["DeleteThresholdValue"]?.stringValue.flatMap { Int($0) } ?? 500
    }
}

/// A synchronization job made from the `Azure2Azure` template.
public struct CrossTenantSyncJob: Codable, Sendable, Hashable {
    public var id: String
    public var templateId: String
    public var servicePrincipalID: String
    /// `schedule.state`: `Disabled` until started, `Active`, `Paused`.
    public var scheduleState = "Disabled"
    /// `schedule.interval` in seconds (Entra's 40 minutes).
    public var intervalSeconds = 2400
    /// The users' scoping filter: any group of clauses, every clause of a group (Entra's filter groups).
    public var scopingFilter: [[ScopingClause]] = []
    /// The `userType` mapping's constant: `Member` (the template's) or `Guest`.
    public var userType = "Member"
    /// `status.code`: `Paused`, `NotRun`, `Active`, `Quarantine`.
    public var statusCode = "Paused"
    public var lastExecution: Execution?
    public var lastSuccessfulExecution: Execution?
    public var quarantine: CrossTenantSyncReport.Failure?
    public var countSuccessiveCompleteFailures = 0
    /// Deletions the threshold held back (approved by `restart` with `ForceDeletes`).
    public var pendingDeletions = 0
    public var synchronizedUsers = 0, synchronizedGroups = 0
    /// When the scheduler last ran it.
    public var lastRunAt: String?
    /// When a node that was stopping handed its last run back after a batch (until a node resumes it), and when a node
    /// resumed that run from there.
    public var handedBackAt: String?, resumedAt: String?

    public init(id: String, templateId: String, servicePrincipalID: String) {
        self.id = id
        self.templateId = templateId
        self.servicePrincipalID = servicePrincipalID
    }

    /// `synchronizationTaskExecution`.
    public struct Execution: Codable, Sendable, Hashable {
        public var timeBegan: String
        public var timeEnded: String
        /// `Succeeded`, `Failed`, `Warning`.
        public var state: String
        public var countImported: Int
        public var countExported: Int
        public var error: CrossTenantSyncReport.Failure?
        public init(timeBegan: String, timeEnded: String, state: String, countImported: Int, countExported: Int, error: CrossTenantSyncReport.Failure?) {
            self.timeBegan = timeBegan
            self.timeEnded = timeEnded
            self.state = state
            self.countImported = countImported
            self.countExported = countExported
            self.error = error
        }
    }
}

/// A scoping filter clause (`filterClause`): `sourceOperandName`, `operatorName`, `targetOperand.values`.
public struct ScopingClause: Codable, Sendable, Hashable {
    public var attribute: String
    public var operatorName: String
    public var values: [String]

    /// The operators Tessera evaluates (a subset of Entra's).
    public static let operators: Set<String> = ["EQUALS", "NOT EQUALS", "IS TRUE", "IS FALSE", "IS NULL", "IS NOT NULL"]

    public init(attribute: String, operatorName: String, values: [String]) {
        self.attribute = attribute
        self.operatorName = operatorName
        self.values = values
    }

    /// Whether the user's `attribute` passes (strings compared without case, as Entra's scoping does).
    public func admits(_ body: [String: JSONValue]) -> Bool {
        let value = body[attribute] ?? body.first { $0.key.lowercased() == attribute.lowercased() }?.value
        let text: String? = switch value {
        case .string(let s)?: s
        case .bool(let b)?: b ? "true" : "false"
        case .int(let i)?: String(i)
        default: nil
        }
        switch operatorName {
        case "EQUALS": return text.map { t in values.contains { $0.lowercased() == t.lowercased() } } ?? false
        case "NOT EQUALS": return text.map { t in !values.contains { $0.lowercased() == t.lowercased() } } ?? true
        case "IS TRUE": return text == "true"
        case "IS FALSE": return text != "true"
        case "IS NULL": return text == nil
        case "IS NOT NULL": return text != nil
        default: return false
        }
    }
}
