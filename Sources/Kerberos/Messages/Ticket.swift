/// RFC 4120's EncryptedData: an encryption type, the key version it was made with, and the ciphertext.
public struct EncryptedData: Sendable {
    public let encryptionType: EncryptionType
    public let keyVersion: UInt32?
    public let cipher: ArraySlice<UInt8>

    /// `SEQUENCE { etype [0] Int32, kvno [1] UInt32 OPTIONAL, cipher [2] OCTET STRING }`; the cipher stays a slice of
    /// the token.
    init(from reader: inout DERReader) throws {
        (encryptionType, keyVersion, cipher) = try reader.sequence { fields in
            (
                EncryptionType(rawValue: try fields.field(0) { try $0.int32() }),
                try fields.optionalField(1) { try $0.uint32() },
                try fields.field(2) { try $0.octets() }
            )
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

    init(from reader: inout DERReader) throws {
        (realm, serverName, encryptedPart) = try reader.applicationSequence(1) { fields in
            guard try fields.field(0, { try $0.int32() }) == 5 else {
                throw KerberosError.malformed("the ticket's tkt-vno is not 5")
            }
            return (
                try fields.field(1) { try $0.string() },
                try fields.field(2) { try PrincipalName(from: &$0) },
                try fields.field(3) { try EncryptedData(from: &$0) }
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

    /// AuthorizationData ::= SEQUENCE OF SEQUENCE { ad-type [0] Int32, ad-data [1] OCTET STRING }.
    static func sequence(from reader: inout DERReader) throws -> [AuthorizationElement] {
        var elements = [AuthorizationElement]()
        try reader.sequenceOf { element in
            elements.append(
                try element.sequence { fields in
                    AuthorizationElement(
                        type: try fields.field(0) { try $0.int32() }, data: try fields.field(1) { try $0.octets() })
                })
        }
        return elements
    }

    /// The PAC: AD-WIN2K-PAC, at the top level or (as AD and Samba send it) inside AD-IF-RELEVANT, whose ad-data is
    /// itself an AuthorizationData. A slice of the decrypted ticket.
    static func pac(in elements: [AuthorizationElement]) throws -> ArraySlice<UInt8>? {
        for element in elements {
            switch element.type {
            case win2kPAC:
                return element.data
            case ifRelevant:
                var reader = DERReader(element.data, what: "AD-IF-RELEVANT")
                let inner = try sequence(from: &reader)
                guard reader.isAtEnd else { throw KerberosError.malformed("AD-IF-RELEVANT has bytes after its elements") }
                if let pac = try pac(in: inner) { return pac }
            default:
                continue
            }
        }
        return nil
    }
}
