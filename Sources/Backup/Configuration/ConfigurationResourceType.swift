public import TesseraCore

/// A resource type of Tenant Configuration Management (`microsoft.entra.conditionalAccessPolicy`, …): the kind of
/// directory object it describes and how its Graph JSON reads in the property names Microsoft documents for it
/// (https://learn.microsoft.com/graph/utcm-entra-resources: Microsoft365DSC's PascalCase names).
public struct ConfigurationResourceType: Sendable {
    /// The name as Microsoft lists it (`microsoft.entra.conditionalAccessPolicy`); matched without regard to case.
    public let name: String
    /// The kind of stored object its instances come from.
    public let kind: ObjectKind
    /// The property that names an instance (Microsoft's `Key` attribute): `DisplayName`, `UserPrincipalName`, `Id`.
    public let key: String
    /// The property names a baseline may set (besides `Ensure`).
    public let propertyNames: Set<String>
    /// An instance's properties from a stored object's Graph JSON.
    let describe: @Sendable ([String: JSONValue]) -> [String: JSONValue]

    /// The canonical (lowercase) form of the name, as resources are reported.
    public var canonicalName: String { name.lowercased() }

    /// The type named `name` (any case), or nil when Tessera does not support it.
    public static func named(_ name: String) -> ConfigurationResourceType? {
        byName[name.lowercased()]
    }

    /// Every supported type, in Microsoft's order.
    public static let all: [ConfigurationResourceType] = [
        generic("microsoft.entra.application", kind: .application, entity: "application", key: "DisplayName"),
        ConfigurationMapping.authenticationMethodPolicy, ConfigurationMapping.authenticationMethodPolicyFido2,
        generic("microsoft.entra.authenticationStrengthPolicy", kind: .authenticationStrengthPolicy, entity: "authenticationStrengthPolicy",
                key: "DisplayName"),
        generic("microsoft.entra.authorizationPolicy", kind: .authorizationPolicy, entity: "authorizationPolicy", key: "DisplayName"),
        ConfigurationMapping.conditionalAccessPolicy,
        generic("microsoft.entra.group", kind: .group, entity: "group", key: "DisplayName"),
        ConfigurationMapping.namedLocationPolicy,
        generic("microsoft.entra.servicePrincipal", kind: .servicePrincipal, entity: "servicePrincipal", key: "AppId"),
        generic("microsoft.entra.user", kind: .user, entity: "user", key: "UserPrincipalName"),
    ]

    static let byName = Dictionary(uniqueKeysWithValues: all.map { ($0.canonicalName, $0) })

    /// A type whose properties are its Graph entity's, each name with its first letter upper-cased (Microsoft's
    /// names for these types follow Graph's that way).
    static func generic(_ name: String, kind: ObjectKind, entity: String, key: String) -> ConfigurationResourceType {
        let names = Set((GraphSchema.entity(entity)?.properties.keys).map { $0.map(ConfigurationMapping.pascal) } ?? [])
        return ConfigurationResourceType(name: name, kind: kind, key: key, propertyNames: names.union([key, "Id"]),
                                         describe: { ConfigurationMapping.pascalObject($0) })
    }
}
