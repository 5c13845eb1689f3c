import SwiftASN1

/// RFC 4120 section 5.5.2's KRB_AP_REP: `[APPLICATION 15] SEQUENCE { pvno, msg-type, enc-part }` whose enc-part is
/// `EncAPRepPart ::= [APPLICATION 27] SEQUENCE { ctime, cusec, subkey, seq-number }`, encrypted with the ticket's
/// session key under key usage 12 (RFC 4120 section 7.5.1).
enum APReply {
    static let keyUsage: Int32 = 12

    /// The AP-REP echoing the authenticator's time, encrypted with the session key (`sessionCipher`: the same key
    /// already expanded for AES, when the caller has it). RFC 4120 allows the authenticator's subkey to be echoed or
    /// a new one chosen; none is sent, so the client keeps its own.
    static func encode(
        authenticatorTime: Int64, microseconds: Int32, sequenceNumber: UInt32?, sessionKey: KerberosKey,
        sessionCipher: AESKey? = nil, confounder: [UInt8]
    ) throws -> [UInt8] {
        var part = DER.Serializer()
        try part.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 27, tagClass: .application)) { coder in
            try coder.appendConstructedNode(identifier: .sequence) { coder in
                coder.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) {
                    coder in
                    coder.appendPrimitiveNode(identifier: .generalizedTime) {
                        $0.append(contentsOf: KerberosTime.bytes(authenticatorTime))
                    }
                }
                try coder.serialize(Int(microseconds), explicitlyTaggedWithTagNumber: 1, tagClass: .contextSpecific)
                if let sequenceNumber {
                    try coder.serialize(Int(sequenceNumber), explicitlyTaggedWithTagNumber: 3, tagClass: .contextSpecific)
                }
            }
        }
        let profile = try sessionKey.encryptionType.profile()
        let keys = try profile.usageKeys(sessionKey.key, usage: keyUsage, baseCipher: sessionCipher)
        let cipher = try profile.encrypt(part.serializedBytes, keys: keys, confounder: confounder)
        let encrypted = EncryptedData(encryptionType: sessionKey.encryptionType, keyVersion: nil, cipher: cipher)

        var reply = DER.Serializer()
        try reply.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 15, tagClass: .application)) { coder in
            try coder.appendConstructedNode(identifier: .sequence) { coder in
                try coder.serialize(5, explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific)
                try coder.serialize(15, explicitlyTaggedWithTagNumber: 1, tagClass: .contextSpecific)
                try coder.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 2, tagClass: .contextSpecific)) {
                    try encrypted.serialize(into: &$0)
                }
            }
        }
        return reply.serializedBytes
    }
}
