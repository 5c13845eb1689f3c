/// `/tenantRelationships/multiTenantOrganization`: one organization per tenant; its owners add tenants (pending), each
/// added tenant joins by naming the owner that added it (checked against the owner's list), and membership sets
/// `isInMultiTenantOrganization` on the partner configurations of every pair of active members. Every change that
/// touches two tenants is one transaction, so a server killed halfway leaves both as they were.
extension DirectoryService {
    static let organizationID = "multitenantorganization"
    static let joinRequestID = "multitenantorganizationjoinrequest"
    static func memberObjectID(_ tenant: String) -> String { "multitenantorganization-member-\(tenant.lowercased())" }

    /// The tenant's organization, with the name and description its home tenant keeps; nil when it is in none.
    public func multiTenantOrganization(tenant: String) async throws -> MultiTenantOrganization? {
        try await store.read { tx in
            guard var organization = try await self.organization(tenant: tenant, tx: tx) else { return nil }
            if organization.homeTenantID != tenant.lowercased(),
               let home = try await self.organization(tenant: organization.homeTenantID, tx: tx) {
                organization.displayName = home.displayName
                organization.description = home.description
            }
            return organization
        }
    }

    func organization(tenant: String, tx: any DirectoryReader) async throws -> MultiTenantOrganization? {
        try await tx.object(tenant: tenant, id: Self.organizationID).map { try MultiTenantOrganization(stored: $0.body) }
    }

    /// PUT: creates the organization with this tenant as its first owner (400 when the tenant is already in one).
    public func createMultiTenantOrganization(tenant: String, body: [String: JSONValue], actor: Actor) async throws -> MultiTenantOrganization {
        _ = try CrossTenantJSON.object(.object(body), "multiTenantOrganization", members: ["displayName", "description", "id", "createdDateTime", "state"])
        guard let name = try CrossTenantJSON.string(body["displayName"], "displayName"), !name.trimmed.isEmpty else {
            throw DirectoryError.badRequest("Property 'displayName' is required.")
        }
        let description = try CrossTenantJSON.string(body["description"], "description")
        let now = self.now, home = tenant.lowercased()
        let organization = MultiTenantOrganization(id: Identifier.make(), createdDateTime: now, displayName: name, description: description, homeTenantID: home)
        try await write(tenant) { tx in
            if try await tx.object(tenant: tenant, id: Self.organizationID) != nil {
                throw DirectoryError.badRequest("This tenant is already part of a multitenant organization; a tenant can be in only one.")
            }
            let record = try await tx.tenant(tenant)
            let owner = MultiTenantOrganizationMember(tenantID: home, displayName: record?.name ?? home, role: .owner, state: .active,
                                                       addedByTenantID: home, addedDateTime: now, joinedDateTime: now)
            try await tx.insert(StoredObject(tenant: tenant, id: Self.organizationID, kind: .multiTenantOrganization, body: organization.stored))
            try await tx.insert(StoredObject(tenant: tenant, id: Self.memberObjectID(home), kind: .multiTenantOrganizationMember, body: owner.graph))
            try await Self.putJoinRequest(MultiTenantOrganizationJoinRequest(id: Identifier.make(), addedByTenantID: home, memberState: .active, role: .owner),
                                          tenant: tenant, tx: tx)
            try await tx.record(ChangeRecord(tenant: tenant, objectId: Self.organizationID, kind: .multiTenantOrganization, operation: "create",
                                             activity: "Create a multitenant organization", actor: actor.initiatedBy, at: now,
                                             details: ["displayName": .string(name)]))
        }
        return organization
    }

