import Foundation
import InternetAccess
import TesseraCore

/// Graph beta's Internet Access policies: `/networkAccess/filteringPolicies` (with `policyRules`) and
/// `/networkAccess/filteringProfiles` (security profiles, with their `policies` links), as Microsoft documents them and
/// its Internet Access tutorial uses them, and Tessera's `/networkAccess/promptPolicies` (Microsoft documents none), which a
/// profile links with a `promptPolicyLink`. Every write is one transaction with its change-log entry, so the proxy's
/// cached decisions are revalidated at the next connection after it.
struct NetworkAccessPolicyHandler {
    let api: GraphAPI
    let context: RequestContext

    var tenant: String { context.tenant }
    var method: String { context.request.method }
    var store: any DirectoryStore { api.app.store }
    var now: String { Timestamp.format(api.app.clock.now) }

    static let readPermissions: Set<String> = ["NetworkAccess.Read.All", "NetworkAccess.ReadWrite.All", "NetworkAccessPolicy.Read.All",
                                               "NetworkAccessPolicy.ReadWrite.All"]
    static let writePermissions: Set<String> = ["NetworkAccess.ReadWrite.All", "NetworkAccessPolicy.ReadWrite.All"]
    /// Who may change policies as a signed-in user: Global Secure Access, Security and Global Administrators.
    static let writerRoles: Set<String> = [BuiltInRoles.globalSecureAccessAdministrator, BuiltInRoles.securityAdministrator,
                                           BuiltInRoles.globalAdministrator]

