import Foundation
import TesseraCore
import LDAP

/// A user in a connector's staging area.
struct StagedUser {
    /// The staged object without its attributes, which are kept decoded (once) in `attributes`; `stored` puts them back.
    var object: StagedObject
    /// The on-premises attributes, names in lower case.
    var attributes: [String: [String]]

    init(_ staged: StagedObject) {
        var object = staged
        var attributes: [String: [String]] = [:]
        for (key, value) in object.details.removeValue(forKey: "attributes")?.objectValue ?? [:] {
            attributes[key] = value.arrayValue?.compactMap(\.stringValue) ?? []
        }
        self.object = object
        self.attributes = attributes
    }

    /// The object as the staging area keeps it.
    var stored: StagedObject {
        var stored = object
        stored.details["attributes"] = .object(attributes.mapValues { .array($0.map { .string($0) }) })
        return stored
    }
    func value(_ name: String) -> String? { attributes[name.lowercased()]?.first }
    func values(_ name: String) -> [String] { attributes[name.lowercased()] ?? [] }
    /// The first value of an attribute named in lower case already (no case folding: the attribute flow asks for
    /// about thirty names a user).
    func first(lowercased name: String) -> String? { attributes[name]?.first }
    var dn: String { object.dn }
    var cloudID: String? { object.cloudID }
    var state: String { object.state }
    var isDeleted: Bool { value("isDeleted")?.uppercased() == "TRUE" }
    var isUser: Bool {
        let classes = values("objectClass").map { $0.lowercased() }
        return classes.contains("user") && !classes.contains("computer")
    }
    var isGroup: Bool { values("objectClass").contains { $0.lowercased() == "group" } }
    var isComputer: Bool { values("objectClass").contains { $0.lowercased() == "computer" } }
    /// The cloud kind this object becomes.
    var cloudKind: ObjectKind { isComputer ? .device : isGroup ? .group : .user }

    /// `ms-DS-ConsistencyGuid` when it holds a GUID, otherwise `objectGUID`: Base64 of the 16 bytes as AD stores them
    /// (.NET byte order), which is Entra's sourceAnchor.
    var id: String { object.id }

    var sourceAnchor: String? {
        if let consistency = value("mS-DS-ConsistencyGuid"), Data(base64Encoded: consistency)?.count == 16 { return consistency }
        return value("objectGUID")
    }
}

/// A staged object with what an export decides by worked out once: its classes (`StagedUser.isUser`, `isGroup`,
/// `isComputer`) and whether it is in the connector's scope (not deleted, under its base DN).
struct ClassifiedUser {
    var user: StagedUser
    let isUser: Bool, isGroup: Bool, isComputer: Bool, inScope: Bool

    /// - Parameter base: the connector's base DN, lower case.
    init(_ user: StagedUser, base: String) {
        let classes = user.values("objectClass").map { $0.lowercased() }
        self.user = user
        isComputer = classes.contains("computer")
        isUser = classes.contains("user") && !isComputer
        isGroup = classes.contains("group")
        inScope = !user.isDeleted && user.dn.lowercased().hasSuffix(base)
    }
}

/// What one export (or one release of conflicts) knows beyond each object: the tenant, its switches, and what it
/// reads once instead of once an object.
struct ExportContext {
    let tenant: TenantRecord
    let settings: SyncSettings
    let matcher: Matcher
    /// The tenant's domains: a UPN with another suffix takes the initial domain.
    let domains: Set<String>
    /// Which staged object holds each cloud object.
    var joined: JoinMap
    /// Soft-deleted synced users by anchor: an object that comes back restores its user instead of a new one.
    var deletedByAnchor: [String: [String]]
}

/// An export in progress: the import arrives a page at a time, and what must wait for the whole of it (deletions of
/// what a full import did not name, group memberships, the deletion threshold) is kept here, as ids.
struct ExportState {
    let connector: SyncConnector
    var context: ExportContext
    /// Every staged object a full import named.
    var seen: Set<String> = []
    /// Groups whose members to bring in line once every member is exported.
    var changedGroups: [String] = []
    var createdGroups: Set<String> = [], updatedGroups: Set<String> = []
    /// Joined objects that left the directory or the connector's scope, with the attributes the import brought.
    var deletions: [StagedUser] = []

    /// Puts what waits for the end of the run into its checkpoint: ids, and which deletions left the directory.
    func save(into progress: inout SyncProgress) {
        progress.changedGroups = changedGroups
        progress.createdGroups = createdGroups.sorted()
        progress.updatedGroups = updatedGroups.sorted()
        progress.deletions = deletions.map(\.id)
        progress.deletedInDirectory = deletions.filter(\.isDeleted).map(\.id)
    }

    /// Takes back what waited for the end of the run from its checkpoint (a node resuming it).
    mutating func restore(_ progress: SyncProgress, cycle: SyncCycle) async throws {
        changedGroups = progress.changedGroups
        createdGroups = Set(progress.createdGroups)
        updatedGroups = Set(progress.updatedGroups)
        let tenant = context.tenant.id, ids = progress.deletions, gone = Set(progress.deletedInDirectory)
        deletions = try await cycle.store.read { tx in try await tx.stagedObjects(tenant: tenant, ids: ids) }.map { object in
            var user = StagedUser(object)
            if gone.contains(user.id) { user.attributes["isdeleted"] = ["TRUE"] }
            return user
        }
    }
}

/// Where a directory sync run of one connector stands after the pages it committed, as its ``SyncRunCheckpoint``
/// keeps it: the run's counts, how far the import was read (entries of an LDIF file; DirSync's cookie after the last
/// page, and whether more followed), and what waits for the end of the run. The staged objects the run exported carry
/// its id (`runId`), so a full run resumed elsewhere still tells what the directory no longer has.
struct SyncProgress: Codable {
    var run = ""
    var entries = 0
    var cookie: Data?
    var more = true
    /// Entries of the DirSync answer being read that the run staged (and counted in `run`) since `cookie`: a checkpoint
    /// inside an answer; the node that resumes the run reads that answer again from its start. (Optional: a checkpoint a
    /// node of an earlier release wrote has none.)
    var answerEntries: Int?
    var changedGroups: [String] = [], createdGroups: [String] = [], updatedGroups: [String] = []
    var deletions: [String] = [], deletedInDirectory: [String] = []

    init() {}

    init?(text: String) {
        guard let decoded = try? JSONDecoder().decode(Self.self, from: Data(text.utf8)) else { return nil }
        self = decoded
    }

