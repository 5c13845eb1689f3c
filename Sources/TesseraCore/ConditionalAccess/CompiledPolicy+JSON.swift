import Foundation

/// Compiling a stored Graph `conditionalAccessPolicy` body. Anything the engine cannot read is recorded, never
/// dropped: a broken condition makes the policy fail closed where it would apply, a broken control can never be met.
extension CompiledPolicy {
    struct Context {
        var locations: [String: NamedLocation]
        /// Whether a trusted named location could not be read, so `AllTrusted` cannot be known.
        var unreadableTrusted: Bool
        var strengths: [String: AuthenticationStrength]
        var applicationGroups: [String: Set<String>]
    }

    init(body: JSONValue, context: Context) {
        id = body["id"]?.stringValue?.lowercased() ?? ""
        displayName = body["displayName"]?.stringValue ?? id
        switch body["state"]?.stringValue {
        case "enabled": state = .enabled
        case "enabledForReportingButNotEnforced": state = .reportOnly
        case "disabled": state = .disabled
        default:
            state = .enabled
            invalid = "its state '\(body["state"]?.stringValue ?? "null")' is not enabled, disabled or report-only"
        }
        guard let conditions = body["conditions"], conditions.objectValue != nil else {
            invalid = invalid ?? "it has no conditions"
            return
        }
        compileUsers(conditions["users"])
        compileServicePrincipals(conditions["clientApplications"])
        compileApplications(conditions["applications"], groups: context.applicationGroups)
        compilePlatforms(conditions["platforms"])
        compileLocations(conditions["locations"], context: context)
        compileClientAppTypes(conditions["clientAppTypes"])
        compileDevices(conditions["devices"])
        userRisk = riskLevels(conditions["userRiskLevels"], condition: .userRisk)
        signInRisk = riskLevels(conditions["signInRiskLevels"], condition: .signInRisk)
        servicePrincipalRisk = riskLevels(conditions["servicePrincipalRiskLevels"], condition: .servicePrincipalRisk)
        insiderRisk = flags(conditions["insiderRiskLevels"], allowed: ["minor", "moderate", "elevated"],
                            condition: .insiderRisk)
        transferMethods = flags(conditions["authenticationFlows"]?["transferMethods"],
                                allowed: ["devicecodeflow", "authenticationtransfer"], condition: .authenticationFlow)
        compileGrant(body["grantControls"], strengths: context.strengths)
        compileSession(body["sessionControls"])
        if grant == nil, sessionControlNames.isEmpty, invalid == nil, state != .disabled {
            invalid = "it has neither grant nor session controls"
        }
    }

    private static func strings(_ value: JSONValue?) -> [String] {
        value?.arrayValue?.compactMap { $0.stringValue?.lowercased() } ?? []
    }

    private mutating func fail(_ condition: ConditionalAccessConditions, _ reason: String) {
        unevaluable.append((condition, reason))
    }

    private mutating func compileUsers(_ users: JSONValue?) {
        guard let users, users.objectValue != nil else { return }
        includeUsers = principals(users, prefix: "include")
        excludeUsers = principals(users, prefix: "exclude")
    }

    private mutating func principals(_ users: JSONValue, prefix: String) -> Principals {
        var result = Principals()
        for id in Self.strings(users["\(prefix)Users"]) {
            switch id {
            case "all": result.all = true
            case "none": break
            case "guestsorexternalusers": result.guests = Guests(types: Set(GuestOrExternalUserType.allCases), tenants: nil)
            default: result.users.insert(id)
            }
        }
        result.groups = Set(Self.strings(users["\(prefix)Groups"]))
        result.roles = Set(Self.strings(users["\(prefix)Roles"]))
        if let guests = users["\(prefix)GuestsOrExternalUsers"], guests != .null {
            var types: Set<GuestOrExternalUserType> = []
            for name in (guests["guestOrExternalUserTypes"]?.stringValue ?? "").split(separator: ",") {
                let trimmed = name.trimmingCharacters(in: .whitespaces)
                guard trimmed != "none" else { continue }
                guard let type = GuestOrExternalUserType(rawValue: trimmed) else {
                    fail(.users, "unknown guest or external user type '\(trimmed)'")
                    continue
                }
                types.insert(type)
            }
            var tenants: Set<String>?
            if let external = guests["externalTenants"], external != .null {
                switch external["membershipKind"]?.stringValue {
                case "all", nil: tenants = nil
                case "enumerated": tenants = Set(Self.strings(external["members"]))
                case let kind?: fail(.users, "unknown external tenant membership kind '\(kind)'")
                }
            }
            let merged = result.guests.map { $0.types.union(types) } ?? types
            result.guests = Guests(types: merged, tenants: result.guests == nil ? tenants : nil)
        }
        return result
    }

    private mutating func compileServicePrincipals(_ value: JSONValue?) {
        guard let value, value.objectValue != nil else { return }
        var principals = ServicePrincipals()
        for id in Self.strings(value["includeServicePrincipals"]) {
            if id == "serviceprincipalsinmytenant" { principals.all = true } else if id != "none" { principals.include.insert(id) }
        }
        principals.exclude = Set(Self.strings(value["excludeServicePrincipals"]))
        if let filter = value["servicePrincipalFilter"], filter != .null {
            fail(.workloadIdentities, "servicePrincipalFilter is not supported")
        }
        servicePrincipals = principals
    }

