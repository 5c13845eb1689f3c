/// Who performs a write: shown in audit logs as Graph's `auditActivityInitiator`.
public struct Actor: Sendable, Hashable {
    public enum Kind: Sendable, Hashable { case user, application, system }
    public var kind: Kind
    /// The user's or service principal's object id.
    public var id: String
    public var displayName: String
    /// For users.
    public var userPrincipalName: String?
    /// For applications.
    public var appId: String?
    /// For a user of another tenant acting here (a governing tenant's administrator): that tenant, which the audit's
    /// `initiatedBy.user` names as `homeTenantId` and `homeTenantName` (userIdentity is an open type; Entra's logs do).
    public var homeTenantId: String?
    public var homeTenantName: String?

    public init(kind: Kind, id: String, displayName: String, userPrincipalName: String? = nil, appId: String? = nil) {
        self.kind = kind
        self.id = id
        self.displayName = displayName
        self.userPrincipalName = userPrincipalName
        self.appId = appId
    }

    /// Tessera itself (provisioning, schedulers, the command line).
    public static let system = Actor(kind: .system, id: "00000000-0000-0000-0000-000000000000", displayName: "Tessera",
                                     appId: "00000000-0000-0000-0000-000000000000")

    /// The `initiatedBy` object of a directory audit.
    public var initiatedBy: JSONValue {
        switch kind {
        case .user:
            var user: [String: JSONValue] = ["id": .string(id), "displayName": .string(displayName),
                                             "userPrincipalName": .optional(userPrincipalName), "ipAddress": nil]
            if let homeTenantId {
                user["homeTenantId"] = .string(homeTenantId)
                user["homeTenantName"] = .optional(homeTenantName)
            }
            return ["user": .object(user), "app": nil]
        case .application, .system:
            return ["app": ["appId": .optional(appId), "displayName": .string(displayName),
                            "servicePrincipalId": .string(id), "servicePrincipalName": .string(displayName)],
                    "user": nil]
        }
    }
}
