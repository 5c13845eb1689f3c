import Foundation
public import TesseraCore
import LDAP

/// One sync cycle for a tenant: import from each connector (a DirSync delta since the last cookie, or everything)
/// into the staging area, match each new on-premises user to the cloud directory (`Matcher`), and export through
/// `DirectoryService` (so unique keys, the change log and the audit log hold), then record the run.
///
/// Users, security and mail-enabled groups with their memberships, and computers (as hybrid joined devices) are synced.
public struct SyncCycle: Sendable {
    public let directory: DirectoryService
    public let clock: any TimeSource
    /// Who sync acts as in the audit log.
    public static let actor = Actor(kind: .application, id: "5f1c0000-0000-0000-0000-00000000517c", displayName: "Tessera directory sync",
                                    appId: "5f1c0000-0000-0000-0000-00000000517c")

    /// Whether this node is draining (stopping): a run then stops after its next page and is handed back.
    public var isDraining: @Sendable () -> Bool = { false }

    public init(directory: DirectoryService, clock: any TimeSource = SystemTimeSource()) {
        self.directory = directory
        self.clock = clock
    }

    var store: any DirectoryStore { directory.store }

    static let userAttributes = [
        "objectGUID", "objectClass", "distinguishedName", "userPrincipalName", "displayName", "givenName", "sn", "mail", "proxyAddresses",
        "department", "title", "telephoneNumber", "sAMAccountName", "objectSid", "userAccountControl", "mS-DS-ConsistencyGuid", "isDeleted",
        "lastKnownParent", "name",
        // groups
        "member", "groupType", "description",
        // computers
        "dNSHostName", "operatingSystem", "operatingSystemVersion",
    ] + (1...15).map { "extensionAttribute\($0)" }
    static let binaryAttributes: Set<String> = ["objectguid", "objectsid", "ms-ds-consistencyguid"]

