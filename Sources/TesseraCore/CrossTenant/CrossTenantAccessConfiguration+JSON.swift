/// Cross-tenant access settings read from Graph JSON (strictly: unknown members, wrong types and values outside
/// Graph's enums are errors naming the property) and written back in Graph's shape.
extension CrossTenantTargetConfiguration {
    init(json: JSONValue, path: String, allowed types: Set<TargetType>) throws(DirectoryError) {
        let object = try CrossTenantJSON.object(json, path, members: ["accessType", "targets"])
        guard let access = object["accessType"]?.stringValue.flatMap(AccessType.init(rawValue:)) else {
            throw DirectoryError.badRequest("Property '\(path).accessType' is required and must be 'allowed' or 'blocked'.")
        }
        guard let list = object["targets"]?.arrayValue, !list.isEmpty else {
            throw DirectoryError.badRequest("Property '\(path).targets' is required and must name at least one target.")
        }
        var targets: [Target] = []
        for (index, item) in list.enumerated() {
            let at = "\(path).targets[\(index)]"
            let member = try CrossTenantJSON.object(item, at, members: ["target", "targetType"])
            guard let type = member["targetType"]?.stringValue.flatMap(TargetType.init(rawValue:)), types.contains(type) else {
                let names = types.map(\.rawValue).sorted().joined(separator: "', '")
                throw DirectoryError.badRequest("Property '\(at).targetType' must be '\(names)'.")
            }
            guard let raw = member["target"]?.stringValue, !raw.isEmpty else {
                throw DirectoryError.badRequest("Property '\(at).target' is required.")
            }
            let keyword = type == .application ? Self.applicationKeywords.contains(raw) : (type == .user && raw == Self.allUsers)
            guard keyword || Identifier.isGUID(raw) else {
                let keywords = type == .application ? "AllApplications, Office365, AllMicrosoftApps" : "AllUsers (with targetType user)"
                throw DirectoryError.badRequest("Property '\(at).target' must be an object id or one of \(keywords); '\(raw)' is neither.")
            }
            targets.append(Target(keyword ? raw : raw.lowercased(), type))
        }
        self.init(access, targets)
    }

    var json: JSONValue {
        ["accessType": .string(accessType.rawValue),
         "targets": .array(targets.map { ["target": .string($0.target), "targetType": .string($0.targetType.rawValue)] })]
    }
}

extension CrossTenantB2BSetting {
    init(json: JSONValue, path: String) throws(DirectoryError) {
        let object = try CrossTenantJSON.object(json, path, members: ["usersAndGroups", "applications"])
        func part(_ name: String, _ types: Set<CrossTenantTargetConfiguration.TargetType>) throws(DirectoryError) -> CrossTenantTargetConfiguration? {
            guard let value = object[name], value != .null else { return nil }
            return try CrossTenantTargetConfiguration(json: value, path: "\(path).\(name)", allowed: types)
        }
        self.init(usersAndGroups: try part("usersAndGroups", [.user, .group]), applications: try part("applications", [.application]))
    }

    var json: JSONValue {
        var object: [String: JSONValue] = [:]
        if let usersAndGroups { object["usersAndGroups"] = usersAndGroups.json }
        if let applications { object["applications"] = applications.json }
        return .object(object)
    }
}

extension CrossTenantInboundTrust {
    init(json: JSONValue, path: String) throws(DirectoryError) {
        let names = ["isMfaAccepted", "isCompliantDeviceAccepted", "isHybridAzureADJoinedDeviceAccepted"]
        let object = try CrossTenantJSON.object(json, path, members: Set(names))
        let values = try names.map { name throws(DirectoryError) in try CrossTenantJSON.bool(object[name], "\(path).\(name)") }
        self.init(isMfaAccepted: values[0], isCompliantDeviceAccepted: values[1], isHybridAzureADJoinedDeviceAccepted: values[2])
    }

    var json: JSONValue {
        ["isMfaAccepted": isMfaAccepted.map(JSONValue.bool) ?? .null,
         "isCompliantDeviceAccepted": isCompliantDeviceAccepted.map(JSONValue.bool) ?? .null,
         "isHybridAzureADJoinedDeviceAccepted": isHybridAzureADJoinedDeviceAccepted.map(JSONValue.bool) ?? .null]
    }
}