    var text: String { (try? JSONEncoder().encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}" }
}

extension SyncCycle {
    func context(tenant: TenantRecord, settings: SyncSettings) async throws -> ExportContext {
        let tenantID = tenant.id
        let (domains, deleted) = try await store.read { tx in
            (try await tx.query(ObjectQuery(tenant: tenantID, kinds: [.domain])).map { $0.id.lowercased() },
             try await tx.query(ObjectQuery(tenant: tenantID, kinds: [.user], deleted: true,
                                            filter: .compare(PropertyPath(["onPremisesSyncEnabled"]), .eq, .bool(true)))))
        }
        var deletedByAnchor: [String: [String]] = [:]
        for user in deleted { if let anchor = user.body["onPremisesImmutableId"]?.stringValue { deletedByAnchor[anchor, default: []].append(user.id) } }
        return ExportContext(tenant: tenant, settings: settings, matcher: Matcher(features: settings.features, enforcementDate: settings.enforcementDate),
                             domains: Set(domains), joined: JoinMap(store: store, tenant: tenantID), deletedByAnchor: deletedByAnchor)
    }

    static func stagingID(connector: String, guid: [UInt8]) -> String {
        "sync:\(connector.lowercased()):" + hex(guid)
    }

    /// Bytes as lower-case hexadecimal, two digits each.
    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        return String(unsafeUninitializedCapacity: bytes.count * 2) { out in
            for (index, byte) in bytes.enumerated() {
                out[2 * index] = digits[Int(byte >> 4)]
                out[2 * index + 1] = digits[Int(byte & 0x0f)]
            }
            return bytes.count * 2
        }
    }

    /// Entries an import hands to the export at once: the memory an export holds is about a page, not the directory.
    /// A run's checkpoint follows each page. (Task-local so that tests make runs of several pages from a few entries.)
    @TaskLocal static var pageSize = 1_000

    func beginExport(tenant: TenantRecord, connector: SyncConnector, settings: SyncSettings) async throws -> ExportState {
        ExportState(connector: connector, context: try await context(tenant: tenant, settings: settings))
    }

    /// Merges one page of imported entries into the staging area, reading only the staged objects they name, and
    /// exports them.
    func exportPage(_ entries: [LDAPEntry], state: inout ExportState, run: inout SyncRun) async throws {
        let tenantID = state.context.tenant.id, connector = state.connector
        run.imported += entries.count
        var named: [(id: String, entry: LDAPEntry)] = []
        named.reserveCapacity(entries.count)
        for entry in entries {
            guard let guid = entry.values("objectGUID").first, guid.count == 16 else { continue }
            named.append((Self.stagingID(connector: connector.name, guid: guid), entry))
        }
        let ids = named.map(\.id)
        var byID: [String: StagedUser] = [:]
        let stored = try await store.read { tx in try await tx.stagedObjects(tenant: tenantID, ids: ids) }
        run.stagedRead += stored.count
        for object in stored { byID[object.id] = StagedUser(object) }
        var order: [String] = [], ordered: Set<String> = []
        for (id, entry) in named {
            if run.full { state.seen.insert(id) }
            var user = byID[id] ?? StagedUser(StagedObject(tenant: tenantID, id: id, connector: connector.name))
            var attributes = run.full ? [:] : user.attributes
            for (name, values) in entry.attributes {
                let key = name.lowercased()
                attributes[key] = Self.binaryAttributes.contains(key) ? values.map { Data($0).base64EncodedString() }
                    : values.map { String(decoding: $0, as: UTF8.self) }
            }
            user.attributes = attributes
            user.object.dn = entry.dn
            byID[id] = user
            if ordered.insert(id).inserted { order.append(id) }
        }
        try await exportChanged(order.compactMap { byID[$0] }, state: &state, run: &run, stored: Set(stored.map(\.id)))
    }

    /// Ends an export once the import has been read: what a full import did not name is gone, groups get their
    /// members, and the deletions are carried out unless there are more than the threshold allows.
    func finishExport(_ state: inout ExportState, run: inout SyncRun) async throws {
        let tenantID = state.context.tenant.id, connector = state.connector
        // A run resumed inside a DirSync answer (its node stopped there) reads that answer's entries again, after its
        // checkpoint took in what they left waiting: each group and deletion counts once (the last one read).
        var groupsSeen: Set<String> = []
        state.changedGroups = state.changedGroups.filter { groupsSeen.insert($0).inserted }
        var deletionsSeen: Set<String> = []
        state.deletions = state.deletions.reversed().filter { deletionsSeen.insert($0.id).inserted }.reversed()
        if run.full {
            // Everything still in AD came back; staged objects that did not are gone.
            // Each staged object's id and run id only; the few that are gone are then read whole.
            var after: String?
            while true {
                let page = try await store.read { [after] tx in
                    try await tx.stagedRunIDs(tenant: tenantID, connector: connector.name, afterId: after, limit: Self.pageSize)
                }
                run.stagedRead += page.count
                // Named by this run: seen here, or exported (or waiting for deletion) by the node that began it.
                let waiting = Set(state.deletions.map(\.id)), runID = run.id
                let goneIDs = page.filter { !state.seen.contains($0.id) && $0.runId != runID && !waiting.contains($0.id) }.map(\.id)
                if !goneIDs.isEmpty {
                    let gone = try await store.read { tx in try await tx.stagedObjects(tenant: tenantID, ids: goneIDs) }.map { object in
                        var user = StagedUser(object)
                        user.attributes["isdeleted"] = ["TRUE"]
                        return user
                    }
                    if !gone.isEmpty { try await exportChanged(gone, state: &state, run: &run) }
                }
                guard page.count == Self.pageSize, let last = page.last?.id else { break }
                after = last
            }
        }

        var cloudByDN: [String: String?] = [:]
        for start in stride(from: 0, to: state.changedGroups.count, by: Self.pageSize) {
            let ids = Array(state.changedGroups[start..<min(start + Self.pageSize, state.changedGroups.count)])
            let groups = try await store.read { tx in try await tx.stagedObjects(tenant: tenantID, ids: ids) }.map(StagedUser.init)
            run.stagedRead += groups.count
            for group in groups {
                guard let cloud = group.cloudID else { continue }
                let dns = group.values("member").map { $0.lowercased() }
                run.stagedRead += try await resolveMembers(dns.filter { cloudByDN[$0] == nil }, connector: connector.name, tenant: tenantID,
                                                           into: &cloudByDN)
                let changedMembers = try await syncMembers(of: cloud, to: Set(dns.compactMap { cloudByDN[$0] ?? nil }), tenant: tenantID, run: &run)
                // A membership change is an update of the group (unless the group was created in this run).
                let id = group.id
                if changedMembers, !state.createdGroups.contains(id), !state.updatedGroups.contains(id) { run.updated += 1 }
            }
        }

        // Accidental deletion prevention: past the threshold nothing is deleted, and the run says so.
        if !state.deletions.isEmpty {
            let threshold = try await DeletionThreshold(settings: state.context.settings) {
                try await store.read { tx in try await tx.joinedStagedCount(tenant: tenantID, connector: connector.name) }
            }
            if threshold.holdsBack(state.deletions.count) {
                run.status = "stopped-deletion-threshold-exceeded"
                run.pendingDeletions = state.deletions.map(\.object.id).sorted()
                return
            }
        }
        for user in state.deletions {
            try await delete(user, tenant: tenantID)
            run.deleted += 1
        }
    }

