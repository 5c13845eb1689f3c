import Backup
import Foundation
import Logging
import TesseraCore

/// Tenant Configuration Management's records and runs: snapshot jobs and the snapshots they take, monitors, their
/// results and drifts, each a row of its own kind in the tenant (not in the change log: they describe the
/// directory, they are not part of it).
///
/// Monitors run at Microsoft's fixed times, every six hours from midnight UTC (00:00, 06:00, 12:00, 18:00): each
/// monitor once per slot, claimed once per cluster, so a monitor created at 09:00 first runs at 12:00.
struct ConfigurationMonitors: Sendable {
    let app: TesseraApp
    let logger = Logger(label: "tessera.configuration")

    static let snapshotJobKind = ObjectKind(rawValue: "configurationSnapshotJob")
    static let snapshotKind = ObjectKind(rawValue: "configurationSnapshot")
    static let monitorKind = ObjectKind(rawValue: "configurationMonitor")
    static let resultKind = ObjectKind(rawValue: "configurationMonitoringResult")
    static let driftKind = ObjectKind(rawValue: "configurationDrift")

    /// Microsoft runs every monitor every six hours and lets no other frequency be set.
    static let runFrequencyInHours = 6
    /// Microsoft's limits: 30 monitors a tenant, 800 resources monitored a day across them.
    static let maxMonitors = 30
    static let maxResourcesPerDay = 800
    /// What `completedDateTime` says before a job completes (as Microsoft's example shows).
    static let notCompleted = "0001-01-01T00:00:00Z"