extension CrossTenantInboundOutbound {
    init(json: JSONValue, path: String) throws(DirectoryError) {
        let object = try CrossTenantJSON.object(json, path, members: ["inboundAllowed", "outboundAllowed"])
        self.init(inboundAllowed: try CrossTenantJSON.bool(object["inboundAllowed"], "\(path).inboundAllowed"),
                  outboundAllowed: try CrossTenantJSON.bool(object["outboundAllowed"], "\(path).outboundAllowed"))
    }

    var json: JSONValue {
        ["inboundAllowed": inboundAllowed.map(JSONValue.bool) ?? .null, "outboundAllowed": outboundAllowed.map(JSONValue.bool) ?? .null]
    }
}

extension CrossTenantAccessConfiguration {
    static let b2bNames = ["b2bCollaborationInbound", "b2bCollaborationOutbound", "b2bDirectConnectInbound", "b2bDirectConnectOutbound"]

    /// The setting named `name` (one of the four B2B settings).
    subscript(b2b name: String) -> CrossTenantB2BSetting? {
        get {
            switch name {
            case "b2bCollaborationInbound": b2bCollaborationInbound
            case "b2bCollaborationOutbound": b2bCollaborationOutbound
            case "b2bDirectConnectInbound": b2bDirectConnectInbound
            default: b2bDirectConnectOutbound
            }
        }
        set {
            switch name {
            case "b2bCollaborationInbound": b2bCollaborationInbound = newValue
            case "b2bCollaborationOutbound": b2bCollaborationOutbound = newValue
            case "b2bDirectConnectInbound": b2bDirectConnectInbound = newValue
            default: b2bDirectConnectOutbound = newValue
            }
        }
    }

    /// Applies the settings a Graph create or PATCH names (each replaced whole; `null` clears it). Members other than
    /// the settings are the caller's to check.
    mutating func apply(_ patch: [String: JSONValue]) throws(DirectoryError) {
        for name in Self.b2bNames where patch.keys.contains(name) {
            let value = patch[name] ?? .null
            self[b2b: name] = value == .null ? nil : try CrossTenantB2BSetting(json: value, path: name)
        }
        if let value = patch["inboundTrust"] {
            inboundTrust = value == .null ? nil : try CrossTenantInboundTrust(json: value, path: "inboundTrust")
        }
        if let value = patch["automaticUserConsentSettings"] {
            automaticUserConsentSettings = value == .null ? nil : try CrossTenantInboundOutbound(json: value, path: "automaticUserConsentSettings")
        }
        if let value = patch["tenantRestrictions"] {
            tenantRestrictions = value == .null ? nil : try CrossTenantTenantRestrictions(json: value, path: "tenantRestrictions")
        }
    }

    /// The settings as Graph members (`null` where a partner inherits).
    public var graphMembers: [String: JSONValue] { members }

    var members: [String: JSONValue] {
        var object: [String: JSONValue] = [:]
        for name in Self.b2bNames { object[name] = self[b2b: name]?.json ?? .null }
        object["inboundTrust"] = inboundTrust?.json ?? .null
        object["automaticUserConsentSettings"] = automaticUserConsentSettings?.json ?? .null
        object["tenantRestrictions"] = tenantRestrictions?.json ?? .null
        return object
    }
}

/// Strict readers shared by the cross-tenant types.
enum CrossTenantJSON {
    /// `value` as an object holding only `members` (and OData annotations).
    static func object(_ value: JSONValue, _ path: String, members: Set<String>) throws(DirectoryError) -> [String: JSONValue] {
        guard let object = value.objectValue else { throw DirectoryError.badRequest("Property '\(path)' must be an object.") }
        for key in object.keys where !key.hasPrefix("@odata.") && !members.contains(key) {
            throw DirectoryError.badRequest("Property '\(key)' does not exist on '\(path)'.")
        }
        return object
    }

    static func bool(_ value: JSONValue?, _ path: String) throws(DirectoryError) -> Bool? {
        switch value {
        case nil, .null?: return nil
        case .bool(let flag)?: return flag
        default: throw DirectoryError.badRequest("Property '\(path)' must be a Boolean.")
        }
    }

    static func string(_ value: JSONValue?, _ path: String) throws(DirectoryError) -> String? {
        switch value {
        case nil, .null?: return nil
        case .string(let text)?: return text
        default: throw DirectoryError.badRequest("Property '\(path)' must be a string.")
        }
    }
}
