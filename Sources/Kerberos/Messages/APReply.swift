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
        var fields = DERWriter.explicit(
            0, DERWriter.element(DERReader.Tag.generalizedTime, KerberosTime.bytes(authenticatorTime)))
        fields += DERWriter.explicit(1, DERWriter.integer(Int64(microseconds)))
        if let sequenceNumber { fields += DERWriter.explicit(3, DERWriter.integer(Int64(sequenceNumber))) }
        let part = DERWriter.element(DERReader.Tag.application(27), DERWriter.element(DERReader.Tag.sequence, fields))

        let profile = try sessionKey.encryptionType.profile()
        let keys = try profile.usageKeys(sessionKey.key, usage: keyUsage, baseCipher: sessionCipher)
        let cipher = try profile.encrypt(part, keys: keys, confounder: confounder)
        // EncryptedData ::= SEQUENCE { etype [0], kvno [1] OPTIONAL (none: a session key has no version), cipher [2] }
        let encrypted = DERWriter.element(
            DERReader.Tag.sequence,
            DERWriter.explicit(0, DERWriter.integer(Int64(sessionKey.encryptionType.rawValue)))
                + DERWriter.explicit(2, DERWriter.element(DERReader.Tag.octetString, cipher)))
        return DERWriter.element(
            DERReader.Tag.application(15),
            DERWriter.element(
                DERReader.Tag.sequence,
                DERWriter.explicit(0, DERWriter.integer(5)) + DERWriter.explicit(1, DERWriter.integer(15))
                    + DERWriter.explicit(2, encrypted)))
    }
}
