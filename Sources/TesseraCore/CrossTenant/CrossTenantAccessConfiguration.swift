/// Graph's `crossTenantAccessPolicyTargetConfiguration`: whether the listed users, groups or applications are allowed
/// or blocked (everyone not listed gets the opposite).
public struct CrossTenantTargetConfiguration: Sendable, Hashable {
    /// `accessType`.
    public enum AccessType: String, Sendable, Hashable { case allowed, blocked }
    /// `targetType`.
    public enum TargetType: String, Sendable, Hashable { case user, group, application }
    /// One `crossTenantAccessPolicyTarget`: an object id or a keyword (`AllUsers`, `AllApplications`, `Office365`,
    /// `AllMicrosoftApps`).
    public struct Target: Sendable, Hashable {
        public var target: String
        public var targetType: TargetType
        public init(_ target: String, _ targetType: TargetType) {
            self.target = target
            self.targetType = targetType
        }
    }

    public var accessType: AccessType
    public var targets: [Target]

    public init(_ accessType: AccessType, _ targets: [Target]) {
        self.accessType = accessType
        self.targets = targets
    }

    static let allUsers = "AllUsers"
    static let allApplications = "AllApplications"
    static let applicationKeywords: Set<String> = [allApplications, "Office365", "AllMicrosoftApps"]

    /// Whether a subject is let through: `isListed` tells whether a target names it.
    public func admits(_ isListed: (Target) -> Bool) -> Bool {
        let listed = targets.contains(where: isListed)
        return accessType == .allowed ? listed : !listed
    }
}

/// Which half of a cross-tenant setting refused a request.
enum CrossTenantRefusal { case user, application }

/// Graph's `crossTenantAccessPolicyB2BSetting`: B2B collaboration or direct connect, one direction.
public struct CrossTenantB2BSetting: Sendable, Hashable {
    public var usersAndGroups: CrossTenantTargetConfiguration?
    public var applications: CrossTenantTargetConfiguration?
    public init(usersAndGroups: CrossTenantTargetConfiguration?, applications: CrossTenantTargetConfiguration?) {
        self.usersAndGroups = usersAndGroups
        self.applications = applications
    }

    /// What of a request this setting refuses: the user (named by its id, a member of `groupIDs`, as its home tenant
    /// knows them), else the application (nil asks about the user alone), else nothing. An unset half refuses nothing.
    /// No Tessera application is one of Microsoft's, so Office365 and AllMicrosoftApps name none of them.
    func refusal(userID: String, groupIDs: Set<String>, applicationID: String?) -> CrossTenantRefusal? {
        let user = userID.lowercased(), groups = Set(groupIDs.map { $0.lowercased() })
        if let people = usersAndGroups, !people.admits({ target in
            switch target.targetType {
            case .user: target.target == CrossTenantTargetConfiguration.allUsers || target.target == user
            case .group: groups.contains(target.target)
            case .application: false
            }
        }) { return .user }
        if let application = applicationID?.lowercased(), let applications, !applications.admits({ target in
            target.target == CrossTenantTargetConfiguration.allApplications || target.target == application
        }) { return .application }
        return nil
    }

    /// Everyone to everything, allowed or blocked (the system defaults).
    static func everyone(_ access: CrossTenantTargetConfiguration.AccessType) -> CrossTenantB2BSetting {
        CrossTenantB2BSetting(usersAndGroups: .init(access, [.init(CrossTenantTargetConfiguration.allUsers, .user)]),
                              applications: .init(access, [.init(CrossTenantTargetConfiguration.allApplications, .application)]))
    }
}

/// Graph's `crossTenantAccessPolicyInboundTrust`: which of a partner's Conditional Access claims this tenant accepts.
public struct CrossTenantInboundTrust: Sendable, Hashable {
    public var isMfaAccepted: Bool?
    public var isCompliantDeviceAccepted: Bool?
    public var isHybridAzureADJoinedDeviceAccepted: Bool?
    public init(isMfaAccepted: Bool?, isCompliantDeviceAccepted: Bool?, isHybridAzureADJoinedDeviceAccepted: Bool?) {
        self.isMfaAccepted = isMfaAccepted
        self.isCompliantDeviceAccepted = isCompliantDeviceAccepted
        self.isHybridAzureADJoinedDeviceAccepted = isHybridAzureADJoinedDeviceAccepted
    }
}