    /// Runs every connector (or the one named) once. On a cluster each connector's run is held by one node at a time
    /// (``SyncRunLease``): a connector whose run another node holds is left out (``SyncRunInProgress`` when that leaves
    /// nothing), and a run a node handed back, or left when it was killed, is resumed from the last page it committed.
    /// When `isDraining` says so, the run stops after its next page, records itself `handed-back` and hands its lease
    /// back, so another node resumes it at once. Inside a DirSync answer (Samba's first sync is the whole domain in one)
    /// that page's checkpoint keeps the cookie the answer was asked with, and the search is abandoned. A run whose lease
    /// is lost (another node took it after it ran out) stops at its next page too and writes nothing more of the run: it
    /// is returned with status `lease-lost` and why (``SyncRun/stopReason``), not recorded, since the run is the other
    /// node's now; only an audit event says this node stopped.
    public func run(tenant: TenantRecord, connector name: String? = nil, full: Bool = false) async throws -> [SyncRun] {
        // What the run decides by; at its end it writes back only what it owns (``SyncSettings/updateRunState``).
        let settings = try await SyncSettings.load(tenant: tenant.id, store: store)
        let chosen = settings.connectors.filter { name == nil || $0.name == name }
        guard !chosen.isEmpty else {
            throw DirectoryError.badRequest(name.map { "No sync connector named '\($0)'." } ?? "No sync connector is configured: add one with `tessera sync connector add`.")
        }
        guard !isDraining() else { return [] }
        var runs: [SyncRun] = [], finished: [SyncRunLease] = [], busy: [String] = [], lostRuns: [SyncRun] = []
        var handedBack: SyncRunLease?, lost = false
        var cookies: [(connector: SyncConnector, cookie: [UInt8]?)] = []
        for connector in chosen {
            guard !isDraining() else { break }
            let work = Self.work(connector: connector.name)
            guard let (lease, saved) = try await SyncRunLeases.take(store: store, tenant: tenant.id, work: work, now: clock.now) else {
                busy.append(work)
                continue
            }
            let keeper = SyncRunKeeper(lease)
            let renewal = Task { [store, clock] in await keeper.keep(store: store, clock: clock) }
            defer { renewal.cancel() }
            let progress = saved.flatMap(SyncProgress.init(text:))
            var run: SyncRun
            if let progress, let before = SyncRun(json: (try? JSONParser.parse(progress.run)) ?? .null) {
                run = before
                run.status = "success"
                run.resumedAt = Timestamp.format(clock.now)
                // The record says when and why it was handed back (neither when its node was killed).
                let record = settings.runs.first { $0["id"]?.stringValue == run.id }
                run.handedBackAt = record?["handedBackAt"]?.stringValue
                run.stopReason = record?["stopReason"]?.stringValue
            } else {
                run = SyncRun(id: Identifier.makeTimeOrdered(at: clock.now), connector: connector.name, at: Timestamp.format(clock.now))
                run.full = full || connector.cookie == nil || connector.ldifFile != nil
            }
            var committed = run
            let outcome: ConnectorOutcome
            do {
                outcome = try await runConnector(connector, tenant: tenant, settings: settings, keeper: keeper, progress: progress,
                                                 run: &run, committed: &committed)
            } catch let error as LDAPError {
                run.status = "failed"
                run.errors.append(["code": "ConnectorError", "message": .string(error.description)])
                outcome = .finished(cookie: nil, failed: true)
            } catch {
                if Task.isCancelled || error is CancellationError || isDraining() {
                    // Cancelled at the end of a shutdown's timeout, or failed while the node drained: handed back at the
                    // last page committed, from a task of its own (this one's queries may not run any more).
                    var record = committed
                    record.stopReason = Task.isCancelled || error is CancellationError
                        ? "The node was stopping and the run was cancelled; it was handed back at the last page it committed."
                        : "The run failed while the node was draining (\(error)); it was handed back at the last page it committed."
                    await Task { [record] in try? await self.handBack(record, lease: lease, tenant: tenant.id) }.value
                }
                // Otherwise the lease runs out by itself and a node takes the run up from its last page (a database
                // failing over, say).
                throw error
            }
            switch outcome {
            case .finished(let cookie, let failed):
                if !failed { cookies.append((connector, cookie)) }
                runs.append(run)
                finished.append(lease)
            case .handedBack(let reason):
                committed.status = "handed-back"
                committed.handedBackAt = Timestamp.format(clock.now)
                committed.stopReason = reason
                runs.append(committed)
                handedBack = lease
            case .lost(let reason):
                lost = true
                run.status = "lease-lost"
                run.stopReason = reason
                lostRuns.append(run)
            }
            if handedBack != nil || lost { break }
        }
        // Nothing ran: every connector's run is another node's (nothing here to save over what that node saves).
        if runs.isEmpty, lostRuns.isEmpty, let work = busy.first { throw SyncRunInProgress(tenant: tenant.id, work: work) }
        if handedBack == nil, !lost { try await releaseResolvedConflicts(tenant: tenant) }
        let cutoff = Timestamp.format(clock.now.addingTimeInterval(-7 * 86_400))
        let records = runs.map(\.json)
        try await SyncSettings.updateRunState(tenant: tenant.id, store: store) { [cookies] state in
            for (connector, cookie) in cookies { state.setCookie(cookie, of: connector) }
            for record in records { state.record(record) }
            state.trimRuns(before: cutoff)
        }
        // The record first, then the lease: a node that takes the run up finds it handed back.
        if let handedBack { _ = try await SyncRunLeases.handBack(store: store, handedBack, now: clock.now) }
        for lease in finished { try await SyncRunLeases.end(store: store, lease) }
        // A run that lost its lease is audited too, as this node's part of it: the run stays the lease holder's (which
        // resumes it from its last checkpoint, with the same id, or runs the connector again), so the event says that
        // this node stopped and why, with the counts as this node left them; the run's end is audited by the node that
        // ends it.
        for run in runs + lostRuns where run.status != "handed-back" {
            var details: [String: JSONValue] = ["connector": .string(run.connector), "status": .string(run.status),
                                                "added": .int(Int64(run.added)), "updated": .int(Int64(run.updated)),
                                                "deleted": .int(Int64(run.deleted)), "quarantined": .int(Int64(run.quarantined))]
            if let reason = run.stopReason, run.status == "lease-lost" { details["stopReason"] = .string(reason) }
            try await directory.recordEvent(tenant: tenant.id, objectId: run.id, kind: .syncObject, activity: "Directory synchronization run",
                                            actor: Self.actor, details: details)
        }
        return runs + lostRuns
    }

