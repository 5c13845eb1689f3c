import Crypto
import SwiftASN1
import Testing

@testable import Kerberos

/// The AP-REP and its framing, written by DERWriter, are byte for byte what swift-asn1's serializer writes.
@Suite struct DERWriterTests {
    @Test(arguments: [0, 1, -1, 127, 128, 255, 256, -128, -129, 999_999, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF,
                      Int64(Int32.min), Int64.max, Int64.min] as [Int64])
    func integersAreSwiftASN1s(_ value: Int64) throws {
        var coder = DER.Serializer()
        try coder.serialize(Int(value))
        var writer = DERWriter()
        writer.integer(value)
        #expect(writer.bytes == coder.serializedBytes)
    }

    /// Contents around the lengths where DER's length octets grow (127/128, 255/256, 65,535/65,536), written both
    /// ways (a content given, a content written by a closure) and nested, as swift-asn1 writes them.
    @Test(arguments: [0, 1, 127, 128, 129, 255, 256, 300, 65_535, 65_536])
    func lengthsAreSwiftASN1s(_ count: Int) throws {
        let content = (0..<count).map { UInt8(truncatingIfNeeded: $0) }
        var coder = DER.Serializer()
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            coder.appendPrimitiveNode(identifier: .octetString) { $0.append(contentsOf: content) }
            try coder.serialize(7)
        }
        var given = DERWriter()
        given.element(DERReader.Tag.sequence) { fields in
            fields.element(DERReader.Tag.octetString, content)
            fields.integer(7)
        }
        var written = DERWriter()
        written.element(DERReader.Tag.sequence) { fields in
            fields.element(DERReader.Tag.octetString) { $0.append(content) }
            fields.integer(7)
        }
        #expect(given.bytes == coder.serializedBytes)
        #expect(written.bytes == coder.serializedBytes)
    }

    @Test(arguments: [nil, 0, 1, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF] as [UInt32?])
    func theReplyIsSwiftASN1s(sequenceNumber: UInt32?) throws {
        let session = try SessionKey(encryptionType: .aes256CtsHmacSha196, bytes: (0..<32).map { UInt8($0) }[...])
        let confounder = [UInt8](repeating: 0x5A, count: 16)
        let time: Int64 = 1_764_979_200, microseconds: Int32 = 123_456
        let written = try APReply.encode(
            authenticatorTime: time, microseconds: microseconds, sequenceNumber: sequenceNumber, sessionKey: session,
            confounder: confounder)

        // The same reply through swift-asn1.
        var part = DER.Serializer()
        try part.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 27, tagClass: .application)) { coder in
            try coder.appendConstructedNode(identifier: .sequence) { coder in
                coder.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) {
                    $0.appendPrimitiveNode(identifier: .generalizedTime) { $0.append(contentsOf: KerberosTime.bytes(time)) }
                }
                try coder.serialize(Int(microseconds), explicitlyTaggedWithTagNumber: 1, tagClass: .contextSpecific)
                if let sequenceNumber {
                    try coder.serialize(Int(sequenceNumber), explicitlyTaggedWithTagNumber: 3, tagClass: .contextSpecific)
                }
            }
        }
        let profile = EncryptionProfile.aes256Sha1
        let cipher = try profile.encrypt(
            part.serializedBytes, keys: profile.usageKeys(session.key, usage: 12), confounder: confounder)
        var reply = DER.Serializer()
        try reply.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 15, tagClass: .application)) { coder in
            try coder.appendConstructedNode(identifier: .sequence) { coder in
                try coder.serialize(5, explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific)
                try coder.serialize(15, explicitlyTaggedWithTagNumber: 1, tagClass: .contextSpecific)
                try coder.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 2, tagClass: .contextSpecific)) {
                    try $0.appendConstructedNode(identifier: .sequence) { coder in
                        try coder.serialize(18, explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific)
                        try coder.serialize(ASN1OctetString(contentBytes: cipher[...]), explicitlyTaggedWithTagNumber: 2,
                                            tagClass: .contextSpecific)
                    }
                }
            }
        }
        #expect(written == reply.serializedBytes)

        // And its SPNEGO framing: NegTokenResp { accept-completed, the mechanism, the krb5 token 02 00 AP-REP }.
        for mech in [GSSToken.Mechanism.kerberos, .msKerberos] {
            var krb5Body = DER.Serializer()
            try krb5Body.serialize(try ASN1ObjectIdentifier(dotRepresentation: "1.2.840.113554.1.2.2"))
            let body = krb5Body.serializedBytes + [0x02, 0x00] + written
            let krb5Token = [0x60] + TLVLength.encode(body.count) + body
            var resp = DER.Serializer()
            try resp.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 1, tagClass: .contextSpecific)) { coder in
                try coder.appendConstructedNode(identifier: .sequence) { coder in
                    coder.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) {
                        $0.appendPrimitiveNode(identifier: .enumerated) { $0.append(0) }
                    }
                    try coder.serialize(mech.identifier, explicitlyTaggedWithTagNumber: 1, tagClass: .contextSpecific)
                    try coder.serialize(ASN1OctetString(contentBytes: krb5Token[...]), explicitlyTaggedWithTagNumber: 2,
                                        tagClass: .contextSpecific)
                }
            }
            #expect(try GSSToken.wrapReply(written, framing: .spnego(mech: mech)) == resp.serializedBytes)
            #expect(try GSSToken.wrapReply(written, framing: .gssKerberos(mech: mech)) == krb5Token)
            // The reply a validation sends is written straight into its framing: the same bytes.
            for (framing, expected) in [(APRequest.Framing.spnego(mech: mech), resp.serializedBytes),
                                        (.gssKerberos(mech: mech), krb5Token), (.bare, written)] {
                #expect(try APReply.encode(
                    authenticatorTime: time, microseconds: microseconds, sequenceNumber: sequenceNumber,
                    sessionKey: session, confounder: confounder, framing: framing) == expected)
            }
        }
    }
}
