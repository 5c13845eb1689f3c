/// A Conditional Access policy compiled for evaluation: keyword lists turned into flags, ids into sets, named
/// locations into range tables, the device filter into a tree. Built once per policy change, read by every decision.
struct CompiledPolicy: Sendable {
    enum State: Sendable { case enabled, reportOnly, disabled }

    /// Who a user condition includes or excludes.
    struct Principals: Sendable {
        var all = false
        var users: Set<String> = []
        var groups: Set<String> = []
        var roles: Set<String> = []
        var guests: Guests?
    }

    /// `includeGuestsOrExternalUsers` / `excludeGuestsOrExternalUsers` (or the legacy `GuestsOrExternalUsers`
    /// keyword, which means every kind from every tenant).
    struct Guests: Sendable {
        var types: Set<GuestOrExternalUserType>
        /// Nil for every external tenant (`membershipKind: all`).
        var tenants: Set<String>?

        func contains(_ external: SignInFacts.ExternalUserKind) -> Bool {
            guard types.contains(external.type) else { return false }
            // An internal guest has no external tenant: the tenant list does not narrow it.
            guard let tenants, external.type != .internalGuest else { return true }
            return external.homeTenantID.map(tenants.contains) ?? false
        }
    }

    struct ServicePrincipals: Sendable {
        /// `ServicePrincipalsInMyTenant`.
        var all = false
        var include: Set<String> = []
        var exclude: Set<String> = []
    }

    struct Applications: Sendable {
        var includeAll = false
        var include: Set<String> = []
        var exclude: Set<String> = []
        var userActions: Set<UserAction> = []
        var authenticationContexts: Set<String> = []
    }

    struct Platforms: Sendable {
        var includeAll = false
        var include: Set<DevicePlatform> = []
        var exclude: Set<DevicePlatform> = []
    }

    struct Locations: Sendable {
        var includeAll = false
        var includeTrusted = false
        var include: [NamedLocation] = []
        var excludeAll = false
        var excludeTrusted = false
        var exclude: [NamedLocation] = []
    }

    struct DeviceCondition: Sendable {
        /// True for `mode: include` (the policy applies to matching devices), false for `exclude`.
        var include: Bool
        var filter: DeviceFilter
    }

    struct Grant: Sendable {
        var block = false
        var anyOf = false
        var controls: [ConditionalAccessRequirement] = []
        var names: [String] = []
    }

    struct SignInFrequency: Sendable {
        /// Nil for `everyTime`.
        var seconds: Double?
    }

    var id: String
    var displayName: String
    var state: State
    /// Set when the policy as a whole cannot be read: it fails closed wherever it is enabled.
    var invalid: String?

    var includeUsers = Principals()
    var excludeUsers = Principals()
    var servicePrincipals: ServicePrincipals?
    var applications = Applications()
    var platforms: Platforms?
    var locations: Locations?
    var clientAppTypes: Set<ClientAppType>?
    var device: DeviceCondition?
    var userRisk: Set<RiskLevel>?
    var signInRisk: Set<RiskLevel>?
    var servicePrincipalRisk: Set<RiskLevel>?
    var insiderRisk: Set<String>?
    var transferMethods: Set<String>?
    /// Conditions the engine cannot evaluate (an unknown keyword, location or filter), each with its reason: if the
    /// policy would otherwise apply, it fails closed.
    var unevaluable: [(ConditionalAccessConditions, String)] = [] {
        didSet { unevaluableConditions = unevaluable.reduce(into: ConditionalAccessConditions(rawValue: 0)) { $0.formUnion($1.0) } }
    }
    /// The union of the unevaluable conditions.
    private(set) var unevaluableConditions = ConditionalAccessConditions(rawValue: 0)

    var grant: Grant?
    var signInFrequency: SignInFrequency?
    var persistentBrowser: String?
    /// The Global Secure Access security profile (`globalSecureAccessFilteringProfile.profileId`, lowercased) that the
    /// forward proxy applies to the internet traffic of the users in scope.
    var filteringProfile: String?
    var sessionControlNames: [String] = []
}

/// A named location compiled: its ranges merged, or its countries (`NamedLocationTable` indexes them all).
struct NamedLocation: Sendable {
    var id: String
    var isTrusted: Bool
    var ranges: IPAddressRangeSet
    /// Nil for an IP location.
    var countries: Set<String>?
    var includeUnknownCountries: Bool
}
