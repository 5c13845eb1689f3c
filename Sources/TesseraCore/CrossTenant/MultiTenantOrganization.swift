extension ObjectKind {
    /// A tenant's multitenant organization (one object; in a member tenant, a pointer to the tenant that holds the list).
    public static let multiTenantOrganization = ObjectKind(rawValue: "multiTenantOrganization")
    /// A tenant in a multitenant organization, kept by the tenant that created the organization.
    public static let multiTenantOrganizationMember = ObjectKind(rawValue: "multiTenantOrganizationMember")
    /// A tenant's request to join a multitenant organization (one object).
    public static let multiTenantOrganizationJoinRequest = ObjectKind(rawValue: "multiTenantOrganizationJoinRequestRecord")
}

/// A multitenant organization as a tenant sees it. The list of tenants lives in the tenant that created it (`homeTenantID`);
/// every member tenant's record points there, so one transaction changes both sides.
public struct MultiTenantOrganization: Sendable, Hashable {
    /// The id in this tenant (each tenant's own, as Entra's are).
    public var id: String
    public var createdDateTime: String
    public var displayName: String
    public var description: String?
    /// The tenant that keeps the list of tenants.
    public var homeTenantID: String

    init(stored body: [String: JSONValue]) throws {
        guard let id = body["id"]?.stringValue, let home = body["homeTenantId"]?.stringValue else {
            throw DirectoryError(.internalError, "A stored multitenant organization has no id or home tenant.")
        }
        self.init(id: id, createdDateTime: body["createdDateTime"]?.stringValue ?? "", displayName: body["displayName"]?.stringValue ?? "",
                  description: body["description"]?.stringValue, homeTenantID: home)
    }

    init(id: String, createdDateTime: String, displayName: String, description: String?, homeTenantID: String) {
        self.id = id
        self.createdDateTime = createdDateTime
        self.displayName = displayName
        self.description = description
        self.homeTenantID = homeTenantID
    }

    var stored: [String: JSONValue] { graph.merging(["homeTenantId": .string(homeTenantID)]) { $1 } }

    /// Graph's `multiTenantOrganization`.
    public var graph: [String: JSONValue] {
        ["id": .string(id), "createdDateTime": .string(createdDateTime), "displayName": .string(displayName),
         "description": .optional(description), "state": "active"]
    }

    /// What Graph shows a tenant that is in no multitenant organization.
    public static let inactive: [String: JSONValue] = ["id": nil, "createdDateTime": nil, "displayName": nil, "description": nil, "state": "inactive"]
}

/// A tenant in a multitenant organization (`multiTenantOrganizationMember`).
public struct MultiTenantOrganizationMember: Sendable, Hashable {
    public enum Role: String, Sendable, Hashable { case owner, member }
    public enum State: String, Sendable, Hashable { case pending, active, removed }

    public var tenantID: String
    public var displayName: String
    public var role: Role
    public var state: State
    public var addedByTenantID: String
    public var addedDateTime: String
    public var joinedDateTime: String?

    init(stored body: [String: JSONValue]) throws {
        guard let tenant = body["tenantId"]?.stringValue, let role = body["role"]?.stringValue.flatMap(Role.init(rawValue:)),
              let state = body["state"]?.stringValue.flatMap(State.init(rawValue:)) else {
            throw DirectoryError(.internalError, "A stored multitenant organization member is incomplete.")
        }
        self.init(tenantID: tenant, displayName: body["displayName"]?.stringValue ?? "", role: role, state: state,
                  addedByTenantID: body["addedByTenantId"]?.stringValue ?? "", addedDateTime: body["addedDateTime"]?.stringValue ?? "",
                  joinedDateTime: body["joinedDateTime"]?.stringValue)
    }

    init(tenantID: String, displayName: String, role: Role, state: State, addedByTenantID: String, addedDateTime: String, joinedDateTime: String?) {
        self.tenantID = tenantID.lowercased()
        self.displayName = displayName
        self.role = role
        self.state = state
        self.addedByTenantID = addedByTenantID
        self.addedDateTime = addedDateTime
        self.joinedDateTime = joinedDateTime
    }

    /// Graph's `multiTenantOrganizationMember` (its id is the tenant id, as Entra's).
    public var graph: [String: JSONValue] {
        ["id": .string(tenantID), "tenantId": .string(tenantID), "displayName": .string(displayName), "role": .string(role.rawValue),
         "state": .string(state.rawValue), "addedByTenantId": .string(addedByTenantID), "addedDateTime": .string(addedDateTime),
         "joinedDateTime": .optional(joinedDateTime), "transitionDetails": nil]
    }
}

/// A tenant's request to join a multitenant organization (`multiTenantOrganizationJoinRequestRecord`).
public struct MultiTenantOrganizationJoinRequest: Sendable, Hashable {
    public static let noTenant = "00000000-0000-0000-0000-000000000000"

    public var id: String
    public var addedByTenantID: String
    public var memberState: MultiTenantOrganizationMember.State?
    public var role: MultiTenantOrganizationMember.Role?

    init(id: String, addedByTenantID: String = Self.noTenant, memberState: MultiTenantOrganizationMember.State? = nil,
         role: MultiTenantOrganizationMember.Role? = nil) {
        self.id = id
        self.addedByTenantID = addedByTenantID
        self.memberState = memberState
        self.role = role
    }

    init(stored body: [String: JSONValue]) {
        self.init(id: body["id"]?.stringValue ?? "", addedByTenantID: body["addedByTenantId"]?.stringValue ?? Self.noTenant,
                  memberState: body["memberState"]?.stringValue.flatMap(MultiTenantOrganizationMember.State.init(rawValue:)),
                  role: body["role"]?.stringValue.flatMap(MultiTenantOrganizationMember.Role.init(rawValue:)))
    }

    /// Graph's shape.
    public var graph: [String: JSONValue] {
        ["id": .string(id), "addedByTenantId": .string(addedByTenantID), "memberState": .optional(memberState?.rawValue),
         "role": .optional(role?.rawValue), "transitionDetails": nil]
    }
}
