public import Foundation
public import TesseraCore
import LDAP

extension ObjectKind {
    /// The audit log's kind for sync's own events (a run, a quarantined or removed staged object). Staged objects
    /// themselves are `StagedObject` rows of the staging area's table, never Graph objects.
    public static let syncObject = ObjectKind(rawValue: "syncObject")
}

/// A connector to an on-premises directory, as `tessera sync connector add` configures it. The bind password stays
/// in its file (read at each run), never in the database.
public struct SyncConnector: Sendable, Hashable {
    public var name: String
    public var ldapURL: String
    public var bindDN: String
    public var bindPasswordFile: String
    public var baseDN: String
    public var caFile: String?
    public var insecureSkipVerify: Bool
    /// StartTLS on an `ldap://` URL (`ldaps://` is TLS already); plain LDAP only with `allowPlain`.
    public var startTLS: Bool
    /// The DirSync cookie of the last import; nil before the first (or after a reset: the next run is full).
    public var cookie: [UInt8]?
    /// Write each synced user's sourceAnchor (its objectGUID) to `ms-DS-ConsistencyGuid` when that is empty, as
    /// Entra Connect does, so the anchor survives a move to another forest.
    public var writeBackAnchor = false
    /// An LDIF file to read instead of a directory (offline imports, tests): read whole on every run.
    public var ldifFile: String?

    public init(name: String, ldapURL: String, bindDN: String, bindPasswordFile: String, baseDN: String, caFile: String? = nil,
                insecureSkipVerify: Bool = false, startTLS: Bool = true, cookie: [UInt8]? = nil) {
        self.name = name
        self.ldapURL = ldapURL
        self.bindDN = bindDN
        self.bindPasswordFile = bindPasswordFile
        self.baseDN = baseDN
        self.caFile = caFile
        self.insecureSkipVerify = insecureSkipVerify
        self.startTLS = startTLS
        self.cookie = cookie
    }

    var json: JSONValue {
        ["name": .string(name), "ldapUrl": .string(ldapURL), "bindDn": .string(bindDN), "bindPasswordFile": .string(bindPasswordFile),
         "baseDn": .string(baseDN), "caFile": .optional(caFile), "insecureSkipVerify": .bool(insecureSkipVerify), "startTls": .bool(startTLS),
         "cookie": .optional(cookie.map { Data($0).base64EncodedString() }), "writeBackAnchor": .bool(writeBackAnchor),
         "ldifFile": .optional(ldifFile)]
    }

    init?(_ json: JSONValue) {
        guard let name = json["name"]?.stringValue, let url = json["ldapUrl"]?.stringValue, let bind = json["bindDn"]?.stringValue,
              let file = json["bindPasswordFile"]?.stringValue, let base = json["baseDn"]?.stringValue else { return nil }
        self.init(name: name, ldapURL: url, bindDN: bind, bindPasswordFile: file, baseDN: base, caFile: json["caFile"]?.stringValue,
                  insecureSkipVerify: json["insecureSkipVerify"]?.boolValue ?? false, startTLS: json["startTls"]?.boolValue ?? true,
                  cookie: json["cookie"]?.stringValue.flatMap { Data(base64Encoded: $0) }.map { Array($0) })
        writeBackAnchor = json["writeBackAnchor"]?.boolValue ?? false
        ldifFile = json["ldifFile"]?.stringValue
    }
}

/// A tenant's sync configuration: its connectors, the matching switches, the deletion threshold, the enforcement
/// date of the June 2026 rule, and recent runs. Kept as the tenant setting `sync`.
public struct SyncSettings: Sendable {
    public var connectors: [SyncConnector] = []
    public var features = MatchingFeatures()
    /// The other `onPremisesDirectorySynchronization` feature switches, kept as set. Sync acts on the two
    /// quarantine switches below; the writeback and password switches have nothing to act on yet.
    public var otherFeatures: [String: JSONValue] = [:]
    /// A user whose user principal name another object holds is quarantined instead of renamed.
    public var quarantineUponUpnConflict: Bool { otherFeatures["quarantineUponUpnConflictEnabled"]?.boolValue ?? false }
    /// A user with a proxy address another object holds is quarantined instead of synced without that address.
    public var quarantineUponProxyAddressesConflict: Bool { otherFeatures["quarantineUponProxyAddressesConflictEnabled"]?.boolValue ?? false }
    /// Entra's accidentalDeletionPrevention: `enabledForCount`, `enabledForPercentage` or `disabled`.
    public var deletionPreventionType = "enabledForCount"
    public var deletionThreshold = 500
    public var enforcementDate = Matcher.defaultEnforcementDate
    /// Newest last; kept for 7 days, as Entra Connect keeps run history.
    public var runs: [JSONValue] = []

