/// A tenant's compiled policies laid out for deciding: for every condition, the policies it concerns as bit rows
/// (which policies include or exclude each user, group, role, application, service principal, named location and
/// authentication context; which match each platform, client type, risk level and user action), and for the
/// policies that apply, their controls as plain values. A decision then costs a lookup per id of the sign-in, a few
/// word ORs per condition, and work only for the policies that apply. Built once per policy change.
final class DecisionProgram: Sendable {
    /// The rows of `fixed`.
    enum Fixed {
        static let evaluable = 0, enabled = 1, invalid = 2
        static let includeAllUsers = 3, excludeAllUsers = 4, allServicePrincipals = 5
        static let includeAllApplications = 6, targetsApplications = 7, hasContexts = 8, hasUserActions = 9
        static let userAction = 10  // + UserAction.allCases index
        static let platforms = 12, platform = 13  // + DevicePlatform.allCases index, or 6 for none
        static let locations = 20, includeAllLocations = 21, excludeAllLocations = 22, includeTrusted = 23, excludeTrusted = 24
        static let clientApps = 25, clientApp = 26  // + ClientAppType.allCases index
        static let devices = 30
        static let userRisk = 31, userRiskLevel = 32  // + RiskLevel.allCases index
        static let signInRisk = 36, signInRiskLevel = 37
        static let servicePrincipalRisk = 41, servicePrincipalRiskLevel = 42
        static let insiderRisk = 46, insiderRiskLevel = 47  // + index in insiderLevels
        static let authenticationFlow = 50, transferMethod = 51  // + index in transferMethods
        /// + flag index: the evaluable policies whose condition of that flag can be read.
        static let readable = 53
        static let count = readable + Flag.count
    }

    /// The conditions in the order of `ConditionalAccessConditions.names`, by index.
    enum Flag {
        static let all = ConditionalAccessConditions.names.map(\.1)
        static let count = 14
        static let users = 0, workloadIdentities = 1, application = 2, userActions = 3, authenticationContext = 4
        static let devicePlatform = 5, devices = 6, clientApps = 7, location = 8, signInRisk = 9, userRisk = 10
        static let insiderRisk = 11, authenticationFlow = 12, servicePrincipalRisk = 13
    }

    static let insiderLevels = ["minor", "moderate", "elevated"]
    static let transferMethods = ["devicecodeflow", "authenticationtransfer"]

    /// A grant control as a decision checks it.
    enum Control: Sendable {
        case strength(Int)
        case compliantDevice
        case hybridJoinedDevice
        case never
    }

    /// What a decision reads of a policy that applies, as plain values.
    struct Controls: Sendable {
        var enabled = false
        /// A condition cannot be read: the policy fails closed where it applies.
        var unevaluable = false
        var block = false
        var anyOf = false
        var firstControl = 0
        var controlCount = 0
        /// Bits of the controls (by position) Tessera cannot satisfy, and of those a new sign-in can.
        var unsupported: UInt64 = 0
        var interactive: UInt64 = 0
        /// The sign-in frequency in seconds (`everyTime`: Entra's tolerance); nil when not set.
        var frequency: Double?
        var setsPersistentBrowser = false
    }

    /// An authentication strength as combinations in `combinations`; `restricted` when only some passkeys count.
    struct Strength: Sendable {
        var first: Int
        var count: Int
        var restricted: Bool
    }

    /// Guests and external users a policy includes or excludes (read only for such users).
    struct GuestRule: Sendable {
        var policy: Int
        var include: Bool
        var guests: CompiledPolicy.Guests
    }

    let compiled: [ConditionalAccessEngine.Compiled]
    let count: Int
    let words: Int
    /// Owns the frozen tables below.
    private let arena: Arena
    let fixed: FrozenRows
    let controls: FrozenArray<Controls>
    let grantControls: FrozenArray<Control>
    let strengths: [AuthenticationStrength]
    let strengthRanges: FrozenArray<Strength>
    /// The combinations of every strength, as `AuthenticationMethodModes` raw values.
    let combinations: FrozenArray<UInt32>
    /// Ids and, for each number `j`, row `2j` (policies including it) and `2j + 1` (excluding it).
    let users: FrozenIDTable, userRows: FrozenRows
    let groups: FrozenIDTable, groupRows: FrozenRows
    /// The group ids by number, for a user in more groups than the policies name.
    let groupIDs: [String]
    let roles: FrozenIDTable, roleRows: FrozenRows
    let applications: FrozenIDTable, applicationRows: FrozenRows
    let servicePrincipals: FrozenIDTable, servicePrincipalRows: FrozenRows
    let guestRules: [GuestRule]
    /// Authentication context ids, each with a row of the policies naming it.
    let contexts: [String: Int], contextRows: FrozenRows
    let hasContexts: Bool
    /// Distinct device filters; for each `u`, row `2u` (policies in include mode) and `2u + 1` (exclude mode).
    let deviceFilters: [DeviceFilter], deviceRows: FrozenRows
    let locations: NamedLocationTable
    /// For each location `l`, row `2l` (policies including it) and `2l + 1` (excluding it).
    let locationRows: FrozenRows
    let evaluatesAnything: Bool

