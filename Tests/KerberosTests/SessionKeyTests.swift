import Crypto
import Testing

@testable import Kerberos

/// A session key's one-call encryption and decryption in CKerberosAES (Ke and Ki derived on the C stack) against the
/// RFCs' vectors and the general path (swift-crypto's AES and HMAC with keys derived in Swift), and the cryptography
/// the benchmark sets validation against.
@Suite struct SessionKeyTests {
    @Test func theOneCallPathRunsHere() {
        #if arch(x86_64)
        #expect(SessionKey.oneCallAvailable)
        #endif
    }

    @Test(arguments: CryptoVectors.all.decrypt)
    func vectorsDecryptAndReencrypt(_ v: CryptoVectors.Decrypt) throws {
        let bytes = hex(v.key)
        let session = try SessionKey(encryptionType: EncryptionType(rawValue: v.enctype), bytes: bytes[...])
        let ciphertext = hex(v.ciphertext)
        #expect(Array(try session.decrypt(ciphertext[...], usage: v.usage)) == hex(v.plaintext))
        // The confounder is the first block of the CTS plaintext; with it, encryption gives the vector's bytes.
        let profile = session.profile
        let keys = try profile.usageKeys(session.key, usage: v.usage)
        let body = ciphertext.prefix(ciphertext.count - profile.macLength)
        let confounder = Array(try keys.encryption.decryptCTS(body).prefix(16))
        #expect(try session.encrypt(hex(v.plaintext), usage: v.usage, confounder: confounder) == ciphertext)
        var flipped = ciphertext
        flipped[flipped.count / 2] ^= 0x01
        #expect(throws: KerberosError(.integrityFailure, "")) { try session.decrypt(flipped[...], usage: v.usage) }
    }

    @Test func theOneCallPathAgreesWithTheGeneralOne() throws {
        var generator = SystemRandomNumberGenerator()
        for round in 0..<200 {
            let type: EncryptionType = round % 2 == 0 ? .aes128CtsHmacSha196 : .aes256CtsHmacSha196
            let profile = try type.profile()
            // A key that is a slice not starting at 0, as a session key inside a decrypted ticket is.
            let framed = (0..<(profile.keyLength + 3)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let session = try SessionKey(encryptionType: type, bytes: framed[3...])
            let usage: Int32 = [11, 12, 2, 7, 1_024][round % 5]
            let plaintext = (0..<(round * 3 % 300)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let confounder = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let keys = try profile.usageKeys(session.key, usage: usage)
            let expected = try profile.encrypt(plaintext, keys: keys, confounder: confounder)
            #expect(try session.encrypt(plaintext, usage: usage, confounder: confounder) == expected, "round \(round)")
            let inside = [0xEE] + expected
            #expect(Array(try session.decrypt(inside[1...], usage: usage)) == plaintext, "round \(round)")
            #expect(throws: KerberosError(.integrityFailure, "")) {
                try session.decrypt(expected[...], usage: usage + 1)
            }
        }
    }

    @Test func refusedAndMalformedKeysAndShortCiphertexts() throws {
        #expect(throws: KerberosError(.unsupportedEncryptionType, "")) {
            try SessionKey(encryptionType: .rc4Hmac, bytes: [UInt8](repeating: 1, count: 16)[...])
        }
        #expect(throws: KerberosError(.malformed, "")) {
            try SessionKey(encryptionType: .aes256CtsHmacSha196, bytes: [UInt8](repeating: 1, count: 16)[...])
        }
        let session = try SessionKey(encryptionType: .aes128CtsHmacSha196, bytes: [UInt8](repeating: 1, count: 16)[...])
        #expect(throws: KerberosError(.malformed, "")) {
            try session.decrypt([UInt8](repeating: 0, count: 27)[...], usage: 11)
        }
    }

    /// Each part of the floor runs on the fixture's own bytes and verifies what it checks.
    @Test func theUnskippableCryptographyOfATokenRunsAndVerifies() throws {
        let keys = try ServiceKeys(keytab: Fixtures.keytab)
        let token = Fixtures.token("ws01-spnego.b64")
        let floor = try UnskippableCryptography(token: token, keys: keys)
        let request = try APRequest(token: token)
        #expect(try floor.run(.ticket) == request.ticket.encryptedPart.cipher.count - 16 - 12)
        #expect(try floor.run(.authenticator) == request.authenticator.cipher.count - 16 - 12)
        #expect(try floor.run(.pacChecksum) > 500)
        // An AP-REP's encrypted part: a confounder, the EncAPRepPart and the MAC.
        #expect(try floor.run(.reply) > 16 + 12 + 20)

        // A token whose ticket does not decrypt has no floor to measure.
        var tampered = token
        let range = try #require(token.firstRange(of: Array(request.ticket.encryptedPart.cipher)))
        tampered[range.lowerBound + 40] ^= 0x01
        #expect(throws: KerberosError(.integrityFailure, "")) {
            try UnskippableCryptography(token: tampered, keys: keys)
        }
    }
}

@Suite struct PrincipalNameTests {
    @Test func namesCompareWithTheirTextFormAndQualifyWithTheirRealm() {
        let computer = PrincipalName("WS01$")
        #expect(computer.matches(text: "ws01$"))
        #expect(!computer.matches(text: "WS02$"))
        #expect(computer.qualified(realm: "CORP.EXAMPLE.TEST") == "WS01$@CORP.EXAMPLE.TEST")
        let service = PrincipalName("adrs/tessera.corp.example.test")
        #expect(service.matches(text: "ADRS/Tessera.corp.example.test"))
        #expect(!service.matches(text: "adrs"))
        #expect(service.qualified(realm: "CORP") == "adrs/tessera.corp.example.test@CORP")
    }
}