    func handle(_ rest: [String]) async throws -> APIResponse {
        let write = method != "GET"
        try authorize(write: write)
        switch (rest.first, rest.count) {
        case ("filteringPolicies", 1): return method == "POST" ? try await createPolicy() : try await listPolicies()
        case ("filteringPolicies", 2): return try await policy(rest[1])
        case ("filteringPolicies", 3) where rest[2] == "policyRules": return try await rules(of: rest[1], rule: nil)
        case ("filteringPolicies", 4) where rest[2] == "policyRules": return try await rules(of: rest[1], rule: rest[3])
        case ("filteringProfiles", 1): return method == "POST" ? try await createProfile() : try await listProfiles()
        case ("filteringProfiles", 2): return try await profile(rest[1])
        case ("filteringProfiles", 3) where rest[2] == "policies": return try await links(of: rest[1], link: nil)
        case ("filteringProfiles", 4) where rest[2] == "policies": return try await links(of: rest[1], link: rest[3])
        case ("promptPolicies", 1): return method == "POST" ? try await createPromptPolicy() : try await listPromptPolicies()
        case ("promptPolicies", 2): return try await promptPolicy(rest[1])
        default: throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest.last ?? "networkAccess")'.")
        }
    }

    /// An app needs a NetworkAccess(Policy) permission; a user one of the Global Secure Access roles (writers:
    /// ``writerRoles``), and, calling with a delegated token rather than from the admin center, the scope too.
    func authorize(write: Bool) throws(DirectoryError) {
        let caller = context.caller
        let permissions = write ? Self.writePermissions : Self.readPermissions
        let needed = write ? "NetworkAccessPolicy.ReadWrite.All" : "NetworkAccessPolicy.Read.All"
        if caller.userID == nil {
            guard !caller.roles.isDisjoint(with: permissions) else {
                throw DirectoryError(.accessDenied, "Insufficient privileges to complete the operation: \(needed) is required.")
            }
            return
        }
        guard !caller.directoryRoles.isDisjoint(with: write ? Self.writerRoles : NetworkAccessHandler.readerRoles) else {
            throw DirectoryError(.accessDenied, write
                ? "Insufficient privileges to complete the operation: a Global Secure Access, Security or Global Administrator is required."
                : "Insufficient privileges to complete the operation: a Global Secure Access, Security or Global reader or administrator role is required.")
        }
        let delegated = context.request.verifiedToken != nil || context.request.header("authorization") != nil
        guard !delegated || !caller.scopes.isDisjoint(with: permissions) else {
            throw DirectoryError(.accessDenied, "Insufficient privileges to complete the operation: the token needs the \(needed) scope.")
        }
    }

    func methodNotAllowed() -> DirectoryError { DirectoryError(.methodNotAllowed, "\(method) is not supported here.") }

    func entity(_ body: [String: JSONValue], _ path: String, status: Int = 200) -> APIResponse {
        var body = body
        body["@odata.context"] = .string("\(context.base)/$metadata#networkAccess/\(path)/$entity")
        return .json(.object(body), status: status)
    }

    func collection(_ values: [JSONValue], _ path: String) throws -> APIResponse {
        let options = try context.parseOptions()
        let filtered = values.filter { options.filter?.matches($0) ?? true }
        return .json(["@odata.context": .string("\(context.base)/$metadata#networkAccess/\(path)"),
                      "value": .array(filtered.map { Renderer.select($0, options.select) })])
    }

    // MARK: Filtering policies

    func loadPolicy(_ id: String) async throws -> (StoredObject, FilteringPolicy) {
        let tenant = self.tenant, key = id.lowercased()
        guard let object = try await store.read({ tx in try await tx.object(tenant: tenant, id: key) }), object.deletedAt == nil,
              object.kind == .filteringPolicy, let policy = FilteringPolicy(stored: object) else { throw DirectoryError.notFound(id) }
        return (object, policy)
    }

    func listPolicies() async throws -> APIResponse {
        let tenant = self.tenant
        let all = try await store.read { tx in try await tx.query(ObjectQuery(tenant: tenant, kinds: [.filteringPolicy])) }
        let expand = context.request.query.contains { $0.name == "$expand" && $0.value.lowercased().contains("policyrules") }
        return try collection(all.filter { $0.deletedAt == nil }.compactMap(FilteringPolicy.init(stored:)).map { .object($0.body(withRules: expand)) },
                              "filteringPolicies")
    }

    func createPolicy() async throws -> APIResponse {
        let policy = try FilteringPolicy(create: try context.request.jsonObject(), id: Identifier.make(), now: now, newID: Identifier.make)
        try await save(policy.stored(tenant: tenant), over: nil, activity: "Add filtering policy", name: policy.name, operation: "create")
        return entity(policy.body(withRules: false), "filteringPolicies", status: 201)
    }

    func policy(_ id: String) async throws -> APIResponse {
        let (object, policy) = try await loadPolicy(id)
        switch method {
        case "GET":
            let expand = context.request.query.contains { $0.name == "$expand" && $0.value.lowercased().contains("policyrules") }
            return entity(policy.body(withRules: expand), "filteringPolicies")
        case "PATCH":
            var next = policy
            try next.apply(try context.request.jsonObject(), now: now, newID: Identifier.make)
            try await save(next.stored(tenant: tenant), over: object, activity: "Update filtering policy", name: next.name, operation: "update")
            return APIResponse(status: 204)
        case "DELETE":
            try await refuseIfLinked(policy.id, "The filtering policy")
            try await remove(object, activity: "Delete filtering policy", name: policy.name)
            return APIResponse(status: 204)
        default: throw methodNotAllowed()
        }
    }

    /// `policyRules` of a policy: list and add, get, update and delete one.
    func rules(of id: String, rule ruleID: String?) async throws -> APIResponse {
        let (object, policy) = try await loadPolicy(id)
        let path = "filteringPolicies('\(policy.id)')/policyRules"
        guard let ruleID else {
            switch method {
            case "GET": return try collection(policy.rules.map(\.body), path)
            case "POST":
                let rule = try FilteringRule(body: .object(try context.request.jsonObject()), id: Identifier.make())
                var next = policy
                guard next.rules.count < FilteringPolicy.maximumRules else { throw DirectoryError.badRequest("A policy holds at most \(FilteringPolicy.maximumRules) rules.") }
                guard !next.rules.contains(where: { $0.id == rule.id }) else { throw DirectoryError.duplicate("id") }
                next.rules.append(rule)
                next.lastModifiedDateTime = now
                try await save(next.stored(tenant: tenant), over: object, activity: "Add policy rule", name: rule.name, operation: "update")
                return entity(rule.body.objectValue ?? [:], path, status: 201)
            default: throw methodNotAllowed()
            }
        }
        guard let index = policy.rules.firstIndex(where: { $0.id == ruleID }) else { throw DirectoryError.notFound(ruleID) }
        var next = policy
        next.lastModifiedDateTime = now
        switch method {
        case "GET": return entity(policy.rules[index].body.objectValue ?? [:], path)
        case "PATCH":
            var merged = policy.rules[index].body.objectValue ?? [:]
            for (key, value) in try context.request.jsonObject() where key != "id" { merged[key] = value }
            next.rules[index] = try FilteringRule(body: .object(merged), id: ruleID)
            try await save(next.stored(tenant: tenant), over: object, activity: "Update policy rule", name: next.rules[index].name, operation: "update")
            return APIResponse(status: 204)
        case "DELETE":
            let removed = next.rules.remove(at: index)
            try await save(next.stored(tenant: tenant), over: object, activity: "Delete policy rule", name: removed.name, operation: "update")
            return APIResponse(status: 204)
        default: throw methodNotAllowed()
        }
    }

    // MARK: Filtering profiles

    func loadProfile(_ id: String) async throws -> (StoredObject, FilteringProfile) {
        let tenant = self.tenant, key = id.lowercased()
        guard let object = try await store.read({ tx in try await tx.object(tenant: tenant, id: key) }), object.deletedAt == nil,
              object.kind == .filteringProfile, let profile = FilteringProfile(stored: object) else { throw DirectoryError.notFound(id) }
        return (object, profile)
    }

    /// Every link must name a policy of its kind in this tenant, and a profile links at most one prompt policy.
    func checkLinks(_ profile: FilteringProfile) async throws {
        let tenant = self.tenant
        let ids = profile.links.map(\.policyID)
        let found = Dictionary(try await store.read { tx in try await tx.objects(tenant: tenant, ids: ids) }
            .filter { $0.deletedAt == nil }.map { ($0.id, $0.kind) }, uniquingKeysWith: { first, _ in first })
        for link in profile.links {
            let kind: ObjectKind = link.kind == .prompt ? .promptPolicy : .filteringPolicy
            guard found[link.policyID] == kind else {
                throw DirectoryError.badRequest("The \(link.kind == .prompt ? "prompt" : "filtering") policy '\(link.policyID)' does not exist.")
            }
        }
        guard Set(ids).count == ids.count else { throw DirectoryError.badRequest("A policy is linked twice to the profile.") }
        guard profile.links.filter({ $0.kind == .prompt }).count <= 1 else {
            throw DirectoryError.badRequest("A security profile links at most one prompt policy.")
        }
    }

    func listProfiles() async throws -> APIResponse {
        let tenant = self.tenant
        let all = try await store.read { tx in try await tx.query(ObjectQuery(tenant: tenant, kinds: [.filteringProfile])) }
        let expand = context.request.query.contains { $0.name == "$expand" && $0.value.lowercased().contains("policies") }
        return try collection(all.filter { $0.deletedAt == nil }.compactMap(FilteringProfile.init(stored:))
            .sorted { ($0.priority, $0.id) < ($1.priority, $1.id) }.map { .object($0.body(withLinks: expand)) }, "filteringProfiles")
    }

    func createProfile() async throws -> APIResponse {
        var profile = FilteringProfile(id: Identifier.make(), now: now)
        try profile.apply(try context.request.jsonObject(), now: now, creating: true, newID: Identifier.make)
        try await checkLinks(profile)
        try await save(profile.stored(tenant: tenant), over: nil, activity: "Add filtering profile", name: profile.name, operation: "create",
                       kind: .filteringProfile)
        return entity(profile.body(withLinks: false), "filteringProfiles", status: 201)
    }

    func profile(_ id: String) async throws -> APIResponse {
        let (object, profile) = try await loadProfile(id)
        switch method {
        case "GET":
            let expand = context.request.query.contains { $0.name == "$expand" && $0.value.lowercased().contains("policies") }
            return entity(profile.body(withLinks: expand), "filteringProfiles")
        case "PATCH":
            var next = profile
            try next.apply(try context.request.jsonObject(), now: now, creating: false, newID: Identifier.make)
            try await save(next.stored(tenant: tenant), over: object, activity: "Update filtering profile", name: next.name, operation: "update",
                           kind: .filteringProfile)
            return APIResponse(status: 204)
        case "DELETE":
            try await remove(object, activity: "Delete filtering profile", name: profile.name)
            return APIResponse(status: 204)
        default: throw methodNotAllowed()
        }
    }

    /// `policies` of a profile (its `filteringPolicyLink`s): list and link, get, update and unlink one.
    func links(of id: String, link linkID: String?) async throws -> APIResponse {
        let (object, profile) = try await loadProfile(id)
        let path = "filteringProfiles('\(profile.id)')/policies"
        var next = profile
        next.lastModifiedDateTime = now
        guard let linkID else {
            switch method {
            case "GET": return try collection(profile.links.map(\.json), path)
            case "POST":
                guard next.links.count < FilteringProfile.maximumLinks else {
                    throw DirectoryError.badRequest("A profile links at most \(FilteringProfile.maximumLinks) policies.")
                }
                var link = FilteringProfile.Link(id: Identifier.make(), now: now)
                try link.apply(try context.request.jsonObject(), now: now, creating: true)
                next.links.append(link)
                try await checkLinks(next)
                try await save(next.stored(tenant: tenant), over: object, activity: "Link filtering policy", name: next.name, operation: "update",
                               kind: .filteringProfile)
                return entity(link.json.objectValue ?? [:], path, status: 201)
            default: throw methodNotAllowed()
            }
        }
        guard let index = profile.links.firstIndex(where: { $0.id == linkID.lowercased() || $0.id == linkID }) else { throw DirectoryError.notFound(linkID) }
        switch method {
        case "GET": return entity(profile.links[index].json.objectValue ?? [:], path)
        case "PATCH":
            try next.links[index].apply(try context.request.jsonObject(), now: now, creating: false)
            try await save(next.stored(tenant: tenant), over: object, activity: "Update filtering policy link", name: next.name, operation: "update",
                           kind: .filteringProfile)
            return APIResponse(status: 204)
        case "DELETE":
            next.links.remove(at: index)
            try await save(next.stored(tenant: tenant), over: object, activity: "Unlink filtering policy", name: next.name, operation: "update",
                           kind: .filteringProfile)
            return APIResponse(status: 204)
        default: throw methodNotAllowed()
        }
    }

    // MARK: Prompt policies

    func loadPromptPolicy(_ id: String) async throws -> (StoredObject, PromptPolicy) {
        let tenant = self.tenant, key = id.lowercased()
        guard let object = try await store.read({ tx in try await tx.object(tenant: tenant, id: key) }), object.deletedAt == nil,
              object.kind == .promptPolicy, let policy = PromptPolicy(stored: object) else { throw DirectoryError.notFound(id) }
        return (object, policy)
    }

    func listPromptPolicies() async throws -> APIResponse {
        let tenant = self.tenant
        let all = try await store.read { tx in try await tx.query(ObjectQuery(tenant: tenant, kinds: [.promptPolicy])) }
        return try collection(all.filter { $0.deletedAt == nil }.compactMap(PromptPolicy.init(stored:)).map { .object($0.body) }, "promptPolicies")
    }

    func createPromptPolicy() async throws -> APIResponse {
        var policy = PromptPolicy(id: Identifier.make(), name: "", now: now)
        try policy.apply(try context.request.jsonObject(), now: now, creating: true)
        try await save(policy.stored(tenant: tenant), over: nil, activity: "Add prompt policy", name: policy.name, operation: "create",
                       kind: .promptPolicy)
        return entity(policy.body, "promptPolicies", status: 201)
    }

    func promptPolicy(_ id: String) async throws -> APIResponse {
        let (object, policy) = try await loadPromptPolicy(id)
        switch method {
        case "GET": return entity(policy.body, "promptPolicies")
        case "PATCH":
            var next = policy
            try next.apply(try context.request.jsonObject(), now: now, creating: false)
            try await save(next.stored(tenant: tenant), over: object, activity: "Update prompt policy", name: next.name, operation: "update",
                           kind: .promptPolicy)
            return APIResponse(status: 204)
        case "DELETE":
            try await refuseIfLinked(policy.id, "The prompt policy")
            try await remove(object, activity: "Delete prompt policy", name: policy.name)
            return APIResponse(status: 204)
        default: throw methodNotAllowed()
        }
    }

    // MARK: Writes

    func save(_ object: StoredObject, over current: StoredObject?, activity: String, name: String, operation: String,
              kind: ObjectKind = .filteringPolicy) async throws {
        let change = ChangeRecord(tenant: tenant, objectId: object.id, kind: kind, operation: operation, activity: activity,
                                  actor: context.caller.actor.initiatedBy, at: now, details: ["displayName": .string(name)])
        try await store.write { tx in
            if let current {
                // The version read before the change: a concurrent write makes this one fail rather than be lost.
                guard let stored = try await tx.object(tenant: object.tenant, id: object.id), stored.version == current.version else {
                    throw DirectoryError(.conflict, "The object changed while it was being updated; retry.")
                }
            }
            try await tx.put(object, over: current)
            _ = try await tx.record(change)
        }
        api.app.directory.generations.bump(tenant)
    }

    /// A filtering or prompt policy that a security profile links cannot be deleted: 409 naming the first such profile.
    func refuseIfLinked(_ policyID: String, _ what: String) async throws {
        let tenant = self.tenant
        let linked = try await store.read { tx in try await tx.query(ObjectQuery(tenant: tenant, kinds: [.filteringProfile])) }
            .compactMap(FilteringProfile.init(stored:)).filter { $0.links.contains { $0.policyID == policyID } }
        guard let first = linked.first else { return }
        throw DirectoryError(.conflict, "\(what) is linked to the security profile '\(first.name)'; remove the link first.")
    }

    func remove(_ object: StoredObject, activity: String, name: String) async throws {
        let change = ChangeRecord(tenant: tenant, objectId: object.id, kind: object.kind, operation: "delete", activity: activity,
                                  actor: context.caller.actor.initiatedBy, at: now, details: ["displayName": .string(name)])
        try await store.write { tx in
            try await tx.purge(tenant: object.tenant, id: object.id)
            _ = try await tx.record(change)
        }
        // Cached tenant records (and the change sequence they carry) are stale from here in this process.
        api.app.directory.generations.bump(tenant)
    }
}
