import SwiftASN1

/// RFC 2743 section 3.1's mechanism-independent token framing, RFC 4121's krb5 token IDs and RFC 4178's SPNEGO
/// NegTokenInit / NegTokenResp.
enum GSSToken {
    static let spnego = try! ASN1ObjectIdentifier(dotRepresentation: "1.3.6.1.5.5.2")
    static let kerberos = try! ASN1ObjectIdentifier(dotRepresentation: "1.2.840.113554.1.2.2")
    /// The OID Windows clients put first in SPNEGO's mechTypes (a historical mis-encoding of the krb5 OID).
    static let msKerberos = try! ASN1ObjectIdentifier(dotRepresentation: "1.2.840.48018.1.2.2")
    static let kerberosMechs = [kerberos, msKerberos]

    /// `[APPLICATION 0] IMPLICIT SEQUENCE { thisMech OID, innerToken ANY }`: the mechanism and the bytes after it.
    static func unwrap(_ bytes: ArraySlice<UInt8>) throws -> (ASN1ObjectIdentifier, ArraySlice<UInt8>) {
        var reader = TLVReader(bytes)
        guard try reader.tag() == 0x60 else { throw KerberosError.malformed("not a GSS-API initial context token") }
        let length = try reader.length()
        guard length == reader.remaining else { throw KerberosError.malformed("the GSS-API token's length is wrong") }
        let oidStart = reader.position
        guard try reader.tag() == 0x06 else { throw KerberosError.malformed("the GSS-API token has no mechanism OID") }
        try reader.skip(try reader.length())
        let oid = try DERFields.decoding("the GSS-API mechanism") {
            try ASN1ObjectIdentifier(derEncoded: bytes[oidStart..<reader.position])
        }
        return (oid, bytes[reader.position...])
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
    static func mechToken(fromNegTokenInit bytes: ArraySlice<UInt8>) throws -> (ASN1ObjectIdentifier, ArraySlice<UInt8>) {
        try DERFields.decoding("the SPNEGO NegTokenInit") {
            let root = try DER.parse(bytes)
            return try DER.explicitlyTagged(root, tagNumber: 0, tagClass: .contextSpecific) { node in
                try DER.sequence(node, identifier: .sequence) { nodes in
                    let mechs = try DERFields.field(&nodes, 0) { try DERFields.sequenceOf($0).map(ASN1ObjectIdentifier.init(derEncoded:)) }
                    _ = try DERFields.optionalField(&nodes, 1) { $0 }
                    let token = try DERFields.optionalField(&nodes, 2, DERFields.octets)
                    _ = try DERFields.optionalField(&nodes, 3) { $0 }
                    while nodes.next() != nil {}  // NegTokenInit2's negHints and later extensions
                    guard let preferred = mechs.first, kerberosMechs.contains(preferred), let token else {
                        throw KerberosError.malformed("the SPNEGO NegTokenInit carries no Kerberos mechToken")
                    }
                    return (preferred, token)
                }
            }
        }
    }

    /// The AP-REP framed as the request was: bare, in a krb5 token (TOK_ID 02 00), or in a SPNEGO NegTokenResp with
    /// negState accept-completed.
    static func wrapReply(_ apRep: [UInt8], framing: APRequest.Framing) throws -> [UInt8] {
        switch framing {
        case .bare:
            return apRep
        case .gssKerberos:
            return try krb5Token(apRep)
        case .spnego(let mech):
            var coder = DER.Serializer()
            try coder.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 1, tagClass: .contextSpecific)) {
                coder in
                try coder.appendConstructedNode(identifier: .sequence) { coder in
                    try coder.serialize(Enumerated(0), explicitlyTaggedWithTagNumber: 0,
                        tagClass: .contextSpecific)
                    try coder.serialize(mech, explicitlyTaggedWithTagNumber: 1, tagClass: .contextSpecific)
                    try coder.serialize(ASN1OctetString(contentBytes: try krb5Token(apRep)[...]),
                        explicitlyTaggedWithTagNumber: 2, tagClass: .contextSpecific)
                }
            }
            return coder.serializedBytes
        }
    }

    private static func krb5Token(_ apRep: [UInt8]) throws -> [UInt8] {
        var oid = DER.Serializer()
        try oid.serialize(kerberos)
        let body = oid.serializedBytes + [0x02, 0x00] + apRep
        return [0x60] + TLVReader.encodeLength(body.count) + body
    }

    /// ENUMERATED, which swift-asn1 has no type for.
    private struct Enumerated: DERSerializable {
        let value: Int
        init(_ value: Int) { self.value = value }
        func serialize(into coder: inout DER.Serializer) throws {
            try value.serialize(into: &coder, withIdentifier: .enumerated)
        }
    }
}

/// Reads DER tag-length headers by hand, for GSS-API's framing whose inner token is not itself DER.
struct TLVReader {
    private let bytes: ArraySlice<UInt8>
    private(set) var position: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.position = bytes.startIndex
    }

    var remaining: Int { bytes.endIndex - position }

    mutating func tag() throws -> UInt8 {
        guard position < bytes.endIndex else { throw KerberosError.malformed("the token ends early") }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func length() throws -> Int {
        let first = try tag()
        if first < 0x80 { return Int(first) }
        let count = Int(first & 0x7F)
        guard count >= 1, count <= 3 else { throw KerberosError.malformed("a DER length is not 1 to 3 bytes") }
        var value = 0
        for _ in 0..<count { value = value << 8 | Int(try tag()) }
        return value
    }

    mutating func skip(_ count: Int) throws {
        guard count <= remaining else { throw KerberosError.malformed("the token ends early") }
        position += count
    }

    static func encodeLength(_ length: Int) -> [UInt8] {
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