    /// The lease name of a connector's runs.
    public static func work(connector: String) -> String { "sync:\(connector.lowercased())" }

    /// Records `run` (as its last checkpoint left it) handed back, then ends its lease, so another node resumes it.
    func handBack(_ run: SyncRun, lease: SyncRunLease, tenant: String) async throws {
        var record = run
        record.status = "handed-back"
        record.handedBackAt = Timestamp.format(clock.now)
        let json = record.json
        try await SyncSettings.updateRunState(tenant: tenant, store: store) { state in state.record(json) }
        _ = try await SyncRunLeases.handBack(store: store, lease, now: clock.now)
    }

    enum ConnectorOutcome {
        /// The import was read and exported whole (or the connector failed): the cookie to keep.
        case finished(cookie: [UInt8]?, failed: Bool)
        /// The node is draining: the run stopped after a page it committed, and its checkpoint says where; why, for its
        /// record.
        case handedBack(String)
        /// The lease is another node's now (or ran out): the run stopped and writes nothing more; why.
        case lost(String)

        static let drained = handedBack("The node was draining: the run stopped after a page it committed, for another node to resume.")
        static let leaseLost = lost("The run's lease ran out or was taken by another node: this node stopped after a page and wrote nothing more; the node holding the lease resumes the run.")
    }

    /// Test seam: called after each page's checkpoint is saved, with how many pages this node committed.
    @TaskLocal static var pageCommitted: (@Sendable (Int) async throws -> Void)?
    /// Test seam: called after each page of a DirSync answer is staged, before the run decides whether to stop there,
    /// with how many entries of the answer it has staged.
    @TaskLocal static var answerPageStaged: (@Sendable (Int) async throws -> Void)?

    /// How often a run reading a DirSync answer saves a checkpoint (as well as at each answer's end, and when its node
    /// drains): a node killed inside an answer leaves the run to be resumed from there, with its id, its counts and
    /// what waits for its end. The node that resumes it asks for the whole answer again whatever the checkpoint
    /// (DirSync's cookie comes only with an answer's end; RFC 2696's paging cookie is the connection's) and finds what
    /// was staged after the checkpoint unchanged: that costs reads, not writes, but goes uncounted in the run's
    /// `added`/`updated`. So a checkpoint saves counts rather than work, and one every lease renewal (10 s: the writes a
    /// held lease makes anyway) bounds what a kill leaves uncounted to 10 s of the run. One after each page of 1,000
    /// measured from no difference (load 2–3.5) to 4% of the CPU and 13% of the time (load 3.5–6) of a 20,000-user
    /// Samba initial sync on the 2-core test machine.
    static let answerCheckpointInterval = TimeInterval(Leases.renewal.components.seconds)

    /// Thrown out of a DirSync answer's staging to stop reading it (``LDAPConnection`` then abandons the search).
    struct StoppedInAnswer: Error {}

