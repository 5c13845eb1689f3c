/// RFC 4120 section 5.5.2's KRB_AP_REP: `[APPLICATION 15] SEQUENCE { pvno, msg-type, enc-part }` whose enc-part is
/// `EncAPRepPart ::= [APPLICATION 27] SEQUENCE { ctime, cusec, subkey, seq-number }`, encrypted with the ticket's
/// session key under key usage 12 (RFC 4120 section 7.5.1).
enum APReply {
    static let keyUsage: Int32 = 12

    /// The AP-REP echoing the authenticator's time, encrypted with the session key, framed as `framing` says (bare,
    /// or written straight into its GSS-API or SPNEGO token). RFC 4120 allows the authenticator's subkey to be echoed
    /// or a new one chosen; none is sent, so the client keeps its own.
    static func encode(
        authenticatorTime: Int64, microseconds: Int32, sequenceNumber: UInt32?, sessionKey: SessionKey,
        confounder: [UInt8], framing: APRequest.Framing = .bare
    ) throws -> [UInt8] {
        let part = encryptedPart(
            authenticatorTime: authenticatorTime, microseconds: microseconds, sequenceNumber: sequenceNumber)
        let cipher = try sessionKey.encrypt(part, usage: keyUsage, confounder: confounder)
        return GSSToken.wrapReply(framing: framing, length: cipher.count + 32) { reply in
            write(cipher: cipher, type: sessionKey.encryptionType, into: &reply)
        }
    }

    /// `[APPLICATION 15] SEQUENCE { pvno [0] 5, msg-type [1] 15, enc-part [2] EncryptedData }`.
    private static func write(cipher: [UInt8], type: EncryptionType, into reply: inout DERWriter) {
        reply.element(DERReader.Tag.application(15)) { reply in
            reply.element(DERReader.Tag.sequence) { fields in
                fields.explicit(0) { $0.integer(5) }
                fields.explicit(1) { $0.integer(15) }
                // EncryptedData ::= SEQUENCE { etype [0], kvno [1] OPTIONAL (none: a session key has no version),
                // cipher [2] }
                fields.explicit(2) { encrypted in
                    encrypted.element(DERReader.Tag.sequence) { data in
                        data.explicit(0) { $0.integer(Int64(type.rawValue)) }
                        data.explicit(2) { $0.element(DERReader.Tag.octetString, cipher) }
                    }
                }
            }
        }
    }

    /// The EncAPRepPart before encryption.
    static func encryptedPart(authenticatorTime: Int64, microseconds: Int32, sequenceNumber: UInt32?) -> [UInt8] {
        var part = DERWriter(capacity: 64)
        part.element(DERReader.Tag.application(27)) { part in
            part.element(DERReader.Tag.sequence) { fields in
                fields.explicit(0) { $0.time(authenticatorTime) }
                fields.explicit(1) { $0.integer(Int64(microseconds)) }
                if let sequenceNumber { fields.explicit(3) { $0.integer(Int64(sequenceNumber)) } }
            }
        }
        return part.bytes
    }
}
