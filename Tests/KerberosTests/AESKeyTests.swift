import Crypto
import Testing

@testable import Kerberos

/// The AES under AES-CTS: CKerberosAES on the processor's AES instructions and swift-crypto's AES must give the same
/// bytes, on the RFCs' vectors and on random keys and lengths.
@Suite struct AESKeyTests {
    @Test func thisMachineHasTheAESInstructions() {
        // The benchmark machine and CI are x86-64 with AES-NI; elsewhere the portable path is the one tested below.
        #if arch(x86_64)
        #expect(AESKey.hardwareAvailable)
        #endif
    }

    @Test(arguments: [true, false])
    func blocksMatchFIPS197(hardware: Bool) throws {
        let plaintext = hex("00112233445566778899aabbccddeeff")
        let aes128 = try AESKey(SymmetricKey(data: hex("000102030405060708090a0b0c0d0e0f")), hardware: hardware)
        let aes256 = try AESKey(
            SymmetricKey(data: hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")),
            hardware: hardware)
        #expect(aes128.usesHardware == (hardware && AESKey.hardwareAvailable))
        #expect(try aes128.encryptBlock(plaintext) == hex("69c4e0d86a7b0430d8cdb78070b4c55a"))  // FIPS 197 C.1
        #expect(try aes256.encryptBlock(plaintext) == hex("8ea2b7ca516745bfeafc49904b496089"))  // FIPS 197 C.3
    }

    @Test(arguments: CryptoVectors.all.cts)
    func ctsMatchesRFC3962OnTheInstructions(_ v: CryptoVectors.CTS) throws {
        let key = try AESKey(SymmetricKey(data: hex(v.key)))
        #expect(try key.encryptCTS(hex(v.input)) == hex(v.output))
        #expect(try key.decryptCTS(hex(v.output)[...]) == hex(v.input))
    }

    @Test func theInstructionsAgreeWithSwiftCryptoOnRandomInputs() throws {
        var generator = SystemRandomNumberGenerator()
        for round in 0..<400 {
            let keyBytes = round % 2 == 0 ? 16 : 32
            let key = SymmetricKey(size: SymmetricKeySize(bitCount: keyBytes * 8))
            let fast = try AESKey(key)
            let portable = try AESKey(key, hardware: false)
            // Every length from one block to 12 blocks and a bit, partial final blocks included, and one ticket-sized.
            let length = round == 399 ? 1_184 : 16 + round % 180
            let plaintext = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let ciphertext = try portable.encryptCTS(plaintext)
            #expect(try fast.encryptCTS(plaintext) == ciphertext, "length \(length), \(keyBytes)-byte key")
            #expect(try fast.decryptCTS(ciphertext[...]) == plaintext, "length \(length), \(keyBytes)-byte key")
            // A slice that does not start at index 0, as a ticket's cipher inside a token.
            let framed = [0xAA, 0xBB] + ciphertext
            #expect(try fast.decryptCTS(framed[2...]) == plaintext)
            let block = Array(plaintext.prefix(16))
            #expect(try fast.encryptBlock(block) == portable.encryptBlock(block))
        }
    }

    @Test func shortInputsAndOtherKeyLengthsAreRefused() throws {
        let key = try AESKey(SymmetricKey(size: .bits128))
        #expect(throws: KerberosError.self) { try key.decryptCTS([UInt8](repeating: 0, count: 15)[...]) }
        #expect(throws: KerberosError.self) { try key.encryptCTS([UInt8](repeating: 0, count: 15)) }
        #expect(throws: KerberosError.self) { try AESKey(SymmetricKey(size: .bits192)) }
    }

    @Test func derivedKeysAreTheSameEitherWay() throws {
        // One base key expanded once for several derivations gives what a fresh expansion per derivation gives.
        let base = SymmetricKey(size: .bits256)
        let profile = EncryptionProfile.aes256Sha1
        let cipher = try AESKey(base)
        for usage: Int32 in [2, 11, 12, 17, 1_024] {
            for purpose in [EncryptionProfile.Purpose.checksum, .encryption, .integrity] {
                #expect(
                    try profile.deriveKey(base, usage: usage, purpose: purpose, baseCipher: cipher)
                        == profile.deriveKey(base, usage: usage, purpose: purpose, baseCipher: AESKey(base, hardware: false)))
            }
        }
    }
}