    /// The cloud objects of the staged objects with these distinguished names (lower case), looked up by the indexed
    /// folded DN; nil for a name no joined, live staged object has. Returns how many staged objects it read.
    func resolveMembers(_ dns: [String], connector: String, tenant: String, into found: inout [String: String?]) async throws -> Int {
        guard !dns.isEmpty else { return 0 }
        let staged = try await store.read { tx in try await tx.stagedObjects(tenant: tenant, connector: connector, dns: dns) }.map(StagedUser.init)
        var byDN: [String: [StagedUser]] = [:]
        for user in staged { byDN[StagedObject.foldedDN(user.dn), default: []].append(user) }
        for dn in Set(dns) { found[dn] = .some(byDN[StagedObject.foldedDN(dn)]?.first { $0.cloudID != nil && !$0.isDeleted }?.cloudID) }
        return staged.count
    }

    /// Exports staged objects the import changed: new users in bulk, then each of the others (users, then groups, then
    /// computers); objects out of scope wait in `state.deletions`, groups in `state.changedGroups`. Each staged object
    /// written carries the run's id (`runId`); on a full run, so does one already `stored` that stays out of scope.
    func exportChanged(_ users: [StagedUser], state: inout ExportState, run: inout SyncRun, stored: Set<String> = []) async throws {
        let tenant = state.context.tenant, connector = state.connector
        // Each object's classes and scope worked out once; users first, then groups, then computers.
        let runID = JSONValue.string(run.id), base = connector.baseDN.lowercased()
        var order: [ClassifiedUser] = [], groups: [ClassifiedUser] = [], computers: [ClassifiedUser] = []
        order.reserveCapacity(users.count)
        for var user in users {
            user.object.details["runId"] = runID
            let classified = ClassifiedUser(user, base: base)
            if classified.isUser { order.append(classified) }
            if classified.isGroup { groups.append(classified) }
            if classified.isComputer { computers.append(classified) }
        }
        order += groups
        order += computers
        // New users first, in batches: an initial sync is mostly these.
        var done: Set<String> = []
        var exported: [StagedUser] = []
        let fresh = order.filter { $0.isUser && $0.user.cloudID == nil && $0.inScope }.map(\.user)
        for start in stride(from: 0, to: fresh.count, by: Self.bulkSize) {
            let created = try await createInBulk(Array(fresh[start..<min(start + Self.bulkSize, fresh.count)]), context: &state.context, run: &run)
            for user in created { done.insert(user.id) }
            exported += created
        }
        // Then changed users that plainly update their cloud user, in batches: a delta is mostly these.
        let updating = order.filter { $0.isUser && $0.user.cloudID != nil && $0.inScope && !done.contains($0.user.object.id) }.map(\.user)
        for start in stride(from: 0, to: updating.count, by: Self.bulkSize) {
            let updated = try await updateInBulk(Array(updating[start..<min(start + Self.bulkSize, updating.count)]), context: state.context,
                                                 run: &run)
            for user in updated { done.insert(user.id) }
            exported += updated
        }
        var dirty: [StagedUser] = []
        for entry in order where !done.contains(entry.user.object.id) {
            var user = entry.user
            let id = user.object.id
            if !entry.inScope {
                if user.cloudID != nil {
                    state.deletions.append(user)
                } else if user.isDeleted {
                    try await removeStaged(user, tenant: tenant.id)
                } else if run.full, stored.contains(id) {
                    dirty.append(user)  // kept, marked as named by this run
                }
                continue
            }
            do {
                if entry.isComputer {
                    try await applyDevice(&user, tenant: tenant, run: &run)
                } else if entry.isGroup {
                    let before = (run.added, run.updated)
                    try await applyGroup(&user, tenant: tenant, run: &run)
                    state.changedGroups.append(id)
                    if run.added > before.0 { state.createdGroups.insert(id) }
                    if run.updated > before.1 { state.updatedGroups.insert(id) }
                } else {
                    try await apply(&user, context: &state.context, run: &run)
                }
            } catch let error as DirectoryError {
                user.object.state = "error"
                user.object.details["error"] = ["code": .string(error.code.rawValue), "message": .string(error.message),
                                             "occurredDateTime": .string(Timestamp.format(clock.now))]
                run.errors.append(Self.errorJSON(user, code: error.code.rawValue, message: error.message))
            }
            dirty.append(user)
            if dirty.count >= 500 {
                try await saveStaged(dirty)
                exported += dirty
                dirty.removeAll(keepingCapacity: true)
            }
        }
        try await saveStaged(dirty)
        exported += dirty
        state.context.joined.saved()
        if connector.writeBackAnchor { try await writeBackAnchors(exported, connector: connector, run: &run) }
    }

    /// Users to a `DirectoryService.apply` transaction, a page's worth: each commit writes every index page its inserts
    /// touched (the expression indexes take users in no order, so 250 users dirty about as many pages as 1,000), and
    /// four commits a page wrote the WAL four times over for an initial sync. At 1,000 a 10,000-user sync from Samba
    /// takes about 12% less CPU (2.6 s against 3.0 s) and half the system time; other writers wait for one such
    /// transaction (about 0.2 s on a quiet machine) at most.
    static let bulkSize = 1_000