    /// PATCH of the organization's `displayName` and `description` (owners only).
    public func updateMultiTenantOrganization(tenant: String, patch: [String: JSONValue], actor: Actor) async throws {
        _ = try CrossTenantJSON.object(.object(patch), "multiTenantOrganization", members: ["displayName", "description", "id"])
        let name = try CrossTenantJSON.string(patch["displayName"], "displayName")
        if patch["displayName"] != nil, name?.trimmed.isEmpty != false { throw DirectoryError.badRequest("Property 'displayName' cannot be empty.") }
        let description = try CrossTenantJSON.string(patch["description"], "description")
        let now = self.now
        try await acrossTenants { tx in
            let organization = try await self.requireOwner(tenant: tenant, tx: tx)
            let home = organization.homeTenantID
            guard let current = try await tx.object(tenant: home, id: Self.organizationID) else { throw DirectoryError.notFound("multiTenantOrganization") }
            var body = current.body
            if name != nil { body["displayName"] = .optional(name) }
            if patch.keys.contains("description") { body["description"] = .optional(description) }
            try await tx.put(StoredObject(tenant: home, id: Self.organizationID, kind: .multiTenantOrganization, body: body), over: current)
            try await tx.record(ChangeRecord(tenant: tenant, objectId: Self.organizationID, kind: .multiTenantOrganization, operation: "update",
                                             activity: "Update a multitenant organization", actor: actor.initiatedBy, at: now,
                                             details: ["displayName": body["displayName"] ?? nil, "modifiedProperties": .array(Self.modified(current.body, body))]))
            return [home, tenant.lowercased()]
        }
    }

    /// The tenants of the organization this tenant is in (404 when it is in none).
    public func multiTenantOrganizationMembers(tenant: String) async throws -> [MultiTenantOrganizationMember] {
        try await store.read { tx in
            guard let organization = try await self.organization(tenant: tenant, tx: tx) else { throw DirectoryError.notFound("multiTenantOrganization") }
            return try await self.members(home: organization.homeTenantID, tx: tx)
        }
    }

    func members(home: String, tx: any DirectoryReader) async throws -> [MultiTenantOrganizationMember] {
        try await tx.query(ObjectQuery(tenant: home, kinds: [.multiTenantOrganizationMember]))
            .filter { $0.deletedAt == nil }.map { try MultiTenantOrganizationMember(stored: $0.body) }.sorted { $0.addedDateTime < $1.addedDateTime }
    }

    /// An owner adds a tenant (pending until that tenant joins). 400 when it is already pending or active.
    public func addMultiTenantOrganizationMember(tenant: String, body: [String: JSONValue], actor: Actor) async throws -> MultiTenantOrganizationMember {
        _ = try CrossTenantJSON.object(.object(body), "multiTenantOrganizationMember", members: ["tenantId", "displayName", "role"])
        guard let added = try CrossTenantJSON.string(body["tenantId"], "tenantId"), Identifier.isGUID(added) else {
            throw DirectoryError.badRequest("Property 'tenantId' is required and must be a tenant id (a GUID).")
        }
        guard let name = try CrossTenantJSON.string(body["displayName"], "displayName"), !name.trimmed.isEmpty else {
            throw DirectoryError.badRequest("Property 'displayName' is required.")
        }
        let role = try Self.memberRole(body["role"]) ?? .member
        let now = self.now
        return try await acrossTenants { tx in
            let organization = try await self.requireOwner(tenant: tenant, tx: tx)
            let home = organization.homeTenantID
            if try await tx.object(tenant: home, id: Self.memberObjectID(added)) != nil {
                throw DirectoryError.badRequest("Tenant is already being added in Multi-Tenant Organization.")
            }
            let member = MultiTenantOrganizationMember(tenantID: added, displayName: name, role: role, state: .pending,
                                                        addedByTenantID: tenant.lowercased(), addedDateTime: now, joinedDateTime: nil)
            try await tx.insert(StoredObject(tenant: home, id: Self.memberObjectID(added), kind: .multiTenantOrganizationMember, body: member.graph))
            try await tx.record(ChangeRecord(tenant: tenant, objectId: Self.memberObjectID(added), kind: .multiTenantOrganizationMember,
                                             operation: "create", activity: "Add a tenant to a multitenant organization", actor: actor.initiatedBy,
                                             at: now, details: ["displayName": .string(name), "tenantId": .string(member.tenantID)]))
            return (member, [home])
        }
    }

