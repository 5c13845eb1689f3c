import Foundation
public import TesseraCore

/// The source tenant's side: which of its users and security groups a job synchronizes, through its mappings.
/// In scope are the users and groups assigned to the configuration application (a group brings its direct members, as
/// Entra's assignment does), or with `SyncAll` every member user and security group; the users then pass the job's
/// scoping filter. Disabled users stay in scope (their target user is disabled); deleted ones leave it.
public struct CrossTenantSyncScope: Sendable {
    public let store: any DirectoryStore

    public init(store: any DirectoryStore) {
        self.store = store
    }

    public struct Objects: Sendable {
        public var users: [CrossTenantSyncBatch.User] = []
        public var groups: [CrossTenantSyncBatch.Group] = []

        public init(users: [CrossTenantSyncBatch.User] = [], groups: [CrossTenantSyncBatch.Group] = []) {
            self.users = users
            self.groups = groups
        }
    }

    static let pageSize = 1_000

    /// Everything in scope of `job` (of `tenant`), or, with `subjects`, of those objects only (provision on demand).
    public func read(tenant: String, job: CrossTenantSyncJob, syncAll: Bool, subjects: Set<String>? = nil) async throws -> Objects {
        var userIDs: Set<String> = [], groupIDs: Set<String> = []
        var users: [String: StoredObject] = [:], groups: [String: StoredObject] = [:]
        if syncAll {
            try await page(tenant: tenant, kind: .user) { for user in $0 where user.body["userType"] != "Guest" { users[user.id] = user } }
            try await page(tenant: tenant, kind: .group) { page in
                for group in page where group.body["securityEnabled"] == true && group.body["mailEnabled"] != true { groups[group.id] = group }
            }
            userIDs = Set(users.keys)
            groupIDs = Set(groups.keys)
        } else {
            let sp = job.servicePrincipalID
            let assignments = try await store.read { tx in
                try await tx.query(ObjectQuery(tenant: tenant, kinds: [.appRoleAssignment],
                                               filter: .compare(PropertyPath(["resourceId"]), .eq, .string(sp))))
            }
            for assignment in assignments where assignment.deletedAt == nil {
                guard let principal = assignment.body["principalId"]?.stringValue?.lowercased() else { continue }
                if assignment.body["principalType"] == "Group" { groupIDs.insert(principal) } else { userIDs.insert(principal) }
            }
        }
        // Groups (security groups only), and their direct members.
        let wantedGroups = groupIDs.subtracting(groups.keys).sorted()
        for group in try await store.read({ tx in try await tx.objects(tenant: tenant, ids: wantedGroups) }) { groups[group.id] = group }
        var members: [String: [String]] = [:]
        for id in groupIDs.sorted() {
            guard let group = groups[id], group.deletedAt == nil, group.kind == .group, group.body["securityEnabled"] == true else { continue }
            members[id] = try await store.read { tx in try await tx.targets(tenant: tenant, source: id, relation: "members") }
        }
        if !syncAll { for list in members.values { userIDs.formUnion(list) } }
        // On demand: the subjects in scope, and a subject group's members in scope.
        if let subjects {
            members = members.filter { subjects.contains($0.key) }
            userIDs.formIntersection(subjects.union(members.values.flatMap { $0 }))
        }
        let wantedUsers = userIDs.subtracting(users.keys).sorted()
        for start in stride(from: 0, to: wantedUsers.count, by: Self.pageSize) {
            let slice = Array(wantedUsers[start..<min(start + Self.pageSize, wantedUsers.count)])
            for user in try await store.read({ tx in try await tx.objects(tenant: tenant, ids: slice) }) { users[user.id] = user }
        }
        var out = Objects()
        for id in userIDs.sorted() {
            guard let user = users[id], user.kind == .user, user.deletedAt == nil, admits(user.body, job: job) else { continue }
            out.users.append(.init(id: user.id, userPrincipalName: user.body["userPrincipalName"]?.stringValue ?? user.id,
                                   displayName: user.body["displayName"]?.stringValue ?? "", givenName: user.body["givenName"]?.stringValue,
                                   surname: user.body["surname"]?.stringValue, mail: user.body["mail"]?.stringValue,
                                   department: user.body["department"]?.stringValue, jobTitle: user.body["jobTitle"]?.stringValue,
                                   accountEnabled: user.body["accountEnabled"]?.boolValue ?? true, userType: job.userType))
        }
        let synced = Set(out.users.map(\.id))
        for id in members.keys.sorted() {
            guard let group = groups[id] else { continue }
            out.groups.append(.init(id: id, displayName: group.body["displayName"]?.stringValue ?? "",
                                    description: group.body["description"]?.stringValue,
                                    mailNickname: group.body["mailNickname"]?.stringValue ?? "group",
                                    memberIDs: (members[id] ?? []).filter { synced.contains($0) }))
        }
        return out
    }

    /// Whether a user passes the job's scoping filter (none: everyone).
    func admits(_ body: [String: JSONValue], job: CrossTenantSyncJob) -> Bool {
        job.scopingFilter.isEmpty || job.scopingFilter.contains { group in group.allSatisfy { $0.admits(body) } }
    }

    func page(tenant: String, kind: ObjectKind, _ body: ([StoredObject]) async throws -> Void) async throws {
        var query = ObjectQuery(tenant: tenant, kinds: [kind], limit: Self.pageSize)
        while true {
            let page = try await store.read { [query] tx in try await tx.query(query) }
            try await body(page.filter { $0.deletedAt == nil })
            guard page.count == Self.pageSize, let last = page.last?.id else { return }
            query.afterId = last
        }
    }
}
