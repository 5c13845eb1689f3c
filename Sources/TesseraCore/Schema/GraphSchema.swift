/// The Graph v1.0 types Tessera serves, generated from Microsoft's CSDL (see `scripts/gen-schema.py`).
public enum GraphSchema {
    /// An entity type by name (`user`, `group`, …), with the properties Graph's beta endpoint adds when `beta`.
    public static func entity(_ name: String, beta: Bool = false) -> GraphStructure? {
        guard beta, let extra = betaProperties[name], let generated = generatedEntities[name] else { return generatedEntities[name] }
        return GraphStructure(name: name, properties: generated.properties.merging(extra) { a, _ in a })
    }

    /// Properties only Graph's beta schema declares, that Microsoft's beta examples read and write (a device's
    /// `extensionAttributes`). Writes accept them whatever the version, since the store does not know one.
    static let betaProperties: [String: [String: GraphProperty]] = [
        "device": ["extensionAttributes": GraphProperty(.complex("onPremisesExtensionAttributes"))],
    ]
    /// A complex type by name (`passwordProfile`, …).
    public static func complexType(_ name: String) -> GraphStructure? {
        guard let extra = navigationProperties[name] ?? tesseraProperties[name], let generated = generatedComplexTypes[name] else {
            return generatedComplexTypes[name]
        }
        return GraphStructure(name: name, properties: generated.properties.merging(extra) { a, _ in a })
    }

    /// Properties Tessera adds to Graph's complex types, for what Entra has no property for: a web app's OpenID Connect
    /// back-channel logout URL (`web.backchannelLogoutUrl`, beside Entra's front-channel `logoutUrl`).
    static let tesseraProperties: [String: [String: GraphProperty]] = [
        "webApplication": ["backchannelLogoutUrl": GraphProperty(.string)],
    ]

    /// Navigation properties of complex types that requests may set inline (a policy's authentication strength,
    /// given as `{"id": …}`); the CSDL declares them apart from the properties.
    static let navigationProperties: [String: [String: GraphProperty]] = [
        "conditionalAccessGrantControls": ["authenticationStrength": GraphProperty(.untyped)],
        // Beta's session control naming a Global Secure Access security profile (`{"profileId", "isEnabled"}`), as
        // Microsoft's Internet Access tutorial writes it; Conditional Access checks its members when it compiles.
        "conditionalAccessSessionControls": ["globalSecureAccessFilteringProfile": GraphProperty(.untyped)],
    ]
    /// An enumeration by name.
    public static func enumeration(_ name: String) -> GraphEnumeration? { generatedEnums[name] }
    /// Complex types that derive from `name`.
    public static func derivedTypes(of name: String) -> [String] { generatedDerivedTypes[name] ?? [] }
}

/// A structured type: its properties by name.
public struct GraphStructure: Sendable {
    /// The type's name in the `microsoft.graph` namespace.
    public let name: String
    /// Its properties, base types included.
    public let properties: [String: GraphProperty]
}

/// One property of a structured type.
public struct GraphProperty: Sendable {
    /// Its type.
    public let type: GraphPropertyType
    /// False when Graph declares `Nullable="false"`.
    public let nullable: Bool
    init(_ type: GraphPropertyType, nullable: Bool = true) {
        self.type = type
        self.nullable = nullable
    }
}

/// An enumeration's members.
public struct GraphEnumeration: Sendable {
    /// Member names.
    public let members: [String]
    /// True for flags enums, whose values are comma-separated member lists.
    public let isFlags: Bool
}

/// The type of a property, as the CSDL declares it.
public indirect enum GraphPropertyType: Sendable {
    case string, boolean, int32, int64, double, guid, dateTimeOffset, date, timeOfDay, duration, binary, stream
    case enumeration(String)
    case complex(String)
    case collection(GraphPropertyType)
    case untyped
}
