import Foundation
public import TesseraCore

/// One instance of a tenant's configuration: a resource of a supported type with its properties, as a snapshot
/// records it and a baseline describes what it should be (Graph's `baselineResource`).
public struct ConfigurationResource: Sendable, Equatable {
    /// The type's canonical (lowercase) name.
    public var resourceType: String
    /// The instance's name (the value of its type's key property).
    public var displayName: String
    /// The properties, in Microsoft's names.
    public var properties: [String: JSONValue]

    public init(resourceType: String, displayName: String, properties: [String: JSONValue]) {
        self.resourceType = resourceType
        self.displayName = displayName
        self.properties = properties
    }

    /// Graph's `baselineResource`.
    public var json: JSONValue {
        ["displayName": .string(displayName), "resourceType": .string(resourceType), "properties": .object(properties)]
    }
}

/// What a monitor holds the tenant to (Graph's `configurationBaseline`): resources and the properties each should have.
public struct ConfigurationBaseline: Sendable, Equatable {
    public var displayName: String
    public var description: String?
    public var resources: [ConfigurationResource]
    /// Graph's `baselineParameter` collection, kept as given.
    public var parameters: [JSONValue]

    public init(displayName: String, description: String? = nil, resources: [ConfigurationResource], parameters: [JSONValue] = []) {
        self.displayName = displayName
        self.description = description
        self.resources = resources
        self.parameters = parameters
    }

    /// Graph's `configurationBaseline` (without its id, which its owner gives it).
    public var json: [String: JSONValue] {
        ["displayName": .string(displayName), "description": .optional(description), "resources": .array(resources.map(\.json)),
         "parameters": .array(parameters)]
    }

    /// A baseline from a request body, with Graph's errors: a display name, at least one resource, each of a
    /// supported type with at least one property, every property one the type has, and its key property (or `Id`)
    /// present so that the instance can be found.
    public static func parse(_ value: JSONValue?) throws(DirectoryError) -> ConfigurationBaseline {
        guard let body = value?.objectValue else { throw DirectoryError.badRequest("'baseline' is required and must be a configurationBaseline object.") }
        for key in body.keys where !["@odata.type", "id", "displayName", "description", "resources", "parameters"].contains(key) {
            throw DirectoryError.badRequest("Property '\(key)' does not exist on type 'microsoft.graph.configurationBaseline'.")
        }
        guard let name = body["displayName"]?.stringValue, !name.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw DirectoryError.badRequest("The baseline's 'displayName' is required.")
        }
        guard let items = body["resources"]?.arrayValue, !items.isEmpty else {
            throw DirectoryError.badRequest("The baseline must contain at least one resource with at least one property.")
        }
        var resources: [ConfigurationResource] = []
        for (index, item) in items.enumerated() {
            let path = "resources[\(index)]"
            guard let object = item.objectValue else { throw DirectoryError.badRequest("'\(path)' must be a baselineResource object.") }
            for key in object.keys where !["@odata.type", "displayName", "resourceType", "properties"].contains(key) {
                throw DirectoryError.badRequest("Property '\(key)' does not exist on type 'microsoft.graph.baselineResource'.")
            }
            guard let typeName = object["resourceType"]?.stringValue else { throw DirectoryError.badRequest("'\(path).resourceType' is required.") }
            guard let type = ConfigurationResourceType.named(typeName) else {
                throw DirectoryError.badRequest("'\(path).resourceType': the resource type '\(typeName)' is not supported. Supported: "
                    + ConfigurationResourceType.all.map(\.name).joined(separator: ", ") + ".")
            }
            guard let properties = object["properties"]?.objectValue, !properties.isEmpty else {
                throw DirectoryError.badRequest("'\(path).properties' must hold at least one property.")
            }
            for name in properties.keys where name != "Ensure" && !type.propertyNames.contains(name) {
                throw DirectoryError.badRequest("'\(path).properties': '\(name)' is not a property of \(type.name).")
            }
            if let ensure = properties["Ensure"], ensure != "Present", ensure != "Absent" {
                throw DirectoryError.badRequest("'\(path).properties.Ensure' must be 'Present' or 'Absent'.")
            }
            guard let identity = (properties[type.key] ?? properties["Id"])?.stringValue, !identity.isEmpty else {
                throw DirectoryError.badRequest("'\(path).properties' must name the instance by '\(type.key)'\(type.key == "Id" ? "" : " or 'Id'").")
            }
            let displayName = object["displayName"]?.stringValue ?? identity
            resources.append(ConfigurationResource(resourceType: type.canonicalName, displayName: displayName, properties: properties))
        }
        var seen: Set<String> = []
        for resource in resources where !seen.insert(resource.displayName.lowercased()).inserted {
            throw DirectoryError.badRequest("Two resources of the baseline are named '\(resource.displayName)': each resource's displayName must be unique.")
        }
        guard let parameters = body["parameters"].map({ $0 == .null ? [] : $0.arrayValue }) ?? [] else {
            throw DirectoryError.badRequest("'parameters' must be a collection of baselineParameter.")
        }
        return ConfigurationBaseline(displayName: name, description: body["description"]?.stringValue, resources: resources, parameters: parameters)
    }
}
