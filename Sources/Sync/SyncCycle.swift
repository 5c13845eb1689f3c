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

    /// Runs every connector (or the one named) once.
    public func run(tenant: TenantRecord, connector name: String? = nil, full: Bool = false) async throws -> [SyncRun] {
        var settings = try await SyncSettings.load(tenant: tenant.id, store: store)
        let chosen = settings.connectors.filter { name == nil || $0.name == name }
        guard !chosen.isEmpty else {
            throw DirectoryError.badRequest(name.map { "No sync connector named '\($0)'." } ?? "No sync connector is configured: add one with `tessera sync connector add`.")
        }
        var runs: [SyncRun] = []
        for connector in chosen {
            var run = SyncRun(id: Identifier.makeTimeOrdered(at: clock.now), connector: connector.name, at: Timestamp.format(clock.now))
            run.full = full || connector.cookie == nil || connector.ldifFile != nil
            do {
                var export = try await beginExport(tenant: tenant, connector: connector, settings: settings)
                var cookie: [UInt8]?
                if let file = connector.ldifFile {
                    // Read as a stream, a page at a time.
                    var reader = try LDIF.Reader(path: file)
                    var page: [LDAPEntry] = []
                    page.reserveCapacity(Self.pageSize)
                    while let entry = try reader.next() {
                        page.append(entry)
                        if page.count == Self.pageSize {
                            try await exportPage(page, state: &export, run: &run)
                            page.removeAll(keepingCapacity: true)
                        }
                    }
                    try await exportPage(page, state: &export, run: &run)
                } else {
                    cookie = try await importPages(connector, full: run.full) { page in try await exportPage(page, state: &export, run: &run) }
                }
                try await finishExport(&export, run: &run)
                if let index = settings.connectors.firstIndex(where: { $0.name == connector.name }) { settings.connectors[index].cookie = cookie }
            } catch let error as LDAPError {
                run.status = "failed"
                run.errors.append(["code": "ConnectorError", "message": .string(error.description)])
            }
            runs.append(run)
            settings.runs.append(run.json)
        }
        try await releaseResolvedConflicts(tenant: tenant)
        let cutoff = Timestamp.format(clock.now.addingTimeInterval(-7 * 86_400))
        settings.runs = Array(settings.runs.filter { ($0["at"]?.stringValue ?? "") >= cutoff }.suffix(200))
        try await settings.save(tenant: tenant.id, store: store)
        for run in runs {
            try await directory.recordEvent(tenant: tenant.id, objectId: run.id, kind: .syncObject, activity: "Directory synchronization run",
                                            actor: Self.actor, details: ["connector": .string(run.connector), "status": .string(run.status),
                                                                         "added": .int(Int64(run.added)), "updated": .int(Int64(run.updated)),
                                                                         "deleted": .int(Int64(run.deleted)), "quarantined": .int(Int64(run.quarantined))])
        }
        return runs
    }

    // MARK: Import

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

    /// Reads the connector's users, every one (full) or what changed since its DirSync cookie, and hands each page to
    /// `body` as it arrives. Returns the new cookie, which is stored only after the export succeeded.
    func importPages(_ connector: SyncConnector, full: Bool, _ body: ([LDAPEntry]) async throws -> Void) async throws -> [UInt8] {
        // DirSync reads from the root of the naming context; the connector's scope is applied when exporting.
        let root = connector.baseDN.split(separator: ",").filter { $0.trimmingCharacters(in: .whitespaces).lowercased().hasPrefix("dc=") }
            .joined(separator: ",")
        return try await Self.connect(connector).closing { ldap in
            var cookie = full ? [] : connector.cookie ?? []
            var more = true
            while more {
                let page = try await ldap.search(base: root, filter: "(|(objectClass=user)(objectClass=group))", attributes: Self.userAttributes,
                                                 controls: [.dirSync(flags: 0, cookie: cookie)])
                guard let control = page.controls.first(where: { $0.oid == LDAPControl.dirSyncOID }) else {
                    throw LDAPError("the server did not answer the DirSync control (the bind account needs Replicating Directory Changes)")
                }
                (more, cookie) = try control.cookie()
                try await body(page.entries)
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
        var settings = try await SyncSettings.load(tenant: tenant, store: store)
        for index in settings.connectors.indices where settings.connectors[index].name == user.object.connector {
            settings.connectors[index].cookie = nil
        }
        try await settings.save(tenant: tenant, store: store)
        try await directory.recordEvent(tenant: tenant, objectId: user.object.id, kind: .syncObject,
                                        activity: "Delete quarantined on-premises object", actor: Self.actor,
                                        details: ["displayName": .string(user.dn)])
    }

    /// Carries out the deletions a run held back at the accidental-deletion threshold, once.
    @discardableResult
    public func approveDeletions(tenant: TenantRecord, run id: String) async throws -> Int {
        var settings = try await SyncSettings.load(tenant: tenant.id, store: store)
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
        if case .object(var run) = settings.runs[index] {
            run["status"] = "deletions-approved"
            run["deleted"] = .int(Int64(deleted))
            settings.runs[index] = .object(run)
        }
        try await settings.save(tenant: tenant.id, store: store)
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
