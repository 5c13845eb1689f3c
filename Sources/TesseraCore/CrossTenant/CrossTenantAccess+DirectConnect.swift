/// B2B direct connect, as Entra decides it: a partner's user reaches this tenant's application without a guest object
/// here, only when the resource tenant's inbound setting and the home tenant's outbound setting both admit the user
/// (by id or by one of its home groups) and the application. Each tenant answers for its own side.
extension CrossTenantAccess {
    /// Which side refused, for the error a sign-in gets (Entra's AADSTS500212 for the home tenant's outbound policy,
    /// AADSTS500213 for the resource tenant's inbound one).
    public enum DirectConnectRefusal: Sendable, Hashable {
        /// The resource tenant lets none of the partner's users in by direct connect: there is no connection, and the
        /// user is simply not known there.
        case notEstablished
        /// The setting does not admit this user (nor any of its groups).
        case user(String)
        /// The setting does not admit this application.
        case application(String)
    }

    /// B2B direct connect, `inbound` (a partner's user coming to this tenant's `applicationID`) or outbound (this
    /// tenant's user going to the partner's `applicationID`). The user is named by its id in its home tenant and the
    /// groups it is in there; a nil application asks about the user alone.
    public func b2bDirectConnect(inbound: Bool, userID: String, groupIDs: Set<String>, applicationID: String?) -> DirectConnectRefusal? {
        let setting = effective(inbound ? "b2bDirectConnectInbound" : "b2bDirectConnectOutbound")
        let direction = inbound ? "inbound" : "outbound"
        if inbound, let people = setting.usersAndGroups, !people.admitsAnyone { return .notEstablished }
        switch setting.refusal(userID: userID, groupIDs: groupIDs, applicationID: applicationID) {
        case .user?: return .user("B2B direct connect \(direction) is blocked for this user by the cross-tenant access settings.")
        case .application?: return .application("B2B direct connect \(direction) is blocked for this application by the cross-tenant access settings.")
        case nil: return nil
        }
    }

    /// Whether both tenants' automatic redemption settings suppress the consent prompt for the partner's users:
    /// asked of the resource tenant's settings for the home tenant (`inbound`) or of the home tenant's settings for the
    /// resource tenant (outbound).
    public func automaticRedemption(inbound: Bool) -> Bool {
        let own = partner?.settings.automaticUserConsentSettings, base = defaults.automaticUserConsentSettings
        return (inbound ? own?.inboundAllowed ?? base?.inboundAllowed : own?.outboundAllowed ?? base?.outboundAllowed) == true
    }
}

extension CrossTenantTargetConfiguration {
    /// Whether anyone at all is let through: not when everyone is blocked, nor when only an empty list is allowed.
    public var admitsAnyone: Bool {
        switch accessType {
        case .allowed: !targets.isEmpty
        case .blocked: !targets.contains { $0.target == Self.allUsers && $0.targetType == .user }
        }
    }
}