    /// One connector's run, from `progress` when a node committed part of it before: each page is exported, then its
    /// checkpoint saved (what the import read up to, what waits for the end); `committed` is the run as of the last.
    func runConnector(_ connector: SyncConnector, tenant: TenantRecord, settings: SyncSettings, keeper: SyncRunKeeper, progress saved: SyncProgress?,
                      run: inout SyncRun, committed: inout SyncRun) async throws -> ConnectorOutcome {
        var export = try await beginExport(tenant: tenant, connector: connector, settings: settings)
        var progress = saved ?? SyncProgress()
        if saved != nil { try await export.restore(progress, cycle: self) }
        var pages = 0
        var cookie: [UInt8]?
        if let file = connector.ldifFile {
            // Read as a stream, a page at a time; a resumed run passes over the entries committed before.
            var reader = try LDIF.Reader(path: file)
            var skipped = 0
            while skipped < progress.entries, try reader.next() != nil { skipped += 1 }
            var page: [LDAPEntry] = []
            page.reserveCapacity(Self.pageSize)
            while let entry = try reader.next() {
                page.append(entry)
                if page.count == Self.pageSize {
                    try await exportPage(page, state: &export, run: &run)
                    progress.entries += page.count
                    page.removeAll(keepingCapacity: true)
                    pages += 1
                    let stop = try await checkpoint(&progress, export: export, run: run, keeper: keeper, pages: pages)
                    committed = run
                    if let stop { return stop }
                }
            }
            try await exportPage(page, state: &export, run: &run)
        } else if progress.more {
            var stop: ConnectorOutcome?
            // Entries of the answer being read that are staged: the answer's cookie comes only with its end. A run resumed
            // inside an answer reads it again from its start, so what its checkpoint counted of it is read (and counted)
            // again.
            var staged = 0, checkpointed = clock.now
            if let counted = progress.answerEntries {
                run.imported -= counted
                progress.answerEntries = nil
            }
            do {
                cookie = try await importPages(connector, full: run.full, from: progress.cookie.map { Array($0) }) { page in
                    try await exportPage(page, state: &export, run: &run)
                    staged += page.count
                    if let seam = Self.answerPageStaged { try await seam(staged) }
                    // Inside an answer (Samba's first sync is the whole domain in one) the run is checkpointed every
                    // `answerCheckpointInterval` and when the node drains: the checkpoint keeps the cookie the answer was
                    // asked with (`progress.cookie`), so the node that goes on (this one draining, or killed) asks for the
                    // answer again; what this node staged of it is staged again as an upsert, counted once (the run's
                    // counts are the checkpoint's), and what it left waiting for the end (groups, deletions) is taken in
                    // once.
                    if keeper.mustStop(now: clock.now) {
                        stop = .lost("The run's lease ran out or was taken by another node inside a DirSync answer, after \(staged) of its entries were staged: this node stopped and wrote nothing more; the node holding the lease resumes the run, asking for that answer again.")
                    } else if isDraining() || clock.now.timeIntervalSince(checkpointed) >= Self.answerCheckpointInterval {
                        pages += 1
                        progress.answerEntries = staged
                        stop = try await checkpoint(&progress, export: export, run: run, keeper: keeper, pages: pages)
                        committed = run
                        checkpointed = clock.now
                        if case .handedBack = stop {
                            // A page shorter than the chunk comes only with the answer's end: its cookie follows, so the
                            // run stops there (`replied`) instead of asking for the whole answer again.
                            stop = page.count < Self.pageSize ? nil
                                : .handedBack("The node was draining: the run stopped inside a DirSync answer after \(staged) of its entries were staged; the connector's cookie stays where the answer began, so the node that resumes the run asks for that answer again and adds only what is missing.")
                        }
                    }
                    if stop != nil { throw StoppedInAnswer() }
                } replied: { next, more in
                    staged = 0
                    progress.answerEntries = nil
                    progress.cookie = Data(next)
                    progress.more = more
                    // The last answer goes on to the end of the run, unless the node is draining: then its cookie is
                    // checkpointed and the node that resumes the run finishes it.
                    guard more || isDraining() else { return true }
                    pages += 1
                    stop = try await checkpoint(&progress, export: export, run: run, keeper: keeper, pages: pages)
                    committed = run
                    checkpointed = clock.now
                    return stop == nil
                }
            } catch is StoppedInAnswer {}
            if let stop { return stop }
        } else {
            cookie = progress.cookie.map { Array($0) }
        }
        try await finishExport(&export, run: &run)
        return .finished(cookie: cookie, failed: false)
    }