    /// Creates new users together when each plainly creates: no cloud user matches it, there is nothing to restore,
    /// no other object holds its name or addresses, and no other user in the batch shares them. One read and one
    /// write transaction (`DirectoryService.apply`) serve the whole batch instead of several for each user, which is
    /// what an initial sync spends its time on. Returns the users created; the others (one the directory refused
    /// included: it alone is left out) go through `apply` one by one.
    func createInBulk(_ users: [StagedUser], context: inout ExportContext, run: inout SyncRun) async throws -> [StagedUser] {
        let tenantID = context.tenant.id
        var planned: [(user: StagedUser, desired: [String: JSONValue], incoming: IncomingUser)] = []
        for user in users {
            guard let anchor = user.sourceAnchor, context.deletedByAnchor[anchor] == nil else { continue }
            let desired = flow(user, anchor: anchor, tenant: context.tenant, domains: context.domains)
            planned.append((user, desired, IncomingUser(sourceAnchor: anchor, userPrincipalName: desired["userPrincipalName"]?.stringValue ?? "",
                                                        proxyAddresses: user.values("proxyAddresses"))))
        }
        let incoming = planned.map(\.incoming)
        let directory = self.directory
        let looked = try await store.read { tx in
            // Every key matching and the creates would look up, for the whole batch at once: a user none of whose keys
            // is held has no candidate and takes nothing (an initial sync's every user), and costs no further read.
            let keys = incoming.map(Self.lookedUpKeys)
            let held = try await tx.holders(tenant: tenantID, of: keys.flatMap { $0 })
            var out: [(candidates: Matcher.Candidates, taken: Bool)] = []
            for (user, looked) in zip(incoming, keys) {
                guard looked.contains(where: { held[$0] != nil }) else {
                    out.append((Matcher.Candidates(), false))
                    continue
                }
                let candidates = try await Self.candidates(user, tenant: tenantID, directory: directory, tx: tx)
                // Only live users hold user principal names, so candidates' byUPN is the name's holder.
                var taken = candidates.byUPN != nil
                for address in user.proxyAddresses where !taken {
                    taken = try await tx.holder(tenant: tenantID, key: UniqueKey("proxyAddresses", address)) != nil
                }
                out.append((candidates, taken))
            }
            return out
        }
        var keys: Set<String> = [], chosen: [Int] = []
        for (index, plan) in planned.enumerated() where !looked[index].taken {
            guard case .create = context.matcher.decide(plan.incoming, candidates: looked[index].candidates, now: clock.now) else { continue }
            // Compared as the store compares them: names and addresses without case, the anchor (base64) as written.
            let mine = Set(["anchor:" + plan.incoming.sourceAnchor, "upn:" + plan.incoming.userPrincipalName.lowercased()]
                           + plan.incoming.proxyAddresses.map { "proxy:" + $0.lowercased() })
            guard keys.isDisjoint(with: mine) else { continue }
            keys.formUnion(mine)
            chosen.append(index)
        }
        guard !chosen.isEmpty else { return [] }
        // The created users' staged objects, joined, commit with them.
        let users = chosen.map { planned[$0].user }
        let results = try await directory.apply(chosen.map { .create(.user, body: planned[$0].desired) }, tenant: tenantID,
                                                actor: SyncCycle.actor, allowReadOnly: true) { results, tx in
            try await tx.putStaged(Self.created(users, results).map(\.stored))
        }
        let out = Self.created(users, results)
        for user in out { if let cloud = user.cloudID { context.joined.join(cloud, to: user.id) } }
        run.added += out.count
        return out
    }

    /// The staged users whose creation succeeded, joined to what it created. One the directory refused (a key taken since
    /// the read) is left out: it goes through `apply`, which resolves conflicts.
    static func created(_ users: [StagedUser], _ results: [Result<StoredObject, DirectoryError>]) -> [StagedUser] {
        zip(users, results).compactMap { user, result in
            guard case .success(let object) = result else { return nil }
            var user = user
            user.object.cloudID = object.id
            user.object.state = "joined"
            user.object.details["error"] = nil
            user.object.conflict = false
            return user
        }
    }

    /// The unique keys `candidates` and `createInBulk` look up for a new user: its anchor, name, primary address and
    /// addresses.
    static func lookedUpKeys(_ user: IncomingUser) -> [UniqueKey] {
        [UniqueKey("onPremisesImmutableId", user.sourceAnchor), UniqueKey("userPrincipalName", user.userPrincipalName)]
            + (user.primarySMTP.map { [UniqueKey("proxyAddresses", "smtp:\($0)")] } ?? [])
            + user.proxyAddresses.map { UniqueKey("proxyAddresses", $0) }
    }

    /// Updates joined users together when each plainly updates its cloud user: matching keeps it there, no other object
    /// holds its name or addresses, and neither it nor its cloud user has a conflict from before. One read and one write
    /// transaction (`DirectoryService.apply`) serve the batch instead of four for each user, which is what a delta
    /// spends its time on. Returns the users written (or with nothing to write); the others (one the directory refused
    /// included) go through `apply` one by one.
    func updateInBulk(_ users: [StagedUser], context: ExportContext, run: inout SyncRun) async throws -> [StagedUser] {
        let tenantID = context.tenant.id
        var planned: [(user: StagedUser, desired: [String: JSONValue], incoming: IncomingUser, cloud: String)] = []
        for user in users {
            guard let cloud = user.cloudID?.lowercased(), let anchor = user.sourceAnchor, !user.object.conflict else { continue }
            let desired = flow(user, anchor: anchor, tenant: context.tenant, domains: context.domains)
            planned.append((user, desired, IncomingUser(sourceAnchor: anchor, userPrincipalName: desired["userPrincipalName"]?.stringValue ?? "",
                                                        proxyAddresses: user.values("proxyAddresses"), joinedCloudID: cloud), cloud))
        }
        guard !planned.isEmpty else { return [] }
        let incoming = planned.map { ($0.incoming, $0.cloud) }
        let directory = self.directory
        let looked = try await store.read { tx in
            var out: [(candidates: Matcher.Candidates, free: Bool, current: StoredObject?)] = []
            for (user, cloud) in incoming {
                let candidates = try await Self.candidates(user, tenant: tenantID, directory: directory, tx: tx)
                func free(_ key: UniqueKey) async throws -> Bool {
                    guard let holder = try await tx.holder(tenant: tenantID, key: key) else { return true }
                    return holder.lowercased() == cloud
                }
                var isFree = try await free(UniqueKey("userPrincipalName", user.userPrincipalName))
                for address in user.proxyAddresses where isFree { isFree = try await free(UniqueKey("proxyAddresses", address)) }
                out.append((candidates, isFree, try await tx.object(tenant: tenantID, id: cloud)))
            }
            return out
        }
        var writes: [DirectoryWrite] = []
        var chosen: [(index: Int, writes: Bool)] = []
        for (index, plan) in planned.enumerated() {
            let look = looked[index]
            guard look.free, let current = look.current, current.kind == .user, current.deletedAt == nil,
                  (current.body["onPremisesProvisioningErrors"]?.arrayValue ?? []).isEmpty,
                  case .update(let id) = context.matcher.decide(plan.incoming, candidates: look.candidates, now: clock.now), id == plan.cloud
            else { continue }
            // As `upsert` writes it: what differs, and the sync time only with a change.
            var patch: [String: JSONValue] = [:]
            for (key, value) in plan.desired where key != "onPremisesLastSyncDateTime" && current.body[key] != value { patch[key] = value }
            guard !patch.isEmpty else {
                chosen.append((index, false))
                continue
            }
            patch["onPremisesLastSyncDateTime"] = plan.desired["onPremisesLastSyncDateTime"]
            writes.append(.update(id: plan.cloud, kind: .user, patch: patch))
            chosen.append((index, true))
        }
        // The users' staged objects commit with their updates (or on their own when none has anything to write).
        let users = chosen.map { (planned[$0.index].user, $0.writes) }
        guard !writes.isEmpty else {
            let out = Self.updated(users, [])
            try await saveStaged(out)
            return out
        }
        let results = try await directory.apply(writes, tenant: tenantID, actor: SyncCycle.actor, allowReadOnly: true) { results, tx in
            try await tx.putStaged(Self.updated(users, results).map(\.stored))
        }
        run.updated += results.filter { if case .success = $0 { true } else { false } }.count
        return Self.updated(users, results)
    }

