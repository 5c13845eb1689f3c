/// RFC 4120's PrincipalName: a name type and its components (`adrs/tessera.corp.example.test` is two components).
public struct PrincipalName: Hashable, Sendable, CustomStringConvertible {
    /// NT-PRINCIPAL (1), NT-SRV-INST (2), NT-SRV-HST (3), NT-ENTERPRISE (10), …; not compared by `matches`.
    public let nameType: Int32
    public let components: [String]

    public init(nameType: Int32 = 1, components: [String]) {
        self.nameType = nameType
        self.components = components
    }

    /// A name from its text form, `service/host` or `WS01$`, without the realm.
    public init(_ text: String, nameType: Int32 = 1) {
        self.init(nameType: nameType, components: text.split(separator: "/", omittingEmptySubsequences: false).map(String.init))
    }

    public var description: String { components.joined(separator: "/") }

    /// Whether the components are the same; service names compare without regard to (ASCII) case, as AD's SPN
    /// lookup does.
    public func matches(_ other: PrincipalName) -> Bool {
        components.count == other.components.count
            && zip(components, other.components).allSatisfy { asciiCaseInsensitiveEqual($0, $1) }
    }

    /// Whether `text` is this name in its text form (the components joined by `/`), ignoring ASCII case, as the
    /// PAC's client info gives it.
    func matches(text: String) -> Bool {
        components.count == 1
            ? asciiCaseInsensitiveEqual(components[0], text) : asciiCaseInsensitiveEqual(description, text)
    }

    /// `name@REALM`, as the replay cache keys a client.
    func qualified(realm: String) -> String {
        var text = ""
        text.reserveCapacity(components.reduce(realm.utf8.count + components.count) { $0 + $1.utf8.count })
        for (index, component) in components.enumerated() {
            if index > 0 { text.append("/") }
            text.append(component)
        }
        text.append("@")
        text.append(realm)
        return text
    }

    /// `SEQUENCE { name-type [0] Int32, name-string [1] SEQUENCE OF KerberosString }`.
    init(from reader: inout DERReader) throws {
        (nameType, components) = try reader.sequence { fields in
            let type = try fields.field(0) { try $0.int32() }
            var names = [String]()
            names.reserveCapacity(2)  // a service and its host, or a computer's one name
            try fields.field(1) { try $0.sequenceOf { names.append(try $0.string()) } }
            return (type, names)
        }
    }
}

/// Whether two strings are equal ignoring the case of ASCII letters, without allocating.
func asciiCaseInsensitiveEqual(_ a: String, _ b: String) -> Bool {
    var (a, b) = (a, b)
    return a.withUTF8 { x in
        b.withUTF8 { y in
            guard x.count == y.count else { return false }
            for (p, q) in zip(x, y) where p != q {
                let (lp, lq) = (p | 0x20, q | 0x20)
                guard lp == lq, lp >= UInt8(ascii: "a"), lp <= UInt8(ascii: "z") else { return false }
            }
            return true
        }
    }
}