    public init() {}

    static let key = "sync"
    static let matchingFeatureNames: Set<String> = [
        "blockSoftMatchEnabled", "blockCloudObjectTakeoverThroughHardMatchEnabled", "softMatchOnUpnEnabled",
        "allowOnPremUpdateOfOnPremisesObjectIdentifierEnabled",
    ]

    public static func load(tenant: String, store: any DirectoryStore) async throws -> SyncSettings {
        SyncSettings(stored: try await store.read({ tx in try await tx.setting(tenant: tenant, key: key) }))
    }

    /// The settings as the stored `sync` setting holds them: the defaults where it holds nothing.
    init(stored json: JSONValue?) {
        guard let json else { return }
        connectors = json["connectors"]?.arrayValue?.compactMap(SyncConnector.init) ?? []
        if let f = json["features"] {
            otherFeatures = (f.objectValue ?? [:]).filter { !Self.matchingFeatureNames.contains($0.key) }
            features = MatchingFeatures(
                blockSoftMatchEnabled: f["blockSoftMatchEnabled"]?.boolValue ?? false,
                blockCloudObjectTakeoverThroughHardMatchEnabled: f["blockCloudObjectTakeoverThroughHardMatchEnabled"]?.boolValue ?? false,
                softMatchOnUpnEnabled: f["softMatchOnUpnEnabled"]?.boolValue ?? true,
                allowOnPremUpdateOfOnPremisesObjectIdentifierEnabled: f["allowOnPremUpdateOfOnPremisesObjectIdentifierEnabled"]?.boolValue ?? false)
        }
        deletionPreventionType = json["deletionPreventionType"]?.stringValue ?? deletionPreventionType
        deletionThreshold = json["deletionThreshold"]?.intValue.map(Int.init) ?? deletionThreshold
        if let date = json["enforcementDate"]?.stringValue, let parsed = Timestamp.parse(date) { enforcementDate = parsed }
        runs = json["runs"]?.arrayValue ?? []
    }

    /// The settings as the `sync` setting stores them.
    var stored: JSONValue {
        let f = features
        return [
            "connectors": .array(connectors.map(\.json)),
            "features": JSONValue.object(otherFeatures.merging([
                         "blockSoftMatchEnabled": .bool(f.blockSoftMatchEnabled),
                         "blockCloudObjectTakeoverThroughHardMatchEnabled": .bool(f.blockCloudObjectTakeoverThroughHardMatchEnabled),
                         "softMatchOnUpnEnabled": .bool(f.softMatchOnUpnEnabled),
                         "allowOnPremUpdateOfOnPremisesObjectIdentifierEnabled": .bool(f.allowOnPremUpdateOfOnPremisesObjectIdentifierEnabled),
            ]) { _, new in new }),
            "deletionPreventionType": .string(deletionPreventionType), "deletionThreshold": .int(Int64(deletionThreshold)),
            "enforcementDate": .string(Timestamp.format(enforcementDate)), "runs": .array(runs),
        ]
    }

    /// Writes these settings whole, over whatever is stored: a tenant's first settings. A change of the stored settings
    /// is an ``update(tenant:store:_:)``, which cannot undo another node's change made meanwhile.
    public func save(tenant: String, store: any DirectoryStore) async throws {
        let value = stored
        try await store.write { tx in try await tx.putSetting(tenant: tenant, key: Self.key, value: value) }
    }

    /// Changes the stored settings as a read-modify-write in one write transaction, the setting read with its row locked
    /// until the commit (``lockedStored(tenant:in:)``): of two changes at once on two nodes (a Graph PATCH of
    /// `onPremisesDirectorySynchronization`, `tessera sync connector add` or `remove`, a run writing back its record) the
    /// second reads what the first wrote, so neither undoes the other. `change` may throw to change nothing.
    public static func update<T: Sendable>(tenant: String, store: any DirectoryStore,
                                           _ change: @Sendable (inout SyncSettings) throws -> T) async throws -> T {
        try await store.write { tx in
            var settings = SyncSettings(stored: try await lockedStored(tenant: tenant, in: tx))
            let result = try change(&settings)
            try await tx.putSetting(tenant: tenant, key: key, value: settings.stored)
            return result
        }
    }