    /// Saves where the run stands after a page; nil to go on, or why the run stops here.
    func checkpoint(_ progress: inout SyncProgress, export: ExportState, run: SyncRun, keeper: SyncRunKeeper, pages: Int) async throws -> ConnectorOutcome? {
        progress.run = run.json.serialized
        export.save(into: &progress)
        guard try await keeper.checkpoint(store: store, progress: progress.text, now: clock.now) else { return .leaseLost }
        if let seam = Self.pageCommitted { try await seam(pages) }
        if keeper.mustStop(now: clock.now) { return .leaseLost }
        return isDraining() ? .drained : nil
    }

    // MARK: Import

    /// How long a DirSync answer may take to begin: Samba works out the whole answer before it sends the first entry
    /// (32 s for 100,000 users on two busy cores), and ignores the control's size limit. After that, a silence of the
    /// connection's timeout fails the read. (AD stops a query itself after its MaxQueryDuration, 120 s by default.)
    static let dirSyncFirstAnswer = Duration.seconds(600)

    /// A bound connection to the connector's directory.
    static func connect(_ connector: SyncConnector) async throws -> LDAPConnection {
        let password = try String(contentsOfFile: connector.bindPasswordFile, encoding: .utf8).trimmingCharacters(in: .newlines)
        let mode: LDAPTLS.Mode = connector.ldapURL.lowercased().hasPrefix("ldaps://") ? .ldaps : connector.startTLS ? .startTLS : .none
        let ldap = try await LDAPConnection.connect(url: connector.ldapURL,
                                                    tls: LDAPTLS(mode: mode, caFile: connector.caFile, insecureSkipVerify: connector.insecureSkipVerify))
        do {
            try await ldap.bind(dn: connector.bindDN, password: password)
        } catch {
            await ldap.close()
            throw error
        }
        return ldap
    }

    /// Reads the connector's users, every one (full) or what changed since its DirSync cookie (or, resuming a run, since
    /// the cookie of the last page it committed). Each DirSync answer is streamed: its entries go to `stage`
    /// `pageSize` at a time as they arrive (Samba ignores the control's size limit and answers a first DirSync with
    /// the whole domain, so memory is bounded by the page, not the answer); then `replied` gets the cookie from the
    /// answer's end and whether more follow, and says whether to go on. The cookie is known only once every entry of
    /// its answer is staged; a run that fails before then keeps the old one, and staging the same entries again is an
    /// upsert. Returns the new cookie, which is stored only after the export succeeded; nil when `replied` stopped
    /// the import.
    func importPages(_ connector: SyncConnector, full: Bool, from start: [UInt8]? = nil,
                     _ stage: ([LDAPEntry]) async throws -> Void,
                     replied: ([UInt8], Bool) async throws -> Bool) async throws -> [UInt8]? {
        // DirSync reads from the root of the naming context; the connector's scope is applied when exporting.
        let root = connector.baseDN.split(separator: ",").filter { $0.trimmingCharacters(in: .whitespaces).lowercased().hasPrefix("dc=") }
            .joined(separator: ",")
        return try await Self.connect(connector).closing { ldap -> [UInt8]? in
            var cookie = start ?? (full ? [] : connector.cookie ?? [])
            var more = true
            while more {
                let done = try await ldap.search(base: root, filter: "(|(objectClass=user)(objectClass=group))", attributes: Self.userAttributes,
                                                 controls: [.dirSync(flags: 0, cookie: cookie)], chunk: Self.pageSize,
                                                 firstAnswer: Self.dirSyncFirstAnswer, stage)
                guard let control = done.controls.first(where: { $0.oid == LDAPControl.dirSyncOID }) else {
                    throw LDAPError("the server did not answer the DirSync control (the bind account needs Replicating Directory Changes)")
                }
                (more, cookie) = try control.cookie()
                guard try await replied(cookie, more) else { return nil }
            }
            return cookie
        }
    }
}

// MARK: Operations on the staging area

