/// RFC 4120 section 5.5.1's KRB_AP_REQ: `[APPLICATION 14] SEQUENCE { pvno, msg-type, ap-options, ticket,
/// authenticator }`, and how it arrived (bare, in the GSS-API krb5 token, or inside SPNEGO).
public struct APRequest: Sendable {
    /// How the AP-REQ was wrapped; the reply is wrapped the same way.
    enum Framing: Sendable {
        /// The bare DER AP-REQ.
        case bare
        /// RFC 4121's initial context token: `[APPLICATION 0] { krb5 mech OID, 01 00, AP-REQ }`.
        case gssKerberos(mech: GSSToken.Mechanism)
        /// RFC 4178's NegTokenInit carrying a GSS-API krb5 token, as `Authorization: Negotiate` does.
        case spnego(mech: GSSToken.Mechanism)
    }

    let framing: Framing
    /// The client asked for mutual authentication (ap-options mutual-required): it expects an AP-REP.
    public let mutualRequired: Bool
    public let ticket: Ticket
    let authenticator: EncryptedData

    /// Decodes a bare AP-REQ, a GSS-API krb5 token or a SPNEGO NegTokenInit (the bytes after `Negotiate `, decoded
    /// from base64).
    public init(token: some Collection<UInt8>) throws {
        let (bare, framing) = try Self.unframe(Array(token))
        self.framing = framing
        var reader = DERReader(bare, what: "the AP-REQ")
        (mutualRequired, ticket, authenticator) = try reader.applicationSequence(14, Self.fields)
        guard reader.isAtEnd else { throw KerberosError.malformed("the AP-REQ has bytes after it") }
    }

    /// The bare AP-REQ in a token and how it was framed.
    private static func unframe(_ bytes: [UInt8]) throws -> (ArraySlice<UInt8>, Framing) {
        guard let first = bytes.first else { throw KerberosError.malformed("the token is empty") }
        if first == 0x6E { return (bytes[...], .bare) }
        let (mech, inner) = try GSSToken.unwrap(bytes[...])
        if mech == .spnego {
            let (krb5Mech, krb5Token) = try GSSToken.mechToken(fromNegTokenInit: inner)
            let (innerMech, apReq) = try GSSToken.unwrap(krb5Token)
            guard innerMech.isKerberos, innerMech == krb5Mech || krb5Mech == .msKerberos
            else { throw KerberosError.malformed("the SPNEGO mechToken is not a Kerberos token") }
            return (try GSSToken.stripTokenID(apReq, expected: [0x01, 0x00]), .spnego(mech: krb5Mech))
        } else if mech.isKerberos {
            return (try GSSToken.stripTokenID(inner, expected: [0x01, 0x00]), .gssKerberos(mech: mech))
        } else {
            throw KerberosError.malformed(
                "the GSS-API token's mechanism \(mech.identifier) is neither SPNEGO nor Kerberos")
        }
    }

    /// `[APPLICATION 14] SEQUENCE { pvno [0] INTEGER (5), msg-type [1] INTEGER (14), ap-options [2] APOptions,
    /// ticket [3] Ticket, authenticator [4] EncryptedData }`'s fields, read in place.
    private static func fields(_ fields: inout DERReader) throws -> (Bool, Ticket, EncryptedData) {
        guard try fields.field(0, { try $0.int32() }) == 5, try fields.field(1, { try $0.int32() }) == 14 else {
            throw KerberosError.malformed("not a Kerberos 5 AP-REQ (pvno 5, msg-type 14)")
        }
        let options = try fields.field(2) { try $0.bitString() }
        let ticket = try fields.field(3) { try Ticket(from: &$0) }
        let authenticator = try fields.field(4) { try EncryptedData(from: &$0) }
        // APOptions bit 2 (counting from the most significant bit of the first byte) is mutual-required.
        return ((options.first ?? 0) & 0x20 != 0, ticket, authenticator)
    }
}
