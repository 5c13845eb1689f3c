/// RFC 4120's EncryptionKey, `SEQUENCE { keytype [0] Int32, keyvalue [1] OCTET STRING }`: a session key or subkey,
/// its bytes left where they lie in the decrypted message.
func decodeKey(_ reader: inout DERReader) throws -> SessionKey {
    try reader.sequence { fields in
        let type = EncryptionType(rawValue: try fields.field(0) { try $0.int32() })
        let value = try fields.field(1) { try $0.octets() }
        return try SessionKey(encryptionType: type, bytes: value)
    }
}

/// RFC 4120 section 5.3's EncTicketPart, the ticket's decrypted part:
/// `[APPLICATION 3] SEQUENCE { flags, key, crealm, cname, transited, authtime, starttime, endtime, renew-till, caddr,
/// authorization-data }`.
struct EncTicketPart: Sendable {
    let flags: ArraySlice<UInt8>
    let sessionKey: SessionKey
    let clientRealm: String
    let clientName: PrincipalName
    let authTime: Int64
    let startTime: Int64?
    let endTime: Int64
    let renewTill: Int64?
    /// The encoded AuthorizationData (empty when absent), read by ``AuthorizationElement/pac(in:)``.
    let authorizationData: ArraySlice<UInt8>

    /// Reads the decrypted part in place: the authorization data (and the PAC in it) stay slices of `bytes`.
    init(derEncoded bytes: ArraySlice<UInt8>) throws {
        var reader = DERReader(bytes, what: "the EncTicketPart")
        self = try reader.applicationSequence(3) { fields in
            let flags = try fields.field(0) { try $0.bitString() }
            let key = try fields.field(1, decodeKey)
            let crealm = try fields.field(2) { try $0.string() }
            let cname = try fields.field(3) { try PrincipalName(from: &$0) }
            try fields.field(4) { try $0.skipElement() }  // transited
            let authTime = try fields.field(5) { try $0.time() }
            let startTime = try fields.optionalField(6) { try $0.time() }
            let endTime = try fields.field(7) { try $0.time() }
            let renewTill = try fields.optionalField(8) { try $0.time() }
            try fields.optionalField(9) { try $0.skipElement() }  // caddr
            let authorization = try fields.optionalField(10) { field -> ArraySlice<UInt8> in
                let encoded = field.rest
                try field.skipElement()
                return encoded
            } ?? []
            return EncTicketPart(
                flags: flags, sessionKey: key, clientRealm: crealm, clientName: cname, authTime: authTime,
                startTime: startTime, endTime: endTime, renewTill: renewTill, authorizationData: authorization)
        }
        guard reader.isAtEnd else { throw KerberosError.malformed("the EncTicketPart has bytes after it") }
    }

    private init(
        flags: ArraySlice<UInt8>, sessionKey: SessionKey, clientRealm: String, clientName: PrincipalName,
        authTime: Int64, startTime: Int64?, endTime: Int64, renewTill: Int64?, authorizationData: ArraySlice<UInt8>
    ) {
        self.flags = flags
        self.sessionKey = sessionKey
        self.clientRealm = clientRealm
        self.clientName = clientName
        self.authTime = authTime
        self.startTime = startTime
        self.endTime = endTime
        self.renewTill = renewTill
        self.authorizationData = authorizationData
    }
}

/// RFC 4120 section 5.5.1's Authenticator:
/// `[APPLICATION 2] SEQUENCE { authenticator-vno, crealm, cname, cksum, cusec, ctime, subkey, seq-number,
/// authorization-data }`.
struct Authenticator: Sendable {
    /// RFC 4120 section 7.5.1: the AP-REQ's authenticator is encrypted with the session key under key usage 11.
    static let keyUsage: Int32 = 11

    let clientRealm: String
    let clientName: PrincipalName
    let checksumType: Int32?
    let checksum: ArraySlice<UInt8>?
    let microseconds: Int32
    let time: Int64
    let subkey: SessionKey?
    let sequenceNumber: UInt32?

    init(derEncoded bytes: ArraySlice<UInt8>) throws {
        var reader = DERReader(bytes, what: "the authenticator")
        (clientRealm, clientName, checksumType, checksum, microseconds, time, subkey, sequenceNumber) =
            try reader.applicationSequence(2) { fields in
                guard try fields.field(0, { try $0.int32() }) == 5 else {
                    throw KerberosError.malformed("the authenticator-vno is not 5")
                }
                let crealm = try fields.field(1) { try $0.string() }
                let cname = try fields.field(2) { try PrincipalName(from: &$0) }
                let checksum = try fields.optionalField(3) { checksum in
                    try checksum.sequence { fields in
                        (try fields.field(0) { try $0.int32() }, try fields.field(1) { try $0.octets() })
                    }
                }
                let cusec = try fields.field(4) { try $0.int32() }
                let ctime = try fields.field(5) { try $0.time() }
                let subkey = try fields.optionalField(6, decodeKey)
                let sequence = try fields.optionalField(7) { try $0.uint32() }
                try fields.optionalField(8) { try $0.skipElement() }  // authorization-data
                return (crealm, cname, checksum?.0, checksum?.1, cusec, ctime, subkey, sequence)
            }
        guard reader.isAtEnd else { throw KerberosError.malformed("the authenticator has bytes after it") }
    }
}