extension SyncCycle {
    /// Staged objects of every connector, only those in `states` when given.
    func stagedObjects(tenant: String, states: [String]? = nil) async throws -> [StagedUser] {
        try await store.read { tx in try await tx.stagedObjects(tenant: tenant, connector: nil, states: states, afterId: nil, limit: nil) }
            .map(StagedUser.init)
    }

    /// Objects sync could not export: quarantined (refused matches and, with the quarantine switches, conflicts) and
    /// failed ones, with their errors; and synced users exported with an attribute conflict (state `conflict`, one
    /// entry per `onPremisesProvisioningErrors` value), as Entra's sync errors report lists them.
    public func errors(tenant: String) async throws -> [JSONValue] {
        var out: [JSONValue] = []
        func entry(_ user: StagedUser, state: String, code: String, message: String, at: JSONValue?) -> JSONValue {
            var json = Self.errorJSON(user, code: code, message: message)
            if case .object(var o) = json {
                o["state"] = .string(state)
                o["occurredDateTime"] = at ?? .null
                o["connector"] = .string(user.object.connector)
                o["cloudId"] = .optional(user.cloudID)
                json = .object(o)
            }
            return json
        }
        for user in try await stagedObjects(tenant: tenant, states: ["quarantined", "error"]) {
            out.append(entry(user, state: user.state, code: user.object.details["error"]?["code"]?.stringValue ?? "",
                             message: user.object.details["error"]?["message"]?.stringValue ?? "", at: user.object.details["error"]?["occurredDateTime"]))
        }
        let conflicted = try await store.read { tx in try await tx.conflictedStagedObjects(tenant: tenant) }.map(StagedUser.init)
            .filter { $0.state == "joined" }
        let cloud = try await store.read { tx in
            var objects: [String: StoredObject] = [:]
            for id in conflicted.compactMap(\.cloudID) { objects[id] = try await tx.object(tenant: tenant, id: id) }
            return objects
        }
        for user in conflicted {
            for error in user.cloudID.flatMap({ cloud[$0] })?.body["onPremisesProvisioningErrors"]?.arrayValue ?? [] {
                let property = error["propertyCausingError"]?.stringValue ?? ""
                out.append(entry(user, state: "conflict", code: "AttributeValueMustBeUnique",
                                 message: "\(property) '\(error["value"]?.stringValue ?? "")' is held by another object; duplicate attribute resiliency applied.",
                                 at: error["occurredDateTime"]))
            }
        }
        return out
    }

    /// Entra's hourly release of resolved attribute conflicts: every staged user with a conflict (a user principal
    /// name resiliency changed, a proxy address it left off, or quarantined for one) is written again, which puts
    /// the on-premises values back, or exports the quarantined user, once the other object has let go. Returns how
    /// many conflicts were resolved. A sync run ends with it too.
    @discardableResult
    public func releaseResolvedConflicts(tenant: TenantRecord) async throws -> Int {
        let settings = try await SyncSettings.load(tenant: tenant.id, store: store)
        let conflicted = try await store.read { tx in try await tx.conflictedStagedObjects(tenant: tenant.id) }.map(StagedUser.init)
        guard !conflicted.isEmpty else { return 0 }
        var context = try await self.context(tenant: tenant, settings: settings)
        var run = SyncRun(id: Identifier.makeTimeOrdered(at: clock.now), connector: "", at: Timestamp.format(clock.now))
        var released = 0, written: [StagedUser] = []
        for var user in conflicted where user.isUser && !user.isDeleted {
            do {
                try await apply(&user, context: &context, run: &run)
            } catch let error as DirectoryError {
                user.object.state = "error"
                user.object.details["error"] = ["code": .string(error.code.rawValue), "message": .string(error.message),
                                             "occurredDateTime": .string(Timestamp.format(clock.now))]
            }
            if !user.object.conflict { released += 1 }
            written.append(user)
        }
        try await saveStaged(written)
        return released
    }

    /// The quarantined objects.
    public func quarantined(tenant: String) async throws -> [JSONValue] {
        try await errors(tenant: tenant).filter { $0["state"] == "quarantined" }
    }

