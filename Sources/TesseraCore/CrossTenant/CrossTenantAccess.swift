/// What a tenant's cross-tenant access settings say about one partner: its partner configuration over the tenant's
/// default (a partner's nil setting, or a nil half of one, inherits the default's). Pure: the decisions below are
/// functions of the settings and the facts they are given.
public struct CrossTenantAccess: Sendable, Hashable {
    /// The tenant's default configuration (the system default when never written), complete.
    public var defaults: CrossTenantAccessConfiguration
    /// The partner's own configuration, when the tenant has one.
    public var partner: CrossTenantPartnerConfiguration?

    public init(defaults: CrossTenantAccessConfiguration, partner: CrossTenantPartnerConfiguration?) {
        self.defaults = defaults
        self.partner = partner
    }

    /// A decision, with the reason when it refuses.
    public enum Decision: Sendable, Hashable {
        case allowed
        case blocked(String)
    }

    /// The B2B setting named `name` as it applies to the partner.
    func effective(_ name: String) -> CrossTenantB2BSetting {
        // The system default sets every setting; blocking is the answer should a name ever be missing from it.
        let base = defaults[b2b: name] ?? CrossTenantAccessConfiguration.systemDefault[b2b: name] ?? .everyone(.blocked)
        guard let own = partner?.settings[b2b: name] else { return base }
        return CrossTenantB2BSetting(usersAndGroups: own.usersAndGroups ?? base.usersAndGroups,
                                     applications: own.applications ?? base.applications)
    }

    /// The inbound trust that applies to the partner's users.
    public var inboundTrust: CrossTenantInboundTrust {
        partner?.settings.inboundTrust ?? defaults.inboundTrust
            ?? CrossTenantInboundTrust(isMfaAccepted: false, isCompliantDeviceAccepted: false, isHybridAzureADJoinedDeviceAccepted: false)
    }

    /// Whether the partner's multifactor authentication satisfies this tenant's Conditional Access.
    public var acceptsPartnerMFA: Bool { inboundTrust.isMfaAccepted == true }

    /// What a device registered in the partner tenant shows this tenant's Conditional Access: only the claims
    /// `inboundTrust` accepts (compliance under `isCompliantDeviceAccepted`, hybrid join under
    /// `isHybridAzureADJoinedDeviceAccepted`); its other properties are this tenant's to know and it knows none, so a
    /// device filter sees them null.
    public func partnerDevice(isCompliant: Bool, trustType: String?) -> DeviceFacts {
        let trust = inboundTrust
        let hybrid = trust.isHybridAzureADJoinedDeviceAccepted == true && trustType?.lowercased() == "serverad"
        return DeviceFacts(deviceId: "", trustType: hybrid ? "ServerAd" : nil, isCompliant: trust.isCompliantDeviceAccepted == true && isCompliant)
    }

    /// B2B collaboration, `inbound` (a partner's user coming to this tenant's `applicationID`) or outbound (this
    /// tenant's user going to the partner's `applicationID`). The user is named by its id in its home tenant and the
    /// groups it is in there; a nil application asks about the user alone (an invitation being redeemed).
    public func b2bCollaboration(inbound: Bool, userID: String, groupIDs: Set<String>, applicationID: String?) -> Decision {
        let setting = effective(inbound ? "b2bCollaborationInbound" : "b2bCollaborationOutbound")
        let direction = inbound ? "inbound" : "outbound"
        switch setting.refusal(userID: userID, groupIDs: groupIDs, applicationID: applicationID) {
        case .user?: return .blocked("B2B collaboration \(direction) is blocked for this user by the cross-tenant access settings.")
        case .application?: return .blocked("B2B collaboration \(direction) is blocked for this application by the cross-tenant access settings.")
        case nil: return .allowed
        }
    }
}