    private mutating func compileApplications(_ value: JSONValue?, groups: [String: Set<String>]) {
        guard let value else { return }
        func expand(_ ids: [String]) -> (all: Bool, ids: Set<String>) {
            var all = false, result: Set<String> = []
            for id in ids {
                switch id {
                case "all": all = true
                case "none": break
                default:
                    if let group = groups[id] { result.formUnion(group) } else { result.insert(id) }
                }
            }
            return (all, result)
        }
        let include = expand(Self.strings(value["includeApplications"]))
        applications.includeAll = include.all
        applications.include = include.ids
        applications.exclude = expand(Self.strings(value["excludeApplications"])).ids
        for action in Self.strings(value["includeUserActions"]) {
            guard let known = UserAction(rawValue: action) else {
                fail(.userActions, "unknown user action '\(action)'")
                continue
            }
            applications.userActions.insert(known)
        }
        applications.authenticationContexts = Set(Self.strings(value["includeAuthenticationContextClassReferences"]))
        if let filter = value["applicationFilter"], filter != .null {
            fail(.application, "applicationFilter is not supported")
        }
    }

    private mutating func compilePlatforms(_ value: JSONValue?) {
        guard let value, value != .null else { return }
        var result = Platforms()
        func parse(_ key: String) -> (all: Bool, set: Set<DevicePlatform>) {
            var all = false, set: Set<DevicePlatform> = []
            for name in Self.strings(value[key]) {
                if name == "all" { all = true; continue }
                guard let platform = DevicePlatform.allCases.first(where: { $0.rawValue.lowercased() == name }) else {
                    fail(.devicePlatform, "unknown platform '\(name)'")
                    continue
                }
                set.insert(platform)
            }
            return (all, set)
        }
        let include = parse("includePlatforms")
        result.includeAll = include.all
        result.include = include.set
        let exclude = parse("excludePlatforms")
        result.exclude = exclude.all ? Set(DevicePlatform.allCases) : exclude.set
        platforms = result
    }

    private mutating func compileLocations(_ value: JSONValue?, context: Context) {
        guard let value, value != .null else { return }
        var result = Locations()
        func parse(_ key: String) -> (all: Bool, trusted: Bool, named: [NamedLocation]) {
            var all = false, trusted = false, named: [NamedLocation] = []
            for id in Self.strings(value[key]) {
                switch id {
                case "all": all = true
                case "alltrusted":
                    trusted = true
                    if context.unreadableTrusted { fail(.location, "a trusted named location cannot be read") }
                default:
                    guard let location = context.locations[id] else {
                        fail(.location, "the named location '\(id)' does not exist or cannot be read")
                        continue
                    }
                    named.append(location)
                }
            }
            return (all, trusted, named)
        }
        (result.includeAll, result.includeTrusted, result.include) = parse("includeLocations")
        (result.excludeAll, result.excludeTrusted, result.exclude) = parse("excludeLocations")
        locations = result
    }

    private mutating func compileClientAppTypes(_ value: JSONValue?) {
        var types: Set<ClientAppType> = []
        for name in Self.strings(value) {
            switch name {
            case "all": return
            case "browser": types.insert(.browser)
            case "mobileappsanddesktopclients": types.insert(.mobileAppsAndDesktopClients)
            case "exchangeactivesync", "eassupported": types.insert(.exchangeActiveSync)
            case "other": types.insert(.other)
            default: fail(.clientApps, "unknown client app type '\(name)'")
            }
        }
        clientAppTypes = types.isEmpty ? nil : types
    }

    private mutating func compileDevices(_ value: JSONValue?) {
        guard let filter = value?["deviceFilter"], filter != .null else { return }
        let include: Bool
        switch filter["mode"]?.stringValue {
        case "include": include = true
        case "exclude": include = false
        default:
            fail(.devices, "the device filter's mode is not include or exclude")
            return
        }
        do {
            device = DeviceCondition(include: include, filter: try DeviceFilter(rule: filter["rule"]?.stringValue ?? ""))
        } catch {
            fail(.devices, "the device filter cannot be read: \(error)")
        }
    }

    private mutating func riskLevels(_ value: JSONValue?, condition: ConditionalAccessConditions) -> Set<RiskLevel>? {
        var levels: Set<RiskLevel> = []
        for name in Self.strings(value) {
            guard let level = RiskLevel(rawValue: name) else {
                fail(condition, "unknown risk level '\(name)'")
                continue
            }
            levels.insert(level)
        }
        return levels.isEmpty ? nil : levels
    }

    private mutating func flags(_ value: JSONValue?, allowed: Set<String>, condition: ConditionalAccessConditions)
        -> Set<String>?
    {
        guard let text = value?.stringValue else { return nil }
        var result: Set<String> = []
        for name in text.lowercased().split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) })
        where name != "none" {
            guard allowed.contains(name) else {
                fail(condition, "unknown value '\(name)'")
                continue
            }
            result.insert(name)
        }
        return result.isEmpty ? nil : result
    }
}