    /// Adds `connector`; refused when one of its name exists.
    public static func addConnector(_ connector: SyncConnector, tenant: String, store: any DirectoryStore) async throws {
        try await update(tenant: tenant, store: store) { settings in
            guard !settings.connectors.contains(where: { $0.name == connector.name }) else {
                throw ConnectorRefusal(description: "a connector named '\(connector.name)' exists")
            }
            settings.connectors.append(connector)
        }
    }

    /// Removes the connector named `name` (the users it synced stay); refused when there is none.
    public static func removeConnector(named name: String, tenant: String, store: any DirectoryStore) async throws {
        try await update(tenant: tenant, store: store) { settings in
            guard settings.connectors.contains(where: { $0.name == name }) else { throw ConnectorRefusal(description: "no connector named '\(name)'") }
            settings.connectors.removeAll { $0.name == name }
        }
    }

    /// Why a connector was not added or removed (nothing was changed).
    public struct ConnectorRefusal: Error, CustomStringConvertible {
        public let description: String
    }

    /// The stored `sync` setting read inside `tx` with its row locked until `tx` ends
    /// (``DirectoryWriter/lockedSetting(tenant:key:)``): what every read-modify-write of it reads first. A tenant with no
    /// setting yet gets an empty one to lock (of two nodes making it at once, the second waits for the first to commit).
    static func lockedStored(tenant: String, in tx: any DirectoryWriter) async throws -> JSONValue? {
        try await tx.lockedSetting(tenant: tenant, key: key, creatingWith: .object([:]))
    }

    /// Changes what sync's own work owns of the stored setting (``RunState``: run records, connectors' DirSync
    /// cookies) as a read-modify-write in one write transaction, every other field written back as the store holds it
    /// then. A run that loaded the settings at its start thus keeps what an administrator changed while it went on (a
    /// feature switch or the deletion prevention over Graph, a connector added or removed), and makes no connector
    /// removed meanwhile again. The setting is read with its row locked (``lockedStored(tenant:in:)``): another node's
    /// change is read here (it committed first) or waits for this commit, and is never written over.
    static func updateRunState<T: Sendable>(tenant: String, store: any DirectoryStore,
                                            _ change: @Sendable (inout RunState) throws -> T) async throws -> T {
        try await store.write { tx in
            var state = RunState(stored: try await lockedStored(tenant: tenant, in: tx)?.objectValue ?? [:])
            let result = try change(&state)
            try await tx.putSetting(tenant: tenant, key: key, value: .object(state.stored))
            return result
        }
    }

    /// The stored `sync` setting, as sync's own work changes it: its run records and its connectors' cookies, nothing else.
    struct RunState {
        private(set) var stored: [String: JSONValue]

        /// Puts a run's record in place of the stored record of the same run (one handed back), or after the others.
        mutating func record(_ run: JSONValue) {
            var runs = stored["runs"]?.arrayValue ?? []
            if let index = runs.firstIndex(where: { $0["id"] != nil && $0["id"] == run["id"] }) {
                runs[index] = run
            } else {
                runs.append(run)
            }
            stored["runs"] = .array(runs)
        }

        /// Changes the stored record of run `id`; false when there is none.
        @discardableResult
        mutating func updateRun(id: String, _ body: (inout [String: JSONValue]) -> Void) -> Bool {
            var runs = stored["runs"]?.arrayValue ?? []
            guard let index = runs.firstIndex(where: { $0["id"]?.stringValue == id }), case .object(var run) = runs[index] else { return false }
            body(&run)
            runs[index] = .object(run)
            stored["runs"] = .array(runs)
            return true
        }

        /// Keeps the runs made at or after `cutoff`, the newest 200 at most.
        mutating func trimRuns(before cutoff: String) {
            let runs = stored["runs"]?.arrayValue ?? []
            stored["runs"] = .array(Array(runs.filter { ($0["at"]?.stringValue ?? "") >= cutoff }.suffix(200)))
        }

