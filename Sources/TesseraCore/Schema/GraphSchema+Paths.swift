/// Property names as Graph resolves them: case-insensitively, against the declared properties only.
extension GraphStructure {
    /// The declared property `name` matches, ignoring case, with the name as declared.
    public func resolve(_ name: String) -> (name: String, property: GraphProperty)? {
        if let exact = properties[name] { return (name, exact) }
        let folded = name.lowercased()
        for (declared, property) in properties where declared.lowercased() == folded { return (declared, property) }
        return nil
    }
}

extension GraphPropertyType {
    /// The element type of a collection; nil for anything else.
    public var elementType: GraphPropertyType? {
        if case .collection(let element) = self { return element }
        return nil
    }

    /// True for a single primitive or enumeration value: what comparisons, functions and `$orderby` can use.
    public var isPrimitive: Bool {
        switch self {
        case .complex, .collection, .stream: false
        default: true
        }
    }

    /// The structure of a complex type (nil for primitives, collections and complex types the schema leaves open).
    public var structure: GraphStructure? {
        if case .complex(let name) = self { return GraphSchema.complexType(name) }
        return nil
    }
}
