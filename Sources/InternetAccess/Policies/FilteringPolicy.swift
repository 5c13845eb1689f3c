import Foundation
public import TesseraCore

extension ObjectKind {
    /// Graph beta's `microsoft.graph.networkaccess.filteringPolicy`.
    public static let filteringPolicy = ObjectKind(rawValue: "filteringPolicy")
    /// Graph beta's `microsoft.graph.networkaccess.filteringProfile` (a security profile).
    public static let filteringProfile = ObjectKind(rawValue: "filteringProfile")
}

/// Allow, block or alert, as `filteringPolicyAction` names them (`alert`: the request passes and its record says so).
public enum FilteringAction: String, Sendable, Hashable { case allow, block, alert }

/// A filtering policy (Graph beta's `microsoft.graph.networkaccess.filteringPolicy`): rules and the action taken when
/// one matches.
public struct FilteringPolicy: Sendable, Hashable {
    public var id: String
    public var name: String
    public var description: String?
    public var action: FilteringAction
    public var rules: [FilteringRule]
    public var createdDateTime: String
    public var lastModifiedDateTime: String

    /// At most this many rules in a policy.
    public static let maximumRules = 100

    /// Reads a policy from a Graph create body; `newID` names the rules that carry no id of their own.
    public init(create body: [String: JSONValue], id: String, now: String, newID: () -> String) throws(DirectoryError) {
        self.id = id
        self.name = ""
        self.description = nil
        self.action = .block
        self.rules = []
        self.createdDateTime = now
        self.lastModifiedDateTime = now
        try apply(body, now: now, newID: newID, creating: true)
    }

    /// Applies a Graph create or PATCH body: only `name`, `description`, `action` and `policyRules` may be written.
    public mutating func apply(_ body: [String: JSONValue], now: String, newID: () -> String, creating: Bool = false) throws(DirectoryError) {
        for key in body.keys where !["name", "description", "action", "policyRules", "@odata.type", "id"].contains(key) {
            throw DirectoryError.badRequest("Property '\(key)' does not exist on type 'microsoft.graph.networkaccess.filteringPolicy' or cannot be written.")
        }
        if let type = body["@odata.type"]?.stringValue, !type.hasSuffix("networkaccess.filteringPolicy") {
            throw DirectoryError.badRequest("'@odata.type' must be #microsoft.graph.networkaccess.filteringPolicy.")
        }
        if let name = try PolicyNaming.name(in: body, creating: creating) { self.name = name }
        if let value = body["description"] { description = try PolicyNaming.description(value) }
        if let value = body["action"] {
            guard let action = value.stringValue.flatMap(FilteringAction.init(rawValue:)) else {
                throw DirectoryError.badRequest("action must be block, allow or alert.")
            }
            self.action = action
        } else if creating {
            throw DirectoryError.badRequest("action is required (block, allow or alert).")
        }
        if let value = body["policyRules"] {
            guard let list = value.arrayValue, list.count <= Self.maximumRules else {
                throw DirectoryError.badRequest("policyRules must be an array of at most \(Self.maximumRules) rules.")
            }
            var rules: [FilteringRule] = []
            for entry in list { rules.append(try FilteringRule(body: entry, id: newID())) }
            guard Set(rules.map(\.id)).count == rules.count else { throw DirectoryError.badRequest("Two policy rules share an id.") }
            self.rules = rules
        }
        lastModifiedDateTime = now
    }

    /// Reads a stored policy.
    public init?(stored: StoredObject) {
        let b = stored.body
        guard let name = b["name"]?.stringValue, let action = b["action"]?.stringValue.flatMap(FilteringAction.init(rawValue:)) else { return nil }
        id = stored.id
        self.name = name
        description = b["description"]?.stringValue
        self.action = action
        rules = (b["policyRules"]?.arrayValue ?? []).compactMap { try? FilteringRule(body: $0, id: "") }
        createdDateTime = b["createdDateTime"]?.stringValue ?? ""
        lastModifiedDateTime = b["lastModifiedDateTime"]?.stringValue ?? ""
    }

    /// The Graph shape without its rules (as Microsoft returns a policy); `policyRules` with them.
    public func body(withRules: Bool) -> [String: JSONValue] {
        var body: [String: JSONValue] = [
            "@odata.type": "#microsoft.graph.networkaccess.filteringPolicy", "id": .string(id), "name": .string(name),
            "description": .optional(description), "version": "1.0.0", "action": .string(action.rawValue),
            "createdDateTime": .string(createdDateTime), "lastModifiedDateTime": .string(lastModifiedDateTime),
        ]
        if withRules { body["policyRules"] = .array(rules.map(\.body)) }
        return body
    }

    public func stored(tenant: String) -> StoredObject {
        StoredObject(tenant: tenant, id: id, kind: .filteringPolicy, body: body(withRules: true))
    }
}

/// The `name` and `description` rules that filtering policies, security profiles and prompt policies share.
enum PolicyNaming {
    /// The body's `name`: present on create, not blank, at most 256 characters; nil when a PATCH leaves it.
    static func name(in body: [String: JSONValue], creating: Bool) throws(DirectoryError) -> String? {
        guard let value = body["name"] else {
            if creating { throw DirectoryError.badRequest("name is required.") }
            return nil
        }
        guard let name = value.stringValue, !name.trimmed.isEmpty, name.count <= 256 else {
            throw DirectoryError.badRequest("name is required and at most 256 characters.")
        }
        return name
    }

    /// A `description`: null (removed) or at most 1024 characters.
    static func description(_ value: JSONValue) throws(DirectoryError) -> String? {
        guard value == .null || (value.stringValue?.count ?? 1025) <= 1024 else {
            throw DirectoryError.badRequest("description is at most 1024 characters.")
        }
        return value.stringValue
    }
}

extension String {
    var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
}