        /// Stores `cookie` as the connector's when the stored connector is still `connector` as the run read it (its
        /// configuration and the cookie it started from): one removed, changed or reset meanwhile is left as it is.
        mutating func setCookie(_ cookie: [UInt8]?, of connector: SyncConnector) {
            changeConnectors { stored in stored == connector ? cookie : stored.cookie }
        }

        /// Clears the cookie of the connector named `name` (its next run reads everything), if there is one.
        mutating func resetCookie(connector name: String) {
            changeConnectors { stored in stored.name == name ? nil : stored.cookie }
        }

        /// Sets each stored connector's cookie to what `cookie` says, leaving the rest of its stored form as it is.
        private mutating func changeConnectors(_ cookie: (SyncConnector) -> [UInt8]?) {
            guard let connectors = stored["connectors"]?.arrayValue else { return }
            stored["connectors"] = .array(connectors.map { json in
                guard let connector = SyncConnector(json), case .object(var object) = json else { return json }
                let next = cookie(connector)
                guard next != connector.cookie else { return json }
                object["cookie"] = .optional(next.map { Data($0).base64EncodedString() })
                return .object(object)
            })
        }
    }
}

/// One sync cycle's outcome, as `tessera sync run --json` prints it.
public struct SyncRun: Sendable {
    public var id: String
    public var connector: String
    public var at: String
    public var status = "success"
    public var full = false
    public var imported = 0, added = 0, updated = 0, deleted = 0, quarantined = 0
    /// Staged objects the run read: those its import named, and on a full run the others too (to find what is gone).
    public var stagedRead = 0
    public var errors: [JSONValue] = []
    /// Deletions held back by the accidental-deletion threshold (staged object ids), to approve once.
    public var pendingDeletions: [String] = []
    /// When a node that was stopping handed the run back (status `handed-back` until a node resumes it), and when
    /// a node resumed it from the last page the first one committed.
    public var handedBackAt: String?, resumedAt: String?
    /// Why a node stopped the run before its end: it was draining (the run was handed back; kept on the record once
    /// another node resumes it, as `handedBackAt` is), or it lost the run's lease (status `lease-lost`, returned by that
    /// node's ``SyncCycle/run(tenant:connector:full:)`` and in its audit event of the run, never on the run's record:
    /// the run is the lease holder's).
    public var stopReason: String?

    init(id: String, connector: String, at: String) {
        self.id = id
        self.connector = connector
        self.at = at
    }

    /// A run as its record (or checkpoint) holds it.
    init?(json: JSONValue) {
        guard let id = json["id"]?.stringValue, let connector = json["connector"]?.stringValue, let at = json["at"]?.stringValue else { return nil }
        self.init(id: id, connector: connector, at: at)
        func count(_ key: String) -> Int { json[key]?.intValue.map(Int.init) ?? 0 }
        status = json["status"]?.stringValue ?? status
        full = json["full"]?.boolValue ?? false
        (imported, added, updated, deleted, quarantined) = (count("imported"), count("added"), count("updated"), count("deleted"), count("quarantined"))
        stagedRead = count("stagedRead")
        errors = json["errors"]?.arrayValue ?? []
        pendingDeletions = json["pendingDeletions"]?.arrayValue?.compactMap(\.stringValue) ?? []
        handedBackAt = json["handedBackAt"]?.stringValue
        resumedAt = json["resumedAt"]?.stringValue
        stopReason = json["stopReason"]?.stringValue
    }

    public var json: JSONValue {
        var json: [String: JSONValue] = [
            "id": .string(id), "connector": .string(connector), "at": .string(at), "status": .string(status), "full": .bool(full),
            "imported": .int(Int64(imported)), "added": .int(Int64(added)), "updated": .int(Int64(updated)),
            "deleted": .int(Int64(deleted)), "quarantined": .int(Int64(quarantined)), "stagedRead": .int(Int64(stagedRead)), "errors": .array(errors),
            "pendingDeletions": .array(pendingDeletions.map { .string($0) }),
        ]
        if let handedBackAt { json["handedBackAt"] = .string(handedBackAt) }
        if let resumedAt { json["resumedAt"] = .string(resumedAt) }
        if let stopReason { json["stopReason"] = .string(stopReason) }
        return .object(json)
    }
}
