import Foundation
import TesseraCore

extension CrossTenantSyncImport {
    /// The B2B user's properties in the target from the source user (Azure2Azure's mappings): the user principal name
    /// `local_domain#EXT#@<target's initial domain>`, as an invited user's.
    static func desired(_ user: CrossTenantSyncBatch.User, target: TenantRecord) -> [String: JSONValue] {
        let parts = user.userPrincipalName.split(separator: "@", maxSplits: 1).map(String.init)
        let local = parts.first ?? user.id, domain = parts.count == 2 ? parts[1] : "unknown"
        let nickname = "\(local)_\(domain)#EXT#"
        return [
            "accountEnabled": .bool(user.accountEnabled), "displayName": .string(user.displayName),
            "givenName": .optional(user.givenName), "surname": .optional(user.surname), "mail": .optional(user.mail),
            "department": .optional(user.department), "jobTitle": .optional(user.jobTitle), "userType": .string(user.userType),
            "mailNickname": .string(nickname), "userPrincipalName": .string("\(nickname)@\(target.domain)"),
        ]
    }

    /// Matches and writes one slice of a batch's users.
    func applyUsers(_ users: [CrossTenantSyncBatch.User], run: inout Run, report: inout CrossTenantSyncReport) async throws {
        let tenant = run.target.id, source = run.source
        let ids = users.map { Self.stagingID(source: source, object: $0.id) }
        var staged = try await self.staged(ids, tenant: tenant)
        let directory = self.directory, cutoff = clock.now.addingTimeInterval(-30 * 86_400)
        // A user that left the scope and comes back within 30 days gets its deleted user back, as Entra restores it.
        for id in ids {
            guard let user = staged[id], user.state == "outOfScope", let cloud = user.cloudID else { continue }
            let current = try await store.read { tx in try await tx.object(tenant: tenant, id: cloud) }
            if let deleted = current?.deletedAt, let at = Timestamp.parse(deleted), at >= cutoff {
                _ = try await directory.restore(tenant: tenant, id: cloud, actor: Self.actor)
            } else if current?.deletedAt != nil || current == nil {
                staged[id]?.object.cloudID = nil
            }
        }
        let desired = users.map { Self.desired($0, target: run.target) }
        let lookups = users.enumerated().map { index, user in
            (staged: staged[ids[index]]?.cloudID, anchor: user.id, upn: desired[index]["userPrincipalName"]?.stringValue ?? "")
        }
        let looked = try await store.read { tx in
            var out: [(candidates: Matcher.Candidates, current: [String: StoredObject])] = []
            for lookup in lookups {
                var candidates = Matcher.Candidates(), current: [String: StoredObject] = [:]
                func cloudUser(_ id: String?, joined: Bool) async throws -> CloudUser? {
                    guard let id, let object = try await tx.object(tenant: tenant, id: id), object.kind == .user, object.deletedAt == nil else { return nil }
                    current[id] = object
                    let roles = joined ? [] : try await directory.directoryRoles(tenant: tenant, principal: id, tx: tx)
                    return CloudUser(id: id, userPrincipalName: object.body["userPrincipalName"]?.stringValue ?? "",
                                     onPremisesImmutableId: joined ? "\(source)/\(lookup.anchor)" : object.body["onPremisesImmutableId"]?.stringValue,
                                     onPremisesSyncEnabled: joined || object.body["onPremisesSyncEnabled"]?.boolValue == true,
                                     holdsDirectoryRole: !roles.isEmpty)
                }
                candidates.joined = try await cloudUser(lookup.staged, joined: true)
                if candidates.joined == nil {
                    candidates.byAnchor = try await cloudUser(try await DirectoryService.externalUser(tenant: tenant, homeTenant: source, homeUser: lookup.anchor, tx: tx),
                                                              joined: false)
                    candidates.byUPN = try await cloudUser(try await tx.holder(tenant: tenant, key: UniqueKey("userPrincipalName", lookup.upn)), joined: false)
                }
                out.append((candidates, current))
            }
            return out
        }
        var creates: [(index: Int, user: DirectoryService.SyncedExternalUser)] = []
        var updates: [(index: Int, cloud: String, patch: [String: JSONValue], link: Bool)] = []
        var unchanged: [(index: Int, cloud: String)] = []
        let now = Timestamp.format(clock.now)
        for (index, user) in users.enumerated() {
            let id = ids[index]
            var item = staged[id] ?? newStaged(id, run: run, type: "User")
            item.object.details["displayName"] = .string(user.displayName)
            staged[id] = item
            let incoming = IncomingUser(sourceAnchor: run.anchor(user.id), userPrincipalName: lookups[index].upn, joinedCloudID: item.cloudID)
            switch run.matcher.decide(incoming, candidates: looked[index].candidates, now: clock.now) {
            case .create:
                var body = desired[index]
                body["externalUserState"] = .string(run.automaticRedemption ? "Accepted" : "PendingAcceptance")
                body["externalUserStateChangeDateTime"] = .string(now)
                body["identities"] = [["signInType": "federated", "issuer": .string(run.batch.sourceIssuer), "issuerAssignedId": .string(user.id)]]
                creates.append((index, .init(body: body, homeTenantID: source, homeUserID: user.id, origin: "synchronizationJob:\(run.batch.jobID)")))
            case .update(let cloud), .updateAnchor(let cloud), .join(let cloud, _):
                let joining = looked[index].candidates.joined == nil
                var patch: [String: JSONValue] = [:]
                for (key, value) in desired[index] where looked[index].current[cloud]?.body[key] != value { patch[key] = value }
                if patch.isEmpty && !joining { unchanged.append((index, cloud)) } else { updates.append((index, cloud, patch, joining)) }
            case .quarantine(let code, let message):
                staged[id]?.object.state = "quarantined"
                staged[id]?.object.details["error"] = ["code": .string(code.rawValue), "message": .string(message), "occurredDateTime": .string(now)]
                report.skipped += 1
                report.entries.append(Self.entry(user.id, user.displayName, "User", "other", "skipped", target: nil, reason: message,
                                                 error: .init(code: code.rawValue, message: message)))
            }
        }
        func joined(_ index: Int, _ cloud: String) {
            staged[ids[index]]?.object.cloudID = cloud
            staged[ids[index]]?.object.state = "joined"
            staged[ids[index]]?.object.details["error"] = nil
        }
        func failed(_ index: Int, _ action: String, _ error: DirectoryError) {
            staged[ids[index]]?.object.state = "error"
            staged[ids[index]]?.object.details["error"] = ["code": .string(error.code.rawValue), "message": .string(error.message), "occurredDateTime": .string(now)]
            report.failed += 1
            report.entries.append(Self.entry(users[index].id, users[index].displayName, "User", action, "failure", target: nil,
                                             reason: error.message, error: .init(code: error.code.rawValue, message: error.message)))
        }
        let results = try await directory.createSyncedExternalUsers(tenant: tenant, users: creates.map(\.user), actor: Self.actor)
        for (plan, result) in zip(creates, results) {
            switch result {
            case .success(let object):
                joined(plan.index, object.id)
                report.added += 1
                report.entries.append(Self.entry(users[plan.index].id, users[plan.index].displayName, "User", "create", target: object.id,
                                                 reason: "User '\(users[plan.index].userPrincipalName)' was created in the target tenant."))
            case .failure(let error): failed(plan.index, "create", error)
            }
        }
        for plan in updates where plan.link {
            do {
                try await directory.linkSyncedExternalUser(tenant: tenant, guestID: plan.cloud, homeTenantID: source, homeUserID: users[plan.index].id,
                                                           origin: "synchronizationJob:\(run.batch.jobID)")
            } catch let error as DirectoryError {
                failed(plan.index, "update", error)
            }
        }
        let writes = updates.filter { !$0.patch.isEmpty && staged[ids[$0.index]]?.state != "error" }
        let written = try await directory.apply(writes.map { .update(id: $0.cloud, kind: .user, patch: $0.patch) }, tenant: tenant,
                                                actor: Self.actor, allowReadOnly: true)
        var outcome: [Int: DirectoryError?] = [:]
        for (plan, result) in zip(writes, written) {
            if case .failure(let error) = result { outcome[plan.index] = .some(error) } else { outcome[plan.index] = .some(nil) }
        }
        for plan in updates where staged[ids[plan.index]]?.state != "error" {
            if case .some(.some(let error)) = outcome[plan.index] {
                failed(plan.index, "update", error)
                continue
            }
            joined(plan.index, plan.cloud)
            report.updated += 1
            let how = plan.link ? "matched to the existing B2B user by its home identity and updated" : "updated"
            report.entries.append(Self.entry(users[plan.index].id, users[plan.index].displayName, "User", "update", target: plan.cloud,
                                             reason: "User '\(users[plan.index].userPrincipalName)' was \(how) in the target tenant."))
        }
        for plan in unchanged { joined(plan.index, plan.cloud) }
        for id in ids { staged[id]?.object.details["runId"] = .string(run.batch.runID) }
        try await SyncCycle(directory: directory, clock: clock).saveStaged(ids.compactMap { staged[$0] })
    }
}
