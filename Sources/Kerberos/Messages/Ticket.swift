import SwiftASN1

/// RFC 4120's EncryptedData: an encryption type, the key version it was made with, and the ciphertext.
public struct EncryptedData: Sendable {
    public let encryptionType: EncryptionType
    public let keyVersion: UInt32?
    public let cipher: ArraySlice<UInt8>

    init(derEncoded node: ASN1Node) throws {
        (encryptionType, keyVersion, cipher) = try DER.sequence(node, identifier: .sequence) { nodes in
            (
                EncryptionType(rawValue: try DERFields.field(&nodes, 0, DERFields.int32)),
                try DERFields.optionalField(&nodes, 1, DERFields.uint32),
                try DERFields.field(&nodes, 2, DERFields.octets)
            )
        }
    }

    init(encryptionType: EncryptionType, keyVersion: UInt32?, cipher: [UInt8]) {
        self.encryptionType = encryptionType
        self.keyVersion = keyVersion
        self.cipher = cipher[...]
    }

    func serialize(into coder: inout DER.Serializer) throws {
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(Int(encryptionType.rawValue), explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific)
            if let keyVersion {
                try coder.serialize(Int(keyVersion), explicitlyTaggedWithTagNumber: 1, tagClass: .contextSpecific)
            }
            try coder.serialize(ASN1OctetString(contentBytes: cipher), explicitlyTaggedWithTagNumber: 2,
                tagClass: .contextSpecific)
        }
    }
}

/// RFC 4120 section 5.3's Ticket: `[APPLICATION 1] SEQUENCE { tkt-vno, realm, sname, enc-part }`.
public struct Ticket: Sendable {
    /// The service's realm.
    public let realm: String
    /// The service principal the ticket is for.
    public let serverName: PrincipalName
    /// The EncTicketPart, encrypted with the service's long-term key (key usage 2).
    public let encryptedPart: EncryptedData

    init(derEncoded node: ASN1Node) throws {
        (realm, serverName, encryptedPart) = try DERFields.applicationSequence(node, 1) { nodes in
            guard try DERFields.field(&nodes, 0, DERFields.int32) == 5 else {
                throw KerberosError.malformed("the ticket's tkt-vno is not 5")
            }
            return (
                try DERFields.field(&nodes, 1, DERFields.string),
                try DERFields.field(&nodes, 2, PrincipalName.init(derEncoded:)),
                try DERFields.field(&nodes, 3, EncryptedData.init(derEncoded:))
            )
        }
    }
}

/// An authorization-data element (RFC 4120 section 5.2.6).
struct AuthorizationElement: Sendable {
    static let ifRelevant: Int32 = 1
    static let win2kPAC: Int32 = 128

    let type: Int32
    let data: ArraySlice<UInt8>

    static func sequence(_ node: ASN1Node) throws -> [AuthorizationElement] {
        try DERFields.sequenceOf(node).map { element in
            try DER.sequence(element, identifier: .sequence) { nodes in
                AuthorizationElement(
                    type: try DERFields.field(&nodes, 0, DERFields.int32),
                    data: try DERFields.field(&nodes, 1, DERFields.octets))
            }
        }
    }

    /// The PAC: AD-WIN2K-PAC, at the top level or (as AD and Samba send it) inside AD-IF-RELEVANT.
    static func pac(in elements: [AuthorizationElement]) throws -> ArraySlice<UInt8>? {
        for element in elements {
            switch element.type {
            case win2kPAC:
                return element.data
            case ifRelevant:
                let inner = try DERFields.decoding("AD-IF-RELEVANT") { try sequence(DER.parse(element.data)) }
                if let pac = try pac(in: inner) { return pac }
            default:
                continue
            }
        }
        return nil
    }
}