    /// An owner changes a tenant's role (its `displayName` cannot change once set).
    public func updateMultiTenantOrganizationMember(tenant: String, member added: String, patch: [String: JSONValue], actor: Actor) async throws {
        _ = try CrossTenantJSON.object(.object(patch), "multiTenantOrganizationMember", members: ["role", "tenantId", "displayName"])
        if patch["displayName"] != nil {
            throw DirectoryError.badRequest("Property 'displayName' of a tenant in a multitenant organization can't be changed once set.")
        }
        guard let role = try Self.memberRole(patch["role"]) else { return }
        let now = self.now
        try await acrossTenants { tx in
            let organization = try await self.requireOwner(tenant: tenant, tx: tx)
            let home = organization.homeTenantID
            guard let current = try await tx.object(tenant: home, id: Self.memberObjectID(added)) else { throw DirectoryError.notFound(added) }
            var member = try MultiTenantOrganizationMember(stored: current.body)
            if member.role == .owner, role == .member, try await self.members(home: home, tx: tx).filter({ $0.role == .owner }).count == 1 {
                throw DirectoryError.badRequest("A multitenant organization needs at least one owner tenant.")
            }
            member.role = role
            try await tx.put(StoredObject(tenant: home, id: current.id, kind: .multiTenantOrganizationMember, body: member.graph), over: current)
            if member.state == .active, let request = try await tx.object(tenant: member.tenantID, id: Self.joinRequestID) {
                var record = MultiTenantOrganizationJoinRequest(stored: request.body)
                record.role = role
                try await Self.putJoinRequest(record, tenant: member.tenantID, tx: tx)
            }
            try await tx.record(ChangeRecord(tenant: tenant, objectId: current.id, kind: .multiTenantOrganizationMember, operation: "update",
                                             activity: "Update a tenant in a multitenant organization", actor: actor.initiatedBy, at: now,
                                             details: ["displayName": .string(member.displayName), "role": .string(role.rawValue)]))
            return [home, member.tenantID]
        }
    }

    /// An owner removes a tenant: the tenant leaves the list, its own record and join request go, and the partner
    /// configurations between it and every other member stop saying `isInMultiTenantOrganization`, in one
    /// transaction. The last owner can remove itself only when it is the last tenant (the organization then ends).
    public func removeMultiTenantOrganizationMember(tenant: String, member removed: String, actor: Actor) async throws {
        let now = self.now
        try await acrossTenants { tx in
            let organization = try await self.requireOwner(tenant: tenant, tx: tx)
            let home = organization.homeTenantID
            let members = try await self.members(home: home, tx: tx)
            guard let member = members.first(where: { $0.tenantID == removed.lowercased() }) else { throw DirectoryError.notFound(removed) }
            let others = members.filter { $0.tenantID != member.tenantID }
            if member.role == .owner, !others.isEmpty, !others.contains(where: { $0.role == .owner }) {
                throw DirectoryError.badRequest("The last owner tenant cannot leave while other tenants are in the multitenant organization.")
            }
            if member.tenantID == home, !others.isEmpty {
                throw DirectoryError.badRequest("The tenant that created the multitenant organization keeps its list of tenants; remove the others first.")
            }
            try await tx.purge(tenant: home, id: Self.memberObjectID(member.tenantID))
            var touched: Set<String> = [home, tenant.lowercased(), member.tenantID]
            if member.state == .active {
                for other in others where other.state == .active {
                    try await Self.markPartner(other.tenantID, in: member.tenantID, inOrganization: false, actor: actor, now: now, tx: tx)
                    try await Self.markPartner(member.tenantID, in: other.tenantID, inOrganization: false, actor: actor, now: now, tx: tx)
                    touched.insert(other.tenantID)
                }
            }
            if try await tx.tenant(member.tenantID) != nil {
                for id in [Self.organizationID, Self.joinRequestID] where try await tx.object(tenant: member.tenantID, id: id) != nil {
                    try await tx.purge(tenant: member.tenantID, id: id)
                }
                if member.tenantID != tenant.lowercased() {
                    try await tx.record(ChangeRecord(tenant: member.tenantID, objectId: Self.organizationID, kind: .multiTenantOrganization,
                                                     operation: "delete", activity: "Remove a tenant from a multitenant organization",
                                                     actor: actor.initiatedBy, at: now, details: ["removedByTenantId": .string(tenant.lowercased())]))
                }
            }
            try await tx.record(ChangeRecord(tenant: tenant, objectId: Self.memberObjectID(member.tenantID), kind: .multiTenantOrganizationMember,
                                             operation: "delete", activity: "Remove a tenant from a multitenant organization", actor: actor.initiatedBy,
                                             at: now, details: ["displayName": .string(member.displayName), "tenantId": .string(member.tenantID)]))
            return touched
        }
    }

