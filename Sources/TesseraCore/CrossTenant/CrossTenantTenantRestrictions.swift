/// Graph's `crossTenantAccessPolicyTenantRestrictions` (tenant restrictions v2): which users and groups of a partner
/// (or, in the default, of any external organization) this tenant's people may sign in as, to which applications, when
/// a request carries this tenant's `sec-Restrict-Tenant-Access-Policy` header. It is a `crossTenantAccessPolicyB2BSetting`
/// with `devices`, a device filter Microsoft documents as not enforced by the service yet: Tessera stores it, checked,
/// and does not enforce it either.
public struct CrossTenantTenantRestrictions: Sendable, Hashable {
    /// `usersAndGroups` and `applications`.
    public var setting: CrossTenantB2BSetting
    /// `devices`: `mode` (allowed or blocked) and `rule` (a device filter).
    public var devices: Devices?

    /// Graph's `devicesFilter`.
    public struct Devices: Sendable, Hashable {
        public var mode: CrossTenantTargetConfiguration.AccessType
        public var rule: String
        public init(mode: CrossTenantTargetConfiguration.AccessType, rule: String) {
            self.mode = mode
            self.rule = rule
        }
    }

    public init(setting: CrossTenantB2BSetting, devices: Devices?) {
        self.setting = setting
        self.devices = devices
    }
}

extension CrossTenantTenantRestrictions {
    init(json: JSONValue, path: String) throws(DirectoryError) {
        let object = try CrossTenantJSON.object(json, path, members: ["usersAndGroups", "applications", "devices"])
        let setting = try CrossTenantB2BSetting(json: .object(object.filter { $0.key != "devices" }), path: path)
        var devices: Devices?
        if let value = object["devices"], value != .null {
            let filter = try CrossTenantJSON.object(value, "\(path).devices", members: ["mode", "rule"])
            guard let mode = filter["mode"]?.stringValue.flatMap(CrossTenantTargetConfiguration.AccessType.init(rawValue:)) else {
                throw DirectoryError.badRequest("Property '\(path).devices.mode' is required and must be 'allowed' or 'blocked'.")
            }
            guard let rule = try CrossTenantJSON.string(filter["rule"], "\(path).devices.rule"), !rule.isEmpty else {
                throw DirectoryError.badRequest("Property '\(path).devices.rule' is required.")
            }
            do {
                _ = try DeviceFilter(rule: rule)
            } catch {
                throw DirectoryError.badRequest("Property '\(path).devices.rule' is not a device filter: \(error.description).")
            }
            devices = Devices(mode: mode, rule: rule)
        }
        // Entra's rule, from both sides: blocking every user needs every application blocked, and the other way round.
        let blocksEveryone = setting.usersAndGroups.map {
            $0.accessType == .blocked && $0.targets.contains { $0.target == CrossTenantTargetConfiguration.allUsers }
        }
        let blocksEverything = setting.applications.map {
            $0.accessType == .blocked && $0.targets.contains { $0.target == CrossTenantTargetConfiguration.allApplications }
        }
        if let blocksEveryone, let blocksEverything, blocksEveryone != blocksEverything {
            throw DirectoryError.badRequest(
                "Property '\(path)': blocking all users and groups needs all applications blocked, and blocking all applications needs all users and groups blocked.")
        }
        self.init(setting: setting, devices: devices)
    }

    var json: JSONValue {
        var object = setting.json.objectValue ?? [:]
        object["devices"] = devices.map { ["mode": .string($0.mode.rawValue), "rule": .string($0.rule)] } ?? .null
        return .object(object)
    }
}

extension CrossTenantAccess {
    /// The tenant restrictions that apply to the partner: the partner's `usersAndGroups` and `applications`, each
    /// inherited from the default when the partner does not set it.
    public var tenantRestrictions: CrossTenantB2BSetting {
        let base = defaults.tenantRestrictions?.setting ?? CrossTenantAccessConfiguration.systemDefault.tenantRestrictions?.setting
            ?? .everyone(.blocked)
        let fallback = CrossTenantB2BSetting.everyone(.blocked)
        guard let own = partner?.settings.tenantRestrictions?.setting else { return base }
        return CrossTenantB2BSetting(usersAndGroups: own.usersAndGroups ?? base.usersAndGroups ?? fallback.usersAndGroups,
                                     applications: own.applications ?? base.applications ?? fallback.applications)
    }

    /// Tenant restrictions v2: whether this tenant's restriction policy lets its people sign in as the partner's user
    /// `userID` (in the partner's groups `groupIDs`) to `applicationID`. A list naming neither the user nor the
    /// application lets through what it does not block.
    public func tenantRestriction(userID: String, groupIDs: Set<String>, applicationID: String) -> Decision {
        let setting = tenantRestrictions
        switch setting.refusal(userID: userID, groupIDs: groupIDs, applicationID: applicationID) {
        case .user?: return .blocked("The tenant restrictions policy does not allow this external account.")
        case .application?: return .blocked("The tenant restrictions policy does not allow this application with an external account.")
        case nil: return .allowed
        }
    }
}