@Suite struct RandomPoolTests {
    @Test func everyCallGetsBytesNoOtherCallGot() {
        let pool = RandomPool(refill: 64)
        // 64 draws of 16 bytes span 16 refills; 16 random bytes repeating is a 2^-128 event.
        let draws = (0..<64).map { _ in pool.bytes(16) }
        #expect(draws.allSatisfy { $0.count == 16 })
        #expect(Set(draws).count == draws.count)
        #expect(pool.bytes(100).count == 100)  // larger than a refill: drawn directly
        #expect(!draws.contains([UInt8](repeating: 0, count: 16)))
    }
}

/// HMAC-SHA1 on the processor's SHA extensions against RFC 2202's vectors and swift-crypto's HMAC.
@Suite struct HMACStateTests {
    @Test func thisMachineHasTheSHAExtensions() {
        #if arch(x86_64)
        #expect(HMACState.sha1HardwareAvailable)
        #endif
    }

    @Test(arguments: [
        // RFC 2202 section 3, test cases 1, 2, 3 and 6 (a key longer than a block is hashed first).
        ("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", Array("Hi There".utf8), "b617318655057264e28bc0b6fb378c8ef146be00"),
        ("4a656665", Array("what do ya want for nothing?".utf8), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
        (String(repeating: "aa", count: 20), [UInt8](repeating: 0xDD, count: 50), "125d7342b9ac11cd91a39af48aa17b4f63f175d3"),
        (String(repeating: "aa", count: 80), Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
         "aa4ae5e15272d00e95705637ce8a3b55ed402112"),
    ])
    func hmacSHA1MatchesRFC2202(key: String, data: [UInt8], mac: String) {
        var state = HMACState(profile: .aes256Sha1, key: SymmetricKey(data: hex(key)))
        state.update(data)
        #expect(state.finalize() == hex(mac))
    }

    /// A MAC checked in place (truncated, as Kerberos sends it) agrees with the one finalized, either way.
    @Test(arguments: [true, false])
    func verifyingATruncatedMACMatchesFinalizing(hardware: Bool) {
        let key = SymmetricKey(size: .bits256)
        var state = HMACState(profile: .aes256Sha1, key: key, hardware: hardware)
        state.update(Array("the PAC, with its signatures zeroed".utf8))
        let mac = state.finalize()
        #expect(state.verify(truncatedTo: mac.prefix(12)))
        #expect(state.verify(truncatedTo: mac))
        var altered = Array(mac.prefix(12))
        altered[11] ^= 0x01
        #expect(!state.verify(truncatedTo: altered))
        #expect(!state.verify(truncatedTo: mac + [0]))
    }

    @Test func theExtensionsAgreeWithSwiftCryptoOnRandomKeysAndMessages() {
        var generator = SystemRandomNumberGenerator()
        for round in 0..<300 {
            let key = SymmetricKey(data: (0..<[16, 32, 64, 65, 100][round % 5]).map { _ in UInt8.random(in: 0...255, using: &generator) })
            let message = (0..<(round * 7 % 1_500)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let keyed = HMACState(profile: .aes128Sha1, key: key)
            var fast = keyed
            var portable = HMACState(profile: .aes128Sha1, key: key, hardware: false)
            // Fed in uneven pieces, as a PAC is around its zeroed signatures.
            var at = 0
            while at < message.count {
                let next = min(message.count, at + Int.random(in: 1...130, using: &generator))
                fast.update(message[at..<next])
                portable.update(message[at..<next])
                at = next
            }
            #expect(fast.finalize() == portable.finalize(), "key \(key.bitCount / 8) bytes, message \(message.count)")
            // The keyed state is untouched by its copy's updates.
            var again = keyed
            again.update(message)
            #expect(again.finalize() == Array(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: key)))
        }
    }
}