    /// The staged users left joined by a batch of updates: those whose update succeeded, and those with none to make.
    static func updated(_ users: [(user: StagedUser, writes: Bool)], _ results: [Result<StoredObject, DirectoryError>]) -> [StagedUser] {
        var results = results.makeIterator()
        return users.compactMap { user, wrote in
            if wrote, case .failure = results.next() { return nil }
            var user = user
            user.object.state = "joined"
            user.object.details["error"] = nil
            return user
        }
    }

    static func errorJSON(_ user: StagedUser, code: String, message: String) -> JSONValue {
        ["id": .string(user.object.id), "sourceAnchor": .optional(user.sourceAnchor), "distinguishedName": .string(user.dn),
         "code": .string(code), "message": .string(message)]
    }

    /// Deletes the cloud object of a staged object that left AD (or the connector's scope). A deleted object leaves
    /// the staging area; one that only left the scope stays there, with its attributes, in case it comes back (a
    /// delta then brings only what changed).
    func delete(_ user: StagedUser, tenant: String) async throws {
        if let cloud = user.cloudID {
            do {
                try await directory.delete(tenant: tenant, id: cloud, kind: user.cloudKind, actor: Self.actor)
            } catch let error as DirectoryError where error.code == .notFound {
                // Deleted in the cloud already.
            }
        }
        if user.isDeleted {
            try await removeStaged(user, tenant: tenant)
        } else {
            var kept = user
            kept.object.cloudID = nil
            kept.object.state = "outOfScope"
            try await saveStaged([kept])
        }
    }

    func removeStaged(_ user: StagedUser, tenant: String) async throws {
        let id = user.id
        try await store.write { tx in try await tx.removeStaged(tenant: tenant, ids: [id]) }
    }

    /// Writes staged objects whole, many to a statement and a transaction, reading nothing first.
    func saveStaged(_ users: [StagedUser]) async throws {
        guard !users.isEmpty else { return }
        let objects = users.map(\.stored)
        try await store.write { tx in try await tx.putStaged(objects) }
    }

    /// Matches one staged user and writes the outcome to the directory.
    func apply(_ user: inout StagedUser, context: inout ExportContext, run: inout SyncRun) async throws {
        guard let anchor = user.sourceAnchor else { return }
        user.object.conflict = false
        let tenant = context.tenant
        var desired = flow(user, anchor: anchor, tenant: tenant, domains: context.domains)
        let upn = desired["userPrincipalName"]?.stringValue ?? ""
        let incoming = IncomingUser(sourceAnchor: anchor, userPrincipalName: upn, proxyAddresses: user.values("proxyAddresses"),
                                    joinedCloudID: user.cloudID)
        let candidates = try await self.candidates(incoming, tenant: tenant.id)
        let decision = context.matcher.decide(incoming, candidates: candidates, now: clock.now)
        let tenantID = tenant.id
        switch decision {
        case .create:
            // A user this object left behind (moved out of scope, say) is restored, as Entra does, not created again.
            var restorable: String?
            for candidate in context.deletedByAnchor[anchor] ?? [] where try await context.joined.holder(of: candidate) == nil {
                restorable = candidate
                break
            }
            if let deleted = restorable {
                _ = try await directory.restore(tenant: tenantID, id: deleted, actor: SyncCycle.actor)
                context.deletedByAnchor[anchor]?.removeAll { $0 == deleted }
                user.object.cloudID = deleted
                context.joined.join(deleted, to: user.object.id)
                guard try await resolveConflicts(&desired, of: &user, cloudID: deleted, context: context, run: &run) else { return }
                try await upsert(&user, kind: .user, desired: desired, tenant: tenantID, run: &run)
                return
            }
            guard try await resolveConflicts(&desired, of: &user, cloudID: nil, context: context, run: &run) else { return }
            let created = try await directory.create(tenant: tenantID, kind: .user, body: desired, actor: SyncCycle.actor, allowReadOnly: true)
            user.object.cloudID = created.id
            user.object.state = "joined"
            user.object.details["error"] = nil
            context.joined.join(created.id, to: user.object.id)
            run.added += 1
        case .join(let id, let kind):
            guard try await resolveConflicts(&desired, of: &user, cloudID: id, context: context, run: &run) else { return }
            _ = try await directory.update(tenant: tenantID, id: id, kind: .user, patch: desired, actor: SyncCycle.actor, allowReadOnly: true)
            user.object.cloudID = id
            context.joined.join(id, to: user.object.id)
            user.object.state = "joined"
            user.object.details["matchedBy"] = .string(kind.rawValue)
            user.object.details["error"] = nil
            run.updated += 1
        case .update(let id), .updateAnchor(let id):
            if user.cloudID != id {
                // Joining again by anchor: only if no other on-premises object holds that user.
                if let other = try await context.joined.holder(of: id), other != user.object.id {
                    quarantine(&user, code: "AttributeValueMustBeUnique",
                               message: "Another on-premises object already synchronizes to user '\(upn)' with the source anchor '\(anchor)'.",
                               run: &run)
                    return
                }
                user.object.cloudID = id
                user.object.state = "joined"
                user.object.details["error"] = nil
                context.joined.join(id, to: user.object.id)
            }
            guard try await resolveConflicts(&desired, of: &user, cloudID: id, context: context, run: &run) else { return }
            try await upsert(&user, kind: .user, desired: desired, tenant: tenantID, run: &run)
        case .quarantine(let code, let message):
            quarantine(&user, code: code.rawValue, message: message, run: &run)
            try await directory.recordEvent(tenant: tenantID, objectId: user.object.id, kind: .syncObject,
                                            activity: "Quarantine on-premises object (\(code.rawValue))", actor: SyncCycle.actor,
                                            details: ["displayName": .string(user.dn), "sourceAnchor": .string(anchor), "message": .string(message)])
        }
    }