    /// The tenant's join request (an empty one, naming no tenant, before any).
    public func multiTenantOrganizationJoinRequest(tenant: String) async throws -> MultiTenantOrganizationJoinRequest {
        let stored = try await store.read { tx in try await tx.object(tenant: tenant, id: Self.joinRequestID) }
        return stored.map { MultiTenantOrganizationJoinRequest(stored: $0.body) } ?? MultiTenantOrganizationJoinRequest(id: tenant.lowercased())
    }

    /// PATCH of the join request: `addedByTenantId` names the owner tenant that added this one, whose list must hold this
    /// tenant as pending; the zero GUID resets a request. Joining makes this tenant active in the owner's list and sets
    /// `isInMultiTenantOrganization` both ways with every active member, in one transaction.
    public func updateMultiTenantOrganizationJoinRequest(tenant: String, patch: [String: JSONValue], actor: Actor) async throws {
        _ = try CrossTenantJSON.object(.object(patch), "multiTenantOrganizationJoinRequestRecord", members: ["addedByTenantId"])
        guard let owner = try CrossTenantJSON.string(patch["addedByTenantId"], "addedByTenantId")?.lowercased(), Identifier.isGUID(owner) else {
            throw DirectoryError.badRequest("Property 'addedByTenantId' is required and must be a tenant id (a GUID).")
        }
        let me = tenant.lowercased(), now = self.now
        try await acrossTenants { tx in
            let current = try await tx.object(tenant: me, id: Self.joinRequestID).map { MultiTenantOrganizationJoinRequest(stored: $0.body) }
            if owner == MultiTenantOrganizationJoinRequest.noTenant {
                guard current?.memberState != .active else {
                    throw DirectoryError.badRequest("This tenant has joined its multitenant organization; only a failed or pending join request can be reset.")
                }
                if current != nil { try await tx.purge(tenant: me, id: Self.joinRequestID) }
                return [me]
            }
            if try await tx.object(tenant: me, id: Self.organizationID) != nil {
                throw DirectoryError.badRequest("The joining tenant is already part of a multitenant organization.")
            }
            guard owner != me, try await tx.tenant(owner) != nil, let organization = try await self.organization(tenant: owner, tx: tx) else {
                throw DirectoryError.badRequest("Tenant '\(owner)' has no multitenant organization in this deployment that this tenant could join.")
            }
            let home = organization.homeTenantID
            let members = try await self.members(home: home, tx: tx)
            guard let adder = members.first(where: { $0.tenantID == owner }), adder.role == .owner, adder.state == .active,
                  var joining = members.first(where: { $0.tenantID == me }), joining.state == .pending else {
                throw DirectoryError.badRequest("The joining tenant has not been added to the multitenant organization by tenant '\(owner)', one of its owners.")
            }
            joining.state = .active
            joining.joinedDateTime = now
            let stored = try await tx.object(tenant: home, id: Self.memberObjectID(me))
            try await tx.put(StoredObject(tenant: home, id: Self.memberObjectID(me), kind: .multiTenantOrganizationMember, body: joining.graph), over: stored)
            let local = MultiTenantOrganization(id: Identifier.make(), createdDateTime: now, displayName: organization.displayName,
                                                description: organization.description, homeTenantID: home)
            try await tx.insert(StoredObject(tenant: me, id: Self.organizationID, kind: .multiTenantOrganization, body: local.stored))
            try await Self.putJoinRequest(MultiTenantOrganizationJoinRequest(id: current?.id ?? Identifier.make(), addedByTenantID: owner,
                                                                              memberState: .active, role: joining.role), tenant: me, tx: tx)
            var touched: Set<String> = [me, home]
            for other in members where other.state == .active && other.tenantID != me {
                try await Self.markPartner(other.tenantID, in: me, inOrganization: true, actor: actor, now: now, tx: tx)
                if try await tx.tenant(other.tenantID) != nil {
                    try await Self.markPartner(me, in: other.tenantID, inOrganization: true, actor: actor, now: now, tx: tx)
                    touched.insert(other.tenantID)
                }
            }
            try await tx.record(ChangeRecord(tenant: me, objectId: Self.joinRequestID, kind: .multiTenantOrganizationJoinRequest, operation: "update",
                                             activity: "Join a multitenant organization", actor: actor.initiatedBy, at: now,
                                             details: ["addedByTenantId": .string(owner), "displayName": .string(organization.displayName)]))
            try await tx.record(ChangeRecord(tenant: home, objectId: Self.memberObjectID(me), kind: .multiTenantOrganizationMember, operation: "update",
                                             activity: "A tenant joined the multitenant organization", actor: actor.initiatedBy, at: now,
                                             details: ["displayName": .string(joining.displayName), "tenantId": .string(me)]))
            return touched
        }
    }

