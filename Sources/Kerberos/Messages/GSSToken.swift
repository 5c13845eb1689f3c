import SwiftASN1

/// RFC 2743 section 3.1's mechanism-independent token framing, RFC 4121's krb5 token IDs and RFC 4178's SPNEGO
/// NegTokenInit / NegTokenResp.
enum GSSToken {
    /// The mechanisms this library tells apart, by their OBJECT IDENTIFIER's encoding.
    enum Mechanism: Sendable, Equatable {
        /// SPNEGO, 1.3.6.1.5.5.2.
        case spnego
        /// Kerberos 5, 1.2.840.113554.1.2.2.
        case kerberos
        /// The OID Windows clients put first in SPNEGO's mechTypes (a historical mis-encoding of the krb5 OID),
        /// 1.2.840.48018.1.2.2.
        case msKerberos
        /// Another mechanism (NTLMSSP, …), with its OID's content octets.
        case other(ArraySlice<UInt8>)

        init(encoded content: ArraySlice<UInt8>) {
            if Self.same(content, Self.spnegoBytes) {
                self = .spnego
            } else if Self.same(content, Self.kerberosBytes) {
                self = .kerberos
            } else if Self.same(content, Self.msKerberosBytes) {
                self = .msKerberos
            } else {
                self = .other(content)
            }
        }

        /// The same bytes: lengths first, then the bytes in place.
        private static func same(_ content: ArraySlice<UInt8>, _ known: [UInt8]) -> Bool {
            guard content.count == known.count else { return false }
            return content.withUnsafeBufferPointer { a in known.withUnsafeBufferPointer { b in a.elementsEqual(b) } }
        }

        var isKerberos: Bool { self == .kerberos || self == .msKerberos }

        /// The OID's content octets, for replies.
        var encoded: [UInt8] {
            switch self {
            case .spnego: Self.spnegoBytes
            case .kerberos: Self.kerberosBytes
            case .msKerberos: Self.msKerberosBytes
            case .other(let content): Array(content)
            }
        }

        /// The OID, for messages.
        var identifier: ASN1ObjectIdentifier {
            (try? ASN1ObjectIdentifier(derEncoded: [0x06] + TLVLength.encode(encoded.count) + encoded)) ?? [0]
        }

        private static let spnegoBytes: [UInt8] = [0x2B, 0x06, 0x01, 0x05, 0x05, 0x02]
        private static let kerberosBytes: [UInt8] = [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x12, 0x01, 0x02, 0x02]
        private static let msKerberosBytes: [UInt8] = [0x2A, 0x86, 0x48, 0x82, 0xF7, 0x12, 0x01, 0x02, 0x02]
    }


    /// `[APPLICATION 0] IMPLICIT SEQUENCE { thisMech OID, innerToken ANY }`: the mechanism and the bytes after it (the
    /// inner token is the mechanism's own, not necessarily DER).
    static func unwrap(_ bytes: ArraySlice<UInt8>) throws -> (Mechanism, ArraySlice<UInt8>) {
        var outer = DERReader(bytes, what: "the GSS-API initial context token")
        let token = try outer.element(0x60)
        guard outer.isAtEnd else { throw KerberosError.malformed("the GSS-API token's length is wrong") }
        var reader = DERReader(token, what: "the GSS-API token's mechanism")
        let mech = Mechanism(encoded: try reader.objectIdentifier())
        return (mech, reader.rest)
    }

    static func stripTokenID(_ bytes: ArraySlice<UInt8>, expected: [UInt8]) throws -> ArraySlice<UInt8> {
        guard bytes.count > 2, bytes.prefix(2).elementsEqual(expected) else {
            throw KerberosError.malformed("the krb5 GSS-API token is not an AP-REQ (TOK_ID 01 00)")
        }
        return bytes.dropFirst(2)
    }