    func quarantine(_ user: inout StagedUser, code: String, message: String, run: inout SyncRun) {
        // The same error again keeps the time it first occurred.
        let earlier = user.state == "quarantined" && user.object.details["error"]?["code"]?.stringValue == code
            ? user.object.details["error"]?["occurredDateTime"] : nil
        user.object.state = "quarantined"
        user.object.details["error"] = ["code": .string(code), "message": .string(message),
                                     "occurredDateTime": earlier ?? .string(Timestamp.format(clock.now))]
        run.quarantined += 1
        run.errors.append(Self.errorJSON(user, code: code, message: message))
    }

    /// Duplicate attribute resiliency, for every write of a synced user: a user principal name another object holds
    /// becomes `prefix+NNNN@<initial domain>` (the same one for as long as the conflict lasts), a proxy address
    /// another object holds is left off, and each is recorded in `onPremisesProvisioningErrors`, keeping the time it
    /// first occurred. Once the other object lets go, the next write (a delta, or the hourly release) puts the
    /// on-premises values back and the error goes. With `quarantineUponUpnConflictEnabled` or
    /// `quarantineUponProxyAddressesConflictEnabled` a conflict quarantines the object instead: returns false.
    func resolveConflicts(_ desired: inout [String: JSONValue], of user: inout StagedUser, cloudID: String?, context: ExportContext,
                          run: inout SyncRun) async throws -> Bool {
        let tenant = context.tenant, settings = context.settings
        let tenantID = tenant.id
        let upn = desired["userPrincipalName"]?.stringValue ?? ""
        let proxies = user.values("proxyAddresses")
        let (upnHolder, proxyHolders, current) = try await store.read { tx in
            var holders: [String?] = []
            for address in proxies { holders.append(try await tx.holder(tenant: tenantID, key: UniqueKey("proxyAddresses", address))) }
            let current: StoredObject? = if let cloudID { try await tx.object(tenant: tenantID, id: cloudID) } else { nil }
            return (try await tx.holder(tenant: tenantID, key: UniqueKey("userPrincipalName", upn)), holders, current)
        }
        let own = cloudID?.lowercased()
        func taken(_ holder: String?) -> Bool { holder != nil && holder != own }
        let upnTaken = taken(upnHolder)
        let takenProxies = Set(zip(proxies, proxyHolders).filter { taken($0.1) }.map(\.0))
        if upnTaken && settings.quarantineUponUpnConflict || !takenProxies.isEmpty && settings.quarantineUponProxyAddressesConflict {
            let value = upnTaken && settings.quarantineUponUpnConflict ? "user principal name '\(upn)'" : "proxy address '\(takenProxies.sorted()[0])'"
            quarantine(&user, code: "AttributeValueMustBeUnique",
                       message: "The \(value) is already held by another object; the object is quarantined until the conflict is resolved.", run: &run)
            user.object.conflict = true
            return false
        }
        let earlier = current?.body["onPremisesProvisioningErrors"]?.arrayValue ?? []
        func same(_ a: JSONValue, _ b: JSONValue) -> Bool {
            a["propertyCausingError"] == b["propertyCausingError"] && a["value"]?.stringValue?.lowercased() == b["value"]?.stringValue?.lowercased()
        }
        var resolved = AttributeResiliency.resolve(
            userPrincipalName: upn, proxyAddresses: proxies, initialDomain: tenant.domain, now: Timestamp.format(clock.now),
            upnTaken: { $0 == upn ? upnTaken : false }, proxyTaken: { takenProxies.contains($0) })
        // The user keeps the name resiliency gave it while the conflict lasts.
        if upnTaken, let name = current?.body["userPrincipalName"]?.stringValue,
           earlier.contains(where: { $0["propertyCausingError"] == "UserPrincipalName" && $0["value"]?.stringValue?.lowercased() == upn.lowercased() }) {
            resolved.userPrincipalName = name
        }
        let errors = resolved.errors.map { error in earlier.first { same($0, error) } ?? error }
        desired["userPrincipalName"] = .string(resolved.userPrincipalName)
        desired["proxyAddresses"] = .array(resolved.proxyAddresses.map { .string($0) })
        desired["onPremisesProvisioningErrors"] = .array(errors)
        user.object.conflict = !errors.isEmpty
        for error in errors where !earlier.contains(where: { same($0, error) }) {
            run.errors.append(Self.errorJSON(user, code: "AttributeValueMustBeUnique",
                                             message: "\(error["propertyCausingError"]?.stringValue ?? "") '\(error["value"]?.stringValue ?? "")' is held by another object; duplicate attribute resiliency applied."))
        }
        return true
    }

    /// Creates or updates the cloud group of an on-premises group. Groups are not matched to cloud groups (Entra
    /// matches only mail-enabled groups, by address); a synced group is created with its own id.
    func applyGroup(_ group: inout StagedUser, tenant: TenantRecord, run: inout SyncRun) async throws {
        let sam = group.value("sAMAccountName") ?? group.value("name") ?? "group"
        let groupType = Int(group.value("groupType") ?? "") ?? 0
        let domain = group.dn.split(separator: ",").filter { $0.lowercased().hasPrefix("dc=") }.map { $0.dropFirst(3) }.joined(separator: ".")
        let mail = group.value("mail")
        var desired: [String: JSONValue] = [
            "displayName": .string(group.value("displayName") ?? group.value("name") ?? sam),
            "description": .optional(group.value("description")),
            "mailEnabled": .bool(mail != nil), "mail": .optional(mail),
            "securityEnabled": .bool(groupType & Int(Int32.min) != 0 || groupType < 0),
            "mailNickname": .string(sam.filter { $0.isLetter || $0.isNumber || "-_.".contains($0) }),
            "proxyAddresses": .array(group.values("proxyAddresses").map { .string($0) }),
            "onPremisesSyncEnabled": true, "onPremisesLastSyncDateTime": .string(Timestamp.format(clock.now)),
            "onPremisesSamAccountName": .string(sam), "onPremisesDomainName": .optional(domain.isEmpty ? nil : domain),
            "onPremisesSecurityIdentifier": .optional(group.value("objectSid").flatMap { Data(base64Encoded: $0) }.flatMap { Self.sidString(Array($0)) }),
        ]
        if desired["mailNickname"] == "" { desired["mailNickname"] = "group" }
        try await upsert(&group, kind: .group, desired: desired, tenant: tenant.id, run: &run)
    }

