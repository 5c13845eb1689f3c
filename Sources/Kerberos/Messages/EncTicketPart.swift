import SwiftASN1

/// RFC 4120's EncryptionKey as a ``KerberosKey`` (a session key or subkey has no version).
func decodeKey(_ node: ASN1Node) throws -> KerberosKey {
    try DER.sequence(node, identifier: .sequence) { nodes in
        let type = EncryptionType(rawValue: try DERFields.field(&nodes, 0, DERFields.int32))
        let value = try DERFields.field(&nodes, 1, DERFields.octets)
        return try KerberosKey(encryptionType: type, bytes: value)
    }
}

/// RFC 4120 section 5.3's EncTicketPart, the ticket's decrypted part:
/// `[APPLICATION 3] SEQUENCE { flags, key, crealm, cname, transited, authtime, starttime, endtime, renew-till, caddr,
/// authorization-data }`.
struct EncTicketPart: Sendable {
    let flags: ArraySlice<UInt8>
    let sessionKey: KerberosKey
    let clientRealm: String
    let clientName: PrincipalName
    let authTime: Int64
    let startTime: Int64?
    let endTime: Int64
    let renewTill: Int64?
    let authorizationData: [AuthorizationElement]

    init(derEncoded bytes: [UInt8]) throws {
        let node = try DERFields.decoding("the EncTicketPart") { try DER.parse(bytes) }
        self = try DERFields.decoding("the EncTicketPart") {
            try DERFields.applicationSequence(node, 3) { nodes in
                let flags = try DERFields.field(&nodes, 0) { try ASN1BitString(derEncoded: $0).bytes }
                let key = try DERFields.field(&nodes, 1, decodeKey)
                let crealm = try DERFields.field(&nodes, 2, DERFields.string)
                let cname = try DERFields.field(&nodes, 3, PrincipalName.init(derEncoded:))
                _ = try DERFields.field(&nodes, 4) { $0 }  // transited
                let authTime = try DERFields.field(&nodes, 5, DERFields.time)
                let startTime = try DERFields.optionalField(&nodes, 6, DERFields.time)
                let endTime = try DERFields.field(&nodes, 7, DERFields.time)
                let renewTill = try DERFields.optionalField(&nodes, 8, DERFields.time)
                _ = try DERFields.optionalField(&nodes, 9) { $0 }  // caddr
                let authorization = try DERFields.optionalField(&nodes, 10, AuthorizationElement.sequence) ?? []
                return EncTicketPart(
                    flags: flags, sessionKey: key, clientRealm: crealm, clientName: cname, authTime: authTime,
                    startTime: startTime, endTime: endTime, renewTill: renewTill, authorizationData: authorization)
            }
        }
    }

    private init(
        flags: ArraySlice<UInt8>, sessionKey: KerberosKey, clientRealm: String, clientName: PrincipalName,
        authTime: Int64, startTime: Int64?, endTime: Int64, renewTill: Int64?, authorizationData: [AuthorizationElement]
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
    let clientRealm: String
    let clientName: PrincipalName
    let checksumType: Int32?
    let checksum: ArraySlice<UInt8>?
    let microseconds: Int32
    let time: Int64
    let subkey: KerberosKey?
    let sequenceNumber: UInt32?

    init(derEncoded bytes: [UInt8]) throws {
        let node = try DERFields.decoding("the authenticator") { try DER.parse(bytes) }
        (clientRealm, clientName, checksumType, checksum, microseconds, time, subkey, sequenceNumber) =
            try DERFields.decoding("the authenticator") {
                try DERFields.applicationSequence(node, 2) { nodes in
                    guard try DERFields.field(&nodes, 0, DERFields.int32) == 5 else {
                        throw KerberosError.malformed("the authenticator-vno is not 5")
                    }
                    let crealm = try DERFields.field(&nodes, 1, DERFields.string)
                    let cname = try DERFields.field(&nodes, 2, PrincipalName.init(derEncoded:))
                    let checksum = try DERFields.optionalField(&nodes, 3) { node in
                        try DER.sequence(node, identifier: .sequence) { fields in
                            (try DERFields.field(&fields, 0, DERFields.int32), try DERFields.field(&fields, 1, DERFields.octets))
                        }
                    }
                    let cusec = try DERFields.field(&nodes, 4, DERFields.int32)
                    let ctime = try DERFields.field(&nodes, 5, DERFields.time)
                    let subkey = try DERFields.optionalField(&nodes, 6, decodeKey)
                    let sequence = try DERFields.optionalField(&nodes, 7, DERFields.uint32)
                    _ = try DERFields.optionalField(&nodes, 8) { $0 }  // authorization-data
                    return (crealm, cname, checksum?.0, checksum?.1, cusec, ctime, subkey, sequence)
                }
            }
    }
}
