import Foundation
public import TesseraCore

/// A security profile (Graph beta's `microsoft.graph.networkaccess.filteringProfile`): filtering policies linked in
/// priority order, which a Conditional Access policy's `globalSecureAccessFilteringProfile` session control puts on the
/// internet traffic of the users it applies to.
public struct FilteringProfile: Sendable, Hashable {
    /// A `filteringPolicyLink`: one policy in the profile, its priority (lower first) and whether it is on; or a
    /// `promptPolicyLink` (Tessera's own, beside Microsoft's link types): the profile's prompt policy.
    public struct Link: Sendable, Hashable {
        /// What a link names.
        public enum Kind: String, Sendable, Hashable {
            case filtering = "filteringPolicy", prompt = "promptPolicy"
            var linkType: String { "#microsoft.graph.networkaccess.\(rawValue)Link" }
            var policyType: String { "#microsoft.graph.networkaccess.\(rawValue)" }
        }

        public var id: String
        public var kind: Kind
        public var policyID: String
        public var priority: Int64
        public var enabled: Bool
        public var loggingEnabled: Bool
        public var createdDateTime: String
        public var lastModifiedDateTime: String

        /// Reads a link from a Graph body (create, or PATCH over `self`).
        public mutating func apply(_ body: [String: JSONValue], now: String, creating: Bool) throws(DirectoryError) {
            for key in body.keys where !["@odata.type", "id", "priority", "state", "loggingState", "policy", "action"].contains(key) {
                throw DirectoryError.badRequest("Property '\(key)' does not exist on type 'microsoft.graph.networkaccess.filteringPolicyLink' or cannot be written.")
            }
            if let type = body["@odata.type"]?.stringValue {
                guard let named = [Kind.filtering, .prompt].first(where: { type.hasSuffix("networkaccess.\($0.rawValue)Link") }) else {
                    throw DirectoryError.badRequest("'@odata.type' must be #microsoft.graph.networkaccess.filteringPolicyLink or #microsoft.graph.networkaccess.promptPolicyLink.")
                }
                guard creating || named == kind else { throw DirectoryError.badRequest("A link's type cannot be changed.") }
                kind = named
            }
            if let value = body["priority"] {
                guard let priority = value.intValue, (0...65_000).contains(priority) else {
                    throw DirectoryError.badRequest("priority is an integer from 0 to 65000.")
                }
                self.priority = priority
            } else if creating {
                throw DirectoryError.badRequest("priority is required.")
            }
            if let value = body["state"] { enabled = try FilteringProfile.status(value, "state") }
            if let value = body["loggingState"] { loggingEnabled = try FilteringProfile.status(value, "loggingState") }
            if let value = body["policy"] {
                guard creating || value["id"]?.stringValue?.lowercased() == policyID else {
                    throw DirectoryError.badRequest("A link's policy cannot be changed; delete the link and link the other policy.")
                }
                guard let id = value["id"]?.stringValue, !id.isEmpty else { throw DirectoryError.badRequest("policy.id is required.") }
                policyID = id.lowercased()
            } else if creating {
                throw DirectoryError.badRequest("policy (with the filtering policy's id) is required.")
            }
            lastModifiedDateTime = now
        }

        public var json: JSONValue {
            [
                "@odata.type": .string(kind.linkType), "id": .string(id), "priority": .int(priority),
                "state": .string(enabled ? "enabled" : "disabled"), "loggingState": .string(loggingEnabled ? "enabled" : "disabled"),
                "version": "1.0.0", "policy": ["@odata.type": .string(kind.policyType), "id": .string(policyID)],
                "createdDateTime": .string(createdDateTime), "lastModifiedDateTime": .string(lastModifiedDateTime),
            ]
        }

        init?(json: JSONValue) {
            guard let id = json["id"]?.stringValue, let policy = json["policy"]?["id"]?.stringValue, let priority = json["priority"]?.intValue else { return nil }
            self.id = id
            kind = json["@odata.type"]?.stringValue?.hasSuffix("promptPolicyLink") == true ? .prompt : .filtering
            policyID = policy
            self.priority = priority
            enabled = json["state"]?.stringValue != "disabled"
            loggingEnabled = json["loggingState"]?.stringValue != "disabled"
            createdDateTime = json["createdDateTime"]?.stringValue ?? ""
            lastModifiedDateTime = json["lastModifiedDateTime"]?.stringValue ?? ""
        }

