/// A Graph request body split into what is stored and what is acted on.
///
/// `members@odata.bind`, `owners@odata.bind` and `manager@odata.bind` become links, written in the same
/// transaction as the object. Every other instance annotation is dropped at every depth, so no annotation is
/// ever stored, except `@odata.type` inside a complex value (it picks a derived type, as in a named location's
/// `ipRanges`) and at the top of a named location (its derived type).
public struct RequestBody: Sendable {
    /// The properties to store.
    var properties: [String: JSONValue]
    /// The links to add: relation and target object ids, in the order the body gave them.
    var binds: [(relation: String, targets: [String])]

    /// Graph adds at most 20 links in one create or update.
    static let maxBinds = 20

    static func parse(_ body: [String: JSONValue], kind: ObjectKind) throws(DirectoryError) -> RequestBody {
        // A body with no `@` byte in any name, at any depth (a synced user's every body), is stored as it is: nothing
        // to strip and nothing to bind, so it is not copied member by member.
        guard body.contains(where: { $0.key.utf8.contains(UInt8(ascii: "@")) || hasNamesWithAt($0.value) }) else {
            return RequestBody(properties: body, binds: [])
        }
        var properties: [String: JSONValue] = [:]
        properties.reserveCapacity(body.count)
        var annotated: [String] = []
        for (key, value) in body {
            // Most names have no `@` byte, and so no `@` character: stored as they are, with no sort and no search.
            guard key.utf8.contains(UInt8(ascii: "@")) else {
                properties[key] = stripAnnotations(value)
                continue
            }
            annotated.append(key)
        }
        var binds: [(relation: String, targets: [String])] = []
        for key in annotated.sorted() {
            guard let value = body[key] else { continue }
            guard let at = key.firstIndex(of: "@") else {
                properties[key] = stripAnnotations(value)
                continue
            }
            let name = String(key[..<at]), annotation = key[key.index(after: at)...]
            if name.isEmpty {
                if annotation == "odata.type", kind == .namedLocation { properties[key] = value }
                continue  // @odata.context, @odata.etag, @odata.type…: describe the body, never stored
            }
            guard annotation == "odata.bind" else { continue }
            guard let rule = DirectoryService.linkRules[name], rule.sources.contains(kind) else {
                throw DirectoryError.badRequest("The navigation property '\(name)' of 'microsoft.graph.\(kind.rawValue)' cannot be bound in a request body.")
            }
            let urls: [JSONValue] = value.arrayValue ?? [value]
            var targets: [String] = []
            for url in urls {
                guard let text = url.stringValue, let id = referencedId(text) else {
                    throw DirectoryError.badRequest("Invalid URL format specified in @odata.bind for \(name).")
                }
                targets.append(id)
            }
            binds.append((name, targets))
        }
        let count = binds.reduce(0) { $0 + $1.targets.count }
        guard count <= maxBinds else {
            throw DirectoryError.badRequest("A maximum of \(maxBinds) members or owners can be added in one request; add more with members/$ref or $batch.")
        }
        return RequestBody(properties: properties, binds: binds)
    }

    /// The object id a Graph URL names: `…/users/{id}`, `…/directoryObjects/{id}` or `…/directoryObjects('{id}')`.
    public static func referencedId(_ url: String) -> String? {
        let path = url.split(separator: "?", maxSplits: 1).first.map(String.init) ?? url
        guard var last = path.split(separator: "/").last.map(String.init) else { return nil }
        if let open = last.firstIndex(of: "("), last.hasSuffix(")") {
            last = String(last[last.index(after: open)..<last.index(before: last.endIndex)])
            if last.hasPrefix("'"), last.hasSuffix("'"), last.count >= 2 { last = String(last.dropFirst().dropLast()) }
        }
        return Identifier.isGUID(last) ? last.lowercased() : nil
    }

    /// Whether a value holds an object with an `@` byte in a member's name, at any depth.
    static func hasNamesWithAt(_ value: JSONValue) -> Bool {
        switch value {
        case .object(let members): members.contains { $0.key.utf8.contains(UInt8(ascii: "@")) || hasNamesWithAt($0.value) }
        case .array(let items): items.contains(where: hasNamesWithAt)
        default: false
        }
    }

    /// Drops instance annotations inside complex values, keeping `@odata.type`.
    static func stripAnnotations(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let members):
            var out: [String: JSONValue] = [:]
            out.reserveCapacity(members.count)
            for (key, member) in members where !key.utf8.contains(UInt8(ascii: "@")) || !key.contains("@") || key == "@odata.type" {
                out[key] = stripAnnotations(member)
            }
            return .object(out)
        case .array(let items):
            // Scalars have nothing to strip: the array is kept as it is.
            guard items.contains(where: { if case .object = $0 { true } else if case .array = $0 { true } else { false } }) else { return value }
            return .array(items.map(stripAnnotations))
        default: return value
        }
    }
}