    /// Creates the staged object's cloud object, or updates what differs from `desired` (the sync time is written
    /// only with a change), and records the join.
    func upsert(_ staged: inout StagedUser, kind: ObjectKind, desired: [String: JSONValue], tenant: String, run: inout SyncRun) async throws {
        if let cloud = staged.cloudID, let current = try await store.read({ tx in try await tx.object(tenant: tenant, id: cloud) }),
           current.deletedAt == nil {
            var patch: [String: JSONValue] = [:]
            for (key, value) in desired where key != "onPremisesLastSyncDateTime" && current.body[key] != value { patch[key] = value }
            if !patch.isEmpty {
                patch["onPremisesLastSyncDateTime"] = desired["onPremisesLastSyncDateTime"]
                _ = try await directory.update(tenant: tenant, id: cloud, kind: kind, patch: patch, actor: SyncCycle.actor, allowReadOnly: true)
                run.updated += 1
            }
        } else if kind == .group {
            // A group is never matched: its staged object, joined, commits with the group, so a run resumed after its
            // node was killed finds the join instead of creating the group twice.
            var joined = staged
            joined.object.state = "joined"
            joined.object.details["error"] = nil
            let pending = joined
            let results = try await directory.apply([.create(.group, body: desired)], tenant: tenant, actor: SyncCycle.actor, allowReadOnly: true) { results, tx in
                guard case .success(let group)? = results.first else { return }
                var stored = pending
                stored.object.cloudID = group.id
                try await tx.putStaged([stored.stored])
            }
            staged.object.cloudID = try results[0].get().id
            run.added += 1
        } else {
            let created = try await directory.create(tenant: tenant, kind: kind, body: desired, actor: SyncCycle.actor, allowReadOnly: true)
            staged.object.cloudID = created.id
            run.added += 1
        }
        staged.object.state = "joined"
        staged.object.details["error"] = nil
    }

    /// Creates or updates the device of an on-premises computer (hybrid joined: `trustType` ServerAd), with the
    /// computer's objectGUID as its `deviceId`.
    func applyDevice(_ computer: inout StagedUser, tenant: TenantRecord, run: inout SyncRun) async throws {
        guard let guid = computer.value("objectGUID").flatMap({ Data(base64Encoded: $0) }), guid.count == 16 else { return }
        let uac = Int(computer.value("userAccountControl") ?? "") ?? 4096
        let name = computer.value("name") ?? String((computer.value("sAMAccountName") ?? "computer").dropLast())
        let desired: [String: JSONValue] = [
            "displayName": .string(name), "deviceId": .string(Self.guidString(Array(guid))),
            "operatingSystem": .string(computer.value("operatingSystem") ?? "Windows"),
            "operatingSystemVersion": .string(computer.value("operatingSystemVersion") ?? ""),
            "accountEnabled": .bool(uac & 0x2 == 0), "trustType": "ServerAd",
            "onPremisesSyncEnabled": true, "onPremisesLastSyncDateTime": .string(Timestamp.format(clock.now)),
            "onPremisesSecurityIdentifier": .optional(computer.value("objectSid").flatMap { Data(base64Encoded: $0) }.flatMap { Self.sidString(Array($0)) }),
        ]
        if computer.cloudID == nil, let registered = try await registeredDevice(desired, tenant: tenant.id) {
            computer.object.cloudID = registered
        }
        try await upsert(&computer, kind: .device, desired: desired, tenant: tenant.id, run: &run)
    }

    /// The device the device registration service made for this computer when it joined through Kerberos (before any
    /// sync brought it), which sync joins instead of creating a second: the one whose deviceId is the computer's
    /// objectGUID, or else the one with its SID.
    func registeredDevice(_ desired: [String: JSONValue], tenant: String) async throws -> String? {
        try await store.read { tx -> String? in
            if let deviceID = desired["deviceId"]?.stringValue, let id = try await tx.holder(tenant: tenant, key: UniqueKey("deviceId", deviceID)),
               try await tx.object(tenant: tenant, id: id)?.deletedAt == nil {
                return id
            }
            guard let sid = desired["onPremisesSecurityIdentifier"]?.stringValue else { return nil }
            return try await tx.query(ObjectQuery(tenant: tenant, kinds: [.device],
                                                  filter: .compare(PropertyPath(["onPremisesSecurityIdentifier"]), .eq, .string(sid)),
                                                  limit: 1)).first?.id
        }
    }