    /// Permanently deletes a quarantined object from the staging area (Entra's remediation step): its connector's
    /// next run reads everything again, so the object comes back as new and is matched again.
    public func deleteQuarantined(tenant: String, id: String) async throws {
        let lowered = id.lowercased()
        let found = try await store.read { tx in try await tx.stagedObjects(tenant: tenant, ids: [lowered]) }.map(StagedUser.init)
        guard let user = found.first(where: { $0.state == "quarantined" }) else {
            throw DirectoryError.notFound(id)
        }
        try await removeStaged(user, tenant: tenant)
        let connector = user.object.connector
        try await SyncSettings.updateRunState(tenant: tenant, store: store) { state in state.resetCookie(connector: connector) }
        try await directory.recordEvent(tenant: tenant, objectId: user.object.id, kind: .syncObject,
                                        activity: "Delete quarantined on-premises object", actor: Self.actor,
                                        details: ["displayName": .string(user.dn)])
    }

    /// Carries out the deletions a run held back at the accidental-deletion threshold, once.
    @discardableResult
    public func approveDeletions(tenant: TenantRecord, run id: String) async throws -> Int {
        let settings = try await SyncSettings.load(tenant: tenant.id, store: store)
        guard let index = settings.runs.firstIndex(where: { $0["id"]?.stringValue == id.lowercased() }) else { throw DirectoryError.notFound(id) }
        guard settings.runs[index]["status"] == "stopped-deletion-threshold-exceeded" else {
            throw DirectoryError.badRequest("Run \(id) has no deletions waiting for approval (its status is \(settings.runs[index]["status"]?.stringValue ?? "")).")
        }
        let pending = Set(settings.runs[index]["pendingDeletions"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        var deleted = 0
        let staged = try await store.read { tx in try await tx.stagedObjects(tenant: tenant.id, ids: pending.sorted()) }.map(StagedUser.init)
        for user in staged {
            try await delete(user, tenant: tenant.id)
            deleted += 1
        }
        let runID = id.lowercased()
        _ = try await SyncSettings.updateRunState(tenant: tenant.id, store: store) { [deleted] state in
            state.updateRun(id: runID) { run in
                run["status"] = "deletions-approved"
                run["deleted"] = .int(Int64(deleted))
            }
        }
        try await directory.recordEvent(tenant: tenant.id, objectId: id, kind: .syncObject, activity: "Approve directory synchronization deletions",
                                        actor: Self.actor, details: ["deleted": .int(Int64(deleted))])
        return deleted
    }

    /// Synced accounts that hold a directory role, with how each was matched: what Microsoft advises reviewing
    /// before the June 2026 rule.
    public func privilegedSyncedAccounts(tenant: String) async throws -> [JSONValue] {
        let synced = try await store.read { tx in
            try await tx.query(ObjectQuery(tenant: tenant, kinds: [.user], filter: .compare(PropertyPath(["onPremisesSyncEnabled"]), .eq, .bool(true))))
        }
        let staged = Dictionary(try await store.read { tx in try await tx.stagedObjects(tenant: tenant, joinedTo: synced.map(\.id)) }
            .compactMap { object in object.cloudID.map { ($0, object) } }) { a, _ in a }
        var out: [JSONValue] = []
        for user in synced {
            let roles = try await directory.directoryRoles(tenant: tenant, principal: user.id)
            guard !roles.isEmpty else { continue }
            out.append(["id": .string(user.id), "userPrincipalName": user.body["userPrincipalName"] ?? .null,
                        "onPremisesImmutableId": user.body["onPremisesImmutableId"] ?? .null,
                        "onPremisesDistinguishedName": user.body["onPremisesDistinguishedName"] ?? .null,
                        "matchedBy": .string(staged[user.id]?.details["matchedBy"]?.stringValue ?? "created"),
                        "roles": .array(roles.sorted().map { .string(BuiltInRoles.byTemplateId($0)?.displayName ?? $0) })])
        }
        return out
    }
}