    /// NegotiationToken ::= CHOICE { negTokenInit [0] NegTokenInit, … } with NegTokenInit ::= SEQUENCE {
    /// mechTypes [0], reqFlags [1] OPTIONAL, mechToken [2] OPTIONAL, mechListMIC [3] OPTIONAL }: the client's
    /// preferred mechanism and its token, which must be for that mechanism (an optimistic token).
    static func mechToken(fromNegTokenInit bytes: ArraySlice<UInt8>) throws -> (Mechanism, ArraySlice<UInt8>) {
        var reader = DERReader(bytes, what: "the SPNEGO NegTokenInit")
        let found = try reader.field(0) { negTokenInit in
            try negTokenInit.sequence { fields -> (Mechanism?, ArraySlice<UInt8>?) in
                var preferred: Mechanism?
                try fields.field(0) { mechTypes in
                    try mechTypes.sequenceOf { mech in
                        let oid = try mech.objectIdentifier()  // each is read as DER; only the first is kept
                        if preferred == nil { preferred = Mechanism(encoded: oid) }
                    }
                }
                try fields.optionalField(1) { try $0.skipElement() }
                let token = try fields.optionalField(2) { try $0.octets() }
                while !fields.isAtEnd { try fields.skipElement() }  // mechListMIC, NegTokenInit2's negHints, later ones
                return (preferred, token)
            }
        }
        guard reader.isAtEnd else { throw KerberosError.malformed("the SPNEGO token has bytes after its NegTokenInit") }
        guard let preferred = found.0, preferred.isKerberos, let token = found.1 else {
            throw KerberosError.malformed("the SPNEGO NegTokenInit carries no Kerberos mechToken")
        }
        return (preferred, token)
    }

    /// The AP-REP framed as the request was: bare, in a krb5 token (TOK_ID 02 00), or in a SPNEGO NegTokenResp with
    /// negState accept-completed.
    static func wrapReply(_ apRep: [UInt8], framing: APRequest.Framing) throws -> [UInt8] {
        if case .bare = framing { return apRep }
        return wrapReply(framing: framing, length: apRep.count) { $0.append(apRep) }
    }

    /// The same, for the AP-REP `write` writes (about `length` bytes) into the framing's writer.
    static func wrapReply(framing: APRequest.Framing, length: Int, _ write: (inout DERWriter) -> Void) -> [UInt8] {
        // The framing's own bytes: at most 64, with lengths in their long forms.
        var token = DERWriter(capacity: length + 64)
        switch framing {
        case .bare:
            write(&token)
        case .gssKerberos:
            krb5Token(into: &token, write)
        case .spnego(let mech):
            // NegTokenResp ::= [1] SEQUENCE { negState [0] ENUMERATED (accept-completed 0), supportedMech [1] OID,
            // responseToken [2] OCTET STRING }
            token.element(DERReader.Tag.context(1)) { token in
                token.element(DERReader.Tag.sequence) { fields in
                    fields.explicit(0) { $0.append([0x0A, 0x01, 0x00]) }
                    fields.explicit(1) { $0.element(DERReader.Tag.objectIdentifier, mech.encoded) }
                    fields.explicit(2) { $0.element(DERReader.Tag.octetString) { krb5Token(into: &$0, write) } }
                }
            }
        }
        return token.bytes
    }

    /// RFC 4121's initial context token around the AP-REP: `[APPLICATION 0] { krb5 OID, TOK_ID 02 00, AP-REP }`.
    private static func krb5Token(into writer: inout DERWriter, _ write: (inout DERWriter) -> Void) {
        writer.element(0x60) { token in
            token.element(DERReader.Tag.objectIdentifier, Mechanism.kerberos.encoded)
            token.append([0x02, 0x00])
            write(&token)
        }
    }
}

/// DER's length octets, for GSS-API's framing of the reply.
enum TLVLength {
    static func encode(_ length: Int) -> [UInt8] {
        if length < 0x80 { return [UInt8(length)] }
        var bytes = [UInt8]()
        var rest = length
        while rest > 0 {
            bytes.insert(UInt8(rest & 0xFF), at: 0)
            rest >>= 8
        }
        return [0x80 | UInt8(bytes.count)] + bytes
    }
}