    // MARK: Helpers

    /// The organization, when `tenant` is an active owner of it; else 403 (or 404 when it is in none).
    func requireOwner(tenant: String, tx: any DirectoryReader) async throws -> MultiTenantOrganization {
        guard let organization = try await organization(tenant: tenant, tx: tx) else { throw DirectoryError.notFound("multiTenantOrganization") }
        let me = try await tx.object(tenant: organization.homeTenantID, id: Self.memberObjectID(tenant)).map { try MultiTenantOrganizationMember(stored: $0.body) }
        guard me?.role == .owner, me?.state == .active else {
            throw DirectoryError(.accessDenied, "Only owner tenants can manage a multitenant organization.")
        }
        return organization
    }

    static func memberRole(_ value: JSONValue?) throws(DirectoryError) -> MultiTenantOrganizationMember.Role? {
        guard let text = try CrossTenantJSON.string(value, "role") else { return nil }
        guard let role = MultiTenantOrganizationMember.Role(rawValue: text) else {
            throw DirectoryError.badRequest("Property 'role' must be 'owner' or 'member'.")
        }
        return role
    }

    static func putJoinRequest(_ record: MultiTenantOrganizationJoinRequest, tenant: String, tx: any DirectoryTransaction) async throws {
        let current = try await tx.object(tenant: tenant, id: joinRequestID)
        try await tx.put(StoredObject(tenant: tenant, id: joinRequestID, kind: .multiTenantOrganizationJoinRequest, body: record.graph), over: current)
    }

    /// Sets `isInMultiTenantOrganization` on `tenant`'s configuration for `partner`, creating the configuration (which
    /// then inherits every default) when joining and none exists.
    static func markPartner(_ partner: String, in tenant: String, inOrganization: Bool, actor: Actor, now: String,
                            tx: any DirectoryTransaction) async throws {
        let id = crossTenantPartnerObjectID(partner)
        let current = try await tx.object(tenant: tenant, id: id)
        guard current != nil || inOrganization else { return }
        var configuration = try current.map { try CrossTenantPartnerConfiguration(stored: $0.body) } ?? CrossTenantPartnerConfiguration(tenantID: partner)
        configuration.isInMultiTenantOrganization = inOrganization
        try await tx.put(StoredObject(tenant: tenant, id: id, kind: .crossTenantAccessPolicyPartner, body: configuration.stored), over: current)
        try await tx.record(ChangeRecord(tenant: tenant, objectId: id, kind: .crossTenantAccessPolicyPartner, operation: current == nil ? "create" : "update",
                                         activity: current == nil ? "Add a partner to cross-tenant access setting" : "Update a partner cross-tenant access setting",
                                         actor: actor.initiatedBy, at: now,
                                         details: ["displayName": .string(partner.lowercased()), "isInMultiTenantOrganization": .bool(inOrganization)]))
    }

    /// One transaction that may write several tenants; each tenant it names is bumped once it commits.
    func acrossTenants<T: Sendable>(_ body: @escaping @Sendable (any DirectoryTransaction) async throws -> (T, Set<String>)) async throws -> T {
        let (result, touched) = try await store.write(body)
        for tenant in touched { generations.bump(tenant) }
        return result
    }

    func acrossTenants(_ body: @escaping @Sendable (any DirectoryTransaction) async throws -> Set<String>) async throws {
        let touched = try await store.write(body)
        for tenant in touched { generations.bump(tenant) }
    }
}