    /// A GUID's 16 bytes as AD stores them, in the string form Windows shows (the first three fields little-endian).
    static func guidString(_ b: [UInt8]) -> String {
        let order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15]
        let hex = order.map { String(b[$0], radix: 16).leftPad2 }
        return [hex[0..<4], hex[4..<6], hex[6..<8], hex[8..<10], hex[10..<16]].map { $0.joined() }.joined(separator: "-")
    }

    /// Writes the objectGUID of each joined user without an `ms-DS-ConsistencyGuid` into it (Entra Connect's
    /// ConsistencyGuid writeback); the next delta brings the attribute back, with the same anchor.
    func writeBackAnchors(_ users: [StagedUser], connector: SyncConnector, run: inout SyncRun) async throws {
        let pending = users.filter { $0.isUser && $0.cloudID != nil && !$0.isDeleted && $0.value("mS-DS-ConsistencyGuid") == nil }
        guard !pending.isEmpty else { return }
        var errors: [JSONValue] = []
        try await Self.connect(connector).closing { ldap in
            for user in pending {
                guard let guid = user.value("objectGUID").flatMap({ Data(base64Encoded: $0) }) else { continue }
                do {
                    try await ldap.modify(dn: user.dn, [LDAPModification(.replace, "mS-DS-ConsistencyGuid", [Array(guid)])])
                } catch let error as LDAPError {
                    errors.append(Self.errorJSON(user, code: "AnchorWritebackFailed", message: error.description))
                }
            }
        }
        run.errors += errors
    }

    /// Makes a synced group's members exactly the synced objects its on-premises `member` names.
    /// Returns whether the members changed.
    @discardableResult
    func syncMembers(of group: String, to wanted: Set<String>, tenant: String, run: inout SyncRun) async throws -> Bool {
        let current = Set(try await store.read { tx in try await tx.targets(tenant: tenant, source: group, relation: "members") })
        for member in wanted.subtracting(current) {
            try await directory.addLink(tenant: tenant, source: group, relation: "members", target: member, actor: SyncCycle.actor, allowSynced: true)
        }
        for member in current.subtracting(wanted) {
            try await directory.removeLink(tenant: tenant, source: group, relation: "members", target: member, actor: SyncCycle.actor,
                                           allowSynced: true)
        }
        return wanted != current
    }

    /// The cloud users matching may consider, read in one transaction.
    func candidates(_ incoming: IncomingUser, tenant: String) async throws -> Matcher.Candidates {
        let directory = self.directory
        return try await store.read { tx in try await Self.candidates(incoming, tenant: tenant, directory: directory, tx: tx) }
    }

    static func candidates(_ incoming: IncomingUser, tenant: String, directory: DirectoryService,
                           tx: any DirectoryReader) async throws -> Matcher.Candidates {
        func cloudUser(_ id: String?) async throws -> CloudUser? {
            guard let id, let object = try await tx.object(tenant: tenant, id: id), object.kind == .user, object.deletedAt == nil else { return nil }
            let roles = try await directory.directoryRoles(tenant: tenant, principal: id, tx: tx)
            return CloudUser(id: id, userPrincipalName: object.body["userPrincipalName"]?.stringValue ?? "",
                             proxyAddresses: object.body["proxyAddresses"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                             onPremisesImmutableId: object.body["onPremisesImmutableId"]?.stringValue,
                             onPremisesSyncEnabled: object.body["onPremisesSyncEnabled"]?.boolValue ?? false, holdsDirectoryRole: !roles.isEmpty)
        }
        var candidates = Matcher.Candidates()
        candidates.joined = try await cloudUser(incoming.joinedCloudID)
        guard candidates.joined == nil else { return candidates }
        candidates.byAnchor = try await cloudUser(try await tx.holder(tenant: tenant, key: UniqueKey("onPremisesImmutableId", incoming.sourceAnchor)))
        if let smtp = incoming.primarySMTP {
            candidates.bySMTP = try await cloudUser(try await tx.holder(tenant: tenant, key: UniqueKey("proxyAddresses", "smtp:\(smtp)")))
        }
        candidates.byUPN = try await cloudUser(try await tx.holder(tenant: tenant, key: UniqueKey("userPrincipalName", incoming.userPrincipalName)))
        return candidates
    }

    /// The cloud user's properties from the AD user's attributes (Entra Connect's default attribute flow).
    func flow(_ user: StagedUser, anchor: String, tenant: TenantRecord, domains: Set<String>) -> [String: JSONValue] {
        let sam = user.first(lowercased: "samaccountname") ?? ""
        let adUPN = user.first(lowercased: "userprincipalname") ?? "\(sam)@\(tenant.domain)"
        // A UPN whose suffix is not a verified domain of the tenant takes the initial domain, as in Entra.
        let parts = adUPN.split(separator: "@", maxSplits: 1)
        let suffix = parts.count == 2 ? String(parts[1]).lowercased() : ""
        let verified = domains.contains(suffix)
        let upn = verified ? adUPN : "\(parts.first ?? Substring(sam))@\(tenant.domain)"
        let uac = Int(user.first(lowercased: "useraccountcontrol") ?? "") ?? 512
        var extensions: [String: JSONValue] = [:]
        extensions.reserveCapacity(Self.extensionAttributes.count)
        for (property, attribute) in Self.extensionAttributes { extensions[property] = .optional(user.first(lowercased: attribute)) }
        let domain = user.dn.split(separator: ",").filter { $0.lowercased().hasPrefix("dc=") }.map { $0.dropFirst(3) }.joined(separator: ".")
        return [
            "accountEnabled": .bool(uac & 0x2 == 0),
            "displayName": .string(user.first(lowercased: "displayname") ?? user.first(lowercased: "name") ?? sam),
            "givenName": .optional(user.first(lowercased: "givenname")), "surname": .optional(user.first(lowercased: "sn")),
            "mail": .optional(user.first(lowercased: "mail")), "department": .optional(user.first(lowercased: "department")),
            "jobTitle": .optional(user.first(lowercased: "title")),
            "businessPhones": .array(user.values("telephoneNumber").map { .string($0) }),
            "mailNickname": .string(sam.isEmpty ? String(upn.split(separator: "@").first ?? "") : sam),
            "userPrincipalName": .string(upn),
            "proxyAddresses": .array(user.values("proxyAddresses").map { .string($0) }),
            "onPremisesImmutableId": .string(anchor), "onPremisesSyncEnabled": true,
            "onPremisesLastSyncDateTime": .string(Timestamp.format(clock.now)),
            "onPremisesSamAccountName": .optional(sam.isEmpty ? nil : sam),
            "onPremisesUserPrincipalName": .string(adUPN),
            "onPremisesDistinguishedName": .string(user.dn), "onPremisesDomainName": .optional(domain.isEmpty ? nil : domain),
            "onPremisesSecurityIdentifier": .optional(user.first(lowercased: "objectsid").flatMap { Data(base64Encoded: $0) }
                .flatMap { Self.sidString(Array($0)) }),
            "onPremisesExtensionAttributes": .object(extensions),
            // Duplicate attribute resiliency (`resolveConflicts`) puts the conflicts here.
            "onPremisesProvisioningErrors": [],
        ]
    }

    /// `onPremisesExtensionAttributes`' properties and the AD attributes (lower case) they flow from.
    static let extensionAttributes: [(property: String, attribute: String)] = (1...15).map {
        ("extensionAttribute\($0)", "extensionattribute\($0)")
    }

    /// A binary SID as `S-1-5-21-…`.
    static func sidString(_ bytes: [UInt8]) -> String? {
        guard bytes.count >= 8, bytes.count == 8 + Int(bytes[1]) * 4 else { return nil }
        var authority: UInt64 = 0
        for byte in bytes[2..<8] { authority = authority << 8 | UInt64(byte) }
        var parts = ["S", String(bytes[0]), String(authority)]
        for i in 0..<Int(bytes[1]) {
            let o = 8 + i * 4
            parts.append(String(UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16 | UInt32(bytes[o + 3]) << 24))
        }
        return parts.joined(separator: "-")
    }
}

extension String {
    var leftPad2: String { count >= 2 ? self : "0" + self }
}