    /// The six-hour slot an instant falls in (slots counted from 1970-01-01T00:00Z).
    static func slot(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 / Double(runFrequencyInHours * 3600)).rounded(.down)) }

    // MARK: Reading

    func all(tenant: String, kind: ObjectKind) async throws -> [StoredObject] {
        try await app.store.read { tx in try await tx.query(ObjectQuery(tenant: tenant, kinds: [kind])) }.sorted { $0.id < $1.id }
    }

    func one(tenant: String, kind: ObjectKind, id: String) async throws -> StoredObject {
        guard let found = try await app.store.read({ tx in try await tx.object(tenant: tenant, id: id.lowercased()) }), found.kind == kind else {
            throw DirectoryError.notFound(id)
        }
        return found
    }

    /// An identity set for who acted (Graph's `identitySet`).
    static func identitySet(_ actor: Actor) -> JSONValue {
        let who: JSONValue = ["id": .string(actor.kind == .application ? actor.appId ?? actor.id : actor.id), "displayName": .string(actor.displayName)]
        return actor.kind == .user ? ["user": who] : ["application": who]
    }

    // MARK: Snapshot jobs

    /// Records a snapshot job for `resources` (already checked) and starts it; it runs in the background. `base` is
    /// the Graph root the request came to (`https://host/v1.0`), where the snapshot will be read.
    func startSnapshot(tenant: String, displayName: String, description: String?, resources: [ConfigurationResourceType],
                       actor: Actor, base: String) async throws -> StoredObject {
        let id = Identifier.makeTimeOrdered(at: app.clock.now), snapshotID = Identifier.makeTimeOrdered(at: app.clock.now)
        let location = "\(base)/admin/configurationManagement/configurationSnapshots('\(snapshotID)')"
        let job = StoredObject(tenant: tenant, id: id, kind: Self.snapshotJobKind, body: [
            "@odata.type": "#microsoft.graph.configurationSnapshotJob", "id": .string(id), "displayName": .string(displayName),
            "description": .optional(description), "tenantId": .string(tenant), "status": "notStarted",
            "resources": .array(resources.map { .string($0.canonicalName) }), "createdDateTime": .string(Timestamp.format(app.clock.now)),
            "completedDateTime": .string(Self.notCompleted), "resourceLocation": "", "errorDetails": [],
            "createdBy": Self.identitySet(actor), "_snapshotId": .string(snapshotID), "_resourceLocation": .string(location),
        ])
        try await app.store.write { tx in try await tx.insert(job) }
        let runner = self
        app.jobs.start { await runner.runSnapshot(tenant: tenant, id: id, snapshotID: snapshotID, types: resources, location: location) }
        return job
    }

    /// Takes the snapshot: the named resource types' instances as they are now, kept as a baseline under
    /// `configurationSnapshots` (as `snapshotID`, which `resourceLocation` names).
    func runSnapshot(tenant: String, id: String, snapshotID: String, types: [ConfigurationResourceType], location: String) async {
        do {
            try await update(tenant: tenant, id: id) { $0["status"] = "running" }
            let resources = try await app.backup.configuration(tenant: tenant, types: types)
            let job = try await one(tenant: tenant, kind: Self.snapshotJobKind, id: id)
            var baseline = ConfigurationBaseline(displayName: job.body["displayName"]?.stringValue ?? "", description: job.body["description"]?.stringValue,
                                                 resources: resources).json
            baseline["@odata.type"] = "#microsoft.graph.configurationBaseline"
            baseline["id"] = .string(snapshotID)
            let snapshot = StoredObject(tenant: tenant, id: snapshotID, kind: Self.snapshotKind, body: baseline)
            let now = Timestamp.format(app.clock.now)
            try await app.store.write { tx in
                guard var job = try await tx.object(tenant: tenant, id: id) else { return }
                try await tx.insert(snapshot)
                let version = job.version
                job.body["status"] = "succeeded"
                job.body["completedDateTime"] = .string(now)
                job.body["resourceLocation"] = .string(location)
                job.version = version + 1
                try await tx.update(job, expectedVersion: version)
            }
        } catch {
            logger.error("Configuration snapshot job \(id) of tenant \(tenant) failed: \(String(describing: error))")
            let message = (error as? DirectoryError)?.message ?? (error as? BackupError)?.description ?? "An unexpected error occurred."
            try? await update(tenant: tenant, id: id) { body in
                body["status"] = "failed"
                body["errorDetails"] = [.string(message)]
                body["completedDateTime"] = .string(Timestamp.format(app.clock.now))
            }
        }
    }

    /// Snapshot jobs a stopped server left unfinished are taken again (a snapshot and its job's completion are written
    /// in one transaction, so none was half-kept). On a cluster each job's current version is claimed once.
    func resumeInterrupted() async {
        do {
            for tenant in try await app.store.read({ tx in try await tx.tenants() }) {
                for job in try await all(tenant: tenant.id, kind: Self.snapshotJobKind)
                where job.body["status"] == "notStarted" || job.body["status"] == "running" {
                    let now = app.clock.now
                    let claimed = try await app.store.write { tx in
                        try await tx.consumeOnce(tenant: tenant.id, key: "configuration-snapshot-resume:\(job.id):\(job.version)",
                                                 expiresAt: Timestamp.format(now.addingTimeInterval(86_400)), now: Timestamp.format(now))
                    }
                    guard claimed, let snapshotID = job.body["_snapshotId"]?.stringValue,
                          let location = job.body["_resourceLocation"]?.stringValue else { continue }
                    let types = (job.body["resources"]?.arrayValue ?? []).compactMap { $0.stringValue.flatMap(ConfigurationResourceType.named) }
                    logger.info("Resuming configuration snapshot job \(job.id) of tenant \(tenant.id) after a restart")
                    await runSnapshot(tenant: tenant.id, id: job.id, snapshotID: snapshotID, types: types, location: location)
                }
            }
        } catch {
            logger.error("Could not resume configuration snapshot jobs: \(String(describing: error))")
        }
    }

    func update(tenant: String, id: String, _ change: @escaping @Sendable (inout [String: JSONValue]) -> Void) async throws {
        try await app.store.write { tx in
            guard var object = try await tx.object(tenant: tenant, id: id) else { throw DirectoryError.notFound(id) }
            let version = object.version
            change(&object.body)
            object.version = version + 1
            try await tx.update(object, expectedVersion: version)
        }
    }

    // MARK: Monitors

    /// Creates a monitor over `baseline`, checked against the tenant's limits and audited in the same transaction. It
    /// first runs at the next six-hour slot.
    func createMonitor(tenant: String, displayName: String, description: String?, baseline: ConfigurationBaseline,
                       parameters: JSONValue, actor: Actor) async throws -> StoredObject {
        let now = app.clock.now
        let monitor = Self.monitorObject(tenant: tenant, id: Identifier.makeTimeOrdered(at: now), displayName: displayName,
                                         description: description, baseline: baseline, parameters: parameters, actor: actor, now: now)
        try await app.store.write { tx in
            try await Self.insert(tx, monitor)
            try await Self.audit(tx, monitor, operation: "create", activity: "Create configuration monitor", actor: actor, now: now)
        }
        return monitor
    }

    /// A new monitor's record: active, run every six hours from the next slot; `managedBy` names the governing tenant
    /// that applied it (``GovernedConfigurationMonitors``).
    static func monitorObject(tenant: String, id: String, displayName: String, description: String?, baseline: ConfigurationBaseline,
                              parameters: JSONValue, actor: Actor, now: Date, managedBy: JSONValue? = nil) -> StoredObject {
        var stored = baseline.json
        stored["id"] = .string(id)
        var body: [String: JSONValue] = [
            "@odata.type": "#microsoft.graph.configurationMonitor", "id": .string(id), "displayName": .string(displayName),
            "description": .optional(description), "tenantId": .string(tenant), "status": "active",
            "monitorRunFrequencyInHours": .int(Int64(runFrequencyInHours)), "mode": "monitorOnly", "inactivationReason": nil,
            "createdDateTime": .string(Timestamp.format(now)), "lastModifiedDateTime": .string(Timestamp.format(now)),
            "createdBy": identitySet(actor), "lastModifiedBy": identitySet(actor), "parameters": parameters,
            "_baseline": .object(stored), "_lastRunSlot": .int(slot(now)),
        ]
        if let managedBy { body["managedBy"] = managedBy }
        return StoredObject(tenant: tenant, id: id, kind: monitorKind, body: body)
    }

    /// Inserts `monitor` within its tenant's limits (30 monitors, 800 resources a day), read in the same transaction.
    static func insert(_ tx: any DirectoryTransaction, _ monitor: StoredObject) async throws {
        let existing = try await tx.query(ObjectQuery(tenant: monitor.tenant, kinds: [monitorKind]))
        guard existing.count < maxMonitors else {
            throw DirectoryError.badRequest("The tenant already has \(maxMonitors) configuration monitors, the most it may have.")
        }
        try checkDailyResources(existing.map(resourceCount) + [resourceCount(monitor)])
        try await tx.insert(monitor)
    }

    /// Replaces `monitor`'s baseline (checked against the other monitors' resources), keeping its id.
    static func setBaseline(_ tx: any DirectoryTransaction, _ monitor: inout StoredObject, _ baseline: ConfigurationBaseline) async throws {
        let others = try await tx.query(ObjectQuery(tenant: monitor.tenant, kinds: [monitorKind])).filter { $0.id != monitor.id }
        try checkDailyResources(others.map(resourceCount) + [baseline.resources.count])
        var stored = baseline.json
        stored["id"] = .string(monitor.id)
        monitor.body["_baseline"] = .object(stored)
    }

    /// An audit record of a write to `monitor` in its tenant (Graph's directory audits: category DirectoryManagement,
    /// the monitor as target).
    static func audit(_ tx: any DirectoryTransaction, _ monitor: StoredObject, operation: String, activity: String, actor: Actor,
                      now: Date, details: [String: JSONValue] = [:]) async throws {
        var details = details
        details["displayName"] = monitor.body["displayName"] ?? .null
        _ = try await tx.record(ChangeRecord(tenant: monitor.tenant, objectId: monitor.id, kind: monitor.kind, operation: operation,
                                             activity: activity, actor: actor.initiatedBy, at: Timestamp.format(now), details: .object(details)))
    }

    /// Applies a PATCH (displayName, description, baseline, parameters), checked like a creation and audited. A monitor
    /// a governing tenant manages is changed by that tenant only, while its relationship is active.
    func updateMonitor(tenant: String, id: String, displayName: String?, description: JSONValue?, baseline: ConfigurationBaseline?,
                       parameters: JSONValue?, actor: Actor) async throws {
        let now = app.clock.now
        try await app.store.write { tx in
            guard var monitor = try await tx.object(tenant: tenant, id: id.lowercased()), monitor.kind == Self.monitorKind else {
                throw DirectoryError.notFound(id)
            }
            try await GovernedConfigurationMonitors.refuseIfManaged(tx, monitor, doing: "changed")
            if let baseline { try await Self.setBaseline(tx, &monitor, baseline) }
            if let displayName { monitor.body["displayName"] = .string(displayName) }
            if let description { monitor.body["description"] = description }
            if let parameters { monitor.body["parameters"] = parameters }
            monitor.body["lastModifiedDateTime"] = .string(Timestamp.format(now))
            monitor.body["lastModifiedBy"] = Self.identitySet(actor)
            let version = monitor.version
            monitor.version = version + 1
            try await tx.update(monitor, expectedVersion: version)
            try await Self.audit(tx, monitor, operation: "update", activity: "Update configuration monitor", actor: actor, now: now)
        }
    }

    /// Deletes a monitor with its results and drifts, audited. A monitor a governing tenant manages is deleted by that
    /// tenant only, while its relationship is active.
    func deleteMonitor(tenant: String, id: String, actor: Actor) async throws {
        let monitor = try await one(tenant: tenant, kind: Self.monitorKind, id: id)
        let now = app.clock.now
        try await app.store.write { tx in
            guard let current = try await tx.object(tenant: tenant, id: monitor.id) else { throw DirectoryError.notFound(id) }
            try await GovernedConfigurationMonitors.refuseIfManaged(tx, current, doing: "deleted")
            try await Self.purge(tx, current)
            try await Self.audit(tx, current, operation: "delete", activity: "Delete configuration monitor", actor: actor, now: now)
        }
    }

    /// Removes `monitor`, its results and its drifts.
    static func purge(_ tx: any DirectoryTransaction, _ monitor: StoredObject) async throws {
        let owned = try await tx.query(ObjectQuery(tenant: monitor.tenant, kinds: [resultKind, driftKind]))
            .filter { $0.body["monitorId"]?.stringValue == monitor.id }
        for object in owned { try await tx.purge(tenant: monitor.tenant, id: object.id) }
        try await tx.purge(tenant: monitor.tenant, id: monitor.id)
    }

    static func resourceCount(_ monitor: StoredObject) -> Int { monitor.body["_baseline"]?["resources"]?.arrayValue?.count ?? 0 }

    /// Refuses monitors whose resources, each run four times a day, exceed Microsoft's daily limit.
    static func checkDailyResources(_ counts: [Int]) throws(DirectoryError) {
        let perDay = counts.reduce(0, +) * (24 / runFrequencyInHours)
        guard perDay <= maxResourcesPerDay else {
            throw DirectoryError.badRequest("The tenant's monitors would monitor \(perDay) resources a day (each runs every \(runFrequencyInHours) hours); at most \(maxResourcesPerDay) are allowed.")
        }
    }

    static func baseline(of monitor: StoredObject) throws(DirectoryError) -> ConfigurationBaseline {
        try ConfigurationBaseline.parse(monitor.body["_baseline"])
    }

    // MARK: Running

    /// Runs every active monitor of every tenant that has not run in the current slot (each claimed once per
    /// cluster). Returns the results written.
    @discardableResult
    func runDue() async -> [StoredObject] {
        let now = app.clock.now, slot = Self.slot(now)
        var results: [StoredObject] = []
        do {
            for tenant in try await app.store.read({ tx in try await tx.tenants() }) {
                for monitor in try await all(tenant: tenant.id, kind: Self.monitorKind)
                where monitor.body["status"] == "active" && (monitor.body["_lastRunSlot"]?.intValue ?? 0) < slot {
                    // A managed monitor whose relationship ended is stopped, not run (termination stops it in its own
                    // transaction; this catches one applied while the relationship was being terminated).
                    guard try await GovernedConfigurationMonitors.stopIfOrphaned(app: app, monitor) == false else { continue }
                    let claimed = try await app.store.write { tx in
                        try await tx.consumeOnce(tenant: tenant.id, key: "configuration-monitor:\(monitor.id):\(slot)",
                                                 expiresAt: Timestamp.format(now.addingTimeInterval(86_400)), now: Timestamp.format(now))
                    }
                    guard claimed else { continue }
                    results.append(try await run(tenant: tenant.id, monitorID: monitor.id))
                }
            }
        } catch {
            logger.error("Running configuration monitors failed: \(String(describing: error))")
        }
        return results
    }

    /// Runs one monitor now: compares its baseline with the tenant, records a monitoring result, opens or updates a
    /// drift per resource that differs and marks fixed the drifts whose resource matches again.
    @discardableResult
    func run(tenant: String, monitorID: String) async throws -> StoredObject {
        let monitor = try await one(tenant: tenant, kind: Self.monitorKind, id: monitorID)
        let started = app.clock.now
        let resultID = Identifier.makeTimeOrdered(at: app.clock.now)
        var result: [String: JSONValue] = [
            "@odata.type": "#microsoft.graph.configurationMonitoringResult", "id": .string(resultID), "monitorId": .string(monitor.id),
            "tenantId": .string(tenant), "runInitiationDateTime": .string(Timestamp.format(started)), "errorDetails": [],
        ]
        let findings: [DriftFinding]
        do {
            let baseline = try Self.baseline(of: monitor)
            let types = Array(Set(baseline.resources.map(\.resourceType))).sorted().compactMap(ConfigurationResourceType.named)
            let current = try await app.backup.configuration(tenant: tenant, types: types)
            findings = ConfigurationDriftEvaluator.evaluate(baseline: baseline.resources, current: current)
        } catch {
            logger.error("Configuration monitor \(monitor.id) of tenant \(tenant) failed: \(String(describing: error))")
            let message = (error as? DirectoryError)?.message ?? (error as? BackupError)?.description ?? "An unexpected error occurred."
            result["runStatus"] = "failed"
            result["driftsCount"] = 0
            result["errorDetails"] = [["@odata.type": "#microsoft.graph.errorDetail", "errorMessage": .string(message)]]
            result["runCompletionDateTime"] = .string(Timestamp.format(app.clock.now))
            let stored = StoredObject(tenant: tenant, id: resultID, kind: Self.resultKind, body: result)
            try await record(stored, monitor: monitor.id, tenant: tenant, slot: Self.slot(started))
            return stored
        }
        let now = Timestamp.format(app.clock.now)
        result["runStatus"] = "successful"
        result["driftsCount"] = .int(Int64(findings.count))
        result["runCompletionDateTime"] = .string(now)
        let stored = StoredObject(tenant: tenant, id: resultID, kind: Self.resultKind, body: result)
        try await app.store.write { tx in
            let drifts = try await tx.query(ObjectQuery(tenant: tenant, kinds: [Self.driftKind]))
                .filter { $0.body["monitorId"]?.stringValue == monitor.id && $0.body["status"] == "active" }
            func key(_ type: String?, _ name: String?) -> String { "\(type ?? "")\n\((name ?? "").lowercased())" }
            var open = Dictionary(drifts.map { (key($0.body["resourceType"]?.stringValue, $0.body["baselineResourceDisplayName"]?.stringValue), $0) },
                                  uniquingKeysWith: { a, _ in a })
            for finding in findings {
                let properties = JSONValue.array(finding.driftedProperties.map(\.json))
                if var existing = open.removeValue(forKey: key(finding.resourceType, finding.baselineResourceDisplayName)) {
                    let version = existing.version
                    existing.body["driftedProperties"] = properties
                    existing.body["resourceInstanceIdentifier"] = .object(finding.resourceInstanceIdentifier)
                    existing.version = version + 1
                    try await tx.update(existing, expectedVersion: version)
                } else {
                    let id = Identifier.makeTimeOrdered(at: app.clock.now)
                    try await tx.insert(StoredObject(tenant: tenant, id: id, kind: Self.driftKind, body: [
                        "@odata.type": "#microsoft.graph.configurationDrift", "id": .string(id), "monitorId": .string(monitor.id),
                        "tenantId": .string(tenant), "resourceType": .string(finding.resourceType),
                        "baselineResourceDisplayName": .string(finding.baselineResourceDisplayName),
                        "resourceInstanceIdentifier": .object(finding.resourceInstanceIdentifier), "driftedProperties": properties,
                        "firstReportedDateTime": .string(now), "status": "active",
                    ]))
                }
            }
            // What drifted before and matches the baseline now is fixed.
            for var fixed in open.values {
                let version = fixed.version
                fixed.body["status"] = "fixed"
                fixed.version = version + 1
                try await tx.update(fixed, expectedVersion: version)
            }
        }
        try await record(stored, monitor: monitor.id, tenant: tenant, slot: Self.slot(started))
        return stored
    }

    /// Keeps a run's result and marks the monitor as run in its slot.
    func record(_ result: StoredObject, monitor: String, tenant: String, slot: Int64) async throws {
        try await app.store.write { tx in
            try await tx.insert(result)
            guard var object = try await tx.object(tenant: tenant, id: monitor) else { return }
            let version = object.version
            object.body["_lastRunSlot"] = .int(max(slot, object.body["_lastRunSlot"]?.intValue ?? 0))
            object.version = version + 1
            try await tx.update(object, expectedVersion: version)
        }
    }
}
