/// The kinds of object the directory stores.
public struct ObjectKind: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public static let user = ObjectKind(rawValue: "user")
    public static let group = ObjectKind(rawValue: "group")
    public static let application = ObjectKind(rawValue: "application")
    public static let servicePrincipal = ObjectKind(rawValue: "servicePrincipal")
    public static let device = ObjectKind(rawValue: "device")
    public static let organization = ObjectKind(rawValue: "organization")
    public static let domain = ObjectKind(rawValue: "domain")
    public static let appRoleAssignment = ObjectKind(rawValue: "appRoleAssignment")
    public static let roleAssignment = ObjectKind(rawValue: "unifiedRoleAssignment")
    /// A role in the legacy `directoryRoles` view; never stored (a view over role assignments).
    public static let directoryRole = ObjectKind(rawValue: "directoryRole")

    /// The kinds that are directory objects (addressable at `/directoryObjects/{id}`).
    public static let directoryObjects: [ObjectKind] = [.user, .group, .application, .servicePrincipal, .device, .organization]

    /// The kinds that go to deleted items when deleted.
    public static let softDeletable: [ObjectKind] = [.user, .group, .application, .servicePrincipal, .conditionalAccessPolicy, .namedLocation]

    /// Graph's `@odata.type` for this kind.
    public var odataType: String { "#microsoft.graph.\(rawValue)" }

    /// Kinds that go to `/directory/deletedItems` for 30 days when deleted.
    public var isSoftDeletable: Bool {
        self == .user || self == .group || self == .application || self == .servicePrincipal
            || self == .conditionalAccessPolicy || self == .namedLocation
    }

    /// The Graph entity set name (`users`, `groups`, …).
    public var entitySet: String {
        switch self {
        case .user: "users"
        case .group: "groups"
        case .application: "applications"
        case .servicePrincipal: "servicePrincipals"
        case .device: "devices"
        case .organization: "organization"
        case .domain: "domains"
        case .conditionalAccessPolicy: "identity/conditionalAccess/policies"
        case .namedLocation: "identity/conditionalAccess/namedLocations"
        case .oauth2PermissionGrant: "oauth2PermissionGrants"
        default: rawValue
        }
    }

    /// Word used in audit activity names ("Add user", "Update group").
    var auditNoun: String {
        switch self {
        case .servicePrincipal: "service principal"
        case .appRoleAssignment: "app role assignment"
        case .roleAssignment: "member to role"
        case .conditionalAccessPolicy: "conditional access policy"
        case .namedLocation: "named location"
        case .authorizationPolicy: "authorization policy"
        case .oauth2PermissionGrant: "delegated permission grant"
        case .authenticationStrengthPolicy: "authentication strength policy"
        default: rawValue
        }
    }

    /// Graph's audit `category` for writes to this kind.
    public var auditCategory: String {
        switch self {
        case .user: "UserManagement"
        case .group: "GroupManagement"
        case .application, .servicePrincipal, .appRoleAssignment: "ApplicationManagement"
        case .device: "Device"
        case .roleAssignment: "RoleManagement"
        case .authenticationMethodsPolicy, .conditionalAccessPolicy, .namedLocation, .authorizationPolicy, .authenticationStrengthPolicy: "Policy"
        case .oauth2PermissionGrant: "ApplicationManagement"
        default: "DirectoryManagement"
        }
    }
}
