import Testing
import TesseraCore

/// `CrossTenantAccess.b2bDirectConnect` and `automaticRedemption` are pure functions of a tenant's default and its
/// partner configuration: table-tested here without a store.
@Suite("Cross-tenant access decisions (B2B direct connect, automatic redemption)")
struct DirectConnectDecisionTests {
    typealias Target = CrossTenantTargetConfiguration.Target
    typealias Refusal = CrossTenantAccess.DirectConnectRefusal
    static let alice = CrossTenantAccessDecisionTests.alice, bob = CrossTenantAccessDecisionTests.bob
    static let finance = CrossTenantAccessDecisionTests.finance, wiki = CrossTenantAccessDecisionTests.wiki
    static let payroll = CrossTenantAccessDecisionTests.payroll

    static func setting(_ people: CrossTenantTargetConfiguration?, apps: CrossTenantTargetConfiguration? = nil) -> CrossTenantB2BSetting {
        CrossTenantB2BSetting(usersAndGroups: people, applications: apps)
    }

    static func access(inbound: CrossTenantB2BSetting? = nil, outbound: CrossTenantB2BSetting? = nil) -> CrossTenantAccess {
        CrossTenantAccess(defaults: .systemDefault, partner: CrossTenantPartnerConfiguration(
            tenantID: CrossTenantAccessDecisionTests.partner,
            settings: CrossTenantAccessConfiguration(b2bDirectConnectInbound: inbound, b2bDirectConnectOutbound: outbound)))
    }

    static let allApps = CrossTenantTargetConfiguration(.allowed, [Target("AllApplications", .application)])

    @Test("inbound: nothing configured is no connection; then the user, its groups and the application decide", arguments: [
        // (inbound setting, user, in finance, application, expected)
        (nil as CrossTenantB2BSetting?, alice, false, payroll, Refusal.notEstablished as Refusal?),
        (setting(.init(.allowed, []), apps: allApps), alice, false, payroll, .notEstablished),
        (setting(.init(.blocked, [Target("AllUsers", .user)]), apps: allApps), alice, false, payroll, .notEstablished),
        (setting(.init(.allowed, [Target("AllUsers", .user)]), apps: allApps), alice, false, payroll, nil),
        (setting(.init(.allowed, [Target(finance, .group)]), apps: allApps), bob, true, payroll, nil),
        (setting(.init(.allowed, [Target(finance, .group)]), apps: allApps), bob, false, payroll,
         .user("B2B direct connect inbound is blocked for this user by the cross-tenant access settings.")),
        (setting(.init(.blocked, [Target(alice, .user)]), apps: allApps), alice, false, payroll,
         .user("B2B direct connect inbound is blocked for this user by the cross-tenant access settings.")),
        (setting(.init(.blocked, [Target(alice, .user)]), apps: allApps), bob, false, payroll, nil),
        (setting(.init(.allowed, [Target("AllUsers", .user)]), apps: .init(.allowed, [Target(wiki, .application)])), alice, false, payroll,
         .application("B2B direct connect inbound is blocked for this application by the cross-tenant access settings.")),
        (setting(.init(.allowed, [Target("AllUsers", .user)]), apps: .init(.allowed, [Target(wiki, .application)])), alice, false, wiki, nil),
        // The system default's applications (all blocked) apply when the partner names only users.
        (setting(.init(.allowed, [Target("AllUsers", .user)])), alice, false, wiki,
         .application("B2B direct connect inbound is blocked for this application by the cross-tenant access settings.")),
    ])
    func inbound(_ setting: CrossTenantB2BSetting?, _ user: String, _ inFinance: Bool, _ app: String, _ expected: Refusal?) {
        let decision = Self.access(inbound: setting)
            .b2bDirectConnect(inbound: true, userID: user, groupIDs: inFinance ? [Self.finance] : [], applicationID: app)
        #expect(decision == expected)
    }

    @Test("outbound is decided by the outbound setting alone, and never as 'not established'")
    func outbound() {
        let everyone = Self.setting(.init(.allowed, [Target("AllUsers", .user)]), apps: Self.allApps)
        #expect(Self.access(inbound: everyone).b2bDirectConnect(inbound: false, userID: Self.alice, groupIDs: [], applicationID: Self.wiki)
                == .user("B2B direct connect outbound is blocked for this user by the cross-tenant access settings."))
        #expect(Self.access(outbound: everyone).b2bDirectConnect(inbound: false, userID: Self.alice, groupIDs: [], applicationID: Self.wiki) == nil)
        let notBob = Self.setting(.init(.blocked, [Target(Self.bob, .user)]), apps: Self.allApps)
        #expect(Self.access(outbound: notBob).b2bDirectConnect(inbound: false, userID: Self.bob, groupIDs: [], applicationID: nil)
                == .user("B2B direct connect outbound is blocked for this user by the cross-tenant access settings."))
    }

    @Test("automatic redemption: the partner's own setting, else the default's, in the direction asked", arguments: [
        // (inboundAllowed, outboundAllowed, inbound asked, expected)
        (true as Bool?, nil as Bool?, true, true), (true, nil, false, false), (nil, true, false, true), (nil, nil, true, false), (false, true, true, false),
    ])
    func automaticRedemption(_ inboundAllowed: Bool?, _ outboundAllowed: Bool?, _ inbound: Bool, _ expected: Bool) {
        let access = CrossTenantAccess(defaults: .systemDefault, partner: CrossTenantPartnerConfiguration(
            tenantID: CrossTenantAccessDecisionTests.partner,
            settings: CrossTenantAccessConfiguration(automaticUserConsentSettings: .init(inboundAllowed: inboundAllowed, outboundAllowed: outboundAllowed))))
        #expect(access.automaticRedemption(inbound: inbound) == expected)
        #expect(CrossTenantAccess(defaults: .systemDefault, partner: nil).automaticRedemption(inbound: inbound) == false)
    }
}
