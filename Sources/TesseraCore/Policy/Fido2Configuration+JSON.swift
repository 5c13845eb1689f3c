import Foundation

/// The Graph JSON of the FIDO2 configuration: read strictly (every value checked, unknown members refused),
/// written in Graph's shape.
extension Fido2Configuration {
    static func fail(_ message: String) -> DirectoryError { DirectoryError(.badRequest, message) }

    /// Applies a Graph PATCH body: the members present replace the current ones.
    public func patched(with body: [String: JSONValue]) throws(DirectoryError) -> Fido2Configuration {
        var next = self
        for (key, value) in body where !key.hasPrefix("@odata") {
            switch key {
            case "id":
                guard value.stringValue?.lowercased() == "fido2" else { throw Self.fail("The id of the FIDO2 configuration is 'Fido2'.") }
            case "state":
                guard let state = value.stringValue.flatMap(State.init(rawValue:)) else {
                    throw Self.fail("Invalid value for 'state': use 'enabled' or 'disabled'.")
                }
                next.state = state
            case "isSelfServiceRegistrationAllowed": next.isSelfServiceRegistrationAllowed = try Self.bool(value, key)
            case "isAttestationEnforced": next.isAttestationEnforced = try Self.bool(value, key)
            case "keyRestrictions": next.keyRestrictions = try KeyRestrictions(json: value, path: key)
            case "defaultPasskeyProfile":
                guard let id = value.stringValue, !id.isEmpty else { throw Self.fail("'defaultPasskeyProfile' must be a profile id.") }
                next.defaultPasskeyProfile = id
            case "includeTargets":
                guard let items = value.arrayValue else { throw Self.fail("'includeTargets' must be an array.") }
                next.includeTargets = try items.enumerated().map { index, item throws(DirectoryError) in
                    try IncludeTarget(json: item, path: "includeTargets[\(index)]")
                }
            case "excludeTargets":
                guard let items = value.arrayValue else { throw Self.fail("'excludeTargets' must be an array.") }
                next.excludeTargets = try items.enumerated().map { index, item throws(DirectoryError) in
                    try ExcludeTarget(json: item, path: "excludeTargets[\(index)]")
                }
            case "passkeyProfiles":
                guard let items = value.arrayValue else { throw Self.fail("'passkeyProfiles' must be an array.") }
                next.passkeyProfiles = try items.enumerated().map { index, item throws(DirectoryError) in
                    try PasskeyProfile(json: item, path: "passkeyProfiles[\(index)]")
                }
            default:
                throw Self.fail("Property '\(key)' does not exist on type 'microsoft.graph.fido2AuthenticationMethodConfiguration'.")
            }
        }
        return next
    }

    /// Reads a stored configuration (written by ``json``).
    public init(stored: JSONValue) throws(DirectoryError) {
        guard let object = stored.objectValue else { throw Self.fail("The stored FIDO2 configuration is not an object.") }
        self = try Fido2Configuration(state: .disabled, isSelfServiceRegistrationAllowed: false).patched(
            with: object.filter { $0.key != "@odata.type" })
    }

    /// Graph's JSON for the configuration.
    public var json: JSONValue {
        var out: [String: JSONValue] = [
            "@odata.type": "#microsoft.graph.fido2AuthenticationMethodConfiguration",
            "id": "Fido2",
            "state": .string(state.rawValue),
            "isSelfServiceRegistrationAllowed": .bool(isSelfServiceRegistrationAllowed),
            "isAttestationEnforced": .bool(isAttestationEnforced),
            "keyRestrictions": keyRestrictions.json,
            "includeTargets": .array(includeTargets.map(\.json)),
            "excludeTargets": .array(excludeTargets.map(\.json)),
            "passkeyProfiles": .array(passkeyProfiles.map(\.json)),
        ]
        out["defaultPasskeyProfile"] = defaultPasskeyProfile.map(JSONValue.string) ?? .null
        return .object(out)
    }

    static func bool(_ value: JSONValue, _ path: String) throws(DirectoryError) -> Bool {
        guard let b = value.boolValue else { throw fail("'\(path)' must be true or false.") }
        return b
    }

    static func object(_ value: JSONValue, _ path: String, allowed: Set<String>) throws(DirectoryError) -> [String: JSONValue] {
        guard let object = value.objectValue else { throw fail("'\(path)' must be an object.") }
        for key in object.keys where !allowed.contains(key) && !key.hasPrefix("@odata") {
            throw fail("Property '\(key)' is not allowed in '\(path)'.")
        }
        return object
    }

    /// A GUID in lowercase, or nil.
    static func guid(_ text: String) -> String? {
        let lower = text.lowercased()
        let parts = lower.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.map(\.count) == [8, 4, 4, 4, 12], lower.allSatisfy({ $0 == "-" || $0.isHexDigit }) else { return nil }
        return lower
    }
}

extension Fido2Configuration.KeyRestrictions {
    init(json value: JSONValue, path: String) throws(DirectoryError) {
        let object = try Fido2Configuration.object(value, path, allowed: ["isEnforced", "enforcementType", "aaGuids"])
        isEnforced = try object["isEnforced"].map { v throws(DirectoryError) in try Fido2Configuration.bool(v, path + ".isEnforced") } ?? false
        if let type = object["enforcementType"] {
            guard let parsed = type.stringValue.flatMap(EnforcementType.init(rawValue:)) else {
                throw Fido2Configuration.fail("'\(path).enforcementType' must be 'allow' or 'block'.")
            }
            enforcementType = parsed
        } else {
            enforcementType = .allow
        }
        guard let items = (object["aaGuids"] ?? .array([])).arrayValue else { throw Fido2Configuration.fail("'\(path).aaGuids' must be an array.") }
        var guids: [String] = []
        for item in items {
            guard let text = item.stringValue, let guid = Fido2Configuration.guid(text) else {
                throw Fido2Configuration.fail("'\(path).aaGuids' holds '\(item.stringValue ?? "a non-string")', which is not an AAGUID.")
            }
            if !guids.contains(guid) { guids.append(guid) }
        }
        aaGuids = guids
    }

