import SwiftASN1

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

    /// Whether the components are the same; service names compare without regard to case (as AD's SPN lookup does).
    public func matches(_ other: PrincipalName) -> Bool {
        components.count == other.components.count
            && zip(components, other.components).allSatisfy { $0.lowercased() == $1.lowercased() }
    }

    init(derEncoded node: ASN1Node) throws {
        (nameType, components) = try DER.sequence(node, identifier: .sequence) { nodes in
            let type = try DERFields.field(&nodes, 0, DERFields.int32)
            let names = try DERFields.field(&nodes, 1) { node in
                try DERFields.sequenceOf(node).map(DERFields.string)
            }
            return (type, names)
        }
    }
}