/// Graph's `inboundOutboundPolicyConfiguration` (`automaticUserConsentSettings`).
public struct CrossTenantInboundOutbound: Sendable, Hashable {
    public var inboundAllowed: Bool?
    public var outboundAllowed: Bool?
    public init(inboundAllowed: Bool?, outboundAllowed: Bool?) {
        self.inboundAllowed = inboundAllowed
        self.outboundAllowed = outboundAllowed
    }
}

/// The settings a `crossTenantAccessPolicyConfigurationDefault` and a `crossTenantAccessPolicyConfigurationPartner`
/// share. In a partner configuration a nil setting inherits the default's.
public struct CrossTenantAccessConfiguration: Sendable, Hashable {
    public var b2bCollaborationInbound: CrossTenantB2BSetting?
    public var b2bCollaborationOutbound: CrossTenantB2BSetting?
    public var b2bDirectConnectInbound: CrossTenantB2BSetting?
    public var b2bDirectConnectOutbound: CrossTenantB2BSetting?
    public var inboundTrust: CrossTenantInboundTrust?
    public var automaticUserConsentSettings: CrossTenantInboundOutbound?
    /// Tenant restrictions v2: which external identities this tenant's users may use, from its networks and devices.
    public var tenantRestrictions: CrossTenantTenantRestrictions?

    public init(b2bCollaborationInbound: CrossTenantB2BSetting? = nil, b2bCollaborationOutbound: CrossTenantB2BSetting? = nil,
                b2bDirectConnectInbound: CrossTenantB2BSetting? = nil, b2bDirectConnectOutbound: CrossTenantB2BSetting? = nil,
                inboundTrust: CrossTenantInboundTrust? = nil, automaticUserConsentSettings: CrossTenantInboundOutbound? = nil,
                tenantRestrictions: CrossTenantTenantRestrictions? = nil) {
        self.b2bCollaborationInbound = b2bCollaborationInbound
        self.b2bCollaborationOutbound = b2bCollaborationOutbound
        self.b2bDirectConnectInbound = b2bDirectConnectInbound
        self.b2bDirectConnectOutbound = b2bDirectConnectOutbound
        self.inboundTrust = inboundTrust
        self.automaticUserConsentSettings = automaticUserConsentSettings
        self.tenantRestrictions = tenantRestrictions
    }

    /// Entra's system default (Microsoft's "Get crossTenantAccessPolicyConfigurationDefault" example): B2B
    /// collaboration allowed both ways for everyone and everything, B2B direct connect blocked, no claim trusted,
    /// no automatic consent, and tenant restrictions blocking every external identity from every application (they
    /// apply only to requests a network or device marks with this tenant's header).
    public static let systemDefault = CrossTenantAccessConfiguration(
        b2bCollaborationInbound: .everyone(.allowed), b2bCollaborationOutbound: .everyone(.allowed),
        b2bDirectConnectInbound: .everyone(.blocked), b2bDirectConnectOutbound: .everyone(.blocked),
        inboundTrust: .init(isMfaAccepted: false, isCompliantDeviceAccepted: false, isHybridAzureADJoinedDeviceAccepted: false),
        automaticUserConsentSettings: .init(inboundAllowed: false, outboundAllowed: false),
        tenantRestrictions: .init(setting: .everyone(.blocked), devices: nil))
}

/// A partner's configuration (`crossTenantAccessPolicyConfigurationPartner`), keyed by the partner's tenant id.
public struct CrossTenantPartnerConfiguration: Sendable, Hashable {
    public var tenantID: String
    public var settings: CrossTenantAccessConfiguration
    public var isServiceProvider: Bool?
    /// Set by the multitenant organization, not by a write to the partner.
    public var isInMultiTenantOrganization: Bool?
    /// `identitySynchronization`, when one was put.
    public var identitySynchronization: CrossTenantIdentitySyncPolicy?

    public init(tenantID: String, settings: CrossTenantAccessConfiguration = .init(), isServiceProvider: Bool? = nil,
                isInMultiTenantOrganization: Bool? = nil, identitySynchronization: CrossTenantIdentitySyncPolicy? = nil) {
        self.tenantID = tenantID.lowercased()
        self.settings = settings
        self.isServiceProvider = isServiceProvider
        self.isInMultiTenantOrganization = isInMultiTenantOrganization
        self.identitySynchronization = identitySynchronization
    }
}

/// `crossTenantIdentitySyncPolicyPartner`: whether users of the partner may be synchronized into this tenant.
public struct CrossTenantIdentitySyncPolicy: Sendable, Hashable {
    public var displayName: String?
    public var isSyncAllowed: Bool?
    public init(displayName: String?, isSyncAllowed: Bool?) {
        self.displayName = displayName
        self.isSyncAllowed = isSyncAllowed
    }
}
