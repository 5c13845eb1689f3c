import Testing
import TesseraCore

/// `CrossTenantAccess` is a pure function of a tenant's default, its partner configuration and the facts of one
/// B2B collaboration: table-tested here without a store.
@Suite("Cross-tenant access decisions (B2B collaboration, inbound trust)")
struct CrossTenantAccessDecisionTests {
    static let partner = "3d0f5dec-5d3d-455c-8016-e2af1ae4d31a"
    static let alice = "0a0a0a0a-0000-4000-8000-00000000000a", bob = "0b0b0b0b-0000-4000-8000-00000000000b"
    static let finance = "0f0f0f0f-0000-4000-8000-00000000000f"
    static let payroll = "0c0c0c0c-0000-4000-8000-00000000000c", wiki = "0d0d0d0d-0000-4000-8000-00000000000d"

    typealias Target = CrossTenantTargetConfiguration.Target

    static func people(_ access: CrossTenantTargetConfiguration.AccessType, _ targets: [Target]) -> CrossTenantB2BSetting {
        CrossTenantB2BSetting(usersAndGroups: .init(access, targets), applications: nil)
    }

    static func access(inbound: CrossTenantB2BSetting?, defaults: CrossTenantAccessConfiguration = .systemDefault) -> CrossTenantAccess {
        CrossTenantAccess(defaults: defaults, partner: CrossTenantPartnerConfiguration(
            tenantID: partner, settings: CrossTenantAccessConfiguration(b2bCollaborationInbound: inbound)))
    }

    @Test("who is let in, by the partner's users and groups over the default", arguments: [
        // (setting, user, in finance, expected)
        (nil as CrossTenantB2BSetting?, alice, false, true),
        (people(.allowed, [Target(alice, .user)]), alice, false, true),
        (people(.allowed, [Target(alice, .user)]), bob, false, false),
        (people(.blocked, [Target(alice, .user)]), alice, false, false),
        (people(.blocked, [Target(alice, .user)]), bob, false, true),
        (people(.allowed, [Target(finance, .group)]), bob, true, true),
        (people(.allowed, [Target(finance, .group)]), bob, false, false),
        (people(.blocked, [Target("AllUsers", .user)]), alice, true, false),
    ])
    func usersAndGroups(_ setting: CrossTenantB2BSetting?, _ user: String, _ inFinance: Bool, _ expected: Bool) {
        let decision = Self.access(inbound: setting)
            .b2bCollaboration(inbound: true, userID: user, groupIDs: inFinance ? [Self.finance] : [], applicationID: Self.payroll)
        #expect((decision == .allowed) == expected)
    }

    @Test("applications: a partner that names only its users inherits the default's applications; a listed app is allowed or blocked")
    func applications() {
        let blockedApps = CrossTenantAccessConfiguration(
            b2bCollaborationInbound: CrossTenantB2BSetting(usersAndGroups: .init(.allowed, [Target("AllUsers", .user)]),
                                                           applications: .init(.allowed, [Target(Self.wiki, .application)])))
        let inherits = Self.access(inbound: Self.people(.allowed, [Target(Self.alice, .user)]), defaults: blockedApps)
        #expect(inherits.b2bCollaboration(inbound: true, userID: Self.alice, groupIDs: [], applicationID: Self.wiki) == .allowed)
        #expect(inherits.b2bCollaboration(inbound: true, userID: Self.alice, groupIDs: [], applicationID: Self.payroll) != .allowed)
        // Redeeming an invitation names no application: only the users decide.
        #expect(inherits.b2bCollaboration(inbound: true, userID: Self.alice, groupIDs: [], applicationID: nil) == .allowed)
        let blocksOne = Self.access(inbound: CrossTenantB2BSetting(usersAndGroups: nil, applications: .init(.blocked, [Target(Self.payroll, .application)])))
        #expect(blocksOne.b2bCollaboration(inbound: true, userID: Self.bob, groupIDs: [], applicationID: Self.payroll) != .allowed)
        #expect(blocksOne.b2bCollaboration(inbound: true, userID: Self.bob, groupIDs: [], applicationID: Self.wiki) == .allowed)
        // Office365 and AllMicrosoftApps name none of this deployment's applications.
        let microsoftOnly = Self.access(inbound: CrossTenantB2BSetting(usersAndGroups: nil, applications: .init(.allowed, [Target("Office365", .application)])))
        #expect(microsoftOnly.b2bCollaboration(inbound: true, userID: Self.bob, groupIDs: [], applicationID: Self.wiki) != .allowed)
        // Outbound is decided by the outbound setting alone.
        #expect(blocksOne.b2bCollaboration(inbound: false, userID: Self.bob, groupIDs: [], applicationID: Self.payroll) == .allowed)
    }

    @Test("the partner's MFA is trusted only when its inbound trust (or else the default's) accepts it", arguments: [
        (nil as Bool?, nil as Bool?, false), (true, nil, true), (nil, true, true), (false, true, true), (true, false, false),
    ])
    func inboundTrust(_ defaultAccepts: Bool?, _ partnerAccepts: Bool?, _ expected: Bool) {
        var defaults = CrossTenantAccessConfiguration.systemDefault
        if let defaultAccepts { defaults.inboundTrust = .init(isMfaAccepted: defaultAccepts, isCompliantDeviceAccepted: false, isHybridAzureADJoinedDeviceAccepted: false) }
        var partner = CrossTenantPartnerConfiguration(tenantID: Self.partner)
        if let partnerAccepts { partner.settings.inboundTrust = .init(isMfaAccepted: partnerAccepts, isCompliantDeviceAccepted: nil, isHybridAzureADJoinedDeviceAccepted: nil) }
        #expect(CrossTenantAccess(defaults: defaults, partner: partner).acceptsPartnerMFA == expected)
    }
}