        public init(id: String, now: String) {
            self.id = id
            kind = .filtering
            policyID = ""
            priority = 0
            enabled = true
            loggingEnabled = true
            createdDateTime = now
            lastModifiedDateTime = now
        }
    }

    public var id: String
    public var name: String
    public var description: String?
    public var enabled: Bool
    public var priority: Int64
    public var links: [Link]
    public var createdDateTime: String
    public var lastModifiedDateTime: String

    /// At most this many policies linked to a profile.
    public static let maximumLinks = 100

    public init(id: String, now: String) {
        self.id = id
        name = ""
        enabled = true
        priority = 0
        links = []
        createdDateTime = now
        lastModifiedDateTime = now
    }

    /// Applies a Graph create or PATCH body (`name`, `description`, `state`, `priority`; on create also `policies`,
    /// each a link).
    public mutating func apply(_ body: [String: JSONValue], now: String, creating: Bool, newID: () -> String) throws(DirectoryError) {
        for key in body.keys where !["@odata.type", "id", "name", "description", "state", "priority", "policies"].contains(key) {
            throw DirectoryError.badRequest("Property '\(key)' does not exist on type 'microsoft.graph.networkaccess.filteringProfile' or cannot be written.")
        }
        if let type = body["@odata.type"]?.stringValue, !type.hasSuffix("networkaccess.filteringProfile") {
            throw DirectoryError.badRequest("'@odata.type' must be #microsoft.graph.networkaccess.filteringProfile.")
        }
        if let name = try PolicyNaming.name(in: body, creating: creating) { self.name = name }
        if let value = body["description"] { description = try PolicyNaming.description(value) }
        if let value = body["state"] { enabled = try Self.status(value, "state") }
        if let value = body["priority"] {
            guard let priority = value.intValue, (0...65_000).contains(priority) else {
                throw DirectoryError.badRequest("priority is an integer from 0 to 65000.")
            }
            self.priority = priority
        } else if creating {
            throw DirectoryError.badRequest("priority is required.")
        }
        if let value = body["policies"] {
            guard creating else { throw DirectoryError.badRequest("Link policies with POST /networkAccess/filteringProfiles/{id}/policies.") }
            guard let list = value.arrayValue, list.count <= Self.maximumLinks else {
                throw DirectoryError.badRequest("policies must be an array of at most \(Self.maximumLinks) links.")
            }
            for entry in list {
                guard let object = entry.objectValue else { throw DirectoryError.badRequest("Each of policies must be a filteringPolicyLink object.") }
                var link = Link(id: newID(), now: now)
                try link.apply(object, now: now, creating: true)
                links.append(link)
            }
        }
        lastModifiedDateTime = now
    }

    static func status(_ value: JSONValue, _ name: String) throws(DirectoryError) -> Bool {
        switch value.stringValue {
        case "enabled": return true
        case "disabled": return false
        default: throw DirectoryError.badRequest("\(name) must be enabled or disabled.")
        }
    }

    /// Reads a stored profile.
    public init?(stored: StoredObject) {
        let b = stored.body
        guard let name = b["name"]?.stringValue, let priority = b["priority"]?.intValue else { return nil }
        id = stored.id
        self.name = name
        description = b["description"]?.stringValue
        enabled = b["state"]?.stringValue != "disabled"
        self.priority = priority
        links = (b["policies"]?.arrayValue ?? []).compactMap(Link.init(json:))
        createdDateTime = b["createdDateTime"]?.stringValue ?? ""
        lastModifiedDateTime = b["lastModifiedDateTime"]?.stringValue ?? ""
    }

    /// The Graph shape (`policies` only when asked: Microsoft expands them on request).
    public func body(withLinks: Bool) -> [String: JSONValue] {
        var body: [String: JSONValue] = [
            "@odata.type": "#microsoft.graph.networkaccess.filteringProfile", "id": .string(id), "name": .string(name),
            "description": .optional(description), "state": .string(enabled ? "enabled" : "disabled"), "version": "1.0.0",
            "priority": .int(priority), "createdDateTime": .string(createdDateTime), "lastModifiedDateTime": .string(lastModifiedDateTime),
        ]
        if withLinks { body["policies"] = .array(links.map(\.json)) }
        return body
    }

    public func stored(tenant: String) -> StoredObject {
        StoredObject(tenant: tenant, id: id, kind: .filteringProfile, body: body(withLinks: true))
    }
}
