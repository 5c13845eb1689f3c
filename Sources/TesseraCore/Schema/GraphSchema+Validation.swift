/// Checks request bodies against the Graph schema: unknown properties and wrong types are refused
/// with Graph-style messages before anything is written.
public enum GraphValidator {
    /// Validates `body` as a (partial) instance of entity type `entity`.
    ///
    /// Annotations (`@odata.type`, `…@odata.bind`) are allowed and ignored here.
    public static func validate(_ body: [String: JSONValue], entity: String) throws(DirectoryError) {
        guard let structure = GraphSchema.entity(entity, beta: true) else { return }
        try validate(body, structure: structure, path: "")
        guard let limits = GraphSchema.lengthLimits[entity] else { return }
        for (key, value) in body {
            // A string no longer in UTF-8 bytes than the limit has no more characters than it: counting characters
            // (grapheme clusters) is left for the long ones.
            guard let text = value.stringValue, let limit = limits[key], text.utf8.count > limit, text.count > limit else { continue }
            throw DirectoryError.badRequest(
                "Invalid value specified for property '\(key)' of resource '\(GraphSchema.resourceName(entity))': the maximum length is \(limit) characters.")
        }
    }

    /// Whether a member name is an instance annotation (`@odata.type`, `members@odata.bind`). Most names have no `@`
    /// at all: a byte scan answers those without a substring search (which showed in a bulk sync's profile).
    static func isAnnotation(_ key: String) -> Bool {
        key.utf8.contains(UInt8(ascii: "@")) && key.contains("@odata.")
    }

    static func validate(_ body: [String: JSONValue], structure: GraphStructure, path: String) throws(DirectoryError) {
        for (key, value) in body {
            if Self.isAnnotation(key) { continue }
            guard let property = structure.properties[key] else {
                throw DirectoryError.badRequest(
                    "Property '\(key)' does not exist as a declared property or extension property.")
            }
            try check(value, as: property.type, nullable: property.nullable, name: path + key)
        }
    }

    static func check(_ value: JSONValue, as type: GraphPropertyType, nullable: Bool, name: String) throws(DirectoryError) {
        if value == .null {
            if nullable { return }
            throw DirectoryError.badRequest("Property '\(name)' cannot be null.")
        }
        func mismatch(_ expected: String) -> DirectoryError {
            DirectoryError.badRequest("Invalid value specified for property '\(name)': expected \(expected).")
        }
        switch type {
        case .string, .binary, .duration, .timeOfDay, .date:
            guard let text = value.stringValue else { throw mismatch("a string") }
            // A NUL cuts strings short in C, LDAP and logs downstream: Entra refuses control characters like it.
            // In UTF-8 a zero byte is the NUL character and nothing else.
            guard !text.utf8.contains(0) else {
                throw DirectoryError.badRequest("Invalid value specified for property '\(name)': it contains a NUL character.")
            }
        case .guid:
            guard let s = value.stringValue, Identifier.isGUID(s) else { throw mismatch("a GUID") }
        case .dateTimeOffset:
            guard let s = value.stringValue, Timestamp.parse(s) != nil else { throw mismatch("an ISO 8601 date and time") }
        case .boolean:
            guard value.boolValue != nil else { throw mismatch("a boolean") }
        case .int32, .int64:
            guard value.intValue != nil else { throw mismatch("an integer") }
        case .double:
            switch value {
            case .int, .double: break
            default: throw mismatch("a number")
            }
        case .stream, .untyped:
            break
        case .enumeration(let name):
            guard let text = value.stringValue else { throw mismatch("a string") }
            if let enumeration = GraphSchema.enumeration(name) {
                let parts = enumeration.isFlags ? text.split(separator: ",").map { String($0).trimmed } : [text]
                for part in parts where !enumeration.members.contains(part) {
                    throw DirectoryError.badRequest("Invalid value '\(part)' for property '\(name)'.")
                }
            }
        case .complex(let typeName):
            guard let object = value.objectValue else { throw mismatch("an object") }
            var structureName = typeName
            if let declared = object["@odata.type"]?.stringValue {
                let short = declared.replacingPrefix("#microsoft.graph.").replacingPrefix("microsoft.graph.")
                if short != typeName {
                    guard GraphSchema.derivedTypes(of: typeName).contains(short) else {
                        throw DirectoryError.badRequest("Invalid @odata.type '\(declared)' for property '\(name)'.")
                    }
                    structureName = short
                }
            }
            guard let structure = GraphSchema.complexType(structureName) else { break }
            if object["@odata.type"] == nil, object.keys.contains(where: { structure.properties[$0] == nil && !Self.isAnnotation($0) }) {
                // An untyped value of an abstract type (an ipRange with a cidrAddress): it must fit one derived type.
                for derived in GraphSchema.derivedTypes(of: typeName) {
                    guard let candidate = GraphSchema.complexType(derived) else { continue }
                    if (try? validate(object, structure: candidate, path: name + ".")) != nil { return }
                }
            }
            try validate(object, structure: structure, path: name + ".")
        case .collection(let element):
            guard let array = value.arrayValue else { throw mismatch("a collection") }
            for item in array { try check(item, as: element, nullable: false, name: name) }
        }
    }
}

extension String {
    /// The string without leading and trailing spaces.
    var trimmed: String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }

    func replacingPrefix(_ prefix: String) -> String {
        hasPrefix(prefix) ? String(dropFirst(prefix.count)) : self
    }
}
