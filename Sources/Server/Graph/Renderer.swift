import TesseraCore

/// Turns stored objects into Graph JSON: private members removed, `$select` applied, Graph's default
/// property set for users.
enum Renderer {
    /// What `GET /users` returns without `$select`, as in Graph v1.0.
    static let defaultUserProperties: Set<String> = [
        "businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone", "officeLocation",
        "preferredLanguage", "surname", "userPrincipalName", "id",
    ]

    /// ``defaultUserProperties`` in the order serialisation writes them (keys sorted by their bytes), each as the
    /// `,"name":` that precedes its value.
    static let defaultUserMembers: [(name: String, prefix: [UInt8])] = defaultUserProperties.sorted().map { name in
        (name, Array(",\"\(name)\":".utf8))
    }

    /// The JSON bytes of a user as `render(user, select: nil)` with `@odata.context` set to `context` serialises, written
    /// straight from the stored body (a create's 201): no copy of the body with its defaults, no object built, filtered
    /// and sorted. Nil for anything else (another kind, a deleted user), which takes ``render(_:select:polymorphic:)``.
    /// `RendererDirectTests` compares the two over users with every kind of value.
    static func userBytes(_ object: StoredObject, context: String) -> [UInt8]? {
        guard object.kind == .user, object.deletedAt == nil else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(320 + context.utf8.count + object.id.utf8.count)
        out.append(contentsOf: #"{"@odata.context":"#.utf8)
        JSONValue.string(context).serialize(into: &out)
        for member in defaultUserMembers {
            out.append(contentsOf: member.prefix)
            guard member.name != "id" else {
                JSONValue.string(object.id).serialize(into: &out)
                continue
            }
            switch object.body[member.name] {
            case nil: out.append(contentsOf: "null".utf8)
            // `_`-members can only hide inside objects (at any depth): those values are stripped as render strips them.
            case let value?:
                switch value {
                case .object, .array: stripPrivate(value).serialize(into: &out)
                default: value.serialize(into: &out)
                }
            }
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    static func render(_ object: StoredObject, select: [String]?, polymorphic: Bool = false) -> JSONValue {
        var out: [String: JSONValue] = [:]
        let body = withDefaults(object.body, kind: object.kind)
        if let select {
            for name in select { out[name] = body[name] ?? (name == "id" ? .string(object.id) : .null) }
        } else if object.kind == .user {
            for name in defaultUserProperties { out[name] = body[name] ?? .null }
        } else {
            // Annotations stored before request bodies were parsed (a `members@odata.bind` saved as data) are not shown.
            out = body.filter { !$0.key.contains("@") || $0.key == "@odata.type" }
        }
        if select == nil {
            out["id"] = .string(object.id)
            if object.deletedAt != nil { out["deletedDateTime"] = body["deletedDateTime"] ?? .string(object.deletedAt ?? "") }
        }
        if let derived = object.body["@odata.type"], object.kind == .namedLocation {
            out["@odata.type"] = derived  // always: clients pick the derived type by it
        } else if polymorphic || object.deletedAt != nil {
            out["@odata.type"] = .string(object.kind.odataType)
        }
        return stripPrivate(.object(out))
    }

    /// `$select` over Graph JSON that is not stored (directory roles, role definitions); `@odata.type` is kept.
    static func select(_ value: JSONValue, _ select: [String]?) -> JSONValue {
        guard let select, let members = value.objectValue else { return stripPrivate(value) }
        var out: [String: JSONValue] = [:]
        for name in select { out[name] = members[name] ?? .null }
        if let type = members["@odata.type"] { out["@odata.type"] = type }
        return stripPrivate(.object(out))
    }

    /// Removes `_`-prefixed members at every depth (secret digests, certificates kept for verification).
    static func stripPrivate(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let members):
            var out: [String: JSONValue] = [:]
            for (key, member) in members where !key.hasPrefix("_") { out[key] = stripPrivate(member) }
            return .object(out)
        case .array(let items): return .array(items.map(stripPrivate))
        default: return value
        }
    }
}
