public import TesseraCore

/// One property that is not what the baseline says (Graph's `driftedProperty`).
public struct DriftedProperty: Sendable, Equatable {
    public var propertyName: String
    public var currentValue: JSONValue
    public var desiredValue: JSONValue

    public init(propertyName: String, currentValue: JSONValue, desiredValue: JSONValue) {
        self.propertyName = propertyName
        self.currentValue = currentValue
        self.desiredValue = desiredValue
    }

    public var json: JSONValue {
        ["propertyName": .string(propertyName), "currentValue": currentValue, "desiredValue": desiredValue]
    }
}

/// A baseline resource whose instance differs from it, property by property.
public struct DriftFinding: Sendable, Equatable {
    /// The type's canonical name.
    public var resourceType: String
    /// The baseline resource's `displayName`.
    public var baselineResourceDisplayName: String
    /// Where the drift is: the instance's key property and value (and its `Id` when the tenant has it).
    public var resourceInstanceIdentifier: [String: JSONValue]
    public var driftedProperties: [DriftedProperty]
}

/// Compares a baseline with the tenant's configuration. A pure function of the two: for each baseline resource,
/// the instance it names (by `Id` when the baseline gives one, else by its type's key property, without regard to
/// case) and the properties that differ. `Ensure: Absent` drifts when the instance exists; a missing instance
/// drifts on `Ensure`. Values compare as Microsoft's desired-state checks do: strings without regard to case,
/// lists as sets, numbers by value, objects by the members the baseline gives; a property the baseline sets to
/// null or an empty list matches one the tenant leaves unset.
public enum ConfigurationDriftEvaluator {
    public static func evaluate(baseline: [ConfigurationResource], current: [ConfigurationResource]) -> [DriftFinding] {
        var findings: [DriftFinding] = []
        for resource in baseline {
            guard let type = ConfigurationResourceType.named(resource.resourceType) else { continue }
            let instances = current.filter { $0.resourceType == type.canonicalName }
            let instance: ConfigurationResource?
            if let id = resource.properties["Id"]?.stringValue {
                instance = instances.first { $0.properties["Id"]?.stringValue?.lowercased() == id.lowercased() }
            } else {
                let key = resource.properties[type.key]?.stringValue?.lowercased()
                instance = instances.first { $0.properties[type.key]?.stringValue?.lowercased() == key }
            }
            var identifier: [String: JSONValue] = [type.key: resource.properties[type.key] ?? instance?.properties[type.key] ?? .null]
            if let id = instance?.properties["Id"] ?? resource.properties["Id"] { identifier["Id"] = id }
            let absent = resource.properties["Ensure"] == "Absent"
            var drifted: [DriftedProperty] = []
            switch (instance, absent) {
            case (nil, false):
                drifted = [DriftedProperty(propertyName: "Ensure", currentValue: "Absent", desiredValue: "Present")]
            case (.some, true):
                drifted = [DriftedProperty(propertyName: "Ensure", currentValue: "Present", desiredValue: "Absent")]
            case (nil, true):
                break
            case (let found?, false):
                for name in resource.properties.keys.sorted() where name != "Ensure" {
                    let desired = resource.properties[name] ?? .null, actual = found.properties[name] ?? .null
                    if !matches(desired: desired, current: actual) {
                        drifted.append(DriftedProperty(propertyName: name, currentValue: actual, desiredValue: desired))
                    }
                }
            }
            if !drifted.isEmpty {
                findings.append(DriftFinding(resourceType: type.canonicalName, baselineResourceDisplayName: resource.displayName,
                                             resourceInstanceIdentifier: identifier, driftedProperties: drifted))
            }
        }
        return findings
    }

    /// Whether `current` satisfies `desired`.
    static func matches(desired: JSONValue, current: JSONValue) -> Bool {
        switch (desired, current) {
        case (.null, .null), (.null, .array([])), (.array([]), .null): return true
        case (.string(let a), .string(let b)): return a.lowercased() == b.lowercased()
        case (.array(let a), .array(let b)):
            guard a.count == b.count else { return false }
            var remaining = b
            for item in a {
                guard let index = remaining.firstIndex(where: { matches(desired: item, current: $0) }) else { return false }
                remaining.remove(at: index)
            }
            return true
        case (.object(let a), .object(let b)):
            return a.allSatisfy { name, value in matches(desired: value, current: b[name] ?? .null) }
        default:
            if let x = desired.doubleValue, let y = current.doubleValue { return x == y }
            return desired == current
        }
    }
}

extension BackupService {
    /// The tenant's configuration now: every instance of `types`, read as a snapshot reads objects (as stored,
    /// page by page, the deleted left out) and described in Microsoft's resource names.
    public func configuration(tenant: String, types: [ConfigurationResourceType]) async throws -> [ConfigurationResource] {
        let kinds = Array(Set(types.map(\.kind.rawValue))).sorted().map(ObjectKind.init(rawValue:))
        var bodies: [ObjectKind: [[String: JSONValue]]] = [:]
        var cursor: String?
        repeat {
            let after = cursor
            let rows = try await store.read { tx in try await tx.rawObjects(tenant: tenant, kinds: kinds, afterId: after, limit: Self.packSize) }
            for row in rows where row.deletedAt == nil {
                guard let body = try? JSONParser.parse(Array(row.body.utf8)).objectValue else {
                    throw BackupError.damaged("Object \(row.id) is not stored as a JSON object.")
                }
                bodies[row.kind, default: []].append(body)
            }
            cursor = rows.count == Self.packSize ? rows.last?.id : nil
        } while cursor != nil
        var out: [ConfigurationResource] = []
        for type in types {
            var found = bodies[type.kind] ?? []
            // The authentication methods policy exists in every tenant, written or not.
            if found.isEmpty, type.kind == .authenticationMethodsPolicy { found = [[:]] }
            for body in found {
                let properties = type.describe(body)
                let name = properties[type.key]?.stringValue ?? properties["Id"]?.stringValue ?? ""
                out.append(ConfigurationResource(resourceType: type.canonicalName, displayName: name, properties: properties))
            }
        }
        return out
    }
}