    init(_ compiled: [ConditionalAccessEngine.Compiled], locations byID: [String: NamedLocation]) {
        assert(Flag.all.count == Flag.count)
        let arena = Arena()
        self.arena = arena
        self.compiled = compiled
        count = compiled.count
        var fixed = PolicyRows(rows: Fixed.count, policies: compiled.count)
        words = fixed.words
        let namedLocations = byID.values.sorted { $0.id < $1.id }
        let locationNumbers = Dictionary(uniqueKeysWithValues: namedLocations.enumerated().map { ($0.element.id, $0.offset) })
        var users = IDTable(), groups = IDTable(), roles = IDTable(), applications = IDTable(), servicePrincipals = IDTable()
        var userRows = PolicyRows(rows: 0, policies: count), groupRows = userRows, roleRows = userRows
        var applicationRows = userRows, servicePrincipalRows = userRows, contextRows = userRows, deviceRows = userRows
        var locationRows = PolicyRows(rows: 2 * namedLocations.count, policies: count)
        var contexts: [String: Int] = [:]
        var deviceFilters: [DeviceFilter: Int] = [:]
        var guestRules: [GuestRule] = []
        var controls: [Controls] = []
        var grantControls: [Control] = []
        var strengthNumbers: [String: Int] = [:]
        var strengths: [AuthenticationStrength] = [], strengthRanges: [Strength] = [], combinations: [UInt32] = []

        for (i, reference) in compiled.enumerated() {
            let policy = reference.policy
            var entry = Controls(enabled: policy.state == .enabled)
            if policy.state == .enabled { fixed.insert(i, row: Fixed.enabled) }
            guard policy.state != .disabled else { controls.append(entry); continue }
            guard policy.invalid == nil else {
                fixed.insert(i, row: Fixed.invalid)
                controls.append(entry)
                continue
            }
            fixed.insert(i, row: Fixed.evaluable)
            for (f, flag) in Flag.all.enumerated() where !policy.unevaluableConditions.contains(flag) {
                fixed.insert(i, row: Fixed.readable + f)
            }
            // Users, groups, roles and guests.
            for (principals, offset) in [(policy.includeUsers, 0), (policy.excludeUsers, 1)] {
                if principals.all { fixed.insert(i, row: offset == 0 ? Fixed.includeAllUsers : Fixed.excludeAllUsers) }
                for id in principals.users { userRows.insert(i, row: 2 * users.number(id) + offset) }
                for id in principals.groups { groupRows.insert(i, row: 2 * groups.number(id) + offset) }
                for id in principals.roles { roleRows.insert(i, row: 2 * roles.number(id) + offset) }
                if let guests = principals.guests { guestRules.append(GuestRule(policy: i, include: offset == 0, guests: guests)) }
            }
            if let principals = policy.servicePrincipals {
                if principals.all { fixed.insert(i, row: Fixed.allServicePrincipals) }
                for id in principals.include { servicePrincipalRows.insert(i, row: 2 * servicePrincipals.number(id)) }
                for id in principals.exclude { servicePrincipalRows.insert(i, row: 2 * servicePrincipals.number(id) + 1) }
            }
            if let levels = policy.servicePrincipalRisk { Self.insert(i, levels, into: &fixed, configured: Fixed.servicePrincipalRisk, first: Fixed.servicePrincipalRiskLevel) }
            // Applications, user actions, authentication contexts.
            let apps = policy.applications
            if apps.includeAll { fixed.insert(i, row: Fixed.includeAllApplications) }
            if apps.includeAll || !apps.include.isEmpty { fixed.insert(i, row: Fixed.targetsApplications) }
            if !apps.authenticationContexts.isEmpty { fixed.insert(i, row: Fixed.hasContexts) }
            if !apps.userActions.isEmpty { fixed.insert(i, row: Fixed.hasUserActions) }
            for id in apps.include { applicationRows.insert(i, row: 2 * applications.number(id)) }
            for id in apps.exclude { applicationRows.insert(i, row: 2 * applications.number(id) + 1) }
            for action in apps.userActions { fixed.insert(i, row: Fixed.userAction + action.index) }
            for context in apps.authenticationContexts {
                let number = contexts[context] ?? contexts.count
                contexts[context] = number
                contextRows.insert(i, row: number)
            }
            // Platforms, locations, client apps, devices, risks, flows.
            if let platforms = policy.platforms {
                fixed.insert(i, row: Fixed.platforms)
                for platform in DevicePlatform.allCases.map({ Optional($0) }) + [nil] {
                    let included = platforms.includeAll || platform.map(platforms.include.contains) ?? false
                    let excluded = platform.map(platforms.exclude.contains) ?? false
                    if included && !excluded { fixed.insert(i, row: Fixed.platform + (platform?.index ?? 6)) }
                }
            }
            if let conditions = policy.locations {
                fixed.insert(i, row: Fixed.locations)
                if conditions.includeAll { fixed.insert(i, row: Fixed.includeAllLocations) }
                if conditions.excludeAll { fixed.insert(i, row: Fixed.excludeAllLocations) }
                if conditions.includeTrusted { fixed.insert(i, row: Fixed.includeTrusted) }
                if conditions.excludeTrusted { fixed.insert(i, row: Fixed.excludeTrusted) }
                for location in conditions.include { locationRows.insert(i, row: 2 * locationNumbers[location.id]!) }
                for location in conditions.exclude { locationRows.insert(i, row: 2 * locationNumbers[location.id]! + 1) }
            }
            if let types = policy.clientAppTypes {
                fixed.insert(i, row: Fixed.clientApps)
                for type in types { fixed.insert(i, row: Fixed.clientApp + type.index) }
            }
            if let device = policy.device {
                fixed.insert(i, row: Fixed.devices)
                let number = deviceFilters[device.filter] ?? deviceFilters.count
                deviceFilters[device.filter] = number
                deviceRows.insert(i, row: 2 * number + (device.include ? 0 : 1))
            }
            if let levels = policy.userRisk { Self.insert(i, levels, into: &fixed, configured: Fixed.userRisk, first: Fixed.userRiskLevel) }
            if let levels = policy.signInRisk { Self.insert(i, levels, into: &fixed, configured: Fixed.signInRisk, first: Fixed.signInRiskLevel) }
            if let levels = policy.insiderRisk {
                fixed.insert(i, row: Fixed.insiderRisk)
                for (k, level) in Self.insiderLevels.enumerated() where levels.contains(level) { fixed.insert(i, row: Fixed.insiderRiskLevel + k) }
            }
            if let methods = policy.transferMethods {
                fixed.insert(i, row: Fixed.authenticationFlow)
                for (k, method) in Self.transferMethods.enumerated() where methods.contains(method) { fixed.insert(i, row: Fixed.transferMethod + k) }
            }
            // Controls.
            entry.unevaluable = !policy.unevaluable.isEmpty
            entry.block = policy.grant?.block ?? false
            entry.anyOf = policy.grant?.anyOf ?? false
            entry.firstControl = grantControls.count
            for (k, control) in (policy.grant?.controls ?? []).enumerated() {
                if control.isInteractive { entry.interactive |= 1 << UInt64(k) }
                switch control {
                case .authenticationStrength(let strength):
                    let number = strengthNumbers[strength.id] ?? strengths.count
                    if number == strengths.count {
                        strengthNumbers[strength.id] = number
                        strengths.append(strength)
                        strengthRanges.append(Strength(first: combinations.count, count: strength.allowedCombinations.count,
                                                       restricted: strength.fido2AllowedAAGUIDs != nil))
                        combinations.append(contentsOf: strength.allowedCombinations.map(\.rawValue))
                    }
                    grantControls.append(.strength(number))
                case .compliantDevice: grantControls.append(.compliantDevice)
                case .hybridJoinedDevice: grantControls.append(.hybridJoinedDevice)
                case .reauthentication, .unsupported:
                    entry.unsupported |= 1 << UInt64(k)
                    grantControls.append(.never)
                }
            }
            entry.controlCount = grantControls.count - entry.firstControl
            entry.frequency = policy.signInFrequency.map { $0.seconds ?? ConditionalAccessEngine.everyTimeTolerance }
            entry.setsPersistentBrowser = policy.persistentBrowser != nil
            controls.append(entry)
        }
        self.fixed = FrozenRows(fixed, in: arena)
        self.controls = arena.freeze(controls)
        self.grantControls = arena.freeze(grantControls)
        self.strengths = strengths
        self.strengthRanges = arena.freeze(strengthRanges)
        self.combinations = arena.freeze(combinations)
        self.users = FrozenIDTable(users, in: arena)
        self.userRows = FrozenRows(userRows, in: arena)
        self.groups = FrozenIDTable(groups, in: arena)
        self.groupRows = FrozenRows(groupRows, in: arena)
        self.groupIDs = groups.keys
        self.roles = FrozenIDTable(roles, in: arena)
        self.roleRows = FrozenRows(roleRows, in: arena)
        self.applications = FrozenIDTable(applications, in: arena)
        self.applicationRows = FrozenRows(applicationRows, in: arena)
        self.servicePrincipals = FrozenIDTable(servicePrincipals, in: arena)
        self.servicePrincipalRows = FrozenRows(servicePrincipalRows, in: arena)
        self.guestRules = guestRules
        self.contexts = contexts
        hasContexts = !contexts.isEmpty
        self.contextRows = FrozenRows(contextRows, in: arena)
        self.deviceFilters = deviceFilters.sorted { $0.value < $1.value }.map(\.key)
        self.deviceRows = FrozenRows(deviceRows, in: arena)
        self.locations = NamedLocationTable(namedLocations, in: arena)
        self.locationRows = FrozenRows(locationRows, in: arena)
        evaluatesAnything = compiled.contains { $0.policy.state != .disabled }
    }

    private static func insert(_ policy: Int, _ levels: Set<RiskLevel>, into rows: inout PolicyRows, configured: Int, first: Int) {
        rows.insert(policy, row: configured)
        for level in levels { rows.insert(policy, row: first + level.index) }
    }
}
