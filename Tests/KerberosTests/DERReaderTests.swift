import Foundation
import Testing

@testable import Kerberos

/// The DER reader on the validation path stays as strict as a full DER parser: every encoding DER forbids is refused as
/// an invalid token, and no mutation of a real token gets anything but a Kerberos error (or, where it only touches
/// what the KDC does not protect, an acceptance).
@Suite struct DERReaderTests {
    func reader(_ bytes: [UInt8]) -> DERReader { DERReader(bytes[...], what: "the test input") }

    func expectMalformed(_ bytes: [UInt8], _ read: (inout DERReader) throws -> Void) {
        var r = reader(bytes)
        do {
            try read(&r)
            Issue.record("accepted \(bytes)")
        } catch let error as KerberosError {
            #expect(error.code == .malformed && error.message.hasPrefix("SEC_E_INVALID_TOKEN"), "\(error.message)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func integersAreReadInTheirShortestFormOnly() throws {
        var r = reader([0x02, 0x01, 0x05, 0x02, 0x01, 0xFB, 0x02, 0x02, 0x00, 0x80, 0x02, 0x04, 0x7F, 0xFF, 0xFF, 0xFF])
        #expect(try r.int32() == 5)
        #expect(try r.int32() == -5)
        #expect(try r.int32() == 128)
        #expect(try r.int32() == Int32.max)
        #expect(r.isAtEnd)
        expectMalformed([0x02, 0x02, 0x00, 0x05]) { _ = try $0.int32() }  // a redundant leading zero
        expectMalformed([0x02, 0x02, 0xFF, 0x80]) { _ = try $0.int32() }  // a redundant leading 0xFF
        expectMalformed([0x02, 0x00]) { _ = try $0.int32() }  // empty
        expectMalformed([0x02, 0x05, 0x00, 0x80, 0x00, 0x00, 0x00]) { _ = try $0.int32() }  // 2^31 is not an Int32
        var unsigned = reader([0x02, 0x05, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x02, 0x01, 0xFF])
        #expect(try unsigned.uint32() == UInt32.max)
        #expect(try unsigned.uint32() == UInt32.max)  // a kvno some encoders write as -1
    }

    @Test func lengthsMustBeDefiniteMinimalAndInside() throws {
        var long = reader([0x04, 0x81, 0x80] + [UInt8](repeating: 7, count: 128))
        #expect(try long.octets().count == 128)
        expectMalformed([0x04, 0x81, 0x05, 1, 2, 3, 4, 5]) { _ = try $0.octets() }  // long form for a short length
        expectMalformed([0x04, 0x82, 0x00, 0x80] + [UInt8](repeating: 7, count: 128)) { _ = try $0.octets() }  // leading zero
        expectMalformed([0x24, 0x80, 0x04, 0x01, 0x01, 0x00, 0x00]) { _ = try $0.element(0x24) }  // indefinite
        expectMalformed([0x04, 0x85, 1, 0, 0, 0, 0]) { _ = try $0.octets() }  // five length bytes
        expectMalformed([0x04, 0x05, 1, 2]) { _ = try $0.octets() }  // past the end
        expectMalformed([0x04]) { _ = try $0.octets() }  // no length
        expectMalformed([0x05, 0x00]) { _ = try $0.octets() }  // NULL where an OCTET STRING belongs
        expectMalformed([0x24, 0x03, 0x04, 0x01, 0x01]) { _ = try $0.octets() }  // a constructed OCTET STRING
    }

    @Test func constructedElementsAreReadWhole() throws {
        var r = reader([0xA0, 0x03, 0x02, 0x01, 0x05])
        #expect(try r.field(0) { try $0.int32() } == 5)
        expectMalformed([0xA0, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x06]) { r in _ = try r.field(0) { try $0.int32() } }
        expectMalformed([0x30, 0x04, 0x02, 0x01, 0x05, 0x00]) { r in _ = try r.sequence { try $0.int32() } }
        expectMalformed([0xA1, 0x03, 0x02, 0x01, 0x05]) { r in _ = try r.field(0) { try $0.int32() } }  // [1] for [0]
        var optional = reader([0xA1, 0x03, 0x02, 0x01, 0x05])
        #expect(try optional.optionalField(0) { try $0.int32() } == nil)
        #expect(try optional.optionalField(1) { try $0.int32() } == 5)
    }

    @Test func bitStringsHaveZeroUnusedBits() throws {
        var r = reader([0x03, 0x05, 0x00, 0x40, 0x81, 0x00, 0x00, 0x03, 0x02, 0x01, 0x02])
        #expect(Array(try r.bitString()) == [0x40, 0x81, 0x00, 0x00])
        #expect(Array(try r.bitString()) == [0x02])
        expectMalformed([0x03, 0x02, 0x01, 0x01]) { _ = try $0.bitString() }  // an unused bit set
        expectMalformed([0x03, 0x02, 0x08, 0x00]) { _ = try $0.bitString() }  // eight unused bits
        expectMalformed([0x03, 0x01, 0x03]) { _ = try $0.bitString() }  // empty with unused bits
    }

    @Test func timesAndOIDsAreChecked() throws {
        expectMalformed([0x18, 0x0D] + Array("261206053511Z".utf8)) { _ = try $0.time() }  // UTCTime's form
        expectMalformed([0x18, 0x0F] + Array("2026120605351aZ".utf8)) { _ = try $0.time() }
        expectMalformed([0x06, 0x02, 0x2A, 0x86]) { _ = try $0.objectIdentifier() }  // ends mid-arc
    }

    /// AuthorizationData is read where it lies: the PAC at the top level or inside AD-IF-RELEVANT, the first one
    /// found, every element still read as DER.
    @Test func thePACIsFoundInTheAuthorizationDataAsDER() throws {
        func element(_ type: UInt8, _ data: [UInt8]) -> [UInt8] {
            var writer = DERWriter()
            writer.element(DERReader.Tag.sequence) { fields in
                fields.explicit(0) { $0.integer(Int64(type)) }
                fields.explicit(1) { $0.element(DERReader.Tag.octetString, data) }
            }
            return writer.bytes
        }
        func sequence(_ elements: [UInt8]...) -> [UInt8] {
            var writer = DERWriter()
            writer.element(DERReader.Tag.sequence) { $0.append(elements.joined()) }
            return writer.bytes
        }
        let pac: [UInt8] = [1, 2, 3, 4]
        #expect(try AuthorizationElement.pac(in: []) == nil)
        #expect(try AuthorizationElement.pac(in: sequence(element(128, pac))[...]).map(Array.init) == pac)
        let nested = sequence(
            element(5, [9]), element(1, sequence(element(7, [8]), element(128, pac))), element(128, [0]))
        #expect(try AuthorizationElement.pac(in: nested[...]).map(Array.init) == pac)
        #expect(try AuthorizationElement.pac(in: sequence(element(5, [9]))[...]) == nil)
        for malformed in [
            sequence(element(1, [0x30, 0x03, 0x02, 0x01])),  // AD-IF-RELEVANT that ends early
            sequence(element(1, sequence(element(128, pac)) + [0])),  // bytes after AD-IF-RELEVANT's elements
            sequence(element(1, [])),  // an empty AD-IF-RELEVANT
            sequence(element(128, pac)) + [0],  // bytes after the authorization data
        ] {
            #expect(throws: KerberosError(.malformed, "")) { try AuthorizationElement.pac(in: malformed[...]) }
        }
    }

    /// The bare AP-REQ inside the krb5 fixture.
    static func bareAPREQ() throws -> [UInt8] {
        let (_, inner) = try GSSToken.unwrap(Fixtures.token("ws01-krb5.b64")[...])
        return Array(inner.dropFirst(2))
    }

    @Test func aBareAPREQWithBytesAfterItOrANonMinimalLengthIsRefused() async throws {
        let bare = try Self.bareAPREQ()
        #expect(bare[0] == 0x6E && bare[1] == 0x82)  // [APPLICATION 14], two length bytes
        let validator = TicketFixtureTests().validator()
        _ = try await validator.validate(bare, now: Fixtures.captureTime)
        var longer = bare
        longer.insert(0x00, at: 2)
        longer[1] = 0x83  // the same length in three bytes
        for token in [bare + [0x00], longer] {
            await TicketFixtureTests().expectError(.malformed, "SEC_E_INVALID_TOKEN") {
                _ = try await TicketFixtureTests().validator().validate(token, now: Fixtures.captureTime)
            }
        }
    }

    /// Every truncation and many single-bit flips of a real token: each is refused with a Kerberos error, never a
    /// crash or another error; an accepted one (a flip in what the KDC does not protect, such as ap-options) still
    /// names the ticket's client.
    @Test func mutatedTokensAreRefusedWithKerberosErrors() async throws {
        let token = Fixtures.token("ws01-spnego.b64")
        var refused = [String: Int]()
        var accepted = 0
        func check(_ mutated: [UInt8]) async {
            do {
                let result = try await TicketFixtureTests().validator().validate(mutated, now: Fixtures.captureTime)
                #expect(result.client.description == "WS01$")
                accepted += 1
            } catch let error as KerberosError {
                refused[error.code.description, default: 0] += 1
            } catch {
                Issue.record("a mutated token gave \(error)")
            }
        }
        for length in 0..<token.count { await check(Array(token.prefix(length))) }
        for index in token.indices {
            for bit: UInt8 in index % 5 == 0 ? [0x01, 0x80] : [0x04] {
                var mutated = token
                mutated[index] ^= bit
                await check(mutated)
            }
        }
        #expect(refused["malformed", default: 0] > token.count)  // every truncation at least
        #expect(refused["integrityFailure", default: 0] > 500)  // flips in the two ciphertexts
        #expect(accepted < 40, "\(accepted) mutated tokens accepted")
    }

    /// The floor the benchmark measures against is the enctype's decryption, which checks the HMAC: a flipped bit
    /// in the ticket's ciphertext fails it, where AES-CTS alone decrypts it regardless.
    @Test func theFloorDecryptsAndVerifies() throws {
        let token = Fixtures.token("ws01-krb5.b64")
        let keys = try ServiceKeys(keytab: Fixtures.keytab)
        let floor = try RawTicketDecryption(token: token, keys: keys)
        let plaintext = try floor.decryptAndVerify()
        #expect(try floor.decryptOnly() == plaintext + 16)  // AES-CTS alone keeps the confounder
        var tampered = token
        let request = try APRequest(token: token)
        let range = try #require(token.firstRange(of: Array(request.ticket.encryptedPart.cipher)))
        tampered[range.lowerBound + 40] ^= 0x01
        let broken = try RawTicketDecryption(token: tampered, keys: keys)
        #expect(try broken.decryptOnly() == plaintext + 16)
        #expect(throws: KerberosError(.integrityFailure, "")) { try broken.decryptAndVerify() }
    }
}
