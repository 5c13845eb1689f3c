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
enum AuthorizationElement {
    static let ifRelevant: Int32 = 1
    static let win2kPAC: Int32 = 128

    /// The PAC in an encoded AuthorizationData, `SEQUENCE OF SEQUENCE { ad-type [0] Int32, ad-data [1] OCTET STRING
    /// }`: AD-WIN2K-PAC, at the top level or (as AD and Samba send it) inside AD-IF-RELEVANT, whose ad-data is itself
    /// an AuthorizationData. A slice of the decrypted ticket; nil when there is none. Every element is read (as DER)
    /// where it lies, none collected.
    static func pac(in authorizationData: ArraySlice<UInt8>) throws -> ArraySlice<UInt8>? {
        authorizationData.isEmpty ? nil : try firstPAC(in: authorizationData)
    }

    private static func firstPAC(in authorizationData: ArraySlice<UInt8>) throws -> ArraySlice<UInt8>? {
        var reader = DERReader(authorizationData, what: "the authorization data")
        var found: ArraySlice<UInt8>?
        try reader.sequenceOf { element in
            let (type, data) = try element.sequence { fields in
                (try fields.field(0) { try $0.int32() }, try fields.field(1) { try $0.octets() })
            }
            guard found == nil else { return }
            switch type {
            case win2kPAC: found = data
            case ifRelevant: found = try firstPAC(in: data)
            default: break
            }
        }
        guard reader.isAtEnd else {
            throw KerberosError.malformed("the authorization data has bytes after its elements")
        }
        return found
    }
}