    var json: JSONValue {
        ["isEnforced": .bool(isEnforced), "enforcementType": .string(enforcementType.rawValue), "aaGuids": .strings(aaGuids)]
    }
}

extension Fido2Configuration.IncludeTarget {
    init(json value: JSONValue, path: String) throws(DirectoryError) {
        let object = try Fido2Configuration.object(value, path, allowed: ["id", "targetType", "isRegistrationRequired", "allowedPasskeyProfiles"])
        guard let id = object["id"]?.stringValue, !id.isEmpty else { throw Fido2Configuration.fail("'\(path).id' is required.") }
        self.id = id
        targetType = try Fido2Configuration.targetType(object["targetType"], path)
        isRegistrationRequired = try object["isRegistrationRequired"].map { v throws(DirectoryError) in
            try Fido2Configuration.bool(v, path + ".isRegistrationRequired")
        } ?? false
        guard let profiles = (object["allowedPasskeyProfiles"] ?? .array([])).arrayValue else {
            throw Fido2Configuration.fail("'\(path).allowedPasskeyProfiles' must be an array of profile ids.")
        }
        allowedPasskeyProfiles = try profiles.map { item throws(DirectoryError) in
            guard let text = item.stringValue, let id = Fido2Configuration.guid(text) else {
                throw Fido2Configuration.fail("'\(path).allowedPasskeyProfiles' must hold profile ids (GUIDs).")
            }
            return id
        }
    }

    var json: JSONValue {
        ["id": .string(id), "targetType": .string(targetType.rawValue), "isRegistrationRequired": .bool(isRegistrationRequired),
         "allowedPasskeyProfiles": .strings(allowedPasskeyProfiles)]
    }
}

extension Fido2Configuration.ExcludeTarget {
    init(json value: JSONValue, path: String) throws(DirectoryError) {
        let object = try Fido2Configuration.object(value, path, allowed: ["id", "targetType"])
        guard let id = object["id"]?.stringValue, !id.isEmpty else { throw Fido2Configuration.fail("'\(path).id' is required.") }
        self.id = id
        targetType = try Fido2Configuration.targetType(object["targetType"], path)
    }

    var json: JSONValue { ["id": .string(id), "targetType": .string(targetType.rawValue)] }
}

extension Fido2Configuration {
    static func targetType(_ value: JSONValue?, _ path: String) throws(DirectoryError) -> TargetType {
        guard let value else { return .group }
        guard let type = value.stringValue.flatMap(TargetType.init(rawValue:)) else {
            throw fail("'\(path).targetType' must be 'group' or 'user'.")
        }
        return type
    }
}

extension PasskeyProfile {
    init(json value: JSONValue, path: String) throws(DirectoryError) {
        let object = try Fido2Configuration.object(value, path, allowed: ["id", "name", "passkeyTypes", "attestationEnforcement", "keyRestrictions"])
        if let text = object["id"]?.stringValue {
            guard let id = Fido2Configuration.guid(text) else { throw Fido2Configuration.fail("'\(path).id' must be a GUID.") }
            self.id = id
        } else {
            id = Identifier.make()
        }
        guard let name = object["name"]?.stringValue, !name.trimmingCharacters(in: .whitespaces).isEmpty, name.count <= 256 else {
            throw Fido2Configuration.fail("'\(path).name' is required (at most 256 characters).")
        }
        self.name = name
        guard let types = object["passkeyTypes"]?.stringValue else {
            throw Fido2Configuration.fail("'\(path).passkeyTypes' is required: 'deviceBound', 'synced' or 'deviceBound,synced'.")
        }
        var kinds: Set<PasskeyKind> = []
        for flag in types.split(separator: ",") {
            guard let kind = PasskeyKind(rawValue: flag.trimmingCharacters(in: .whitespaces)) else {
                throw Fido2Configuration.fail("'\(path).passkeyTypes' holds '\(flag)'; use 'deviceBound' and/or 'synced'.")
            }
            kinds.insert(kind)
        }
        guard !kinds.isEmpty else { throw Fido2Configuration.fail("'\(path).passkeyTypes' must allow at least one type of passkey.") }
        passkeyTypes = kinds
        if let enforcement = object["attestationEnforcement"] {
            guard let parsed = enforcement.stringValue.flatMap(AttestationEnforcement.init(rawValue:)) else {
                throw Fido2Configuration.fail("'\(path).attestationEnforcement' must be 'disabled' or 'registrationOnly'.")
            }
            attestationEnforcement = parsed
        } else {
            attestationEnforcement = .disabled
        }
        keyRestrictions = try object["keyRestrictions"].map { v throws(DirectoryError) in
            try Fido2Configuration.KeyRestrictions(json: v, path: path + ".keyRestrictions")
        } ?? .init()
    }

    /// `passkeyTypes` as Graph writes a flags enum.
    var passkeyTypesText: String { PasskeyKind.allCases.filter(passkeyTypes.contains).map(\.rawValue).joined(separator: ",") }

    var json: JSONValue {
        ["id": .string(id), "name": .string(name), "passkeyTypes": .string(passkeyTypesText),
         "attestationEnforcement": .string(attestationEnforcement.rawValue), "keyRestrictions": keyRestrictions.json]
    }
}
